#!/usr/bin/env bash
# meshkv keygen as an operator runs it: both kinds of key, their default and
# chosen paths, mode 0600 whatever the umask, refusal to overwrite without
# --force, and no secret ever on standard output or standard error.
# Usage: tests/proc_keygen.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
source "$(dirname "$0")/lib_proc.sh"
WORK=$RUN_DIR/work
mkdir -p "$WORK/sub"
cd "$WORK" || fail "cd $WORK"

m() { "$MESHKV" "$@"; }
# run CODE DESCRIPTION COMMAND...: stdout in $RUN_DIR/out, stderr in $RUN_DIR/err.
run() {
  local want=$1 what=$2
  shift 2
  "$@" >"$RUN_DIR/out" 2>"$RUN_DIR/err"
  local rc=$?
  [ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want: $(head -c 300 "$RUN_DIR/out" "$RUN_DIR/err")"
}
mode_is() { [ "$(stat -c %a "$1")" = "$2" ] || fail "$1 has mode $(stat -c %a "$1"), expected $2"; }
# The payload line of a key file: the secret.
secret_of() { sed -n 2p "$1"; }
# Neither output of the last run contains the secret, nor a 12-character
# piece of it (a partial print is a leak too).
no_secret_printed() {
  local s i
  s=$(secret_of "$1")
  [ ${#s} -ge 43 ] || fail "$1: no secret line found"
  for ((i = 0; i + 12 <= ${#s}; i += 6)); do
    if grep -qF -- "${s:i:12}" "$RUN_DIR/out" "$RUN_DIR/err"; then
      fail "part of the secret of $1 was printed"
    fi
  done
}
# URL-safe unpadded base64 to hex.
b64url_hex() {
  local s
  s=$(tr '_-' '/+' <<<"$1")
  while ((${#s} % 4)); do s+="="; done
  base64 -d <<<"$s" | od -An -v -tx1 | tr -d ' \n'
}

# A node identity at the default path.
run 0 "keygen" m keygen
[ -f meshkv.identity ] || fail "keygen did not create ./meshkv.identity"
mode_is meshkv.identity 600
[ "$(head -n 1 meshkv.identity)" = meshkv-identity-v1 ] || fail "identity header"
grep -q "meshkv.identity" "$RUN_DIR/out" || fail "keygen does not print the path"
pub=$(sed -n 's/^public key: *\(mkpub:[A-Za-z0-9_-]*\)$/\1/p' "$RUN_DIR/out")
[ ${#pub} = 49 ] || fail "keygen prints no public key: $(cat "$RUN_DIR/out")"
grep -qE '^fingerprint: *mk:[0-9a-f]{16}$' "$RUN_DIR/out" || fail "keygen prints no fingerprint"
no_secret_printed meshkv.identity
# The printed public key is the one in the file (the second half of the secret key).
sk_hex=$(b64url_hex "$(secret_of meshkv.identity)")
[ ${#sk_hex} = 128 ] || fail "the identity file holds ${#sk_hex} hex digits, expected 128"
[ "${sk_hex:64}" = "$(b64url_hex "${pub#mkpub:}")" ] || fail "printed public key does not match the file"
echo "identity: ok"

# The cluster key at its default path.
run 0 "keygen --cluster" m keygen --cluster
[ -f meshkv.key ] || fail "keygen --cluster did not create ./meshkv.key"
mode_is meshkv.key 600
[ "$(head -n 1 meshkv.key)" = meshkv-cluster-key-v1 ] || fail "cluster key header"
grep -q "meshkv.key" "$RUN_DIR/out" || fail "keygen --cluster does not print the path"
grep -qE '^key id: [0-9a-f]{16}$' "$RUN_DIR/out" || fail "keygen --cluster prints no key id"
grep -q mkpub: "$RUN_DIR/out" && fail "a cluster key has no public key to print"
no_secret_printed meshkv.key
[ "$(b64url_hex "$(secret_of meshkv.key)" | wc -c)" = 64 ] || fail "the cluster key is not 32 bytes"
echo "cluster key: ok"

# Existing files are refused without --force, and left as they were.
cp meshkv.identity saved.identity
cp meshkv.key saved.key
run 2 "keygen over an existing identity" m keygen
grep -q "already exists" "$RUN_DIR/err" || fail "no 'already exists' message: $(cat "$RUN_DIR/err")"
grep -q -- "--force" "$RUN_DIR/err" || fail "the refusal does not mention --force"
run 2 "keygen --cluster over an existing key" m keygen --cluster
cmp -s meshkv.identity saved.identity || fail "a refused keygen changed the identity"
cmp -s meshkv.key saved.key || fail "a refused keygen changed the cluster key"
echo "refusal without --force: ok"

# --force replaces, atomically (no temporary file left) and still 0600.
run 0 "keygen --force" m keygen --force
cmp -s meshkv.identity saved.identity && fail "--force did not replace the identity"
mode_is meshkv.identity 600
no_secret_printed meshkv.identity
run 0 "keygen --cluster --force" m keygen --cluster --force
cmp -s meshkv.key saved.key && fail "--force did not replace the cluster key"
mode_is meshkv.key 600
no_secret_printed meshkv.key
leftover=$(ls -A | grep -v -e '^meshkv.identity$' -e '^meshkv.key$' -e '^saved' -e '^sub$')
[ -z "$leftover" ] || fail "files left behind: $leftover"
echo "--force: ok"

# -o/--out, under a permissive umask: the mode is 0600 all the same.
(umask 000 && m keygen -o sub/node-a.identity >"$RUN_DIR/out" 2>"$RUN_DIR/err") || fail "keygen -o"
mode_is sub/node-a.identity 600
grep -q "sub/node-a.identity" "$RUN_DIR/out" || fail "keygen -o does not print the path"
(umask 000 && m keygen --cluster --out sub/c.key >"$RUN_DIR/out" 2>"$RUN_DIR/err") || fail "keygen --cluster --out"
mode_is sub/c.key 600
no_secret_printed sub/c.key
echo "--out and umask: ok"

# Usage and file errors exit 2.
run 2 "--out naming a directory" m keygen --out sub
run 2 "--out in a missing directory" m keygen --out missing/dir/x.identity
run 2 "--out without a file" m keygen --out
run 2 "an unknown option" m keygen --secret-value abc
run 0 "keygen --help" m keygen --help
grep -q 0600 "$RUN_DIR/out" || fail "keygen --help does not say the files are mode 0600"
grep -q "by path" "$RUN_DIR/out" || fail "keygen --help does not say keys are passed by path"
echo "errors and help: ok"
echo PASS
