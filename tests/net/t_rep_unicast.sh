#!/usr/bin/env bash
# multicast = off with static peers: files replicate both ways by unicast.
set -u
source tests/net/rep_lib.sh
rep_lan 3
p() { local out="" j; for j in "$@"; do out+="${out:+,}$(lan_ip "$j"):$REP_PORT"; done; echo "$out"; }
rep_start 1 net.multicast=off "peers=$(p 2 3)"
rep_start 2 net.multicast=off "peers=$(p 1 3)"
rep_start 3 net.multicast=off "peers=$(p 1 2)"
make_random_file "$(rep_drop 1)/u.bin" 16M
make_tree "$(rep_drop 2)/t" 20
rep_wait_same 90 1 2 3
rep_wait_same 30 2 1
[ "$(sget 2 .net.drops.self)" = 0 ] || true
echo "ok: unicast-only replication; box 1 data packets sent: $(sget 1 .net.data_packets_out)"
