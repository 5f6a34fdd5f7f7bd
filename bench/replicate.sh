#!/usr/bin/env bash
# Replication benchmark (make bench, make bench-quick): shoal, uftp (plain and
# AES-256-GCM) and udpcast send the same random file from host 1 to N
# receivers on one simulated LAN (tests/net/lib.sh namespaces, 10.77.0.0/24),
# interleaved per repetition. Per run: seconds from the start (shoal: the
# drop into box 1's folder; uftp/udpcast: the sender's start) until the last
# receiver holds the whole file, peak RSS (VmHWM) of the sender and of the
# largest receiver, CPU seconds (user+sys) summed over sender and receivers
# (shoal's read SHOAL_CPU_SETTLE=1.5 s after the last copy, so the store's
# catch-up after publishing counts); cpu_recv_s in the raw file: the
# receivers' share of that CPU.
# Every received copy is checked with sha256 afterwards; a wrong copy or a
# run past the timeout counts as "did not finish".
#
# Settings (environment):
#   RECEIVERS="1 3"   receiver counts           SIZE_MB=64      file size
#   RATES="1gbit"     per-host egress shaping ("off" = none)
#   LOSSES="0 2"      % of UDP dropped at each receiver's input
#   REPS=1            repetitions               TIMEOUT=120     seconds per run
#   TOOLS="shoal shoal-noaead uftp uftp-enc udpcast"
#     shoal-noaead: build-noaead/shoald (make build-bench-noaead), AES-GCM
#     replaced by a copy, 1-receiver configurations only: what AEAD costs
#     shoal-base: $BASE_SHOALD, another build of shoald (say, of the commit
#     before a change), run like shoal: interleaved A/B of a change
#   EXTRA="30:64:1gbit:1"  extra configs N:SIZE_MB:RATE:LOSS (space separated)
#   LATENCY=1         also the 4 KiB latency run (LAT_FILES=50)
#   SHOAL_LAN_GRO=1   receivers' veths do GRO like a NIC (0: off, as in tests)
#   OUT=build/bench   PLOT=docs/bench.png ("" = no plot)
# `bench/replicate.sh --report RAW.tsv` only prints the tables (and plot) of
# an earlier run's raw file, e.g. of a run cut short.
set -u
cd "$(dirname "$0")/.." || exit 1
export BUILD=${BUILD:-build}
# Receivers' lan0 coalesce with GRO, as a real NIC does (tests/net/lib.sh);
# loss is applied per datagram before that. SHOAL_LAN_GRO=0 turns it off.
export SHOAL_LAN_GRO=${SHOAL_LAN_GRO:-1}
# shellcheck source=../tests/net/rep_lib.sh
source tests/net/rep_lib.sh
skip_unless_root

RECEIVERS=${RECEIVERS:-"1 3"}
SIZE_MB=${SIZE_MB:-64}
RATES=${RATES:-1gbit}
LOSSES=${LOSSES:-"0 2"}
REPS=${REPS:-1}
TIMEOUT=${TIMEOUT:-120}
TOOLS=${TOOLS:-"shoal shoal-noaead uftp uftp-enc udpcast"}
NOAEAD_SHOALD=$PWD/build-noaead/shoald
BASE_SHOALD=${BASE_SHOALD:-}
EXTRA=${EXTRA:-}
LATENCY=${LATENCY:-1}
LAT_FILES=${LAT_FILES:-50}
OUT=${OUT:-build/bench}
PLOT=${PLOT-docs/bench.png}
SETTLE_MS=50
SHOAL_CPU_SETTLE=${SHOAL_CPU_SETTLE:-1.5}  # seconds after the last copy before shoal's CPU is read
UNSHAPED_MAX_RATE=${UNSHAPED_MAX_RATE:-10gbit}   # shoal's max_rate when RATE=off

STAMP=$(date -u +%Y-%m-%d-%H%M)
mkdir -p "$OUT"
if [ "${1:-}" = --report ]; then
  RAW=$2 RESULTS=${2%.tsv}.md
  RESULTS=${RESULTS/raw-/results-}
