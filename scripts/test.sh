#!/usr/bin/env bash
# Runs every test: the Release build (unit, property, simulation and
# real-process tests), the unit and real-process tests again under
# AddressSanitizer and UndefinedBehaviorSanitizer, and the wire decoder's
# fuzzer for a bounded time.
#   MESHKV_FUZZ_SECONDS  fuzzing time (default 60; 0 skips)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
fuzz_seconds=${MESHKV_FUZZ_SECONDS:-60}

step() { printf '\n== %s\n' "$*"; }

step "release build (-Werror)"
MESHKV_WERROR=ON scripts/setup.sh >/dev/null
file build/meshkv | grep -q "statically linked" || { echo "build/meshkv is not statically linked"; exit 1; }
echo "build/meshkv: $(file -b build/meshkv | cut -d, -f1-4)"

step "tests (release)"
ctest --test-dir build --output-on-failure -j"$jobs"

step "unit tests under ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHKV_SANITIZE=ON -DMESHKV_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs" --target meshkv_tests meshkv meshkv_forge
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
build-asan/meshkv_tests

step "real-process tests against the sanitizer build"
# The shell, the control plane, the client and the prompt (libedit, driven
# through a pseudo-terminal) under ASan/UBSan: any report makes a node or
# client exit non-zero, which fails the test.
bash tests/proc_mesh.sh build-asan/meshkv
bash tests/proc_tools.sh build-asan/meshkv
bash tests/proc_prompt.sh build-asan/meshkv
# Pipelined requests: answers collected across requests, sealed and not.
bash tests/proc_pipeline.sh build-asan/meshkv
# The attacks: a sanitized node takes several times the memory and time of
# a release one for the same work (shadow memory, redzones, the allocator's
# quarantine of freed blocks, here made smaller), so the bounds are raised;
# what this run adds is that nothing trips a sanitizer under attack.
ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=16 MESHKV_ATTACK_RSS_LIMIT_KB=327680 MESHKV_ATTACK_MAX_MS=3000 \
  MESHKV_ATTACK_SECONDS=20 bash tests/proc_attack.sh build-asan/meshkv
ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=16 MESHKV_ATTACK_RSS_LIMIT_KB=327680 MESHKV_ATTACK_MAX_MS=3000 \
  MESHKV_ATTACK_SECONDS=20 \
  bash tests/proc_attack_mesh.sh build-asan/meshkv

if [ "$fuzz_seconds" -gt 0 ]; then
  step "fuzzing the wire decoder for ${fuzz_seconds}s"
  CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMESHKV_FUZZ=ON \
    -DMESHKV_STATIC=OFF -DMESHKV_WERROR=ON >/dev/null
  cmake --build build-fuzz -j"$jobs" --target fuzz_decode
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp tests/corpus/decode/* "$work"/
  build-fuzz/fuzz_decode -max_total_time="$fuzz_seconds" -print_final_stats=1 "$work" 2>&1 | tail -n 12
fi

step "all tests passed"
