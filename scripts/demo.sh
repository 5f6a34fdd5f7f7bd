#!/usr/bin/env bash
# `make demo`: three shoald boxes (a, b, c) side by side on this host, on
# loopback, sharing one folder. A file dropped on box a shows up on b and c.
# Everything lives in one temp dir that is removed on exit; nothing is sent
# off this host (bind 127.0.0.1, multicast TTL 1, looped back by the kernel).
#
#   BUILD=build bash scripts/demo.sh
#   SHOAL_DEMO_GROUP=239.255.77.77:17777  multicast group of the demo share
#   SHOAL_DEMO_TIMEOUT=60                 seconds to wait for replication
#   SHOAL_DEMO_SIZE=20M                   size of the random file (head -c)
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
SHOALD=$PWD/$BUILD/shoald
SHOALCTL=$PWD/$BUILD/shoalctl
GROUP=${SHOAL_DEMO_GROUP:-239.255.77.77:17777}
TIMEOUT=${SHOAL_DEMO_TIMEOUT:-60}
SIZE=${SHOAL_DEMO_SIZE:-20M}
BOXES=(a b c)

for p in "$SHOALD" "$SHOALCTL"; do
  [ -x "$p" ] || { echo "demo: no $p; run 'make' first" >&2; exit 2; }
done
[[ $TIMEOUT =~ ^[1-9][0-9]{0,2}$ ]] || { echo "demo: SHOAL_DEMO_TIMEOUT must be 1-999" >&2; exit 2; }

DEMO=
declare -A PID=()

