# tests/faults/proxy_lib.sh — sourced by the fault tests (after tests/e2e/lib.sh): the fault
# proxy (fault_proxy.py) started in front of the DynamoDB endpoint the wrapper exported.
#   proxy_start        starts it; sets UPSTREAM (the real endpoint), PROXY_LOG, CONTROL, and
#                      points AWS_ENDPOINT_URL_DYNAMODB at the proxy; stops it on exit
#   ctl METHOD PATH [JSON]   a call to the proxy's control port
#   plan OP [FAULTS]   resets the proxy, then plans FAULTS (a JSON list) for operation OP
#   count OP           requests the proxy has seen for OP since the last reset
# Needs $here (tests/faults), $TMP and _cleanup (lib.sh), $PY.

proxy_start() {
  UPSTREAM=$AWS_ENDPOINT_URL_DYNAMODB
  PROXY_LOG="$TMP/proxy.log"
  "$PY" "$here/fault_proxy.py" --upstream "$UPSTREAM" --port-file "$TMP/proxy.port" \
    --control-port-file "$TMP/control.port" --log "$PROXY_LOG" 2>>"$PROXY_LOG" &
  PROXY_PID=$!
  for _ in $(seq 1 100); do [ -s "$TMP/proxy.port" ] && break; sleep 0.05; done
  [ -s "$TMP/proxy.port" ] || { echo "the fault proxy did not start:"; cat "$PROXY_LOG"; exit 1; }
  CONTROL="http://127.0.0.1:$(cat "$TMP/control.port")"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$(cat "$TMP/proxy.port")"
  trap 'kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; _cleanup' EXIT
}

ctl() { curl -s --max-time 5 -X "$1" "$CONTROL$2" ${3:+-d "$3"}; }
plan() { ctl POST /reset >/dev/null; [ -z "${2:-}" ] || ctl POST /plan "{\"op\":\"$1\",\"faults\":$2}" >/dev/null; }
count() { ctl GET /stats | jq -r --arg op "$1" '.requests[$op] // 0'; }
