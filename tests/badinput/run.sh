#!/usr/bin/env bash
# tests/badinput/run.sh [CASES_FILE] — the bad-input matrix: hostile requests
# from a table (cases.txt), each sent through taskhost --local (API Gateway
# events, payload 1.0 and/or 2.0) and/or --serve (curl; raw bytes over a
# socket for malformed HTTP). Every one must get a 4xx whose body is a JSON
# object with a non-empty "message" (and the field/message the row names),
# never a 5xx, never a crash: --local exits 0 with a proxy response, and the
# server still answers GET /tasks after each case and exits 0 on SIGTERM at
# the end. Rows marked `mhd` are answered by libmicrohttpd itself before
# taskhost sees them (malformed HTTP): its status is checked and the server's
# survival, not the body (libmicrohttpd writes HTML there; see the README of
# this folder). At the end, every event sent to --local goes through the
# Lambda Runtime API loop too, and every line taskhost wrote on stderr in the
# three modes must be strict UTF-8 JSON with the core log fields
# (tests/e2e/log_lines.py). Prints "N passed, N failed".
#
# Environment as for tests/e2e (TASKHOST_BIN, ROUTES_DIR, SOURCE_DIR): run by
# CTest, or by hand: TASKHOST_BIN=build/taskhost bash tests/badinput/run.sh
# BADINPUT_ONLY=REGEX runs only the rows whose name matches.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../e2e/lib.sh"
source "$SOURCE_DIR/tests/lambda/lib.sh"
unset AWS_LAMBDA_RUNTIME_API _X_AMZN_TRACE_ID
SHOW_LAST=0
CASES=${1:-$here/cases.txt}
HELPERS="$here/helpers.py"
PY=${PYTHON:-python3}

# One store for --local and --serve, and a configured cursor secret, so
# cursors issued here open in both and forged ones (default secret) do not.
export TASKHOST_STORE="sqlite:$TMP/bad.db"
export TASKHOST_CURSOR_SECRET="badinput-cursor-secret"
export TASKHOST_LOG_LEVEL=INFO # the request records carry the path
LOCAL_MAX_BODY=6291456 # --local: large enough that 5 MB reaches the JSON parser

serve_start || { fail "server starts"; finish; }

# ---- fixtures: tasks, real cursors, foreign and forged cursors ----------------
mk_task() { curl -s -X POST "$BASE_URL/tasks" -H 'Content-Type: application/json' -d "{\"task\":\"$1\"}" | jq -r .id; }
ID=$(mk_task one)
mk_task two >/dev/null
mk_task three >/dev/null
CURSOR=$(curl -s "$BASE_URL/tasks?limit=1" | jq -r .next)
[[ $ID =~ $UUID_RE ]] && [ -n "$CURSOR" ] && [ "$CURSOR" != null ] || { fail "fixtures" "id=$ID cursor=$CURSOR"; finish; }
# from another table (another SQLite file), same secret: --local on other.db
printf '{"version":"2.0","rawPath":"/tasks","rawQueryString":"","requestContext":{"http":{"method":"POST","path":"/tasks"}},"headers":{"content-type":"application/json"},"body":"{\\"task\\":\\"x\\"}"}' >"$TMP/c.json"
for _ in 1 2; do TASKHOST_STORE="sqlite:$TMP/other.db" "$TASKHOST_BIN" --local "$TMP/c.json" >/dev/null 2>&1; done
printf '{"version":"2.0","rawPath":"/tasks","rawQueryString":"limit=1","requestContext":{"http":{"method":"GET","path":"/tasks"}}}' >"$TMP/l.json"
CURSOR_OTHER=$(TASKHOST_STORE="sqlite:$TMP/other.db" "$TASKHOST_BIN" --local "$TMP/l.json" 2>/dev/null | jq -r '.body | fromjson | .next')
[ -n "$CURSOR_OTHER" ] && [ "$CURSOR_OTHER" != null ] || { fail "foreign cursor" "$CURSOR_OTHER"; finish; }
IDENTITY="sqlite:$(cd "$TMP" && pwd -P)/bad.db"
# sealed for this very store and key, but with the built-in default secret
CURSOR_FORGED=$("$PY" "$HELPERS" cursor taskhost-default-cursor-secret "$IDENTITY" public "$ID")
# sealed with the right secret over the right key, for the wrong identity
CURSOR_WRONGID=$("$PY" "$HELPERS" cursor "$TASKHOST_CURSOR_SECRET" "dynamodb:tasks" public "$ID")
# sealed with the right secret, for this store, for another owner (auth off: the owner is public)
CURSOR_OWNER=$("$PY" "$HELPERS" cursor "$TASKHOST_CURSOR_SECRET" "$IDENTITY" someone-else "$ID")
CURSOR_TAMPERED=$("$PY" "$HELPERS" tamper "$CURSOR")
# sanity: the real cursor opens, a cursor sealed here with the real secret too
check_eq "a real cursor is accepted" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/tasks?limit=1&next=$CURSOR")"
CURSOR_SELF=$("$PY" "$HELPERS" cursor "$TASKHOST_CURSOR_SECRET" "$IDENTITY" public "$ID")
check_eq "a cursor sealed by helpers.py with the real secret is accepted (the forgeries are meaningful)" \
  200 "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/tasks?limit=1&next=$CURSOR_SELF")"

