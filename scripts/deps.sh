#!/usr/bin/env bash
# Installs the Debian packages shoal needs to build and test, only when missing.
# Runs `apt-get update` first so a fresh machine (or CI) finds current lists.
# curl and prometheus (for promtool) are test-only: t_ops_metrics.sh scrapes
# the metrics endpoint and checks the exposition format with promtool.
set -euo pipefail
pkgs=(g++ make pkg-config libevent-dev libinih-dev libsqlite3-dev libssl-dev
      libsystemd-dev cpputest nlohmann-json3-dev iproute2 nftables jq openssl
      sqlite3 procps psmisc socat curl prometheus libisal-dev)
if [ "${1:-}" = "--bench" ]; then pkgs+=(uftp udpcast gnuplot-nox linux-perf ethtool); fi
missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
