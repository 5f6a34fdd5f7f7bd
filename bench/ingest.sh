#!/usr/bin/env bash
# Ingest benchmark (make bench-ingest): a 1 GiB random file against
# `openssl dgst -sha256` on the same file in the same run, shoald's peak RSS,
# 10,000 files of 4 KiB, and the restart (no re-read) time.
# Prints a Markdown table for docs/BENCHMARKS.md.
set -u
cd "$(dirname "$0")/.."
export LOG_LEVEL=info SETTLE_MS=${SETTLE_MS:-100}
source tests/net/daemon_lib.sh
SIZE_MB=${SIZE_MB:-1024}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }

head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$T/big.bin"
cat "$T/big.bin" > /dev/null  # warm the page cache for both contenders
t0=$(now); openssl dgst -sha256 "$T/big.bin" > /dev/null; t1=$(now)
dgst=$(secs "$t0" "$t1")

d_conf a
d_start a
pid=$(d_pid a)
t0=$(now)
ln "$T/big.bin" "$T/a/drop/big.bin"   # same inode: appears at once, fully written
ctl a wait || fail wait
t1=$(now)
ing=$(secs "$t0" "$t1")
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
settle=$(awk -v s="$SETTLE_MS" 'BEGIN{printf "%.2f", s/1000}')
d_stop a
t0=$(now); d_start a; ctl a wait || fail wait; t1=$(now)
restart=$(secs "$t0" "$t1")
reread=$(status_get a '.ingest.bytes_read')
d_stop a

d_conf m
d_start m
mkdir -p "$T/src"
for i in $(seq 0 99); do
  mkdir -p "$T/src/d$i"
  for j in $(seq 0 99); do head -c 4096 /dev/urandom > "$T/src/d$i/f$j"; done
done
t0=$(now)
mv "$T/src"/* "$T/m/drop/"
ctl m wait || fail wait
t1=$(now)
small=$(secs "$t0" "$t1")
nfiles=$(status_get m '.shares[0].files')
mrss=$(awk '/VmHWM/ {print $2}' /proc/$(d_pid m)/status)
d_stop m

ratio=$(awk -v a="$ing" -v b="$dgst" 'BEGIN{printf "%.2f", a/b}')
pct=$(awk -v a="$restart" -v b="$ing" 'BEGIN{printf "%.1f", 100*a/b}')
cat <<MD
| measurement | value | target |
|---|---|---|
| openssl dgst -sha256, ${SIZE_MB} MiB | ${dgst} s | |
| shoald ingest, ${SIZE_MB} MiB (incl. ${settle} s settle) | ${ing} s | |
| ratio ingest / dgst | ${ratio}x | <= 3x |
| shoald peak RSS (VmHWM) during the big ingest | $((rss / 1024)) MiB | <= 24 MiB |
| restart + wait (file not re-read: bytes_read=${reread}) | ${restart} s (${pct}% of first ingest) | < 5% |
| 10,000 files of 4 KiB (${nfiles} stored) | ${small} s | < 10 s |
| shoald peak RSS, 10,000 files | $((mrss / 1024)) MiB | |
MD
