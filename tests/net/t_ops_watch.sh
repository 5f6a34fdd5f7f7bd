#!/usr/bin/env bash
# shoalctl transfers --watch during a slow (max_rate) transfer: on a terminal
# (script(1) gives it a pty) the bars move and are redrawn in place; piped,
# it prints plain lines. wait --progress then follows the transfer to its end.
set -u
source tests/net/rep_lib.sh
command -v script > /dev/null || fail "script(1) (bsdutils) is not installed"
rep_lan 2
rep_start 1 net.max_rate=4mbit
rep_start 2 net.max_rate=4mbit
SOCK2=$(rep_dir 2)/ctl.sock

out=$("$SHOALCTL" -s /nonexistent/ctl.sock transfers --watch 2>&1) && fail "--watch without a daemon exited 0"
[[ $out == *"shoald is not running"* ]] || fail "--watch without a daemon: unclear error: $out"

make_random_file "$(rep_drop 1)/slow.bin" 4M  # 4 MiB at 4 Mbit/s: about 8 s
wait_until 10 eval '[ "$(ctl 2 transfers --json | jq ".transfers | length")" -gt 0 ]' ||
  rfail "no transfer started on box 2"

TTY_OUT=$_LAN_DIR/watch_tty.txt PLAIN_OUT=$_LAN_DIR/watch_plain.txt
script -q -c "timeout --preserve-status -s INT 4 $SHOALCTL -s $SOCK2 transfers --watch" /dev/null > "$TTY_OUT" &
tty_pid=$!
timeout --preserve-status -s INT 4 "$SHOALCTL" -s "$SOCK2" transfers --watch > "$PLAIN_OUT"
plain_rc=$?
wait "$tty_pid"
[ "$plain_rc" = 0 ] || rfail "plain --watch exited $plain_rc after Ctrl-C"

# Percentages on bar lines ("NAME [###...]  42% ..."), and cursor-up redraws.
pcts=$(grep -aoE '\[[#.]+\] +[0-9]+%' "$TTY_OUT" | grep -oE '[0-9]+%$' | sort -u)
[ "$(echo "$pcts" | grep -c %)" -ge 2 ] ||
  { cat -v "$TTY_OUT" | tail -20 >&2; rfail "fewer than two different percentages on a terminal: $pcts"; }
grep -qaP '\x1b\[[0-9]+A' "$TTY_OUT" || rfail "no ANSI cursor-up redraw on a terminal"
grep -qaE "slow.bin +\\[" "$TTY_OUT" || { cat -v "$TTY_OUT" | head -5 >&2; rfail "no bar line for slow.bin"; }
grep -qaE '^total \(1 file\) \[' <(tr '\r' '\n' < "$TTY_OUT" | sed 's/\x1b\[[0-9]*[A-J]//g') ||
  rfail "no total line"
echo "ok: terminal bars at $(echo $pcts | tr '\n' ' ')with $(grep -aoP '\x1b\[[0-9]+A' "$TTY_OUT" | wc -l) redraws"

grep -q $'\x1b' "$PLAIN_OUT" && rfail "escape sequences in piped output"
grep -qE '^slow\.bin [0-9]+% .* ETA ' "$PLAIN_OUT" || { cat "$PLAIN_OUT" >&2; rfail "no plain progress line"; }
echo "ok: piped output is plain lines:"; sed 's/^/    /' "$PLAIN_OUT"

ctl 2 wait --progress --timeout 60 > "$_LAN_DIR/wait.txt" ||
  { cat "$_LAN_DIR/wait.txt" >&2; rfail "wait --progress did not finish"; }
grep -q '^pending: ' "$_LAN_DIR/wait.txt" || rfail "wait --progress printed no pending line"
rep_wait_same 30 1 2
echo "ok: wait --progress followed the transfer to its end:"; sed 's/^/    /' "$_LAN_DIR/wait.txt"