else
  RAW="$OUT/raw-$STAMP.tsv"
  RESULTS="$OUT/results-$STAMP.md"
fi
[ "${1:-}" = --report ] || printf 'n\tsize_mb\trate\tloss\trep\ttool\tstatus\tsecs\trss_sender_kb\trss_recv_kb\tcpu_s\tcpu_recv_s\n' >"$RAW"
CLK_TCK=$(getconf CLK_TCK)

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
now_us() { local t=${EPOCHREALTIME//[.,]/}; echo $((10#$t)); }

# cpu_ticks PID: utime+stime of a live PID (all threads), in clock ticks.
cpu_ticks() {
  local line f
  read -r line <"/proc/$1/stat" 2>/dev/null || { echo 0; return; }
  line=${line##*) }
  read -ra f <<<"$line"
  echo $((f[11] + f[12]))
}
hwm_kb() { peak_rss_kb "$1" || echo 0; }

# Stats written by /usr/bin/time -f '%U %S %M': prints "cpu_s rss_kb".
time_stats() {
  awk 'NF == 3 && $1 ~ /^[0-9.]+$/ {c = $1 + $2; m = $3} END {printf "%.2f %d\n", c, m}' "$1" 2>/dev/null
}

# Uftp client ids default to the host's IPv4 address.
uftp_id() { printf '0x%08x' $((0x0a4d0000 + 10 + $1)); }

# Sets RUN_* for one run. RUN_STATUS: ok | dnf | bad.
RUN_STATUS="" RUN_SECS="" RUN_RSS_S=0 RUN_RSS_R=0 RUN_CPU=0 RUN_CPU_R=0 RUN_NOTE=""

# The finish clocks poll every 10 ms without forking, so they cost the
# measured run next to nothing: nap reads with a timeout from a pipe no one
# writes, _alive reads /proc itself.
exec {NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }
_alive() {
  local st
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) }
  [ "${st%% *}" != Z ]
}

# wait_files T0 DEADLINE_US FILE...: polls every 10 ms until every FILE
# exists; prints the seconds from T0 to the last one's appearance.
wait_files() {
  local t0=$1 deadline=$2; shift 2
  local -a left=("$@") next
  local f last=$t0 t
  while [ ${#left[@]} -gt 0 ]; do
    next=()
    t=${EPOCHREALTIME//[.,]/}; t=$((10#$t))
    for f in "${left[@]}"; do
      if [ -f "$f" ]; then last=$t; else next+=("$f"); fi
    done
    left=("${next[@]}")
    [ ${#left[@]} -eq 0 ] && break
    [ "$t" -ge "$deadline" ] && return 1
    nap 0.01
  done
  awk -v a="$t0" -v b="$last" 'BEGIN {printf "%.2f", (b - a) / 1e6}'
}

# wait_pids T0 DEADLINE_US PID...: same, until every PID has exited.
wait_pids() {
  local t0=$1 deadline=$2; shift 2
  local -a left=("$@") next
  local p last=$t0 t
  while [ ${#left[@]} -gt 0 ]; do
    next=()
    t=${EPOCHREALTIME//[.,]/}; t=$((10#$t))
    for p in "${left[@]}"; do
      if _alive "$p"; then next+=("$p"); else last=$t; fi
    done
    left=("${next[@]}")
    [ ${#left[@]} -eq 0 ] && break
    [ "$t" -ge "$deadline" ] && return 1
    nap 0.01
  done
  awk -v a="$t0" -v b="$last" 'BEGIN {printf "%.2f", (b - a) / 1e6}'
}

# verify SHA FILE...: every FILE has sha256 SHA.
verify() {
  local want=$1 f got; shift
  for f in "$@"; do
    got=$(sha256sum <"$f" 2>/dev/null | cut -d' ' -f1)
    [ "$got" = "$want" ] || { log "bad copy: $f"; return 1; }
  done
}

# kill_tree PID...: ends our processes and, for /usr/bin/time wrappers, the
# program they wait on (its direct child), by pid.
kill_tree() {
  local p c kids=()
  for p in "$@"; do
    for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do kids+=("$c"); done
  done
  _kill_pids "${kids[@]}" "$@"
}

# keep_logs TOOL FILE...: copies a failed run's logs to $OUT/failed-*/.
keep_logs() {
  local d f
  d=$OUT/failed-$STAMP/$1-n$((_LAN_N - 1))-$(date -u +%H%M%S)
  shift
  mkdir -p "$d"
  for f in "$@"; do cp -- "$f" "$d/$(basename "$(dirname "$f")")-$(basename "$f")" 2>/dev/null; done
  log "logs of the failed run: $d"
}

# ---- shoal ---------------------------------------------------------------
run_shoal() {
  local n=$1 rate=$2 src=$3 sha=$4 i t0 deadline secs pids=() c0=() c cr t
  local mr=$rate; [ "$rate" = off ] && mr=$UNSHAPED_MAX_RATE
  for ((i = 1; i <= n + 1; i++)); do
    rm -rf "$(rep_dir "$i")"
    rep_start "$i" "net.max_rate=$mr" "settle_ms=$SETTLE_MS" node.log_level=warn
    pids+=("$(rep_pid "$i")")
  done
  # Everyone knows everyone before the clock starts (as with uftp's -H).
  for ((i = 1; i <= n + 1; i++)); do
    wait_until 15 eval '[ "$(sget '"$i"' .peers 2>/dev/null)" = '"$n"' ]' ||
      log "shoal: box $i sees $(sget "$i" .peers) peers, want $n"
  done
  for i in "${!pids[@]}"; do c0[i]=$(cpu_ticks "${pids[i]}"); done
  t0=$(now_us)
  deadline=$((t0 + TIMEOUT * 1000000))
  ln "$src" "$(rep_drop 1)/big.bin"
  local files=()
  for ((i = 2; i <= n + 1; i++)); do files+=("$(rep_drop "$i")/big.bin"); done
  if secs=$(wait_files "$t0" "$deadline" "${files[@]}"); then
    RUN_STATUS=ok RUN_SECS=$secs
  else
    RUN_STATUS=dnf RUN_SECS=$TIMEOUT
  fi
  # The store catches up after a file is published (the WAL checkpoint
  # that waits for the transfer to go quiet): count that CPU too.
  sleep "$SHOAL_CPU_SETTLE"
  c=0 cr=0
  for i in "${!pids[@]}"; do
    t=$(($(cpu_ticks "${pids[i]}") - c0[i])) c=$((c + t))
    [ "$i" -gt 0 ] && cr=$((cr + t))
  done
  RUN_CPU=$(awk -v t="$c" -v k="$CLK_TCK" 'BEGIN {printf "%.2f", t / k}')
  RUN_CPU_R=$(awk -v t="$cr" -v k="$CLK_TCK" 'BEGIN {printf "%.2f", t / k}')
  RUN_RSS_S=$(hwm_kb "${pids[0]}") RUN_RSS_R=0
  for ((i = 1; i <= n; i++)); do
    c=$(hwm_kb "${pids[i]}"); [ "$c" -gt "$RUN_RSS_R" ] && RUN_RSS_R=$c
  done
  local pd=0
  c=0
  for ((i = 2; i <= n + 1; i++)); do
    c=$((c + $(sget "$i" .net.socket.rx_kernel_drops 2>/dev/null || echo 0)))
    pd=$((pd + $(sget "$i" '.net.parity.dropped // 0' 2>/dev/null || echo 0)))
  done
  local rd
  rd=$(sget 1 '.net.rate_decreases // {} | "\(.applied // "?") (asked by \(.queue_reports // "?") full queues, \(.loss_reports // "?") losses)"' 2>/dev/null)
  RUN_NOTE="sender DATA $(sget 1 .net.data_packets_out) (repairs $(sget 1 .net.repair_packets_out)), receivers' socket overflows $c, parity dropped $pd, rate decreases $rd"
  [ "$RUN_STATUS" = ok ] && ! verify "$sha" "${files[@]}" && RUN_STATUS=bad
  [ "$RUN_STATUS" = ok ] || keep_logs shoal "$_LAN_DIR"/h*/log
  _kill_pids "${pids[@]}"
  for ((i = 1; i <= n + 1; i++)); do rm -rf "$(rep_dir "$i")"; done
}

# The bench-only build without encryption; it refuses to start without
# SHOAL_BENCH_UNSAFE=1, which only this run gets.
run_shoal_noaead() {
  SHOALD=$NOAEAD_SHOALD SHOAL_BENCH_UNSAFE=1 run_shoal "$@"
}

run_shoal_base() {
  SHOALD=$BASE_SHOALD run_shoal "$@"
}

# ---- uftp ----------------------------------------------------------------
# uftpd stays up between files, so the receiver is done when the file gets
# its final name (-t: received under a temporary name, renamed at the end).
run_uftp() {
  local n=$1 rate=$2 src=$3 sha=$4 enc=$5 i t0 deadline secs d pids=() c0=() ids=() c
  local run=$_LAN_DIR/uftp kbps=-1 sp st opts=()
  rm -rf "$run"; mkdir -p "$run"
  [ "$rate" != off ] && kbps=$(($(_rate_bps "$rate") / 1000 * 95 / 100))
  [ "$enc" = 1 ] && opts=(-Y aes256-gcm -h sha256)
  for ((i = 2; i <= n + 1; i++)); do
    d=$run/r$i; mkdir -p "$d"
    lan_bg "$i" "$run/r$i.log" uftpd -d -I lan0 -M 239.77.0.30 -p 1044 -D "$d" -t -q \
      -x 1 -B 8388608 -c 8388608 >/dev/null
    pids+=("$LAN_LAST_PID")
    ids+=("$(uftp_id "$i")")
  done
  sleep 0.3
  for i in "${!pids[@]}"; do c0[i]=$(cpu_ticks "${pids[i]}"); done
  t0=$(now_us)
  deadline=$((t0 + TIMEOUT * 1000000))
  lan_bg 1 "$run/sender.log" /usr/bin/time -o "$run/sender.time" -f '%U %S %M' \
    uftp -I lan0 -M 239.77.0.30 -P 239.77.0.31 -p 1044 -t 1 -R "$kbps" -B 8388608 -x 1 \
    -H "$(IFS=,; echo "${ids[*]}")" "${opts[@]}" "$src" >/dev/null
  sp=$LAN_LAST_PID
  local files=()
  for ((i = 2; i <= n + 1; i++)); do files+=("$run/r$i/$(basename "$src")"); done
  if secs=$(wait_files "$t0" "$deadline" "${files[@]}"); then
    RUN_STATUS=ok RUN_SECS=$secs
  else
    RUN_STATUS=dnf RUN_SECS=$TIMEOUT
  fi
  # The sender ends after the last COMPLETE; its stats come from time(1).
  wait_until 10 eval '! _pid_alive '"$sp" || kill_tree "$sp"
  wait "$sp" 2>/dev/null
  c=0
  for i in "${!pids[@]}"; do c=$((c + $(cpu_ticks "${pids[i]}") - c0[i])); done
  read -r st RUN_RSS_S < <(time_stats "$run/sender.time")
  RUN_CPU=$(awk -v t="$c" -v k="$CLK_TCK" -v s="${st:-0}" 'BEGIN {printf "%.2f", t / k + s}')
  RUN_CPU_R=$(awk -v t="$c" -v k="$CLK_TCK" 'BEGIN {printf "%.2f", t / k}')
  RUN_RSS_S=${RUN_RSS_S:-0} RUN_RSS_R=0
  for i in "${!pids[@]}"; do
    c=$(hwm_kb "${pids[i]}"); [ "$c" -gt "$RUN_RSS_R" ] && RUN_RSS_R=$c
  done
  [ "$RUN_STATUS" = ok ] && ! verify "$sha" "${files[@]}" && RUN_STATUS=bad
  [ "$RUN_STATUS" = ok ] || keep_logs uftp "$run"/*.log
  _kill_pids "${pids[@]}"
  rm -rf "$run"
}

# ---- udpcast -------------------------------------------------------------
# udp-receiver writes the file in place and exits when it has all of it.
run_udpcast() {
  local n=$1 rate=$2 src=$3 sha=$4 i t0 deadline secs pids=() sp c cpu=0 m
  local run=$_LAN_DIR/udpcast br=() files=()
  rm -rf "$run"; mkdir -p "$run"
  [ "$rate" != off ] && br=(--max-bitrate "$(($(_rate_bps "$rate") / 1000000 * 95 / 100))m")
  for ((i = 2; i <= n + 1; i++)); do
    files+=("$run/r$i.bin")
    lan_bg "$i" "$run/r$i.log" /usr/bin/time -o "$run/r$i.time" -f '%U %S %M' \
      udp-receiver --interface lan0 --file "$run/r$i.bin" --nokbd --no-progress \
      --portbase 9000 --mcast-rdv-address 239.77.0.40 --ttl 1 >/dev/null
    pids+=("$LAN_LAST_PID")
  done
  sleep 0.3
  t0=$(now_us)
  deadline=$((t0 + TIMEOUT * 1000000))
  lan_bg 1 "$run/sender.log" /usr/bin/time -o "$run/sender.time" -f '%U %S %M' \
    udp-sender --interface lan0 --file "$src" --nokbd --min-receivers "$n" \
    --portbase 9000 --mcast-rdv-address 239.77.0.40 --mcast-data-address 239.77.0.41 \
    --ttl 1 "${br[@]}" >/dev/null
  sp=$LAN_LAST_PID
  if secs=$(wait_pids "$t0" "$deadline" "${pids[@]}"); then
    RUN_STATUS=ok RUN_SECS=$secs
  else
    RUN_STATUS=dnf RUN_SECS=$TIMEOUT
    kill_tree "${pids[@]}"
  fi
  wait_until 10 eval '! _pid_alive '"$sp" || kill_tree "$sp"
  wait "$sp" "${pids[@]}" 2>/dev/null
  read -r cpu RUN_RSS_S < <(time_stats "$run/sender.time")
  RUN_RSS_S=${RUN_RSS_S:-0} RUN_RSS_R=0 RUN_CPU_R=0
  for ((i = 2; i <= n + 1; i++)); do
    read -r c m < <(time_stats "$run/r$i.time")
    cpu=$(awk -v a="${cpu:-0}" -v b="${c:-0}" 'BEGIN {printf "%.2f", a + b}')
    RUN_CPU_R=$(awk -v a="$RUN_CPU_R" -v b="${c:-0}" 'BEGIN {printf "%.2f", a + b}')
    [ "${m:-0}" -gt "$RUN_RSS_R" ] && RUN_RSS_R=$m
  done
  RUN_CPU=$cpu
  [ "$RUN_STATUS" = ok ] && ! verify "$sha" "${files[@]}" && RUN_STATUS=bad
  [ "$RUN_STATUS" = ok ] || keep_logs udpcast "$run"/*.log
  rm -rf "$run"
}

run_tool() {
  case "$1" in
    shoal) run_shoal "${@:2}" ;;
    shoal-noaead) run_shoal_noaead "${@:2}" ;;
    shoal-base) run_shoal_base "${@:2}" ;;
    uftp) run_uftp "${@:2}" 0 ;;
    uftp-enc) run_uftp "${@:2}" 1 ;;
    udpcast) run_udpcast "${@:2}" ;;
    *) fail "unknown tool $1" ;;
  esac
}

# bench_config N SIZE_MB RATE LOSS: REPS interleaved rounds of every tool on
# the LAN that is up (N+1 hosts).
bench_config() {
  local n=$1 size=$2 rate=$3 loss=$4 i rep tool src sha
  for ((i = 1; i <= n + 1; i++)); do
    # htb refuses a "replace" of its own root: remove the old one first.
    lan_rate "$i" off out
    [ "$rate" = off ] || lan_rate "$i" "$rate" out || fail "lan_rate"
  done
  for ((i = 2; i <= n + 1; i++)); do lan_loss "$i" "$loss" || fail "lan_loss"; done
  src=$_LAN_DIR/src/big.bin
  rm -rf "$_LAN_DIR/src"
  make_random_file "$src" "${size}M" || fail "make_random_file"
  sha=$(sha256sum <"$src" | cut -d' ' -f1)
  # Written back now, not during the first run (always shoal's).
  sync
  for ((rep = 1; rep <= REPS; rep++)); do
    for tool in $TOOLS; do
      if [ "$tool" = shoal-noaead ]; then
        [ "$n" = 1 ] || continue
        [ -x "$NOAEAD_SHOALD" ] || { log "no $NOAEAD_SHOALD (make build-bench-noaead): skipped"; continue; }
      fi
      if [ "$tool" = shoal-base ] && [ ! -x "$BASE_SHOALD" ]; then
        log "shoal-base needs BASE_SHOALD (a shoald binary): skipped"
        continue
      fi
      RUN_NOTE=""
      log "n=$n size=${size}MiB rate=$rate loss=$loss% rep=$rep $tool"
      run_tool "$tool" "$n" "$rate" "$src" "$sha"
      # The run's files are gone; the disk may still be busy with them
      # (writeback, and the discards of an ext4 mounted with -o discard),
      # and the next run would pay for it: wait here, off the clock.
      local s0=$(now_us)
      sync
      RUN_NOTE+="${RUN_NOTE:+; }sync after $(( ($(now_us) - s0) / 1000 )) ms"
      log "  -> $RUN_STATUS ${RUN_SECS}s cpu ${RUN_CPU}s (receivers ${RUN_CPU_R}s) rss ${RUN_RSS_S}/${RUN_RSS_R} KiB${RUN_NOTE:+; $RUN_NOTE}"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$size" "$rate" "$loss" \
        "$rep" "$tool" "$RUN_STATUS" "$RUN_SECS" "$RUN_RSS_S" "$RUN_RSS_R" "$RUN_CPU" "$RUN_CPU_R" >>"$RAW"
    done
  done
  rm -rf "$_LAN_DIR/src"
}

# ---- latency (issue target 7) --------------------------------------------
# 4 KiB files dropped one at a time on box 1; time until box 2 has each
# one with the right sha256. Printed as Markdown.
latency() {
  local k t0 t1 f sha us=() deadline
  lan_up 2 || fail "lan_up"
  lan_rate 1 1gbit out; lan_rate 2 1gbit out
  rep_start 1 net.max_rate=1gbit "settle_ms=$SETTLE_MS" node.log_level=warn
  rep_start 2 net.max_rate=1gbit "settle_ms=$SETTLE_MS" node.log_level=warn
  wait_until 15 eval '[ "$(sget 1 .peers)" = 1 ] && [ "$(sget 2 .peers)" = 1 ]' || true
  mkdir -p "$_LAN_DIR/lat"
  for ((k = 0; k < LAT_FILES; k++)); do
    f=$_LAN_DIR/lat/f$k.bin
    head -c 4096 /dev/urandom >"$f"
    sha=$(sha256sum <"$f" | cut -d' ' -f1)
    t0=$(now_us); deadline=$((t0 + 10000000))
    ln "$f" "$(rep_drop 1)/f$k.bin"
    while [ ! -f "$(rep_drop 2)/f$k.bin" ] && [ "$(now_us)" -lt "$deadline" ]; do sleep 0.002; done
    t1=$(now_us)
    if [ -f "$(rep_drop 2)/f$k.bin" ] && verify "$sha" "$(rep_drop 2)/f$k.bin"; then
      us+=($((t1 - t0)))
    else
      us+=(99999999)
    fi
    sleep 0.2
  done
  lan_down
  printf '%s\n' "${us[@]}" | sort -n | awk -v s="$SETTLE_MS" -v n="$LAT_FILES" '
    {v[NR] = $1}
    END {
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      p90 = v[int(NR * 0.9 + 0.5)]
      printf "### Latency: %d files of 4 KiB, box 1 -> box 2, 1gbit, settle_ms=%d\n\n", n, s
      printf "| median | min | p90 | max | target (settle_ms + 100 ms) | met |\n|---|---|---|---|---|---|\n"
      printf "| %.1f ms | %.1f ms | %.1f ms | %.1f ms | %d ms | %s |\n\n", med / 1000, v[1] / 1000, \
        p90 / 1000, v[NR] / 1000, s + 100, (med / 1000 <= s + 100) ? "yes" : "no"
    }'
}

# ---- report --------------------------------------------------------------
report() {
  awk -F'\t' -v reps="$REPS" -v tools="$TOOLS" '
    NR == 1 {next}
    {
      key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
      if (!(key in seen)) {seen[key] = 1; order[++nk] = key}
      t = key SUBSEP $6
      runs[t]++
      if ($7 == "ok") {ok[t]++; secs[t, ok[t]] = $8; cpu[t] += $11; cpur[t] += $12}
      else bad[t] = bad[t] (bad[t] == "" ? "" : ",") $7
      if ($9 > rs[t]) rs[t] = $9
      if ($10 > rr[t]) rr[t] = $10
    }
    function median(t,   n, i, j, x, a) {
      n = ok[t]
      for (i = 1; i <= n; i++) a[i] = secs[t, i]
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {x = a[j]; a[j] = a[j - 1]; a[j - 1] = x}
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      nt = split(tools, tl, " ")
      for (k = 1; k <= nk; k++) {
        split(order[k], c, SUBSEP)
        gib = c[2] / 1024 * c[1]
        printf "### %d receiver%s, %d MiB, rate %s, loss %s%%\n\n", c[1], c[1] == 1 ? "" : "s", c[2], c[3], c[4]
        printf "| tool | seconds (median) | runs ok | MiB/s per receiver | peak RSS sender | peak RSS receiver (max) | CPU s (all hosts) | CPU s (receivers) | CPU s per GiB delivered |\n"
        printf "|---|---|---|---|---|---|---|---|---|\n"
        for (j = 1; j <= nt; j++) {
          t = order[k] SUBSEP tl[j]
          if (!(t in runs)) continue
          if (ok[t] > 0) {
            m = median(t); med[t] = m; cp[t] = cpu[t] / ok[t]
            printf "| %s | %.2f | %d/%d | %.1f | %.1f MiB | %.1f MiB | %.2f | %.2f | %.2f |\n", tl[j], m, ok[t], runs[t], \
              c[2] / m, rs[t] / 1024, rr[t] / 1024, cp[t], cpur[t] / ok[t], cp[t] / gib
          } else {
            printf "| %s | did not finish (%s) | 0/%d | - | %.1f MiB | %.1f MiB | - | - | - |\n", tl[j], bad[t], runs[t], rs[t] / 1024, rr[t] / 1024
          }
        }
        s = order[k] SUBSEP "shoal"
        line = ""
        for (j = 1; j <= nt; j++) {
          if (tl[j] == "shoal") continue
          t = order[k] SUBSEP tl[j]
          if (!(t in runs) || !(s in med)) continue
          if (!(t in med)) {line = line sprintf("- vs %s: %s did not finish\n", tl[j], tl[j]); continue}
          if (tl[j] == "shoal-noaead") {
            line = line sprintf("- AEAD cost: shoal %.2f s, shoal-noaead %.2f s: encryption takes %.1f%% of the throughput (target <= 15%%), CPU %.2fx\n", \
              med[s], med[t], 100 * (1 - med[t] / med[s]), cp[s] / (cp[t] > 0 ? cp[t] : 0.01))
            continue
          }
          line = line sprintf("- vs %s: speed %.2fx (%s seconds / shoal seconds), CPU %.2fx, receiver RSS %.2fx\n", \
            tl[j], med[t] / med[s], tl[j], cp[s] / (cp[t] > 0 ? cp[t] : 0.01), rr[s] / (rr[t] > 0 ? rr[t] : 1))
        }
        if (line != "") printf "\nshoal against the others:\n%s", line
        printf "\n"
      }
    }' "$RAW"
}

plot() {
  [ -n "$PLOT" ] && command -v gnuplot >/dev/null 2>&1 || return 0
  local dat=$OUT/plot-$STAMP.dat tool cmd="" first=1 rate loss ti=0 li
  rate=$(echo "$RATES" | awk '{print $NF}')
  : >"$dat"
  for tool in $TOOLS; do
    ti=$((ti + 1)) li=0
    for loss in $LOSSES; do
      li=$((li + 1))
      echo "# $tool loss $loss" >>"$dat"
      awk -F'\t' -v t="$tool" -v r="$rate" -v l="$loss" -v sz="$SIZE_MB" '
        NR > 1 && $6 == t && $3 == r && $4 == l && $2 == sz && $7 == "ok" {s[$1] += $8; n[$1]++}
        END {for (k in s) print k, sz / (s[k] / n[k])}' "$RAW" | sort -n >>"$dat"
      printf '\n\n' >>"$dat"
      [ $first = 1 ] || cmd+=", "
      first=0
      cmd+="'$dat' index $(( $(grep -c '^# ' "$dat") - 1 )) with linespoints lw $((4 - li)) lc $ti pt $((li == 1 ? 7 : 4)) ps 1.5 title '$tool, loss $loss%'"
    done
  done
  mkdir -p "$(dirname "$PLOT")"
  gnuplot <<EOF || log "gnuplot failed"
set terminal png size 900,560
set output '$PLOT'
set title 'Replication of a ${SIZE_MB} MiB file, rate $rate per host (mean of runs)'
set xlabel 'receivers'
set ylabel 'MiB/s per receiver'
set logscale x 2
set xtics (1, 3, 7, 15, 30)
set yrange [0:*]
set key outside right
set grid
plot $cmd
EOF
}

machine() {
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM"
  echo "- shoal $(git rev-parse --short HEAD 2>/dev/null), $(dpkg-query -W -f='uftp ${Version}' uftp 2>/dev/null), $(dpkg-query -W -f='udpcast ${Version}' udpcast 2>/dev/null)"
  echo "- settings: RECEIVERS='$RECEIVERS' SIZE_MB=$SIZE_MB RATES='$RATES' LOSSES='$LOSSES' REPS=$REPS TIMEOUT=$TIMEOUT EXTRA='$EXTRA'"
  echo "- shoal: settle_ms=$SETTLE_MS, net.max_rate = the shaping rate (${UNSHAPED_MAX_RATE} when unshaped); uftp: -R 95% of the shaping rate in kbit/s (-1 when unshaped), -B/-c 8 MiB; udpcast: --max-bitrate 95% of the shaping rate (none when unshaped)"
}

main() {
  local n rate loss e
  if [ "${1:-}" = --report ]; then
    { echo "## Replication benchmark"; echo; report; } | tee "$RESULTS"
    plot
    return
  fi
  log "results: $RESULTS (raw: $RAW)"
  for n in $RECEIVERS; do
    lan_up $((n + 1)) || fail "lan_up"
    for rate in $RATES; do
      for loss in $LOSSES; do bench_config "$n" "$SIZE_MB" "$rate" "$loss"; done
    done
    lan_down
  done
  for e in $EXTRA; do
    IFS=: read -r n size rate loss <<<"$e"
    lan_up $((n + 1)) || fail "lan_up"
    bench_config "$n" "$size" "$rate" "$loss"
    lan_down
  done
  {
    echo "## Replication benchmark"
    echo
    machine
    echo
    report
    [ "$LATENCY" = 1 ] && latency
  } | tee "$RESULTS"
  plot
  log "wrote $RESULTS"
}
main "$@"
