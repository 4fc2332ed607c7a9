#!/usr/bin/env bash
# test_contract.sh — the end-to-end scenarios through Prism, a proxy that validates every
# request and response against openapi.yaml (`prism proxy SPEC UPSTREAM --errors`), so any
# answer of `taskhost --serve` that disagrees with the description fails the test.
#
#   CONTRACT_AUTH=off (default)   CRUD, pagination, every error path the API has with auth off
#   CONTRACT_AUTH=jwt             under tests/cognito/with_cognito.sh: the same scenarios with
#                                 a cognito-local token, every 401 (no token, another pool's
#                                 token, no JWT), another user's view (404, an empty list)
#   OPENAPI_SPEC                  the description (default: openapi.yaml at the repository root;
#                                 test_contract_mutations.sh passes broken copies)
#   CONTRACT_ROUTES               the route scripts (default: lua/; the mutation test passes a
#                                 copy whose answers carry an undescribed field)
#
# Two proxies, both on the same upstream and both validating every response against the
# description's responses, unchanged:
#   strict   the description as it is: valid requests. A request the description does not
#            allow is refused by Prism (422) and fails the test — so a field or parameter the
#            API takes but the description lacks is caught too.
#   lenient  lenient.js's copy, whose request side accepts anything: the deliberately bad
#            requests (error paths, other methods, unknown paths) reach taskhost.
# Any answer Prism made itself (application/problem+json: a violation, a refused request) or
# that carries an sl-violations header (Prism's warnings, e.g. an undescribed status, which
# --errors lets through) is a contract failure, named with Prism's reasons.
#
# The server runs a copy of the route scripts with a thin wrapper (fault.lua) that, on an
# X-Test-Fault request header, makes the store fail (throttled → 503, internal → 500,
# invalid → 400) or the route raise (500), so the 5xx answers are held against the
# description too; with "hold" a keyed POST stays in flight until the test releases it (a
# task with the X-Test-Release text), so a second POST with its key gets the 409.
# Without the header the real routes.lua answers, unchanged.
#
# Conditional requests and Idempotency-Key (issue 13): ETag, 304, 412, the malformed
# If-Match 400 on both stores; replay, 422, malformed key 400 and 409 on both stores.
#
# What Prism cannot carry, so e2e.serve covers it directly and not this test: Prism parses
# a JSON body and re-serialises it (malformed JSON gets Prism's own 400; `null` and `"x"`
# arrive changed), it puts a Content-Type on a body sent without one, and it fails on HEAD.
# Those answers are 400 and 405 with the same Error body validated here for other requests.
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
set -u
# shellcheck source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
openapi_install

MODE=${CONTRACT_AUTH:-off}
SPEC=${OPENAPI_SPEC:-$SOURCE_DIR/openapi.yaml}
SRC_ROUTES=${CONTRACT_ROUTES:-$ROUTES_DIR}
JSON=(-H 'Content-Type: application/json')
export TASKHOST_STORE="sqlite:$TMP/contract.db"
[ "${E2E_STORE:-sqlite}" = dynamodb ] && export TASKHOST_STORE=dynamodb
# fault.lua's "hold" keeps a keyed POST in flight for up to 20 s: the route's budget must
# outlast it (the claim's deadline follows the route's).
export TASKHOST_LUA_TIMEOUT_MS=30000

