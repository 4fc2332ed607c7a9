#!/usr/bin/env bash
# test_serve_auth.sh — the accounts loop end to end: cognito-local issues tokens (through
# scripts/token.sh), `taskhost --serve` verifies them against cognito-local's JWKS, and every
# task belongs to the user whose token made it. Runs under with_cognito.sh and reuses
# tests/e2e/lib.sh:
#
#   bash tests/cognito/with_cognito.sh env TASKHOST_BIN=build/taskhost \
#     bash tests/cognito/test_serve_auth.sh
#
# The server runs with TASKHOST_AUTH=jwt, TASKHOST_JWKS=$COGNITO_JWKS_URL,
# TASKHOST_JWT_ISSUER=$COGNITO_ISSUER and TASKHOST_JWT_AUDIENCE=$COGNITO_CLIENT_ID.
#   * no token → 401, WWW-Authenticate: Bearer, {"message":"Unauthorized"}; a preflight
#     OPTIONS without a token → 204;
#   * alice's access token: POST, GET, PUT, the list and DELETE work; her ID token
#     (aud = the client) is accepted too and sees the same tasks;
#   * bob (same pool and client) cannot read, change or delete alice's task (404) and lists
#     only his own; alice's list does not hold bob's;
#   * 401 with error="invalid_token" for: a token of the other pool (cognito-local signs every
#     pool with the same key, so only `iss` tells them apart), an access and an ID token of
#     the pool's other app client, a token whose payload was changed after signing, and a
#     bearer value that is no JWT;
#   * every response, the 401s too, carries Access-Control-Allow-Origin and nosniff.
# CTest: cognito.serve_auth (tests/CMakeLists.txt).
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
set -u
# shellcheck source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

: "${COGNITO_JWKS_URL:?run under tests/cognito/with_cognito.sh}"
TOKEN_SH=$SOURCE_DIR/scripts/token.sh
JSON=(-H 'Content-Type: application/json')

# token EMAIL [token.sh ARGS...]: a token for EMAIL (created on first use), on stdout.
PW='Passw0rd-for-tests'
token() {
  local user=$1
  shift
  TASKHOST_USER=$user TASKHOST_PASSWORD=$PW bash "$TOKEN_SH" --create "$@" </dev/null 2>>"$TMP/token.err"
}
# http_as TOKEN METHOD PATH [curl args...]: lib.sh's http with the token as the bearer.
http_as() { http "$2" "$3" -H "Authorization: Bearer $1" "${@:4}"; }

section "tokens from cognito-local"
ALICE=$(token alice@example.com) || { fail "a token for alice" "$(cat "$TMP/token.err")"; finish; }
ALICE_ID=$(token alice@example.com --id-token) || fail "an ID token for alice"
BOB=$(token bob@example.com) || fail "a token for bob"
OTHER_POOL=$(token carol@example.com --user-pool-id "$COGNITO_OTHER_POOL_ID" \
  --client-id "$COGNITO_OTHER_POOL_CLIENT_ID") || fail "a token from the other pool"
OTHER_CLIENT=$(token alice@example.com --client-id "$COGNITO_OTHER_CLIENT_ID") ||
  fail "an access token from the other client"
OTHER_CLIENT_ID=$(token alice@example.com --client-id "$COGNITO_OTHER_CLIENT_ID" --id-token) ||
  fail "an ID token from the other client"
# alice's access token with another sub in its payload, signature kept.
IFS=. read -r head payload sig <<<"$ALICE"
payload=$(printf '%s' "$payload" | tr '_-' '/+' | base64 -d 2>/dev/null |
  jq -c '.sub = "00000000-0000-4000-8000-000000000000"' | base64 -w0 | tr '/+' '_-' | tr -d '=')
FORGED="$head.$payload.$sig"
pass

section "start with auth on"
export TASKHOST_AUTH=jwt TASKHOST_JWKS=$COGNITO_JWKS_URL TASKHOST_JWT_ISSUER=$COGNITO_ISSUER \
  TASKHOST_JWT_AUDIENCE=$COGNITO_CLIENT_ID
if ! serve_start; then
  fail "server starts and answers"
  finish
fi
pass

