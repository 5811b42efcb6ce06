#!/usr/bin/env bash
# Convergence benchmark with real processes on loopback (prints figures,
# asserts nothing). For each row: N nodes, a share of datagrams dropped by
# every node, writes at a steady rate through random nodes; latency is from
# `set` until the last node applied the write. Then idle CPU and memory per
# node, and failure detection (kill -9 until every survivor shows it dead).
#   scripts/bench_convergence.sh [writes] [rate]
set -euo pipefail
cd "$(dirname "$0")/.."
writes=${1:-2000}
rate=${2:-500}
[ -x build/meshkv ] && [ -x build/meshkv_bench_converge ] || scripts/setup.sh >/dev/null

echo "| N | loss | writes | rate | p50 ms | p99 ms | max ms | lost | idle CPU mean / max | RSS max | detect |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in 5 16; do
  for loss in 0 0.3; do
    build/meshkv_bench_converge --bin build/meshkv --nodes "$n" --loss "$loss" \
      --writes "$writes" --rate "$rate" || echo "| $n | $loss | run failed (exit $?) |"
  done
done
