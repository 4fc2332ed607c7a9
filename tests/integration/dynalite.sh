#!/usr/bin/env bash
# dynalite.sh start|stop — a local DynamoDB-compatible server (dynalite, pinned
# in package-lock.json) for the integration tests.
#
#   DYNALITE_DIR  required: a private temporary directory for the pid, port
#                 and log files (with_dynalite.sh makes one)
#   TABLE_NAME    table to create (default taskhost-test)
#
# start: installs the pinned packages (npm ci, without install scripts: the
# in-memory server needs no native module) when node_modules is missing,
# starts dynalite in memory on 127.0.0.1 on a free port (the port is written
# to $DYNALITE_DIR/port), waits until it answers and creates the table
# (user_id S HASH, id S RANGE, PAY_PER_REQUEST: the runtime's keys, see
# runtime/store_dynamodb.h) with the AWS CLI, or with curl without it.
# When openssl is installed, the same node process also serves a second,
# independent dynalite over TLS with a certificate made for 127.0.0.1 and
# localhost by a throw-away CA: its port goes to $DYNALITE_DIR/tls_port, the
# CA certificate to $DYNALITE_DIR/ca.pem, and it has the same table.
# stop: stops the server started by start (by its pid file) and waits for it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${DYNALITE_DIR:?set DYNALITE_DIR to a private temporary directory}"
table=${TABLE_NAME:-taskhost-test}
pidfile=$DYNALITE_DIR/pid
portfile=$DYNALITE_DIR/port
logfile=$DYNALITE_DIR/log

die() { echo "dynalite.sh: $*" >&2; exit 1; }

# Dummy credentials for the local server only: never real ones.
aws_local() {
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    AWS_EC2_METADATA_DISABLED=true AWS_PAGER= \
    aws --endpoint-url "http://127.0.0.1:$(cat "$portfile")" --region us-east-1 --output json "$@"
}

# One DynamoDB call with curl (dynalite checks that a SigV4-shaped
# Authorization header is present, not the signature). CURL_URL overrides
# the plain server's URL.
curl_local() {
  curl -sS --noproxy '*' -X POST "${CURL_URL:-http://127.0.0.1:$(cat "$portfile")/}" \
    -H "Content-Type: application/x-amz-json-1.0" -H "X-Amz-Target: DynamoDB_20120810.$1" \
    -H "X-Amz-Date: 20240101T000000Z" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0" \
    --data-binary "$2" "${@:3}"
}

start() {
  command -v node >/dev/null || die "node is not installed (needed to run dynalite)"
  # Under a lock: two first runs at once (ctest -j) would each empty node_modules under the other.
  if [ ! -f "$here/node_modules/dynalite/package.json" ]; then
    (
      flock 9
      [ -f "$here/node_modules/dynalite/package.json" ] ||
        (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts >&2)
    ) 9>"$here/.npm-ci.lock" || die "npm ci failed in $here"
  fi
  mkdir -p "$DYNALITE_DIR"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && die "already running (pid $(cat "$pidfile"))"
  rm -f "$pidfile" "$portfile" "$DYNALITE_DIR/tls_port"
  local tls=""
  if command -v openssl >/dev/null &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=taskhost test CA" \
      -keyout "$DYNALITE_DIR/ca.key" -out "$DYNALITE_DIR/ca.pem" 2>/dev/null &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$DYNALITE_DIR/server.key" -out "$DYNALITE_DIR/server.csr" 2>/dev/null &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$DYNALITE_DIR/san.ext" &&
    openssl x509 -req -in "$DYNALITE_DIR/server.csr" -CA "$DYNALITE_DIR/ca.pem" \
      -CAkey "$DYNALITE_DIR/ca.key" -CAcreateserial -days 2 -extfile "$DYNALITE_DIR/san.ext" \
      -out "$DYNALITE_DIR/server.pem" 2>/dev/null; then
    tls=$DYNALITE_DIR
  fi
  # Port 0: the kernel picks a free port; the server writes it down.
  node -e '
    const fs = require("fs"), path = require("path");
    const dynalite = require(process.argv[1]);
    const opts = {createTableMs: 0, deleteTableMs: 0, updateTableMs: 0};
    const servers = [];
    function serve(options, file) {
      const server = dynalite(options);
      servers.push(server);
      server.listen(0, "127.0.0.1", function () {
        fs.writeFileSync(file + ".tmp", String(server.address().port));
        fs.renameSync(file + ".tmp", file);
      });
    }
    const tls = process.argv[3];
    if (tls)
      serve(Object.assign({ssl: true, key: fs.readFileSync(path.join(tls, "server.key")),
                           cert: fs.readFileSync(path.join(tls, "server.pem")),
                           ca: fs.readFileSync(path.join(tls, "ca.pem"))}, opts),
            path.join(tls, "tls_port"));
    serve(opts, process.argv[2]);
    process.on("SIGTERM", () => { servers.forEach((s) => s.close()); process.exit(0); });
  ' "$here/node_modules/dynalite" "$portfile" "$tls" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  local i
  for i in $(seq 1 200); do
    [ -s "$portfile" ] && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || die "dynalite exited: $(cat "$logfile")"
    sleep 0.05
  done
  [ -s "$portfile" ] || die "dynalite did not start within 10 s: $(cat "$logfile")"
  for i in $(seq 1 100); do
    curl -s --noproxy '*' -o /dev/null "http://127.0.0.1:$(cat "$portfile")/" && break
    sleep 0.05
  done
  local spec='{"TableName":"'"$table"'","AttributeDefinitions":[{"AttributeName":"user_id","AttributeType":"S"},{"AttributeName":"id","AttributeType":"S"}],"KeySchema":[{"AttributeName":"user_id","KeyType":"HASH"},{"AttributeName":"id","KeyType":"RANGE"}],"BillingMode":"PAY_PER_REQUEST"}'
  if command -v aws >/dev/null; then
    aws_local dynamodb create-table --cli-input-json "$spec" >/dev/null || die "create-table failed"
  else
    curl_local CreateTable "$spec" | grep -q TableDescription || die "create-table failed"
  fi
  for i in $(seq 1 100); do
    curl_local DescribeTable '{"TableName":"'"$table"'"}' | grep -q '"TableStatus":"ACTIVE"' && break
    sleep 0.05
  done
  curl_local DescribeTable '{"TableName":"'"$table"'"}' | grep -q '"TableStatus":"ACTIVE"' ||
    die "table $table did not become ACTIVE"
  if [ -n "$tls" ]; then
    for i in $(seq 1 100); do
      [ -s "$DYNALITE_DIR/tls_port" ] && break
      sleep 0.05
    done
    CURL_URL="https://127.0.0.1:$(cat "$DYNALITE_DIR/tls_port")/" curl_local CreateTable "$spec" \
      --cacert "$DYNALITE_DIR/ca.pem" | grep -q TableDescription || die "create-table (TLS) failed"
  fi
  echo "dynalite on http://127.0.0.1:$(cat "$portfile") with table $table" >&2
}

stop() {
  [ -f "$pidfile" ] || return 0
  local pid i
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$portfile" "$DYNALITE_DIR/tls_port"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: DYNALITE_DIR=dir $0 start|stop" ;;
esac
