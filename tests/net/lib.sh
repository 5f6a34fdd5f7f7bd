# shellcheck shell=bash
# Network-namespace LAN harness and small helpers for shoal's black-box tests.
# Source it from a test run at the repo root:  . tests/net/lib.sh
#
# A LAN is one bridge namespace (shoal-<id>-br) and N host namespaces
# (shoal-<id>-h1..hN), each host with one veth "lan0" = 10.77.0.(10+i)/24
# plugged into the bridge. <id> is the pid of the shell that called lan_up,
# so leftovers of a killed run can be recognised (the pid is gone) and
# removed by the next run. Nothing is created in the caller's namespace and
# hosts have no default route: traffic stays on loopback or on the bridge.
# lan_up installs an EXIT/INT/TERM trap that tears everything down; scripts
# that need more cleanup register it with at_exit rather than their own trap.
#
# Works under `set -euo pipefail`; functions return non-zero on failure rather than
# exiting, except fail (and skip_unless_root), which exit the current shell.

BUILD=${BUILD:-build}
SHOAL_LAN_MAX=50             # hosts per LAN
SHOAL_LAN_DEV=lan0           # host-side interface name in every host namespace
# 1: lan0 gets NAPI GRO (ethtool -K lan0 gro on), as a real NIC has, so the
# kernel may coalesce a flow's datagrams for sockets that ask with UDP_GRO.
SHOAL_LAN_GRO=${SHOAL_LAN_GRO:-0}
SHOAL_TEST_KEY=${SHOAL_TEST_KEY:-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff}

_LAN_ID=""                   # pid that owns the current LAN; "" = none
_LAN_N=0
_LAN_DIR=""                  # state: recorded pids
_LAN_OWNER=""                # $BASHPID of the shell whose trap cleans up
_LAN_EXIT_CMDS=()            # at_exit commands, run in reverse order
LAN_LAST_PID=""              # pid of the last lan_bg started in this shell

# fail MSG...: prints "FAIL: MSG" to stderr and exits 1 (the trap cleans up).
# Inside $(...) it only ends the substitution; check the result there.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# skip_unless_root: when not root, prints "SKIP: reason" and exits 0. As root
# it checks that ip, nft, tc and `ip netns` work and fails loudly otherwise:
# CI runs as root, so a missing tool there is a broken runner, not a skip.
skip_unless_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: $(basename "$0") needs root for network namespaces (uid $(id -u))"
    exit 0
  fi
  local t
  for t in ip nft tc sha256sum; do
    command -v "$t" >/dev/null 2>&1 || fail "running as root but '$t' is not installed"
  done
  if [ "$SHOAL_LAN_GRO" = 1 ] && ! command -v ethtool >/dev/null 2>&1; then
    fail "SHOAL_LAN_GRO=1 needs ethtool"
  fi
  ip netns list >/dev/null 2>&1 || fail "running as root but 'ip netns' does not work"
}

# at_exit CMD...: runs CMD (one string, eval'd) when the script exits or is
# interrupted, before the LAN is torn down; later registrations run first.
at_exit() {
  _lan_install_trap
  _LAN_EXIT_CMDS+=("$*")
}

# Traps are per shell: a subshell gets its own, and the exit commands it
# inherited belong to the parent, so they are dropped.
_lan_install_trap() {
  [ "$_LAN_OWNER" = "$BASHPID" ] && return 0
  _LAN_OWNER=$BASHPID
  _LAN_EXIT_CMDS=()
  trap '_lan_on_exit' EXIT
  trap '_lan_on_signal 130' INT
  trap '_lan_on_signal 143' TERM
}

