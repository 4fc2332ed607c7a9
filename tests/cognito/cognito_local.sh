#!/usr/bin/env bash
# cognito_local.sh start|stop — a local Cognito user pools server (cognito-local, pinned in
# package-lock.json) for the account tests. README.md beside this file says what it issues
# and how it differs from Cognito.
#
#   COGNITO_DIR  required: a private temporary directory for the pid, port, log, the
#                server's data (COGNITO_DIR/data/.cognito) and the env file (with_cognito.sh
#                makes one)
#
# start: installs the pinned packages (npm ci, without install scripts: nothing in it is
# native) when node_modules is missing, starts cognito-local on 127.0.0.1 on a free port,
# waits until it answers, and creates with the AWS CLI (dummy credentials):
#   - user pool "taskhost-test": email is the username, a password policy (8+ characters,
#     upper and lower case, digits), with an app client without a secret that allows
#     USER_PASSWORD_AUTH, USER_SRP_AUTH and REFRESH_TOKEN_AUTH (tokens valid 60 minutes,
#     refresh 30 days: Cognito's defaults), and a second such client;
#   - user pool "taskhost-other" with one such client.
# It writes COGNITO_DIR/env, lines of `export NAME=VALUE` (with_cognito.sh sources it):
#   COGNITO_ENDPOINT              http://127.0.0.1:<port>
#   COGNITO_USER_POOL_ID          the first pool (local_XXXXXXXX)
#   COGNITO_CLIENT_ID             its first app client
#   COGNITO_ISSUER                the `iss` of its tokens: http://127.0.0.1:<port>/<pool id>
#   COGNITO_JWKS_URL              $COGNITO_ISSUER/.well-known/jwks.json
#   COGNITO_OTHER_CLIENT_ID       the first pool's second app client
#   COGNITO_OTHER_POOL_ID         the second pool
#   COGNITO_OTHER_POOL_CLIENT_ID  the second pool's app client
#   COGNITO_OTHER_ISSUER, COGNITO_OTHER_JWKS_URL  the same for the second pool
# stop: stops the server started by start (by its pid file) and waits for it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${COGNITO_DIR:?set COGNITO_DIR to a private temporary directory}"
pidfile=$COGNITO_DIR/pid
portfile=$COGNITO_DIR/port
logfile=$COGNITO_DIR/log
envfile=$COGNITO_DIR/env
data=$COGNITO_DIR/data

die() { echo "cognito_local.sh: $*" >&2; exit 1; }

# Dummy credentials for the local server only: never real ones.
aws_local() {
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=test \
    AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true AWS_PAGER= \
    aws --endpoint-url "http://127.0.0.1:$(cat "$portfile")" --region us-east-1 --output json "$@"
}

install() {
  [ -f "$here/node_modules/cognito-local/package.json" ] && return 0
  echo "cognito_local.sh: installing the pinned cognito-local (npm ci in tests/cognito)" >&2
  # A lock directory keeps two concurrent first runs (ctest -j) from racing in node_modules.
  local lock="$here/.npm-ci.lock" _
  for _ in $(seq 1 300); do mkdir "$lock" 2>/dev/null && break; sleep 1; done
  trap 'rmdir "$lock" 2>/dev/null || true' EXIT
  if [ ! -f "$here/node_modules/cognito-local/package.json" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts >&2) ||
      die "'npm ci' in tests/cognito failed (is the npm registry reachable?)"
  fi
  rmdir "$lock" 2>/dev/null || true
  trap - EXIT
}

# free_port: a port nothing listens on now (the kernel's pick). cognito-local must be told
# its port before it starts (its token issuer holds it), so a race is possible: start retries.
free_port() {
  node -e 'const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# launch PORT: starts the server in the background; 0 when it answers /health, 1 when it
# exited (its log says why), dies when it neither answers nor exits within 60 s.
launch() {
  local port=$1 _
  mkdir -p "$data/.cognito"
  # The issuer host is ours to choose: the loopback address the tests use, not "localhost".
  printf '{"TokenConfig":{"IssuerDomain":"http://127.0.0.1:%s"}}\n' "$port" >"$data/.cognito/config.json"
  (cd "$data" && exec env HOST=127.0.0.1 PORT="$port" AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1 \
    node "$here/node_modules/cognito-local/lib/bin/start.js") >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 600); do
    if curl -s --noproxy '*' --max-time 2 -o /dev/null "http://127.0.0.1:$port/health"; then
      echo "$port" >"$portfile"
      return 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || return 1
    sleep 0.1
  done
  die "cognito-local did not answer on 127.0.0.1:$port within 60 s: $(tail -n 5 "$logfile")"
}

