#!/usr/bin/env bash
# A large file changed in place on the sender while boxes are still fetching
# it: its old chunks are no longer held anywhere (large files are kept only
# as files), so the receivers must move on to the new version and end with
# exactly the sender's file, no transfer left hanging and nothing left behind.
set -u
source tests/net/rep_lib.sh
rep_lan 3
lan_rate 1 200mbit
rep_start 1; rep_start 2; rep_start 3
size=$((48 * 1024 * 1024))
make_random_file "$(rep_drop 1)/big.bin" 48M
# Box 2 has an eighth of it: by its transfer, or before that through the
# origin's stream (PROTOCOL.md 8.7), which shows in no transfer.
some() { [ "$(sget 2 .net.data_bytes_in)" -ge $((size / 8)) ]; }
wait_until 60 some || rfail "transfer never started"
# Same inode, new bytes: the old version's chunks are gone from the sender.
head -c "$size" /dev/urandom > "$_LAN_DIR/new.bin"
cat "$_LAN_DIR/new.bin" > "$(rep_drop 1)/big.bin"
rep_wait_same 120 1 2 3
cmp -s "$_LAN_DIR/new.bin" "$(rep_drop 2)/big.bin" || rfail "box 2 does not hold the new bytes"
idle() { [ "$(ctl "$1" transfers --json | jq '.transfers | length')" = 0 ]; }
wait_until 20 idle 2 || rfail "box 2 still has transfers: $(ctl 2 transfers --json | head -c 600)"
wait_until 20 idle 3 || rfail "box 3 still has transfers"
echo "unavailable on box 1: $(sget 1 .net.objects_unavailable)"
no_leftovers 2
no_leftovers 3
echo "ok: receivers moved on to the changed file"
