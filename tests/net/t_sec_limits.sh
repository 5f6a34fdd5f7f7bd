#!/usr/bin/env bash
# Per-share limits (shoal.conf(5) max_file_size, max_files). Box 2 takes at
# most 1 MiB per file and 3 files: it gets the 512 KiB file but not the
# 2 MiB one (refused before any chunk, counted, logged once), does not ingest
# a 2 MiB file of its own, stops at 3 files (the rest counted), and still
# takes updates of files it holds.
set -u
source tests/net/rep_lib.sh
rep_lan 2
rep_start 1
rep_start 2 max_file_size=1M max_files=3
d1=$(rep_drop 1) d2=$(rep_drop 2) log2=$(rep_dir 2)/log
stored2() { ctl 2 files s --json | jq '[.files[] | select(.state == "stored")] | length'; }
files2() { find "$d2" -type f | wc -l; }

make_random_file "$d1/a.bin" 512K
make_random_file "$d1/big.bin" 2M
wait_until 30 test -f "$d2/a.bin" || rfail "a.bin (512 KiB) did not arrive"
[ "$(sha256sum < "$d2/a.bin")" = "$(sha256sum < "$d1/a.bin")" ] || rfail "a.bin differs"
too_large() { [ "$(sget 2 .net.drops.file_too_large)" -ge 1 ]; }
wait_until 20 too_large || rfail "the 2 MiB file was not refused (drops.file_too_large = 0)"
sleep 1
[ ! -e "$d2/big.bin" ] || rfail "box 2 wrote big.bin"
no_leftovers 2
fetched=$(ctl 2 transfers --json | jq '[.transfers[] | select(.path == "big.bin")] | length')
[ "$fetched" = 0 ] || rfail "big.bin is still being fetched"
n=$(grep -c 'refusing big\.bin' "$log2")
[ "$n" = 1 ] || rfail "the refusal was logged $n times, expected once"
[ "$(sget 2 .net.drops.file_too_large)" = 1 ] || rfail "file_too_large = $(sget 2 .net.drops.file_too_large), expected 1"
echo "ok: 512 KiB taken, 2 MiB refused (counted and logged once)"

make_random_file "$d2/local.bin" 2M
wait_until 10 grep -q 'not ingesting local\.bin' "$log2" || rfail "no warning for the oversize local file"
listed=$(ctl 2 files s --json | jq '[.files[] | select(.path == "local.bin")] | length')
[ "$listed" = 0 ] || rfail "box 2 ingested local.bin (2 MiB) over its max_file_size"
rm -f "$d2/local.bin"
echo "ok: a local file over max_file_size is not ingested"

for k in 1 2 3 4; do make_random_file "$d1/n$k.bin" 20K; done
many() { [ "$(sget 2 .net.drops.too_many_files)" -ge 2 ]; }
wait_until 30 many || rfail "too_many_files = $(sget 2 .net.drops.too_many_files), expected >= 2"
at3() { [ "$(files2)" = 3 ]; }
wait_until 20 at3 || rfail "box 2 holds $(files2) files, expected 3"
sleep 2
[ "$(files2)" = 3 ] && [ "$(stored2)" = 3 ] || rfail "box 2 went past max_files: $(files2) files, $(stored2) stored"
[ "$(sget 2 .net.drops.too_many_files)" = 2 ] || rfail "too_many_files = $(sget 2 .net.drops.too_many_files), expected 2"
echo "ok: max_files = 3 stops at 3 files ($(sget 2 .net.drops.too_many_files) refused)"

head -c 1000 /dev/urandom >> "$d1/a.bin"
same_a() { [ "$(sha256sum < "$d2/a.bin")" = "$(sha256sum < "$d1/a.bin")" ]; }
wait_until 30 same_a || rfail "an update of a file box 2 holds did not arrive"
[ "$(files2)" = 3 ] || rfail "box 2 holds $(files2) files after the update"
echo "ok: updates of held files still pass at the limit"
