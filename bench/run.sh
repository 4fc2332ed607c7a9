#!/usr/bin/env bash
# bench/run.sh — every taskhost benchmark, one table (see bench/README.md).
#
#   bench/run.sh             the full run (about 8 minutes on 2 cores); writes
#                            bench/results.md and prints the same table
#   bench/run.sh --quick     smoke run (small counts, seconds once built): checks
#                            that every piece still works; writes
#                            bench/.work/results-quick.md, not bench/results.md
#   options: --no-python (skip the Python 3.11 + boto3 comparison)
#            --no-build  (reuse bench/.work: package, tools)
#            --zip FILE  (benchmark this package instead of building one)
#            --out FILE  (write the table there)
#   BENCH_WORK=DIR   scratch folder (default bench/.work)
#   BENCH_MEM_N=N, BENCH_RSS_AT=a,b,...   invocations and RSS samples of the memory rows
#
# Needs: a C compiler, libcurl and OpenSSL headers (scripts/deps.sh), node/npm
# (dynalite, as the tests), jq, unzip, wrk (the --serve rows; skipped with a
# note when absent), python3 (report), and for the comparison a Python 3.11
# with boto3 (PYTHON311=/path/to/python3.11; else found on PATH or pyenv).
# Everything runs on 127.0.0.1; nothing leaves the machine.
set -euo pipefail

bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench/.." && pwd)
work=${BENCH_WORK:-$bench/.work}

quick=0 python=1 build=1 zip="" out="" args="$*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --no-python) python=0 ;;
    --no-build) build=0 ;;
    --zip) zip=${2:?--zip needs a file}; shift ;;
    --out) out=${2:?--out needs a file}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$quick" = 1 ]; then
  ROUNDS=1 COLD_STARTS=5 N=300 WARMUP=30 PY_N=100 MEM_N=3000 RSS_AT="1000,3000" WRK_SECS=1 PY_STARTS=2
  out=${out:-$work/results-quick.md}
else
  ROUNDS=3 COLD_STARTS=30 N=10000 WARMUP=200 PY_N=2000 MEM_N=100000 RSS_AT="1000,10000,50000,100000"
  WRK_SECS=10 PY_STARTS=10
  out=${out:-$bench/results.md}
fi
# A longer memory run: BENCH_MEM_N=400000 BENCH_RSS_AT=10000,50000,100000,200000,400000
MEM_N=${BENCH_MEM_N:-$MEM_N} RSS_AT=${BENCH_RSS_AT:-$RSS_AT}
MODE=$([ "$quick" = 1 ] && echo quick || echo full)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

for tool in cc jq unzip node curl python3; do
  command -v "$tool" >/dev/null || die "'$tool' is missing (scripts/deps.sh --test installs it)"
done

res=$work/results
mkdir -p "$work" "$res"
rm -f "$res"/*.jsonl "$res"/*.txt

# ---------------------------------------------------------------- build
if [ "$build" = 1 ] || [ ! -x "$work/rapi" ]; then
  log "building the benchmark tools"
  cc -O2 -Wall -Wextra -o "$work/rapi" "$bench/rapi.c"
  cc -O2 -Wall -Wextra -o "$work/nullrt" "$bench/nullrt.c" $(pkg-config --cflags --libs libcurl)
  cc -O2 -Wall -Wextra -o "$work/nullrt_raw" "$bench/nullrt_raw.c"
  cc -O2 -Wall -Wextra -I"$root/runtime" -o "$work/floor" "$bench/floor.c" \
    "$root/runtime/sigv4.c" "$root/runtime/common.c" $(pkg-config --cflags --libs libcurl libcrypto)
fi
if [ -n "$zip" ]; then
  cp "$zip" "$work/taskhost-lambda.zip"
elif [ "$build" = 1 ] || [ ! -f "$work/taskhost-lambda.zip" ]; then
  log "building the Lambda package (scripts/package.sh)"
  "$root/scripts/package.sh" --arch x86_64 --build-dir "$work/build-package" --output "$work/taskhost-lambda.zip" >&2
fi
pkg=$work/task
rm -rf "$pkg"
mkdir -p "$pkg"
unzip -q "$work/taskhost-lambda.zip" -d "$pkg"

# ---------------------------------------------------------------- machine
{
  printf '{"cpu":%s,' "$(lscpu | sed -n 's/^Model name: *//p' | head -1 | jq -R .)"
  printf '"cpus":%s,' "$(nproc)"
  printf '"kernel":%s,' "$(uname -r | jq -R .)"
  printf '"os":%s,' "$( (. /etc/os-release && echo "$PRETTY_NAME") | jq -R .)"
  printf '"mem_gib":%s,' "$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
  printf '"load_start":%s,' "$(cut -d' ' -f1-3 /proc/loadavg | jq -R .)"
  printf '"libcurl":%s,' "$(pkg-config --modversion libcurl | jq -R .)"
  printf '"commit":%s,' "$(git -C "$root" rev-parse --short HEAD 2>/dev/null | jq -R . || echo null)"
  printf '"package":%s,' "$(if [ -n "$zip" ]; then echo "$(basename "$zip") (given with --zip)"; else echo "built from this checkout by scripts/package.sh"; fi | jq -R .)"
  printf '"args":%s,' "$(jq -n --arg a "$args" '$a')"
  printf '"date":%s,"mode":"%s"}\n' "$(date -u +%Y-%m-%dT%H:%MZ | jq -R .)" "$MODE"
} >"$res/machine.jsonl"

