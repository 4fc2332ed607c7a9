#!/usr/bin/env bash
# --serve with TASKHOST_AUTH=jwt: taskhost verifies `Authorization: Bearer <JWT>` itself
# (runtime/auth.h, runtime/jwt.h). Keys and tokens come fresh from tests/e2e/tokens.py
# (PyJWT and cryptography, Debian's python3-jwt and python3-cryptography), the key set from
# a loopback HTTP server (TASKHOST_JWKS a URL) that counts its fetches, or from a file.
#   * start-up: a key set that cannot be loaded (missing file, not JSON, no usable key, an
#     unreachable URL) stops --serve with one line;
#   * the valid shapes (access token by client_id, ID token by aud, aud lists, the leeway)
#     are served; the route sees req.auth = {sub, claims as the token holds them};
#   * the hostile matrix (tokens.py: 70-odd kinds — alg none, HS256 keyed with the RSA
#     public key, ES256/PS256/RS384, expired, not yet valid, wrong iss/aud/client_id,
#     unknown kid, tampered payload/signature/header, wrong segment counts, huge, non-JSON
#     header, crit, non-string sub, missing exp, ...): every one a 401
#     {"message":"Unauthorized"} with WWW-Authenticate: Bearer error="invalid_token", the
#     CORS headers and nosniff, never a 5xx, on GET and on POST (nothing stored); without a
#     bearer token (none, Basic, "Bearer" alone) the same 401 with plain `Bearer`;
#   * a CORS preflight needs no token;
#   * the README's group rule with the groups as a list (alice in admins deletes, bob 403);
#   * the key set: fetched once at start; an unknown kid fetches it again at most once a
#     minute (a rotation is picked up after the minute, not before, and only once);
#   * 4 workers share the key set: 400 requests in parallel, valid and hostile mixed, each
#     with its expected status;
#   * no token ever reaches the log.
# Needs ~70 s: the rotation waits out the minute between fetches.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY=/usr/bin/python3
if ! "$PY" -c 'import jwt, cryptography' 2>/dev/null; then
  fail "python3-jwt and python3-cryptography are installed (scripts/deps.sh --test)"
  finish
fi
ISSUER=https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_E2eTest
AUD=e2e-client
"$PY" "$SOURCE_DIR/tests/e2e/tokens.py" "$TMP" "$ISSUER" "$AUD" || { fail "tokens.py"; finish; }
TOKENS="$TMP/tokens.json"
tok() { jq -r --arg g "$1" --arg n "$2" '.[$g][$n]' "$TOKENS"; }
JSON=(-H 'Content-Type: application/json')

# Routes: the README's group rule applied to a copy of lua/, and /_test/whoami in front.
ROUTES="$TMP/routes"
cp -r "$ROUTES_DIR" "$ROUTES"
"$PY" - "$SOURCE_DIR/README.md" "$ROUTES/routes.lua" <<'PY' || fail "apply the README's example"
import re, sys
readme, routes = open(sys.argv[1]).read(), open(sys.argv[2]).read()
def block(marker):
    m = re.search(r"<!-- example: " + re.escape(marker) + r"[^>]*-->\n```lua\n(.*?)```", readme, re.S)
    if not m:
        sys.exit("README: no block '%s'" % marker)
    return m.group(1)
head = "local function delete_task(req, raw_id)\n"
routes = routes.replace(head, block("in_group") + "\n" + head + block("delete_task guard"))
open(sys.argv[2], "w").write(routes)
PY
mv "$ROUTES/routes.lua" "$ROUTES/base_routes.lua"
cat >"$ROUTES/routes.lua" <<'LUA'
local json = require("json")
local base = require("base_routes")
local M = {}
for k, v in pairs(base) do M[k] = v end
function M.handle(req)
  if req.path == "/_test/whoami" then
    return { status = 200, body = { auth = req.auth or json.null, claims = req.claims or json.null } }
  end
  return base.handle(req)
end
return M
LUA
export TASKHOST_ROUTES=$ROUTES

