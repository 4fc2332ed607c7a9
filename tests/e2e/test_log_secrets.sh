#!/usr/bin/env bash
# Authorization, X-Amz-Security-Token, cookies and the secret keys never
# appear in the logs — at DEBUG/TRACE, in the JSON and the Text format, on the
# error paths too.
#
# Every value below is a unique marker made for this run. taskhost is driven:
#   --local  v1 and v2 events carrying Authorization (Bearer and Basic, also as
#            several multiValueHeaders values), X-Amz-Security-Token, Cookie /
#            v2 cookies: 201, 200, bad JSON 400, 415, 404 (path and id), 405,
#            a bad cursor 400, a route error 500, a token in the query string;
#            and malformed or odd events (refused with exit 2, or served)
#   DynamoDB with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
#            set to markers: a closed loopback port (signed, connection refused,
#            retried, 503) and a loopback endpoint answering like DynamoDB with
#            errors that quote the signed headers (as a SignatureDoesNotMatch
#            does), some cut so the 256-byte message limit falls inside the token
#   --serve  the same requests with curl -H / -b / -u, plus 413, a preflight, a
#            header block too large and malformed requests libmicrohttpd refuses
#            (and logs); on SQLite and on the quoting endpoint
#   --lambda the Runtime API loop (tests/lambda/runtime_api_server.py), incl. an
#            invalid event; the /error documents it posts are checked too
#   start-up failures whose invalid values hold a secret ("value not shown")
# Then no marker (nor its first 14 characters) is in any stdout or stderr.
# Not vacuous: each request id a route saw (echoed in an X-Request-Id header
# by a wrapper routes.lua) is in the log, DEBUG lines are there, store failures
# and retries are logged, and the quoting endpoint received the markers.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID TABLE_NAME AWS_REGION AWS_DEFAULT_REGION \
  AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL \
  AWS_ENDPOINT_URL_DYNAMODB AWS_IGNORE_CONFIGURED_ENDPOINT_URLS AWS_MAX_ATTEMPTS

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
M_BEARER="bearer$(hex 12)"
M_AMZTOK="amztoken$(hex 12)"
M_COOKIE="cookie$(hex 12)"
M_COOKIE2="cookietwo$(hex 12)"
M_BASICPW="basicpw$(hex 12)"
M_AKID="AKIDMARK$(hex 8 | tr a-f A-F)"
M_SECRET="secretkey$(hex 16)"
M_STOKEN="sessiontoken$(hex 24)"
M_CURSOR="cursorsecret$(hex 12)"
M_QUERY="querytoken$(hex 12)" # ?access_token=…: the log has the path, not the query
M_BODY="bodytext$(hex 12)" # README: request bodies are never logged either
BASIC=$(printf 'tester:%s' "$M_BASICPW" | base64 -w0)
# Markers that must be in no output at all, and the body marker (not in the
# logs: an error response may legitimately quote the client's own body).
SECRETS=("$M_BEARER" "$M_AMZTOK" "$M_COOKIE" "$M_COOKIE2" "$M_BASICPW" "$BASIC" "$M_AKID"
  "$M_SECRET" "$M_STOKEN" "$M_CURSOR" "$M_QUERY")
export TASKHOST_CURSOR_SECRET=$M_CURSOR
ABSENT=$ABSENT_ID

LOGS="$TMP/logs" # every stdout (*.out) and stderr (*.err) of taskhost
mkdir -p "$LOGS"
NRUN=0
RIDS="$TMP/rids" # "<log file> <request id>" for every id a route saw
: >"$RIDS"

