#!/usr/bin/env bash
# End to end through `taskhost --local EVENT.json`: the Task API's CRUD
# scenario and every validation rule, with API Gateway events of both payload
# versions (v1 REST API, v2 HTTP API) built with jq; CORS and security headers;
# body limits and base64; stage prefixes; the fixture events; inputs that are
# not events; script and configuration errors; the JSON log lines.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NOW=$(date +%s)

# ---- the CRUD scenario -----------------------------------------------------------

crud() {
  local v=$1 id created task loc
  section "$v: create / read / update / delete"

  api "$v" POST /tasks -b '{"task":"Write documentation"}'
  expect "$v create" 201
  check_jq "$v create: body shape" "$BODY" '
    (keys == ["id", "task"]) and (.id | type == "string")
    and (.task | keys == ["created_at", "id", "priority", "status", "task", "updated_at"])
    and .task.id == .id and .task.task == "Write documentation"
    and .task.status == "new" and .task.priority == "medium"
    and (.task.created_at | type == "number") and .task.created_at == (.task.created_at | floor)
    and (.task.updated_at | type == "number") and .task.updated_at == (.task.updated_at | floor)
    and .task.updated_at == .task.created_at'
  check_jq "$v create: created_at is now (epoch seconds)" "$BODY" \
    '.task.created_at >= $now - 300 and .task.created_at <= $now + 300' --argjson now "$NOW"
  id=$(jq -r '.id' <<<"$BODY")
  created=$(jq -c '.task' <<<"$BODY")
  check_match "$v create: id is a lower-case v7 UUID (time-ordered)" "$UUID_RE" "$id"
  # REST API events carry the client's path (stage included) in
  # requestContext.path, which the event builder sets to /test/...
  if [ "$v" = v1 ]; then loc="/test/tasks/$id"; else loc="/tasks/$id"; fi
  check_eq "$v create: Location header" "$loc" "$(header_of Location)"
  check_match "$v create: Content-Type" '^application/json' "$(header_of Content-Type)"

  api "$v" POST /tasks -b '{"task":"Ship it","status":"in_progress","priority":"urgent"}'
  expect "$v create with status and priority" 201 \
    '.task.task == "Ship it" and .task.status == "in_progress" and .task.priority == "urgent"'

  api "$v" POST /tasks -b '{"task":"  padded\t\n "}'
  expect "$v create trims the task text" 201 '.task.task == "padded"'

  api "$v" POST /tasks -b '{"task":"x","status":"cancelled","priority":"low"}'
  expect "$v create: cancelled/low accepted" 201 '.task.status == "cancelled" and .task.priority == "low"'
  api "$v" POST /tasks -b '{"task":"x","status":"completed","priority":"high"}'
  expect "$v create: completed/high accepted" 201 '.task.status == "completed" and .task.priority == "high"'

  api "$v" GET "/tasks/$id"
  expect "$v get" 200 '. == $c' --argjson c "$created"
  api "$v" GET "/tasks/${id^^}"
  expect "$v get with the id in upper case" 200 '.id == $id' --arg id "$id"
  api "$v" GET "/tasks/$id" -q unknown=ignored
  expect "$v get ignores unknown query parameters" 200 '.id == $id' --arg id "$id"

  api "$v" GET /tasks -q limit=100
  expect "$v list" 200 '(.items | type == "array") and .count == (.items | length)
    and any(.items[]; .id == $id) and .next == null' --arg id "$id"

  sleep 1.1 # timestamps are whole seconds: let updated_at move
  api "$v" PUT "/tasks/$id" -b '{"status":"in_progress"}'
  expect "$v update status" 200 '(keys == ["message", "task"]) and .message == "Task updated successfully"'
  check_jq "$v update: only status changed" "$BODY" \
    '.task | .status == "in_progress" and .task == $c.task and .priority == $c.priority
      and .id == $c.id and .created_at == $c.created_at' --argjson c "$created"
  check_jq "$v update: updated_at moved on" "$BODY" \
    '.task.updated_at >= .task.created_at and .task.updated_at > $c.updated_at
      and .task.updated_at == (.task.updated_at | floor)' --argjson c "$created"
  task=$(jq -c '.task' <<<"$BODY")

  api "$v" GET "/tasks/$id"
  expect "$v get after update" 200 '. == $t' --argjson t "$task"

  api "$v" PUT "/tasks/$id" -b '{"task":"  Rewritten \t","priority":"urgent"}'
  expect "$v update task and priority" 200 \
    '.task.task == "Rewritten" and .task.priority == "urgent" and .task.status == "in_progress"
      and .task.id == $t.id and .task.created_at == $t.created_at and .task.updated_at >= $t.updated_at' \
    --argjson t "$task"

  api "$v" PUT "/tasks/${id^^}" -b '{"status":"completed"}'
  expect "$v update with the id in upper case" 200 '.task.id == $id and .task.status == "completed"' --arg id "$id"

  api "$v" DELETE "/tasks/$id"
  expect "$v delete" 200 '. == {"message": "Task deleted successfully", "id": $id}' --arg id "$id"

  api "$v" GET "/tasks/$id"
  expect "$v get deleted" 404 '. == {"message": "Task not found"}'
  api "$v" PUT "/tasks/$id" -b '{"status":"new"}'
  expect "$v put deleted" 404 '. == {"message": "Task not found"}'
  api "$v" DELETE "/tasks/$id"
  expect "$v delete deleted" 404 '. == {"message": "Task not found"}'
  api "$v" GET /tasks -q limit=100
  expect "$v list after delete" 200 '(any(.items[]; .id == $id) | not)' --arg id "$id"

  api "$v" GET "/tasks/$ABSENT_ID"
  expect "$v get a never-created id" 404 '. == {"message": "Task not found"}'
  api "$v" GET /tasks/not-a-uuid
  expect "$v get a malformed id" 404 '. == {"message": "Task not found"}'
  api "$v" DELETE /tasks/not-a-uuid
  expect "$v delete a malformed id" 404 '. == {"message": "Task not found"}'
}