# ---------------------------------------------------------------- dynalite
export DYNALITE_DIR=$work/dynalite TABLE_NAME=taskhost-bench
rm -rf "$DYNALITE_DIR"
mkdir -p "$DYNALITE_DIR"
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  bash "$root/tests/integration/dynalite.sh" stop 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "starting dynalite"
bash "$root/tests/integration/dynalite.sh" start
ENDPOINT="http://127.0.0.1:$(cat "$DYNALITE_DIR/port")"
source "$bench/lib.sh"

lambda_env "$pkg"
DDB_ENV=("${LAMBDA_ENV[@]}" "TASKHOST_STORE=dynamodb")
SQLITE_ENV=("${LAMBDA_ENV[@]}" "TASKHOST_STORE=sqlite:$work/bench.db")

# ---------------------------------------------------------------- events
ev=$work/events
mkdir -p "$ev"
write_events "$ev"

plan_ops "$N" "$WARMUP" >"$work/plan-ops.txt"
plan_ops "$PY_N" "$WARMUP" >"$work/plan-py.txt"
# Memory: 30 tasks so that list has a full page, then create/get/list/update/delete cycles.
{
  echo "create 30 0 $ev/create.json"
  echo "mix $MEM_N 0 $ev/create.json $ev/get.json $ev/list.json $ev/update.json $ev/delete.json"
} >"$work/plan-mem.txt"

# rapi runs from the task root, under env -i: the runtime sees Lambda's
# environment only (rapi adds AWS_LAMBDA_RUNTIME_API).
rapi_in() { # dir env-array-name rapi-args...
  local dir=$1 envname=$2
  shift 2
  local -n envref=$envname
  (cd "$dir" && env -i "${envref[@]}" "$work/rapi" "$@")
}

# ---------------------------------------------------------------- 1 cold start
log "cold start: $COLD_STARTS starts of the packaged bootstrap (dynalite)"
rapi_in "$pkg" DDB_ENV cold --starts "$COLD_STARTS" --event "$ev/list.json" -- ./bootstrap \
  2>"$res/cold-taskhost.log" | sed 's/^{/{"who":"taskhost",/' >"$res/cold.jsonl"
log "cold start: $COLD_STARTS starts of the null runtime (libcurl only)"
rapi_in "$pkg" DDB_ENV cold --starts "$COLD_STARTS" --event "$ev/list.json" -- "$work/nullrt" \
  2>/dev/null | sed 's/^{/{"who":"nullrt",/' >>"$res/cold.jsonl"

# Cross-check with a public tool: exec → exit of `bootstrap --check` (configuration,
# store set-up without connecting, route scripts) under hyperfine, same environment.
if command -v hyperfine >/dev/null; then
  log "cold start cross-check: hyperfine, $COLD_STARTS runs of bootstrap --check"
  (cd "$pkg" && env -i "${DDB_ENV[@]}" "$(command -v hyperfine)" -N --warmup 3 --runs "$COLD_STARTS" \
    --export-json "$res/hyperfine.json" './bootstrap --check' >/dev/null 2>&1) ||
    log "hyperfine failed: row skipped"
else
  log "hyperfine is not installed (apt-get install hyperfine): its cross-check row is skipped"
fi

