#!/usr/bin/env bash
# The same API behind a REST API (api_type = "rest", terraform/rest.tf): the taskhost binary
# in its Lambda loop behind tests/e2e/rest_gateway.py, which turns HTTP requests into REST
# API proxy events (payload 1.0) as API Gateway does for the root and {proxy+} resources and
# serves the Lambda Runtime API. scripts/smoke.sh (with an API key, as with api_clients) passes
# against it:
#   * on the execute-api URL, the stage in the client's path (.../api/tasks: `path` without
#     the stage, requestContext.path with it);
#   * behind a custom domain with a base path (.../v1/tasks: `path` with the base path);
# and Location keeps the prefix the client used, the root resource ("/api", "/v1") is the
# function's 404, a path outside the stage is API Gateway's 403, and a missing key is a 403
# that never reaches the function. Auth off (tests/cognito/ runs the token side).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GATEWAY="$SOURCE_DIR/tests/e2e/rest_gateway.py"
SMOKE="$SOURCE_DIR/scripts/smoke.sh"
KEY=e2e-key-0123456789abcdefghijklmnopqrstuv
unset AWS_LAMBDA_RUNTIME_API
export TASKHOST_AUTH=none

GW_PID="" RT_PID=""
stop_all() {
  [ -z "$RT_PID" ] || { kill "$RT_PID" 2>/dev/null; wait "$RT_PID" 2>/dev/null; }
  [ -z "$GW_PID" ] || { kill "$GW_PID" 2>/dev/null; wait "$GW_PID" 2>/dev/null; }
  GW_PID="" RT_PID=""
}

# start MODE: the gateway and the runtime behind it; sets BASE (the client's base URL) and
# EVENTS (the events handed out, one a line).
start() {
  local mode=$1 ports="$TMP/ports-$1" rt cl
  rm -f "$ports"
  /usr/bin/python3 "$GATEWAY" --mode "$mode" --stage api --base-path v1 --api-key "$KEY" --ports-file "$ports" &
  GW_PID=$!
  for _ in $(seq 1 100); do [ -s "$ports" ] && break; sleep 0.1; done
  read -r rt cl <"$ports" || return 1
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:$rt "$TASKHOST_BIN" >"$TMP/rt-$mode.log" 2>&1 &
  RT_PID=$!
  if [ "$mode" = stage ]; then BASE=http://127.0.0.1:$cl/api; else BASE=http://127.0.0.1:$cl/v1; fi
  EVENTS="$ports.events"
}

for mode in stage domain; do
  prefix=/api
  [ "$mode" = stage ] || prefix=/v1
  section "REST API, $mode: smoke.sh --api-key against $prefix"
  start "$mode" || { fail "$mode: the gateway starts"; continue; }
  out=$(bash "$SMOKE" "$BASE" --api-key "$KEY" --timeout 30 2>&1)
  rc=$?
  echo "$out" | sed 's/^/      /'
  check_eq "$mode: smoke.sh exit 0" 0 "$rc"
  for name in create read update list delete validation "not found" preflight "api key"; do
    check "$mode: smoke.sh PASS $name" grep -q "^PASS $name:" <<<"$out"
  done
  check_eq "$mode: no FAIL line" "" "$(grep '^FAIL' <<<"$out")"

  # The events were REST API events of the kind this mode makes.
  if [ "$mode" = stage ]; then
    check_jq "stage: events carry path without the stage, requestContext.path with it" "$(head -n 1 "$EVENTS")" \
      '.resource == "/{proxy+}" and .path == "/tasks" and .requestContext.path == "/api/tasks" and .requestContext.stage == "api"'
  else
    check_jq "domain: events carry the base path in path and requestContext.path" "$(head -n 1 "$EVENTS")" \
      '.resource == "/{proxy+}" and .path == "/v1/tasks" and .requestContext.path == "/v1/tasks" and .requestContext.stage == "api"'
  fi

  # Location keeps the prefix the client used.
  hdrs=$(curl -s -D - -o "$TMP/body" -X POST -H "x-api-key: $KEY" -H 'Content-Type: application/json' \
    --data-binary '{"task":"rest api"}' "$BASE/tasks" | tr -d '\r')
  id=$(jq -r '.id // empty' "$TMP/body" 2>/dev/null)
  check_match "$mode: POST $prefix/tasks → 201" '^HTTP/1.1 201' "$hdrs"
  check "$mode: Location is $prefix/tasks/<id>" grep -qix "location: $prefix/tasks/$id" <<<"$hdrs"
  check_eq "$mode: GET $prefix/tasks/<id> → 200" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "$BASE/tasks/$id")"
  check_eq "$mode: GET $prefix/tasks/<id>/ (a trailing slash) → 200" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "$BASE/tasks/$id/")"
  check_eq "$mode: DELETE $prefix/tasks/<id> → 200" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "x-api-key: $KEY" "$BASE/tasks/$id")"

  # The root resource: the function's JSON 404, not the list.
  body=$(curl -s -w '\n%{http_code}' -H "x-api-key: $KEY" "$BASE")
  check_eq "$mode: GET $prefix (the root resource) → 404" 404 "$(tail -n 1 <<<"$body")"
  check_jq "$mode: the root's 404 is the function's JSON error" "$(sed '$d' <<<"$body")" '.message | type == "string"'
  check_jq "$mode: the root's event is resource / without pathParameters" "$(tail -n 1 "$EVENTS")" \
    '.resource == "/" and .pathParameters == null'

  # API Gateway's own answers: never the function.
  n=$(wc -l <"$EVENTS")
  check_eq "$mode: no x-api-key → 403" 403 "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/tasks")"
  check_eq "$mode: a path outside $prefix → 403" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "${BASE%"$prefix"}/other/tasks")"
  check_eq "$mode: neither reached the function" "$n" "$(wc -l <"$EVENTS")"
  stop_all
done

finish
