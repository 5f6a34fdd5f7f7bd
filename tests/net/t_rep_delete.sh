#!/usr/bin/env bash
# delete = keep (default): a file deleted on one box stays on the others.
# delete = propagate: it is deleted everywhere, unless a box changed it
# meanwhile (a change wins over a deletion).
set -u
source tests/net/rep_lib.sh
rep_lan 4
rep_start 1; rep_start 2
echo keep > "$(rep_drop 1)/k.txt"
rep_wait_same 30 1 2
rm "$(rep_drop 1)/k.txt"
sleep 3
[ -f "$(rep_drop 2)/k.txt" ] || rfail "delete = keep removed the file on the other box"
echo "ok: delete = keep"

rep_start 3 delete=propagate
rep_start 4 delete=propagate
echo one > "$(rep_drop 3)/p.txt"
echo two > "$(rep_drop 3)/q.txt"
wait_until 30 test -f "$(rep_drop 4)/q.txt" -a -f "$(rep_drop 4)/p.txt" || rfail "files did not arrive"
rm "$(rep_drop 3)/p.txt"
wait_until 30 test ! -e "$(rep_drop 4)/p.txt" || rfail "propagated delete did not remove p.txt"
[ -f "$(rep_drop 4)/q.txt" ] || rfail "q.txt vanished"
echo "ok: delete = propagate"