# ---------------------------------------------------------------- 2 warm
# ROUNDS interleaved rounds (the machine is shared: the report takes each
# figure's median over the rounds).
: >"$res/warm.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  tag() { sed "s/^{/{\"who\":\"$1\",\"round\":$round,/"; }
  log "warm, round $round/$ROUNDS: null runtime (the Runtime API round trip alone), $N per op"
  rapi_in "$pkg" DDB_ENV warm --plan "$work/plan-ops.txt" -- "$work/nullrt" 2>/dev/null | tag nullrt >>"$res/warm.jsonl"
  rapi_in "$pkg" DDB_ENV warm --plan "$work/plan-ops.txt" -- "$work/nullrt_raw" 2>/dev/null |
    tag nullrt_raw >>"$res/warm.jsonl"
  log "warm, round $round/$ROUNDS: floor (minimal libcurl DynamoDB client), $N per op"
  (env -i "${DDB_ENV[@]}" "$work/floor" --warmup "$WARMUP" --count "$N") | tag floor >>"$res/warm.jsonl"
  log "warm, round $round/$ROUNDS: taskhost on dynalite, $N per op"
  rapi_in "$pkg" DDB_ENV warm --plan "$work/plan-ops.txt" -- ./bootstrap 2>"$res/warm-ddb.log" |
    tag taskhost-ddb >>"$res/warm.jsonl"
  log "warm, round $round/$ROUNDS: taskhost on SQLite, $N per op"
  rm -f "$work/bench.db" "$work/bench.db-wal" "$work/bench.db-shm"
  rapi_in "$pkg" SQLITE_ENV warm --plan "$work/plan-ops.txt" -- ./bootstrap 2>"$res/warm-sqlite.log" |
    tag taskhost-sqlite >>"$res/warm.jsonl"
done

# ---------------------------------------------------------------- 3 memory
log "memory: $MEM_N invocations (create/get/list/update/delete cycles) on dynalite"
rapi_in "$pkg" DDB_ENV warm --plan "$work/plan-mem.txt" --rss-at "$RSS_AT" -- ./bootstrap 2>/dev/null |
  sed 's/^{/{"who":"taskhost-ddb",/' >"$res/memory.jsonl"
log "memory: $MEM_N invocations on SQLite"
rm -f "$work/bench.db" "$work/bench.db-wal" "$work/bench.db-shm"
rapi_in "$pkg" SQLITE_ENV warm --plan "$work/plan-mem.txt" --rss-at "$RSS_AT" -- ./bootstrap 2>/dev/null |
  sed 's/^{/{"who":"taskhost-sqlite",/' >>"$res/memory.jsonl"

# ---------------------------------------------------------------- comparison
py=""
if [ "$python" = 1 ]; then
  for cand in "${PYTHON311:-}" "$(command -v python3.11 || true)" "$HOME"/.pyenv/versions/3.11*/bin/python3.11; do
    [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import boto3' 2>/dev/null && { py=$cand; break; }
  done
  [ -n "$py" ] || log "no Python 3.11 with boto3: the comparison column stays empty"
fi
if [ -n "$py" ]; then
  "$py" -c 'import sys, boto3, botocore; print("{\"who\":\"python\",\"version\":\"%d.%d.%d\",\"boto3\":\"%s\",\"botocore\":\"%s\"}" % (sys.version_info[:3] + (boto3.__version__, botocore.__version__)))' >"$res/python.jsonl"
  log "comparison: Python $("$py" -V 2>&1 | cut -d' ' -f2) + boto3, $PY_STARTS cold starts, $PY_N per op"
  rapi_in "$pkg" DDB_ENV cold --starts "$PY_STARTS" --event "$ev/list.json" -- "$py" "$bench/py_runtime.py" \
    2>"$res/cold-python.log" | sed 's/^{/{"who":"python",/' >>"$res/cold.jsonl"
  rapi_in "$pkg" DDB_ENV warm --plan "$work/plan-py.txt" -- "$py" "$bench/py_runtime.py" \
    2>"$res/warm-python.log" | sed 's/^{/{"who":"python",/' >>"$res/warm.jsonl"
fi

# ---------------------------------------------------------------- 4 --serve
: >"$res/wrk.txt"
if command -v wrk >/dev/null; then
  cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"task":"Write the benchmark report","priority":"high"}'
wrk.headers["Content-Type"] = "application/json"
EOF
  for workers in 1 2; do
    rm -f "$work/serve.db" "$work/serve.db-wal" "$work/serve.db-shm"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    (cd "$pkg" && exec env -i PATH=/usr/bin:/bin TASKHOST_STORE="sqlite:$work/serve.db" \
      TASKHOST_WORKERS=$workers ./bootstrap --serve "127.0.0.1:$port") 2>"$res/serve-$workers.log" &
    serve_pid=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/tasks" && break; sleep 0.05; done
    url=http://127.0.0.1:$port
    for _ in $(seq 1 30); do
      curl -s -X POST "$url/tasks" -H 'Content-Type: application/json' -d '{"task":"seed","priority":"low"}' >/dev/null
    done
    id=$(curl -s -X POST "$url/tasks" -H 'Content-Type: application/json' -d '{"task":"the one"}' | jq -r .id)
    log "--serve, $workers worker(s): wrk ${WRK_SECS}s each on GET /tasks/{id}, POST /tasks, GET /tasks"
    for t in "get GET $url/tasks/$id" "create POST $url/tasks" "list GET $url/tasks"; do
      set -- $t
      args=(-t1 -c8 -d"${WRK_SECS}s" --latency)
      [ "$2" = POST ] && args+=(-s "$work/post.lua")
      { echo "### workers=$workers op=$1"; wrk "${args[@]}" "$3"; } >>"$res/wrk.txt" 2>&1
    done
    kill "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
  done
else
  log "wrk is not installed (apt-get install wrk): --serve rows skipped"
fi

# ---------------------------------------------------------------- 5 package
unzip -Zl "$work/taskhost-lambda.zip" | awk '$1 ~ /^-/ { print $4, $6, $NF }' >"$res/zip-entries.txt"
printf '{"zip_bytes":%s,"unpacked_bytes":%s}\n' "$(stat -c %s "$work/taskhost-lambda.zip")" \
  "$(find "$pkg" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')" >"$res/package.jsonl"

printf '{"load_end":%s}\n' "$(cut -d' ' -f1-3 /proc/loadavg | jq -R .)" >>"$res/machine.jsonl"
log "writing $out"
python3 "$bench/report.py" "$res" >"$out"
cat "$out"
