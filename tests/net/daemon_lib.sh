# Helpers for black-box tests that run real shoald instances on loopback.
# Source from a test script run at the repo root. Every daemon started with
# d_start is killed on exit, and the test's temp dir is removed.
set -u
BUILD=${BUILD:-build}
SHOALD=$PWD/$BUILD/shoald
SHOALCTL=$PWD/$BUILD/shoalctl
T=$(mktemp -d /tmp/shoal-t.XXXXXX)
D_PIDS=()

d_cleanup() {
  local p
  for p in "${D_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${D_PIDS[@]}"; do
    for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  chmod -R u+rwX "$T" 2>/dev/null
  rm -rf "$T"
}
trap d_cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; for f in "$T"/*/log; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done; exit 1; }
ok() { echo "ok: $*"; }

# d_conf NAME [extra share lines...]: writes $T/NAME/shoal.conf for a box on loopback.
d_conf() {
  local name=$1; shift
  local dir=$T/$name
  mkdir -p "$dir/drop"
  {
    echo "[node]"; echo "name = $name"; echo "state_dir = state"; echo "log_level = ${LOG_LEVEL:-debug}"
    echo "[net]"; echo "bind = 127.0.0.1"; echo "port = 0"
    echo "[control]"; echo "socket = ctl.sock"
    echo "[share s]"; echo "path = drop"; echo "group = 239.255.77.${GROUP_OCTET:-9}:${GROUP_PORT:-17700}"
    echo "key_file = share.key"; echo "settle_ms = ${SETTLE_MS:-100}"
    local l; for l in "$@"; do echo "$l"; done
  } > "$dir/shoal.conf"
}

# d_start NAME: starts shoald for $T/NAME in the background; waits for its socket.
d_start() {
  local dir=$T/$1
  "$SHOALD" -c "$dir/shoal.conf" >> "$dir/log" 2>&1 &
  local pid=$!
  D_PIDS+=("$pid")
  echo "$pid" > "$dir/pid"
  for _ in $(seq 1 100); do
    "$SHOALCTL" -s "$dir/ctl.sock" status >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || fail "shoald $1 exited at start"
    sleep 0.05
  done
  fail "shoald $1 did not open its control socket"
}

d_pid() { cat "$T/$1/pid"; }
ctl() { local n=$1; shift; "$SHOALCTL" -s "$T/$n/ctl.sock" "$@"; }

# d_stop NAME: SIGTERM; fails unless it exits with status 0 within 2 s.
d_stop() {
  local pid; pid=$(d_pid "$1")
  kill -TERM "$pid"
  local t0; t0=$(date +%s%N)
  wait "$pid"; local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$rc" -eq 0 ] || fail "shoald $1 exited with $rc after SIGTERM"
  [ "$ms" -le 2000 ] || fail "shoald $1 took ${ms} ms to stop"
}

# json_get NAME JQ-EXPR [shoalctl args...]: query status --json with jq.
status_get() { ctl "$1" status --json | jq -r "$2"; }

# wait_until TIMEOUT_S CMD...: polls every 0.1 s.
wait_until() {
  local t=$1; shift
  local n=$(( t * 10 ))
  for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
