#!/usr/bin/env bash
# Builds the Debian package into build/: copies the source tree (without
# build output) to a temp dir, adds packaging/debian as debian/, runs
# dpkg-buildpackage -b there, then lintian on the result when installed.
#   packaging/build-deb.sh VERSION
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: build-deb.sh VERSION}
deb_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version 2>/dev/null || true)
if [ -n "$deb_version" ] && [ "${deb_version%%-*}" != "$version" ]; then
  echo "deb: packaging/debian/changelog is at $deb_version but the Makefile says $version;"
  echo "     add a changelog entry (dch -v $version) first"
  exit 1
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
install_missing() {  # packages...
  local missing=() p st
  for p in "$@"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "deb: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
install_missing dpkg-dev debhelper
# The build dependencies named in debian/control, as dpkg-checkbuilddeps sees them.
need=$(dpkg-checkbuilddeps packaging/debian/control 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
       sed -E 's/\([^)]*\)//g; s/\|[^ ]*//g')
# shellcheck disable=SC2086
[ -n "$need" ] && install_missing $need

tmp=$(mktemp -d /tmp/shoal-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
src="$tmp/shoal-$version"
mkdir "$src"
tar --exclude=./build --exclude=./build-san --exclude=./.git --exclude=./var --exclude=./drop \
    -cf - . | tar -xf - -C "$src"
cp -a packaging/debian "$src/debian"
echo "deb: dpkg-buildpackage in $src"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
   dpkg-buildpackage -us -uc -b) > "$tmp/build.log" 2>&1 || {
  tail -40 "$tmp/build.log"; echo "deb: dpkg-buildpackage failed"; exit 1; }
mkdir -p build
debs=("$tmp"/shoal_*.deb)
cp "${debs[@]}" build/
for d in "${debs[@]}"; do echo "deb: build/$(basename "$d")"; done

if command -v lintian >/dev/null; then
  echo "deb: lintian"
  lintian --fail-on error --info --display-info "${debs[@]/#$tmp/build}"
  echo "deb: lintian found no errors"
else
  echo "deb: lintian not installed; skipped (apt-get install lintian)"
fi
