#!/usr/bin/env bash
# Share boundaries: box 2 has two shares, s (the test key) and t (another
# key). A hostile peer holding only s's key asks box 2 for the manifest and
# chunks of a file that exists only in t: it gets nothing, and box 2 counts
# the refusals (drops.not_in_share). The same peer asking for a file of s
# gets its data, so silence is a refusal, not a deaf box.
set -u
source tests/net/rep_lib.sh
FORGE=$PWD/$BUILD/tools/shoal_forge
[ -x "$FORGE" ] || fail "$FORGE missing: run make tools"
rep_lan 2
dir2=$(rep_dir 2)
mkdir -p "$dir2/drop_t"
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir2/t.key" && echo >> "$dir2/t.key")
rep_start 2 "[share t]" "path = $dir2/drop_t" "group = 239.77.0.2:7701" "key_file = $dir2/t.key" "settle_ms = 100"
src=$_LAN_DIR/cross-src
mkdir -p "$src"
make_random_file "$src/secret.bin" 300K
make_random_file "$src/public.bin" 100K
chmod 0644 "$src"/*.bin
touch -d '@1700000000.5' "$src"/*.bin
cp -p "$src/secret.bin" "$dir2/drop_t/secret.bin"
cp -p "$src/public.bin" "$(rep_drop 2)/public.bin"
mid() { ctl 2 files "$1" --json | jq -r --arg p "$2" '.files[] | select(.path == $p) | .manifest'; }
both() { [ -n "$(mid t secret.bin)" ] && [ -n "$(mid s public.bin)" ]; }
wait_until 20 both || rfail "box 2 did not ingest its files"

# --origin h2 and the files' mtime and mode: the forge builds box 2's very
# manifests, so it asks for objects box 2 really holds.
lan_bg 1 "$_LAN_DIR/forge.log" "$FORGE" --key-file "$(rep_dir 2)/share.key" \
  --bind "$(lan_ip 1)" --port "$REP_PORT" --group "$REP_GROUP" --name member --origin h2 \
  --peer "$(lan_ip 2):$REP_PORT" --duration 5 \
  --want-file "secret.bin=$src/secret.bin" --want-file "public.bin=$src/public.bin" > /dev/null
forge_pid=$LAN_LAST_PID
lan_wait "$forge_pid" 20 || rfail "forge failed or hung"
wanted() { sed -n "s/^shoal_forge: wanted $1 \([0-9a-f]*\) .*/\1/p" "$_LAN_DIR/forge.log"; }
[ "$(wanted 1)" = "$(mid t secret.bin)" ] || rfail "forge asked for $(wanted 1), box 2 holds $(mid t secret.bin)"
[ "$(wanted 2)" = "$(mid s public.bin)" ] || rfail "forge asked for $(wanted 2), box 2 holds $(mid s public.bin)"
stats=$(grep '^{' "$_LAN_DIR/forge.log") || rfail "no forge counters"
echo "forge: $stats"
[ "$(jq .wants_sent <<< "$stats")" -ge 2 ] || rfail "the forge never heard box 2 (no WANTS sent)"
[ "$(jq '.wanted_data[1]' <<< "$stats")" -gt 0 ] || rfail "box 2 served nothing of its share s file"
echo "ok: a member of share s gets s's file ($(jq '.wanted_data[1]' <<< "$stats") DATA packets)"
[ "$(jq '.wanted_data[0]' <<< "$stats")" = 0 ] || rfail "box 2 leaked $(jq '.wanted_data[0]' <<< "$stats") DATA packets of share t"
refused=$(sget 2 .net.drops.not_in_share)
[ "$refused" -ge 2 ] || rfail "not_in_share = $refused, expected the refusals counted"
[ -z "$(find "$(rep_drop 2)" -name 'secret*')" ] || rfail "secret.bin appeared in share s"
echo "ok: nothing of share t reached a member of share s ($refused requests refused)"
