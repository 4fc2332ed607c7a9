# tests/lambda/lib.sh — helpers for the Lambda Runtime API loop tests.
# Sourced after tests/e2e/lib.sh (which gives $TMP, check*, event, expect).
#
#   rapi_start [--dynamic] [server args...]   starts runtime_api_server.py on
#                                 a free loopback port; sets RAPI_PID RAPI_PORT
#                                 RAPI_DIR RAPI_REC (its JSONL record); with
#                                 --dynamic, `next` takes specs dropped into
#                                 RAPI_QDIR (see lambda_send)
#   rapi_stop                     stops it (SIGTERM) and waits
#   rt_start [cmd prefix...]      starts taskhost (no arguments, as Lambda
#                                 does) against it; sets RT_PID RT_LOG RT_START_MS
#   rt_wait SECONDS               waits for taskhost to exit: RT_RC (124 when
#                                 it did not, and then it is killed), RT_MS
#   rt_term [SECONDS]             SIGTERM, then rt_wait; RT_TERM_MS: ms to exit
#   wait_record JQ-FILTER [SECONDS]   waits until a record matches
#   records JQ-FILTER             the matching records (compact JSON lines)
#   lambda_send SPEC-JSON         drops a spec into the queue dir, waits for
#                                 the runtime's answer: KIND (response|error)
#                                 REC (the record) OUT (its body) STATUS BODY
#   lambda_api v1|v2 METHOD PATH [event options]   event → lambda_send; also
#                                 sets RC (0 for a response) for `expect`

RAPI_PY="$SOURCE_DIR/tests/lambda/runtime_api_server.py"
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
RAPI_PID=""
RT_PID=""
RAPI_N=0
LAMBDA_SEQ=0

ms_now() { date +%s%3N; }

_lambda_cleanup() {
  local p
  for p in "$RT_PID" "$RAPI_PID"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      kill -KILL "$p" 2>/dev/null
      wait "$p" 2>/dev/null
    fi
  done
  _cleanup
}
trap _lambda_cleanup EXIT

rapi_start() {
  RAPI_N=$((RAPI_N + 1))
  local dir="$TMP/rapi.$RAPI_N"
  mkdir -p "$dir/queue"
  RAPI_DIR=$dir
  RAPI_REC="$dir/record.jsonl"
  RAPI_QDIR="$dir/queue"
  : >"$RAPI_REC"
  local extra=()
  if [ "${1:-}" = --dynamic ]; then
    shift
    extra=(--queue-dir "$RAPI_QDIR")
  fi
  "$PYTHON" "$RAPI_PY" --port-file "$dir/port" --record "$RAPI_REC" --timeout 900 \
    "${extra[@]}" "$@" 2>"$dir/server.log" &
  RAPI_PID=$!
  local i
  for i in $(seq 1 100); do
    [ -s "$dir/port" ] && break
    kill -0 "$RAPI_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ ! -s "$dir/port" ]; then
    echo "rapi_start: the test server did not start:" >&2
    cat "$dir/server.log" >&2
    RAPI_PID=""
    return 1
  fi
  RAPI_PORT=$(cat "$dir/port")
}

rapi_stop() {
  [ -n "$RAPI_PID" ] || return 0
  kill -TERM "$RAPI_PID" 2>/dev/null
  wait "$RAPI_PID" 2>/dev/null
  RAPI_PID=""
}

# rt_start [PREFIX...]: PREFIX runs the binary (e.g. valgrind ...).
rt_start() {
  RT_LOG="$TMP/rt.$RAPI_N.log"
  RT_START_MS=$(ms_now)
  AWS_LAMBDA_RUNTIME_API="127.0.0.1:$RAPI_PORT" "$@" "$TASKHOST_BIN" </dev/null \
    >"$TMP/rt.$RAPI_N.out" 2>"$RT_LOG" &
  RT_PID=$!
}

rt_wait() {
  local limit=${1:-10} t0 i
  t0=$(ms_now)
  RT_RC=124
  for i in $(seq 1 $((limit * 50))); do
    kill -0 "$RT_PID" 2>/dev/null || break
    sleep 0.02
  done
  if kill -0 "$RT_PID" 2>/dev/null; then
    kill -KILL "$RT_PID" 2>/dev/null
    wait "$RT_PID" 2>/dev/null
  else
    wait "$RT_PID" 2>/dev/null
    RT_RC=$?
  fi
  RT_MS=$(($(ms_now) - t0))
  RT_PID=""
}

rt_term() {
  local t0
  t0=$(ms_now)
  kill -TERM "$RT_PID" 2>/dev/null
  rt_wait "${1:-10}"
  RT_TERM_MS=$(($(ms_now) - t0))
}

records() { jq -c "select($1)" "$RAPI_REC" 2>/dev/null; }

wait_record() {
  local filter=$1 limit=${2:-20} i
  local gone=0
  for i in $(seq 1 $((limit * 50))); do
    if [ -n "$(jq -c "select($filter)" "$RAPI_REC" 2>/dev/null | head -1)" ]; then
      return 0
    fi
    # the runtime has exited: one last look, then give up
    [ "$gone" = 1 ] && return 1
    if [ -n "$RT_PID" ] && ! kill -0 "$RT_PID" 2>/dev/null; then gone=1; fi
    sleep 0.02
  done
  return 1
}

# lambda_send SPEC: SPEC must carry a unique request_id.
lambda_send() {
  local spec=$1 rid
  rid=$(jq -r '.request_id' <<<"$spec")
  LAMBDA_SEQ=$((LAMBDA_SEQ + 1))
  local name
  name=$(printf '%06d.json' "$LAMBDA_SEQ")
  printf '%s\n' "$spec" >"$TMP/spec.tmp"
  mv "$TMP/spec.tmp" "$RAPI_QDIR/$name"
  KIND="" REC="" OUT="" STATUS="" BODY=""
  local filter='(.kind == "response" or .kind == "error") and .request_id == "'"$rid"'"'
  if ! wait_record "$filter" 30; then
    return 1
  fi
  REC=$(records "$filter" | tail -1)
  KIND=$(jq -r '.kind' <<<"$REC")
  OUT=$(jq -r '.body' <<<"$REC")
  if [ "$KIND" = response ]; then
    { IFS= read -r STATUS; BODY=$(cat); } < <(jq -r ".statusCode, .body" <<<"$OUT" 2>/dev/null)
  fi
  return 0
}

# lambda_api v1|v2 METHOD PATH [event options]: one API Gateway event through
# the loop. RC is 0 when it came back as a response (what `expect` checks).
lambda_api() {
  local file="$TMP/lambda-event.json" rid
  event "$@" >"$file" || { fail "event $*" "cannot build the event"; return 1; }
  rid="api-$((LAMBDA_SEQ + 1))-$RANDOM"
  lambda_send "$(jq -c --arg rid "$rid" '{request_id: $rid, event: .}' "$file")"
  if [ "$KIND" = response ]; then RC=0; else RC=1; fi
}
