#!/usr/bin/env bash
# Builds the Debian package meshkv_<version>_<arch>.deb from a built meshkv
# binary, with dpkg-deb (no debhelper needed): the binary, the man page, the
# bash, zsh and fish completions, /etc/meshkv/example.toml (a conffile) and
# the templated unit meshkv@.service. The version is what the binary says.
# Usage: scripts/package/build-deb.sh path/to/meshkv OUTDIR
# Prints the path of the package. Run by the CMake target `deb`.
set -euo pipefail
BIN=$(realpath "$1")
OUT=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
command -v dpkg-deb >/dev/null || { echo "build-deb.sh: needs dpkg-deb" >&2; exit 2; }
VERSION=$("$BIN" --version | awk '{ print $2 }')
[[ $VERSION =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || { echo "build-deb.sh: bad version '$VERSION'" >&2; exit 2; }
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
mkdir -p "$OUT"
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/meshkv-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
chmod 0755 "$STAGE" # the package's root: dpkg-deb records its mode

install -D -m 0755 "$BIN" "$STAGE/usr/bin/meshkv"
strip --strip-unneeded "$STAGE/usr/bin/meshkv" 2>/dev/null || true
install -d "$STAGE/usr/share/man/man1"
gzip -9n <"$ROOT/man/meshkv.1" >"$STAGE/usr/share/man/man1/meshkv.1.gz"
install -D -m 0644 "$ROOT/completions/meshkv.bash" "$STAGE/usr/share/bash-completion/completions/meshkv"
install -D -m 0644 "$ROOT/completions/_meshkv" "$STAGE/usr/share/zsh/vendor-completions/_meshkv"
install -D -m 0644 "$ROOT/completions/meshkv.fish" "$STAGE/usr/share/fish/vendor_completions.d/meshkv.fish"
install -D -m 0644 "$ROOT/scripts/meshkv.example.toml" "$STAGE/etc/meshkv/example.toml"
install -D -m 0644 "$HERE/meshkv@.service" "$STAGE/lib/systemd/system/meshkv@.service"
install -D -m 0644 "$ROOT/README.md" "$STAGE/usr/share/doc/meshkv/README.md"

install -d "$STAGE/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "$HERE/$s" "$STAGE/DEBIAN/$s"; done
echo /etc/meshkv/example.toml >"$STAGE/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<CONTROL
Package: meshkv
Version: $VERSION
Architecture: $ARCH
Maintainer: meshkv developers <meshkv@localhost>
Section: net
Priority: optional
Installed-Size: $SIZE
Depends: passwd
Homepage: https://github.com/meshkv/meshkv
Description: replicated key-value mesh over UDP
 meshkv is a replicated key-value store for unreliable meshes of machines,
 in one statically linked binary: every node accepts writes, and nodes
 converge over UDP despite loss, reordering, crashes and partitions. The
 same binary is the operator's client. This package runs one node per
 instance of the systemd unit meshkv@.service, configured in
 /etc/meshkv/INSTANCE.toml, with its data in /var/lib/meshkv/INSTANCE.
CONTROL
DEB="$OUT/meshkv_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
