#!/usr/bin/env bash
# deps.sh GROUP — installs the Debian packages a make target needs, if missing.
# GROUP: build | test | lint | fuzz | bench. As root it runs apt-get; otherwise it
# prints the exact command to run and fails.
set -euo pipefail

group=${1:-build}
build_pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev
            libcurl4-openssl-dev libssl-dev libpq-dev postgresql python3 python3-venv
            curl ca-certificates bubblewrap)
case "$group" in
  build) pkgs=("${build_pkgs[@]}") ;;
  test)  pkgs=("${build_pkgs[@]}" libcriterion-dev openssl) ;;
  lint)  pkgs=("${build_pkgs[@]}" libcriterion-dev clang clang-format clang-tidy cppcheck shellcheck) ;;
  # libclang-rt-14-dev holds libFuzzer's runtime (Debian 12's clang is 14).
  fuzz)  pkgs=("${build_pkgs[@]}" clang libclang-rt-14-dev) ;;
  bench) pkgs=("${build_pkgs[@]}" wrk postgresql-contrib) ;;
  *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "ml-gateway needs these Debian packages; install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
