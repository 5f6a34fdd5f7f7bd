#!/usr/bin/env bash
# CPU seconds of each shoald thread, on the sender (box 1) and on one
# receiver (box 2), while one file replicates to N receivers (the setup of
# bench/replicate.sh, without perf):
#   N=1 SIZE_MB=256 RATE=1gbit LOSS=0 bash bench/threads.sh
# Threads that ended during the run (a file's read-and-cut thread) are
# summed in one line: the process's total less its live threads.
set -u
cd "$(dirname "$0")/.." || exit 1
export BUILD=${BUILD:-build}
# shellcheck source=lib.sh
source bench/lib.sh
skip_unless_root
N=${N:-1} SIZE_MB=${SIZE_MB:-256} RATE=${RATE:-1gbit} LOSS=${LOSS:-0}
bench_lan "$N" "$RATE" "$LOSS"
make_random_file "$_LAN_DIR/big.bin" "${SIZE_MB}M"

# One line per thread of boxes 1 and 2: "box tid comm utime stime" (ticks),
# plus "box 0 process utime stime" for the whole process.
snapshot() {
  local b p t
  for b in 1 2; do
    p=$(rep_pid "$b")
    echo "$b 0 process $(awk '{print $14, $15}' "/proc/$p/stat")"
    for t in /proc/"$p"/task/*; do
      echo "$b ${t##*/} $(cat "$t/comm") $(awk '{print $14, $15}' "$t/stat")"
    done 2>/dev/null
  done
}
before=$(snapshot)
t0=$(date +%s.%N)
ln "$_LAN_DIR/big.bin" "$(rep_drop 1)/big.bin"
wait_until 300 test -f "$(rep_drop 2)/big.bin" || rfail "no copy after 300 s"
t1=$(date +%s.%N)
sleep 0.3  # the receiver's last store jobs and the sender's last sends
after=$(snapshot)
echo "replicated ${SIZE_MB} MiB to $N receiver(s) in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
hz=$(getconf CLK_TCK)
# The process's total less its live threads is what ended threads used;
# a tick either way is rounding between the two counts.
awk -v hz="$hz" '
  function line(b, what, u, s) {
    printf "%s %-16s user %.2f s  system %.2f s\n", (b == 1 ? "sender  " : "receiver"), what, u / hz, s / hz
  }
  NR == FNR { u[$1 " " $2] = $4; s[$1 " " $2] = $5; next }
  {
    k = $1 " " $2
    du = $4 - (k in u ? u[k] : 0); ds = $5 - (k in s ? s[k] : 0)
    if ($2 == 0) { tu[$1] = du; ts[$1] = ds; next }
    lu[$1] += du; ls[$1] += ds
    if (du + ds > 0) line($1, $3, du, ds)
  }
  END {
    for (b = 1; b <= 2; b++) {
      eu = tu[b] - lu[b]; es = ts[b] - ls[b]
      if (eu + es > 1) line(b, "(ended threads)", eu, es)
      line(b, "whole process", tu[b], ts[b])
    }
  }' <(echo "$before") <(echo "$after")
