#!/usr/bin/env bash
# Pipelined control requests (issue 19): a client writes 41 requests to one
# connection at once (20 sets, the middle one waiting for every member, 20
# gets of the same keys, then a watch). The node answers them in request
# order, collecting answers of requests already read into one write, and
# every get sees the set before it; the watch's first answer comes last.
# Once against an unsealed pair, once against a sealed pair (session frames
# are numbered: an answer out of order or lost would not open).
#
# Usage: tests/proc_pipeline.sh path/to/meshkv
#   (meshkv_forge is looked for next to meshkv, or in $MESHKV_FORGE)
set -uo pipefail
MESHKV=$(realpath "$1")
FORGE=${MESHKV_FORGE:-$(dirname "$MESHKV")/meshkv_forge}
source "$(dirname "$0")/lib_proc.sh"
unset MESHKV_KEY_FILE MESHKV_NODE
[ -x "$FORGE" ] || fail "$FORGE is not built (cmake --build build --target meshkv_forge)"
COUNT=20

# check OUT: the forge's output holds every answer, in order, all ok, and
# get i answers v<i>.
check() {
  local out=$1 want=$((2 * COUNT + 1)) ids codes i
  [ "$(grep -c '^[0-9]' "$out")" = "$want" ] || fail "$(grep -c '^[0-9]' "$out") answers, not $want: $(head -5 "$out")"
  ids=$(grep '^[0-9]' "$out" | cut -d' ' -f1 | tr '\n' ' ')
  [ "$ids" = "$(seq -s ' ' 1 "$want") " ] || fail "answers out of order: $ids"
  codes=$(grep '^[0-9]' "$out" | cut -d' ' -f2 | sort -u | tr '\n' ' ')
  [ "$codes" = "0 " ] || fail "not every answer is ok (codes: $codes)"
  for i in $(seq 0 $((COUNT - 1))); do
    grep -qx "$((COUNT + 1 + i)) 0 v$i" "$out" || fail "get pl/$i did not answer v$i"
  done
}

run_pair() {  # run_pair LABEL [NODE OPTIONS...]
  local label=$1 base a
  shift
  base=$(free_base_port 2)
  a=127.0.0.1:$base
  start_node "${label}a" "$base" "$@"
  start_node "${label}b" "$((base + 1))" --join "$a" "$@"
  wait_for 15 "${label}b alive at ${label}a" member_is "$base" "${label}b" alive
  "$FORGE" pipeline "$a" "$COUNT" >"$RUN_DIR/$label.out" 2>&1 || fail "$label: forge pipeline failed: $(tail -3 "$RUN_DIR/$label.out")"
  check "$RUN_DIR/$label.out"
  echo "ok: $label: $((2 * COUNT + 1)) pipelined requests answered in order"
}

run_pair plain

KEY=$RUN_DIR/cluster.key
"$MESHKV" keygen --cluster -o "$KEY" >/dev/null || fail "keygen"
export MESHKV_KEY_FILE=$KEY
run_pair sealed --key-file "$KEY"
echo "PASS: proc_pipeline"
