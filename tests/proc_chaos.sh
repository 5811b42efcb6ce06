#!/usr/bin/env bash
# The bounded chaos run CI does: the checker's self-test, then
# scripts/chaos.sh --quick (2 seeds, 4 nodes, 20 s of faults each: injected
# loss, partitions, kill -9, pauses, skewed clocks) against the built binary.
# Usage: tests/proc_chaos.sh path/to/meshkv
set -uo pipefail
CHAOS="$(dirname "$0")/../scripts/chaos.sh"
bash "$CHAOS" --self-test --bin "$1" || exit 1
bash "$CHAOS" --quick --bin "$1"
