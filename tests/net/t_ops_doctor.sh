#!/usr/bin/env bash
# shoalctl doctor on a real (namespaced) LAN. Boxes 1 and 2 list each other
# in peers = with multicast on, but nftables drops every multicast datagram
# arriving at them: files still replicate (by unicast) and doctor on box 1
# says multicast from box 2 is not heard. Boxes 3 and 4 (another share key
# and group) are not blocked: doctor there says multicast is heard.
set -u
source tests/net/rep_lib.sh
rep_lan 4
p() { echo "$(lan_ip "$1"):$REP_PORT"; }

block_multicast() {
  lan_exec "$1" nft -f - <<EOF2
table inet shoal_mblock {
  chain input {
    type filter hook input priority -10; policy accept;
    ip daddr 239.0.0.0/8 counter drop
  }
}
EOF2
}
mblock_drops() {
  lan_exec "$1" nft list table inet shoal_mblock |
    awk '/counter packets/ {for (k = 1; k < NF; k++) if ($k == "packets") {print $(k + 1); exit}}'
}

block_multicast 1 || fail "nft"
block_multicast 2 || fail "nft"
rep_start 1 "peers=$(p 2)"
rep_start 2 "peers=$(p 1)"
KEY_B=ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
SHOAL_TEST_KEY=$KEY_B REP_GROUP=239.77.0.2:7701 rep_start 3 "peers=$(p 4)"
SHOAL_TEST_KEY=$KEY_B REP_GROUP=239.77.0.2:7701 rep_start 4 "peers=$(p 3)"

make_random_file "$(rep_drop 1)/blocked.bin" 4M
make_random_file "$(rep_drop 3)/open.bin" 4M
rep_wait_same 60 1 2
rep_wait_same 60 3 4
[ "$(sha256sum < "$(rep_drop 1)/blocked.bin")" = "$(sha256sum < "$(rep_drop 2)/blocked.bin")" ] ||
  rfail "blocked.bin differs"
[ "$(mblock_drops 2)" -gt 0 ] || rfail "the multicast block dropped nothing on box 2"
[ -e "$(rep_drop 1)/open.bin" ] && rfail "the two pairs were meant to be separate"
echo "ok: files replicate with multicast blocked (box 2 dropped $(mblock_drops 2) multicast datagrams)"

# Doctor judges multicast only once a peer has been known for a few announce
# intervals (5 s at least).
doctor_says() { ctl "$1" doctor > "$_LAN_DIR/doctor$1.txt"; grep -qF -- "$2" "$_LAN_DIR/doctor$1.txt"; }
wait_until 30 doctor_says 1 "warn: share s: multicast from h2 is not heard; replicating by unicast (peers =) -> check IGMP snooping / firewall for group 239.77.0.1 port 7700" ||
  { cat "$_LAN_DIR/doctor1.txt" >&2; rfail "doctor on box 1 does not report blocked multicast"; }
ctl 1 doctor > /dev/null && rfail "doctor on box 1 exited 0 despite a warning"
grep -qF "ok: clock of h2 is within 1 s" "$_LAN_DIR/doctor1.txt" || { cat "$_LAN_DIR/doctor1.txt" >&2; rfail "no clock finding"; }
grep -qF "key file $(rep_dir 1)/share.key is private (mode 0600)" "$_LAN_DIR/doctor1.txt" || rfail "no key finding"
echo "ok: doctor on box 1:"; sed 's/^/    /' "$_LAN_DIR/doctor1.txt"
[ "$(ctl 1 doctor --json | jq '.shares[0].net.peers[0].multicast_ms')" = null ] ||
  rfail "doctor --json: box 1 heard box 2 by multicast"

wait_until 30 doctor_says 3 "ok: share s: multicast from h4 is heard (group 239.77.0.2 port 7701)" ||
  { cat "$_LAN_DIR/doctor3.txt" >&2; rfail "doctor on box 3 does not say multicast is heard"; }
grep -q "not heard" "$_LAN_DIR/doctor3.txt" && rfail "doctor on box 3 reports something not heard"
ctl 3 doctor > "$_LAN_DIR/doctor3.txt" || { cat "$_LAN_DIR/doctor3.txt" >&2; rfail "doctor on a healthy box exited non-zero"; }
echo "ok: doctor on box 3:"; sed 's/^/    /' "$_LAN_DIR/doctor3.txt"

# A key file others can read is a failure with the command that fixes it.
chmod 644 "$(rep_dir 3)/share.key"
ctl 3 doctor > "$_LAN_DIR/doctor3.txt" && rfail "doctor accepted a world-readable key"
grep -qF "fail: share s: key file $(rep_dir 3)/share.key is open to group or others (mode 0644) -> chmod 600 $(rep_dir 3)/share.key" \
  "$_LAN_DIR/doctor3.txt" || { cat "$_LAN_DIR/doctor3.txt" >&2; rfail "no key permission failure"; }
echo "ok: doctor names the chmod for an open key file"
