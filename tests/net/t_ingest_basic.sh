#!/usr/bin/env bash
# A file dropped into a share shows up in `shoalctl files` with its size and
# chunk count; status counts it; SIGTERM stops the daemon cleanly (< 2 s, 0).
source "$(dirname "$0")/daemon_lib.sh"

d_conf a
d_start a
[ -f "$T/a/share.key" ] || fail "share key was not created"
[ "$(stat -c %a "$T/a/share.key")" = 600 ] || fail "share key mode is not 0600"
grep -qE '^[0-9a-f]{64}$' "$T/a/share.key" || fail "share key is not 64 hex digits"

head -c 1000000 /dev/urandom > "$T/a/drop/one.bin"
mkdir -p "$T/a/drop/sub/deeper"
echo hello > "$T/a/drop/sub/deeper/hello.txt"
: > "$T/a/drop/empty"
ln -s one.bin "$T/a/drop/link"
mkfifo "$T/a/drop/fifo"
ctl a wait --timeout 20 || fail "wait timed out"

files=$(ctl a files --json)
echo "$files" | jq -e '.files | length == 3' >/dev/null || fail "expected 3 files: $files"
echo "$files" | jq -e '.files[] | select(.path=="one.bin") | .size == 1000000 and .chunks >= 4 and .chunks <= 62' >/dev/null \
  || fail "one.bin size/chunks wrong: $files"
echo "$files" | jq -e '.files[] | select(.path=="sub/deeper/hello.txt") | .size == 6 and .chunks == 1' >/dev/null \
  || fail "hello.txt wrong: $files"
echo "$files" | jq -e '.files[] | select(.path=="empty") | .size == 0 and .chunks == 0' >/dev/null \
  || fail "empty file wrong: $files"
ok "files listed with sizes and chunk counts"

ctl a files | grep -q 'sub/deeper/hello.txt' || fail "human files output lacks the path"
[ "$(status_get a '.shares[0].files')" = 3 ] || fail "status file count"
[ "$(status_get a '.shares[0].bytes')" = 1000006 ] || fail "status byte count"
[ "$(status_get a '.store.bytes')" = 1000006 ] || fail "store bytes"
grep -q 'link' "$T/a/log" && grep -qi 'symlink\|special\|skip' "$T/a/log" || fail "no warning for the symlink"
ok "status counts"

# A modified file gets a new version; a deleted one leaves the listing.
head -c 5000 /dev/urandom >> "$T/a/drop/one.bin"
rm "$T/a/drop/sub/deeper/hello.txt"
ctl a wait --timeout 20 || fail "wait timed out"
ctl a files --json | jq -e '.files[] | select(.path=="one.bin") | .size == 1005000' >/dev/null || fail "new version not seen"
ctl a files --json | jq -e '[.files[] | select(.path=="sub/deeper/hello.txt" and .state=="stored")] | length == 0' >/dev/null \
  || fail "deleted file still stored"
ok "change and delete"

d_stop a
[ -S "$T/a/ctl.sock" ] && fail "control socket left behind"
ctl a status >/dev/null 2>&1 && fail "status works after stop"
err=$(ctl a status 2>&1); [ -n "$err" ] || fail "no error message when daemon is down"
ok "clean stop; shoalctl says: $err"
