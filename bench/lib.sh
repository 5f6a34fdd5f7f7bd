# shellcheck shell=bash
# Shared by bench/profile.sh and bench/threads.sh (run from the top directory).

# The receivers' veths do GRO as in bench/replicate.sh (see BENCHMARKS.md,
# Setup); set before tests/net/lib.sh picks its default (off).
export SHOAL_LAN_GRO=${SHOAL_LAN_GRO:-1}
# shellcheck source=../tests/net/rep_lib.sh
source tests/net/rep_lib.sh

# bench_lan N RATE LOSS: a LAN of N+1 boxes, box 1 sending and boxes 2..N+1
# receiving, every box's egress shaped to RATE ("off": unshaped) and LOSS%
# of the datagrams towards each receiver dropped; one shoald per box, as
# bench/replicate.sh starts them. Waits (up to 15 s) until box 1 sees N peers.
bench_lan() {
  local n=$1 rate=$2 loss=$3 i
  lan_up $((n + 1)) || fail lan_up
  for ((i = 1; i <= n + 1; i++)); do
    [ "$rate" = off ] || lan_rate "$i" "$rate" out
    [ "$i" -gt 1 ] && lan_loss "$i" "$loss"
    rep_start "$i" "net.max_rate=${rate/off/10gbit}" settle_ms=50 node.log_level=warn
  done
  wait_until 15 eval '[ "$(sget 1 .peers)" = '"$n"' ]' || true
}
