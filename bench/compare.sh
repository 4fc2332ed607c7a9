#!/usr/bin/env bash
# bench/compare.sh [--rounds R] [--count N] [--cold S] A.zip B.zip [...] — the same
# warm measurements as bench/run.sh (create, get, list, update, delete through the
# Lambda loop on dynalite, Lambda's environment), for several packages in
# *interleaved* rounds (A, B, ..., floor; A, B, ..., floor; ...), plus S cold
# starts of each package, also interleaved. Prints a markdown table of the
# medians over the rounds.
#
# On a shared machine the speed drifts by tens of percent over minutes, so two
# separate bench/run.sh runs cannot show a 20 % change; interleaving can. This is
# how the before/after figures of README's Performance section were made:
#   bench/compare.sh --rounds 5 --count 3000 before.zip after.zip
# Defaults: 5 rounds, 3000 requests per operation (after 100 warm-up), 30 cold
# starts. Needs bench/run.sh's tools: run `bench/run.sh --quick` once first.
set -euo pipefail
bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench/.." && pwd)
work=${BENCH_WORK:-$bench/.work}
rounds=5 count=3000 cold=30
zips=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=${2:?}; shift ;;
    --count) count=${2:?}; shift ;;
    --cold) cold=${2:?}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) zips+=("$1") ;;
  esac
  shift
done
[ ${#zips[@]} -ge 1 ] || { echo "usage: bench/compare.sh [--rounds R] [--count N] A.zip [B.zip ...]" >&2; exit 2; }
for t in rapi floor; do
  [ -x "$work/$t" ] || { echo "compare.sh: $work/$t missing: run bench/run.sh --quick first" >&2; exit 2; }
done

cmp=$work/compare
rm -rf "$cmp"
mkdir -p "$cmp"
names=()
for z in "${zips[@]}"; do
  n=$(basename "$z" .zip)
  while [ -e "$cmp/$n" ]; do n=$n.2; done
  mkdir -p "$cmp/$n"
  unzip -q "$z" -d "$cmp/$n"
  names+=("$n")
done

export DYNALITE_DIR=$cmp/dynalite TABLE_NAME=taskhost-bench
mkdir -p "$DYNALITE_DIR"
trap 'bash "$root/tests/integration/dynalite.sh" stop 2>/dev/null || true' EXIT
bash "$root/tests/integration/dynalite.sh" start
ENDPOINT="http://127.0.0.1:$(cat "$DYNALITE_DIR/port")"
source "$bench/lib.sh"
ev=$cmp/events
write_events "$ev"
plan_ops "$count" 100 >"$cmp/plan.txt"
out=$cmp/results.jsonl
: >"$out"

for r in $(seq 1 "$rounds"); do
  for n in "${names[@]}"; do
    echo "[compare] round $r/$rounds: $n" >&2
    lambda_env "$cmp/$n"
    (cd "$cmp/$n" && env -i "${LAMBDA_ENV[@]}" TASKHOST_STORE=dynamodb "$work/rapi" cold --starts "$cold" \
      --event "$ev/list.json" -- ./bootstrap 2>/dev/null) | jq -c --arg w "$n" 'select(.summary) | . + {who: $w}' >>"$out"
    (cd "$cmp/$n" && env -i "${LAMBDA_ENV[@]}" TASKHOST_STORE=dynamodb "$work/rapi" warm --plan "$cmp/plan.txt" \
      -- ./bootstrap 2>/dev/null) | jq -c --arg w "$n" 'select(.phase) | . + {who: $w}' >>"$out"
  done
  echo "[compare] round $r/$rounds: floor" >&2
  lambda_env "$cmp"
  env -i "${LAMBDA_ENV[@]}" "$work/floor" --warmup 100 --count "$count" | jq -c '. + {who: "floor"}' >>"$out"
done

python3 - "$out" "${names[@]}" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = sys.argv[2:]
floor_of = {"create": "put", "get": "get", "list": "query", "update": "update", "delete": "delete"}
def med(who, phase, key):
    v = [r[key] for r in rows if r.get("who") == who and r.get("phase") == phase]
    return statistics.median(v) if v else None
def cold(who, key):
    v = [r[key] for r in rows if r.get("who") == who and r.get("summary")]
    return statistics.median(v) if v else None
n = len([r for r in rows if r.get("who") == "floor" and r.get("phase") == "get"])
print("Medians over %d interleaved rounds (dynalite, Lambda environment)." % n)
print()
print("| | " + " | ".join(names) + " | floor |")
print("|---" * (len(names) + 2) + "|")
for key, label in (("init_p50_ms", "cold start init, median (ms)"), ("first_p50_ms", "cold start first response, median (ms)"),
                   ("cpu_p50_ms", "cold start CPU to first response (ms)")):
    print("| %s | " % label + " | ".join("%.1f" % cold(w, key) for w in names) + " | |")
for phase in ("create", "get", "list", "update", "delete"):
    for key, label in (("cpu_us", "CPU per request (µs)"), ("p50_us", "p50 latency (µs)"), ("p99_us", "p99 latency (µs)")):
        f = med("floor", floor_of[phase], key)
        print("| %s · %s | " % (phase, label) + " | ".join("%.0f" % med(w, phase, key) for w in names)
              + " | %s |" % ("%.0f" % f if f is not None else ""))
EOF
