#!/usr/bin/env bash
# Isolation between users, enforced by the host, in the three modes: --local (payload 2.0
# and 1.0 events with API Gateway's claims), the Lambda loop, and --serve (bearer tokens
# from tests/e2e/tokens.py, verified against a JWKS file). On SQLite, and on DynamoDB when
# run under tests/integration/with_dynalite.sh with E2E_STORE=dynamodb.
# In each mode, with TASKHOST_AUTH=jwt, users A and B:
#   * B cannot GET, PUT or DELETE A's task: 404 {"message":"Task not found"}, and A's task
#     is unchanged afterwards;
#   * each lists only their own tasks, newest first; A's cursor replayed by B is a 400;
#   * the same user through both payload versions sees the same tasks;
#   * with TASKHOST_AUTH=none the list is the public one: neither A's nor B's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID
JSON=(-H 'Content-Type: application/json')

# The per-mode caller: call USER METHOD PATH [BODY] sets STATUS and BODY. USER is A or B
# (or "public": auth off).
RUN=""
claims_of() { jq -n -c --arg s "$1" '{sub: $s, token_use: "access", "cognito:groups": "[users]"}'; }
SUB_A="a-$RANDOM-7a1c2f3e-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
SUB_B="b-$RANDOM-7a1c2f3e-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
sub_of() { if [ "$1" = A ]; then echo "$SUB_A"; else echo "$SUB_B"; fi; }

