#!/usr/bin/env bash
# Installs build/shoal_VERSION_ARCH.deb, checks what it put in place, runs
# shoald from it as user shoal (in a private network namespace, so nothing
# reaches the LAN), installs it again (the upgrade path), purges it and checks
# that nothing is left but the user and group shoal (kept on purge, as Debian
# does). Needs root. Ends with "N passed, M failed".
#   packaging/test-deb.sh VERSION
# shellcheck disable=SC2015  # ok/bad always succeed, so A && ok || bad is safe
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
version=${1:?usage: test-deb.sh VERSION}
[ "$(id -u)" -eq 0 ] || { echo "test-deb: needs root (dpkg -i, dpkg --purge)"; exit 2; }
deb=build/shoal_${version}_$(dpkg --print-architecture).deb
[ -f "$deb" ] || { echo "test-deb: no $deb; run make deb first"; exit 2; }
if dpkg-query -W -f='${Status}' shoal 2>/dev/null | grep -qv 'not-installed'; then
  echo "test-deb: a shoal package is already on this machine; dpkg --purge shoal first"
  exit 2
fi

pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok    $*"; }
bad() { fail=$((fail + 1)); echo "FAIL  $*"; }
check() {  # description command...
  local d=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}
owner_mode() { stat -c '%U:%G %a' "$1" 2>/dev/null; }

tmp=$(mktemp -d /tmp/shoal-test-deb.XXXXXX)
made_srv=""; made_run=""; daemon=""; had_key=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null
  [ -n "$made_srv" ] && rm -rf "$made_srv"
  [ -n "$made_run" ] && rm -rf "$made_run"
  if dpkg-query -W -f='${Status}' shoal 2>/dev/null | grep -qv 'not-installed'; then
    echo "test-deb: purging the package left behind"; dpkg --purge shoal >/dev/null 2>&1
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- install -------------------------------------------------------------------
echo "== dpkg -i $deb"
if dpkg -i "$deb" > "$tmp/install.log" 2>&1; then ok "dpkg -i"; else bad "dpkg -i"; fi
sed 's/^/    /' "$tmp/install.log"

check "user shoal exists" getent passwd shoal
check "group shoal exists" getent group shoal
[ "$(getent passwd shoal | cut -d: -f6)" = /var/lib/shoal ] && ok "home of shoal is /var/lib/shoal" ||
  bad "home of shoal is $(getent passwd shoal | cut -d: -f6)"
for f in /usr/sbin/shoald /usr/bin/shoalctl; do check "$f is executable" test -x "$f"; done
for f in /lib/systemd/system/shoald.service /etc/shoal/shoal.conf; do check "$f exists" test -f "$f"; done
for p in "shoald 8" "shoalctl 1" "shoal.conf 5"; do
  # shellcheck disable=SC2086
  check "man page $p" man -w ${p#* } ${p% *}
done
check "/etc/shoal/shoal.conf is a conffile" \
  sh -c "dpkg-query -W -f='\${Conffiles}' shoal | grep -q ' /etc/shoal/shoal.conf '"
for d in /var/lib/shoal /var/lib/shoal/keys; do
  [ "$(owner_mode $d)" = "shoal:shoal 700" ] && ok "$d is shoal:shoal 700" || bad "$d is $(owner_mode $d)"
done
[ "$(/usr/sbin/shoald --version)" = "shoald $version" ] && ok "shoald --version" || bad "shoald --version"
out=$(/usr/sbin/shoald -t -c /etc/shoal/shoal.conf 2>&1)
[ "$out" = "/etc/shoal/shoal.conf: ok" ] && ok "shoald -t -c /etc/shoal/shoal.conf: $out" ||
  bad "shoald -t: $out"
check "shoald.service is not enabled" test ! -e /etc/systemd/system/multi-user.target.wants/shoald.service

if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify /lib/systemd/system/shoald.service 2>&1)
  [ -z "$out" ] && ok "systemd-analyze verify (no output)" || { bad "systemd-analyze verify"; echo "$out"; }
  line=$(systemd-analyze security --offline=yes --no-pager /lib/systemd/system/shoald.service 2>&1 |
         grep 'Overall exposure')
  level=$(echo "$line" | grep -oE '[0-9]+\.[0-9]+' | head -1)
  awk -v l="${level:-99}" 'BEGIN { exit !(l <= 2.0) }' && ok "security: ${line#→ }" || bad "security: $line"
else
  echo "skip  systemd-analyze not available"
fi