# Routes: the stock ones behind a wrapper that logs at DEBUG, echoes the
# request id (to find it in the log) and fails on /boom (a route error).
ROUTES="$TMP/routes"
mkdir -p "$ROUTES"
cp "$ROUTES_DIR"/*.lua "$ROUTES/"
mv "$ROUTES/routes.lua" "$ROUTES/app.lua"
cat >"$ROUTES/routes.lua" <<'LUA'
local app = require("app")
local log = require("log")
return {
  handle = function(req)
    log.debug("log-secrets wrapper", { method = req.method, path = req.path })
    if req.path == "/boom" then
      error("a route error for the log-secrets test")
    end
    local r = app.handle(req)
    r.headers = r.headers or {}
    r.headers["X-Request-Id"] = req.request_id
    return r
  end,
}
LUA
export TASKHOST_ROUTES="$ROUTES"

# ---- --local ------------------------------------------------------------------

# All the events, written at once (jq per event would cost ~0.2 s each here):
# $EV/<v1|v2>.<case>.json, every one carrying Authorization (Bearer, plus Basic
# as a second value), X-Amz-Security-Token and cookies; v1 also in
# multiValueHeaders (two values each), v2 also in the cookies list. "@ID@" in
# update/delete stands for a task created first.
EV="$TMP/events"
mkdir -p "$EV"
cat >"$TMP/mkevents.py" <<'PY'
import json, os, sys
out = sys.argv[1]
E = os.environ
ABSENT = "00000000-0000-4000-8000-000000000000"
bearer, basic = "Bearer " + E["M_BEARER"], "Basic " + E["BASIC"]
tok, c1, c2, body = E["M_AMZTOK"], "session=" + E["M_COOKIE"], "other=" + E["M_COOKIE2"], E["M_BODY"]
J = "application/json"
cases = [  # name, method, path, query, content type, body
    ("create", "POST", "/tasks", {}, J, '{"task":"secret-free"}'),
    ("update", "PUT", "/tasks/@ID@", {}, J, '{"status":"completed"}'),
    ("list", "GET", "/tasks", {"limit": "2", "access_token": E["M_QUERY"]}, None, None),
    ("badjson", "POST", "/tasks", {}, J, '{"task": "' + body),
    ("415", "POST", "/tasks", {}, "text/plain", body),
    ("nopath", "GET", "/nope", {}, None, None),
    ("absent", "GET", "/tasks/" + ABSENT, {}, None, None),
    ("405", "PATCH", "/tasks", {}, None, None),
    ("cursor", "GET", "/tasks", {"next": body}, None, None),
    ("boom", "GET", "/boom", {}, None, None),
    ("delete", "DELETE", "/tasks/@ID@", {}, None, None),
    ("update-absent", "PUT", "/tasks/" + ABSENT, {}, J, '{"status":"new"}'),
    ("delete-absent", "DELETE", "/tasks/" + ABSENT, {}, None, None),
]
for name, method, path, query, ctype, b in cases:
    raw_q = "&".join(f"{k}={v}" for k, v in query.items())
    h = {"Authorization": bearer, "X-Amz-Security-Token": tok, "Cookie": c1 + "; " + c2,
         "User-Agent": "log-secrets"}
    if ctype:
        h["Content-Type"] = ctype
    v1 = {"resource": "/{proxy+}", "path": path, "httpMethod": method, "headers": h,
          "multiValueHeaders": dict({k: [v] for k, v in h.items()},
                                    Authorization=[bearer, basic],
                                    **{"X-Amz-Security-Token": [tok, tok], "Cookie": [c1, c2]}),
          "queryStringParameters": query or None,
          "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
          "pathParameters": None, "stageVariables": None,
          "requestContext": {"accountId": "123456789012", "apiId": "e2e", "stage": "test",
                             "requestId": "apigw-v1-" + name, "httpMethod": method,
                             "resourcePath": "/{proxy+}", "path": "/test" + path,
                             "identity": {"sourceIp": "192.0.2.1"}},
          "body": b, "isBase64Encoded": False}
    h2 = {k.lower(): v for k, v in h.items() if k != "Cookie"}
    h2["authorization"] = bearer + ", " + basic
    v2 = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": raw_q,
          "headers": h2, "cookies": [c1, c2],
          "requestContext": {"accountId": "123456789012", "apiId": "e2e", "domainName": "e2e.local",
                             "requestId": "apigw-v2-" + name, "stage": "$default",
                             "routeKey": "$default", "timeEpoch": 0,
                             "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                      "sourceIp": "192.0.2.1", "userAgent": "log-secrets"}},
          "isBase64Encoded": False}
    if query:
        v2["queryStringParameters"] = query
    if b is not None:
        v2["body"] = b
    for v, ev in (("v1", v1), ("v2", v2)):
        with open(os.path.join(out, f"{v}.{name}.json"), "w") as f:
            json.dump(ev, f)
PY
M_BEARER=$M_BEARER BASIC=$BASIC M_AMZTOK=$M_AMZTOK M_COOKIE=$M_COOKIE M_COOKIE2=$M_COOKIE2 \
  M_BODY=$M_BODY M_QUERY=$M_QUERY "$PYTHON" "$TMP/mkevents.py" "$EV"
check_eq "the events are written" 26 "$(ls "$EV" | wc -l)"

RESULTS="$TMP/results" # "<stdout file> <expected status> <name>" of every --local run
: >"$RESULTS"
# run_case NAME WANT EVENT-FILE ENV...: one --local run, its outputs kept in $LOGS.
run_case() {
  local name=$1 want=$2 ev=$3
  shift 3
  NRUN=$((NRUN + 1))
  env "$@" "$TASKHOST_BIN" --local "$ev" >"$LOGS/local.$NRUN.out" 2>"$LOGS/local.$NRUN.err"
  echo "$LOGS/local.$NRUN.out $want $name" >>"$RESULTS"
}

SQLITE_CASES=(update:200 list:200 badjson:400 415:415 nopath:404 absent:404 405:405 cursor:400
  boom:500 delete:200)
local_matrix() { # local_matrix LABEL ENV...
  local label=$1 v c id
  shift
  for v in v1 v2; do
    run_case "$label $v create" 201 "$EV/$v.create.json" "$@"
    id=$(jq -r '.body | fromjson | .id' "$LOGS/local.$NRUN.out" 2>/dev/null)
    for c in update delete; do sed "s/@ID@/$id/g" "$EV/$v.$c.json" >"$TMP/$v.$c.json"; done
    for c in "${SQLITE_CASES[@]}"; do
      local f="$EV/$v.${c%%:*}.json"
      [ -f "$TMP/$v.${c%%:*}.json" ] && f="$TMP/$v.${c%%:*}.json"
      run_case "$label $v ${c%%:*}" "${c##*:}" "$f" "$@"
    done
  done
}

section "--local, SQLite: JSON and Text, DEBUG and TRACE"
local_matrix "JSON/DEBUG" AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=DEBUG
local_matrix "Text/TRACE" AWS_LAMBDA_LOG_FORMAT=Text TASKHOST_LOG_LEVEL=TRACE
check "JSON: DEBUG lines are written" grep -qh '"level":"DEBUG"' "$LOGS"/local.*.err
check "Text: DEBUG lines are written" grep -qhE '^[0-9TZ:.-]+ DEBUG ' "$LOGS"/local.*.err
check "a route error is logged ('route failed')" grep -qh 'route failed' "$LOGS"/local.*.err

section "--local: events that are not API Gateway events, or odd ones"
bad_event() { # bad_event NAME JSON-TEXT: refused (exit 2) or served leniently (0)
  NRUN=$((NRUN + 1))
  printf '%s' "$2" >"$TMP/bad.$NRUN.json"
  AWS_LAMBDA_LOG_LEVEL=TRACE "$TASKHOST_BIN" --local "$TMP/bad.$NRUN.json" \
    >"$LOGS/bad.$NRUN.out" 2>"$LOGS/bad.$NRUN.err"
  local rc=$?
  check_match "$1: exit 0 or 2 (got $rc)" '^[02]$' "$rc"
  check "$1: something on stderr" test -s "$LOGS/bad.$NRUN.err"
}
bad_event "v2 without requestContext.http" \
  "{\"version\":\"2.0\",\"rawPath\":\"/tasks\",\"headers\":{\"authorization\":\"Bearer $M_BEARER\",\"x-amz-security-token\":\"$M_AMZTOK\"},\"cookies\":[\"s=$M_COOKIE\"],\"requestContext\":{}}"
bad_event "v1 headers as a list" \
  "{\"httpMethod\":\"GET\",\"path\":\"/tasks\",\"headers\":[\"Authorization: Bearer $M_BEARER\"],\"multiValueHeaders\":{\"X-Amz-Security-Token\":[\"$M_AMZTOK\"]},\"requestContext\":{}}"
bad_event "v1 header value not a string" \
  "{\"httpMethod\":\"GET\",\"path\":\"/tasks\",\"headers\":{\"Authorization\":{\"Bearer\":\"$M_BEARER\"}},\"multiValueHeaders\":{\"Cookie\":[{\"v\":\"$M_COOKIE\"}]},\"requestContext\":{}}"
bad_event "truncated JSON" "{\"headers\":{\"authorization\":\"Bearer $M_BEARER\",\"x-amz-security-token\":\"$M_AMZTOK"
bad_event "v2 cookies not strings" \
  "{\"version\":\"2.0\",\"rawPath\":\"/tasks\",\"cookies\":[{\"s\":\"$M_COOKIE\"}],\"headers\":{\"authorization\":\"Bearer $M_BEARER\"},\"requestContext\":{\"http\":{\"method\":\"GET\",\"path\":\"/tasks\"}}}"
bad_event "unknown payload version" \
  "{\"version\":\"3.0\",\"headers\":{\"authorization\":\"Bearer $M_BEARER\"}}"

# ---- DynamoDB: signed requests that fail ---------------------------------------------

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
DDB_ENV=(TASKHOST_STORE=dynamodb TABLE_NAME=tasks AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID="$M_AKID"
  AWS_SECRET_ACCESS_KEY="$M_SECRET" AWS_SESSION_TOKEN="$M_STOKEN" AWS_MAX_ATTEMPTS=2)

# A loopback "DynamoDB" whose errors quote what it received: the signed headers
# (as a real SignatureDoesNotMatch quotes the canonical request, token
# included), the token alone, the Authorization header; Query errors are
# padded so the message limit (256) cuts the token at a different place each
# time. It records the headers it got, to show the markers were sent.
cat >"$TMP/quoting_ddb.py" <<'PY'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port_file, record = sys.argv[1], sys.argv[2]
count = [0]

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        op = self.headers.get("X-Amz-Target", "").split(".")[-1]
        auth = self.headers.get("Authorization", "")
        tok = self.headers.get("X-Amz-Security-Token", "")
        with open(record, "a") as f:
            f.write(json.dumps({"op": op, "authorization": auth, "token": tok}) + "\n")
        count[0] += 1
        canonical = "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:%s\nx-amz-security-token:%s\n" % (
            self.headers.get("Host"), tok)
        status, typ = 400, "com.amazon.coral.service#InvalidSignatureException"
        msg = ("The request signature we calculated does not match the signature you provided. "
               "The Canonical String for this request should have been\n'%s'\n%s" % (canonical, auth))
        if op == "GetItem":
            typ, msg = "com.amazon.coral.service#UnrecognizedClientException", \
                "The security token '%s' included in the request is invalid" % tok
        elif op == "UpdateItem":
            typ, msg = "com.amazon.coral.validate#ValidationException", \
                "Unexpected headers: Authorization: %s X-Amz-Security-Token: %s" % (auth, tok)
        elif op == "DeleteItem":
            status, typ, msg = 500, "com.amazonaws.dynamodb.v20120810#InternalServerError", \
                "Internal error handling %s for %s" % (tok, auth)
        elif op == "Query":
            pad = 256 - 4 - (count[0] * 3) % len(tok)
            typ, msg = "com.amazonaws.dynamodb.v20120810#AccessDeniedException", \
                "x" * pad + tok + " " + auth
        body = json.dumps({"__type": typ, "message": msg}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", "quoting-%d" % count[0])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

s = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(port_file + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(port_file + ".tmp", port_file)
s.serve_forever()
PY
"$PYTHON" "$TMP/quoting_ddb.py" "$TMP/qport" "$TMP/quoting.jsonl" 2>"$TMP/quoting.err" &
QUOTING_PID=$!
for i in $(seq 1 100); do [ -s "$TMP/qport" ] && break; sleep 0.05; done
QPORT=$(cat "$TMP/qport" 2>/dev/null)
check_match "the quoting endpoint is up" '^[0-9]+$' "$QPORT"
CLOSED=$(free_port)

ddb_matrix() { # ddb_matrix LABEL ENV...
  local label=$1 v c
  shift
  for v in v1 v2; do
    for c in create:$DDB_CREATE absent:$DDB_GET update-absent:$DDB_UPDATE \
      delete-absent:$DDB_DELETE list:$DDB_LIST boom:500; do
      run_case "$label $v ${c%%:*}" "${c##*:}" "$EV/$v.${c%%:*}.json" "$@"
    done
  done
}

section "--local, DynamoDB on a closed port (signed, refused, retried → 503)"
DDB_CREATE=503 DDB_GET=503 DDB_UPDATE=503 DDB_DELETE=503 DDB_LIST=503
ddb_matrix "closed/JSON/DEBUG" "${DDB_ENV[@]}" AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$CLOSED" \
  AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=DEBUG
ddb_matrix "closed/Text/TRACE" "${DDB_ENV[@]}" AWS_ENDPOINT_URL="http://127.0.0.1:$CLOSED" \
  AWS_LAMBDA_LOG_FORMAT=Text TASKHOST_LOG_LEVEL=TRACE
check "closed port: retries logged" grep -qh 'dynamodb: retrying' "$LOGS"/local.*.err
check "closed port: store failures logged" grep -qh 'store operation failed' "$LOGS"/local.*.err

section "--local, DynamoDB endpoint quoting the signed headers in its errors"
DDB_CREATE=500 DDB_GET=500 DDB_UPDATE=400 DDB_DELETE=503 DDB_LIST=500
ddb_matrix "quoting/JSON/DEBUG" "${DDB_ENV[@]}" AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$QPORT" \
  AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=DEBUG
ddb_matrix "quoting/Text/TRACE" "${DDB_ENV[@]}" AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$QPORT" \
  AWS_LAMBDA_LOG_FORMAT=Text TASKHOST_LOG_LEVEL=TRACE
# Query errors: the token at a different offset each time, so the 256-byte cut
# of the message falls inside it (or just after it).
for i in $(seq 1 12); do
  run_case "quoting list $i" 500 "$EV/v2.list.json" "${DDB_ENV[@]}" \
    AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$QPORT" AWS_LAMBDA_LOG_LEVEL=DEBUG
done
check "the endpoint got X-Amz-Security-Token = AWS_SESSION_TOKEN" \
  jq -e -s --arg t "$M_STOKEN" 'length > 0 and all(.[]; .token == $t)' "$TMP/quoting.jsonl"
check "the endpoint got Authorization with Credential=AWS_ACCESS_KEY_ID/" \
  jq -e -s --arg k "Credential=$M_AKID/" 'all(.[]; .authorization | contains($k))' "$TMP/quoting.jsonl"
check "quoted secrets were scrubbed, not dropped: '***' in a store failure" \
  grep -qhF '***' "$LOGS"/local.*.err
check "a withheld signature error message is logged as such" grep -qh 'message withheld' "$LOGS"/local.*.err

# ---- --serve ----------------------------------------------------------------------

CURL_HDRS=(-H "Authorization: Bearer $M_BEARER" -H "X-Amz-Security-Token: $M_AMZTOK"
  -b "session=$M_COOKIE; other=$M_COOKIE2")
# sreq NAME WANT METHOD PATH [curl args]: one request with the marker headers.
sreq() {
  local name=$1 want=$2 method=$3 path=$4
  shift 4
  http "$method" "$path" "${CURL_HDRS[@]}" "$@"
  check_eq "$name: HTTP $want" "$want" "$STATUS"
  local rid
  rid=$(hdr X-Request-Id)
  [ -n "$rid" ] && echo "$SERVE_LOG $rid" >>"$RIDS"
}
J=(-H 'Content-Type: application/json')
# raw TEXT: TEXT (printf %b escapes) on a fresh connection; counts answers in RAW_OK.
RAW_OK=0
raw() {
  local first
  # In a subshell: the server may close the connection while we still write
  # (SIGPIPE would end the test itself).
  first=$(
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit
    printf '%b' "$1" >&3 2>/dev/null
    timeout 5 head -c 12 <&3
  )
  [[ $first == HTTP/1.1\ * ]] && RAW_OK=$((RAW_OK + 1))
}
serve_round() { # serve_round LABEL [STORE-ERRORS]
  local label=$1 id
  RAW_OK=0
  if [ "${2:-}" = ddb ]; then
    sreq "$label create" 500 POST /tasks "${J[@]}" --data-binary '{"task":"x"}'
    sreq "$label get" 500 GET "/tasks/$ABSENT"
    sreq "$label update" 400 PUT "/tasks/$ABSENT" "${J[@]}" --data-binary '{"status":"new"}'
    sreq "$label delete" 503 DELETE "/tasks/$ABSENT"
    sreq "$label list" 500 GET /tasks
  else
    sreq "$label create" 201 POST /tasks "${J[@]}" --data-binary '{"task":"secret-free"}'
    id=$(jq -r '.id' <<<"$BODY")
    sreq "$label update" 200 PUT "/tasks/$id" "${J[@]}" --data-binary '{"priority":"high"}'
    sreq "$label list" 200 GET "/tasks?limit=2&access_token=$M_QUERY"
    sreq "$label delete" 200 DELETE "/tasks/$id"
  fi
  sreq "$label bad JSON" 400 POST /tasks "${J[@]}" --data-binary "{\"task\": \"$M_BODY"
  sreq "$label 415" 415 POST /tasks -H 'Content-Type: text/plain' --data-binary "$M_BODY"
  sreq "$label unknown path" 404 GET /nope
  sreq "$label 405" 405 PATCH /tasks
  sreq "$label bad cursor" 400 GET "/tasks?next=$M_BODY"
  sreq "$label route error" 500 GET /boom
  sreq "$label preflight" 204 OPTIONS /tasks -H 'Origin: https://app.example' \
    -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: authorization'
  sreq "$label 413" 413 POST /tasks "${J[@]}" --data-binary "$(repeat_char a 3000)$M_BODY"
  http GET /tasks -u "tester:$M_BASICPW" -H "X-Amz-Security-Token: $M_AMZTOK"
  check_eq "$label Basic auth: answered" 1 "$([[ $STATUS =~ ^[2-5][0-9][0-9]$ ]] && echo 1)"
  http GET /tasks -H "Authorization: Bearer $M_BEARER" -H "Authorization: Bearer $M_BEARER" \
    -H "X-Amz-Security-Token: $M_AMZTOK" -H "X-Amz-Security-Token: $M_AMZTOK"
  check_eq "$label repeated headers: answered" 1 "$([[ $STATUS =~ ^[2-5][0-9][0-9]$ ]] && echo 1)"
  # Requests libmicrohttpd itself refuses (and logs), and odd but accepted ones.
  if [ "${2:-}" != ddb ]; then
    local a="Authorization: Bearer $M_BEARER" t="X-Amz-Security-Token: $M_AMZTOK"
    raw "GET /tasks HTTP/1.1\r\nHost: x\r\nAuthorization Bearer $M_BEARER\r\nConnection: close\r\n\r\n"
    raw "GET /tasks?access_token=$M_QUERY HTTP/1.1\r\nHost: x\r\n$a\r\n$t\r\nConnection: close\r\n\r\n"
    raw "POST /tasks HTTP/1.1\r\nHost: x\r\n$a\r\nContent-Length: $M_AMZTOK\r\n\r\n"
    raw "POST /tasks HTTP/1.1\r\nHost: x\r\n$t\r\nTransfer-Encoding: chunked\r\n\r\n$M_BEARER\r\n"
    raw "GET /tasks HTTP/1.1\nHost: x\n$a\n$t\nCookie: s=$M_COOKIE\nConnection: close\n\n"
    raw "GET /tasks HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n $a\r\nConnection: close\r\n\r\n"
    raw "GET /tasks HTTP/1.1\r\nHost: x\r\n$a\r\n$t\r\nX-Bad: \001\177\r\nConnection: close\r\n\r\n"
    # (one refused mid-write may lose its answer to a reset: not counted on)
    check "$label: raw requests answered ($RAW_OK of 7)" test "$RAW_OK" -ge 4
  fi
  # A header block over libmicrohttpd's per-connection memory: refused before any route.
  http GET /tasks -H "Authorization: Bearer $M_BEARER$(repeat_char z 70000)" \
    -H "X-Amz-Security-Token: $M_AMZTOK"
  check_match "$label huge Authorization header: refused or dropped" '^(000|4[0-9][0-9])$' "$STATUS"
}

serve_with() { # serve_with LABEL STORE-MODE ENV...
  local label=$1 mode=$2 e
  shift 2
  for e in "$@"; do export "${e?}"; done
  if serve_start; then
    pass
    serve_round "$label" "$mode"
    serve_stop TERM
    cp "$SERVE_LOG" "$LOGS/$(basename "$SERVE_LOG").err"
    cp "${SERVE_LOG%.log}.out" "$LOGS/$(basename "$SERVE_LOG").out"
    sed -i "s|^$SERVE_LOG |$LOGS/$(basename "$SERVE_LOG").err |" "$RIDS"
  else
    fail "$label: server starts"
  fi
  for e in "$@"; do unset "${e%%=*}"; done
}

section "--serve, SQLite, JSON/DEBUG"
export TASKHOST_MAX_BODY_BYTES=2048
serve_with "serve JSON/DEBUG" sqlite TASKHOST_STORE="sqlite:$TMP/serve.db" \
  AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=DEBUG
section "--serve, SQLite, Text/TRACE"
serve_with "serve Text/TRACE" sqlite TASKHOST_STORE="sqlite:$TMP/serve.db" \
  AWS_LAMBDA_LOG_FORMAT=Text TASKHOST_LOG_LEVEL=TRACE
section "--serve, DynamoDB endpoint quoting the signed headers, JSON/DEBUG and Text/DEBUG"
serve_with "serve ddb JSON" ddb "${DDB_ENV[@]}" AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$QPORT" \
  AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=DEBUG
serve_with "serve ddb Text" ddb "${DDB_ENV[@]}" AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$QPORT" \
  AWS_LAMBDA_LOG_FORMAT=Text AWS_LAMBDA_LOG_LEVEL=DEBUG
unset TASKHOST_MAX_BODY_BYTES
export TASKHOST_STORE="sqlite:$TMP/local.db"

# ---- the Lambda loop -------------------------------------------------------------

section "--lambda (Runtime API loop), JSON/DEBUG and Text/TRACE"
lambda_round() { # lambda_round LABEL ENV...
  local label=$1 v c n=0
  shift
  NRUN=$((NRUN + 1))
  local q="$TMP/queue.$NRUN.jsonl"
  : >"$q"
  for v in v1 v2; do
    for c in create badjson 415 nopath boom absent 405; do
      n=$((n + 1))
      printf '{"event_file":"%s","request_id":"lambda-%d-%d-%s"}\n' "$EV/$v.$c.json" "$NRUN" "$n" "$(hex 4)" >>"$q"
    done
  done
  jq -c -n --arg b "Bearer $M_BEARER" --arg t "$M_AMZTOK" --arg r "lambda-$NRUN-bad-$(hex 4)" \
    '{event: {headers: {authorization: $b, "x-amz-security-token": $t}, requestContext: {}},
      request_id: $r}' >>"$q"
  rapi_start --queue "$q" --on-drain status:500 || { fail "$label: Runtime API server starts"; return; }
  env "$@" bash -c 'AWS_LAMBDA_RUNTIME_API="127.0.0.1:$1" exec "$2" </dev/null' _ "$RAPI_PORT" \
    "$TASKHOST_BIN" >"$LOGS/lambda.$NRUN.out" 2>"$LOGS/lambda.$NRUN.err"
  check_eq "$label: the loop ends when next is refused (exit 1)" 1 "$?"
  rapi_stop
  check_eq "$label: $((n + 1)) invocations answered" $((n + 1)) \
    "$(jq -s '[.[] | select(.kind == "response" or .kind == "error")] | length' "$RAPI_REC")"
  check_eq "$label: the invalid event is an /error" 1 "$(jq -s '[.[] | select(.kind == "error")] | length' "$RAPI_REC")"
  jq -r --arg f "$LOGS/lambda.$NRUN.err" 'select(.kind == "response") | "\($f) \(.request_id)"' \
    "$RAPI_REC" >>"$RIDS"
  # What the loop posts back (responses, the /error document) is output too.
  jq -r 'select(.kind == "response" or .kind == "error" or .kind == "init_error") | .body' \
    "$RAPI_REC" >"$LOGS/lambda.$NRUN.posted.out"
}
lambda_round "lambda JSON/DEBUG" AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=DEBUG
lambda_round "lambda Text/TRACE" AWS_LAMBDA_LOG_FORMAT=Text TASKHOST_LOG_LEVEL=TRACE
check "lambda: the DEBUG 'invocation' line is written" grep -qh 'invocation' "$LOGS"/lambda.*.err

# ---- start-up failures ---------------------------------------------------------------

section "start-up failures with a secret in the invalid value"
startup_fail() { # startup_fail NAME VAR-NAMING-REGEX ENV...
  local name=$1 re=$2
  shift 2
  NRUN=$((NRUN + 1))
  env "${DDB_ENV[@]}" AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$CLOSED" TASKHOST_LOG_LEVEL=TRACE \
    "$@" "$TASKHOST_BIN" --check >"$LOGS/startup.$NRUN.out" 2>"$LOGS/startup.$NRUN.err"
  check_eq "$name: exit 1" 1 "$?"
  check_match "$name: names the variable" "$re" "$(cat "$LOGS/startup.$NRUN.err")"
}
startup_fail "secret key with a space" AWS_SECRET_ACCESS_KEY AWS_SECRET_ACCESS_KEY="$M_SECRET x"
startup_fail "secret key with a control character" AWS_SECRET_ACCESS_KEY AWS_SECRET_ACCESS_KEY="$M_SECRET"$'\x01'
startup_fail "session token with a space" AWS_SESSION_TOKEN AWS_SESSION_TOKEN="$M_STOKEN x"
startup_fail "session token too long" AWS_SESSION_TOKEN AWS_SESSION_TOKEN="$M_STOKEN$(repeat_char t 20000)"
startup_fail "access key id with a slash" AWS_ACCESS_KEY_ID AWS_ACCESS_KEY_ID="$M_AKID/x"
startup_fail "endpoint with a password" AWS_ENDPOINT_URL_DYNAMODB \
  AWS_ENDPOINT_URL_DYNAMODB="http://user:$M_SECRET@127.0.0.1:1/path"
startup_fail "endpoint (all services) with a password" AWS_ENDPOINT_URL \
  AWS_ENDPOINT_URL_DYNAMODB= AWS_ENDPOINT_URL="https://$M_SECRET@127.0.0.1:1/?x=1"
NRUN=$((NRUN + 1))
env "${DDB_ENV[@]}" AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$CLOSED" TASKHOST_LOG_LEVEL=TRACE \
  "$TASKHOST_BIN" --check >"$LOGS/startup.$NRUN.out" 2>"$LOGS/startup.$NRUN.err"
check_eq "--check with valid secrets at TRACE: exit 0" 0 "$?"

# ---- the verdict ---------------------------------------------------------------------

section "no secret in any output; the logs are really there"
kill "$QUOTING_PID" 2>/dev/null
wait "$QUOTING_PID" 2>/dev/null
nfiles=$(find "$LOGS" -type f | wc -l)
nlines=$(cat "$LOGS"/* | wc -l)
echo "   $nfiles outputs of $NRUN runs and 4 servers, $nlines lines"
for m in "${SECRETS[@]}"; do
  # the whole marker, and its first 14 characters (a secret cut short)
  for needle in "$m" "${m:0:14}"; do
    hits=$(grep -rlF -- "$needle" "$LOGS" | sed "s|^$LOGS/||" | tr '\n' ' ')
    check_eq "no '$needle' in any output" "" "$hits"
    if [ -n "$hits" ]; then
      grep -rhF -- "$needle" "$LOGS" | head -3 | cut -c1-400 | sed 's/^/      /'
    fi
  done
done
for needle in "$M_BODY" "${M_BODY:0:14}"; do
  hits=$(grep -lF -- "$needle" "$LOGS"/*.err | sed "s|^$LOGS/||" | tr '\n' ' ')
  check_eq "no request body ('$needle') in any log" "" "$hits"
done
# The statuses of the --local runs, all at once (one jq).
mapfile -t outs < <(cut -d' ' -f1 "$RESULTS")
jq -r '"\(input_filename) \(.statusCode) \(.headers["X-Request-Id"] // "-")"' \
  "${outs[@]}" >"$TMP/got" 2>/dev/null
declare -A GOT=()
while read -r gfile gstatus grid; do GOT[$gfile]="$gstatus $grid"; done <"$TMP/got"
bad=0
while read -r file want name; do
  read -r gstatus grid <<<"${GOT[$file]:-}"
  if [ "${gstatus:-}" != "$want" ]; then
    bad=$((bad + 1))
    echo "FAIL: $name: expected HTTP $want, got ${gstatus:-no proxy response} ($file)"
  fi
  [ "${grid:--}" != - ] && echo "${file%.out}.err $grid" >>"$RIDS"
done <"$RESULTS"
check_eq "$(wc -l <"$RESULTS") --local runs answered with the expected status" 0 "$bad"
missing=0
while read -r file rid; do
  grep -qF -- "$rid" "$file" || { missing=$((missing + 1)); echo "      request id $rid not in $file"; }
done <"$RIDS"
check_eq "every request id a route saw ($(wc -l <"$RIDS")) is in its log" 0 "$missing"
check "at least 150 request ids checked" test "$(wc -l <"$RIDS")" -ge 150

finish
