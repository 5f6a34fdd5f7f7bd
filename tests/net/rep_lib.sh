# shellcheck shell=bash
# Replication test helpers on top of lib.sh: one shoald per LAN host.
#   source tests/net/rep_lib.sh; rep_lan N; rep_start 1 [EXTRA...]; ...
# Box i keeps its state in $_LAN_DIR/hi (removed with the LAN).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SHOALD=$PWD/$BUILD/shoald
SHOALCTL=$PWD/$BUILD/shoalctl
REP_GROUP=${REP_GROUP:-239.77.0.1:7700}
REP_PORT=${REP_PORT:-7788}

rep_dir() { echo "$_LAN_DIR/h$1"; }
rep_drop() { echo "$_LAN_DIR/h$1/drop"; }
ctl() { local i=$1; shift; "$SHOALCTL" -s "$(rep_dir "$i")/ctl.sock" "$@"; }
sget() { ctl "$1" status --json | jq -r "$2"; }

# rfail MSG: fail with the tail of every box's log.
rfail() {
  local f d
  for f in "$_LAN_DIR"/h*/log; do [ -f "$f" ] && { echo "--- $f"; tail -25 "$f"; } >&2; done
  for d in "$_LAN_DIR"/h*; do
    [ -S "$d/ctl.sock" ] || continue
    echo "--- $d transfers / net" >&2
    "$SHOALCTL" -s "$d/ctl.sock" transfers --json 2>&1 | head -c 2000 >&2
    "$SHOALCTL" -s "$d/ctl.sock" status --json 2>&1 | jq -c .net 2>&1 | head -c 1500 >&2
  done
  fail "$@"
}

rep_lan() { skip_unless_root; lan_up "$@" || fail "lan_up failed"; }

# rep_start I [EXTRA...]: config (shoal_conf EXTRA syntax) and start box I.
rep_start() {
  local i=$1; shift
  local conf
  conf=$(shoal_conf "$(rep_dir "$i")" "h$i" "$(lan_ip "$i")" "$REP_PORT" "$REP_GROUP" "$@") || fail "conf"
  lan_bg "$i" "$(rep_dir "$i")/log" "$SHOALD" -c "$conf" > /dev/null
  echo "$LAN_LAST_PID" > "$(rep_dir "$i")/pid"
  wait_until 10 ctl "$i" status > /dev/null 2>&1 || rfail "box $i did not start"
}
rep_pid() { cat "$(rep_dir "$1")/pid"; }
rep_kill() { kill -9 "$(rep_pid "$1")"; wait "$(rep_pid "$1")" 2>/dev/null; true; }
rep_stop() {
  local pid; pid=$(rep_pid "$1")
  kill -TERM "$pid"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  rfail "box $1 did not stop within 3 s"
}

# same_tree I J: the drop folders of boxes I and J hold identical files.
same_tree() { [ "$(tree_sums "$(rep_drop "$1")")" = "$(tree_sums "$(rep_drop "$2")")" ]; }

# rep_wait_same TIMEOUT FROM I...: waits until every box I has FROM's tree.
rep_wait_same() {
  local t=$1 from=$2; shift 2
  local i
  for i in "$@"; do
    wait_until "$t" same_tree "$from" "$i" || {
      diff <(tree_sums "$(rep_drop "$from")") <(tree_sums "$(rep_drop "$i")") | head -10 >&2
      rfail "box $i does not have box $from's files after ${t}s"
    }
  done
}

# no_leftovers I: nothing but replicated files in box I's folder.
no_leftovers() {
  local left; left=$(find "$(rep_drop "$1")" -name '.shoal-*' | head -5)
  [ -z "$left" ] || rfail "temporary files left in box $1: $left"
}
