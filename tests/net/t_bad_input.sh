#!/usr/bin/env bash
# Bad input gets a clear log line and a visible state, never a crash:
# a missing share directory, a foreign database file, an unreadable file,
# a malformed control request, a bad key file.
source "$(dirname "$0")/daemon_lib.sh"

# Missing share directory: status says so; creating it later starts the share.
d_conf a
rmdir "$T/a/drop"
d_start a
status_get a '.shares[0].state' | grep -q '^error' || fail "missing dir not shown in status"
mkdir "$T/a/drop"; echo x > "$T/a/drop/x"
wait_until 15 bash -c "[ \"\$('$SHOALCTL' -s '$T/a/ctl.sock' status --json | jq -r '.shares[0].state')\" = ok ]" \
  || fail "share did not start once its directory appeared"
ctl a wait --timeout 20 || fail "wait"
[ "$(status_get a '.shares[0].files')" = 1 ] || fail "file in late share not ingested"
ok "missing share directory"

# Malformed control requests get an error reply; the daemon keeps serving.
printf 'not json\n{"cmd":5}\n' | timeout 5 socat - UNIX-CONNECT:"$T/a/ctl.sock" > /dev/null 2>&1 || true
{ head -c 200000 /dev/zero | tr '\0' x; echo; } | timeout 5 socat - UNIX-CONNECT:"$T/a/ctl.sock" > /dev/null 2>&1 || true
ctl a status > /dev/null || fail "daemon stopped answering after bad requests"
ctl a bogus > /dev/null 2>&1 && fail "unknown command accepted"
ok "malformed control requests"
d_stop a

# A foreign file where the database should be: clear error, file untouched, still running.
d_conf b
mkdir -p "$T/b/state"
head -c 100000 /dev/urandom > "$T/b/state/shoal.db"
sum0=$(sha256sum < "$T/b/state/shoal.db")
d_start b
status_get b '.store.state' | grep -q '^error' || fail "foreign db not shown in status"
grep -qi 'store' "$T/b/log" || fail "no log line about the store"
[ "$(sha256sum < "$T/b/state/shoal.db")" = "$sum0" ] || fail "foreign db was modified"
d_stop b
ok "foreign database"

# A key file readable by others is refused with a clear message.
d_conf c
printf '%064d\n' 0 > "$T/c/share.key"; chmod 644 "$T/c/share.key"
d_start c
status_get c '.shares[0].state' | grep -qi 'chmod\|permission\|mode' || fail "loose key file accepted: $(status_get c '.shares[0].state')"
d_stop c
ok "loose key file mode"
