#!/usr/bin/env bash
# Self-test of the netns LAN harness (tests/net/lib.sh) and udp_probe:
# stale-run reaping, topology, unicast and multicast delivery, random loss,
# htb rate limits, and that cleanup leaves nothing behind after a normal
# lan_down, an `exit 1` or `fail` midway, and a TERM. Runs in ~15 s as root;
# prints SKIP and passes when not root.
set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/net/lib.sh
. tests/net/lib.sh
skip_unless_root

PROBE=$(build_tool udp_probe) || fail "cannot build udp_probe"
T=$(mktemp -d /tmp/shoal-t-harness.XXXXXX) || fail "mktemp"
at_exit "rm -rf -- '$T'"
GROUP=239.77.0.1

step() { echo "== $*"; }
expect_eq() {  # what got want
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
  echo "ok   $1 = $2"
}
expect_range() {  # what got lo hi
  if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
    fail "$1: got '$2', want $3..$4"
  fi
  echo "ok   $1 = $2 (in $3..$4)"
}
our_ns() { ip netns list | awk -v p="shoal-$1-" 'index($1, p) == 1' | wc -l; }

# recv_start NAME HOST ARGS...: udp_probe recv in HOST, logging to $T/NAME.log;
# returns once it is listening. recv_count/recv_span read the result after
# recv_done NAME has waited for it.
declare -A RECV_PID=()
recv_start() {
  local name=$1 host=$2
  shift 2
  rm -f "$T/$name.ready"
  lan_bg "$host" "$T/$name.log" "$PROBE" recv --ready "$T/$name.ready" "$@" >/dev/null
  RECV_PID[$name]=$LAN_LAST_PID
  wait_until 5 test -e "$T/$name.ready" || { cat "$T/$name.log"; fail "receiver $name not ready"; }
}
recv_done() { lan_wait "${RECV_PID[$1]}" 15 || fail "receiver $1 exited with $?: $(cat "$T/$1.log")"; }
recv_count() { grep -m1 -xE '[0-9]+' "$T/$1.log"; }
recv_span() { sed -n 's/.*span_ms=\([0-9]*\).*/\1/p' "$T/$1.log"; }
send() {  # HOST ARGS...
  local host=$1
  shift
  lan_exec "$host" "$PROBE" send --bind "$(lan_ip "$host")" "$@" >/dev/null 2>"$T/send.err" ||
    fail "send from h$host failed: $(cat "$T/send.err")"
}

step "stale namespaces of a dead run are reaped"
sleep 0 & dead=$!
wait "$dead"
[ -d "/proc/$dead" ] && fail "pid $dead unexpectedly alive"
at_exit "ip netns del shoal-$dead-h1 2>/dev/null"
ip netns add "shoal-$dead-h1" || fail "cannot create a network namespace"
ip netns exec "shoal-$dead-h1" sleep 60 &
stale_proc=$!
mkdir "/tmp/shoal-lan-$dead.test"

step "lan_up 3"
lan_up 3 || fail "lan_up 3"
expect_eq "stale namespaces left" "$(our_ns "$dead")" 0
wait_until 2 eval '! _pid_alive '"$stale_proc" || fail "process in stale namespace survived"
[ -e "/tmp/shoal-lan-$dead.test" ] && fail "stale state dir survived"
expect_eq "namespaces" "$(our_ns $$)" 4
expect_eq "h2 address" "$(lan_exec 2 ip -4 -o addr show dev lan0 | awk '{print $4}')" 10.77.0.12/24
expect_eq "h3 multicast route" "$(lan_exec 3 ip route show 224.0.0.0/4)" "224.0.0.0/4 dev lan0 scope link "
expect_eq "bridge snooping" "$(lan_exec br cat /sys/class/net/br0/bridge/multicast_snooping)" 0
lan_exec 1 ip route get 192.0.2.1 >/dev/null 2>&1 && fail "h1 has a route off the test LAN"
echo "ok   no route off the LAN"