# event_args PATH [BODY]: sets EPATH and EARGS (event options: -q per query parameter, -b).
event_args() {
  local q=""
  EPATH=${1%%\?*} EARGS=()
  [ "$EPATH" = "$1" ] || q=${1#*\?}
  local IFS='&' kv
  for kv in $q; do EARGS+=(-q "$kv"); done
  [ -z "${2:-}" ] || EARGS+=(-b "$2")
}
call_local() { # v2 for A, v1 for B unless VERSION says otherwise
  local user=$1 method=$2 body=${4:-} v=${VERSION:-}
  [ -n "$v" ] || { [ "$user" = A ] && v=v2 || v=v1; }
  event_args "$3" "$body"
  local path=$EPATH args=("${EARGS[@]}")
  if [ "$user" = public ]; then
    TASKHOST_AUTH=none api "$v" "$method" "$path" "${args[@]}"
  else
    api "$v" "$method" "$path" -c "$(claims_of "$(sub_of "$user")")" "${args[@]}"
  fi
}
call_lambda() {
  local user=$1 method=$2 body=${4:-} v=${VERSION:-}
  [ -n "$v" ] || { [ "$user" = A ] && v=v2 || v=v1; }
  event_args "$3" "$body"
  local path=$EPATH args=("${EARGS[@]}")
  lambda_api "$v" "$method" "$path" -c "$(claims_of "$(sub_of "$user")")" "${args[@]}"
}
call_serve() {
  local user=$1 method=$2 path=$3 body=${4:-} token
  token=$(jq -r --arg u "$user" '.users[$u]' "$TMP/tokens.json")
  if [ -n "$body" ]; then
    http "$method" "$path" -H "Authorization: Bearer $token" "${JSON[@]}" --data-binary "$body"
  else
    http "$method" "$path" -H "Authorization: Bearer $token"
  fi
}
call() { "$RUN" "$@"; }

# scenario MODE: the whole isolation scenario through the caller $RUN.
scenario() {
  local mode=$1 a1 a2 a3 b1 cursor
  section "$mode: two users"
  call A POST /tasks '{"task":"A one"}' && a1=$(jq -r '.id' <<<"$BODY")
  check_eq "$mode: A creates" 201 "$STATUS"
  call A POST /tasks '{"task":"A two"}' && a2=$(jq -r '.id' <<<"$BODY")
  call A POST /tasks '{"task":"A three"}' && a3=$(jq -r '.id' <<<"$BODY")
  call B POST /tasks '{"task":"B one"}' && b1=$(jq -r '.id' <<<"$BODY")
  check_eq "$mode: B creates" 201 "$STATUS"

  call B GET "/tasks/$a1"
  check_eq "$mode: B GETs A's task: 404" 404 "$STATUS"
  check_jq "$mode: B GETs A's task: Task not found" "$BODY" '. == {"message": "Task not found"}'
  call B PUT "/tasks/$a1" '{"status":"cancelled","task":"B was here"}'
  check_eq "$mode: B PUTs A's task: 404" 404 "$STATUS"
  check_jq "$mode: B PUTs A's task: Task not found" "$BODY" '. == {"message": "Task not found"}'
  call B DELETE "/tasks/$a1"
  check_eq "$mode: B DELETEs A's task: 404" 404 "$STATUS"
  check_jq "$mode: B DELETEs A's task: Task not found" "$BODY" '. == {"message": "Task not found"}'
  call A GET "/tasks/$a1"
  check_eq "$mode: A's task is still there" 200 "$STATUS"
  check_jq "$mode: A's task unchanged" "$BODY" '.task == "A one" and .status == "new"'

  call B GET /tasks
  check_jq "$mode: B lists only B's" "$BODY" '.items | map(.id) == [$b]' --arg b "$b1"
  call A GET /tasks
  check_jq "$mode: A lists only A's, newest first" "$BODY" \
    '(.items | map(.id)) == [$a3, $a2, $a1] and .count == 3' --arg a1 "$a1" --arg a2 "$a2" --arg a3 "$a3"
  VERSION=v1 call A GET /tasks
  check_jq "$mode: A through the other payload version: the same list" "$BODY" \
    '(.items | map(.id)) == [$a3, $a2, $a1]' --arg a1 "$a1" --arg a2 "$a2" --arg a3 "$a3"
  call A GET "/tasks?limit=1"
  cursor=$(jq -r '.next' <<<"$BODY")
  check_match "$mode: A's first page has a cursor" '^[A-Za-z0-9_-]+' "$cursor"
  call B GET "/tasks?limit=1&next=$cursor"
  check_eq "$mode: A's cursor replayed by B: 400" 400 "$STATUS"
  check_jq "$mode: A's cursor replayed by B: names next" "$BODY" '.field == "next"'
  call A GET "/tasks?limit=1&next=$cursor"
  check_jq "$mode: A's cursor works for A" "$BODY" '.items | map(.id) == [$a2]' --arg a2 "$a2"
  call B DELETE "/tasks/$b1"
  check_eq "$mode: B deletes B's own" 200 "$STATUS"
  call A GET /tasks
  check_eq "$mode: A still has 3" 3 "$(jq -r '.count' <<<"$BODY")"
  A_IDS="$a1 $a2 $a3"
}

export TASKHOST_AUTH=jwt

RUN=call_local
scenario "--local"
call public GET /tasks
check_jq "--local: auth off lists the public partition: none of A's or B's" "$BODY" '.count == 0'
TASKHOST_AUTH=none api v2 GET "/tasks/${A_IDS%% *}"
check_eq "--local: auth off cannot read A's task" 404 "$STATUS"

SUB_A="la-$SUB_A" SUB_B="lb-$SUB_B"
rapi_start --dynamic || { fail "test server starts"; finish; }
rt_start
RUN=call_lambda
scenario "lambda"
rt_term 10
check_eq "lambda: exit 0" 0 "$RT_RC"
rapi_stop

PY=/usr/bin/python3
if "$PY" -c 'import jwt, cryptography' 2>/dev/null &&
  "$PY" "$SOURCE_DIR/tests/e2e/tokens.py" "$TMP" https://issuer.example/isolation e2e-client; then
  export TASKHOST_JWKS="$TMP/jwks.json" TASKHOST_JWT_ISSUER=https://issuer.example/isolation \
    TASKHOST_JWT_AUDIENCE=e2e-client
  # tokens.py's users are alice and bob: A and B here.
  jq '.users = {A: .users.alice, B: .users.bob}' "$TMP/tokens.json" >"$TMP/t.json" &&
    mv "$TMP/t.json" "$TMP/tokens.json"
  serve_start || { fail "--serve starts"; finish; }
  RUN=call_serve
  scenario "--serve"
  serve_stop
else
  fail "--serve: python3-jwt and python3-cryptography make the tokens (scripts/deps.sh --test)"
fi
finish