# ---- validation: every rule, always a 4xx naming the field -------------------------

validation() {
  local v=$1 id cursor tampered c mid
  section "$v: validation"
  api "$v" POST /tasks -b '{"task":"target of updates"}'
  id=$(jq -r '.id' <<<"$BODY")

  # task
  api "$v" POST /tasks -b '{}'
  expect_error "$v create {}" 400 task "^'task' is required$"
  api "$v" POST /tasks -b '{"status":"new"}'
  expect_error "$v create without task" 400 task "^'task' is required$"
  api "$v" POST /tasks -b '{"task":""}'
  expect_error "$v empty task" 400 task "^'task' must not be empty$"
  api "$v" POST /tasks -b '{"task":" \t\r\n  "}'
  expect_error "$v whitespace task" 400 task "^'task' must not be empty$"
  api "$v" POST /tasks -b "$(json_task "$(repeat_char a 1001)")"
  expect_error "$v 1001-char task" 400 task "^'task' must be at most 1000 characters$"
  api "$v" POST /tasks -b "$(json_task "$(repeat_char a 1000)")"
  expect "$v 1000-char task" 201 '.task.task | length == 1000'
  api "$v" POST /tasks -b "$(json_task "$(repeat_char é 1000)")"
  expect "$v 1000 × é (2000 bytes) is 1000 characters" 201 '.task.task == $t' \
    --arg t "$(repeat_char é 1000)"
  api "$v" POST /tasks -b "$(json_task "$(repeat_char é 1001)")"
  expect_error "$v 1001 × é" 400 task "^'task' must be at most 1000 characters$"
  api "$v" POST /tasks -b "$(json_task "  $(repeat_char b 1000)  ")"
  expect "$v 1000 chars plus spaces around (trimmed first)" 201 '.task.task | length == 1000'
  for bad in 5 true null '["a"]' '{"a":1}' 1.5; do
    api "$v" POST /tasks -b "{\"task\":$bad}"
    expect_error "$v task $bad" 400 task "^'task' must be a string$"
  done
  api "$v" POST /tasks -b '{"task":"\ud800"}'
  expect "$v task with a lone surrogate escape" 400 '.field == "task" or .field == "body"'
  # raw bytes that are not UTF-8 can only come in through a base64 body
  api "$v" POST /tasks -B -b "$(printf '{"task":"caf\xe9"}' | base64 -w0)"
  expect_error "$v task that is not UTF-8" 400 task "^'task' must be valid UTF-8 text$"

  api "$v" POST /tasks -b "$(json_task "$(repeat_char 😀 1000)")"
  expect "$v 1000 × 😀 (4-byte characters)" 201 '.task.task | length == 1000'
  api "$v" POST /tasks -b "$(json_task "$(repeat_char 😀 1001)")"
  expect_error "$v 1001 × 😀" 400 task "^'task' must be at most 1000 characters$"
  api "$v" POST /tasks -b '{"task":"a\u0000b"}'
  expect "$v task with an escaped NUL" 201 '.task.task == "a\u0000b"'
  api "$v" GET "/tasks/$(jq -r '.id' <<<"$BODY")"
  expect "$v task with a NUL reads back whole" 200 '.task == "a\u0000b"'
  api "$v" POST /tasks -b "$(repeat_char '[' 60000)"
  expect_error "$v 60000 nested arrays" 400 body "^Request body is not valid JSON"
  api "$v" POST /tasks -b "{\"task\":\"x\",\"status\":$(repeat_char '[' 2000)}"
  expect_error "$v deeply nested status" 400 body "^Request body is not valid JSON"

  # status / priority
  for bad in '"done"' '"NEW"' '""' '" new"' 1 null '["new"]'; do
    api "$v" POST /tasks -b "{\"task\":\"x\",\"status\":$bad}"
    expect_error "$v status $bad" 400 status \
      "^'status' must be (a string, )?one of: new, in_progress, completed, cancelled$"
  done
  for bad in '"critical"' '"High"' 2 false; do
    api "$v" POST /tasks -b "{\"task\":\"x\",\"priority\":$bad}"
    expect_error "$v priority $bad" 400 priority \
      "^'priority' must be (a string, )?one of: low, medium, high, urgent$"
  done

  # the body itself
  local body
  for body in '{"task":' '{"task":"x",}' "{'task':'x'}" '{"task":"x"} trailing' 'nope'; do
    api "$v" POST /tasks -b "$body"
    expect_error "$v malformed JSON [$body]" 400 body "^Request body is not valid JSON"
  done
  for body in null '"x"' '[]' '[{"task":"x"}]' 3 true; do
    api "$v" POST /tasks -b "$body"
    expect_error "$v body $body" 400 body "^Request body must be a JSON object$"
  done
  api "$v" POST /tasks
  expect_error "$v no body" 400 body "^Request body is required$"
  api "$v" POST /tasks -b ''
  expect_error "$v empty body" 400 body "^Request body is required$"
  api "$v" POST /tasks -b '   '
  expect_error "$v blank body" 400 body "^Request body is required$"
  api "$v" POST /tasks -b '{"task":"x"}' -H 'Content-Type: text/plain'
  expect "$v text/plain body" 415 '.message == "Content-Type must be application/json"'
  api "$v" POST /tasks -b '{"task":"x"}' -H 'Content-Type: Application/JSON; charset=utf-8'
  expect "$v Content-Type with parameters, any case" 201

  # unknown and read-only fields
  api "$v" POST /tasks -b '{"task":"x","priorty":"high"}'
  expect_error "$v unknown field" 400 priorty "^Unknown field 'priorty'$"
  api "$v" PUT "/tasks/$id" -b '{"colour":"red"}'
  expect_error "$v unknown field on update" 400 colour "^Unknown field 'colour'$"
  local f
  for f in id created_at updated_at; do
    api "$v" POST /tasks -b "{\"task\":\"x\",\"$f\":\"1\"}"
    expect_error "$v create with read-only $f" 400 "$f" "^'$f' is read-only$"
    api "$v" PUT "/tasks/$id" -b "{\"status\":\"new\",\"$f\":1}"
    expect_error "$v update with read-only $f" 400 "$f" "^'$f' is read-only$"
  done

  # update bodies
  api "$v" PUT "/tasks/$id" -b '{}'
  expect_error "$v empty update" 400 body "^Request body has no fields to update"
  api "$v" PUT "/tasks/$id" -b '{"task":"   "}'
  expect_error "$v update with blank task" 400 task "^'task' must not be empty$"
  api "$v" PUT "/tasks/$id" -b '{"status":"finished"}'
  expect_error "$v update with bad status" 400 status "^'status' must be one of"
  api "$v" PUT "/tasks/$id" -b '{"priority":null}'
  expect_error "$v update with null priority" 400 priority "^'priority' must be a string"
  api "$v" PUT "/tasks/$id" -b "$(json_task "$(repeat_char z 1001)")"
  expect_error "$v update with 1001 chars" 400 task "^'task' must be at most 1000 characters$"
  api "$v" PUT "/tasks/$id" -b '[]'
  expect_error "$v update with []" 400 body "^Request body must be a JSON object$"
  api "$v" PUT "/tasks/$id" -b 'null'
  expect_error "$v update with null" 400 body "^Request body must be a JSON object$"
  api "$v" PUT "/tasks/$id"
  expect_error "$v update without body" 400 body "^Request body is required$"
  api "$v" GET "/tasks/$id"
  expect "$v rejected updates changed nothing" 200 \
    '.task == "target of updates" and .status == "new" and .priority == "medium"'

  # limit
  local lim
  for lim in 0 -1 101 abc 1.5 '' ' 5' +5 1e2 99999999999; do
    api "$v" GET /tasks -q "limit=$lim"
    expect_error "$v limit [$lim]" 400 limit "^'limit' must be an integer from 1 to 100$"
  done
  api "$v" GET /tasks -q limit=1
  expect "$v limit=1" 200 '.count == 1 and (.items | length) == 1 and (.next | type) == "string"'
  cursor=$(jq -r '.next' <<<"$BODY")
  api "$v" GET /tasks -q limit=100
  expect "$v limit=100" 200 '.count == (.items | length) and .count <= 100'
  api "$v" GET /tasks -q limit=05
  expect "$v limit=05 is 5" 200 '.count == 5'

  # next
  api "$v" GET /tasks -q limit=1 -q "next=$cursor"
  expect "$v a real cursor" 200 '.count == 1'
  for c in garbage '!!!' 'AAAA' "$(repeat_char A 5000)" ''; do
    api "$v" GET /tasks -q "next=$c"
    expect_error "$v cursor [${c:0:20}]" 400 next "^'next' is not a valid pagination token$"
  done
  mid=$(( ${#cursor} / 2 ))
  c=${cursor:$mid:1}
  if [ "$c" = A ]; then c=B; else c=A; fi
  tampered="${cursor:0:$mid}$c${cursor:$((mid + 1))}"
  api "$v" GET /tasks -q "next=$tampered"
  expect_error "$v tampered cursor" 400 next "^'next' is not a valid pagination token$"
  api "$v" GET /tasks -q "next=${cursor}A"
  expect_error "$v cursor with a char appended" 400 next "^'next' is not a valid pagination token$"
  api "$v" GET /tasks -q "next=${cursor:0:$((${#cursor} - 1))}"
  expect_error "$v truncated cursor" 400 next "^'next' is not a valid pagination token$"
  TASKHOST_CURSOR_SECRET=another-secret api "$v" GET /tasks -q "next=$cursor"
  expect_error "$v cursor sealed under another secret" 400 next "^'next' is not a valid pagination token$"
  TASKHOST_STORE="sqlite:$TMP/other.db" api "$v" GET /tasks -q "next=$cursor"
  expect_error "$v cursor from another database" 400 next "^'next' is not a valid pagination token$"
}

# ---- routing, methods, CORS -------------------------------------------------------

routing() {
  local v=$1 id p
  section "$v: routing, methods, CORS"
  api "$v" POST /tasks -b '{"task":"routing"}'
  id=$(jq -r '.id' <<<"$BODY")

  for p in / /nope /taskss /tasks/x/y "/tasks/$id/extra" /TASKS /api/tasks; do
    api "$v" GET "$p"
    expect "$v unknown path $p" 404 '. == {"message": "Not found"}'
  done
  api "$v" POST /nope -b '{"task":"x"}'
  expect "$v POST to an unknown path" 404 '. == {"message": "Not found"}'

  for m in DELETE PUT PATCH HEAD; do
    api "$v" "$m" /tasks
    expect "$v $m /tasks" 405 '.message == "Method not allowed"'
    check_eq "$v $m /tasks: Allow" "GET, POST, OPTIONS" "$(header_of Allow)"
  done
  for m in POST PATCH; do
    api "$v" "$m" "/tasks/$id" -b '{"task":"x"}'
    expect "$v $m /tasks/{id}" 405 '.message == "Method not allowed"'
    check_eq "$v $m /tasks/{id}: Allow" "GET, PUT, DELETE, OPTIONS" "$(header_of Allow)"
  done
  api "$v" get "/tasks/$id"
  expect "$v method names are case-insensitive (get)" 200

  api "$v" OPTIONS /tasks -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' \
    -H 'Access-Control-Request-Headers: content-type'
  check_eq "$v preflight /tasks: exit status" 0 "$RC"
  check_match "$v preflight /tasks: 2xx" '^20[04]$' "$STATUS"
  check_eq "$v preflight /tasks: Access-Control-Allow-Origin" "*" "$(header_of Access-Control-Allow-Origin)"
  check_match "$v preflight /tasks: Access-Control-Allow-Methods has POST" '(^|, ?)POST(,|$)' \
    "$(header_of Access-Control-Allow-Methods)"
  check_match "$v preflight /tasks: Access-Control-Allow-Headers has Content-Type" '(^|, ?)Content-Type(,|$)' \
    "$(header_of Access-Control-Allow-Headers)"
  check_match "$v preflight /tasks: Access-Control-Max-Age" '^[0-9]+$' "$(header_of Access-Control-Max-Age)"
  api "$v" OPTIONS "/tasks/$id" -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: DELETE'
  check_match "$v preflight /tasks/{id}: 2xx" '^20[04]$' "$STATUS"
  check_match "$v preflight /tasks/{id}: methods" 'PUT.*DELETE|DELETE.*PUT' \
    "$(header_of Access-Control-Allow-Methods)"
  check_eq "$v preflight /tasks/{id}: origin" "*" "$(header_of Access-Control-Allow-Origin)"
  api "$v" GET /tasks
  check_eq "$v a browser's script may read Location, ETag, WWW-Authenticate, Retry-After" \
    "Location, ETag, WWW-Authenticate, Retry-After" \
    "$(header_of Access-Control-Expose-Headers)"

  # A configured origin replaces "*" everywhere, and responses vary by Origin.
  TASKHOST_CORS_ORIGIN=https://example.com api "$v" GET /tasks
  expect "$v CORS origin configured: list" 200
  check_eq "$v CORS origin configured: Access-Control-Allow-Origin" "https://example.com" \
    "$(header_of Access-Control-Allow-Origin)"
  check_match "$v CORS origin configured: Vary" 'Origin' "$(header_of Vary)"
  TASKHOST_CORS_ORIGIN=https://example.com api "$v" GET /nope
  check_eq "$v CORS origin configured: on a 404" "https://example.com" "$(header_of Access-Control-Allow-Origin)"
  TASKHOST_CORS_ORIGIN=https://example.com api "$v" OPTIONS /tasks -H 'Origin: https://example.com' \
    -H 'Access-Control-Request-Method: PUT'
  check_eq "$v CORS origin configured: on a preflight" "https://example.com" \
    "$(header_of Access-Control-Allow-Origin)"
  TASKHOST_CORS_ORIGIN=https://example.com api "$v" POST /tasks -b '{"task":5}'
  check_eq "$v CORS origin configured: on a 400" "https://example.com" "$(header_of Access-Control-Allow-Origin)"
  check_eq "$v nosniff on a 400" nosniff "$(header_of X-Content-Type-Options)"

  # stage prefixes and trailing slashes
  api "$v" GET /tasks/
  expect "$v /tasks/ (trailing slash)" 200 '.items | type == "array"'
  api "$v" GET "/tasks/$id/"
  expect "$v /tasks/{id}/ (trailing slash)" 200 '.id == $id' --arg id "$id"
  api "$v" POST /tasks/ -b '{"task":"slash"}'
  expect "$v POST /tasks/" 201 '.task.task == "slash"'
}

stage_prefix() {
  local id
  section "v2: stage prefix in rawPath"
  api v2 POST /prod/tasks -s prod -b '{"task":"staged"}'
  expect "v2 POST /prod/tasks (stage prod)" 201 '.task.task == "staged"'
  id=$(jq -r '.id' <<<"$BODY")
  check_eq "v2 POST /prod/tasks: Location keeps the stage" "/prod/tasks/$id" "$(header_of Location)"
  api v2 GET "/prod/tasks/$id" -s prod
  expect "v2 GET /prod/tasks/{id}" 200 '.id == $id' --arg id "$id"
  api v2 GET /prod/tasks/ -s prod -q limit=100
  expect "v2 GET /prod/tasks/" 200 'any(.items[]; .id == $id)' --arg id "$id"
  api v2 PUT "/prod/tasks/$id/" -s prod -b '{"priority":"high"}'
  expect "v2 PUT /prod/tasks/{id}/" 200 '.task.priority == "high"'
  api v2 DELETE "/prod/tasks/$id" -s prod
  expect "v2 DELETE /prod/tasks/{id}" 200 '.id == $id' --arg id "$id"
  api v2 GET /prod/tasks -s '$default'
  expect "v2 /prod/tasks on the \$default stage is not ours" 404
  api v2 GET /production/tasks -s prod
  expect "v2 /production/tasks with stage prod is not ours" 404

  section "v1: stage in requestContext"
  api v1 POST /tasks -s prod -b '{"task":"v1 staged"}'
  expect "v1 POST /tasks (stage prod)" 201
  id=$(jq -r '.id' <<<"$BODY")
  check_eq "v1 POST /tasks (stage prod): Location from requestContext.path" "/prod/tasks/$id" "$(header_of Location)"
}

# rest_event METHOD PATH STAGE CLIENT_PATH RESOURCE PATH_PARAMS [BODY]: the REST API
# fixture event apigw-request.json with these fields replaced (PATH_PARAMS is
# JSON; CLIENT_PATH is requestContext.path), no query, the body or null.
rest_event() {
  jq -c --arg m "$1" --arg p "$2" --arg s "$3" --arg cp "$4" --arg r "$5" --argjson pp "$6" \
    --arg b "${7-}" '
    .httpMethod = $m | .path = $p | .resource = $r | .pathParameters = $pp
    | .requestContext.httpMethod = $m | .requestContext.stage = $s
    | .requestContext.path = $cp | .requestContext.resourcePath = $r
    | .queryStringParameters = null | .multiValueQueryStringParameters = null
    | .body = (if $b == "" then null else $b end) | .isBase64Encoded = false' \
    "$FIXTURES/apigw-events/apigw-request.json"
}

# rest METHOD PATH ...: rest_event, then run; sets STATUS and BODY as api does.
rest() {
  rest_event "$@" >"$TMP/rest.json" || { fail "rest_event $*" "cannot build the event"; return 1; }
  run_local "$TMP/rest.json"
  STATUS=$(status_of) BODY=$(body_of)
}

v1_paths() {
  local id id2
  section "v1 (REST API): path never carries the stage"
  # execute-api URL /tasks/tasks: stage "tasks", path "/tasks" (issue: was a 404)
  rest POST /tasks tasks /tasks/tasks /tasks null '{"task":"stage tasks"}'
  expect "v1 POST /tasks on stage tasks" 201 '.task.task == "stage tasks"'
  id=$(jq -r '.id' <<<"$BODY")
  check_eq "v1 POST /tasks on stage tasks: Location keeps the stage" "/tasks/tasks/$id" \
    "$(header_of Location)"
  # a page, not necessarily holding $id (on DynamoDB the table is shared and
  # the order is the ids')
  rest GET /tasks tasks /tasks/tasks '/{proxy+}' '{"proxy":"tasks"}'
  expect "v1 GET /tasks on stage tasks lists the tasks" 200 \
    '(.items | type) == "array" and .count == (.items | length) and .count >= 1
     and all(.items[]; (.id | type) == "string")'
  rest GET "/tasks/$id" tasks "/tasks/tasks/$id" '/{proxy+}' "{\"proxy\":\"tasks/$id\"}"
  expect "v1 GET /tasks/{id} on stage tasks" 200 '.id == $id' --arg id "$id"

  section "v1 (REST API): custom domain with a base-path mapping (path carries it)"
  rest POST /v1/tasks prod /v1/tasks /tasks null '{"task":"base path"}'
  expect "v1 POST /v1/tasks (base path v1)" 201 '.task.task == "base path"'
  id2=$(jq -r '.id' <<<"$BODY")
  check_eq "v1 POST /v1/tasks: Location keeps the base path" "/v1/tasks/$id2" "$(header_of Location)"
  rest GET "/v1/tasks/$id2" prod "/v1/tasks/$id2" '/tasks/{id}' "{\"id\":\"$id2\"}"
  expect "v1 GET /v1/tasks/{id}, resource /tasks/{id}" 200 '.id == $id' --arg id "$id2"
  rest PUT "/v1/tasks/$id2" prod "/v1/tasks/$id2" '/{proxy+}' "{\"proxy\":\"tasks/$id2\"}" \
    '{"status":"completed"}'
  expect "v1 PUT /v1/tasks/{id}, resource /{proxy+}" 200 '.task.status == "completed"'
  rest GET /v1/tasks prod /v1/tasks /tasks null
  expect "v1 GET /v1/tasks lists the tasks" 200 \
    '(.items | type) == "array" and .count == (.items | length) and .count >= 2'
  rest DELETE "/v1/tasks/$id2" prod "/v1/tasks/$id2" '/tasks/{id}' "{\"id\":\"$id2\"}"
  expect "v1 DELETE /v1/tasks/{id}" 200 '.id == $id' --arg id "$id2"
}

# ---- body size and base64 -----------------------------------------------------------

bodies() {
  local v=$1 f pad
  section "$v: body size and base64"
  # {"task":"x"} padded with spaces to an exact size
  f="$TMP/body.65536"
  { printf '{"task":"x"'; repeat_char ' ' $((65536 - 12)); printf '}'; } >"$f"
  check_eq "$v 65536-byte body file" 65536 "$(wc -c <"$f")"
  api "$v" POST /tasks -f "$f"
  expect "$v body of exactly TASKHOST_MAX_BODY_BYTES (65536)" 201 '.task.task == "x"'
  f="$TMP/body.65537"
  { printf '{"task":"x"'; repeat_char ' ' $((65537 - 12)); printf '}'; } >"$f"
  api "$v" POST /tasks -f "$f"
  expect "$v body of 65537 bytes" 413 '.message == "Request body too large"'
  check_eq "$v 413 has CORS" "*" "$(header_of Access-Control-Allow-Origin)"
  f="$TMP/body.big"
  { printf '{"task":"'; repeat_char y 200000; printf '"}'; } >"$f"
  api "$v" PUT "/tasks/$ABSENT_ID" -f "$f"
  expect "$v 200 KB PUT" 413

  TASKHOST_MAX_BODY_BYTES=2048 api "$v" POST /tasks -b "$(json_task "$(repeat_char é 1000)")"
  expect "$v TASKHOST_MAX_BODY_BYTES=2048, a 2011-byte body" 201
  TASKHOST_MAX_BODY_BYTES=2048 api "$v" POST /tasks -b "$(json_task "$(repeat_char é 1020)")"
  expect "$v TASKHOST_MAX_BODY_BYTES=2048, a 2051-byte body" 413

  api "$v" POST /tasks -B -b 'not base64!'
  expect "$v declared base64, not base64" 400 '.message | test("base64")'
  api "$v" POST /tasks -B -b '{"task":"plain json"}'
  expect "$v declared base64, plain JSON" 400 '.message | test("base64")'
  api "$v" POST /tasks -B -b "$(printf '%s' '{"task":"from base64 é"}' | base64 -w0)"
  expect "$v base64 create" 201 '.task.task == "from base64 é"'
  api "$v" POST /tasks -B -b "$(printf '%s' '{"task":"no padding"}' | base64 -w0 | tr -d '=')"
  expect "$v base64 without padding" 201 '.task.task == "no padding"'
  api "$v" POST /tasks -B -b "$(printf '%s' '{"task":5}' | base64 -w0)"
  expect_error "$v base64 body still validated" 400 task "^'task' must be a string$"
  # the limit applies to the decoded body
  { printf '{"task":"x"'; repeat_char ' ' $((65537 - 12)); printf '}'; } | base64 -w0 >"$TMP/b64.big"
  api "$v" POST /tasks -B -f "$TMP/b64.big"
  expect "$v base64 body decoding to 65537 bytes" 413
}

# ---- run both payload versions --------------------------------------------------------

response_checks() { # every proxy response this process saw
  local n bad
  section "$1: headers and shape of every response"
  n=$(wc -l <"$RESP_LOG")
  bad=$(jq -c 'select((.headers["Access-Control-Allow-Origin"] // "") == ""
    or .headers["X-Content-Type-Options"] != "nosniff")' "$RESP_LOG" | wc -l)
  check_eq "$1: all $n responses carry Access-Control-Allow-Origin and nosniff" 0 "$bad"
  bad=$(jq -c 'select(.statusCode >= 500)' "$RESP_LOG" | wc -l)
  check_eq "$1: none of the $n responses is a 5xx" 0 "$bad"
  bad=$(jq -c 'select((.statusCode | type) != "number" or (.body | type) != "string"
    or (.headers | type) != "object" or .isBase64Encoded != false)' "$RESP_LOG" | wc -l)
  check_eq "$1: all $n responses are well-formed proxy responses" 0 "$bad"
  bad=$(jq -c 'select(.body != "" and (.body | fromjson? | type) != "object")' "$RESP_LOG" | wc -l)
  check_eq "$1: every non-empty body is a JSON object" 0 "$bad"
}

# The scenario for one payload version runs in a child process of its own
# (own temp dir and database), both in parallel with the rest of this file.
if [ "${1:-}" = --payload ]; then
  v=$2
  crud "$v"
  validation "$v"
  routing "$v"
  bodies "$v"
  if [ "$v" = v2 ]; then stage_prefix; else v1_paths; fi
  response_checks "$v"
  finish
fi
kids=()
for v in v1 v2; do
  bash "${BASH_SOURCE[0]}" --payload "$v" >"$TMP/payload.$v.log" 2>&1 &
  kids+=($!)
done

# ---- fixtures ---------------------------------------------------------------------------

section "fixture events"
nfix=0
for f in "$FIXTURES"/apigw-events/*.json; do
  name=$(basename "$f")
  nfix=$((nfix + 1))
  run_local "$f"
  check_eq "fixture $name: exit 0" 0 "$RC"
  check_jq "fixture $name: proxy response" "$OUT" \
    '(.statusCode | type) == "number" and (.headers | type) == "object"
     and (.headers | all(.[]; type == "string")) and (.body | type) == "string"
     and (.body | fromjson | .message | type) == "string"'
  case $name in
    apiGatewayProxyEventAnotherPath.json) want=400 ;; # isBase64Encoded, body not base64
    *) want=404 ;; # none of the fixtures' paths is /tasks
  esac
  check_eq "fixture $name: status" "$want" "$(status_of)"
  check_eq "fixture $name: nosniff" nosniff "$(header_of X-Content-Type-Options)"
  check_eq "fixture $name: one line on stdout" 1 "$(wc -l <"$TMP/out")"
done
check "found the fixture events" test "$nfix" -ge 10

# ---- inputs that are not API Gateway events --------------------------------------------

section "not API Gateway events → exit 2"
not_event() {
  local name=$1 file="$TMP/not-event.json"
  printf '%s' "$2" >"$file"
  run_local "$file"
  check_eq "$name: exit 2" 2 "$RC"
  check_eq "$name: nothing on stdout" "" "$OUT"
  check_eq "$name: one line on stderr" 1 "$(wc -l <"$TMP/err")"
  check_match "$name: the line says why" '^taskhost: .+' "$ERR"
}
not_event "{}" '{}'
not_event "[]" '[]'
not_event '"x"' '"x"'
not_event "3" '3'
not_event "null" 'null'
not_event "not JSON" 'this is not JSON'
not_event "truncated JSON" '{"httpMethod":"GET","path":"/tasks"'
not_event "empty file" ''
not_event "S3 event" '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}'
not_event "SQS event" '{"Records":[{"messageId":"1","body":"hi","eventSource":"aws:sqs"}]}'
not_event "unknown payload version" '{"version":"3.0","rawPath":"/tasks","requestContext":{"http":{"method":"GET"}}}'
not_event "v1 without path" '{"httpMethod":"GET"}'
not_event "v2 without method" '{"version":"2.0","rawPath":"/tasks","requestContext":{"http":{}}}'
run_local "$TMP/does-not-exist.json"
check_eq "missing event file: exit 2" 2 "$RC"
check_eq "missing event file: one line" 1 "$(wc -l <"$TMP/err")"
"$TASKHOST_BIN" --local >"$TMP/out" 2>"$TMP/err"
check_eq "--local without a file: exit 2" 2 "$?"
"$TASKHOST_BIN" --bogus >"$TMP/out" 2>"$TMP/err"
check_eq "unknown option: exit 2" 2 "$?"

section "--local - reads stdin"
event v2 POST /tasks -b '{"task":"from stdin"}' >"$TMP/stdin.json"
"$TASKHOST_BIN" --local - <"$TMP/stdin.json" >"$TMP/out" 2>"$TMP/err"
RC=$?
OUT=$(cat "$TMP/out")
check_eq "stdin: exit 0" 0 "$RC"
check_eq "stdin: 201" 201 "$(status_of)"
check_jq "stdin: created" "$(body_of)" '.task.task == "from stdin"'
printf '{"Records":[]}' | "$TASKHOST_BIN" --local - >"$TMP/out" 2>"$TMP/err"
check_eq "stdin, not an event: exit 2" 2 "$?"
check_eq "stdin, not an event: nothing on stdout" 0 "$(wc -c <"$TMP/out")"
check_match "stdin, not an event: message" '^taskhost: .*stdin' "$(cat "$TMP/err")"

# ---- start-up failures -------------------------------------------------------------------

section "broken route scripts → exit 1, one line naming file and line"
event v1 GET /tasks >"$TMP/list.json"
broken_script() { # broken_script NAME FILE LINE TEXT
  local name=$1 file=$2 line=$3 text=$4 dir="$TMP/routes.$RANDOM"
  cp -R "$ROUTES_DIR" "$dir"
  awk -v n="$line" -v t="$text" 'NR == n { print t } { print }' "$ROUTES_DIR/$file" >"$dir/$file"
  TASKHOST_ROUTES=$dir run_local "$TMP/list.json"
  check_eq "$name: exit 1" 1 "$RC"
  check_eq "$name: nothing on stdout" "" "$OUT"
  check_eq "$name: one line on stderr" 1 "$(wc -l <"$TMP/err")"
  check_match "$name: names $file:$line" "$file:$line:" "$ERR"
  TASKHOST_ROUTES=$dir "$TASKHOST_BIN" --check >"$TMP/out" 2>"$TMP/err"
  check_eq "$name: --check exit 1" 1 "$?"
  check_match "$name: --check names $file:$line" "$file:$line:" "$(cat "$TMP/err")"
}
broken_script "syntax error in routes.lua" routes.lua 30 'local broken = = 1'
broken_script "syntax error in validate.lua" validate.lua 12 'function ('
broken_script "error raised while loading routes.lua" routes.lua 40 'error("boom")'
dir="$TMP/routes.empty"
mkdir -p "$dir"
TASKHOST_ROUTES=$dir run_local "$TMP/list.json"
check_eq "routes folder without routes.lua: exit 1" 1 "$RC"
check_eq "routes folder without routes.lua: one line" 1 "$(wc -l <"$TMP/err")"
"$TASKHOST_BIN" --check >"$TMP/out" 2>"$TMP/err"
check_eq "--check with the real scripts: exit 0" 0 "$?"

section "invalid configuration → exit 1, one line naming the variable"
bad_config() { # bad_config VAR VALUE
  env "$1=$2" "$TASKHOST_BIN" --local "$TMP/list.json" >"$TMP/out" 2>"$TMP/err"
  RC=$?
  check_eq "$1=$2: exit 1" 1 "$RC"
  check_eq "$1=$2: nothing on stdout" 0 "$(wc -c <"$TMP/out")"
  check_eq "$1=$2: one line on stderr" 1 "$(wc -l <"$TMP/err")"
  check_match "$1=$2: names the variable" "$1" "$(cat "$TMP/err")"
}
bad_config TASKHOST_LUA_MEMORY_MB abc
bad_config TASKHOST_LUA_MEMORY_MB 0
bad_config TASKHOST_STORE foo
bad_config TASKHOST_STORE sqlite:
bad_config TASKHOST_MAX_BODY_BYTES 10
bad_config TASKHOST_MAX_BODY_BYTES 64k
bad_config TASKHOST_WORKERS 0
bad_config TASKHOST_LUA_TIMEOUT_MS 5s
bad_config TASKHOST_LUA_INSTRUCTIONS -1
bad_config TASKHOST_LOG_LEVEL loud
bad_config AWS_LAMBDA_LOG_FORMAT xml
# A temporary (ASIA...) access key without its session token would fail every
# store call (403): refused at start instead.
env TASKHOST_STORE=dynamodb TABLE_NAME=Tasks AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=ASIAEXAMPLETEMPKEY \
  AWS_SECRET_ACCESS_KEY=example-secret AWS_SESSION_TOKEN= AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:9 \
  "$TASKHOST_BIN" --local "$TMP/list.json" >"$TMP/out" 2>"$TMP/err"
check_eq "ASIA key without AWS_SESSION_TOKEN: exit 1" 1 "$?"
check_eq "ASIA key without AWS_SESSION_TOKEN: nothing on stdout" 0 "$(wc -c <"$TMP/out")"
check_eq "ASIA key without AWS_SESSION_TOKEN: one line on stderr" 1 "$(wc -l <"$TMP/err")"
check_match "ASIA key without AWS_SESSION_TOKEN: names AWS_SESSION_TOKEN" AWS_SESSION_TOKEN "$(cat "$TMP/err")"
check "ASIA key without AWS_SESSION_TOKEN: the key is not shown" bash -c "! grep -q ASIAEXAMPLE '$TMP/err'"
env TASKHOST_STORE="sqlite:$TMP/no/such/dir/x.db" "$TASKHOST_BIN" --local "$TMP/list.json" \
  >"$TMP/out" 2>"$TMP/err"
check_eq "a store that cannot open: exit 1" 1 "$?"
check_eq "a store that cannot open: one line" 1 "$(wc -l <"$TMP/err")"

# ---- logs -----------------------------------------------------------------------------------

section "logs: JSON lines on stderr"
api v2 POST /prod/tasks -s prod -b '{"task":"logged"}'
check_eq "log run: 201" 201 "$STATUS"
check_eq "log run: stdout is one line" 1 "$(wc -l <"$TMP/out")"
check "log run: every stderr line is a JSON object" \
  jq -e -s 'length > 0 and all(.[]; type == "object" and (.timestamp | type) == "string"
    and (.level | type) == "string")' "$TMP/err"
req=$(jq -c 'select(.message == "request")' "$TMP/err" 2>/dev/null)
check_eq "log run: one request line" 1 "$(grep -c . <<<"$req")"
check_jq "log run: request line fields" "$req" '
  (.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$"))
  and .level == "INFO" and (.requestId | type == "string" and length > 0)
  and .method == "POST" and .path == "/tasks" and .status == 201
  and (.durationMs | type == "number" and . >= 0)'
api v1 GET "/tasks/$ABSENT_ID"
req=$(jq -c 'select(.message == "request")' "$TMP/err" 2>/dev/null)
check_jq "log run 404: request line" "$req" \
  '.status == 404 and .method == "GET" and .path == $p and (.level | IN("INFO", "WARN"))' \
  --arg p "/tasks/$ABSENT_ID"
rid1=$(jq -r 'select(.message == "request") | .requestId' "$TMP/err")
api v1 GET "/tasks/$ABSENT_ID"
rid2=$(jq -r 'select(.message == "request") | .requestId' "$TMP/err")
check "log: request ids differ between requests" test "$rid1" != "$rid2"
AWS_LAMBDA_LOG_FORMAT=Text api v1 GET /tasks
check_eq "text logs: still 200" 200 "$STATUS"
check "text logs: not JSON" bash -c '! jq -e . "$1" >/dev/null 2>&1' _ "$TMP/err"
# Log injection: a path with a newline and an escape sequence must stay inside its own line.
AWS_LAMBDA_LOG_FORMAT=Text api v2 GET $'/tasks/abc\n2026-01-01T00:00:00.000Z INFO forged\e[31m'
check_eq "text logs, injected path: 404" 404 "$STATUS"
check_eq "text logs, injected path: no forged line" 0 "$(grep -c '^2026-01-01T00:00:00.000Z INFO forged' "$TMP/err")"
check "text logs, injected path: newline written as \\x0a" grep -qF 'abc\x0a2026-01-01T00:00:00.000Z INFO forged\x1b[31m' "$TMP/err"
AWS_LAMBDA_LOG_FORMAT=JSON api v2 GET $'/tasks/abc\n2026-01-01T00:00:00.000Z INFO forged'
check "json logs, injected path: every line is JSON" jq -e . "$TMP/err"
check_eq "json logs, injected path: the path survives, escaped" $'/tasks/abc\n2026-01-01T00:00:00.000Z INFO forged' \
  "$(jq -r 'select(.message == "request") | .path' "$TMP/err")"
TASKHOST_LOG_LEVEL=ERROR api v1 GET /tasks
check_eq "log level ERROR: nothing logged for a 200" 0 "$(wc -c <"$TMP/err")"

response_checks "fixtures, stdin and logs"

# ---- collect the two payload-version runs ---------------------------------------------------

i=0
for v in v1 v2; do
  wait "${kids[$i]}"
  rc=$?
  i=$((i + 1))
  echo "== payload $v (ran in parallel; its output follows)"
  cat "$TMP/payload.$v.log"
  summary=$(tail -n 1 "$TMP/payload.$v.log")
  if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    PASSED=$((PASSED + BASH_REMATCH[1]))
    FAILED=$((FAILED + BASH_REMATCH[2]))
    check_eq "payload $v run: exit status matches its failures" \
      "$([ "${BASH_REMATCH[2]}" -eq 0 ] && echo 0 || echo 1)" "$rc"
  else
    fail "payload $v run ended with a summary line" "exit $rc, last line: $summary"
  fi
done

finish