section "no token"
for route in "GET /tasks" "POST /tasks" "GET /tasks/$ABSENT_ID" "PUT /tasks/$ABSENT_ID" "DELETE /tasks/$ABSENT_ID"; do
  read -r method path <<<"$route"
  case $method in
    POST | PUT) http "$method" "$path" "${JSON[@]}" --data-binary '{"task":"x"}' ;;
    *) http "$method" "$path" ;;
  esac
  expect "$route without a token" 401 '. == {"message": "Unauthorized"}'
  check_match "$route without a token: WWW-Authenticate" '^Bearer' "$(hdr WWW-Authenticate)"
done
http OPTIONS /tasks -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: authorization, content-type'
check_eq "preflight without a token: 204" 204 "$STATUS"

section "alice: create, read, update, list, delete"
http_as "$ALICE" POST /tasks "${JSON[@]}" --data-binary '{"task":"alice one"}'
expect "alice creates" 201 '.task.task == "alice one"'
A1=$(jq -r '.id' <<<"$BODY")
http_as "$ALICE" POST /tasks "${JSON[@]}" --data-binary '{"task":"alice two"}'
expect "alice creates another" 201
A2=$(jq -r '.id' <<<"$BODY")
http_as "$ALICE" GET "/tasks/$A1"
expect "alice reads hers" 200 '.id == $id and .task == "alice one"' --arg id "$A1"
http_as "$ALICE" PUT "/tasks/$A1" "${JSON[@]}" --data-binary '{"status":"completed"}'
expect "alice updates hers" 200 '.task.status == "completed"'
http_as "$ALICE" GET /tasks
expect "alice lists hers" 200 '(.items | map(.id) | sort) == ([$a, $b] | sort)' --arg a "$A1" --arg b "$A2"
http_as "$ALICE_ID" GET /tasks
expect "alice's ID token: the same tasks" 200 '(.items | map(.id) | sort) == ([$a, $b] | sort)' \
  --arg a "$A1" --arg b "$A2"
http_as "$ALICE" DELETE "/tasks/$A2"
expect "alice deletes hers" 200 '.id == $id' --arg id "$A2"
http_as "$ALICE" GET "/tasks/$A2"
expect "alice's deleted task is gone" 404 '. == {"message": "Task not found"}'

section "bob: another user of the same pool"
http_as "$BOB" GET "/tasks/$A1"
expect "bob cannot read alice's task" 404 '. == {"message": "Task not found"}'
http_as "$BOB" PUT "/tasks/$A1" "${JSON[@]}" --data-binary '{"status":"new"}'
expect "bob cannot change alice's task" 404 '. == {"message": "Task not found"}'
http_as "$BOB" DELETE "/tasks/$A1"
expect "bob cannot delete alice's task" 404 '. == {"message": "Task not found"}'
http_as "$BOB" GET /tasks
expect "bob's list is empty" 200 '.items == [] and .count == 0'
http_as "$BOB" POST /tasks "${JSON[@]}" --data-binary '{"task":"bob one"}'
expect "bob creates" 201
B1=$(jq -r '.id' <<<"$BODY")
http_as "$BOB" GET /tasks
expect "bob lists only his" 200 '.items | map(.id) == [$b]' --arg b "$B1"
http_as "$ALICE" GET /tasks
expect "alice lists only hers" 200 '.items | map(.id) == [$a]' --arg a "$A1"
http_as "$ALICE" GET "/tasks/$A1"
expect "alice's task is unchanged" 200 '.status == "completed"'

section "tokens the server must refuse"
refuse() { # refuse NAME TOKEN
  http_as "$2" GET /tasks
  expect "$1" 401 '. == {"message": "Unauthorized"}'
  check_match "$1: WWW-Authenticate" '^Bearer .*error="invalid_token"' "$(hdr WWW-Authenticate)"
}
refuse "a token of the other pool" "$OTHER_POOL"
refuse "an access token of the other client" "$OTHER_CLIENT"
refuse "an ID token of the other client" "$OTHER_CLIENT_ID"
refuse "a token changed after signing" "$FORGED"
refuse "a bearer value that is no JWT" "not-a-jwt"

# A browser app must be able to read a 401 too: the same headers as every other answer.
check_eq "all $HTTP_COUNT responses, 401s too, carry Access-Control-Allow-Origin and nosniff" "" "$(cat "$HTTP_LOG")"
serve_stop
check_eq "token.sh printed nothing unexpected" "" \
  "$(grep -v -e '^token\.sh: created user ' -e '^token\.sh: user .* exists already: signing in$' "$TMP/token.err")"
finish
