#!/usr/bin/env bash
# A receiver killed with kill -9 halfway through a 256 MiB transfer and
# restarted 3 s later completes, receiving at most 60% of the file after its
# restart. The sender is rate-limited so "halfway" can be observed.
set -u
source tests/net/rep_lib.sh
rep_lan 2
lan_rate 1 400mbit
rep_start 1; rep_start 2
make_random_file "$(rep_drop 1)/big.bin" 256M
size=$((256 * 1024 * 1024))
half() {
  local d; d=$(ctl 2 transfers --json | jq '[.transfers[] | select(.path=="big.bin") | .done] | add // 0')
  [ "$d" -ge $((size / 2)) ]
}
wait_until 120 half || rfail "transfer never got halfway"
rep_kill 2
sleep 3
rep_start 2
rep_wait_same 180 1 2
after=$(sget 2 .net.data_bytes_in)
pct=$((after * 100 / size))
echo "bytes received after restart: $after ($pct% of the file)"
[ "$pct" -le 60 ] || rfail "received $pct% of the file after restart (limit 60%)"
no_leftovers 2
echo "ok: resumed after kill -9"
