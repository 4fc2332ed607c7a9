#!/usr/bin/env bash
# test_routes.sh — openapi.yaml's paths, methods and statuses against what lua/routes.lua
# registers and what the code can answer (check_routes.js), so a new route or status cannot
# go undescribed; then proof that the check can fail, on copies of the sources with:
#   a new route in routes.lua (POST /tasks/{id}/done), a new method on a route (PATCH),
#   a new status (418) in routes.lua, the host's 304 left undescribed, a stray value in the
#   ROUTES table, a described path routes.lua does not have.
# No server, no network: reads the files. CTest: openapi.routes.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
openapi_install
work=$(mktemp -d "${TMPDIR:-/tmp}/openapi-routes.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

echo "== the sources as they are"
if node "$here/check_routes.js" "$root"; then
  echo "PASS: openapi.yaml agrees with routes.lua and the code's statuses"
else
  failures=$((failures + 1))
  echo "FAIL: openapi.yaml disagrees with routes.lua or the code's statuses (above)"
fi

# copy NAME: $work/NAME, a copy of the files check_routes.js reads.
copy() {
  mkdir -p "$work/$1/lua" "$work/$1/runtime"
  cp "$root"/lua/*.lua "$work/$1/lua/"
  cp "$root/runtime/host.c" "$root/runtime/serve.c" "$work/$1/runtime/"
  cp "$root/openapi.yaml" "$work/$1/"
}
# edit FILE OLD NEW: replaces the first OLD in FILE; fails the test when OLD is not there.
edit() {
  python3 - "$@" <<'EOF'
import sys
path, old, new = sys.argv[1:4]
s = open(path).read()
if old not in s:
    sys.exit(f"{path}: {old!r} not found")
open(path, "w").write(s.replace(old, new, 1))
EOF
}
# must_fail NAME REGEX: check_routes.js on $work/NAME fails with a FAIL line matching REGEX.
must_fail() {
  local out rc=0
  out=$(node "$here/check_routes.js" "$work/$1" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] && grep '^FAIL: ' <<<"$out" | grep -Eq "$2"; then
    echo "PASS: $1: caught ($(grep '^FAIL: ' <<<"$out" | head -n 1))"
  else
    failures=$((failures + 1))
    echo "FAIL: $1: not caught (exit $rc), wanted /$2/:"
    echo "$out"
  fi
}

echo "== mutations that must be caught"
copy new-route
edit "$work/new-route/lua/routes.lua" \
  $'  {\n    pattern = "^/tasks/([^/]+)$",' \
  $'  { pattern = "^/tasks/([^/]+)/done$", methods = { POST = update_task } },\n  {\n    pattern = "^/tasks/([^/]+)$",' ||
  failures=$((failures + 1))
must_fail new-route "/tasks/\{\}/done is described"

copy new-method
edit "$work/new-method/lua/routes.lua" 'PUT = update_task,' 'PUT = update_task, PATCH = update_task,' ||
  failures=$((failures + 1))
must_fail new-method "/tasks/\{id\}: the described methods"

copy new-status
edit "$work/new-status/lua/routes.lua" 'R.error(415,' 'R.error(418,' || failures=$((failures + 1))
must_fail new-status "every status the code answers is described.*418"

copy undescribed-304
edit "$work/undescribed-304/openapi.yaml" "        '304':" "        '399':" || failures=$((failures + 1))
must_fail undescribed-304 "every status the code answers is described.*304"

copy stray-entry
edit "$work/stray-entry/lua/routes.lua" $'local ROUTES = {\n' $'local ROUTES = {\n  list_tasks,\n' ||
  failures=$((failures + 1))
must_fail stray-entry "ROUTES is a list of"

copy undescribed-path
edit "$work/undescribed-path/openapi.yaml" $'paths:\n' $'paths:\n  /health:\n    get:\n      responses:\n        \'200\':\n          description: ok\n' ||
  failures=$((failures + 1))
must_fail undescribed-path "/health is a route of routes.lua"

if [ "$failures" -eq 0 ]; then echo "PASS: all"; exit 0; fi
echo "FAIL: $failures"
exit 1