# Stops every box we started (SIGTERM, then SIGKILL after 5 s) and removes
# the temp dir. Runs once, on any exit; a second Ctrl-C cannot cut it short.
cleanup() {
  trap - EXIT
  trap '' INT TERM
  local b i alive
  for b in "${!PID[@]}"; do kill -TERM "${PID[$b]}" 2>/dev/null; done
  for ((i = 0; i < 50; i++)); do
    alive=0
    for b in "${!PID[@]}"; do kill -0 "${PID[$b]}" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for b in "${!PID[@]}"; do
    if kill -0 "${PID[$b]}" 2>/dev/null; then
      echo "demo: box $b did not stop in 5 s; killing it" >&2
      kill -KILL "${PID[$b]}" 2>/dev/null
    fi
    wait "${PID[$b]}" 2>/dev/null
  done
  [ -n "$DEMO" ] && rm -rf -- "$DEMO"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
DEMO=$(mktemp -d /tmp/shoal-demo.XXXXXX) || exit 1

# elapsed: seconds since T0_US, with tenths.
elapsed() {
  local us=$((${EPOCHREALTIME/[.,]/} - T0_US))
  printf '%d.%ds' $((us / 1000000)) $((us / 100000 % 10))
}

header() { printf '\n=== %s\n\n' "$*"; }
box() { echo "$DEMO/$1"; }
ctl() { local b=$1; shift; "$SHOALCTL" -s "$(box "$b")/ctl.sock" "$@"; }
indent() { sed 's/^/    /'; }

# fail MSG: the reason, the end of every box's log, exit 1.
fail() {
  local b
  echo >&2
  echo "demo: FAILED: $*" >&2
  for b in "${BOXES[@]}"; do
    echo "--- last 30 lines of box $b's log ($(box "$b")/shoald.log)" >&2
    tail -n 30 "$(box "$b")/shoald.log" >&2 2>/dev/null
  done
  exit 1
}

# sums DIR: "sha256  path" for every file under DIR, sorted.
sums() { (cd "$1" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0r sha256sum --); }

# replicated: boxes b and c hold exactly box a's files.
replicated() {
  local want; want=$(sums "$(box a)/drop")
  [ "$(sums "$(box b)/drop")" = "$want" ] && [ "$(sums "$(box c)/drop")" = "$want" ]
}

# peers_settled: every box lists the two others as having all its files. A
# peer's HAVE column catches up at its next announce, about a second after
# it received the files.
peers_settled() {
  local b
  for b in "${BOXES[@]}"; do
    [ "$(ctl "$b" peers 2>/dev/null | grep -c ' 100\.0%$')" = 2 ] || return 1
  done
}

write_config() {  # BOX
  local d; d=$(box "$1")
  cat > "$d/shoald.conf" <<EOF
; Box $1 of the shoal demo.
[node]
name = box-$1
state_dir = $d/state
log_level = info
[net]
bind = 127.0.0.1
port = 0
; Slow enough on loopback to watch a transfer in progress.
max_rate = 100mbit
[control]
socket = $d/ctl.sock
[share demo]
path = $d/drop
group = $GROUP
key_file = $d/share.key
settle_ms = 200
EOF
}

start_box() {  # BOX
  local b=$1 d i
  d=$(box "$b")
  "$SHOALD" -c "$d/shoald.conf" > "$d/shoald.log" 2>&1 &
  PID[$b]=$!
  for ((i = 0; i < 100; i++)); do
    ctl "$b" status > /dev/null 2>&1 && return 0
    kill -0 "${PID[$b]}" 2>/dev/null || fail "box $b exited at start-up"
    sleep 0.1
  done
  fail "box $b did not answer on its control socket within 10 s"
}

header "1. Three boxes on loopback, one share (temp dir $DEMO)"
mkdir -p "$DEMO/keys" || exit 1
"$SHOALD" --gen-key "$DEMO/keys/share.key" > /dev/null || fail "cannot create the share key"
for b in "${BOXES[@]}"; do
  mkdir -p "$(box "$b")/drop" "$(box "$b")/state" || fail "mkdir"
  # Every box of a share needs the same key; shoald refuses a key others can read.
  install -m 0600 "$DEMO/keys/share.key" "$(box "$b")/share.key" || fail "cannot copy the key"
  write_config "$b"
  start_box "$b"
  echo "box $b: pid ${PID[$b]}, folder $(box "$b")/drop, group $GROUP"
done
echo
echo "box a's config:"
grep -v '^;' "$(box a)/shoald.conf" | indent

header "2. Dropping files into box a's folder"
start=$SECONDS
T0_US=${EPOCHREALTIME/[.,]/}
mkdir -p "$(box a)/drop/notes" || fail "mkdir"
head -c "$SIZE" /dev/urandom > "$(box a)/drop/big.bin" || fail "cannot write big.bin"
printf 'Hello from box a.\nThis file sits in a subdirectory.\n' > "$(box a)/drop/notes/hello.txt"
(cd "$(box a)/drop" && find . -type f -printf '%10s bytes  %P\n' | LC_ALL=C sort -k3 | indent)
ctl a wait --timeout 30 > /dev/null || fail "box a did not finish ingesting within 30 s"
echo
echo "box a has cut them into chunks: shoalctl files"
out=$(ctl a files) || fail "shoalctl files on box a"
echo "$out" | indent

header "3. Box b receiving: shoalctl transfers (a few samples)"
shown=0
while ((SECONDS - start < TIMEOUT)) && ((shown < 6)); do
  replicated && break
  out=$(ctl b transfers 2>&1)
  if [ "$out" != "no transfers" ]; then
    echo "[+$(elapsed)]"
    echo "$out" | indent
    shown=$((shown + 1))
    sleep 0.4
  else
    sleep 0.1
  fi
done
if [ "$shown" = 0 ] && replicated; then echo "(the transfer finished before the first sample)"; fi

header "4. Waiting (at most ${TIMEOUT} s) until boxes b and c have every file"
while ! replicated; do
  ((SECONDS - start < TIMEOUT)) || fail "files not on boxes b and c after ${TIMEOUT} s"
  sleep 0.2
done
echo "boxes b and c have every file, $(elapsed) after the drop"
for b in b c; do
  ctl "$b" wait --timeout 20 > /dev/null || fail "box $b still busy after 20 s"
done
for ((i = 0; i < 50; i++)); do peers_settled && break; sleep 0.1; done
echo
echo "box b's log tells the same story:"
grep -E ': (peer|fetching|received) ' "$(box b)/shoald.log" | indent

for b in "${BOXES[@]}"; do
  header "5$b. Box $b: shoalctl files and shoalctl peers"
  out=$(ctl "$b" files) || fail "shoalctl files on box $b"
  echo "$out" | indent
  echo
  out=$(ctl "$b" peers) || fail "shoalctl peers on box $b"
  echo "$out" | indent
done

header "6. sha256 of every file, per box"
for b in "${BOXES[@]}"; do
  echo "box $b:"
  sums "$(box "$b")/drop" | indent
done
replicated || fail "the boxes' files differ"
echo
echo "All three boxes hold identical files."

header "7. Stopping the boxes and removing $DEMO"
cleanup
echo "done."
