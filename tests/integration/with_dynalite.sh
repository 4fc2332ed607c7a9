#!/usr/bin/env bash
# with_dynalite.sh CMD [ARG...] — runs CMD against a fresh dynalite server
# with its table, and returns CMD's exit status. CMD sees:
#   AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:<port>  AWS_REGION=AWS_DEFAULT_REGION=us-east-1
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (dummies)  TABLE_NAME
#   TASKHOST_STORE=dynamodb  DYNALITE_DIR (the server's pid/port/log files)
# The server is stopped however CMD ends (trap).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

DYNALITE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dynalite.XXXXXX")
export DYNALITE_DIR
export TABLE_NAME=${TABLE_NAME:-taskhost-test}
cleanup() {
  bash "$here/dynalite.sh" stop || true
  rm -rf "$DYNALITE_DIR"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$here/dynalite.sh" start

# Only the local server and dummy credentials: nothing of the caller's AWS
# setup may leak in (a profile, a token, another endpoint).
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL \
  AWS_IGNORE_CONFIGURED_ENDPOINT_URLS AWS_MAX_ATTEMPTS
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$(cat "$DYNALITE_DIR/port")"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 # the AWS CLI v1 reads only the latter
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
export TASKHOST_STORE=dynamodb

status=0
"$@" || status=$?
exit "$status"
