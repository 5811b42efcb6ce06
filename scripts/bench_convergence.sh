#!/usr/bin/env bash
# Convergence benchmark with real processes on loopback (prints figures,
# asserts nothing). For each row: N nodes, a share of datagrams dropped by
# every node, writes at a steady rate through random nodes; latency is from
# `set` until the last node applied the write. Then idle CPU and memory per
# node, and failure detection (kill -9 until every survivor shows it dead).
#   scripts/bench_convergence.sh [writes] [rate]
#
# The cost of sealing, in one run:
#   scripts/bench_convergence.sh --sealed-vs-unsealed [writes] [rate]
# runs each row (N=5 at 0% and 30% loss, N=16 at 0%) unsealed and then at
# once sealed (every node and the benchmark's control connections holding a
# fresh cluster key), so that the machine's noise of the moment hits both
# alike; then replicated write throughput into 3 nodes (16 closed-loop
# clients per node for BENCH_TP_SECONDS, default 5) the same way. Prints one
# table with sealed/unsealed ratios; the rows as measured and the nodes'
# datagram counters go to stderr as they come.
set -euo pipefail
cd "$(dirname "$0")/.."

compare=0
if [ "${1:-}" = "--sealed-vs-unsealed" ]; then
  compare=1
  shift
fi
writes=${1:-2000}
rate=${2:-500}
[ -x build/meshkv ] && [ -x build/meshkv_bench_converge ] || scripts/setup.sh >/dev/null

if [ "$compare" = 0 ]; then
  echo "| N | loss | writes | rate | p50 ms | p99 ms | max ms | lost | idle CPU mean / max | RSS max | detect |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for n in 5 16; do
    for loss in 0 0.3; do
      build/meshkv_bench_converge --bin build/meshkv --nodes "$n" --loss "$loss" \
        --writes "$writes" --rate "$rate" || echo "| $n | $loss | run failed (exit $?) |"
    done
  done
  exit 0
fi

tp_seconds=${BENCH_TP_SECONDS:-5}
keydir=$(mktemp -d)
trap 'rm -rf "$keydir"' EXIT
build/meshkv keygen --cluster -o "$keydir/cluster.key" >/dev/null

# One benchmark run; prints its table row (empty if it printed none). A run
# that lost writes exits 1 but still has figures to show.
run() {
  local row
  row=$(build/meshkv_bench_converge --bin build/meshkv --counters 1 "$@" | grep '^|' || true)
  echo "  $row" >&2
  echo "$row"
}

# Field $2 (1-based, after the leading '|') of a table row, trimmed; "-" for
# a row that is missing.
field() {
  [ -n "$1" ] || { echo "-"; return; }
  awk -F'|' -v f="$(($2 + 1))" '{ gsub(/^ +| +$/, "", $f); print $f }' <<<"$1"
}

# sealed/unsealed of two figures, ignoring units after the number.
ratio() {
  awk -v u="$1" -v s="$2" 'BEGIN {
    if (u !~ /^[0-9.]/ || s !~ /^[0-9.]/ || u + 0 == 0) { print "-"; exit }
    printf "%.2f\n", (s + 0) / (u + 0) }'
}

table=()
line() {  # test, measure, unsealed, sealed, with a ratio or not
  local r="-"
  [ "$5" = ratio ] && r=$(ratio "$3" "$4")
  table+=("| $1 | $2 | $3 | $4 | $r |")
}

for row in "5 0" "5 0.3" "16 0"; do
  read -r n loss <<<"$row"
  echo "N=$n, loss $loss: unsealed, then sealed" >&2
  args=(--nodes "$n" --loss "$loss" --writes "$writes" --rate "$rate")
  u=$(run "${args[@]}")
  s=$(run "${args[@]}" --key-file "$keydir/cluster.key")
  test="N=$n, $(awk -v l="$loss" 'BEGIN { printf "%g", l * 100 }')% loss, $writes writes at $rate/s"
  line "$test" "p50 ms" "$(field "$u" 5)" "$(field "$s" 5)" ratio
  line "" "p99 ms" "$(field "$u" 6)" "$(field "$s" 6)" ratio
  line "" "max ms" "$(field "$u" 7)" "$(field "$s" 7)" ratio
  line "" "lost" "$(field "$u" 8)" "$(field "$s" 8)" no
  line "" "idle CPU mean / max" "$(field "$u" 9)" "$(field "$s" 9)" no
  line "" "RSS max" "$(field "$u" 10)" "$(field "$s" 10)" no
  line "" "detect" "$(field "$u" 11)" "$(field "$s" 11)" ratio
done

echo "3 nodes, throughput for $tp_seconds s: unsealed, then sealed" >&2
args=(--nodes 3 --throughput "$tp_seconds" --clients 16)
u=$(run "${args[@]}")
s=$(run "${args[@]}" --key-file "$keydir/cluster.key")
test="3 nodes, in-memory, 48 closed-loop clients, $tp_seconds s"
line "$test" "acknowledged writes/s" "$(field "$u" 5)" "$(field "$s" 5)" ratio
line "" "all nodes caught up after" "$(field "$u" 6)" "$(field "$s" 6)" ratio

echo "| test | measure | unsealed | sealed | sealed/unsealed |"
echo "|---|---|---|---|---|"
printf '%s\n' "${table[@]}"
