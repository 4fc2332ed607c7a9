#!/usr/bin/env bash
# lint.sh [SPEC] — openapi.yaml (or SPEC) through both linters, pinned in package-lock.json:
#   @redocly/cli lint (its recommended rules) and @stoplight/spectral-cli lint with
#   .spectral.yaml (extends spectral:oas).
# Policy: zero errors AND zero warnings — either linter's error or warning fails (the
# description has none; a new one is fixed, not accepted). CTest: openapi.lint.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
openapi_install
spec=${1:-$root/openapi.yaml}
status=0

echo "== redocly lint $spec"
# redocly exits 1 on errors only; its stylish format prints "L:C  warning  rule  message".
out=$("$OPENAPI_BIN/redocly" lint --format stylish "$spec" 2>&1) || status=1
echo "$out"
if grep -Eq '^ +[0-9]+:[0-9]+ +warning ' <<<"$out"; then status=1; fi

echo "== spectral lint (spectral:oas) $spec"
"$OPENAPI_BIN/spectral" lint --ruleset "$root/.spectral.yaml" --fail-severity warn "$spec" || status=1

if [ "$status" -eq 0 ]; then echo "PASS: no lint errors or warnings"; else echo "FAIL: lint problems above"; fi

# Without SPEC (CTest): proof that this check can fail — a copy with an error (a schema of an
# unknown type) and one with only a warning (an unused component) must each fail it.
if [ $# -eq 0 ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/openapi-lint.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  python3 - "$spec" "$work" <<'PY'
import sys
src, work = sys.argv[1:3]
s = open(src).read()
cases = {
    "error": s.replace("    Task:\n      type: object\n", "    Task:\n      type: objekt\n", 1),
    "warning": s.replace("  schemas:\n", "  schemas:\n    Unused:\n      type: string\n", 1),
}
for name, text in cases.items():
    if text == s:
        sys.exit(f"lint.sh: the {name} mutation changed nothing")
    open(f"{work}/{name}.yaml", "w").write(text)
PY
  for name in error warning; do
    if [ ! -f "$work/$name.yaml" ] || bash "$here/lint.sh" "$work/$name.yaml" >"$work/$name.out" 2>&1; then
      status=1
      echo "FAIL: a copy with one $name passes the lint (or was not made)"
    else
      echo "PASS: a copy with one $name fails the lint ($(grep -Ec ' (error|warning) ' "$work/$name.out") problems)"
    fi
  done
fi
exit "$status"