# ---- generated bodies -----------------------------------------------------------
GEN="$TMP/gen"
mkdir -p "$GEN"
# gen NAME: prints the path of a generated body file (made on first use)
gen() {
  local f="$GEN/$1"
  if [ ! -f "$f" ]; then
    case $1 in
      empty) : >"$f" ;;
      nested100k) head -c 100000 /dev/zero | tr '\0' '[' >"$f" ;;
      nested60k) head -c 60000 /dev/zero | tr '\0' '[' >"$f" ;;
      nestedobj20k) { for _ in $(seq 1 20000); do printf '{"a":'; done; } >"$f" ;;
      nested65) { printf '{"task":'; for _ in $(seq 1 65); do printf '['; done; printf '1'; for _ in $(seq 1 65); do printf ']'; done; printf '}'; } >"$f" ;;
      nested70obj) { for _ in $(seq 1 70); do printf '{"task":'; done; printf '"x"'; for _ in $(seq 1 70); do printf '}'; done; } >"$f" ;;
      huge5m) { printf '{"task":"'; head -c 5242880 /dev/zero | tr '\0' 'a'; printf '"}'; } >"$f" ;;
      huge5m_junk) head -c 5242880 /dev/urandom >"$f" ;;
      huge3m_junk) head -c 3145728 /dev/urandom >"$f" ;;
      huge4m) { printf '{"task":"'; head -c 4194304 /dev/zero | tr '\0' 'a'; printf '"}'; } >"$f" ;;
      big64k) { printf '{"task":"'; head -c 66000 /dev/zero | tr '\0' 'b'; printf '"}'; } >"$f" ;;
      task1001) { printf '{"task":"'; head -c 1001 /dev/zero | tr '\0' 'c'; printf '"}'; } >"$f" ;;
      task1001emoji) { printf '{"task":"'; for _ in $(seq 1 1001); do printf '\xf0\x9f\x98\x80'; done; printf '"}'; } >"$f" ;;
      manykeys) { printf '{"task":"x"'; for i in $(seq 1 3000); do printf ',"k%d":1' "$i"; done; printf '}'; } >"$f" ;;
      longkey) { printf '{"'; head -c 50000 /dev/zero | tr '\0' 'k'; printf '":1}'; } >"$f" ;;
      bignum) { printf '{"task":"x","priority":'; head -c 40000 /dev/zero | tr '\0' '9'; printf '}'; } >"$f" ;;
      spaces60k) { printf '{"task":"'; head -c 60000 /dev/zero | tr '\0' ' '; printf '"}'; } >"$f" ;;
      dupkeys) { printf '{'; for i in $(seq 1 2000); do printf '"task":"%d",' "$i"; done; printf '"task":1}'; } >"$f" ;;
      q30k) { printf 'pad='; head -c 30000 /dev/zero | tr '\0' 'q'; printf '&limit=-1'; } >"$f" ;;
      q800p) { for i in $(seq 1 800); do printf 'p%d=xxxxx&' "$i"; done; printf 'limit=-1'; } >"$f" ;;
      path_e200) { printf '/tasks/a'; for _ in $(seq 1 200); do printf '\xc3\xa9'; done; } >"$f" ;;
      path_e200b) { printf '/tasks/'; for _ in $(seq 1 200); do printf '\xc3\xa9'; done; } >"$f" ;;
      q3000p) { for i in $(seq 1 3000); do printf 'p%d=xxxxx&' "$i"; done; printf 'limit=-1'; } >"$f" ;;
      q100k) { for i in $(seq 1 10000); do printf 'p%d=xxxxx&' "$i"; done; printf 'limit=-1'; } >"$f" ;;
      # The longest cursor (4290 characters, runtime/cursor.h), sealed with the real
      # secret over a key longer than any id (3200 bytes): read, opened, refused by the store.
      qnext_longest) { printf 'next='; "$PY" "$HELPERS" cursor "$TASKHOST_CURSOR_SECRET" "$IDENTITY" public \
        "$(head -c 3200 /dev/zero | tr '\0' 'k')"; } | tr -d '\n' >"$f" ;;
      qnext_over) { printf 'next='; head -c 4291 /dev/zero | tr '\0' 'A'; } >"$f" ;;
      *) echo "run.sh: unknown generator $1" >&2; return 1 ;;
    esac
  fi
  printf '%s' "$f"
}