# Only a LAN this very shell created is torn down by its trap; one inherited
# by a subshell stays up for the parent.
_lan_on_exit() {
  local -
  set +e
  local i
  for ((i = ${#_LAN_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
    eval "${_LAN_EXIT_CMDS[i]}"
  done
  _LAN_EXIT_CMDS=()
  [ "$_LAN_ID" = "$BASHPID" ] && lan_down
  return 0
}

_lan_on_signal() {
  trap - EXIT INT TERM
  echo "interrupted: cleaning up" >&2
  _lan_on_exit
  exit "$1"
}

# True when $1 is a decimal integer in [$2, $3] (no sign, at most 9 digits).
_uint_in() {
  [[ $1 =~ ^[0-9]{1,9}$ ]] && [ $((10#$1)) -ge "$2" ] && [ $((10#$1)) -le "$3" ]
}

# True while PID runs (a zombie counts as gone).
_pid_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# Sends TERM to every pid given, waits up to 2 s, then KILLs what is left.
# Bash reports "Killed"/"Terminated" for its own children whenever it reaps
# them; that noise goes to /dev/null, our one message to the real stderr.
_kill_pids() {
  [ $# -eq 0 ] && return 0
  local err
  exec {err}>&2
  _kill_pids_quiet "$err" "$@" 2>/dev/null
  exec {err}>&-
  return 0
}

_kill_pids_quiet() {
  local -
  set +e
  local err=$1 p i live
  shift
  kill -TERM "$@"
  for ((i = 0; i < 20; i++)); do
    live=()
    for p in "$@"; do _pid_alive "$p" && live+=("$p"); done
    [ ${#live[@]} -eq 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do
    if _pid_alive "$p"; then
      echo "lan: pid $p ignored TERM; sending KILL" >&"$err"
      kill -KILL "$p"
    fi
  done
  for p in "$@"; do wait "$p"; done  # reap our own children
}

# Namespaces of a LAN id (bridge last so hosts unplug first).
_lan_all_ns() {
  ip netns list 2>/dev/null | awk -v pfx="shoal-$1-" 'index($1, pfx) == 1 {print $1}' | sort -r
}

# lan_reap_stale: deletes namespaces named shoal-<pid>-* (and /tmp state
# dirs shoal-lan-<pid>.*) whose <pid> no longer runs, killing what is still
# inside them. lan_up calls it; a killed earlier run leaves such things.
lan_reap_stale() {
  local -
  set +e
  local ns pid d pids
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^shoal-[0-9]+-'); do
    pid=${ns#shoal-}; pid=${pid%%-*}
    [ -d "/proc/$pid" ] && continue
    echo "lan: removing stale namespace $ns (pid $pid is gone)" >&2
    pids=$(ip netns pids "$ns" 2>/dev/null)
    # shellcheck disable=SC2086
    [ -n "$pids" ] && _kill_pids $pids
    ip netns del "$ns" 2>/dev/null
  done
  for d in /tmp/shoal-lan-*.*; do
    [ -d "$d" ] || continue
    pid=${d#/tmp/shoal-lan-}; pid=${pid%%.*}
    [[ $pid =~ ^[0-9]+$ ]] && [ ! -d "/proc/$pid" ] && rm -rf -- "$d"
  done
  return 0
}

# lan_ns I: name of host I's namespace; "br" (or 0) gives the bridge's.
lan_ns() {
  case "$1" in
    br | 0) echo "shoal-$_LAN_ID-br" ;;
    *) echo "shoal-$_LAN_ID-h$1" ;;
  esac
}

# lan_ip I: host I's address, 10.77.0.(10+I).
lan_ip() { echo "10.77.0.$((10 + $1))"; }

# lan_dev: name of the LAN interface inside every host namespace.
lan_dev() { echo "$SHOAL_LAN_DEV"; }

# lan_count: number of hosts of the current LAN (0 when none is up).
lan_count() { echo "$_LAN_N"; }

# lan_exec I CMD...: runs CMD in host I's namespace ("br" for the bridge's)
# in the foreground and returns its status.
lan_exec() {
  local ns
  ns=$(lan_ns "$1"); shift
  ip netns exec "$ns" "$@"
}

# lan_bg I LOGFILE CMD...: starts CMD in host I's namespace in the
# background with stdout+stderr to LOGFILE, records its pid for lan_down and
# prints the pid. `pid=$(lan_bg ...)` works (lan_wait still sees the exit, not
# the status); call it plainly and read $LAN_LAST_PID to `wait` for status.
lan_bg() {
  local ns=$1 log=$2
  shift 2
  [ -n "$_LAN_DIR" ] || { echo "lan_bg: no LAN is up" >&2; return 1; }
  ns=$(lan_ns "$ns")
  ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
  LAN_LAST_PID=$!
  echo "$LAN_LAST_PID" >>"$_LAN_DIR/pids"
  echo "$LAN_LAST_PID"
}

# lan_wait PID TIMEOUT_S: waits (bounded) for a lan_bg process to end.
# Returns its exit status if it is a child of this shell, 0 if it ended but
# is not our child, and 124 after TERM/KILLing it when time ran out.
lan_wait() {
  local pid=$1
  if ! wait_until "$2" eval '! _pid_alive '"$pid"; then
    _kill_pids "$pid"
    return 124
  fi
  wait "$pid" 2>/dev/null
  local rc=$?
  [ "$rc" -eq 127 ] && rc=0  # not our child: status unknown
  return "$rc"
}

# lan_up N [--mtu BYTES] [--ipv6]: builds the LAN described at the top with
# N (1..50) hosts: bridge br0 with multicast snooping off (no IGMP querier
# exists, and snooping would otherwise start filtering 239.x once it sees
# reports), veths p<i> <-> lan0, lo up, route 224.0.0.0/4 dev lan0 in every
# host, IPv6 disabled (no DAD/MLD/RS chatter skewing counts) unless --ipv6.
# Only namespaced sysctls are touched; net.core.rmem_max/wmem_max are
# read-only in a child netns (they mirror the host), so receivers that want
# big buffers use SO_RCVBUFFORCE as root instead. Registers the cleanup trap.
lan_up() {
  local n=${1:-} mtu=1500 ipv6=0 i
  shift || true
  while [ $# -gt 0 ]; do
    case "$1" in
      --mtu) mtu=${2:-}; shift 2 || return 1 ;;
      --ipv6) ipv6=1; shift ;;
      *) echo "lan_up: unknown option $1" >&2; return 1 ;;
    esac
  done
  _uint_in "$n" 1 "$SHOAL_LAN_MAX" ||
    { echo "lan_up: host count must be 1..$SHOAL_LAN_MAX, got '$n'" >&2; return 1; }
  _uint_in "$mtu" 576 65535 || { echo "lan_up: bad --mtu '$mtu'" >&2; return 1; }
  if [ "$_LAN_ID" = "$BASHPID" ]; then
    echo "lan_up: a LAN is already up in this shell; lan_down first" >&2
    return 1
  fi
  lan_reap_stale
  _lan_install_trap
  # A subshell inherits the parent's LAN variables; its own LAN replaces them.
  _LAN_ID=$BASHPID _LAN_N=$n
  _LAN_DIR=$(mktemp -d "/tmp/shoal-lan-$_LAN_ID.XXXXXX") || return 1
  : >"$_LAN_DIR/pids"
  _lan_make_bridge "$mtu" "$ipv6" || { lan_down; return 1; }
  for ((i = 1; i <= n; i++)); do
    _lan_make_host "$i" "$mtu" "$ipv6" || { lan_down; return 1; }
  done
}

_lan_make_bridge() {
  local ns mtu=$1 ipv6=$2
  ns=$(lan_ns br)
  ip netns add "$ns" || return 1
  ip -n "$ns" link set lo up &&
    ip -n "$ns" link add br0 mtu "$mtu" type bridge stp_state 0 forward_delay 0 \
      mcast_snooping 0 &&
    ip -n "$ns" link set br0 up || return 1
  # A switch does not run the host's firewall. Where br_netfilter is loaded
  # (container runtimes load it), every bridged frame would also go through
  # the iptables hooks, about a tenth of the sending host's CPU with 7
  # receivers; those sysctls are per namespace, so turn them off in the
  # bridge's.
  if ip netns exec "$ns" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
    ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=0 \
      net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0 || return 1
  fi
  [ "$ipv6" = 1 ] || ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1
}

_lan_make_host() {
  local i=$1 mtu=$2 ipv6=$3 ns br dev=$SHOAL_LAN_DEV
  ns=$(lan_ns "$i") br=$(lan_ns br)
  ip netns add "$ns" || return 1
  [ "$ipv6" = 1 ] || ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1 || return 1
  ip -n "$br" link add "p$i" mtu "$mtu" type veth peer name "$dev" netns "$ns" mtu "$mtu" &&
    ip -n "$br" link set "p$i" master br0 &&
    ip -n "$br" link set "p$i" up &&
    ip -n "$ns" link set lo up &&
    ip -n "$ns" addr add "$(lan_ip "$i")/24" dev "$dev" &&
    ip -n "$ns" link set "$dev" up &&
    ip -n "$ns" route add 224.0.0.0/4 dev "$dev" &&
    # veth would carry a UDP GSO batch to the receiving socket as one packet,
    # and a loss rule would drop whole batches. Like a NIC, segment it on the
    # way out: every datagram crosses the qdisc, bridge and rules on its own.
    ip -n "$ns" link set "$dev" gso_max_segs 1 || return 1
    # GRO coalesces only after the bridge, where lan_loss drops datagrams.
    # veth uses NAPI (and so GRO) only for packets from a peer without TSO.
    if [ "$SHOAL_LAN_GRO" = 1 ]; then
      ip netns exec "$ns" ethtool -K "$dev" gro on >/dev/null &&
        ip netns exec "$br" ethtool -K "p$i" tso off >/dev/null || return 1
    fi
}

# lan_down: kills every recorded process and every process still inside the
# LAN's namespaces (TERM, KILL after 2 s), deletes the namespaces (which
# takes their veths, qdiscs and nft tables along) and the state dir.
# Idempotent; runs from the trap, callable directly.
lan_down() {
  [ -n "$_LAN_ID" ] || return 0
  local -
  set +e
  local ns pids=() p
  if [ -n "$_LAN_DIR" ] && [ -f "$_LAN_DIR/pids" ]; then
    while read -r p; do _pid_alive "$p" && pids+=("$p"); done <"$_LAN_DIR/pids"
  fi
  for ns in $(_lan_all_ns "$_LAN_ID"); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do pids+=("$p"); done
  done
  _kill_pids "${pids[@]}"
  for ns in $(_lan_all_ns "$_LAN_ID"); do
    ip netns del "$ns" 2>/dev/null || echo "lan_down: could not delete $ns" >&2
  done
  [ -n "$_LAN_DIR" ] && rm -rf -- "$_LAN_DIR"
  _LAN_ID="" _LAN_N=0 _LAN_DIR=""
  return 0
}

# lan_loss I PCT: host I loses PCT% (0..100) of the UDP datagrams sent to
# it over the LAN, chosen at random per datagram, by an nftables table
# "netdev shoal_loss_hI" in the bridge namespace, hooked on the egress of
# port pI only: after the bridge, before host I's lan0 could coalesce
# datagrams with GRO (SHOAL_LAN_GRO=1), so loss hits single datagrams as on
# a real wire. Every host draws on its own, also for flooded multicast.
# Loopback traffic is not touched. PCT 0 removes the table.
# A datagram's copy towards host I passes host I's two rules and no other
# host's: the cost (paid in the softirq of whoever sends, as the bridge is)
# grows with the number of lossy ports a datagram reaches, not with its
# square, as it did when each host's table hooked the bridge's forward path
# and matched its port by name.
lan_loss() {
  local i=$1 pct=$2 t
  _uint_in "$pct" 0 100 ||
    { echo "lan_loss: PCT must be 0..100, got '$pct'" >&2; return 1; }
  t=shoal_loss_h$i
  if [ "$pct" -eq 0 ]; then
    lan_exec br nft delete table netdev "$t" 2>/dev/null || true
    return 0
  fi
  # "add table; delete table" makes the replacement work whether or not
  # the table exists, in one atomic transaction. The first rule counts
  # every UDP datagram towards host I (lan_loss_seen), the second drops.
  lan_exec br nft -f - <<EOF2
add table netdev $t
delete table netdev $t
table netdev $t {
  chain egress {
    type filter hook egress device "p$i" priority -10; policy accept;
    meta l4proto udp counter
    meta l4proto udp numgen random mod 100 < $pct counter drop
  }
}
EOF2
}

# _lan_loss_counter I K: packets of the K-th counter in host I's loss table.
_lan_loss_counter() {
  lan_exec br nft list table netdev "shoal_loss_h$1" 2>/dev/null |
    awk -v want="$2" '/counter packets/ {
           if (++n == want) for (k = 1; k < NF; k++) if ($k == "packets") {print $(k + 1); exit}
         }
         END {if (n < want) print 0}'
}

# lan_loss_drops I: datagrams host I's loss rule has dropped so far (0 if none).
lan_loss_drops() { _lan_loss_counter "$1" 2; }

# lan_loss_seen I: UDP datagrams that reached host I's loss rule (dropped or not).
lan_loss_seen() { _lan_loss_counter "$1" 1; }

# Rate in bits/s from tc syntax N{bit,kbit,mbit,gbit} (decimal units).
_rate_bps() {
  [[ $1 =~ ^([0-9]+)(bit|kbit|mbit|gbit)$ ]] || return 1
  local n=${BASH_REMATCH[1]}
  case "${BASH_REMATCH[2]}" in
    bit) echo "$n" ;;
    kbit) echo $((n * 1000)) ;;
    mbit) echo $((n * 1000000)) ;;
    gbit) echo $((n * 1000000000)) ;;
  esac
}

# Puts (or with RATE "off" removes) an htb limit on DEV's egress in NS.
_shape_dev() {
  local ns=$1 dev=$2 rate=$3 bps burst
  if [ "$rate" = off ]; then
    tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
    return 0
  fi
  bps=$(_rate_bps "$rate") || return 1
  # Burst of 4 ms at the rate (one tick at HZ=250), at least 32 KiB so
  # slow rates still pass a full 64 KiB datagram's fragments smoothly.
  burst=$((bps / 8 / 250))
  [ "$burst" -lt 32768 ] && burst=32768
  tc -n "$ns" qdisc replace dev "$dev" root handle 1: htb default 1 &&
    tc -n "$ns" class replace dev "$dev" parent 1: classid 1:1 htb rate "$rate" \
      ceil "$rate" burst "$burst" cburst "$burst" quantum 60000
}

# lan_rate I RATE [out|in|both]: limits host I to RATE (tc syntax: 500kbit,
# 100mbit, 1gbit) with an htb qdisc. "out" (default) shapes lan0's egress,
# which also backpressures the sending socket; "in" shapes the bridge port
# towards host I, so what host I receives is limited (excess beyond the
# 1000-packet queue is dropped, like a slow link). RATE "off" removes it.
lan_rate() {
  local i=$1 rate=$2 dir=${3:-out}
  [ "$rate" = off ] || _rate_bps "$rate" >/dev/null ||
    { echo "lan_rate: bad RATE '$rate' (e.g. 100mbit, 1gbit, off)" >&2; return 1; }
  case "$dir" in
    out) _shape_dev "$(lan_ns "$i")" "$SHOAL_LAN_DEV" "$rate" ;;
    in) _shape_dev "$(lan_ns br)" "p$i" "$rate" ;;
    both) _shape_dev "$(lan_ns "$i")" "$SHOAL_LAN_DEV" "$rate" &&
      _shape_dev "$(lan_ns br)" "p$i" "$rate" ;;
    *) echo "lan_rate: direction must be out, in or both" >&2; return 1 ;;
  esac
}