# The key set over HTTP: serves $JWKS_DIR/current.json, one line per GET in fetches.log.
JWKS_DIR="$TMP/jwks-server"
mkdir -p "$JWKS_DIR"
cp "$TMP/jwks.json" "$JWKS_DIR/current.json"
: >"$JWKS_DIR/fetches.log"
"$PY" - "$JWKS_DIR" <<'PY' 2>"$JWKS_DIR/server.log" &
import http.server, os, sys
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(d, "current.json"), "rb") as f:
            body = f.read()
        with open(os.path.join(d, "fetches.log"), "a") as f:
            f.write(self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(s.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
s.serve_forever()
PY
for _ in $(seq 1 100); do [ -s "$JWKS_DIR/port" ] && break; sleep 0.05; done
JWKS_URL="http://127.0.0.1:$(cat "$JWKS_DIR/port")/.well-known/jwks.json"
fetches() { wc -l <"$JWKS_DIR/fetches.log" | tr -d ' '; }
swap_jwks() { cp "$TMP/$1" "$JWKS_DIR/current.tmp" && mv "$JWKS_DIR/current.tmp" "$JWKS_DIR/current.json"; }

export TASKHOST_AUTH=jwt TASKHOST_JWT_ISSUER=$ISSUER TASKHOST_JWT_AUDIENCE="other-app, $AUD"

section "start-up: a key set that cannot be loaded"
refused() { # refused NAME JWKS EXPECTED-REGEX
  timeout -s KILL 30 env TASKHOST_JWKS="$2" "$TASKHOST_BIN" --serve 127.0.0.1:0 \
    >"$TMP/out" 2>"$TMP/err" </dev/null
  check_eq "$1: exit 1" 1 $?
  check_eq "$1: one line" 1 "$(wc -l <"$TMP/err")"
  check_match "$1: says why" "^taskhost: cannot load the key set TASKHOST_JWKS=.*$3" "$(cat "$TMP/err")"
}
refused "a missing file" "$TMP/nonexistent.json" "nonexistent"
printf 'not json' >"$TMP/bad.json"
refused "not JSON" "$TMP/bad.json" "."
jq '{keys: [.keys[] | select(.kty != "RSA")]}' "$TMP/jwks.json" >"$TMP/no-rsa.json"
refused "no usable key (EC and oct only)" "$TMP/no-rsa.json" "."
refused "an unreachable URL" "http://127.0.0.1:9/jwks.json" "."
check_eq "start-up: the refusals fetched nothing from the key server" 0 "$(fetches)"

section "start with TASKHOST_JWKS a URL"
export TASKHOST_JWKS=$JWKS_URL
serve_start || { fail "server starts"; finish; }
check_eq "the key set fetched once at start" 1 "$(fetches)"
check "log: verifying bearer tokens, 1 key, the rest skipped" jq -e -s \
  'any(.[]; .message == "verifying bearer tokens" and .keys == 1 and .skipped == 6)' "$SERVE_LOG"

section "valid tokens"
while IFS= read -r name; do
  http GET /tasks -H "Authorization: Bearer $(tok valid "$name")"
  check_eq "valid: $name: 200" 200 "$STATUS"
done < <(jq -r '.valid | keys[]' "$TOKENS")
http GET /tasks -H "authorization: bEaReR   $(tok valid 'access token (client_id)')"
check_eq "the scheme in any case, several spaces" 200 "$STATUS"
SUB=$(jq -r '.sub' "$TOKENS")
http GET /_test/whoami -H "Authorization: Bearer $(tok valid 'access token (client_id)')"
check_jq "req.auth: sub and the claims as the token holds them" "$BODY" \
  '.auth.sub == $s and .auth.claims.sub == $s and .auth.claims["cognito:groups"] == ["admins", "users"]
   and (.auth.claims.exp | type == "number") and .auth.claims.client_id == $a and .claims == .auth.claims' \
  --arg s "$SUB" --arg a "$AUD"

section "no bearer token: 401, WWW-Authenticate: Bearer"
while IFS= read -r name; do
  value=$(jq -r --arg n "$name" '.not_bearer[$n] // empty' "$TOKENS")
  if [ -n "$value" ]; then http GET /tasks -H "Authorization: $value"; else http GET /tasks; fi
  check_eq "$name: 401" 401 "$STATUS"
  check_jq "$name: body" "$BODY" '. == {"message": "Unauthorized"}'
  check_eq "$name: WWW-Authenticate" "Bearer" "$(hdr WWW-Authenticate)"
done < <(jq -r '.not_bearer | keys[]' "$TOKENS")
http OPTIONS /tasks -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: authorization, content-type'
check_eq "preflight without a token: 204" 204 "$STATUS"
http OPTIONS /tasks
check_eq "OPTIONS that is no preflight, without a token: 401" 401 "$STATUS"

section "the hostile matrix"
kinds=0
while IFS= read -r name; do
  kinds=$((kinds + 1))
  token=$(tok hostile "$name")
  for method in GET POST; do
    if [ "$method" = POST ]; then
      http POST /tasks -H "Authorization: Bearer $token" "${JSON[@]}" --data-binary '{"task":"forged"}'
    else
      http GET /tasks -H "Authorization: Bearer $token"
    fi
    check_eq "$name ($method): 401" 401 "$STATUS"
    check_jq "$name ($method): body" "$BODY" '. == {"message": "Unauthorized"}'
    check_eq "$name ($method): WWW-Authenticate" 'Bearer error="invalid_token"' "$(hdr WWW-Authenticate)"
    check_match "$name ($method): JSON" '^application/json' "$(hdr Content-Type)"
  done
done < <(jq -r '.hostile | keys[]' "$TOKENS")
echo "      $kinds kinds of hostile token"
if [ "$kinds" -ge 25 ]; then pass; else fail "at least 25 kinds" "$kinds"; fi
check_eq "no hostile token reached the log as a JSON 5xx or 'route failed'" 0 \
  "$(jq -s '[.[] | select((.message == "request" and .status >= 500) or .message == "route failed")] | length' "$SERVE_LOG")"
http GET /tasks -H "Authorization: Bearer $(tok users alice)"
check_jq "the hostile POSTs stored nothing" "$BODY" '.count == 0'
check "every 401 is logged with its reason" jq -e -s '
  ([.[] | select(.message == "unauthorized")] | length) > 0 and
  all(.[] | select(.message == "unauthorized"); (.reason | type == "string") and (.requestId | type == "string"))' \
  "$SERVE_LOG"
check "the jwt reasons are logged (bad_alg, bad_signature, unknown_kid, expired, malformed)" jq -e -s '
  [.[] | select(.message == "unauthorized") | .reason] as $r
  | all(["bad_alg", "bad_signature", "unknown_kid", "expired", "malformed", "bad_issuer",
         "bad_audience", "bad_claim", "not_yet_valid", "no_sub", "too_large", "bad_header"][];
        . as $x | $r | index($x) != null)' "$SERVE_LOG"

section "the README's group rule, groups as the token's list"
http POST /tasks -H "Authorization: Bearer $(tok users alice)" "${JSON[@]}" --data-binary '{"task":"a"}'
check_eq "alice creates" 201 "$STATUS"
A1=$(jq -r '.id' <<<"$BODY")
http POST /tasks -H "Authorization: Bearer $(tok users bob)" "${JSON[@]}" --data-binary '{"task":"b"}'
check_eq "bob creates" 201 "$STATUS"
B1=$(jq -r '.id' <<<"$BODY")
http DELETE "/tasks/$B1" -H "Authorization: Bearer $(tok users bob)"
check_eq "bob (groups [users]) may not delete" 403 "$STATUS"
http DELETE "/tasks/$A1" -H "Authorization: Bearer $(tok users alice)"
check_eq "alice (groups [admins, users]) deletes" 200 "$STATUS"

section "4 workers, one key set: 400 requests in parallel"
# Fetches so far (at start, and maybe one for the matrix's unknown kid): counted here, since on
# a loaded machine the matrix can end more than a minute ago, which allows one more refetch.
before=$(fetches)
: >"$TMP/par.in"
for i in $(seq 1 100); do
  printf '200 %s\n' "$(tok users alice)" >>"$TMP/par.in"
  printf '401 %s\n' "$(tok hostile 'unknown kid (a key not in the set)')" >>"$TMP/par.in"
  printf '401 %s\n' "$(tok hostile 'signature changed (one character)')" >>"$TMP/par.in"
  printf '200 %s\n' "$(tok valid 'ID token (aud a string)')" >>"$TMP/par.in"
done
# shellcheck disable=SC2016
xargs -P 16 -L 1 bash -c 'got=$(curl -s -o /dev/null -w "%{http_code}" --max-time 30 \
  -H "Authorization: Bearer $1" "$2/tasks?limit=1"); [ "$got" = "$0" ] || echo "want $0 got $got"' \
  <<<"$(sed "s|\$| $BASE_URL|" "$TMP/par.in")" >"$TMP/par.out" 2>&1
check_eq "400 parallel requests: each its expected status" "" "$(sort "$TMP/par.out" | uniq -c)"
# 100 unknown kids in a few seconds (4 workers racing) make one more fetch at most.
if [ "$(fetches)" -le $((before + 1)) ]; then pass; else
  fail "100 unknown kids in parallel: at most one more fetch" "$before before, $(fetches) after"; fi
serve_stop

section "a rotation: the key set fetched again for an unknown kid, at most once a minute"
swap_jwks jwks.json
: >"$JWKS_DIR/fetches.log"
serve_start || { fail "server starts again"; finish; }
START=$SECONDS # the key set was fetched before the server answered: at least 60 s from here
check_eq "fetched once at start" 1 "$(fetches)"
swap_jwks jwks-rotated.json
http GET /tasks -H "Authorization: Bearer $(tok rotated k3)"
check_eq "a new key within the minute after start: 401" 401 "$STATUS"
check_eq "... and no fetch" 1 "$(fetches)"
wait_s=$((START + 61 - SECONDS))
if [ "$wait_s" -gt 0 ]; then
  echo "      waiting ${wait_s} s for the minute between fetches"
  sleep "$wait_s"
fi
http GET /tasks -H "Authorization: Bearer $(tok rotated k3)"
check_eq "after the minute: the new key is fetched and its token served" 200 "$STATUS"
check_eq "... with one more fetch" 2 "$(fetches)"
swap_jwks jwks-rotated2.json
http GET /tasks -H "Authorization: Bearer $(tok rotated k4)"
check_eq "the next new key right after: 401 (a minute has not passed)" 401 "$STATUS"
for _ in 1 2 3; do http GET /tasks -H "Authorization: Bearer $(tok rotated k4)"; done
check_eq "... and repeated unknown kids fetch nothing" 2 "$(fetches)"
http GET /tasks -H "Authorization: Bearer $(tok rotated k3)"
check_eq "the rotated key keeps working" 200 "$STATUS"
http GET /tasks -H "Authorization: Bearer $(tok users alice)"
check_eq "the first key keeps working" 200 "$STATUS"
check "log: one fetch for an unknown kid" jq -e -s \
  '[.[] | select(.message == "JWKS fetched again for an unknown kid")] | length == 1' "$SERVE_LOG"
serve_stop

section "TASKHOST_JWKS a file"
export TASKHOST_JWKS="$TMP/jwks.json"
serve_start || { fail "server starts with a file"; finish; }
http GET /tasks -H "Authorization: Bearer $(tok users bob)"
check_eq "file: a valid token" 200 "$STATUS"
http GET /tasks -H "Authorization: Bearer $(tok hostile 'alg none, no signature')"
check_eq "file: alg none" 401 "$STATUS"
http GET /tasks -H "Authorization: Bearer $(tok rotated k3)"
check_eq "file: an unknown kid" 401 "$STATUS"
serve_stop

check_eq "all $HTTP_COUNT responses carry Access-Control-Allow-Origin and nosniff" "" "$(cat "$HTTP_LOG")"
check_eq "no token in any log (no 'eyJ')" "" "$(grep -l 'eyJ' "$TMP"/serve.*.log)"
finish
