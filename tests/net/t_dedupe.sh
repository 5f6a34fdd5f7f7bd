#!/usr/bin/env bash
# Content-defined chunking: one byte changed in the middle of a 64 MiB file
# stores at most 3 new chunks; a copy under another name adds < 1% to the store.
source "$(dirname "$0")/daemon_lib.sh"

d_conf a
d_start a
head -c $((64 * 1024 * 1024)) /dev/urandom > "$T/a/drop/f.bin"
ctl a wait --timeout 60 || fail "ingest timed out"
c0=$(status_get a '.ingest.chunks_new'); b0=$(status_get a '.store.bytes')
printf 'X' | dd of="$T/a/drop/f.bin" bs=1 seek=$((32 * 1024 * 1024 + 12345)) conv=notrunc status=none
ctl a wait --timeout 60 || fail "re-ingest timed out"
c1=$(status_get a '.ingest.chunks_new')
new=$((c1 - c0))
[ "$new" -ge 1 ] && [ "$new" -le 3 ] || fail "one changed byte stored $new new chunks"
ok "one byte changed: $new new chunk(s)"
b1=$(status_get a '.store.bytes')
cp "$T/a/drop/f.bin" "$T/a/drop/copy.bin"
ctl a wait --timeout 60 || fail "copy ingest timed out"
b2=$(status_get a '.store.bytes')
grow=$((b2 - b1))
[ $((grow * 100)) -lt "$b1" ] || fail "copy grew the store by $grow of $b1 bytes"
ok "copy added $grow bytes to a $b1-byte store"
