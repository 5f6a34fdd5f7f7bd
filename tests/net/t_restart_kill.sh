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
db=$T/b/state/shoal.db
pid=$(d_pid b)
for _ in $(seq 1 2000); do  # until the ingest is under way: 8 MiB read, no record yet
  r=$(awk '/^rchar/ {print $2}' "/proc/$pid/io" 2>/dev/null || echo 0)
  [ "${r:-0}" -gt $((8 * 1024 * 1024)) ] && break; sleep 0.002
done
kill -9 "$(d_pid b)"
wait "$(d_pid b)" 2>/dev/null
[ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after kill -9"
[ "$(sqlite3 "$db" "SELECT count(*) FROM files WHERE path = 'big.bin'")" = 0 ] || fail "the kill came after the ingest finished"
d_start b
ctl b wait --timeout 60 || fail "ingest after crash timed out"
[ "$(sqlite3 "$T/b/state/shoal.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after restart"
n=$(ctl b files --json | jq '[.files[] | select(.path=="big.bin")] | length')
[ "$n" = 1 ] || fail "big.bin recorded $n times"
chunks_of() {  # DB: the chunk hashes of big.bin's current version, in order
  sqlite3 "$1" "SELECT lower(hex(c.hash)) FROM files f JOIN manifests m ON m.mid = f.mid
    JOIN manifest_chunks mc ON mc.manifest = m.id JOIN chunks c ON c.id = mc.chunk
    WHERE f.path = 'big.bin' ORDER BY mc.idx"
}
chunks_of "$T/a/state/shoal.db" > "$T/a.chunks"
chunks_of "$T/b/state/shoal.db" > "$T/b.chunks"
[ "$(wc -l < "$T/b.chunks")" -gt 100 ] || fail "too few chunks recorded"
cmp -s "$T/a.chunks" "$T/b.chunks" || fail "chunk list after the crash differs from a clean ingest"
# A large file's chunks stay in the file: the database holds no copy of them
# (the same chunk list as a clean ingest says they are right).
copies=$(sqlite3 "$T/b/state/shoal.db" "SELECT count(*) FROM chunks WHERE length(data) > 0")
[ "$copies" = 0 ] || fail "$copies chunks of a large file were copied into the database"
# No orphans once the start-up gc has run.
wait_until 15 bash -c "[ \"\$(sqlite3 '$T/b/state/shoal.db' 'SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk FROM manifest_chunks)')\" = 0 ]" \
  || fail "orphan chunks remain"
ok "kill -9 during ingest: consistent, stored once, same chunks, all verified"
