#!/usr/bin/env bash
# 1 sender + 3 receivers: a 64 MiB file and a tree of 200 small files arrive
# identical everywhere; a file dropped on another box reaches all the others;
# a box that starts after the others finished gets everything.
set -u
source tests/net/rep_lib.sh
rep_lan 5
for i in 1 2 3 4; do rep_start "$i"; done
make_random_file "$(rep_drop 1)/big.bin" 64M
make_tree "$(rep_drop 1)/tree" 200
rep_wait_same 120 1 2 3 4
for i in 2 3 4; do no_leftovers "$i"; done
[ "$(find "$(rep_drop 2)" -type f | wc -l)" = 201 ] || rfail "unexpected file count"
echo "ok: 64 MiB + 200 files on 3 receivers"
sent=$(sget 1 .net.data_bytes_out)
echo "sender data bytes: $sent (file bytes: $(du -sb "$(rep_drop 1)" | cut -f1))"

make_random_file "$(rep_drop 3)/from3.bin" 3M
echo "edit" > "$(rep_drop 4)/tree/from4.txt"
rep_wait_same 60 3 1 2 4
echo "ok: files dropped on boxes 3 and 4 reach every box"

rep_start 5
rep_wait_same 60 1 5
no_leftovers 5
echo "ok: a late box gets every file"
