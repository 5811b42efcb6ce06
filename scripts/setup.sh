#!/usr/bin/env bash
# Installs meshkv's build dependencies from Debian packages (non-interactive,
# idempotent) and builds a Release tree in ./build.
#   MESHKV_WERROR=OFF do not treat warnings as errors (the default is ON: the
#                     supported toolchain, Debian 12's g++ 12, builds clean,
#                     and tests and CI then reuse this build as it is)
#   MESHKV_NO_BUILD=1 install only
#   --install, or MESHKV_INSTALL=1: after building, also run `cmake --install
#                     build` (the binary, the man page and the bash, zsh and
#                     fish completions under /usr/local; with sudo unless root)
set -euo pipefail
cd "$(dirname "$0")/.."

install="${MESHKV_INSTALL:-0}"
for arg in "$@"; do
  case $arg in
    --install) install=1 ;;
    *) echo "setup: unknown argument '$arg' (only --install)" >&2; exit 2 ;;
  esac
done

# tcpdump: tests/proc_security.sh captures the mesh's traffic on loopback to
# show that no key or value crosses it in the clear. gnuplot-nox:
# scripts/bench.sh plots the latency distributions. libzstd-dev: only the
# measurement build/meshkv_bench_zstd (does compressing delta chunks pay?);
# meshkv itself does not use zstd.
packages=(build-essential cmake file libasio-dev libcli11-dev libtomlplusplus-dev
  libsodium-dev doctest-dev libedit-dev libbsd-dev libmd-dev libncurses-dev
  clang libclang-rt-14-dev groff-base bash-completion iproute2 tcpdump
  curl prometheus gnuplot-nox libzstd-dev libboost1.81-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${MESHKV_NO_BUILD:-0}" = 1 ] && exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMESHKV_WERROR="${MESHKV_WERROR:-ON}" >/dev/null
cmake --build build -j"$(nproc)"

if [ "$install" = 1 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo cmake --install build
fi