step "unicast between every pair"
for pair in 1:2 2:3 3:1; do
  src=${pair%:*} dst=${pair#*:}
  recv_start "u$dst" "$dst" --listen "$(lan_ip "$dst"):5001" --expect 200 --timeout 10
done
for pair in 1:2 2:3 3:1; do
  src=${pair%:*} dst=${pair#*:}
  send "$src" --to "$(lan_ip "$dst"):5001" --count 200 --size 500 --rate 20000
done
for dst in 1 2 3; do
  recv_done "u$dst"
  expect_eq "unicast to h$dst" "$(recv_count "u$dst")" 200
done

step "multicast from h1 reaches h2 and h3, not other groups"
recv_start m2 2 --group "$GROUP:5100" --bind "$(lan_ip 2)" --expect 500 --timeout 10
recv_start m3 3 --group "$GROUP:5100" --bind "$(lan_ip 3)" --expect 500 --timeout 10
recv_start other 3 --group 239.77.0.2:5100 --bind "$(lan_ip 3)" --timeout 1.5
send 1 --to "$GROUP:5100" --count 500 --size 1200 --random --rate 20000
for r in m2 m3 other; do recv_done "$r"; done
expect_eq "multicast at h2" "$(recv_count m2)" 500
expect_eq "multicast at h3" "$(recv_count m3)" 500
expect_eq "other group at h3" "$(recv_count other)" 0

step "30% loss on h3"
lan_loss 3 30 || fail "lan_loss 3 30"
recv_start l2 2 --group "$GROUP:5200" --bind "$(lan_ip 2)" --expect 1000 --timeout 10
recv_start l3 3 --group "$GROUP:5200" --bind "$(lan_ip 3)" --timeout 10 --idle 1
send 1 --to "$GROUP:5200" --count 1000 --rate 20000
recv_done l2
recv_done l3
expect_eq "no loss at h2" "$(recv_count l2)" 1000
expect_range "received at h3" "$(recv_count l3)" 500 900
expect_eq "drops + received at h3" $(($(lan_loss_drops 3) + $(recv_count l3))) 1000
lan_loss 3 0 || fail "lan_loss 3 0"
expect_eq "loss tables after lan_loss 0" "$(lan_exec br nft list tables | grep -c shoal_loss)" 0
recv_start l3b 3 --group "$GROUP:5200" --bind "$(lan_ip 3)" --expect 200 --timeout 10
send 1 --to "$GROUP:5200" --count 200 --rate 20000
recv_done l3b
expect_eq "h3 after loss removed" "$(recv_count l3b)" 200

# 500 x 1000 B at 4 Mbit/s takes ~1 s; unshaped it takes a few ms.
step "rate limits"
rate_round() {  # NAME: 500 x 1000 B from h1 to h2 as fast as possible
  recv_start "$1" 2 --listen "$(lan_ip 2):5300" --expect 500 --timeout 10
  send 1 --to "$(lan_ip 2):5300" --count 500 --size 1000
  recv_done "$1"
  expect_eq "$1 count" "$(recv_count "$1")" 500
}
lan_rate 1 4mbit || fail "lan_rate 1 4mbit"
lan_exec 1 tc qdisc show dev lan0 | grep -q htb || fail "no htb qdisc on h1"
rate_round r_out
expect_range "h1 egress-shaped span_ms" "$(recv_span r_out)" 600 5000
lan_rate 1 off || fail "lan_rate 1 off"
lan_rate 2 4mbit in || fail "lan_rate 2 4mbit in"
rate_round r_in
expect_range "h2 ingress-shaped span_ms" "$(recv_span r_in)" 600 5000
lan_rate 2 off in || fail "lan_rate 2 off in"
rate_round r_none
expect_range "unshaped span_ms" "$(recv_span r_none)" 0 300

step "cleanup on failure in a subshell leaves the parent's LAN alone"
(
  lan_up 2 >/dev/null || exit 2
  echo "$BASHPID" >"$T/sub.id"
  lan_bg 1 /dev/null sleep 60 >"$T/sub.pid"
  exit 1
)
expect_eq "subshell status" $? 1
expect_eq "subshell namespaces" "$(our_ns "$(cat "$T/sub.id")")" 0
_pid_alive "$(cat "$T/sub.pid")" && fail "subshell's background process survived"
[ -d "$T" ] || fail "subshell ran the parent's at_exit commands"
expect_eq "parent namespaces still up" "$(our_ns $$)" 4
(
  lan_up 1 >/dev/null || exit 2
  echo "$BASHPID" >"$T/fail.id"
  fail "deliberate failure" 2>/dev/null
)
expect_eq "fail status" $? 1
expect_eq "namespaces after fail" "$(our_ns "$(cat "$T/fail.id")")" 0

step "cleanup on TERM"
BUILD=$BUILD bash -c '. tests/net/lib.sh
  lan_up 2 || exit 2
  lan_bg 2 /dev/null sleep 60 >"$1/term.pid"
  echo $$ >"$1/term.id"
  wait_until 30 false' term "$T" &
term_shell=$!
wait_until 10 test -s "$T/term.id" || fail "TERM child did not start"
kill -TERM "$term_shell"
lan_wait "$term_shell" 10
expect_eq "TERM exit status" $? 143
expect_eq "namespaces after TERM" "$(our_ns "$(cat "$T/term.id")")" 0
_pid_alive "$(cat "$T/term.pid")" && fail "process survived TERM cleanup"

step "lan_down kills stubborn and unrecorded processes"
# shellcheck disable=SC2016  # $1 is for the inner bash
lan_bg 3 /dev/null bash -c 'trap "" TERM; touch "$1"; sleep 60' stubborn "$T/stubborn" >/dev/null
stubborn=$LAN_LAST_PID
lan_exec 2 sleep 60 2>/dev/null &  # its subshell would report "Terminated"
unrecorded=$!
state_dir=$_LAN_DIR
wait_until 5 test -e "$T/stubborn" || fail "stubborn process did not start"
# shellcheck disable=SC2016  # expanded by eval on every poll
wait_until 5 eval '[ -n "$(ip netns pids "$(lan_ns 2)")" ]' || fail "unrecorded process did not start"
t0=$EPOCHSECONDS
lan_down
expect_range "lan_down seconds (TERM, then KILL after 2 s)" $((EPOCHSECONDS - t0)) 2 5
expect_eq "namespaces after lan_down" "$(our_ns $$)" 0
_pid_alive "$stubborn" && fail "TERM-ignoring process survived"
_pid_alive "$unrecorded" && fail "unrecorded process survived"
[ -e "$state_dir" ] && fail "state dir $state_dir survived"
lan_down  # idempotent

echo "PASS t_netns_harness"
