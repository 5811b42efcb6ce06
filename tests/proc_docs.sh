#!/usr/bin/env bash
# The man page and the shell completions agree with the binary:
#  (a) man/meshkv.1 renders without a single groff warning;
#  (b) every subcommand `meshkv --help` lists and that is built (not one that
#      says "not available in this build yet") is in the man page and in the
#      bash, zsh and fish completions, with every long option its --help
#      shows; the man page's synopsis lists no option the binary lacks; the
#      subcommands documented for the future (in the man page, not built yet)
#      have the same options in every completion; every configuration key of
#      scripts/meshkv.example.toml is in the man page;
#  (c) the bash completion, loaded into a bash, completes what a user types.
# Every comparison is printed; all failures are reported, then it exits 1.
# Usage: tests/proc_docs.sh path/to/meshkv
set -uo pipefail
MESHKV=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAN=$ROOT/man/meshkv.1
BASH_C=$ROOT/completions/meshkv.bash
ZSH_C=$ROOT/completions/_meshkv
FISH_C=$ROOT/completions/meshkv.fish
TMP=$(mktemp -d /tmp/meshkv-docs.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

FAILURES=0
bad() {
  echo "FAIL: $*"
  FAILURES=$((FAILURES + 1))
}
# has WORD LIST...: WORD is one of the words of LIST.
has() {
  local w=$1
  shift
  [[ " $* " == *" $w "* ]]
}

for f in "$MAN" "$BASH_C" "$ZSH_C" "$FISH_C"; do
  [ -f "$f" ] || { echo "FAIL: missing $f"; exit 1; }
done
if ! version=$(timeout 5 "$MESHKV" --version 2>&1); then
  echo "FAIL: $MESHKV --version: $version"
  exit 1
fi
echo "testing $version ($MESHKV)"

# ---- (a) the man page renders cleanly -------------------------------------
echo "== (a) groff -ww -man -z man/meshkv.1"
if ! command -v groff >/dev/null; then
  bad "groff is not installed (scripts/setup.sh installs groff-base)"
else
  warnings=$(groff -ww -man -z "$MAN" 2>&1)
  rc=$?
  if [ -n "$warnings" ] || [ $rc != 0 ]; then
    bad "groff exit $rc, output:"
    echo "$warnings" | sed 's/^/    /'
  else
    echo "ok: no warnings"
  fi
fi

# ---- the man page, normalised: \- is -, font and zero-width escapes gone --
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/\\%//g' "$MAN" >"$TMP/man"
# The synopsis: "SUB opt opt..." for each .SY block that names a subcommand.
awk '
  /^\.SH / { in_syn = ($2 == "SYNOPSIS") }
  !in_syn { next }
  /^\.SY/ { name = ""; opts = ""; next }
  /^\.YS/ { if (name != "") print name opts; name = ""; next }
  name == "" && /^\.B [a-z]+$/ { name = $2; next }
  name == "" && /^\.RB \[ [a-z]+ \]$/ { name = $3; next }
  name != "" {
    line = $0
    while (match(line, /--[a-z0-9][a-z0-9-]*/)) {
      opts = opts " " substr(line, RSTART, RLENGTH)
      line = substr(line, RSTART + RLENGTH)
    }
  }' "$TMP/man" >"$TMP/synopsis"
man_synopsis() { awk -v s="$1" '$1 == s { $1 = ""; sub(/^ +/, ""); printf "%s ", $0 }' "$TMP/synopsis"; }
# The ".SS SUB" section of SUBCOMMANDS.
man_section() { awk -v s="$1" '/^\.S[SH] / { on = ($0 == ".SS " s); next } on' "$TMP/man"; }
DOCUMENTED=$(awk '!seen[$1]++ { print $1 }' "$TMP/synopsis" | tr '\n' ' ')

# ---- bash: complete lines in a bash with the completion loaded ------------
# Each argument is a command line, the cursor at its end; prints one line of
# candidates per argument.
bash_complete() {
  bash --norc --noprofile -c '
    [ -f /usr/share/bash-completion/bash_completion ] &&
      source /usr/share/bash-completion/bash_completion
    source "$0" || exit 1
    fn=$(complete -p meshkv 2>/dev/null | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
    [ -n "$fn" ] || { echo "no completion function registered for meshkv" >&2; exit 1; }
    for line in "$@"; do
      read -ra COMP_WORDS <<<"$line"
      [[ $line == *" " ]] && COMP_WORDS+=("")
      COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
      COMP_LINE=$line
      COMP_POINT=${#line}
      COMPREPLY=()
      "$fn" meshkv "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
      echo "${COMPREPLY[*]}"
    done' "$BASH_C" "$@"
}

# zsh: the "(SUB)" branch of the case in _meshkv.
zsh_branch() { awk -v s="($1)" '$1 == s { on = 1; next } on && /;;/ { exit } on' "$ZSH_C"; }
# fish: the lines completing options of SUB (named literally in the condition).
fish_lines() {
  grep -E "^complete -c meshkv -n '__fish_seen_subcommand_from ([a-z ]* )?$1( [a-z ]*)?'" "$FISH_C"
}

# ---- (b) subcommands and options -------------------------------------------
echo "== (b) subcommands of meshkv --help against the man page and completions"
SUBS=$(timeout 5 "$MESHKV" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }' | tr '\n' ' ')
[ -n "$SUBS" ] || bad "no subcommands found in meshkv --help"
echo "meshkv --help lists: $SUBS"
echo "man page synopsis documents: $DOCUMENTED"

# One bash answers every question (loading bash-completion takes a while):
# what `meshkv ` offers, and the options of each subcommand, which are what
# `meshkv SUB --` offers.
ALL=$(printf '%s\n' $SUBS $DOCUMENTED | sort -u | tr '\n' ' ')
queries=("meshkv ")
for sub in $ALL; do queries+=("meshkv $sub --"); done
mapfile -t answers < <(bash_complete "${queries[@]}")
[ ${#answers[@]} = ${#queries[@]} ] || bad "bash completion could not be loaded from $BASH_C"
TOP=${answers[0]:-}
echo "bash completes 'meshkv ' to: $TOP"
declare -A BASH_OPTS
i=1
for sub in $ALL; do
  BASH_OPTS[$sub]=${answers[i]:-}
  i=$((i + 1))
done

# A planned subcommand accepts anything and says so; a built one refuses an
# unknown option before it runs, so this never starts or contacts a node.
declare -A PLANNED
for sub in $ALL; do
  out=$(timeout 5 "$MESHKV" "$sub" --meshkv-docs-probe </dev/null 2>&1)
  grep -q "not available in this build yet" <<<"$out" && PLANNED[$sub]=1
done

# check_sub SUB WHERE OPTIONS...: the subcommand and each option are in the
# man page and in every completion. (Bash's own matching, not a grep per
# option: forks are slow on small VMs and this must take seconds.)
check_sub() {
  local sub=$1 where=$2 opt re syn section zsh fish
  shift 2
  syn=$(man_synopsis "$sub")
  section=$(man_section "$sub")
  zsh=$(zsh_branch "$sub")
  fish=$(fish_lines "$sub" | sed 's/$/ /')
  [ -n "$section" ] || bad "$sub: no '.SS $sub' section in man/meshkv.1"
  has "$sub" $DOCUMENTED || bad "$sub: no synopsis (.SY block) in man/meshkv.1"
  has "$sub" $TOP || bad "$sub: bash does not complete it after 'meshkv '"
  [[ $ZSH_LIST =~ [\'\"]$sub: ]] || bad "$sub: not in the subcommand list of completions/_meshkv"
  [ -n "$zsh" ] || bad "$sub: no ($sub) branch in completions/_meshkv"
  [[ $FISH_ALL == *" -a $sub -d "* ]] || bad "$sub: not offered by completions/meshkv.fish"
  for opt in "$@"; do
    has "$opt" $syn || bad "$sub $opt ($where): not in the man page synopsis"
    re="$opt([^a-z0-9-]|\$)"
    [[ $section =~ $re ]] || bad "$sub $opt ($where): not in the man page section '.SS $sub'"
    has "$opt" ${BASH_OPTS[$sub]} ||
      bad "$sub $opt ($where): bash does not offer it after 'meshkv $sub --' (offers: ${BASH_OPTS[$sub]})"
    re="'(\*|\([^)]*\))?${opt}[=[]"
    [[ $zsh =~ $re ]] || bad "$sub $opt ($where): not in the ($sub) branch of completions/_meshkv"
    [[ $fish == *" -l ${opt#--} "* ]] ||
      bad "$sub $opt ($where): no 'complete ... $sub ... -l ${opt#--}' in completions/meshkv.fish"
  done
}
ZSH_LIST=$(cat "$ZSH_C")
FISH_ALL=$(cat "$FISH_C")

for sub in $SUBS; do
  if ! help=$(timeout 5 "$MESHKV" "$sub" --help 2>&1); then
    bad "$sub: 'meshkv $sub --help' failed"
    continue
  fi
  if [ -n "${PLANNED[$sub]:-}" ]; then
    echo "$sub: not available in this build yet; skipped (documented: $(has "$sub" $DOCUMENTED && echo yes || echo no))"
    continue
  fi
  opts=$(grep -oE '^  (-[a-zA-Z],)?--[a-z0-9][a-z0-9-]*' <<<"$help" | sed 's/.*,//; s/^ *//' | grep -vx -- --help | tr '\n' ' ')
  echo "$sub: --help shows: $opts| man synopsis: $(man_synopsis "$sub")| bash offers: ${BASH_OPTS[$sub]}"
  check_sub "$sub" "from meshkv $sub --help" $opts
  for opt in $(man_synopsis "$sub"); do
    has "$opt" $opts || bad "$sub $opt: in the man page synopsis but not in 'meshkv $sub --help'"
  done
done

# Documented but not built yet (the man page is ahead of the binary): the
# completions must still cover what the man page promises.
for sub in $DOCUMENTED; do
  has "$sub" $SUBS || { bad "$sub: documented in the man page but unknown to 'meshkv --help'"; continue; }
  if [ -n "${PLANNED[$sub]:-}" ]; then
    echo "$sub (documented, not built yet): man synopsis: $(man_synopsis "$sub")| bash offers: ${BASH_OPTS[$sub]}"
    check_sub "$sub" "from the man page synopsis" $(man_synopsis "$sub")
  fi
done
# Nothing completed that is not documented (e.g. a subcommand left out on purpose).
for sub in $TOP; do
  has "$sub" $DOCUMENTED || bad "bash completes '$sub' after 'meshkv ', which the man page does not document"
done

# Configuration keys.
KEYS=$(sed -nE 's/^#? ?([a-z_]+) = .*/\1/p' "$ROOT/scripts/meshkv.example.toml" | tr '\n' ' ')
echo "config keys in scripts/meshkv.example.toml: $KEYS"
for k in $KEYS; do
  grep -qE "^\.BR? $k( |$)" "$TMP/man" || bad "configuration key $k is not described in man/meshkv.1"
done
for s in NAME SYNOPSIS DESCRIPTION SUBCOMMANDS "PROMPT COMMANDS" CONFIGURATION "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
  grep -qE "^\.SH \"?$s\"?$" "$TMP/man" || bad "man/meshkv.1 has no $s section"
done
for v in MESHKV_NODE NO_COLOR; do
  grep -qE "^\.B $v$" "$TMP/man" || bad "man/meshkv.1 does not describe \$$v"
done

# Syntax of the other shells' files, where those shells are installed.
if command -v zsh >/dev/null; then
  zsh -n "$ZSH_C" || bad "zsh -n completions/_meshkv"
else
  echo "zsh not installed: syntax of completions/_meshkv not checked"
fi
if command -v fish >/dev/null; then
  fish -n "$FISH_C" || bad "fish -n completions/meshkv.fish"
else
  echo "fish not installed: syntax of completions/meshkv.fish not checked"
fi

# ---- (c) bash completion as a user meets it --------------------------------
echo "== (c) simulated bash completion"
touch "$TMP/cluster.toml"
# Each case: the line typed (the cursor at its end), then the words it must
# offer; it must offer nothing that does not start with the word being
# completed, and a case with no words must offer nothing at all.
cases=(
  "meshkv |node get set del list status peers clock join loss watch diff"
  "meshkv lo|loss"
  "meshkv loss --dr|--drop"
  "meshkv node --log-level |debug info warn error"
  "meshkv node --log-level w|warn"
  "meshkv node --log-format |text json"
  "meshkv loss --direction |out in both"
  "meshkv node --config $TMP/clu|$TMP/cluster.toml"
  "meshkv get --|--node --timeout --json"
  "meshkv node --mtu |"
  "meshkv cluster |up status down partition heal kill restart"
  "meshkv top --view |members lag traffic"
)
lines=()
for c in "${cases[@]}"; do lines+=("${c%%|*}"); done
mapfile -t answers < <(bash_complete "${lines[@]}")
i=0
for c in "${cases[@]}"; do
  line=${c%%|*}
  want=${c#*|}
  got=${answers[i]:-}
  i=$((i + 1))
  cur=${line##* }
  echo "'$line' -> '$got'   (expected: '$want')"
  for w in $want; do has "$w" $got || bad "completing '$line' does not offer '$w' (got: '$got')"; done
  for w in $got; do
    [[ $w == "$cur"* ]] || bad "completing '$line' offers '$w', which does not start with '$cur'"
  done
  [ -n "$want" ] || [ -z "$got" ] || bad "completing '$line' must offer nothing, offers '$got'"
done

echo
if [ $FAILURES -gt 0 ]; then
  echo "$FAILURES check(s) failed"
  exit 1
fi
echo "PASS"
