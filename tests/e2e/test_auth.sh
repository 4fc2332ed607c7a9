#!/usr/bin/env bash
# Accounts behind API Gateway (runtime/auth.h): TASKHOST_AUTH=jwt in --local and in the
# Lambda loop, where API Gateway has verified the token and passes its claims (payload 2.0:
# requestContext.authorizer.jwt.claims; 1.0: requestContext.authorizer.claims).
#   * no claims, claims without a usable sub → 401 {"message":"Unauthorized"} with
#     WWW-Authenticate: Bearer (error="invalid_token" when a token came along), the CORS
#     headers and nosniff; no route runs, nothing is stored; the reason is logged with the
#     request id, the token never;
#   * a sub → the route runs and sees req.auth = {sub, claims}; TASKHOST_AUTH=none → nil;
#   * a CORS preflight needs no token;
#   * the README's rule on a claim (only the group "admins" may delete), applied to a copy
#     of lua/, with the groups as each payload version passes them;
#   * --serve with jwt refuses to start without its verifier settings, naming them.
# The owner's isolation is tests/e2e/test_isolation.sh; --serve's token checks
# tests/e2e/test_serve_auth.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID

SUB_A=4f9c2d1e-8a3b-4c5d-9e6f-0a1b2c3d4e5f
TOKEN=eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldC10b2tlbg
# What an HTTP API JWT authorizer passes (every value a string, lists as "[a b]") and what a
# REST API Cognito authorizer passes (strings; dates for exp and iat).
CLAIMS_V2=$(jq -n -c --arg s "$SUB_A" '{sub: $s, "cognito:groups": "[admins users]",
  token_use: "access", client_id: "3n4b5urk1ft4fl3mg5e62d9ado", exp: "1893456000",
  iss: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"}')
CLAIMS_V1=$(jq -n -c --arg s "$SUB_A" '{sub: $s, "cognito:groups": "admins",
  "cognito:username": $s, aud: "3n4b5urk1ft4fl3mg5e62d9ado", token_use: "id",
  email_verified: "true", exp: "Tue Apr 04 18:39:39 UTC 2023"}')

# A route that answers with what it was given (and logs that it ran).
PROBE="$TMP/probe"
mkdir -p "$PROBE"
cat >"$PROBE/routes.lua" <<'LUA'
local json = require("json")
local log = require("log")
return { handle = function(req)
  log.info("probe ran")
  local auth = req.auth
  if auth == nil then auth = json.null end
  return { status = 200, body = { auth = auth, method = req.method } }
end }
LUA

# unauthorized NAME WWW-AUTHENTICATE: the last proxy response ($OUT) is our 401.
unauthorized() {
  local name=$1 www=$2
  expect "$name" 401 '. == {"message": "Unauthorized"}'
  check_eq "$name: WWW-Authenticate" "$www" "$(header_of WWW-Authenticate)"
  check_eq "$name: Access-Control-Allow-Origin" "${CORS:-*}" "$(header_of Access-Control-Allow-Origin)"
  check_match "$name: Access-Control-Allow-Headers has Authorization" 'Authorization' \
    "$(header_of Access-Control-Allow-Headers)"
  check_match "$name: Access-Control-Allow-Methods" 'DELETE' "$(header_of Access-Control-Allow-Methods)"
  check_eq "$name: nosniff" nosniff "$(header_of X-Content-Type-Options)"
  check_match "$name: JSON" '^application/json' "$(header_of Content-Type)"
}
NO_TOKEN=Bearer
BAD_TOKEN='Bearer error="invalid_token"'

# ---- --local --------------------------------------------------------------------------

section "--local, TASKHOST_AUTH=jwt: no claims → 401"
export TASKHOST_AUTH=jwt
for v in v2 v1; do
  api "$v" GET /tasks
  unauthorized "$v GET without claims" "$NO_TOKEN"
  api "$v" POST /tasks -b '{"task":"should not be stored"}'
  unauthorized "$v POST without claims" "$NO_TOKEN"
  api "$v" DELETE "/tasks/$ABSENT_ID"
  unauthorized "$v DELETE without claims" "$NO_TOKEN"
  api "$v" GET /nowhere
  unauthorized "$v unknown path without claims: 401, not 404" "$NO_TOKEN"
  api "$v" GET /tasks -H "Authorization: Bearer $TOKEN"
  unauthorized "$v a token but no claims" "$BAD_TOKEN"
  check "$v a token but no claims: the token is not logged" bash -c '! grep -q -- "$1" <<<"$2"' _ \
    "${TOKEN:0:40}" "$ERR"
  check_jq "$v a token but no claims: the reason logged with the request id" \
    "$(jq -s -c . <<<"$ERR")" '(map(select(.message == "unauthorized")) | length == 1)
      and (map(select(.message == "unauthorized"))[0] as $u
        | $u.reason == "the event has no authorizer claims" and $u.tokenSent == 1
        and any(.[]; .message == "request" and .status == 401 and .requestId == $u.requestId))'
  api "$v" GET /tasks -c '{"sub": ""}'
  unauthorized "$v sub empty" "$NO_TOKEN"
  api "$v" GET /tasks -c '{"sub": 12345}'
  unauthorized "$v sub a number" "$NO_TOKEN"
  api "$v" GET /tasks -c '{"username": "alice", "cognito:groups": "[admins]"}'
  unauthorized "$v claims without sub" "$NO_TOKEN"
  api "$v" GET /tasks -c "$(jq -n -c '{sub: ("s" * 1025)}')"
  unauthorized "$v sub over 1024 bytes" "$NO_TOKEN"
  api "$v" OPTIONS /tasks -H 'Access-Control-Request-Method: POST' -H 'Origin: https://app.example.com'
  expect "$v preflight without claims" 204
  check_match "$v preflight: Allow" 'POST' "$(header_of Allow)"
  api "$v" OPTIONS /tasks
  unauthorized "$v OPTIONS that is no preflight" "$NO_TOKEN"
done
CORS=https://app.example.com
TASKHOST_CORS_ORIGIN=$CORS api v2 GET /tasks
unauthorized "a configured CORS origin on the 401" "$NO_TOKEN"
check_eq "a configured CORS origin on the 401: Vary" Origin "$(header_of Vary)"
unset CORS

section "--local, TASKHOST_AUTH=jwt: the fixture events as AWS projects ship them"
# Their claims ("claim1", "claim2", or null) have no sub: each one is a 401.
for f in apigw-v2-request-jwt-authorizer apiGatewayProxyV2Event apigw_v2_proxy_request \
  apiGatewayProxyV2LambdaAuthorizerEvent apiGatewayProxyEvent apigw-request apigw-v2-request-iam; do
  run_local "$FIXTURES/apigw-events/$f.json"
  STATUS=$(status_of) BODY=$(body_of)
  unauthorized "fixture $f" "$NO_TOKEN"
done

section "--local, TASKHOST_AUTH=jwt: a sub → the route runs"
api v2 POST /tasks -c "$CLAIMS_V2" -b '{"task":"mine"}'
expect "v2 with a sub: create" 201 '.task.task == "mine"'
ID=$(jq -r '.id' <<<"$BODY")
api v2 GET "/tasks/$ID" -c "$CLAIMS_V2"
expect "v2 with a sub: read" 200 '.id == $id' --arg id "$ID"
api v1 GET "/tasks/$ID" -c "$CLAIMS_V1"
expect "v1 (Cognito) with the same sub: read" 200 '.id == $id' --arg id "$ID"
api v1 PUT "/tasks/$ID" -c "$CLAIMS_V1" -b '{"status":"completed"}'
expect "v1 (Cognito) with the same sub: update" 200 '.task.status == "completed"'
api v2 GET /tasks -c "$CLAIMS_V2"
expect "the sub's list: the one task" 200 '.count == 1 and .items[0].id == $id' --arg id "$ID"
TASKHOST_AUTH=none api v2 GET /tasks
expect "the 401s stored nothing (auth off: the public list is empty)" 200 '.count == 0'

section "--local: req.auth"
export TASKHOST_ROUTES=$PROBE
api v2 GET /x -c "$CLAIMS_V2"
expect "v2: req.auth is {sub, claims as API Gateway passed them}" 200 \
  '.auth == {sub: $s, claims: $c}' --arg s "$SUB_A" --argjson c "$CLAIMS_V2"
api v1 GET /x -c "$CLAIMS_V1"
expect "v1: req.auth is {sub, claims}" 200 '.auth == {sub: $s, claims: $c}' --arg s "$SUB_A" \
  --argjson c "$CLAIMS_V1"
api v2 OPTIONS /x -H 'Access-Control-Request-Method: GET'
expect "preflight: req.auth is nil" 200 '.auth == null and .method == "OPTIONS"'
api v2 GET /x
check "a 401: the route did not run" bash -c '! grep -q "probe ran" <<<"$1"' _ "$ERR"
check_eq "a 401: status" 401 "$STATUS"
TASKHOST_AUTH=none api v2 GET /x -c "$CLAIMS_V2"
expect "TASKHOST_AUTH=none: req.auth is nil, whatever the claims" 200 '.auth == null'
TASKHOST_AUTH=none api v1 GET /x
expect "TASKHOST_AUTH=none: no claims needed" 200 '.auth == null'
export TASKHOST_ROUTES=$ROUTES_DIR

section "the README's rule on a claim: only the group 'admins' may delete"
ADMINS="$TMP/routes-admins"
cp -r "$ROUTES_DIR" "$ADMINS"
python3 - "$SOURCE_DIR/README.md" "$ADMINS/routes.lua" <<'PY' || fail "apply the README's example"
import re, sys
readme, routes = open(sys.argv[1]).read(), open(sys.argv[2]).read()
def block(marker):
    m = re.search(r"<!-- example: " + re.escape(marker) + r"[^>]*-->\n```lua\n(.*?)```", readme, re.S)
    if not m:
        sys.exit("README: no block '%s'" % marker)
    return m.group(1)
head = "local function delete_task(req, raw_id)\n"
if routes.count(head) != 1:
    sys.exit("routes.lua: delete_task not found once")
routes = routes.replace(head, block("in_group") + "\n" + head + block("delete_task guard"))
open(sys.argv[2], "w").write(routes)
PY
export TASKHOST_ROUTES=$ADMINS
delete_as() { # delete_as NAME STATUS v1|v2 CLAIMS
  api "$3" POST /tasks -c "$CLAIMS_V2" -b '{"task":"to delete"}'
  local id
  id=$(jq -r '.id' <<<"$BODY")
  api "$3" DELETE "/tasks/$id" -c "$4"
  expect "$1" "$2"
}
delete_as "v2, groups \"[admins users]\": deletes" 200 v2 "$CLAIMS_V2"
delete_as "v2, groups \"[users admins]\": deletes" 200 v2 \
  "$(jq -c '.["cognito:groups"] = "[users admins]"' <<<"$CLAIMS_V2")"
delete_as "v2, groups \"[users]\": 403" 403 v2 "$(jq -c '.["cognito:groups"] = "[users]"' <<<"$CLAIMS_V2")"
delete_as "v2, groups \"[administrators]\": 403" 403 v2 \
  "$(jq -c '.["cognito:groups"] = "[administrators]"' <<<"$CLAIMS_V2")"
delete_as "v2, no groups: 403" 403 v2 "$(jq -c 'del(.["cognito:groups"])' <<<"$CLAIMS_V2")"
delete_as "v1, groups \"admins\": deletes" 200 v1 "$CLAIMS_V1"
delete_as "v1, groups \"staff,admins\": deletes" 200 v1 \
  "$(jq -c '.["cognito:groups"] = "staff,admins"' <<<"$CLAIMS_V1")"
delete_as "v1, groups \"staff\": 403" 403 v1 "$(jq -c '.["cognito:groups"] = "staff"' <<<"$CLAIMS_V1")"
delete_as "a list (as a token holds it): deletes" 200 v2 \
  "$(jq -c '.["cognito:groups"] = ["users", "admins"]' <<<"$CLAIMS_V2")"
api v2 DELETE "/tasks/$ABSENT_ID" -c "$(jq -c '.["cognito:groups"] = "[users]"' <<<"$CLAIMS_V2")"
expect "the 403 says why" 403 '.message == "Only members of the group '"'admins'"' may delete tasks"'
export TASKHOST_ROUTES=$ROUTES_DIR

# ---- the Lambda loop ----------------------------------------------------------------------

section "the Lambda loop, TASKHOST_AUTH=jwt"
rapi_start --dynamic || { fail "test server starts"; finish; }
rt_start
for v in v2 v1; do
  lambda_api "$v" GET /tasks
  check_eq "lambda $v without claims: a response, not an /error" response "$KIND"
  unauthorized "lambda $v without claims" "$NO_TOKEN"
  lambda_api "$v" PUT "/tasks/$ID" -H "Authorization: $TOKEN" -b '{"task":"x"}'
  unauthorized "lambda $v a token but no claims" "$BAD_TOKEN"
  lambda_api "$v" OPTIONS "/tasks/$ID" -H 'access-control-request-method: PUT'
  expect "lambda $v preflight without claims" 204
done
lambda_api v2 GET "/tasks/$ID" -c "$CLAIMS_V2"
expect "lambda v2 with a sub" 200 '.id == $id' --arg id "$ID"
lambda_api v1 POST /tasks -c "$CLAIMS_V1" -b '{"task":"from the loop"}'
expect "lambda v1 (Cognito) with a sub" 201 '.task.task == "from the loop"'
lambda_api v2 GET /tasks -c "$CLAIMS_V2"
expect "lambda: the loop goes on" 200
rt_term 10
check_eq "lambda: exit 0 after SIGTERM" 0 "$RT_RC"
check "lambda: each 401's reason logged with its Lambda request id" jq -e -s '
  [.[] | select(.message == "unauthorized") | .requestId] as $u
  | ($u | length) == 4 and ($u | all(startswith("api-")))
  and ([.[] | select(.message == "request" and .status == 401) | .requestId] | sort) == ($u | sort)' \
  "$RT_LOG"
check "lambda: no token in the log" bash -c '! grep -q -- "$1" "$2"' _ "${TOKEN:0:40}" "$RT_LOG"
rapi_stop

# ---- start-up ----------------------------------------------------------------------------

section "start-up: --serve verifies tokens itself and needs its settings"
serve_refused() { # serve_refused NAME EXPECTED-LINE [VAR=VALUE...]
  local name=$1 want=$2
  shift 2
  timeout -s KILL 20 env "$@" "$TASKHOST_BIN" --serve 127.0.0.1:0 >"$TMP/out" 2>"$TMP/err" </dev/null
  check_eq "$name: exit 1" 1 $?
  check_eq "$name: one line naming it" "taskhost: $want" "$(cat "$TMP/err")"
}
serve_refused "jwt with none of them" "TASKHOST_AUTH=jwt with --serve needs TASKHOST_JWKS, \
TASKHOST_JWT_ISSUER and TASKHOST_JWT_AUDIENCE to be set: --serve verifies the tokens itself \
(in Lambda, API Gateway does)"
serve_refused "jwt without JWKS" "TASKHOST_AUTH=jwt with --serve needs TASKHOST_JWKS to be set: \
--serve verifies the tokens itself (in Lambda, API Gateway does)" \
  TASKHOST_JWT_ISSUER=https://issuer.example TASKHOST_JWT_AUDIENCE=client
serve_refused "jwt without issuer" "TASKHOST_AUTH=jwt with --serve needs TASKHOST_JWT_ISSUER to be \
set: --serve verifies the tokens itself (in Lambda, API Gateway does)" \
  TASKHOST_JWKS=/nonexistent.json TASKHOST_JWT_AUDIENCE=client
serve_refused "jwt without audience" "TASKHOST_AUTH=jwt with --serve needs TASKHOST_JWT_AUDIENCE to \
be set: --serve verifies the tokens itself (in Lambda, API Gateway does)" \
  TASKHOST_JWKS=/nonexistent.json TASKHOST_JWT_ISSUER=https://issuer.example
serve_refused "an unknown mode" "invalid TASKHOST_AUTH='cognito': expected 'none' or 'jwt'" \
  TASKHOST_AUTH=cognito
serve_refused "an empty audience" "invalid TASKHOST_JWT_AUDIENCE='a,': an empty entry; expected \
audiences (app client ids) separated by commas" TASKHOST_JWKS=/k TASKHOST_JWT_ISSUER=i \
  TASKHOST_JWT_AUDIENCE=a,
"$TASKHOST_BIN" --check >/dev/null 2>"$TMP/err"
check_eq "--check with jwt alone: fine (Lambda needs none of them)" 0 $?
finish
