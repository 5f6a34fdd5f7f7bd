#!/usr/bin/env bash
# Box A sends a file to box B; A stops; box C starts and gets it from B.
# Then with multicast off and static peers, replication still works.
set -u
source tests/net/rep_lib.sh
rep_lan 3
rep_start 1; rep_start 2
make_random_file "$(rep_drop 1)/a.bin" 8M
# Versions that share chunks (copies) all arrive, each chunk sent once.
make_random_file "$(rep_dir 1)/small" 40K
for n in c1 c2 c3 c4; do cp "$(rep_dir 1)/small" "$(rep_drop 1)/$n.bin"; done
rep_wait_same 60 1 2
rep_stop 1
rep_start 3
rep_wait_same 60 2 3
[ "$(cmp "$(rep_drop 2)/a.bin" "$(rep_drop 3)/a.bin" && echo same)" = same ] || rfail "C's copy differs"
[ "$(sget 2 .net.data_bytes_out)" -ge 8388608 ] || rfail "B did not serve the file"
echo "ok: C got the file from B after A stopped"
