#!/usr/bin/env bash
# with_moto.sh CMD [ARG...] — runs CMD against a fresh moto server (moto's
# DynamoDB, which has TransactWriteItems: dynalite has not) on a free
# loopback port, serving one request at a time (moto_serial.py), with the
# task table (TTL on expires_at), and returns CMD's exit status. CMD sees what with_dynalite.sh gives (AWS_ENDPOINT_URL_DYNAMODB,
# AWS_REGION, dummy credentials, TABLE_NAME, TASKHOST_STORE=dynamodb) and
# MOTO_DIR (the server's log). The server is stopped however CMD ends (trap).
# moto_server missing from PATH: exit 1 with a FAIL line (CI carries it).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }
moto=$(command -v moto_server || true)
[ -n "$moto" ] || { echo "FAIL - moto_server not found on PATH (CI must have it)"; exit 1; }

MOTO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/moto.XXXXXX")
export MOTO_DIR
export TABLE_NAME=${TABLE_NAME:-taskhost-test}
moto_pid=""
cleanup() {
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  rm -rf "$MOTO_DIR"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# moto's app served one request at a time (moto_serial.py says why), by the Python that runs
# moto_server (a pyenv shim or a script with a shebang).
moto_script=$moto
if ! head -n 1 "$moto_script" | grep -q '^#!.*python'; then # a pyenv shim is a bash script
  moto_script=$(pyenv which moto_server 2>/dev/null) || moto_script=""
fi
moto_py=""
if [ -n "$moto_script" ]; then
  read -r shebang_cmd shebang_arg _ < <(head -n 1 "$moto_script" | sed 's/^#! *//')
  case $shebang_cmd in
    */env) moto_py=$(command -v "$shebang_arg" || true) ;;
    *python*) moto_py=$shebang_cmd ;;
  esac
fi
[ -n "$moto_py" ] && "$moto_py" -c 'import moto.moto_server.werkzeug_app' 2>/dev/null ||
  { echo "FAIL - no Python with moto behind $moto (needed to serve moto one request at a time)"; exit 1; }
"$moto_py" "$(dirname "${BASH_SOURCE[0]}")/moto_serial.py" 127.0.0.1 "$port" >"$MOTO_DIR/moto.log" 2>&1 &
moto_pid=$!
endpoint=http://127.0.0.1:$port
for _ in $(seq 1 150); do
  curl -fs --noproxy '*' "$endpoint/moto-api/" >/dev/null 2>&1 && break
  kill -0 "$moto_pid" 2>/dev/null || { echo "FAIL - moto_server exited:"; cat "$MOTO_DIR/moto.log"; exit 1; }
  sleep 0.2
done
curl -fs --noproxy '*' "$endpoint/moto-api/" >/dev/null ||
  { echo "FAIL - moto_server did not start:"; cat "$MOTO_DIR/moto.log"; exit 1; }

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL \
  AWS_IGNORE_CONFIGURED_ENDPOINT_URLS AWS_MAX_ATTEMPTS
export AWS_ENDPOINT_URL_DYNAMODB=$endpoint
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
export TASKHOST_STORE=dynamodb

aws dynamodb create-table --endpoint-url "$endpoint" --table-name "$TABLE_NAME" \
  --attribute-definitions AttributeName=user_id,AttributeType=S AttributeName=id,AttributeType=S \
  --key-schema AttributeName=user_id,KeyType=HASH AttributeName=id,KeyType=RANGE \
  --billing-mode PAY_PER_REQUEST >/dev/null
aws dynamodb update-time-to-live --endpoint-url "$endpoint" --table-name "$TABLE_NAME" \
  --time-to-live-specification Enabled=true,AttributeName=expires_at >/dev/null
echo "moto_server on $endpoint with table $TABLE_NAME" >&2

status=0
"$@" || status=$?
exit "$status"
