#!/usr/bin/env bash
# Every shell block of README.md runs as shown: tests/readme_run.py runs
# them in order against real nodes started by the README's own commands
# (ports moved to free ones), types its prompt transcript at a real prompt,
# and fails on an exit status or an output other than the README shows.
# Blocks that cannot run here are marked `<!-- readme-test: skip ... -->`.
# Usage: tests/proc_readme.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$(dirname "$0")/lib_proc.sh"
BASE=$(free_base_port 12)
mkdir -p "$RUN_DIR/work"
python3 "$ROOT/tests/readme_run.py" "$ROOT/README.md" "$MESHKV" "$RUN_DIR/work" "$BASE" ||
  fail "a README command did not run as the README shows (its directory: $RUN_DIR/work)"

# The configuration keys the README names are real ones (an older README
# named flags with underscores, which the binary refuses).
keys=$(awk '/^## Configuration/ { on = 1; next } on && /^## / { exit } on' "$ROOT/README.md" |
  grep -o '`[a-z][a-z]*_[a-z_]*\( = \[\.\.\.\]\)\?`' | tr -d '`' | sed 's/ = \[\.\.\.\]//' | sort -u)
[ -n "$keys" ] || fail "no configuration key found in the README's Configuration section"
for k in $keys; do
  grep -qE "^#? ?$k = " "$ROOT/scripts/meshkv.example.toml" ||
    fail "README Configuration names '$k', not a key of scripts/meshkv.example.toml"
done
echo "proc_readme: ok ($(echo "$keys" | wc -w) configuration keys named are real)"