# expand TEXT: substitutes ${NAME} placeholders (only the variables above)
expand() {
  local s=$1 v
  for v in ID CURSOR CURSOR_OTHER CURSOR_FORGED CURSOR_WRONGID CURSOR_OWNER CURSOR_TAMPERED ABSENT_ID; do
    s=${s//\$\{$v\}/${!v}}
  done
  printf '%s' "$s"
}

# body_file SPEC OUT: writes the body bytes; returns 1 for "-" (no body)
body_file() {
  local spec=$1 out=$2
  case $spec in
    -) return 1 ;;
    @*) cp "$(gen "${spec#@}")" "$out" ;;
    *) printf '%b' "$(expand "$spec")" >"$out" ;;
  esac
}

# check_answer NAME STATUS BODY_FILE EXPECT: the common verdict.
# check_answer NAME STATUS BODY_FILE EXPECT OURS: the common verdict. OURS is
# 1 when the answer carries taskhost's headers (nosniff), 0 when
# libmicrohttpd wrote it itself (allowed only where the row says mhd:STATUS).
check_answer() {
  local name=$1 status=$2 body=$3 expect=$4 ours=${5:-1}
  local want=${expect%% *} rest="" ok=1 why="" alt matched="" mhd=0
  [ "$want" != "$expect" ] && rest=${expect#* }
  # alternatives: NNN, 4xx, mhd:NNN (libmicrohttpd's own answer: body not checked)
  local IFS_OLD=$IFS
  IFS='|'
  for alt in $want; do
    case $alt in
      mhd:*) [ "$ours" = 0 ] && [ "$status" = "${alt#mhd:}" ] && { matched=$alt; mhd=1; break; } ;;
      4xx) [ "$ours" = 1 ] && [[ $status == 4?? ]] && { matched=$alt; break; } ;;
      *) [ "$ours" = 1 ] && [ "$status" = "$alt" ] && { matched=$alt; break; } ;;
    esac
  done
  IFS=$IFS_OLD
  if [ -z "$matched" ]; then
    ok=0 why="status $status, expected $want"
    [ "$ours" = 0 ] && why+=" (an answer from libmicrohttpd itself, without taskhost's headers)"
  elif [[ $status == 5?? ]] && [ "$mhd" = 0 ]; then
    ok=0 why="a 5xx"
  elif [ "$mhd" = 0 ]; then
    if ! jq -e 'type == "object" and (.message | type == "string" and length > 0)' "$body" >/dev/null 2>&1; then
      ok=0 why="body is not a JSON object with a message: $(head -c 200 "$body" | tr -d '\0')"
    else
      local t
      for t in $rest; do
        case $t in
          field=*) jq -e --arg f "${t#field=}" '.field == $f' "$body" >/dev/null 2>&1 ||
            { ok=0 why="field is not ${t#field=}: $(head -c 200 "$body")"; } ;;
          msg=*) jq -e --arg re "${t#msg=}" '.message | test($re)' "$body" >/dev/null 2>&1 ||
            { ok=0 why="message does not match /${t#msg=}/: $(head -c 200 "$body")"; } ;;
        esac
      done
    fi
  fi
  if [ "$ok" = 1 ]; then pass; else fail "$name" "$why"; fi
}

# ---- --local ---------------------------------------------------------------------
# Each run's stderr and event are kept: at the end the events go through the
# Lambda loop, and every log line of every mode is checked.
KEPT="$TMP/kept"
mkdir -p "$KEPT"
NKEPT=0
keep_run() { # keep_run CASE_DIR
  NKEPT=$((NKEPT + 1))
  cp "$1/err" "$KEPT/local.$NKEPT.err"
  cp "$1/event.json" "$KEPT/event.$NKEPT.json"
}

