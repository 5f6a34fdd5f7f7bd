#!/usr/bin/env bash
# Random and truncated datagrams at the group and unicast ports for 10 s:
# the receiver keeps running, its RSS grows by at most 2 MiB, and a transfer
# in progress completes.
set -u
source tests/net/rep_lib.sh
probe=$(build_tool udp_probe) || fail "cannot build udp_probe"
rep_lan 3
lan_rate 1 200mbit
rep_start 1; rep_start 2
# Warm up with a transfer of the same size, so buffers reach their steady size.
make_random_file "$(rep_dir 1)/warm.bin" 64M
cp "$(rep_dir 1)/warm.bin" "$(rep_drop 1)/warm.bin"
rep_wait_same 90 1 2
pid=$(rep_pid 2)
rss0=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
make_random_file "$(rep_drop 1)/big.bin" 64M
g=${REP_GROUP%:*}; gp=${REP_GROUP#*:}
for dest in "$(lan_ip 2):$REP_PORT" "$g:$gp"; do
  for mode in --random --truncate; do
    lan_bg 3 /dev/null "$probe" send --to "$dest" --bind "$(lan_ip 3)" --count 40000 --size 1500 \
      $mode --rate 4000 > /dev/null
  done
done
rep_wait_same 120 1 2
kill -0 "$pid" 2>/dev/null || rfail "receiver died"
rss1=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
drops=$(sget 2 '[.net.drops[]] | add')
echo "receiver RSS ${rss0} KiB -> ${rss1} KiB; dropped packets: $drops"
# AddressSanitizer keeps freed memory in quarantine: RSS is judged unsanitized.
if [[ $BUILD != *san* ]]; then
  [ $((rss1 - rss0)) -le 2048 ] || rfail "RSS grew by $((rss1 - rss0)) KiB"
fi
[ "$drops" -gt 1000 ] || rfail "garbage was not counted as dropped"
echo "ok: garbage dropped and counted, transfer complete, RSS +$((rss1 - rss0)) KiB"
