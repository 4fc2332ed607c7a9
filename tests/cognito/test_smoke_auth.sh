#!/usr/bin/env bash
# scripts/smoke.sh --token against `taskhost --serve` with auth on (TASKHOST_AUTH=jwt against
# cognito-local's JWKS, a token from scripts/token.sh), on SQLite, or on DynamoDB under
# with_dynalite.sh with E2E_STORE=dynamodb. Runs under with_cognito.sh:
#   * every check PASS (the 401 without a token and with a tampered one among them), exit 0,
#     and nothing the run created is left in the user's list;
#   * without --token against that server: FAIL create (401) and the hint to pass --token;
#   * --token against a server with auth off: FAIL auth (a request without a token is 200).
# CTest: cognito.smoke_auth, cognito.smoke_auth_dynamodb (tests/CMakeLists.txt).
set -u
# shellcheck source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

: "${COGNITO_JWKS_URL:?run under tests/cognito/with_cognito.sh}"
SMOKE="$SOURCE_DIR/scripts/smoke.sh"
if [ "${E2E_STORE:-sqlite}" != dynamodb ]; then
  export TASKHOST_STORE="sqlite:$TMP/smoke.db"
fi

section "a token from cognito-local"
TOKEN=$(TASKHOST_USER=smoke@example.com TASKHOST_PASSWORD='Passw0rd-for-tests' \
  bash "$SOURCE_DIR/scripts/token.sh" --create </dev/null 2>"$TMP/token.err") ||
  { fail "a token" "$(cat "$TMP/token.err")"; finish; }
pass

section "auth on: every check passes"
export TASKHOST_AUTH=jwt TASKHOST_JWKS=$COGNITO_JWKS_URL TASKHOST_JWT_ISSUER=$COGNITO_ISSUER \
  TASKHOST_JWT_AUDIENCE=$COGNITO_CLIENT_ID
serve_start || { fail "server starts"; finish; }
t0=$(date +%s%3N)
out=$(bash "$SMOKE" "$BASE_URL" --token "$TOKEN" 2>&1)
rc=$?
echo "$out" | sed 's/^/      /'
echo "      (smoke.sh took $(($(date +%s%3N) - t0)) ms)"
check_eq "smoke.sh --token: exit 0" 0 "$rc"
for name in create read update list delete validation "not found" preflight; do
  check "smoke.sh --token: PASS $name" grep -q "^PASS $name:" <<<"$out"
done
check_eq "smoke.sh --token: two PASS auth lines (no token, a tampered token)" 2 \
  "$(grep -c '^PASS auth:' <<<"$out")"
check "smoke.sh --token: the 401's challenge seen" grep -q '^PASS auth: no token → 401, WWW-Authenticate: Bearer' <<<"$out"
check_eq "smoke.sh --token: no FAIL line" "" "$(grep '^FAIL' <<<"$out")"
http GET /tasks -H "Authorization: Bearer $TOKEN"
check_jq "smoke.sh --token: the user's list is empty again" "$BODY" '.count == 0 and .next == null'

section "auth on, no --token: fails, says to pass one"
out=$(bash "$SMOKE" "$BASE_URL" 2>&1)
check_eq "smoke.sh without --token: exit 1" 1 $?
check "smoke.sh without --token: FAIL create" grep -q '^FAIL create: expected 201 with an id, got 401' <<<"$out"
check "smoke.sh without --token: the hint" grep -q 'pass --token' <<<"$out"
serve_stop

section "auth off, --token given: the 401 check fails"
unset TASKHOST_AUTH TASKHOST_JWKS TASKHOST_JWT_ISSUER TASKHOST_JWT_AUDIENCE
serve_start || { fail "server starts"; finish; }
out=$(bash "$SMOKE" "$BASE_URL" --token "$TOKEN" 2>&1)
check_eq "smoke.sh --token, auth off: exit 1" 1 $?
check "smoke.sh --token, auth off: FAIL auth" grep -q '^FAIL auth: GET /tasks without a token' <<<"$out"
grep '^FAIL' <<<"$out" | sed 's/^/      /'
serve_stop

finish
