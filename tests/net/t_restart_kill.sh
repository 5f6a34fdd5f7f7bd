#!/usr/bin/env bash
# After a restart an ingested file is not read again; kill -9 during an ingest
# leaves a consistent store and the file ends up stored once, with the same
# manifest (hence the same chunk hashes) as a clean ingest.
source "$(dirname "$0")/daemon_lib.sh"

d_conf a
d_start a
head -c $((96 * 1024 * 1024)) /dev/urandom > "$T/big.bin"
cp "$T/big.bin" "$T/a/drop/big.bin"
ctl a wait --timeout 60 || fail "first ingest timed out"
m1=$(ctl a files --json | jq -r '.files[] | select(.path=="big.bin") | .manifest')
d_stop a

d_start a
ctl a wait --timeout 30 || fail "wait after restart timed out"
[ "$(status_get a '.ingest.bytes_read')" = 0 ] || fail "file was read again after restart"
[ "$(status_get a '.ingest.files_unchanged')" = 1 ] || fail "file not recognised as unchanged"
ok "restart does not re-read"
d_stop a

# Crash in the middle of ingesting a new file.
d_conf b
d_start b
cp "$T/big.bin" "$T/b/drop/big.bin"
for _ in $(seq 1 200); do
  grep -q 'ready big.bin' "$T/b/log" 2>/dev/null && break; sleep 0.01
done
sleep 0.1
kill -9 "$(d_pid b)"
wait "$(d_pid b)" 2>/dev/null
[ "$(sqlite3 "$T/b/state/shoal.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after kill -9"
d_start b
ctl b wait --timeout 60 || fail "ingest after crash timed out"
[ "$(sqlite3 "$T/b/state/shoal.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after restart"
n=$(ctl b files --json | jq '[.files[] | select(.path=="big.bin")] | length')
[ "$n" = 1 ] || fail "big.bin recorded $n times"
# Same node name and file state as box a => same manifest id when the chunks agree.
touch -r "$T/a/drop/big.bin" "$T/b/drop/big.bin"
sed -i 's/^name = b/name = a/' "$T/b/shoal.conf"
d_stop b; d_start b
ctl b rescan; ctl b wait --timeout 60 || fail "rescan timed out"
m2=$(ctl b files --json | jq -r '.files[] | select(.path=="big.bin") | .manifest')
[ -n "$m1" ] && [ "$m1" = "$m2" ] || fail "manifest after crash differs: $m1 vs $m2"
# Every stored chunk is referenced (no orphans left after the start-up gc).
wait_until 15 bash -c "[ \"\$(sqlite3 '$T/b/state/shoal.db' 'SELECT count(*) FROM chunks WHERE hash NOT IN (SELECT chunk FROM manifest_chunks)')\" = 0 ]" \
  || fail "orphan chunks remain"
ok "kill -9 during ingest: consistent, stored once, same manifest"