run_local_case() {
  local ver=$1 name=$2 method=$3 path=$4 query=$5 headers=$6 body=$7 expect=$8 b64=${9:-}
  local d="$TMP/case"
  rm -rf "$d" && mkdir -p "$d"
  case $path in
    @*) cp "$(gen "${path#@}")" "$d/path" ;;
    *) printf '%b' "$(expand "$path")" >"$d/path" ;;
  esac
  case $query in
    -) : >"$d/query" ;;
    @*) cp "$(gen "${query#@}")" "$d/query" ;;
    *) printf '%b' "$(expand "$query")" >"$d/query" ;;
  esac
  : >"$d/headers"
  local hb="-" has_ct=0 noct=0 h
  if [ "$headers" != - ]; then
    local IFS_OLD=$IFS
    IFS=$'\037'
    for h in ${headers//;;/$'\037'}; do
      h=$(sed 's/^ *//; s/ *$//' <<<"$h")
      [ "$h" = '!noct' ] && { noct=1; continue; }
      [[ ${h,,} == content-type:* ]] && has_ct=1
      printf '%b\n' "$(expand "$h")" >>"$d/headers"
    done
    IFS=$IFS_OLD
  fi
  if body_file "$body" "$d/body"; then
    hb="$d/body"
    [ "$has_ct" = 0 ] && [ "$noct" = 0 ] && echo "Content-Type: application/json" >>"$d/headers"
  fi
  "$PY" "$HELPERS" event "$ver" "$method" "$d/path" "$d/query" "$d/headers" "$hb" $b64 >"$d/event.json" ||
    { fail "$name" "cannot build the event"; return; }
  TASKHOST_MAX_BODY_BYTES=$LOCAL_MAX_BODY timeout 60 "$TASKHOST_BIN" --local "$d/event.json" >"$d/out" 2>"$d/err"
  local rc=$?
  keep_run "$d"
  if [ "$rc" -ne 0 ]; then
    fail "$name" "taskhost --local exit $rc: $(tail -c 300 "$d/err")"
    return
  fi
  local status
  status=$(jq -r '.statusCode' "$d/out" 2>/dev/null)
  jq -j '.body' "$d/out" >"$d/rbody" 2>/dev/null
  jq -e '(.headers["Access-Control-Allow-Origin"] | type == "string") and .headers["X-Content-Type-Options"] == "nosniff"' \
    "$d/out" >/dev/null 2>&1 || { fail "$name" "CORS or nosniff header missing"; return; }
  check_answer "$name" "$status" "$d/rbody" "$expect"
}

# an event given whole (printf %b text in the body column)
run_event_case() {
  local name=$1 spec=$2 expect=$3 d="$TMP/case"
  rm -rf "$d" && mkdir -p "$d"
  printf '%b' "$(expand "$spec")" >"$d/event.json"
  TASKHOST_MAX_BODY_BYTES=$LOCAL_MAX_BODY timeout 60 "$TASKHOST_BIN" --local "$d/event.json" >"$d/out" 2>"$d/err"
  local rc=$?
  keep_run "$d"
  if [ "$rc" -ne 0 ]; then
    fail "$name" "taskhost --local exit $rc: $(tail -c 300 "$d/err")"
    return
  fi
  jq -j '.body' "$d/out" >"$d/rbody" 2>/dev/null
  check_answer "$name" "$(jq -r '.statusCode' "$d/out" 2>/dev/null)" "$d/rbody" "$expect"
}

# ---- --serve: curl ---------------------------------------------------------------
server_alive() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE_URL/tasks?limit=1")
  [ "$code" = 200 ]
}

