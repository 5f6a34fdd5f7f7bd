#!/usr/bin/env bash
# Multicast that stops working after start (IGMP snooping querier timing out,
# a switch reboot, a firewall change). Boxes 1 and 2 list each other in
# peers = with multicast on; a first file replicates by multicast. Then
# nftables drops every multicast datagram arriving at either box: a file
# dropped on box 1 at once still reaches box 2 (its requests by multicast go
# unanswered, so it asks by unicast); doctor on box 1 then says multicast
# from box 2 is not heard; a file dropped on box 2 after that reaches box 1,
# which asks by unicast from the start.
set -u
source tests/net/rep_lib.sh
rep_lan 2
p() { echo "$(lan_ip "$1"):$REP_PORT"; }

# nft_table I NAME RULE: one input chain (before the default priority) with RULE.
nft_table() {
  lan_exec "$1" nft -f - <<EOF2
table inet $2 {
  chain input {
    type filter hook input priority $3; policy accept;
    $4
  }
}
EOF2
}
# nft_packets I NAME: packets counted by the first counter of table NAME.
nft_packets() {
  lan_exec "$1" nft list table inet "$2" |
    awk '/counter packets/ {for (k = 1; k < NF; k++) if ($k == "packets") {print $(k + 1); exit}}'
}
# same_file I J NAME: box J has box I's NAME, same bytes.
same_file() {
  [ -f "$(rep_drop "$2")/$3" ] &&
    [ "$(sha256sum < "$(rep_drop "$1")/$3")" = "$(sha256sum < "$(rep_drop "$2")/$3")" ]
}

nft_table 2 shoal_mwatch -20 "ip daddr 239.0.0.0/8 counter" || fail "nft"
rep_start 1 "peers=$(p 2)"
rep_start 2 "peers=$(p 1)"

make_random_file "$(rep_drop 1)/first.bin" 2M
wait_until 60 same_file 1 2 first.bin || rfail "first.bin did not replicate with multicast working"
seen=$(nft_packets 2 shoal_mwatch)
# 2 MiB is about 1500 DATA datagrams; announces alone are a few per second.
[ "$seen" -gt 1000 ] || rfail "first.bin did not come by multicast (box 2 got $seen multicast datagrams)"
echo "ok: first.bin replicated by multicast ($seen multicast datagrams at box 2)"

nft_table 1 shoal_mblock -10 "ip daddr 239.0.0.0/8 counter drop" || fail "nft"
nft_table 2 shoal_mblock -10 "ip daddr 239.0.0.0/8 counter drop" || fail "nft"
start=$(date +%s)
# Right after the loss box 2 still counts box 1 as heard by multicast: its
# requests go unanswered until it asks by unicast (or multicast from box 1 is
# stale, whichever comes first).
make_random_file "$(rep_drop 1)/second.bin" 4M
wait_until 60 same_file 1 2 second.bin || rfail "second.bin (box 1) did not reach box 2 after multicast was lost"
echo "ok: second.bin replicated $(($(date +%s) - start)) s after multicast was lost"

doctor_says() { ctl "$1" doctor > "$_LAN_DIR/doctor$1.txt"; grep -qF -- "$2" "$_LAN_DIR/doctor$1.txt"; }
wait_until 30 doctor_says 1 "warn: share s: multicast from h2 is not heard; replicating by unicast (peers =)" ||
  { cat "$_LAN_DIR/doctor1.txt" >&2; rfail "doctor on box 1 does not report the lost multicast"; }
echo "ok: doctor on box 1 reports the lost multicast"

# Now multicast from box 2 is stale at box 1: box 1 asks by unicast from the
# first request, without waiting for multicast requests to go unanswered.
stalls=$(grep -c "no answer by multicast" "$(rep_dir 1)/log")
start=$(date +%s)
make_random_file "$(rep_drop 2)/third.bin" 3M
wait_until 60 same_file 2 1 third.bin || rfail "third.bin (box 2) did not reach box 1 after multicast was lost"
[ "$(grep -c "no answer by multicast" "$(rep_dir 1)/log")" = "$stalls" ] ||
  rfail "box 1 asked box 2 by multicast although it no longer hears multicast from it"
[ "$(nft_packets 1 shoal_mblock)" -gt 0 ] || rfail "the block dropped nothing on box 1"
[ "$(nft_packets 2 shoal_mblock)" -gt 0 ] || rfail "the block dropped nothing on box 2"
echo "ok: third.bin replicated by unicast in $(($(date +%s) - start)) s" \
  "(multicast dropped: box 1 $(nft_packets 1 shoal_mblock), box 2 $(nft_packets 2 shoal_mblock))"
