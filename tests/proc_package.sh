#!/usr/bin/env bash
# The Debian package (scripts/package/build-deb.sh, CMake target `deb`):
# built from the binary under test, named meshkv_<version>_<arch>.deb, with
# sane control data; unpacked with dpkg -x into an empty tree it holds the
# binary (which runs and says its version), the man page (which man
# renders), the three completions, /etc/meshkv/example.toml (a conffile the
# binary accepts) and meshkv@.service with its hardening, which
# systemd-analyze verify accepts without a word where it is installed.
# With MESHKV_TEST_DPKG_INSTALL=1 (CI, as root on a throwaway machine) it
# also installs the package with dpkg -i, checks meshkv --version, man
# meshkv, the unit and the meshkv user, and purges it again.
# Exit 77 (skipped) without dpkg-deb.
# Usage: tests/proc_package.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$(dirname "$0")/lib_proc.sh"
command -v dpkg-deb >/dev/null || { echo "SKIP: dpkg-deb is not installed"; exit 77; }
T0=$SECONDS
VERSION=$("$MESHKV" --version | awk '{ print $2 }')
ARCH=$(dpkg --print-architecture)

deb=$(bash "$ROOT/scripts/package/build-deb.sh" "$MESHKV" "$RUN_DIR/out") || fail "build-deb.sh failed"
[ "$deb" = "$RUN_DIR/out/meshkv_${VERSION}_${ARCH}.deb" ] || fail "package named $deb"
info=$(dpkg-deb -I "$deb") || fail "dpkg-deb -I"
for f in "Package: meshkv" "Version: $VERSION" "Architecture: $ARCH" "Depends: passwd"; do
  grep -q "^ $f$" <<<"$info" || fail "control lacks '$f'"
done
[ "$(dpkg-deb -f "$deb" Description | head -n 1)" != "" ] || fail "no description"
echo "ok: built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

TREE=$RUN_DIR/tree
dpkg -x "$deb" "$TREE" || fail "dpkg -x"
dpkg-deb -e "$deb" "$RUN_DIR/control" || fail "dpkg-deb -e"
for f in usr/bin/meshkv usr/share/man/man1/meshkv.1.gz usr/share/bash-completion/completions/meshkv \
  usr/share/zsh/vendor-completions/_meshkv usr/share/fish/vendor_completions.d/meshkv.fish \
  etc/meshkv/example.toml lib/systemd/system/meshkv@.service; do
  [ -s "$TREE/$f" ] || fail "the package lacks /$f"
done
[ "$("$TREE/usr/bin/meshkv" --version)" = "meshkv $VERSION" ] || fail "the packaged binary's --version"
grep -qx /etc/meshkv/example.toml "$RUN_DIR/control/conffiles" || fail "example.toml is no conffile"
for s in postinst prerm postrm; do sh -n "$RUN_DIR/control/$s" || fail "$s: syntax"; done
grep -q "useradd --system" "$RUN_DIR/control/postinst" || fail "postinst creates no system user"
if command -v man >/dev/null; then
  man -l "$TREE/usr/share/man/man1/meshkv.1.gz" 2>/dev/null | grep -q "cluster" || fail "man -l of the packaged page"
fi
# The example configuration is one the node accepts: started with it on a
# free port, it runs.
PORT=$(free_base_port 1)
"$TREE/usr/bin/meshkv" node --config "$TREE/etc/meshkv/example.toml" --listen "127.0.0.1:$PORT" \
  </dev/null >"$RUN_DIR/example.log" 2>&1 &
PIDS+=($!)
wait_for 10 "a node runs with /etc/meshkv/example.toml" "$MESHKV" status --node "127.0.0.1:$PORT"
echo "ok: dpkg -x: every file in place; the binary, man page and example config work"

UNIT=$TREE/lib/systemd/system/meshkv@.service
for line in "User=meshkv" "ExecStart=/usr/bin/meshkv node --config /etc/meshkv/%i.toml --data-dir /var/lib/meshkv/%i" \
  "StateDirectory=meshkv/%i" "ProtectSystem=strict" "NoNewPrivileges=yes" "PrivateTmp=yes" "ProtectHome=yes" \
  "CapabilityBoundingSet=" "KillSignal=SIGTERM"; do
  grep -qxF "$line" "$UNIT" || fail "meshkv@.service lacks '$line'"
done
if command -v systemd-analyze >/dev/null; then
  # An instance of the template, its binary the unpacked one (verify checks
  # that ExecStart exists) and its man page found in the tree.
  sed "s|/usr/bin/meshkv|$TREE/usr/bin/meshkv|" "$UNIT" >"$RUN_DIR/meshkv@test.service"
  out=$(MANPATH=$TREE/usr/share/man systemd-analyze verify "$RUN_DIR/meshkv@test.service" 2>&1)
  rc=$?
  [ $rc = 0 ] && [ -z "$out" ] || fail "systemd-analyze verify meshkv@.service: exit $rc: $out"
  echo "ok: systemd-analyze verify: no complaint"
else
  echo "systemd-analyze not installed: the unit is not verified"
fi

if [ "${MESHKV_TEST_DPKG_INSTALL:-0}" = 1 ]; then
  [ "$(id -u)" = 0 ] || fail "MESHKV_TEST_DPKG_INSTALL=1 needs root"
  dpkg -i "$deb" >"$RUN_DIR/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$RUN_DIR/dpkg.log")"
  [ "$(/usr/bin/meshkv --version)" = "meshkv $VERSION" ] || fail "installed meshkv --version"
  man -w meshkv >/dev/null 2>&1 || fail "man meshkv: not found after dpkg -i"
  [ -f /lib/systemd/system/meshkv@.service ] || fail "no /lib/systemd/system/meshkv@.service after dpkg -i"
  getent passwd meshkv >/dev/null || fail "postinst created no meshkv user"
  dpkg --purge meshkv >>"$RUN_DIR/dpkg.log" 2>&1 || fail "dpkg --purge: $(cat "$RUN_DIR/dpkg.log")"
  [ ! -e /usr/bin/meshkv ] || fail "/usr/bin/meshkv left after purge"
  echo "ok: dpkg -i, checks, dpkg --purge"
else
  echo "dpkg -i not tried (MESHKV_TEST_DPKG_INSTALL=1 enables it, as root on a throwaway machine)"
fi
echo "PASS ($((SECONDS - T0)) s)"
