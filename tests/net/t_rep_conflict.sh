#!/usr/bin/env bash
# Two boxes change the same file while apart: both end with the later
# version under the name and the other beside it as
# NAME.shoal-conflict-NODE-TIME, so nothing is lost. Also: a sendonly box
# never writes into its folder, a receiveonly box never offers local files.
set -u
source tests/net/rep_lib.sh
rep_lan 4
rep_start 1; rep_start 2
echo "version 0" > "$(rep_drop 1)/f.txt"
rep_wait_same 30 1 2
put() {  # BOX TEXT DATE: replace f.txt on BOX with TEXT, mtime DATE
  local tmp; tmp=$(rep_dir "$1")/put.tmp
  echo "$2" > "$tmp"; touch -d "$3" "$tmp"; mv "$tmp" "$(rep_drop "$1")/f.txt"
}
rep_stop 2
put 1 "version from h1" "2026-01-01 00:00:00 UTC"
wait_until 10 bash -c "[ \"\$('$SHOALCTL' -s '$(rep_dir 1)/ctl.sock' files --json | jq -r '.files[] | select(.path==\"f.txt\") | .size')\" = 16 ]" \
  || rfail "box 1 did not ingest its change"
ctl 1 wait --timeout 10 || true
rep_stop 1
rep_start 2
put 2 "version from h2" "2026-01-02 00:00:00 UTC"
ctl 2 wait --timeout 10 || true
rep_start 1
copy=f.txt.shoal-conflict-h1-20260101T000000Z
for i in 1 2; do
  wait_until 30 test -f "$(rep_drop "$i")/$copy" || rfail "box $i has no conflict copy $copy"
done
rep_wait_same 30 1 2
[ "$(cat "$(rep_drop 1)/f.txt")" = "version from h2" ] || rfail "the later version did not win"
[ "$(cat "$(rep_drop 1)/$copy")" = "version from h1" ] || rfail "the losing version was not kept"
ls "$(rep_drop 1)"
echo "ok: conflict resolved the same way on both boxes, nothing lost"

# sendonly and receiveonly
rep_start 3 mode=sendonly
rep_start 4 mode=receiveonly
echo "from 3" > "$(rep_drop 3)/only3.txt"
echo "from 4" > "$(rep_drop 4)/only4.txt"
wait_until 30 test -f "$(rep_drop 1)/only3.txt" || rfail "sendonly box did not send"
wait_until 30 test -f "$(rep_drop 4)/only3.txt" || rfail "receiveonly box did not receive"
sleep 2
[ ! -e "$(rep_drop 3)/f.txt" ] || rfail "sendonly box wrote into its folder"
[ ! -e "$(rep_drop 1)/only4.txt" ] || rfail "receiveonly box offered a local file"
echo "ok: sendonly sends only, receiveonly receives only"
