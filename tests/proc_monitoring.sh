#!/usr/bin/env bash
# scripts/monitoring: the Prometheus alert rules pass `promtool check rules`
# and their unit tests (`promtool test rules`, synthetic series), and the
# tests fail when a rule is broken on purpose (a threshold moved, a
# condition dropped); every metric the rules and the Grafana dashboard use
# is one a real node (with a data directory) serves at /metrics, and the
# dashboard is valid JSON with a query in every panel.
# Exit 77 (skipped) without promtool (Debian package prometheus).
# Usage: tests/proc_monitoring.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
MON=$(cd "$(dirname "$0")/.." && pwd)/scripts/monitoring
source "$(dirname "$0")/lib_proc.sh"
command -v promtool >/dev/null || { echo "SKIP: promtool is not installed (apt-get install prometheus)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
T0=$SECONDS

promtool check rules "$MON/meshkv.rules.yml" || fail "promtool check rules"
(cd "$MON" && promtool test rules meshkv.rules.test.yml) || fail "promtool test rules"
echo "ok: the rules check and their unit tests pass"

# broken DESCRIPTION SED: the unit tests must fail on the rules changed by SED.
broken() {
  local dir=$RUN_DIR/broken-$RANDOM
  mkdir "$dir" && cp "$MON/meshkv.rules.test.yml" "$dir/"
  sed "$2" "$MON/meshkv.rules.yml" >"$dir/meshkv.rules.yml"
  cmp -s "$MON/meshkv.rules.yml" "$dir/meshkv.rules.yml" && fail "broken rule '$1': the edit changed nothing"
  if (cd "$dir" && promtool test rules meshkv.rules.test.yml >"$dir/out" 2>&1); then
    fail "promtool test rules passes with a broken rule: $1"
  fi
  echo "ok: broken on purpose ($1): the unit tests fail"
}
broken "clock threshold 0.4 -> 0.5" 's/abs(meshkv_peer_clock_offset_seconds)) > 0.4/abs(meshkv_peer_clock_offset_seconds)) > 0.5/'
broken "disk refusal > 0 -> > 1" 's/(meshkv_storage_refusing_writes) > 0/(meshkv_storage_refusing_writes) > 1/'
broken "lag: growth condition dropped" 's/ > sum by (instance) (meshkv_vv_lag_writes offset 5m)/ >= 0/'
broken "dead members: state dead -> suspect" 's/state="dead"/state="suspect"/'

# Every metric name used is served by a real node.
PORT=$(free_base_port 2)
start_node m "$PORT" --metrics "127.0.0.1:$((PORT + 1))" --data-dir "$RUN_DIR/m.data"
wait_for 10 "m serves /metrics" curl -sf --max-time 2 -o "$RUN_DIR/metrics.txt" "http://127.0.0.1:$((PORT + 1))/metrics"
"$MESHKV" set k v --node "127.0.0.1:$PORT" >/dev/null || fail "set on m"
curl -sf --max-time 5 -o "$RUN_DIR/metrics.txt" "http://127.0.0.1:$((PORT + 1))/metrics" || fail "scrape"
python3 - "$MON/grafana-dashboard.json" "$MON/meshkv.rules.yml" "$RUN_DIR/metrics.txt" <<'PY' || fail "dashboard or rules (above)"
import json, re, sys
dash = json.load(open(sys.argv[1]))
rules = open(sys.argv[2]).read()
served = set(re.findall(r"^(meshkv_[a-z_]+)", open(sys.argv[3]).read(), re.M))
# Histograms and gauges a fresh node may not have a sample of yet are
# declared by their # TYPE line.
served |= set(re.findall(r"^# TYPE (meshkv_[a-z_]+)", open(sys.argv[3]).read(), re.M))
served |= {n + s for n in list(served) for s in ("_bucket", "_sum", "_count")}
exprs = []
for p in dash["panels"]:
    if not p.get("targets"):
        sys.exit("panel %r has no query" % p.get("title"))
    exprs += [t["expr"] for t in p["targets"]]
used = set()
for e in exprs + [rules]:
    used |= set(re.findall(r"\b(meshkv_[a-z_]+)", e))
missing = sorted(used - served)
if missing:
    sys.exit("not served at /metrics: " + ", ".join(missing))
print("%d panels, %d queries; %d metric names used, all served" % (len(dash["panels"]), len(exprs), len(used)))
PY
echo "PASS ($((SECONDS - T0)) s)"
