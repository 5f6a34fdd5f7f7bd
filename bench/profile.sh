#!/usr/bin/env bash
# Profiles shoald while it replicates one file to N receivers (the setup of
# bench/replicate.sh): perf record -g on the sender and on receiver box 2,
# then the top symbols of each (perf report --no-children).
#   N=1 SIZE_MB=256 RATE=1gbit LOSS=0 bash bench/profile.sh
set -u
cd "$(dirname "$0")/.." || exit 1
export BUILD=${BUILD:-build}
# shellcheck source=lib.sh
source bench/lib.sh
skip_unless_root
N=${N:-1} SIZE_MB=${SIZE_MB:-256} RATE=${RATE:-1gbit} LOSS=${LOSS:-0} OUT=${OUT:-build/bench}
command -v perf >/dev/null || fail "perf is not installed (bash scripts/deps.sh --bench)"
mkdir -p "$OUT"
bench_lan "$N" "$RATE" "$LOSS"
make_random_file "$_LAN_DIR/big.bin" "${SIZE_MB}M"
perf record -q -g -F 999 -o "$OUT/perf-sender.data" -p "$(rep_pid 1)" 2>/dev/null &
p1=$!
perf record -q -g -F 999 -o "$OUT/perf-receiver.data" -p "$(rep_pid 2)" 2>/dev/null &
p2=$!
sleep 0.5
t0=$(date +%s.%N)
ln "$_LAN_DIR/big.bin" "$(rep_drop 1)/big.bin"
# Once a second: the sender's paced rate and the receiver's progress.
for ((k = 0; k < 300; k++)); do
  [ -f "$(rep_drop 2)/big.bin" ] && break
  echo "t=${k}s sender send_rate_bps=$(sget 1 .net.send_rate_bps) data_bytes_out=$(sget 1 .net.data_bytes_out)" \
    "receiver: $(ctl 2 transfers --json 2>/dev/null | jq -c '[.transfers[]? | {done, rate_bps}]')"
  sleep 1
done
[ -f "$(rep_drop 2)/big.bin" ] || rfail "no copy after 300 s"
t1=$(date +%s.%N)
kill -INT "$p1" "$p2"; wait "$p1" "$p2"
echo "replicated ${SIZE_MB} MiB to $N receiver(s) in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
echo "== sender .net: $(sget 1 .net | jq -c .)"
echo "== receiver .net: $(sget 2 .net | jq -c .)"
for w in sender receiver; do
  echo "== $w: top symbols (self, % of samples)"
  perf report -i "$OUT/perf-$w.data" --no-children --sort symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -25
  echo "== $w: by thread"
  perf report -i "$OUT/perf-$w.data" --no-children --sort comm --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -8
done
