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
# datagram counters go to stderr as they come. BENCH_ROUNDS=R (default 1)
# repeats the whole sequence R times and reports medians (the ratio: the
# median of the rounds' ratios), with each round's ratio beside them: on a
# busy machine one round says little about a p99.
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
rounds=${BENCH_ROUNDS:-1}
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

# The K-th number (default the first) in field F (1-based, after the
# leading '|') of a table row; empty when the row or the number is missing
# or the field is not a figure ("-", "not within 60 s").
num() {
  awk -F'|' -v f="$(($2 + 1))" -v k="${3:-1}" '{
    s = $f; i = 0
    sub(/^ +/, "", s)
    if (s !~ /^[0-9]/) exit
    while (match(s, /[0-9]+(\.[0-9]+)?/)) {
      if (++i == k) { print substr(s, RSTART, RLENGTH); exit }
      s = substr(s, RSTART + RLENGTH)
    }
  }' <<<"$1"
}

# The median of the numbers given (empty ones skipped), "-" for none.
median() {
  printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) { print "-"; exit }
          m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          if (m == int(m)) print m; else if (m >= 100) printf "%.0f\n", m; else printf "%.2f\n", m }'
}

# sealed/unsealed, "-" unless both are numbers and unsealed is not 0.
ratio() {
  awk -v u="$1" -v s="$2" 'BEGIN {
    if (u !~ /^[0-9.]+$/ || s !~ /^[0-9.]+$/ || u + 0 == 0) { print "-"; exit }
    printf "%.2f\n", s / u }'
}

# rows[test,mode,round]: the table row of one run.
declare -A rows
tests=("5 0" "5 0.3" "16 0" "tp")
for ((r = 1; r <= rounds; r++)); do
  for t in "${tests[@]}"; do
    if [ "$t" = tp ]; then
      echo "round $r: 3 nodes, throughput for $tp_seconds s: unsealed, then sealed" >&2
      args=(--nodes 3 --throughput "$tp_seconds" --clients 16)
    else
      read -r n loss <<<"$t"
      echo "round $r: N=$n, loss $loss: unsealed, then sealed" >&2
      args=(--nodes "$n" --loss "$loss" --writes "$writes" --rate "$rate")
    fi
    rows[$t,u,$r]=$(run "${args[@]}")
    rows[$t,s,$r]=$(run "${args[@]}" --key-file "$keydir/cluster.key")
  done
done

# One line of the table: the median over the rounds of number K of field F,
# unsealed and sealed, the median of the rounds' sealed/unsealed ratios, and
# with several rounds each round's ratio. SUFFIX, if given, follows the
# figures ("%").
table=()
line() {  # test measure field k ratio|no suffix
  local t=$1 measure=$2 f=$3 k=$4 want=$5 suffix=${6:-} us=() ss=() per=() r u s
  for ((r = 1; r <= rounds; r++)); do
    u=$(num "${rows[$t,u,$r]}" "$f" "$k")
    s=$(num "${rows[$t,s,$r]}" "$f" "$k")
    us+=("$u")
    ss+=("$s")
    per+=("$(ratio "$u" "$s")")
  done
  u=$(median "${us[@]}")
  s=$(median "${ss[@]}")
  local rt="-" cells
  # Rounds are pairs run back to back, so the ratio is the median of the
  # pairs' ratios: one stalled run moves it less than a ratio of medians.
  if [ "$want" = ratio ]; then
    rt=$(median "${per[@]//-/}")
    [ "$rt" = - ] || rt=$(awk -v r="$rt" 'BEGIN { printf "%.2f\n", r }')
  fi
  [ "$u" = - ] || u="$u$suffix"
  [ "$s" = - ] || s="$s$suffix"
  cells="| ${label:-} | $measure | $u | $s | $rt |"
  if ((rounds > 1)); then
    [ "$want" = ratio ] && cells+=" ${per[*]} |" || cells+=" |"
  fi
  table+=("$cells")
  label=""
}

for t in "${tests[@]}"; do
  if [ "$t" = tp ]; then
    label="3 nodes, in-memory, 48 closed-loop clients, $tp_seconds s"
    line "$t" "acknowledged writes/s" 5 1 ratio
    line "$t" "all nodes caught up after ms" 6 1 ratio
    continue
  fi
  read -r n loss <<<"$t"
  label="N=$n, $(awk -v l="$loss" 'BEGIN { printf "%g", l * 100 }')% loss, $writes writes at $rate/s"
  line "$t" "p50 ms" 5 1 ratio
  line "$t" "p99 ms" 6 1 ratio
  line "$t" "max ms" 7 1 ratio
  line "$t" "lost" 8 1 no
  line "$t" "idle CPU mean" 9 1 no %
  line "$t" "idle CPU max" 9 2 no %
  line "$t" "RSS max MB" 10 1 no
  line "$t" "detect ms" 11 1 ratio
done

if ((rounds > 1)); then
  echo "Medians of $rounds rounds (each round: unsealed, then sealed at once); the"
  echo "ratio is the median of the rounds' ratios."
  echo
  echo "| test | measure | unsealed | sealed | sealed/unsealed | ratio per round |"
  echo "|---|---|---|---|---|---|"
else
  echo "| test | measure | unsealed | sealed | sealed/unsealed |"
  echo "|---|---|---|---|---|"
fi
printf '%s\n' "${table[@]}"