run_serve_case() {
  local name=$1 method=$2 path=$3 query=$4 headers=$5 body=$6 expect=$7
  local d="$TMP/case"
  rm -rf "$d" && mkdir -p "$d"
  local url args=(-s --path-as-is --max-time 60 -o "$d/rbody" -D "$d/rhead" -w '%{http_code}')
  case $path in
    @*) url="$BASE_URL$(cat "$(gen "${path#@}")")" ;;
    *) url="$BASE_URL$(expand "$path")" ;;
  esac
  case $query in
    -) ;;
    @*) url+="?$(cat "$(gen "${query#@}")")" ;;
    *) url+="?$(expand "$query")" ;;
  esac
  case $method in
    HEAD) args+=(-I) ;;
    *) args+=(-X "$method") ;;
  esac
  local has_ct=0 noct=0 chunked=0 h
  if [ "$headers" != - ]; then
    local IFS_OLD=$IFS
    IFS=$'\037'
    for h in ${headers//;;/$'\037'}; do
      h=$(sed 's/^ *//; s/ *$//' <<<"$h")
      [ "$h" = '!noct' ] && { noct=1; continue; }
      [[ ${h,,} == content-type:* ]] && has_ct=1
      [[ ${h,,} == transfer-encoding:*chunked* ]] && chunked=1
      if [[ $h == @* ]]; then # @N: N bytes of header value (X-Big)
        printf 'X-Big: %s\r\n' "$(head -c "${h#@}" /dev/zero | tr '\0' 'h')" >"$d/hfile"
        args+=(-H "@$d/hfile")
      else
        args+=(-H "$(expand "$h")")
      fi
    done
    IFS=$IFS_OLD
  fi
  if body_file "$body" "$d/body"; then
    args+=(--data-binary "@$d/body")
    [ "$has_ct" = 0 ] && [ "$noct" = 0 ] && args+=(-H 'Content-Type: application/json')
    [ "$noct" = 1 ] && [ "$has_ct" = 0 ] && args+=(-H 'Content-Type:')
  fi
  local status
  status=$(curl "${args[@]}" "$url")
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$status" = 000 ]; then
    # "none" in the expectation: no answer is what libmicrohttpd does here
    if [[ "|${expect%% *}|" == *"|none|"* ]]; then pass; else fail "$name" "curl exit $rc, no answer"; fi
  else
    [ -f "$d/rbody" ] || : >"$d/rbody"
    local ours=0
    grep -qi '^x-content-type-options: nosniff' "$d/rhead" && ours=1
    if [ "$ours" = 1 ] && ! grep -qi '^access-control-allow-origin: ' "$d/rhead"; then
      fail "$name" "CORS header missing (status $status)"
    else
      check_answer "$name" "$status" "$d/rbody" "$expect" "$ours"
    fi
  fi
  server_alive || { fail "$name: the server still answers afterwards"; serve_restart; }
}

# ---- --serve: raw bytes over a socket (bash /dev/tcp) ------------------------------
run_raw_case() {
  local name=$1 bytes=$2 expect=$3
  local d="$TMP/case"
  rm -rf "$d" && mkdir -p "$d"
  printf '%b' "$(expand "$bytes")" >"$d/req"
  # send, half-close is not possible with /dev/tcp: read until the server
  # closes or 5 s pass
  (
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    cat "$d/req" >&3
    timeout 5 cat <&3 >"$d/resp"
    exec 3<&-
  ) 2>/dev/null
  local status
  status=$(head -c 64 "$d/resp" 2>/dev/null | head -1 | tr -d '\r' | awk '{print $2}')
  [ -n "$status" ] || status=none
  # the body: after the first blank line
  awk 'BEGIN{RS="\r\n\r\n"} NR==2{printf "%s", $0; exit}' "$d/resp" >"$d/rbody" 2>/dev/null
  # "none" in the expectation: no answer at all is acceptable (the server
  # closed the connection)
  local ours=0
  grep -qai '^x-content-type-options: nosniff' "$d/resp" && ours=1
  if [ "$status" = none ] && [[ "|${expect%% *}|" == *"|none|"* ]]; then
    pass
  else
    check_answer "$name" "$status" "$d/rbody" "$expect" "$ours"
  fi
  server_alive || { fail "$name: the server still answers afterwards"; serve_restart; }
}

serve_restart() {
  echo "      (server log tail:)" && tail -5 "$SERVE_LOG"
  [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
  serve_start "$PORT" || serve_start
}

# ---- the table ---------------------------------------------------------------------
section "cases from $(basename "$CASES")"
ncase=0
while IFS= read -r line || [ -n "$line" ]; do
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  # via | method | path | query | headers | body | expect | name
  IFS=$'\036' read -r via method path query headers body expect name <<<"${line// | /$'\036'}"
  trim() { sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"$1"; }
  via=$(trim "$via") method=$(trim "$method") path=$(trim "$path") query=$(trim "$query")
  headers=$(trim "$headers") body=$(trim "$body") expect=$(trim "$expect") name=$(trim "$name")
  if [ -n "${BADINPUT_ONLY:-}" ] && [[ ! $name =~ $BADINPUT_ONLY ]]; then continue; fi
  ncase=$((ncase + 1))
  b64=""
  case $via in
    *+b64) b64=b64 via=${via%+b64} ;;
    *+b64raw) b64=b64raw via=${via%+b64raw} ;;
  esac
  case $via in
    all) run_local_case v1 "[v1] $name" "$method" "$path" "$query" "$headers" "$body" "$expect" $b64
         run_local_case v2 "[v2] $name" "$method" "$path" "$query" "$headers" "$body" "$expect" $b64
         run_serve_case "[serve] $name" "$method" "$path" "$query" "$headers" "$body" "$expect" ;;
    local) run_local_case v1 "[v1] $name" "$method" "$path" "$query" "$headers" "$body" "$expect" $b64
           run_local_case v2 "[v2] $name" "$method" "$path" "$query" "$headers" "$body" "$expect" $b64 ;;
    v1|v2) run_local_case "$via" "[$via] $name" "$method" "$path" "$query" "$headers" "$body" "$expect" $b64 ;;
    serve) run_serve_case "[serve] $name" "$method" "$path" "$query" "$headers" "$body" "$expect" ;;
    raw) run_raw_case "[raw] $name" "$body" "$expect" ;;
    event) run_event_case "[event] $name" "$body" "$expect" ;;
    *) fail "$name" "unknown via '$via'" ;;
  esac
