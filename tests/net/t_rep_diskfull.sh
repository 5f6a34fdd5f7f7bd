#!/usr/bin/env bash
# A file larger than the receiver's free space is not started: it waits with a
# clear status, nothing half-written is left, other files still arrive, and it
# completes once space is made.
set -u
source tests/net/rep_lib.sh
rep_lan 2
mnt=$(rep_dir 2)/drop
mkdir -p "$mnt"
mount -t tmpfs -o size=16m shoaltest "$mnt" || rfail "cannot mount a tmpfs"
at_exit "umount -l '$mnt' 2>/dev/null"
rep_start 1; rep_start 2
make_random_file "$(rep_drop 1)/small.bin" 1M
make_random_file "$(rep_drop 1)/big.bin" 24M
wait_until 30 test -f "$mnt/small.bin" || rfail "small file did not arrive"
waiting() { ctl 2 transfers --json | jq -e '.transfers[] | select(.path=="big.bin") | .error | test("free space")' > /dev/null; }
wait_until 30 waiting || rfail "big file does not show that it waits for space"
[ ! -e "$mnt/big.bin" ] || rfail "big file appeared without space"
[ -z "$(find "$mnt" -name '.shoal-*')" ] || rfail "temporary file left on the full disk"
ctl 2 transfers | grep -q "big.bin" || rfail "transfers does not list the waiting file"
echo "ok: waits with: $(ctl 2 transfers --json | jq -r '.transfers[0].error')"
mount -o remount,size=96m "$mnt" || rfail "remount"
rep_wait_same 60 1 2
echo "ok: completes once there is space"
