#!/usr/bin/env bash
# local-dynamodb.sh — a local DynamoDB-compatible endpoint for taskhost:
# dynalite (the version pinned in tests/integration/package-lock.json) on
# 127.0.0.1, with the table created, and the environment to point taskhost
# at it.
#
#   scripts/local-dynamodb.sh                   foreground on 127.0.0.1:8000 until Ctrl-C
#   eval "$(scripts/local-dynamodb.sh --background)"   start, set the variables, return
#   scripts/local-dynamodb.sh --stop            stop the --background server
#
# Options:
#   --port N         port on 127.0.0.1 (default 8000; 0: any free port)
#   --path DIR       keep the data in DIR (LevelDB) across restarts; default: in memory
#   --table NAME     table to create when absent (default $TABLE_NAME, else "tasks")
#   --region NAME    region to print (default $AWS_REGION, else us-east-1)
#   --background     start, print the variables, and return; the server keeps running
#   --pid-file FILE  where --background records the server (default
#                    ${TMPDIR:-/tmp}/taskhost-local-dynamodb-$UID/PORT.pid; the log is
#                    beside it as PORT.log). --stop reads the same file.
#   --stop           stop the server of --pid-file (or of --port); 0 when none runs
#
# stdout carries only shell lines (export ...), so eval "$(...)" works; what
# is happening goes to stderr. The credentials printed are dummies for the
# local server: dynalite checks that requests are signed, not by whom.
#
# dynalite comes from tests/integration/node_modules (npm ci there, without
# install scripts, when missing). --path needs LevelDB's native module
# (classic-level, which ships prebuilt binaries): when it cannot be loaded on
# this machine the server says so and keeps the data in memory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
integration=$root/tests/integration
marker=taskhost-local-dynamodb # in the server's command line: --stop checks it

die() { echo "local-dynamodb: $*" >&2; exit 1; }
say() { echo "local-dynamodb: $*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

port=8000 path="" table=${TABLE_NAME:-tasks} region=${AWS_REGION:-us-east-1}
background=0 stop=0 pidfile=""
while [ $# -gt 0 ]; do
  case $1 in
    --port) [ $# -ge 2 ] || die "--port needs a value"; port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --path) [ $# -ge 2 ] || die "--path needs a value"; path=$2; shift 2 ;;
    --path=*) path=${1#*=}; shift ;;
    --table) [ $# -ge 2 ] || die "--table needs a value"; table=$2; shift 2 ;;
    --table=*) table=${1#*=}; shift ;;
    --region) [ $# -ge 2 ] || die "--region needs a value"; region=$2; shift 2 ;;
    --region=*) region=${1#*=}; shift ;;
    --pid-file) [ $# -ge 2 ] || die "--pid-file needs a value"; pidfile=$2; shift 2 ;;
    --pid-file=*) pidfile=${1#*=}; shift ;;
    --background) background=1; shift ;;
    --stop) stop=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || [ "$port" -gt 65535 ]; then die "--port must be 0..65535"; fi
[[ $table =~ ^[A-Za-z0-9_.-]{3,255}$ ]] || die "--table: 3 to 255 characters of A-Z a-z 0-9 _ - ."
[[ $region =~ ^[A-Za-z0-9-]{1,64}$ ]] || die "--region: a region name such as us-east-1"

state=${TMPDIR:-/tmp}/taskhost-local-dynamodb-$(id -u)
stop_hint="$0 --stop --pid-file ${pidfile:-}"
if [ -z "$pidfile" ]; then
  stop_hint="$0 --stop$([ "$port" = 8000 ] || echo " --port $port")"
