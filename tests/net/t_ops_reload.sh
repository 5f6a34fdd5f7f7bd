#!/usr/bin/env bash
# Config reload without a restart (SIGHUP and `shoalctl reload`), two boxes:
# a share appended to the config starts replicating; a broken edit is
# refused with FILE:LINE and the old config keeps running; a removed share
# disappears from status while the others go on; a share re-added with the
# same key replicates again (new epoch), also when only one box restarts
# it; max_rate applies, port needs a
# restart. The daemons' pids never change.
set -u
source tests/net/rep_lib.sh
rep_lan 2
for i in 1 2; do rep_start "$i"; done
pid1=$(rep_pid 1) pid2=$(rep_pid 2)

conf() { echo "$(rep_dir "$1")/shoald.conf"; }
drop_b() { echo "$(rep_dir "$1")/drop_b"; }
same_pids() {
  [ "$(rep_pid 1)" = "$pid1" ] && [ "$(rep_pid 2)" = "$pid2" ] &&
    _pid_alive "$pid1" && _pid_alive "$pid2"
}
# share_state I NAME: the share's state in box I's status ("" when not listed).
share_state() { sget "$1" ".shares[] | select(.name == \"$2\") | .state"; }
share_ok() { [ "$(share_state "$1" "$2")" = ok ]; }
# same_file A B: file B exists and holds the same bytes as file A.
same_file() { [ -f "$2" ] && [ "$(sha256sum < "$1")" = "$(sha256sum < "$2")" ]; }

# 1. Share s (the default) replicates.
make_random_file "$(rep_drop 1)/a1.bin" 2M
rep_wait_same 60 1 2
echo "ok: share s replicates"

# 2. Append share b to both configs, SIGHUP: it starts, no restart.
for i in 1 2; do
  mkdir -p "$(drop_b "$i")"
  (umask 077 && echo "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100" \
    > "$(rep_dir "$i")/b.key")
  cat >> "$(conf "$i")" <<EOF
[share b]
path = $(drop_b "$i")
group = 239.77.0.2:7701
key_file = $(rep_dir "$i")/b.key
settle_ms = 100
EOF
  cp "$(conf "$i")" "$(conf "$i").good"
  kill -HUP "$(rep_pid "$i")"
done
for i in 1 2; do
  wait_until 10 share_ok "$i" b || rfail "box $i: share b not ok after SIGHUP"
  grep -q "config reloaded: shares added: b" "$(rep_dir "$i")/log" || rfail "box $i: no reload line"
done
make_random_file "$(drop_b 1)/b1.bin" 3M
wait_until 60 same_file "$(drop_b 1)/b1.bin" "$(drop_b 2)/b1.bin" ||
  rfail "b1.bin did not reach box 2 through share b"
same_pids || rfail "a shoald pid changed or died"
echo "ok: share b added by SIGHUP replicates, pids unchanged"

# 3. A broken edit (misspelt key) is refused; the running config stays.
sed -i 's/^settle_ms = 100$/setle_ms = 100/' "$(conf 1)"
bad_line=$(grep -n '^setle_ms' "$(conf 1)" | head -1 | cut -d: -f1)
kill -HUP "$pid1"
want="$(conf 1):$bad_line: unknown key 'setle_ms' in \[share s\]"
wait_until 10 grep -q "$want" "$(rep_dir 1)/log" || rfail "no FILE:LINE error in the log: $want"
grep -q "config not reloaded" "$(rep_dir 1)/log" || rfail "no 'not reloaded' line"
out=$(ctl 1 reload 2>&1) && rfail "shoalctl reload of a broken config exited 0"
echo "$out" | grep -q "^$want" || rfail "shoalctl reload did not print FILE:LINE: $out"
$SHOALD -t -c "$(conf 1)" | grep -q "^$want" || rfail "shoald -t says otherwise"
{ share_ok 1 s && share_ok 1 b; } || rfail "shares changed after a refused reload"
make_random_file "$(drop_b 1)/b2.bin" 1M
wait_until 60 same_file "$(drop_b 1)/b2.bin" "$(drop_b 2)/b2.bin" ||
  rfail "share b stopped replicating after a refused reload"
