#!/usr/bin/env bash
# with_cognito.sh CMD [ARG...] — runs CMD against a fresh cognito-local (a Cognito user pools
# emulator on 127.0.0.1, see cognito_local.sh) with its user pools and app clients, and returns
# CMD's exit status. CMD sees:
#   COGNITO_ENDPOINT  COGNITO_USER_POOL_ID  COGNITO_CLIENT_ID  COGNITO_ISSUER  COGNITO_JWKS_URL
#   COGNITO_OTHER_CLIENT_ID (same pool, another client)
#   COGNITO_OTHER_POOL_ID  COGNITO_OTHER_POOL_CLIENT_ID  COGNITO_OTHER_ISSUER  COGNITO_OTHER_JWKS_URL
#   AWS_REGION=AWS_DEFAULT_REGION=us-east-1  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (dummies)
#   COGNITO_DIR (the server's pid/port/log files and data)
# The server is stopped however CMD ends (trap). Without node, npm or the AWS CLI it prints
# "SKIP: ..." and exits 0, except under CI=true, where that is a failure (exit 1).
#
# By hand, a shell with a user pool to sign in to (exit the shell to stop it):
#   tests/cognito/with_cognito.sh bash
#   TOKEN=$(scripts/token.sh --create --user alice@example.com --password 'Passw0rd!')
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

missing=()
for tool in node npm aws curl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: ${missing[*]} not installed: cognito-local cannot run (scripts/deps.sh --test installs them)"
    exit 1
  fi
  echo "SKIP: ${missing[*]} not installed: cognito-local cannot run (scripts/deps.sh --test installs them)"
  exit 0
fi

COGNITO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cognito.XXXXXX")
export COGNITO_DIR
cleanup() {
  bash "$here/cognito_local.sh" stop || true
  rm -rf "$COGNITO_DIR"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$here/cognito_local.sh" start

# Only the local server and dummy credentials: nothing of the caller's AWS setup may leak in
# (a profile, a token, another endpoint).
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER \
  AWS_IGNORE_CONFIGURED_ENDPOINT_URLS AWS_MAX_ATTEMPTS COGNITO_REGION
# shellcheck source=/dev/null
. "$COGNITO_DIR/env"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 # the AWS CLI v1 reads only the latter
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true

status=0
"$@" || status=$?
exit "$status"
