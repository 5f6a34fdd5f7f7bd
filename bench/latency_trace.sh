#!/usr/bin/env bash
# Where a small file's latency goes: two boxes with debug logs, FILES files
# of 4 KiB dropped on box 1 one at a time; prints both logs merged by time
# (ms timestamps) around each drop, marked ">> drop".
#   FILES=3 bash bench/latency_trace.sh
set -u
cd "$(dirname "$0")/.." || exit 1
export BUILD=${BUILD:-build}
source tests/net/rep_lib.sh
skip_unless_root
FILES=${FILES:-3}
lan_up 2 || fail lan_up
for i in 1 2; do
  lan_rate "$i" 1gbit out
  rep_start "$i" net.max_rate=1gbit settle_ms=50 node.log_level=debug
done
wait_until 15 eval '[ "$(sget 1 .peers)" = 1 ] && [ "$(sget 2 .peers)" = 1 ]' || true
sleep 1
mkdir -p "$_LAN_DIR/lat"
for ((k = 0; k < FILES; k++)); do
  head -c 4096 /dev/urandom >"$_LAN_DIR/lat/f$k.bin"
  echo "$(date +%H:%M:%S.%3N) box0 >> drop f$k.bin" >>"$_LAN_DIR/marks"
  ln "$_LAN_DIR/lat/f$k.bin" "$(rep_drop 1)/f$k.bin"
  wait_until 10 test -f "$(rep_drop 2)/f$k.bin" || echo "f$k did not arrive"
  echo "$(date +%H:%M:%S.%3N) box0 >> arrived f$k.bin" >>"$_LAN_DIR/marks"
  sleep 0.5
done
{
  cat "$_LAN_DIR/marks"
  sed 's/^\([0-9:.]*\) /\1 box1 /' "$(rep_dir 1)/log"
  sed 's/^\([0-9:.]*\) /\1 box2 /' "$(rep_dir 2)/log"
} | sort -s -k1,1 | awk '/>> drop/ {on = 1} on {print} />> arrived/ {on = 0; print "--"}' |
  grep -v -i 'ping\|pong' | cut -c1-200