# pool NAME: creates a user pool like the deployed one; prints its id.
pool() {
  aws_local cognito-idp create-user-pool --pool-name "$1" --username-attributes email \
    --auto-verified-attributes email \
    --policies 'PasswordPolicy={MinimumLength=8,RequireUppercase=true,RequireLowercase=true,RequireNumbers=true,RequireSymbols=false}' \
    --query UserPool.Id --output text
}

# client POOL NAME: creates an app client like the deployed one; prints its id.
client() {
  aws_local cognito-idp create-user-pool-client --user-pool-id "$1" --client-name "$2" \
    --no-generate-secret \
    --explicit-auth-flows ALLOW_USER_PASSWORD_AUTH ALLOW_USER_SRP_AUTH ALLOW_REFRESH_TOKEN_AUTH \
    --access-token-validity 60 --id-token-validity 60 --refresh-token-validity 30 \
    --token-validity-units AccessToken=minutes,IdToken=minutes,RefreshToken=days \
    --query UserPoolClient.ClientId --output text
}

start() {
  command -v node >/dev/null || die "node is not installed (needed to run cognito-local)"
  command -v aws >/dev/null || die "the AWS CLI is not installed (needed to create the user pools)"
  install
  mkdir -p "$COGNITO_DIR"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && die "already running (pid $(cat "$pidfile"))"
  rm -f "$pidfile" "$portfile" "$envfile"
  local port started=0 _
  for _ in 1 2 3 4 5; do
    port=$(free_port) || die "cannot find a free port"
    if launch "$port"; then started=1; break; fi
    grep -q EADDRINUSE "$logfile" || die "cognito-local exited: $(tail -n 5 "$logfile")"
    rm -rf "$data" # lost the port to another process: try another
  done
  [ "$started" = 1 ] || die "cognito-local found no free port in 5 tries"

  local endpoint="http://127.0.0.1:$port" pool1 client1 client2 pool2 client3
  pool1=$(pool taskhost-test) || die "create-user-pool failed"
  client1=$(client "$pool1" taskhost-test) || die "create-user-pool-client failed"
  client2=$(client "$pool1" taskhost-test-other-client) || die "create-user-pool-client failed"
  pool2=$(pool taskhost-other) || die "create-user-pool failed"
  client3=$(client "$pool2" taskhost-other) || die "create-user-pool-client failed"
  local id
  for id in "$pool1" "$client1" "$client2" "$pool2" "$client3"; do
    [[ $id =~ ^[A-Za-z0-9_]+$ ]] || die "unexpected id from cognito-local: '$id'"
  done
  {
    echo "export COGNITO_ENDPOINT=$endpoint"
    echo "export COGNITO_USER_POOL_ID=$pool1"
    echo "export COGNITO_CLIENT_ID=$client1"
    echo "export COGNITO_ISSUER=$endpoint/$pool1"
    echo "export COGNITO_JWKS_URL=$endpoint/$pool1/.well-known/jwks.json"
    echo "export COGNITO_OTHER_CLIENT_ID=$client2"
    echo "export COGNITO_OTHER_POOL_ID=$pool2"
    echo "export COGNITO_OTHER_POOL_CLIENT_ID=$client3"
    echo "export COGNITO_OTHER_ISSUER=$endpoint/$pool2"
    echo "export COGNITO_OTHER_JWKS_URL=$endpoint/$pool2/.well-known/jwks.json"
  } >"$envfile"
  echo "cognito-local on $endpoint: user pool $pool1 (clients $client1, $client2), user pool $pool2 (client $client3)" >&2
}

stop() {
  [ -f "$pidfile" ] || return 0
  local pid _
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$portfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: COGNITO_DIR=dir $0 start|stop" ;;
esac
