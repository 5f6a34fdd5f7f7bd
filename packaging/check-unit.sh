#!/usr/bin/env bash
# Checks systemd/shoald.service without installing anything:
#   systemd-analyze verify   (the unit points at /usr/sbin/shoald, so a copy
#                             with ExecStart at the built binary is checked,
#                             and man pages are looked up in ./man)
#   systemd-analyze security (offline; exposure must be at most 2.0)
#   packaging/check-unit.sh build/shoald
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build/shoald}")
[ -x "$bin" ] || { echo "check-unit: no $bin; run make first"; exit 2; }
command -v systemd-analyze >/dev/null || { echo "check-unit: systemd-analyze not found"; exit 2; }
tmp=$(mktemp -d /tmp/shoal-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/unit" "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man8"
cp man/shoalctl.1 "$tmp/man/man1/"; cp man/shoal.conf.5 "$tmp/man/man5/"; cp man/shoald.8 "$tmp/man/man8/"
sed "s|^ExecStart=/usr/sbin/shoald|ExecStart=$bin|" systemd/shoald.service > "$tmp/unit/shoald.service"

echo "== systemd-analyze verify"
out=$(MANPATH="$tmp/man:$(manpath 2>/dev/null || true)" systemd-analyze verify "$tmp/unit/shoald.service" 2>&1) || rc=$?
echo "${out:-(no output)}"
if [ "${rc:-0}" -ne 0 ] || [ -n "$out" ]; then echo "check-unit: verify is not clean"; exit 1; fi

echo "== systemd-analyze security --offline=yes"
sec=$(systemd-analyze security --offline=yes --no-pager systemd/shoald.service 2>&1)
echo "$sec" | grep -E '^✗' || true
line=$(echo "$sec" | grep 'Overall exposure level')
echo "$line"
level=$(echo "$line" | grep -oE '[0-9]+\.[0-9]+' | head -1)
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || { echo "check-unit: exposure $level > 2.0"; exit 1; }
echo "check-unit: ok"
