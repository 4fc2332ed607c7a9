#!/usr/bin/env bash
# The unzipped Lambda package, started as Lambda starts it: from the task root
# as working directory, `./bootstrap` with no arguments, under `env -i` with
# only the variables Lambda sets (tests/package/lib.sh: lambda_env_for) and
# the function's own TABLE_NAME / TASKHOST_STORE=dynamodb /
# AWS_ENDPOINT_URL_DYNAMODB, serves the CRUD scenario (payload 2.0 and 1.0
# events) through the Runtime API test server (tests/lambda/) against
# dynalite. While it runs, /proc shows that its environment is exactly that
# one, and that every shared object it has mapped is from the package's lib/
# or glibc's (nothing from the build machine: not at start, not later through
# dlopen; the default package has no lib/, so glibc's alone). Its peak RSS
# (VmHWM) is printed. SIGTERM ends it with status 0.
#
# Run under tests/integration/with_dynalite.sh (the endpoint and the table
# come from its environment).
: "${TABLE_NAME:?run under tests/integration/with_dynalite.sh (TABLE_NAME)}"
: "${AWS_ENDPOINT_URL_DYNAMODB:?run under tests/integration/with_dynalite.sh (AWS_ENDPOINT_URL_DYNAMODB)}"
export E2E_STORE=dynamodb TASKHOST_STORE=dynamodb
SOURCE_DIR=${SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# tests/e2e/lib.sh checks TASKHOST_BIN; this test runs the package's own bootstrap.
export TASKHOST_BIN=${TASKHOST_BIN:-/bin/true}
source "$SOURCE_DIR/tests/e2e/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
source "$SOURCE_DIR/tests/package/lib.sh"

pkg_unpack "$TMP/task"
pkg_layout

# pkg_start: bootstrap started the Lambda way (sets RT_PID RT_LOG for lib.sh).
pkg_start() {
  lambda_env_for "$PKG"
  RT_LOG="$TMP/rt.$RAPI_N.log"
  RT_START_MS=$(ms_now)
  (cd "$PKG" && exec env -i "${LAMBDA_ENV[@]}" ./bootstrap) </dev/null \
    >"$TMP/rt.$RAPI_N.out" 2>"$RT_LOG" &
  RT_PID=$!
}

crud() {
  local v=$1 id
  section "$v through the loop: create / get / update / list / delete / 404"
  lambda_api "$v" POST /tasks -b '{"task":"Ship the Lambda package","priority":"high"}'
  expect "$v create" 201 '.task.task == "Ship the Lambda package" and .task.priority == "high"
    and .task.status == "new" and .id == .task.id'
  id=$(jq -r '.id' <<<"$BODY")
  check_match "$v create: id is a UUID" "$UUID_RE" "$id"
  lambda_api "$v" GET "/tasks/$id"
  expect "$v get" 200 '.id == $id and .task == "Ship the Lambda package"' --arg id "$id"
  lambda_api "$v" PUT "/tasks/$id" -b '{"status":"completed"}'
  expect "$v update" 200 '.message == "Task updated successfully" and .task.status == "completed"
    and .task.priority == "high"'
  lambda_api "$v" GET /tasks -q limit=100
  expect "$v list" 200 'any(.items[]; .id == $id and .status == "completed")' --arg id "$id"
  lambda_api "$v" DELETE "/tasks/$id"
  expect "$v delete" 200 '.id == $id' --arg id "$id"
  lambda_api "$v" GET "/tasks/$id"
  expect "$v get after delete" 404 '. == {"message": "Task not found"}'
  lambda_api "$v" POST /tasks -b '{"task":""}'
  expect "$v validation error" 400 '.field == "task"'
}

rapi_start --dynamic || { fail "test server starts"; finish; }
pkg_start
crud v2
crud v1

section "the process, seen from /proc while it runs"
if kill -0 "$RT_PID" 2>/dev/null; then
  check_eq "cwd is the task root" "$PKG" "$(readlink "/proc/$RT_PID/cwd")"
  check_eq "the executable is the package's bootstrap" "$PKG/bootstrap" "$(readlink "/proc/$RT_PID/exe")"
  check_eq "argv is ./bootstrap alone" "./bootstrap" "$(tr '\0' ' ' <"/proc/$RT_PID/cmdline" | sed 's/ $//')"
  check_eq "environment: exactly Lambda's variables and the function's" \
    "$(printf '%s\n' "${LAMBDA_ENV[@]}" | LC_ALL=C sort)" \
    "$(tr '\0' '\n' <"/proc/$RT_PID/environ" | LC_ALL=C sort)"
  maps=$(awk '$6 ~ /\.so/ { print $6 }' "/proc/$RT_PID/maps" | sort -u)
  from_pkg=0 from_glibc=0 stray=""
  while read -r so; do
    [ -n "$so" ] || continue
    if [[ $so == "$PKG"/lib/* ]]; then
      from_pkg=$((from_pkg + 1))
    elif glibc_soname "$so"; then
      from_glibc=$((from_glibc + 1))
    else
      stray+=" $so"
    fi
  done <<<"$maps"
  echo "      mapped: $from_pkg shared objects from lib/, $from_glibc of glibc's from the system"
  check_eq "every mapped shared object is from lib/ or glibc's" "" "${stray# }"
  check_eq "every bundled library is mapped (none shipped for nothing)" "$NBUNDLED" "$from_pkg"
  echo "      peak RSS after the scenario: $(awk '/^VmHWM:/ { print $2, $3 }' "/proc/$RT_PID/status")"
else
  fail "bootstrap still running after the scenario" "$(tail -5 "$RT_LOG")"
fi

section "SIGTERM"
rt_term 10
rapi_stop
check_eq "SIGTERM: exit 0" 0 "$RT_RC"
check_eq "no init error posted" 0 "$(records '.kind == "init_error"' | wc -l)"
check "stderr has no loader complaint" bash -c "! grep -Eiq 'error while loading|cannot open shared|version .GLIBC' '$RT_LOG'"
if [ "$FAILED" -gt 0 ]; then
  echo "      bootstrap's stderr (last lines):"
  tail -20 "$RT_LOG" | sed 's/^/        /'
fi

finish