section "routes with the fault switch"
mkdir -p "$TMP/routes"
cp "$SRC_ROUTES"/*.lua "$TMP/routes/"
mv "$TMP/routes/routes.lua" "$TMP/routes/routes_real.lua"
cp "$OPENAPI_DIR/fault.lua" "$TMP/routes/routes.lua"
export TASKHOST_ROUTES="$TMP/routes"
pass

if [ "$MODE" = jwt ]; then
  : "${COGNITO_JWKS_URL:?CONTRACT_AUTH=jwt runs under tests/cognito/with_cognito.sh}"
  section "tokens from cognito-local"
  token() {
    TASKHOST_USER=$1 TASKHOST_PASSWORD='Passw0rd-for-tests' bash "$SOURCE_DIR/scripts/token.sh" \
      --create "${@:2}" </dev/null 2>>"$TMP/token.err"
  }
  TOKEN=$(token alice@example.com) || { fail "a token for alice" "$(cat "$TMP/token.err")"; finish; }
  BOB=$(token bob@example.com) || fail "a token for bob"
  OTHER_POOL=$(token carol@example.com --user-pool-id "$COGNITO_OTHER_POOL_ID" \
    --client-id "$COGNITO_OTHER_POOL_CLIENT_ID") || fail "a token from the other pool"
  pass
  export TASKHOST_AUTH=jwt TASKHOST_JWKS=$COGNITO_JWKS_URL TASKHOST_JWT_ISSUER=$COGNITO_ISSUER \
    TASKHOST_JWT_AUDIENCE=$COGNITO_CLIENT_ID
  AUTH=(-H "Authorization: Bearer $TOKEN")
else
  AUTH=()
fi

section "start: taskhost --serve and the two proxies"
serve_start || { fail "server starts and answers"; finish; }
UPSTREAM=$BASE_URL
node "$OPENAPI_DIR/lenient.js" "$SPEC" "$TMP/lenient.json" ||
  { fail "lenient.js makes the lenient copy"; finish; }
prism_start strict "$SPEC" "$UPSTREAM" || { fail "the strict proxy starts"; finish; }
STRICT=$PRISM_URL
prism_start lenient "$TMP/lenient.json" "$UPSTREAM" || { fail "the lenient proxy starts"; finish; }
LENIENT=$PRISM_URL
pass

# contract: the last answer is taskhost's (it always sends nosniff; Prism's own answers do
# not), and Prism found nothing wrong with the exchange.
CONTRACT_CHECKS=0
DIRECT=0 # exchanges sent straight to taskhost (only what Prism cannot carry)
contract() {
  CONTRACT_CHECKS=$((CONTRACT_CHECKS + 1))
  local violations
  violations=$(hdr sl-violations)
  if [ -n "$violations" ] || grep -qi '^content-type: application/problem+json' <<<"$HDRS"; then
    fail "contract: $OUT" "Prism: ${violations:-$(jq -c '.validation // .detail' <<<"$BODY" 2>/dev/null)}"
  elif [ "$(hdr X-Content-Type-Options)" != nosniff ]; then
    fail "contract: $OUT" "the answer is not taskhost's (no X-Content-Type-Options: nosniff)"
  else
    pass
  fi
}
# ok METHOD PATH [curl args]: a request the description allows, through the strict proxy.
ok() { BASE_URL=$STRICT http "$1" "$2" "${AUTH[@]}" "${@:3}"; contract; }
# bad METHOD PATH [curl args]: a request the API must refuse, through the lenient proxy.
bad() { BASE_URL=$LENIENT http "$1" "$2" "${AUTH[@]}" "${@:3}"; contract; }

section "the strict proxy validates requests"
BASE_URL=$STRICT http POST /tasks "${AUTH[@]}" "${JSON[@]}" --data-binary '{"task":"x","priorty":"high"}'
check_eq "an undescribed field is refused by Prism" 422 "$STATUS"
check_match "... as a request violation" 'additional properties' "$BODY"

section "create / read / update / delete"
ok POST /tasks "${JSON[@]}" --data-binary '{"task":"Write documentation","priority":"high"}'
expect "create" 201 '.task.task == "Write documentation" and .task.priority == "high" and .id == .task.id'
id=$(jq -r '.id' <<<"$BODY")
created=$(jq -c '.task' <<<"$BODY")
check_eq "create: Location" "/tasks/$id" "$(hdr Location)"
ok POST /tasks "${JSON[@]}" --data-binary '{"task":"  all fields  ","status":"in_progress","priority":"urgent"}'
expect "create with every field" 201 '.task.task == "all fields" and .task.status == "in_progress"'
ok POST /tasks -H 'Content-Type: application/json; charset=utf-8' --data-binary '{"task":"with charset"}'
expect "create, Content-Type with a charset" 201
ok GET "/tasks/$id"
expect "get" 200 '. == $c' --argjson c "$created"
# The limit counts characters (code points), as JSON Schema's maxLength does: 1000 emoji are
# 2000 UTF-16 units and 4000 bytes, and still allowed by both.
ok POST /tasks "${JSON[@]}" --data-binary "$(json_task "$(repeat_char 😀 1000)")"
expect "1000 emoji" 201 '.task.task | length == 1000'
long=$(jq -r '.id' <<<"$BODY")
ok DELETE "/tasks/$long"
expect "delete the emoji" 200
ok GET "/tasks/$(tr a-f A-F <<<"$id")"
expect "get, id in upper case" 200 '.id == $id' --arg id "$id"
ok PUT "/tasks/$id" "${JSON[@]}" --data-binary '{"status":"completed"}'
expect "update" 200 '.message == "Task updated successfully" and .task.status == "completed"'
ok PUT "/tasks/$id" "${JSON[@]}" --data-binary '{"task":"Reworded","status":"cancelled","priority":"low"}'
expect "update every field" 200 '.task.task == "Reworded" and .task.priority == "low"'
ok GET "/tasks/$id"
expect "get after update" 200 '.task == "Reworded" and .status == "cancelled"'
ok DELETE "/tasks/$id"
expect "delete" 200 '. == {"message": "Task deleted successfully", "id": $id}' --arg id "$id"
for m in GET DELETE; do
  ok "$m" "/tasks/$id"
  expect "$m deleted" 404 '. == {"message": "Task not found"}'
done
ok PUT "/tasks/$id" "${JSON[@]}" --data-binary '{"status":"new"}'
expect "PUT deleted" 404 '. == {"message": "Task not found"}'
for m in GET PUT DELETE; do
  if [ "$m" = PUT ]; then set -- "${JSON[@]}" --data-binary '{"status":"new"}'; else set --; fi
  ok "$m" /tasks/not-a-uuid "$@"
  expect "$m malformed id" 404 '. == {"message": "Task not found"}'
done

section "pagination"
ok GET /tasks
expect "list" 200 '.count == (.items | length) and .next == null'
have=$(jq -r '.items[].id' <<<"$BODY")
for i in 1 2 3 4 5; do
  ok POST /tasks "${JSON[@]}" --data-binary "{\"task\":\"page $i\"}"
  expect "create page $i" 201
done
ok GET /tasks
jq -r '.items[].id' <<<"$BODY" >"$TMP/all.ids"
check_eq "7 tasks" 7 "$(wc -l <"$TMP/all.ids")"
[ -n "$have" ] && pass
fetch_page() {
  if [ -z "$2" ]; then ok GET "/tasks?limit=$1"; else ok GET "/tasks?limit=$1&next=$(jq -rn --arg c "$2" '$c|@uri')"; fi
}
paginate "pages of 3" 3 fetch_page "$TMP/all.ids"
paginate "pages of 7" 7 fetch_page "$TMP/all.ids"
ok GET '/tasks?limit=100&unknown=1'
expect "limit 100 and an unknown parameter" 200 '.count == 7'

section "validation errors (400)"
bad POST /tasks "${JSON[@]}" --data-binary '{}'
expect_error "missing task" 400 task "^'task' is required$"
bad POST /tasks "${JSON[@]}" --data-binary '{"task":"   "}'
expect_error "blank task" 400 task "^'task' must not be empty$"
bad POST /tasks "${JSON[@]}" --data-binary "$(json_task "$(repeat_char a 1001)")"
expect_error "1001 characters" 400 task "^'task' must be at most 1000 characters$"
for v in 7 true null '[]' '{}'; do
  bad POST /tasks "${JSON[@]}" --data-binary "{\"task\":$v}"
  expect_error "task $v" 400 task "^'task' must be a string$"
done
bad POST /tasks "${JSON[@]}" --data-binary '{"task":"x","status":"done"}'
expect_error "bad status" 400 status "^'status' must be one of"
bad POST /tasks "${JSON[@]}" --data-binary '{"task":"x","priority":3}'
expect_error "priority not a string" 400 priority "^'priority' must be a string, one of"
for b in '[]' 3 '[{"task":"x"}]'; do
  bad POST /tasks "${JSON[@]}" --data-binary "$b"
  expect_error "body $b" 400 body "^Request body must be a JSON object$"
done
bad POST /tasks "${JSON[@]}"
expect_error "no body" 400 body "^Request body is required$"
bad POST /tasks "${JSON[@]}" --data-binary '{"task":"x","priorty":"high"}'
expect_error "unknown field" 400 priorty "^Unknown field 'priorty'$"
for f in id created_at updated_at; do
  bad POST /tasks "${JSON[@]}" --data-binary "{\"task\":\"x\",\"$f\":1}"
  expect_error "read-only $f" 400 "$f" "^'$f' is read-only$"
done
ok POST /tasks "${JSON[@]}" --data-binary '{"task":"target"}'
target=$(jq -r '.id' <<<"$BODY")
bad PUT "/tasks/$target" "${JSON[@]}" --data-binary '{}'
expect_error "empty update" 400 body "^Request body has no fields to update"
bad PUT "/tasks/$target" "${JSON[@]}" --data-binary '{"status":"blocked"}'
expect_error "update: bad status" 400 status "^'status' must be one of"
bad PUT "/tasks/$target" "${JSON[@]}"
expect_error "update: no body" 400 body "^Request body is required$"
for lim in 0 101 abc 1.5 '' +5; do
  bad GET "/tasks?limit=$(jq -rn --arg v "$lim" '$v|@uri')"
  expect_error "limit=$lim" 400 limit "^'limit' must be an integer from 1 to 100$"
done
for c in garbage '' "$(repeat_char A 4291)"; do
  bad GET "/tasks?next=$c"
  expect_error "next of ${#c} characters" 400 next "^'next' is not a valid pagination token$"
done
# The store's "invalid" (DynamoDB's ValidationException) is a 400 on every operation.
ok GET /tasks -H 'X-Test-Fault: invalid'
expect "GET /tasks: the store refuses the request" 400 '. == {"message": "Invalid request"}'
ok POST /tasks -H 'X-Test-Fault: invalid' "${JSON[@]}" --data-binary '{"task":"x"}'
expect "POST /tasks: the store refuses the request" 400 '. == {"message": "Invalid request"}'
for m in GET PUT DELETE; do
  if [ "$m" = PUT ]; then set -- "${JSON[@]}" --data-binary '{"status":"new"}'; else set --; fi
  ok "$m" "/tasks/$target" -H 'X-Test-Fault: invalid' "$@"
  expect "$m /tasks/{id}: the store refuses the request" 400 '. == {"message": "Invalid request"}'
done

section "other errors: 415, 413, 404, 405"
bad POST /tasks -H 'Content-Type: text/plain' --data-binary '{"task":"x"}'
expect "POST text/plain" 415 '. == {"message": "Content-Type must be application/json"}'
bad PUT "/tasks/$target" -H 'Content-Type: application/xml' --data-binary '{"status":"new"}'
expect "PUT application/xml" 415
{ printf '{"task":"'; repeat_char x 70000; printf '"}'; } >"$TMP/70k.json"
bad POST /tasks "${JSON[@]}" --data-binary "@$TMP/70k.json"
expect "POST 70 KB" 413 '. == {"message": "Request body too large"}'
bad PUT "/tasks/$target" "${JSON[@]}" --data-binary "@$TMP/70k.json"
expect "PUT 70 KB" 413 '. == {"message": "Request body too large"}'
for p in / /nope /tasks/a/b; do
  bad GET "$p"
  expect "unknown path $p" 404 '. == {"message": "Not found"}'
done
for m in PUT DELETE PATCH; do
  bad "$m" /tasks
  expect "$m /tasks" 405 '. == {"message": "Method not allowed"}'
  check_eq "$m /tasks: Allow" "GET, POST, OPTIONS" "$(hdr Allow)"
done
for m in POST PATCH; do
  bad "$m" "/tasks/$target" "${JSON[@]}" --data-binary '{"status":"new"}'
  expect "$m /tasks/{id}" 405 '. == {"message": "Method not allowed"}'
  check_eq "$m /tasks/{id}: Allow" "GET, PUT, DELETE, OPTIONS" "$(hdr Allow)"
done

section "5xx: the store failing, the route failing"
for m in GET POST; do
  if [ "$m" = POST ]; then set -- "${JSON[@]}" --data-binary '{"task":"x"}'; else set --; fi
  ok "$m" /tasks -H 'X-Test-Fault: throttled' "$@"
  expect "$m /tasks, store throttled" 503 '. == {"message": "Service temporarily unavailable"}'
  check_eq "$m /tasks 503: Retry-After" 1 "$(hdr Retry-After)"
  ok "$m" /tasks -H 'X-Test-Fault: internal' "$@"
  expect "$m /tasks, store failed" 500 '. == {"message": "Internal server error"}'
done
for m in GET PUT DELETE; do
  if [ "$m" = PUT ]; then set -- "${JSON[@]}" --data-binary '{"status":"new"}'; else set --; fi
  ok "$m" "/tasks/$target" -H 'X-Test-Fault: unavailable' "$@"
  expect "$m /tasks/{id}, store unavailable" 503
  ok "$m" "/tasks/$target" -H 'X-Test-Fault: raise' "$@"
  expect "$m /tasks/{id}, route raised" 500 '. == {"message": "Internal server error"}'
done

section "conditional requests: ETag, If-None-Match (304), If-Match (412, 400)"
ok POST /tasks "${JSON[@]}" --data-binary '{"task":"versioned"}'
expect "create" 201
check_eq "create: ETag" '"1"' "$(hdr ETag)"
vid=$(jq -r '.id' <<<"$BODY")
ok GET "/tasks/$vid"
expect "get" 200
check_eq "get: ETag" '"1"' "$(hdr ETag)"
for inm in '"1"' 'W/"1"' '"9", "1"' '*'; do
  ok GET "/tasks/$vid" -H "If-None-Match: $inm"
  check_eq "If-None-Match: $inm → 304" 304 "$STATUS"
  check_eq "If-None-Match: $inm → no body" "" "$BODY"
  check_eq "If-None-Match: $inm → ETag kept" '"1"' "$(hdr ETag)"
  check_eq "If-None-Match: $inm → no Content-Type" "" "$(hdr Content-Type)"
done
ok GET "/tasks/$vid" -H 'If-None-Match: "2"'
expect "If-None-Match of another version" 200 '.task == "versioned"'
ok PUT "/tasks/$vid" -H 'If-Match: "1"' "${JSON[@]}" --data-binary '{"status":"in_progress"}'
expect "PUT, If-Match current" 200 '.task.status == "in_progress"'
check_eq "PUT: ETag of the new version" '"2"' "$(hdr ETag)"
for im in '"1"' 'W/"2"' '"7", "8"'; do
  ok PUT "/tasks/$vid" -H "If-Match: $im" "${JSON[@]}" --data-binary '{"status":"completed"}'
  expect "PUT, stale If-Match: $im" 412 '. == {"message": "Precondition failed"}'
  check_eq "PUT 412 ($im): no ETag" "" "$(hdr ETag)"
done
ok DELETE "/tasks/$vid" -H 'If-Match: "1"'
expect "DELETE, stale If-Match" 412 '. == {"message": "Precondition failed"}'
ok GET "/tasks/$vid"
expect "the 412s changed nothing" 200 '.status == "in_progress"'
check_eq "... still version 2" '"2"' "$(hdr ETag)"
ok PUT "/tasks/$vid" -H 'If-Match: "1", "2"' "${JSON[@]}" --data-binary '{"priority":"high"}'
expect "PUT, If-Match list holding the current tag" 200 '.task.priority == "high"'
check_eq "PUT: ETag" '"3"' "$(hdr ETag)"
for im in '3' '"3" x' 'W/' ','; do
  for m in PUT DELETE; do
    if [ "$m" = PUT ]; then set -- "${JSON[@]}" --data-binary '{"status":"new"}'; else set --; fi
    bad "$m" "/tasks/$vid" -H "If-Match: $im" "$@"
    expect "$m, malformed If-Match '$im'" 400 \
      '. == {"message": "If-Match must be * or a list of at most 16 entity tags"}'
  done
done
ok DELETE "/tasks/$vid" -H 'If-Match: *'
expect "DELETE, If-Match *" 200 '.id == $id' --arg id "$vid"
check_eq "DELETE: no ETag" "" "$(hdr ETag)"
ok DELETE "/tasks/$vid" -H 'If-Match: *'
expect "DELETE gone task, If-Match *" 412 '. == {"message": "Precondition failed"}'
ok PUT "/tasks/$vid" -H 'If-Match: "3"' "${JSON[@]}" --data-binary '{"status":"new"}'
expect "PUT gone task, If-Match" 412 '. == {"message": "Precondition failed"}'

# held KEY BODY RELEASE: a keyed POST through the strict proxy that fault.lua holds in flight
# until the caller has a task named RELEASE; in the background, its answer kept in
# $TMP/held.*. held_answer loads it as the last answer (and counts it as an exchange).
# The subshell has its own $TMP: http keeps each answer in $TMP/h and $TMP/b, which the
# requests sent meanwhile in the foreground write too.
held() {
  mkdir -p "$TMP/held.d"
  (
    out=$TMP
    TMP=$TMP/held.d
    BASE_URL=$STRICT http POST /tasks "${AUTH[@]}" -H "Idempotency-Key: $1" \
      -H 'X-Test-Fault: hold' -H "X-Test-Release: $3" "${JSON[@]}" --data-binary "$2"
    printf '%s' "$STATUS" >"$out/held.status"
    printf '%s' "$BODY" >"$out/held.body"
    printf '%s' "$HDRS" >"$out/held.hdrs"
    printf '%s' "$RC" >"$out/held.rc"
  ) &
  HELD_PID=$!
}
held_answer() {
  wait "$HELD_PID"
  STATUS=$(cat "$TMP/held.status") BODY=$(cat "$TMP/held.body") HDRS=$(cat "$TMP/held.hdrs")
  RC=$(cat "$TMP/held.rc")
  OUT="POST /tasks (held) → $STATUS (curl $RC) $BODY"
  HTTP_COUNT=$((HTTP_COUNT + 1))
  contract
}
# named TEXT: NAMED is how many of the caller's tasks (the newest 100) have this text.
named() {
  ok GET '/tasks?limit=100'
  NAMED=$(jq --arg t "$1" '[.items[] | select(.task == $t)] | length' <<<"$BODY")
}

# Both stores honour the key (DynamoDB: one TransactWriteItems, so dynamodb.openapi_contract
# runs on moto_server; dynalite has no transactions).
section "Idempotency-Key: replay, 422, 400, in flight (409)"
KEY='"contract-once"'
ok POST /tasks -H "Idempotency-Key: $KEY" "${JSON[@]}" --data-binary '{"task":"once"}'
expect "keyed POST" 201 '.task.task == "once"'
first=$BODY first_loc=$(hdr Location) first_etag=$(hdr ETag)
check_eq "keyed POST: ETag" '"1"' "$first_etag"
once=$(jq -r '.id' <<<"$BODY")
ok PUT "/tasks/$once" "${JSON[@]}" --data-binary '{"status":"completed"}'
expect "the task changes meanwhile" 200
for k in "$KEY" contract-once; do
  ok POST /tasks -H "Idempotency-Key: $k" "${JSON[@]}" --data-binary '{"task":"once"}'
  expect "repeated with key $k: the first answer" 201 '. == $first' --argjson first "$first"
  check_eq "repeated with key $k: Location" "$first_loc" "$(hdr Location)"
  check_eq "repeated with key $k: ETag" "$first_etag" "$(hdr ETag)"
done
named once
check_eq "one task created" 1 "$NAMED"
ok POST /tasks -H "Idempotency-Key: $KEY" "${JSON[@]}" --data-binary '{"task":"twice"}'
expect "same key, another body" 422 \
  '. == {"message": "Idempotency-Key was already used with a different request"}'
named twice
check_eq "another body: nothing created" 0 "$NAMED"
for k in '""' '"a b"' '"a\"b"' "\"$(repeat_char k 256)\""; do
  bad POST /tasks -H "Idempotency-Key: $k" "${JSON[@]}" --data-binary '{"task":"bad key"}'
  expect "malformed key of ${#k} characters" 400 \
    '.message | startswith("Idempotency-Key must be a string of 1 to 255 visible ASCII")'
done
named 'bad key'
check_eq "malformed keys: nothing created" 0 "$NAMED"
ok POST /tasks -H "Idempotency-Key: \"$(repeat_char k 255)\"" "${JSON[@]}" --data-binary '{"task":"long key"}'
expect "a 255-character key" 201

release="release $$-$RANDOM"
held '"contract-held"' '{"task":"held"}' "$release"
for _ in $(seq 1 600); do
  grep -q '"contract: holding"' "$SERVE_LOG" && break
  sleep 0.1
done
check_match "the held request reached the route" '"contract: holding"' "$(cat "$SERVE_LOG")"
ok POST /tasks -H 'Idempotency-Key: "contract-held"' "${JSON[@]}" --data-binary '{"task":"held"}'
expect "same key while in flight" 409 \
  '. == {"message": "A request with this Idempotency-Key is still in progress"}'
check_eq "409: Retry-After" 1 "$(hdr Retry-After)"
ok POST /tasks -H 'Idempotency-Key: "contract-held"' "${JSON[@]}" --data-binary '{"task":"other"}'
expect "same key, another body, while in flight" 422
ok POST /tasks "${JSON[@]}" --data-binary "$(json_task "$release")"
expect "release the held request" 201
held_answer
expect "the held request, released" 201 '.task.task == "held"'
held_body=$BODY
ok POST /tasks -H 'Idempotency-Key: "contract-held"' "${JSON[@]}" --data-binary '{"task":"held"}'
expect "same key after it completed: its answer" 201 '. == $b' --argjson b "$held_body"
named held
check_eq "one held task" 1 "$NAMED"

# leave the caller's tasks as they were (the auth test counts them at the end)
ok GET '/tasks?limit=100'
for t in $(jq -r --arg r "$release" \
  '.items[] | select(.task == "once" or .task == "held" or .task == "long key" or .task == $r) | .id' \
  <<<"$BODY"); do
  ok DELETE "/tasks/$t"
  expect "clean up $t" 200
done

section "CORS preflight"
for p in /tasks "/tasks/$target"; do
  ok OPTIONS "$p" -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: PUT' \
    -H 'Access-Control-Request-Headers: authorization, content-type'
  check_eq "preflight $p: 204" 204 "$STATUS"
  check_eq "preflight $p: no body" "" "$BODY"
  check_eq "preflight $p: max age" 600 "$(hdr Access-Control-Max-Age)"
done

if [ "$MODE" = jwt ]; then
  section "401"
  for route in "GET /tasks" "POST /tasks" "GET /tasks/$target" "PUT /tasks/$target" \
    "DELETE /tasks/$target" "OPTIONS /tasks"; do
    read -r method path <<<"$route"
    case $method in
      POST | PUT) set -- "${JSON[@]}" --data-binary '{"task":"x"}' ;;
      *) set -- ;;
    esac
    AUTH=()
    ok "$method" "$path" "$@"
    expect "$route without a token" 401 '. == {"message": "Unauthorized"}'
    check_eq "$route without a token: WWW-Authenticate" Bearer "$(hdr WWW-Authenticate)"
    AUTH=(-H "Authorization: Bearer $OTHER_POOL")
    ok "$method" "$path" "$@"
    expect "$route with another pool's token" 401 '. == {"message": "Unauthorized"}'
    check_eq "$route, another pool: WWW-Authenticate" 'Bearer error="invalid_token"' "$(hdr WWW-Authenticate)"
  done
  AUTH=(-H 'Authorization: Bearer not.a.jwt')
  bad GET /tasks
  expect "a bearer value that is no JWT" 401 '. == {"message": "Unauthorized"}'
  AUTH=(-H "Authorization: Bearer $BOB")
  ok GET "/tasks/$target"
  expect "bob cannot read alice's task" 404 '. == {"message": "Task not found"}'
  ok GET /tasks
  expect "bob lists none of alice's tasks" 200 '.count == 0 and .next == null'
  AUTH=(-H "Authorization: Bearer $TOKEN")
  ok GET /tasks
  expect "alice still lists her tasks" 200 '.count == 8'
fi

section "the contract held for every answer"
# every request but the one the strict proxy had to refuse
check_eq "every exchange went through the contract check" $((HTTP_COUNT - 1 - DIRECT)) "$CONTRACT_CHECKS"
# openapi.yaml marks CORS headers optional on the answers API Gateway may make itself (401,
# 413, 500, 503); taskhost's own always carry them (lib.sh's http logs any that does not).
check_eq "every answer of taskhost has CORS and nosniff headers" \
  "POST /tasks → 422" "$(cat "$HTTP_LOG")"
echo "$CONTRACT_CHECKS exchanges held against $(basename "$SPEC") (auth $MODE)"
prism_stop_all
serve_stop
finish