same_pids || rfail "a shoald pid changed or died"
echo "ok: broken config refused with FILE:LINE (log and shoalctl, exit 1), old config runs"

# 4. Remove share s with `shoalctl reload`: gone from status, b goes on.
for i in 1 2; do
  awk '/^\[share s\]/ {skip = 1; next} /^\[/ {skip = 0} !skip' "$(conf "$i").good" > "$(conf "$i")"
  out=$(ctl "$i" reload) || rfail "box $i: shoalctl reload failed: $out"
  echo "$out" | grep -q "^shares removed: s$" || rfail "box $i: reload summary: $out"
  [ -z "$(share_state "$i" s)" ] || rfail "box $i still lists share s"
done
echo "gone" > "$(rep_drop 1)/after-removal.txt"
make_random_file "$(drop_b 1)/b3.bin" 1M
wait_until 60 same_file "$(drop_b 1)/b3.bin" "$(drop_b 2)/b3.bin" ||
  rfail "share b stopped replicating after share s was removed"
sleep 1
[ ! -e "$(rep_drop 2)/after-removal.txt" ] || rfail "removed share s still replicates"
same_pids || rfail "a shoald pid changed or died"
echo "ok: share s removed by shoalctl reload; b still replicates"

# 5. Share s back with the same key: a new epoch, and it replicates again.
for i in 1 2; do
  cp "$(conf "$i").good" "$(conf "$i")"
  kill -HUP "$(rep_pid "$i")"
done
for i in 1 2; do
  wait_until 10 share_ok "$i" s || rfail "box $i: share s not back"
  grep -q "new epoch" "$(rep_dir "$i")/log" || rfail "box $i: no new epoch after re-adding s"
done
make_random_file "$(rep_drop 2)/a2.bin" 1M
rep_wait_same 60 1 2
rep_wait_same 60 2 1
echo "ok: share s re-added (same key, new epoch) replicates both ways"

# 5b. Share s changed on box 1 only: restarted there, while box 2 keeps its
# replay state for box 1. Counters restart at 0, so only the new epoch gets
# box 1's packets past box 2's replay check.
replays=$(sget 2 .drops.replay)
sed -i '0,/^settle_ms = 100$/s//settle_ms = 150/' "$(conf 1)"
out=$(ctl 1 reload) || rfail "reload failed: $out"
echo "$out" | grep -q "^shares restarted (settings changed): s$" || rfail "reload summary: $out"
wait_until 10 share_ok 1 s || rfail "box 1: share s not back after a change"
make_random_file "$(rep_drop 1)/a4.bin" 1M
rep_wait_same 60 1 2
[ "$(sget 2 .drops.replay)" = "$replays" ] ||
  rfail "box 2 dropped box 1's packets as replays ($replays -> $(sget 2 .drops.replay)): counters reused"
echo "ok: share s changed on one box is restarted there and still reaches the other"

# 6. max_rate applies in place; a port change needs a restart.
sed -i 's/^port = .*/port = 7790\nmax_rate = 20mbit/' "$(conf 1)"
json=$(ctl 1 reload --json) || rfail "reload --json failed"
[ "$(echo "$json" | jq -c .updated)" = '["net.max_rate"]' ] || rfail "updated: $json"
[ "$(echo "$json" | jq -c .restart_needed)" = '["net.port"]' ] || rfail "restart_needed: $json"
grep -q "net.port changed: restart shoald to apply" "$(rep_dir 1)/log" || rfail "no port warning"
[ "$(sget 1 .net.port)" = "$REP_PORT" ] || rfail "the port changed without a restart"
make_random_file "$(rep_drop 1)/a3.bin" 1M
rep_wait_same 60 1 2
for i in 1 2; do no_leftovers "$i"; done
same_pids || rfail "a shoald pid changed or died"
echo "ok: max_rate applied, port kept until a restart; pids unchanged throughout"
