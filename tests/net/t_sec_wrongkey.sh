#!/usr/bin/env bash
# Intruders without the share key, next to a working pair of boxes: one puts
# the share's id in its headers but seals with a wrong key (so its packets
# reach the AEAD check), one uses its own share id; both announce, offer a
# file and send garbage for 10 s while box 2 sends a file to box 3. The boxes
# drop and count everything, never list or answer the intruders, take
# nothing from them, and finish their own transfer.
set -u
source tests/net/rep_lib.sh
FORGE=$PWD/$BUILD/tools/shoal_forge
[ -x "$FORGE" ] || fail "$FORGE missing: run make tools"
rep_lan 3
rep_start 2
rep_start 3
src=$_LAN_DIR/intruder-src
mkdir -p "$src"
echo "from an intruder" > "$src/intr.txt"
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$_LAN_DIR/wrong.key")
[ "$(wc -c < "$_LAN_DIR/wrong.key")" = 64 ] || fail "could not make a key"

common=(--key-file "$_LAN_DIR/wrong.key" --bind "$(lan_ip 1)" --group "$REP_GROUP"
  --peer "$(lan_ip 2):$REP_PORT" --peer "$(lan_ip 3):$REP_PORT" --duration 10 --garbage 3000)
lan_bg 1 "$_LAN_DIR/forge1.log" "$FORGE" "${common[@]}" --port "$REP_PORT" --name intruder \
  --id-key-file "$(rep_dir 2)/share.key" --file "intruder.txt=$src/intr.txt" > /dev/null
f1=$LAN_LAST_PID
lan_bg 1 "$_LAN_DIR/forge2.log" "$FORGE" "${common[@]}" --port $((REP_PORT + 1)) \
  --name stranger --mcast off --file "stranger.txt=$src/intr.txt" > /dev/null
f2=$LAN_LAST_PID

sleep 1
make_random_file "$(rep_drop 2)/legit.bin" 2M
rep_wait_same 20 2 3
echo "ok: the legit transfer completed next to the intruders"
lan_wait "$f1" 15 || rfail "forge 1 failed"
lan_wait "$f2" 15 || rfail "forge 2 failed"

for i in 2 3; do
  kill -0 "$(rep_pid "$i")" 2>/dev/null || rfail "box $i died"
  d=$(ctl "$i" status --json | jq -c .net.drops) || rfail "box $i stopped answering"
  echo "box $i drops: $d"
  for r in auth unknown_share short bad_magic; do
    [ "$(jq ".$r" <<< "$d")" -gt 0 ] || rfail "box $i counted no '$r' drop"
  done
  names=$(ctl "$i" peers --json | jq -r '.peers[].name')
  grep -qxE 'intruder|stranger' <<< "$names" && rfail "box $i lists an intruder as a peer: $names"
  [ "$(ctl "$i" peers --json | jq '.peers | length')" = 1 ] || rfail "box $i: unexpected peers: $names"
  [ ! -e "$(rep_drop "$i")/intruder.txt" ] && [ ! -e "$(rep_drop "$i")/stranger.txt" ] ||
    rfail "box $i took a file from an intruder"
  [ "$(ctl "$i" files s --json | jq '.files | length')" = 1 ] || rfail "box $i: unexpected files"
done
[ "$(find "$(rep_drop 3)" -mindepth 1 -printf '%P\n')" = legit.bin ] || rfail "box 3 folder"
echo "ok: intruders' packets dropped and counted, never listed, nothing taken"

for k in 1 2; do
  stats=$(grep '^{' "$_LAN_DIR/forge$k.log") || rfail "no counters from forge $k"
  echo "forge $k: $stats"
  [ "$(jq .garbage_sent <<< "$stats")" -ge 2500 ] || rfail "forge $k sent little garbage"
  [ "$(jq .unicast_in <<< "$stats")" = 0 ] || rfail "forge $k got a reply"
  [ "$(jq .authentic_in <<< "$stats")" = 0 ] || rfail "forge $k opened a packet with its key"
  [ "$(jq .catalog_reqs_in <<< "$stats")" = 0 ] || rfail "forge $k was asked for its catalog"
done
echo "ok: nothing the intruders sent got an answer"
