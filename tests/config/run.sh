#!/usr/bin/env bash
# Config golden tests: every tests/config/good/*.conf must pass `shoald -t`
# (exit 0, "FILE: ok"); every tests/config/bad/NAME.conf must fail (exit 1)
# with exactly the lines in NAME.expected. Runs from the repo root so FILE in
# the messages reads tests/config/bad/NAME.conf.
#   BUILD=build tests/config/run.sh
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
shoald="$BUILD/shoald"
[ -x "$shoald" ] || { echo "no $shoald: run make first"; exit 2; }
pass=0; fail=0

check() {  # file want_rc want_output
  local out rc
  out=$("$shoald" -t -c "$1" 2>&1); rc=$?
  if [ "$rc" -eq "$2" ] && [ "$out" == "$3" ]; then
    pass=$((pass + 1)); echo "ok    $1"
  else
    fail=$((fail + 1)); echo "FAIL  $1 (exit $rc, want $2)"
    diff <(printf '%s\n' "$3") <(printf '%s\n' "$out") | sed 's/^/      /'
  fi
}

for f in tests/config/good/*.conf; do check "$f" 0 "$f: ok"; done
for f in tests/config/bad/*.conf; do
  exp="${f%.conf}.expected"
  if [ ! -f "$exp" ]; then fail=$((fail + 1)); echo "FAIL  $f (no $exp)"; continue; fi
  check "$f" 1 "$(cat "$exp")"
done
check config/shoal.conf 0 "config/shoal.conf: ok"
echo "config golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
