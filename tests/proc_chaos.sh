#!/usr/bin/env bash
# The bounded chaos run CI does: the checker's cases on hand-made histories
# (meshkv_tests beside the binary), then scripts/chaos.sh --quick (2 seeds,
# 4 nodes, 20 s of faults each: injected loss, partitions, kill -9, pauses,
# skewed clocks; register writes, counter increments, set adds and removes) against the built
# binary, checked by meshkv_chaos_check beside it.
# Usage: tests/proc_chaos.sh path/to/meshkv
set -uo pipefail
CHAOS="$(dirname "$0")/../scripts/chaos.sh"
bash "$CHAOS" --self-test --bin "$1" || exit 1
bash "$CHAOS" --quick --bin "$1"
