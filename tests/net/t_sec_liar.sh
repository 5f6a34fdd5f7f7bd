#!/usr/bin/env bash
# A lying peer: the forge offers the very version box 2 will hold (same
# manifest) but flips a byte in every chunk it sends. Box 3 first has only
# the liar, so it must count bad objects and publish nothing; once box 2
# appears, box 3 must turn to it and end with the true file.
set -u
source tests/net/rep_lib.sh
FORGE=$PWD/$BUILD/tools/shoal_forge
[ -x "$FORGE" ] || fail "$FORGE missing: run make tools"
rep_lan 3
src=$_LAN_DIR/liar-src
mkdir -p "$src" "$(rep_drop 2)"
make_random_file "$src/big.bin" 300K
chmod 0644 "$src/big.bin"
touch -d '@1700000000.123456789' "$src/big.bin"

rep_start 3
# --origin h2 + the file's mtime and mode: byte for byte box 2's manifest.
lan_bg 1 "$_LAN_DIR/forge.log" "$FORGE" --key-file "$(rep_dir 3)/share.key" \
  --bind "$(lan_ip 1)" --port "$REP_PORT" --group "$REP_GROUP" --name liar --origin h2 \
  --peer "$(lan_ip 3):$REP_PORT" --duration 40 --corrupt --file "big.bin=$src/big.bin" > /dev/null
forge_pid=$LAN_LAST_PID
bad() { [ "$(sget 3 .net.objects_bad)" -ge "$1" ]; }
wait_until 10 bad 1 || rfail "box 3 counted no bad object from the liar"
sleep 0.5
[ ! -e "$(rep_drop 3)/big.bin" ] || rfail "box 3 published a file made of lies"
[ -z "$(find "$(rep_drop 3)" -mindepth 1 | head -1)" ] || rfail "box 3 wrote something: $(ls -A "$(rep_drop 3)")"
echo "ok: box 3 refused the liar's chunks ($(sget 3 .net.objects_bad) bad objects)"

cp -p "$src/big.bin" "$(rep_drop 2)/big.bin"
rep_start 2
want=$(sha256sum < "$src/big.bin")
good() { [ -f "$(rep_drop 3)/big.bin" ] && [ "$(sha256sum < "$(rep_drop 3)/big.bin")" = "$want" ]; }
wait_until 25 good || rfail "box 3 did not get the true file from box 2"
rep_wait_same 5 2 3
no_leftovers 3
echo "ok: box 3 has the true file (sha256 equal to box 2's)"

mid() { ctl "$1" files s --json | jq -r '.files[] | select(.path == "big.bin") | .manifest'; }
forged=$(sed -n 's/^shoal_forge: version 1 \([0-9a-f]*\) .*/\1/p' "$_LAN_DIR/forge.log")
[ -n "$forged" ] && [ "$forged" = "$(mid 2)" ] && [ "$(mid 3)" = "$(mid 2)" ] ||
  rfail "versions differ: forge '$forged', box 2 '$(mid 2)', box 3 '$(mid 3)'"
echo "ok: one version, offered by both the liar and box 2"
liar_bad=$(ctl 3 peers --json | jq '[.peers[] | select(.name == "liar") | .bad_objects] | add // 0')
[ "$liar_bad" -ge 1 ] || rfail "box 3 does not blame the liar (bad_objects $liar_bad)"
echo "ok: box 3 blames the liar for $liar_bad bad objects"

kill -TERM "$forge_pid"
lan_wait "$forge_pid" 5 || rfail "forge failed"
stats=$(grep '^{' "$_LAN_DIR/forge.log") || rfail "no forge counters"
echo "forge: $stats"
[ "$(jq .data_packets_sent <<< "$stats")" -ge 1 ] || rfail "the liar sent no data"
