#!/usr/bin/env bash
# A peer with the share key serves versions whose manifest paths escape the
# share (.., absolute, reserved names) or go through symlinks planted in the
# receiver's folder, among garbage datagrams (some sealed with the right key).
# The receiver takes the good file (minus its setuid/setgid bits), writes
# nothing outside its share, keeps running and counts every refused version.
set -u
source tests/net/rep_lib.sh
FORGE=$PWD/$BUILD/tools/shoal_forge
[ -x "$FORGE" ] || fail "$FORGE missing: run make tools"
rep_lan 2
X=shoal-sec-x-$$
out=$(mktemp -d /tmp/shoal-sec-outside.XXXXXX)
out2=$(mktemp -d /tmp/shoal-sec-outside2.XXXXXX)
at_exit "rm -rf -- '$out' '$out2' '/tmp/$X' '/etc/$X' '/$X'"
echo "keep me" > "$out2/target.txt"
keep_sum=$(sha256sum < "$out2/target.txt")

rep_start 2
drop=$(rep_drop 2)
ln -s "$out" "$drop/link"
ln -s "$out2/target.txt" "$drop/flink"
src=$_LAN_DIR/forge-src
mkdir -p "$src"
make_random_file "$src/ok.bin" 200K
chmod 6755 "$src/ok.bin"  # setuid + setgid: must not survive publishing
bad_paths=("../../$X" "/etc/$X" "a/../../$X" "/tmp/$X" "./$X" ".shoal-tmp-$X" "link/evil.txt" "flink")
args=(--file "ok.txt=$src/ok.bin")
# Distinct contents: versions sharing a chunk are a different test.
for k in "${!bad_paths[@]}"; do
  echo "pwned $k" > "$src/evil$k"
  args+=(--file "${bad_paths[k]}=$src/evil$k")
done

lan_bg 1 "$_LAN_DIR/forge.log" "$FORGE" --key-file "$(rep_dir 2)/share.key" \
  --bind "$(lan_ip 1)" --port "$REP_PORT" --group "$REP_GROUP" \
  --peer "$(lan_ip 2):$REP_PORT" --name forge --duration 8 --garbage 1500 "${args[@]}" > /dev/null
forge_pid=$LAN_LAST_PID

refused_all() { [ "$(sget 2 .net.paths_refused)" -ge "${#bad_paths[@]}" ]; }
wait_until 20 test -f "$drop/ok.txt" || rfail "ok.txt did not arrive"
[ "$(sha256sum < "$drop/ok.txt")" = "$(sha256sum < "$src/ok.bin")" ] || rfail "ok.txt differs"
mode=$(stat -c %a "$drop/ok.txt")
[ "$mode" = 755 ] || rfail "ok.txt published with mode $mode, expected 755 (no setuid/setgid)"
echo "ok: the good file arrived intact, without its setuid/setgid bits"
wait_until 20 refused_all ||
  rfail "paths_refused = $(sget 2 .net.paths_refused), expected >= ${#bad_paths[@]} (one per bad path)"
echo "ok: $(sget 2 .net.paths_refused) hostile versions refused and counted"

lan_wait "$forge_pid" 20 || rfail "forge failed or hung"
stats=$(grep '^{' "$_LAN_DIR/forge.log") || rfail "no forge counters"
echo "forge: $stats"
[ "$(jq .requests_served <<< "$stats")" -ge 2 ] || rfail "the forge was never asked for anything"

# Nothing outside the share.
left=$(find "$_LAN_DIR" -name "*$X*" 2>/dev/null)
[ -z "$left" ] || rfail "written outside the share: $left"
for f in "/tmp/$X" "/etc/$X" "/$X" "$(dirname "$_LAN_DIR")/$X"; do
  [ ! -e "$f" ] || rfail "written outside the share: $f"
done
[ -z "$(ls -A "$out")" ] || rfail "written through the dir symlink: $(ls -A "$out")"
[ "$(sha256sum < "$out2/target.txt")" = "$keep_sum" ] || rfail "file symlink target was changed"
[ -L "$drop/flink" ] && [ -L "$drop/link" ] || rfail "the planted symlinks were replaced"
listing=$(cd "$drop" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | tr '\n' ' ')
[ "$listing" = "flink link ok.txt " ] || rfail "unexpected share content: $listing"
echo "ok: nothing written outside the share or through symlinks"

kill -0 "$(rep_pid 2)" 2>/dev/null || rfail "the box died"
ctl 2 status > /dev/null || rfail "the box stopped answering"
# The forge's garbage includes junk sealed with the right key: decoders saw it.
[ "$(sget 2 .net.drops.malformed)" -gt 0 ] || rfail "no authenticated junk reached the decoders"
echo "ok: the box keeps running (drops: $(ctl 2 status --json | jq -c .net.drops))"