done <"$CASES"
echo "($ncase rows)"

section "afterwards"
check "the server still answers" server_alive
check_eq "the task created first is intact" "one" "$(curl -s "$BASE_URL/tasks/$ID" | jq -r .task)"
# Every request ended, whatever libmicrohttpd did with it: nothing is left
# in flight (shutdown would wait 10 s for it, then log "stopping now" with
# reason "drain time over").
t0=$(date +%s%3N)
serve_stop TERM
check "the server stops within 5 s of SIGTERM ($(($(date +%s%3N) - t0)) ms)" test $(($(date +%s%3N) - t0)) -lt 5000
if grep -q '"stopping now' "$SERVE_LOG"; then
  fail "no request left in flight at shutdown" "$(grep -m1 'stopping now' "$SERVE_LOG")"
else
  pass
fi
if grep -q 'AddressSanitizer\|runtime error:\|LeakSanitizer' "$SERVE_LOG"; then
  fail "no sanitizer report in the server log" "$(grep -m3 'Sanitizer\|runtime error' "$SERVE_LOG")"
else
  pass
fi

section "the same events through the Lambda loop; every log line of every mode"
Q="$TMP/lambda.jsonl"
: >"$Q"
for ((i = 1; i <= NKEPT; i++)); do
  printf '{"event_file":"%s","request_id":"badinput-%d"}\n' "$KEPT/event.$i.json" "$i" >>"$Q"
done
if rapi_start --queue "$Q" --on-drain status:500; then
  AWS_LAMBDA_RUNTIME_API="127.0.0.1:$RAPI_PORT" TASKHOST_MAX_BODY_BYTES=$LOCAL_MAX_BODY \
    "$TASKHOST_BIN" </dev/null >"$TMP/lambda.out" 2>"$TMP/lambda.err"
  check_eq "Lambda: the loop ends when next is refused (exit 1)" 1 "$?"
  rapi_stop
  check_eq "Lambda: all $NKEPT events answered as responses" "$NKEPT" \
    "$(jq -s '[.[] | select(.kind == "response")] | length' "$RAPI_REC")"
else
  fail "Lambda: the Runtime API test server starts"
fi
# --local, every server started (serve_restart makes new ones), Lambda
summary=$("$PY" "$SOURCE_DIR/tests/e2e/log_lines.py" check "$KEPT"/local.*.err "$TMP"/serve.*.log \
  "$TMP/lambda.err" 2>"$TMP/lines.err")
if [ $? -eq 0 ]; then pass; else fail "every log line is strict UTF-8 JSON with the core fields" "$(head -c 3000 "$TMP/lines.err")"; fi
echo "   $summary"
check "the request records were checked ($(jq .request_records <<<"$summary"))" \
  test "$(jq .request_records <<<"$summary")" -ge $((NKEPT * 2))
check "paths holding U+FFFD were logged ($(jq .replacement_in_path <<<"$summary"))" \
  test "$(jq .replacement_in_path <<<"$summary")" -ge 6
check "paths cut on a character boundary were logged ($(jq .path_bytes <<<"$summary"))" \
  test "$(jq .path_bytes <<<"$summary")" -ge 6
finish