fi
pidfile=${pidfile:-$state/$port.pid}
case $pidfile in /*) ;; *) pidfile=$PWD/$pidfile ;; esac
logfile=${pidfile%.pid}.log
portfile=${pidfile%.pid}.port

# The pid in the pid file when that process is still our server, else "".
running_pid() {
  local pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile" 2>/dev/null) || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$marker" || return 0
  echo "$pid"
}

# stop_pid PID: SIGTERM (the server closes its store), SIGKILL after 10 s.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "pid $pid did not stop within 10 s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

if [ "$stop" = 1 ]; then
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    say "not running (no live server in $pidfile)"
    rm -f "$pidfile" "$portfile"
    exit 0
  fi
  stop_pid "$pid"
  rm -f "$pidfile" "$portfile"
  say "stopped (pid $pid)"
  exit 0
fi

# The lines for the caller's shell: taskhost reads these (README, "DynamoDB
# configuration"); AWS_DEFAULT_REGION is for the AWS CLI v1.
print_exports() {
  local url=$1
  cat <<EOF
export TASKHOST_STORE=dynamodb
export TABLE_NAME=$table
export AWS_REGION=$region
export AWS_DEFAULT_REGION=$region
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
export AWS_ENDPOINT_URL_DYNAMODB=$url
unset AWS_SESSION_TOKEN AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
EOF
}

mkdir -p "$(dirname "$pidfile")"
pid=$(running_pid)
if [ -n "$pid" ]; then
  [ "$background" = 1 ] || die "already running (pid $pid, $pidfile); stop it with --stop"
  [ -s "$portfile" ] || die "already running (pid $pid) but its port file $portfile is missing"
  say "already running (pid $pid) on http://127.0.0.1:$(cat "$portfile")"
  print_exports "http://127.0.0.1:$(cat "$portfile")"
  exit 0
fi

command -v node >/dev/null || die "node is not installed (dynalite runs on Node.js): apt-get install nodejs npm"
if [ ! -d "$integration/node_modules/dynalite" ]; then
  command -v npm >/dev/null || die "npm is not installed: apt-get install npm"
  say "installing the pinned dynalite (npm ci in tests/integration)"
  (cd "$integration" && npm ci --no-audit --no-fund --ignore-scripts >&2) || die "npm ci failed in $integration"
fi
if [ -n "$path" ]; then
  mkdir -p "$path" || die "cannot create --path $path"
  path=$(cd "$path" && pwd)
fi
rm -f "$pidfile" "$portfile"
if [ -n "$path" ] && ! node -e 'require(process.argv[1])' "$integration/node_modules/classic-level" \
  2>"$logfile"; then
  say "WARNING: LevelDB's native module (classic-level) cannot be loaded on this machine" \
    "($(grep -m1 -E '^[A-Za-z]*Error: ' "$logfile" || head -n 1 "$logfile")): --path is ignored, the data is in memory only"
  path=""
fi

# The server: dynalite in this node process, SIGINT/SIGTERM close it (and its
# LevelDB) cleanly. It writes the port it got to the port file once it listens.
# It writes its own pid to the pid file too (setsid may have forked). The
# marker argument lets --stop recognise the process.
server_js='
  const [dir, portArg, storePath, portFile, pidFile] = process.argv.slice(1);
  const fs = require("fs"), path = require("path");
  const opts = {createTableMs: 0, deleteTableMs: 0, updateTableMs: 0};
  if (storePath) {
    opts.path = storePath;
  } else {
    // dynalite loads LevelDB even when it keeps data in memory: without the
    // native module, stand in for it (it is never called in memory mode).
    try { require(path.join(dir, "node_modules", "classic-level")); } catch (e) {
      const levelFile = require.resolve("level", {paths: [path.join(dir, "node_modules", "dynalite")]});
      require.cache[levelFile] = {id: levelFile, filename: levelFile, loaded: true,
        exports: {Level: function () { throw new Error("LevelDB is not available"); }}};
    }
  }
  const server = require(path.join(dir, "node_modules", "dynalite"))(opts);
  server.on("error", (e) => {
    console.error("local-dynamodb: cannot listen on 127.0.0.1:" + portArg + ": " + e.message);
    process.exit(1);
  });
  server.listen(Number(portArg), "127.0.0.1", () => {
    fs.writeFileSync(pidFile, String(process.pid)); // node itself, whatever started it
    fs.writeFileSync(portFile + ".tmp", String(server.address().port));
    fs.renameSync(portFile + ".tmp", portFile);
  });
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(0), 5000).unref();
    if (server.closeAllConnections) setTimeout(() => server.closeAllConnections(), 200).unref();
    server.close(() => process.exit(0));
  };
  process.on("SIGINT", close);
  process.on("SIGTERM", close);
'

args=("$integration" "$port" "$path" "$portfile" "$pidfile" "$marker")
node_pid=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup_foreground() {
  trap - INT TERM HUP EXIT
  if [ -n "$node_pid" ]; then
    say "stopping"
    stop_pid "$node_pid"
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$portfile"
}

if [ "$background" = 1 ]; then
  # A session of its own (when setsid exists): the caller's Ctrl-C or the end
  # of its terminal does not reach the server.
  launcher=()
  command -v setsid >/dev/null && launcher=(setsid)
  nohup "${launcher[@]}" node -e "$server_js" "${args[@]}" </dev/null >"$logfile" 2>&1 &
  node_pid=$!
else
  # Ctrl-C (or SIGTERM) is the way to stop it: a clean stop, exit status 0.
  trap cleanup_foreground EXIT
  trap 'exit 0' INT TERM
  trap 'exit 129' HUP
  node -e "$server_js" "${args[@]}" </dev/null >&2 &
  node_pid=$!
fi
echo "$node_pid" >"$pidfile"

for _ in $(seq 1 200); do
  [ -s "$portfile" ] && break
  if ! kill -0 "$node_pid" 2>/dev/null; then
    rm -f "$pidfile"
    if [ "$background" = 1 ]; then die "dynalite exited: $(cat "$logfile")"; fi
    die "dynalite exited (its message is above)"
  fi
  sleep 0.05
done
[ -s "$portfile" ] || { stop_pid "$node_pid"; rm -f "$pidfile"; die "dynalite did not start within 10 s: $(cat "$logfile")"; }
[ "$background" = 1 ] && node_pid=$(cat "$pidfile")
url="http://127.0.0.1:$(cat "$portfile")"

# The table, when absent: with the AWS CLI, or with curl without it (dynalite
# checks that a SigV4-shaped Authorization header is there, not the signature).
aws_local() {
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_DYNAMODB \
    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true AWS_PAGER= \
    aws --endpoint-url "$url" --region "$region" --output json dynamodb "$@"
}
curl_local() {
  curl -sS --noproxy '*' -X POST "$url/" \
    -H "Content-Type: application/x-amz-json-1.0" -H "X-Amz-Target: DynamoDB_20120810.$1" \
    -H "X-Amz-Date: 20240101T000000Z" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=local/20240101/$region/dynamodb/aws4_request, SignedHeaders=host, Signature=0" \
    --data-binary "$2"
}
describe='{"TableName":"'"$table"'"}'
# The runtime's keys (runtime/store_dynamodb.h): partition user_id, sort id.
spec='{"TableName":"'"$table"'","AttributeDefinitions":[{"AttributeName":"user_id","AttributeType":"S"},{"AttributeName":"id","AttributeType":"S"}],"KeySchema":[{"AttributeName":"user_id","KeyType":"HASH"},{"AttributeName":"id","KeyType":"RANGE"}],"BillingMode":"PAY_PER_REQUEST"}'
if existing=$(curl_local DescribeTable "$describe") && grep -q '"TableStatus"' <<<"$existing"; then
  # A table kept (--path) from a taskhost before accounts is keyed by id alone:
  # every operation would fail against it, so say so now.
  if ! grep -q '"AttributeName":"user_id","KeyType":"HASH"' <<<"$existing"; then
    [ "$background" = 1 ] && { stop_pid "$node_pid"; rm -f "$pidfile" "$portfile"; }
    die "table $table is keyed by id alone (a taskhost before accounts); this one needs user_id" \
      "(HASH) and id (RANGE): copy its items into a new table (README, \"Upgrading\") or use" \
      "another --table or --path"
  fi
  say "table $table exists$([ -n "$path" ] && echo " (kept in $path)")"
else
  if command -v aws >/dev/null; then
    aws_local create-table --cli-input-json "$spec" >/dev/null || die "create-table $table failed"
  else
    curl_local CreateTable "$spec" | grep -q TableDescription || die "create-table $table failed"
  fi
  say "created table $table (user_id S HASH, id S RANGE, PAY_PER_REQUEST)"
fi
for _ in $(seq 1 100); do
  curl_local DescribeTable "$describe" | grep -q '"TableStatus":"ACTIVE"' && break
  sleep 0.05
done
curl_local DescribeTable "$describe" | grep -q '"TableStatus":"ACTIVE"' || die "table $table did not become ACTIVE"

where="in memory: gone when it stops"
[ -z "$path" ] || where="persisted in $path"
say "dynalite on $url, table $table, data $where"
print_exports "$url"
if [ "$background" = 1 ]; then
  say "running in the background (pid $node_pid, log $logfile); stop it with: $stop_hint"
  say "then: ./taskhost --serve 127.0.0.1:3000   or   ./taskhost --local event.json"
  exit 0
fi
say "paste the lines above into another shell, then ./taskhost --serve or ./taskhost --local event.json"
say "Ctrl-C stops the server"
status=0
wait "$node_pid" || status=$?
node_pid=""
rm -f "$pidfile" "$portfile"
exit "$status"
