#!/usr/bin/env bash
# scripts/cluster.sh is `meshkv cluster` (built into the binary since the
# binary alone must bring up a demo cluster), run with this checkout's
# build. Kept so that old habits and scripts still work; see
# `meshkv cluster --help` for the actions and options.
#
# Environment: MESHKV_BIN, the meshkv binary (default ../build/meshkv next
# to this script); MESHKV_CLUSTER_DIR, the default working directory.
set -u
BIN=${MESHKV_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/meshkv}
if [ ! -x "$BIN" ]; then
  echo "cluster.sh: no meshkv binary at $BIN (build it, or set MESHKV_BIN)" >&2
  exit 2
fi
exec "$BIN" cluster "$@"