# ---- run it as the service would (without the systemd sandbox) -------------------
# /run/shoal as RuntimeDirectory= makes it; /srv/shoal/drop as the admin would.
if [ ! -e /run/shoal ]; then made_run=/run/shoal; install -d -o shoal -g shoal -m 0750 /run/shoal; fi
if [ ! -e /srv/shoal ]; then made_srv=/srv/shoal; fi
if [ ! -e /srv/shoal/drop ]; then
  [ -n "$made_srv" ] || made_srv=/srv/shoal/drop
  install -d -o shoal -g shoal -m 2775 /srv/shoal/drop
fi
if unshare -n true 2>/dev/null; then
  echo "== shoald as user shoal, in a private network namespace"
  unshare -n sh -c 'ip link set lo up; ip link set lo multicast on;
                    ip route add 224.0.0.0/4 dev lo 2>/dev/null;
                    exec setpriv --reuid=shoal --regid=shoal --init-groups /usr/sbin/shoald -c /etc/shoal/shoal.conf' \
    > "$tmp/shoald.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 50); do [ -S /run/shoal/shoald.sock ] && break; sleep 0.1; done
  check "control socket /run/shoal/shoald.sock" test -S /run/shoal/shoald.sock
  [ "$(owner_mode /run/shoal/shoald.sock)" = "shoal:shoal 660" ] && ok "socket is shoal:shoal 660" ||
    bad "socket is $(owner_mode /run/shoal/shoald.sock)"
  key=/var/lib/shoal/keys/default.key
  [ "$(owner_mode $key)" = "shoal:shoal 600" ] && { had_key=1; ok "shoald created $key (shoal:shoal 600)"; } ||
    bad "$key is $(owner_mode $key)"
  st=$(shoalctl status 2>&1)
  [ "$(echo "$st" | awk '$1 == "default" { print $NF }')" = ok ] && ok "shoalctl status: share default ok" ||
    { bad "shoalctl status"; echo "$st"; }
  cp /etc/services /srv/shoal/drop/test-deb.txt
  check "shoalctl wait --timeout 10" shoalctl wait --timeout 10
  shoalctl files | grep -q 'test-deb.txt.*stored' && ok "shoalctl files lists the dropped file" ||
    bad "shoalctl files"
  # The socket's permissions: group shoal may use it, others may not.
  check "a member of group shoal can use shoalctl" \
    setpriv --reuid=nobody --regid=nogroup --groups=shoal shoalctl status
  check "a user outside group shoal cannot" \
    sh -c '! setpriv --reuid=nobody --regid=nogroup --clear-groups shoalctl status'
  kill -TERM "$daemon"
  for _ in $(seq 1 20); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$daemon" 2>/dev/null; then bad "shoald stops within 2 s of SIGTERM"
  else wait "$daemon"; rc=$?; daemon=""
       [ $rc -eq 0 ] && ok "shoald stops within 2 s of SIGTERM, exit 0" || bad "shoald exit $rc"; fi
  sed 's/^/    /' "$tmp/shoald.log"
else
  echo "skip  run test: cannot create a network namespace here (it must not touch the LAN)"
fi

# ---- install again over itself (the upgrade path) ---------------------------------
printf '\n; test-deb edit\n' >> /etc/shoal/shoal.conf
if dpkg -i "$deb" > "$tmp/reinstall.log" 2>&1; then ok "dpkg -i again (upgrade path)"; else
  bad "dpkg -i again"; sed 's/^/    /' "$tmp/reinstall.log"; fi
check "the edited conffile is kept" grep -q 'test-deb edit' /etc/shoal/shoal.conf
[ -z "$had_key" ] || check "the key survives the upgrade" test -f /var/lib/shoal/keys/default.key

# ---- purge ----------------------------------------------------------------------------
echo "== dpkg --purge shoal"
if dpkg --purge shoal > "$tmp/purge.log" 2>&1; then ok "dpkg --purge"; else bad "dpkg --purge"; fi
sed 's/^/    /' "$tmp/purge.log"
for f in /etc/shoal /usr/sbin/shoald /usr/bin/shoalctl /var/lib/shoal \
         /lib/systemd/system/shoald.service /usr/share/doc/shoal \
         /usr/share/man/man8/shoald.8.gz /usr/share/man/man1/shoalctl.1.gz \
         /usr/share/man/man5/shoal.conf.5.gz; do
  check "gone: $f" test ! -e "$f"
done
check "dpkg no longer knows shoal" sh -c "! dpkg-query -W shoal 2>/dev/null | grep -q ."
getent passwd shoal >/dev/null && echo "note  user and group shoal are kept on purge (Debian practice)"

echo "test-deb: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
