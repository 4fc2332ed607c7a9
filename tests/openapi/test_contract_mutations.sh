#!/usr/bin/env bash
# test_contract_mutations.sh — proof that openapi.contract can fail: test_contract.sh runs
# against a description or route scripts that disagree in one place, and each run must fail
# with Prism naming that disagreement. CTest: openapi.contract_mutations.
#   response-schema   the Task schema loses `priority` (a closed object: every answer holding
#                     a task now has a property the description does not allow)
#   required-header   Vary becomes required (taskhost sends it only when the allowed origin
#                     is not `*`; the test runs with the default `*`)
#   request-schema    TaskCreate loses `priority` (the API takes a field the description lacks)
#   status-code       GET /tasks/{id} loses its 404
#   route-extra-field routes.lua answers GET /tasks/{id} with one more field
# shellcheck disable=SC2016 # the mutations are Python expressions, single-quoted on purpose
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${TASKHOST_BIN:?TASKHOST_BIN must name the taskhost binary}"
# shellcheck source=lib.sh
source "$here/lib.sh"
openapi_install
work=$(mktemp -d "${TMPDIR:-/tmp}/openapi-mutations.XXXXXX")
trap 'rm -rf "$work"' EXIT
spec=$root/openapi.yaml
failures=0

# mutate NAME PYTHON-EXPR: $work/NAME.yaml, the description with s (its text) replaced by
# the expression's value; fails the test when the expression changes nothing.
mutate() {
  python3 - "$spec" "$work/$1.yaml" "$2" <<'EOF'
import sys
src, dst, expr = sys.argv[1:4]
s = open(src).read()
t = eval(expr, {"s": s})
if t == s:
    sys.exit("mutation changed nothing")
open(dst, "w").write(t)
EOF
}

# expect_caught NAME REGEX [VAR=VALUE...]: test_contract.sh with the settings must fail, and a
# "FAIL: contract:" line of its output must match REGEX (Prism's reason).
expect_caught() {
  local name=$1 re=$2 out="$work/$1.out" rc=0
  shift 2
  env "$@" bash "$here/test_contract.sh" >"$out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && grep '^FAIL: contract:' "$out" | grep -Eq "$re"; then
    echo "PASS: $name: caught ($(grep -c '^FAIL: contract:' "$out") contract failures)"
  else
    failures=$((failures + 1))
    echo "FAIL: $name: not caught (exit $rc); wanted a contract failure matching /$re/. Output:"
    tail -n 30 "$out"
  fi
}

mutate response-schema \
  's.replace("        status: { $ref: \x27#/components/schemas/Status\x27 }\n        priority: { $ref: \x27#/components/schemas/Priority\x27 }\n        created_at:", "        status: { $ref: \x27#/components/schemas/Status\x27 }\n        created_at:", 1)'
expect_caught response-schema "additional properties.*priority" OPENAPI_SPEC="$work/response-schema.yaml"

mutate required-header \
  's.replace("    Vary:\n      description: \x27`Origin`, when the allowed origin is not `*`.\x27\n      required: false", "    Vary:\n      description: \x27`Origin`.\x27\n      required: true", 1)'
expect_caught required-header "required property 'vary'" OPENAPI_SPEC="$work/required-header.yaml"

mutate request-schema \
  's.replace("        priority:\n          allOf: [{ $ref: \x27#/components/schemas/Priority\x27 }]\n          default: medium\n", "", 1)'
expect_caught request-schema "Request body must NOT have additional properties" OPENAPI_SPEC="$work/request-schema.yaml"

mutate status-code \
  's.replace("        \x27404\x27: { $ref: \x27#/components/responses/TaskNotFound\x27 }\n", "", 1)'
expect_caught status-code "Unable to match the returned status code" OPENAPI_SPEC="$work/status-code.yaml"

mkdir -p "$work/routes"
cp "$root"/lua/*.lua "$work/routes/"
python3 - "$work/routes/routes.lua" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
old = "  return R.json(200, item)\nend"
if old not in s:
    sys.exit("routes.lua: get_task's answer not found")
open(p, "w").write(s.replace(old, "  item.owner = \"someone\"\n  return R.json(200, item)\nend", 1))
EOF
expect_caught route-extra-field "additional properties.*owner" CONTRACT_ROUTES="$work/routes"

if [ "$failures" -eq 0 ]; then echo "every mutation caught"; exit 0; fi
echo "$failures mutation(s) not caught"
exit 1