# Tenths of a second in a decimal number of seconds ("2", "0.5", "1.25").
_tenths() {
  [[ $1 =~ ^([0-9]+)(\.([0-9]))?[0-9]*$ ]] || return 1
  echo $((10#${BASH_REMATCH[1]} * 10 + 10#${BASH_REMATCH[3]:-0}))
}

# wait_until TIMEOUT_S CMD...: runs CMD every 0.1 s until it succeeds
# (returns 0) or TIMEOUT_S (decimal, at most 600) passes (returns 1).
wait_until() {
  local tenths deadline i us
  tenths=$(_tenths "$1") || tenths=-1
  _uint_in "$tenths" 0 6000 || { echo "wait_until: bad timeout '$1'" >&2; return 2; }
  shift
  us=${EPOCHREALTIME//[.,]/}
  deadline=$((10#$us + tenths * 100000))
  for ((i = 0; i <= tenths; i++)); do
    "$@" && return 0
    us=${EPOCHREALTIME//[.,]/}
    [ $((10#$us)) -ge "$deadline" ] && return 1
    sleep 0.1
  done
  return 1
}

# tree_sums DIR: "sha256  relative/path" for every regular file under DIR
# (hidden and temporary files included), sorted bytewise, so two trees
# compare with diff. Prints nothing for an empty tree; fails if DIR is missing.
tree_sums() {
  [ -d "$1" ] || { echo "tree_sums: no directory $1" >&2; return 1; }
  (cd "$1" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0r sha256sum --)
}

# make_random_file PATH SIZE: PATH gets SIZE bytes from /dev/urandom. SIZE
# takes head -c suffixes (K/M/G = 1024-based, KB/MB = 1000-based).
make_random_file() {
  mkdir -p -- "$(dirname -- "$1")" && head -c "$2" /dev/urandom >"$1"
}

# make_tree DIR COUNT: COUNT (1..100000) random files of 1..100 KiB under
# DIR, spread over subdirectories at most 3 levels deep.
make_tree() {
  local dir=$1 count=$2 i sub size
  _uint_in "$count" 1 100000 ||
    { echo "make_tree: COUNT must be 1..100000" >&2; return 1; }
  for ((i = 0; i < count; i++)); do
    case $((RANDOM % 4)) in
      0) sub="" ;;
      1) sub="d$((RANDOM % 4))/" ;;
      2) sub="d$((RANDOM % 4))/e$((RANDOM % 3))/" ;;
      3) sub="d$((RANDOM % 4))/e$((RANDOM % 3))/f$((RANDOM % 2))/" ;;
    esac
    size=$((1024 + (RANDOM * 32768 + RANDOM) % (100 * 1024 - 1024 + 1)))
    mkdir -p -- "$dir/$sub" && head -c "$size" /dev/urandom >"$dir/${sub}file$i.bin" ||
      return 1
  done
}

# peak_rss_kb PID: peak resident set size (VmHWM) of a running PID, in KiB.
peak_rss_kb() {
  awk '/^VmHWM:/ {print $2; found = 1} END {exit !found}' "/proc/$1/status" 2>/dev/null
}

# build_tool NAME: builds $BUILD/tools/NAME from tests/tools/NAME.cc when it
# is missing or older than its source, and prints its path.
build_tool() {
  local src="tests/tools/$1.cc" out="$BUILD/tools/$1"
  [ -f "$src" ] || { echo "build_tool: no $src" >&2; return 1; }
  if [ ! -x "$out" ] || [ "$src" -nt "$out" ]; then
    mkdir -p "$BUILD/tools" || return 1
    if ! g++ -std=c++20 -O2 -Wall -Wextra -o "$out.tmp.$$" "$src"; then
      rm -f "$out.tmp.$$"
      return 1
    fi
    mv -f "$out.tmp.$$" "$out" || return 1
  fi
  echo "$out"
}

# shoal_conf DIR NAME BIND PORT GROUP [EXTRA...]: writes DIR/shoald.conf for
# one test node and prints its path. Creates DIR/drop and DIR/state, and
# DIR/share.key (mode 0600) holding $SHOAL_TEST_KEY if absent, so nodes made
# this way share one key. GROUP is "addr:port" for share "s". Each EXTRA
# "key=value" goes into [share s] and replaces that key's default;
# "node.k=v", "net.k=v" and "control.k=v" go into that section instead.
# From the first EXTRA without "=" (e.g. "[share t]") on, lines are appended
# verbatim at the end of the file.
shoal_conf() {
  [ $# -ge 5 ] || { echo "shoal_conf: DIR NAME BIND PORT GROUP [EXTRA...]" >&2; return 1; }
  local dir=$1 name=$2 bind=$3 port=$4 group=$5
  shift 5
  mkdir -p "$dir/drop" "$dir/state" || return 1
  if [ ! -f "$dir/share.key" ]; then
    (umask 077 && echo "$SHOAL_TEST_KEY" >"$dir/share.key") || return 1
  fi
  local -A over=()
  local -a keys=() raw=()
  local line key
  for line in "$@"; do
    if [ ${#raw[@]} -gt 0 ] || [[ $line != *=* ]]; then raw+=("$line"); continue; fi
    key=${line%%=*}; key=${key//[[:space:]]/}
    [[ $key == node.* || $key == net.* || $key == control.* ]] || key="share.$key"
    line=${line#*=}; line=${line#"${line%%[![:space:]]*}"}
    [ -n "${over[$key]+x}" ] || keys+=("$key")
    over[$key]=$line
  done
  {
    _conf_section over keys node "[node]" name "$name" state_dir "$dir/state" log_level debug
    _conf_section over keys net "[net]" bind "$bind" port "$port" multicast on
    _conf_section over keys control "[control]" socket "$dir/ctl.sock"
    _conf_section over keys share "[share s]" path "$dir/drop" group "$group" \
      key_file "$dir/share.key" settle_ms 100
    for line in "${raw[@]}"; do echo "$line"; done
  } >"$dir/shoald.conf" || return 1
  echo "$dir/shoald.conf"
}

# _conf_section OVER KEYS SEC HEADER [k v]...: prints HEADER, the defaults
# not overridden in assoc array OVER, then OVER's SEC.* keys in KEYS order.
_conf_section() {
  local -n _over=$1 _keys=$2
  local sec=$3 k
  echo "$4"
  shift 4
  while [ $# -ge 2 ]; do
    [ -n "${_over[$sec.$1]+x}" ] || echo "$1 = $2"
    shift 2
  done
  for k in "${_keys[@]}"; do
    [ "${k%%.*}" = "$sec" ] && echo "${k#*.} = ${_over[$k]}"
  done
  echo
}
