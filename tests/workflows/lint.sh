#!/usr/bin/env bash
# lint.sh — checks .github/workflows/*.yml (CTest: workflows.lint):
#   * action-validator (npm @action-validator/cli, WebAssembly: no download at run time, works
#     offline once `npm ci` has installed it; pinned by tests/workflows/package-lock.json)
#     validates each file against GitHub's workflow schema;
#   * policy.py: what the schema cannot say (OIDC only, plan on PRs, deploy on main behind the
#     production environment, then the smoke test; ci.yml runs .ci/run on push and PR);
#   * each check can fail: broken copies of the workflows (a misspelt key, an access key
#     instead of the role, no environment, no pull_request trigger) are rejected.
# Without node/npm it prints "SKIP: ..." (exit 0), except under CI=true (a failure).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
wf=$root/.github/workflows
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  [ "${CI:-}" = true ] && { echo "FAIL: node/npm not installed (scripts/deps.sh --test)"; exit 1; }
  echo "SKIP: node/npm not installed (scripts/deps.sh --test installs them)"
  exit 0
fi
/usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "FAIL: python3-yaml not installed (scripts/deps.sh --test)"; exit 1; }
if [ ! -f "$here/node_modules/@action-validator/cli/package.json" ]; then
  lock="$here/.npm-ci.lock"
  for _ in $(seq 1 300); do mkdir "$lock" 2>/dev/null && break; sleep 1; done
  if [ ! -f "$here/node_modules/@action-validator/cli/package.json" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts >&2) ||
      { rmdir "$lock"; echo "FAIL: 'npm ci' in tests/workflows failed (is the npm registry reachable?)"; exit 1; }
  fi
  rmdir "$lock" 2>/dev/null || true
fi
validator=$here/node_modules/.bin/action-validator
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

# ---- the workflows as they are ------------------------------------------------------------
n=0
for f in "$wf"/*.yml "$wf"/*.yaml; do
  [ -e "$f" ] || continue
  n=$((n + 1))
  if out=$("$validator" "$f" 2>&1); then ok "action-validator: ${f#"$root"/}"
  else bad "action-validator: ${f#"$root"/}"; echo "$out" | sed 's/^/    | /'; fi
done
[ "$n" -ge 2 ] && ok "workflows found: $n" || bad "workflows found: $n (want ci.yml and deploy.yml)"
if out=$(/usr/bin/python3 "$here/policy.py" "$wf" 2>&1); then ok "policy.py: ci.yml and deploy.yml"
else bad "policy.py"; echo "$out" | sed 's/^/    | /'; fi

# ---- broken copies: each rejected ---------------------------------------------------------
# mutate NAME FILE SED-PROGRAM: a copy of the workflows with FILE edited.
mutate() {
  rm -rf "$t/wf" && cp -r "$wf" "$t/wf"
  sed -i "$3" "$t/wf/$2"
  if cmp -s "$wf/$2" "$t/wf/$2"; then bad "$1: the edit changed nothing (fix the test)"; return 1; fi
}
mutate "a misspelt key" ci.yml 's/^    steps:/    stepz:/' &&
  if "$validator" "$t/wf/ci.yml" >/dev/null 2>&1; then bad "action-validator accepts 'stepz:'"
  else ok "action-validator rejects a misspelt key (stepz:)"; fi
mutate "a job without runs-on" deploy.yml '0,/^    runs-on: ubuntu-latest$/{/^    runs-on: ubuntu-latest$/d}' &&
  if "$validator" "$t/wf/deploy.yml" >/dev/null 2>&1; then bad "action-validator accepts a job without runs-on"
  else ok "action-validator rejects a job without runs-on"; fi
policy_rejects() { # NAME FILE SED-PROGRAM EXPECTED-TEXT
  mutate "$1" "$2" "$3" || return
  if out=$(/usr/bin/python3 "$here/policy.py" "$t/wf" 2>&1); then bad "policy.py accepts $1"
  elif grep -qF -- "$4" <<<"$out"; then ok "policy.py rejects $1"
  else bad "policy.py rejects $1, but not saying '$4': $out"; fi
}
policy_rejects "an access key instead of the role" deploy.yml \
  's/role-to-assume: \${{ vars.AWS_DEPLOY_ROLE_ARN }}/aws-access-key-id: ${{ secrets.KEY }}/' \
  "mentions aws-access-key-id"
policy_rejects "a deploy without the production environment" deploy.yml 's/name: production/name: staging/' \
  "must run in the production environment"
policy_rejects "no OIDC permission" deploy.yml 's/id-token: write/id-token: none/' "id-token must be write"
policy_rejects "a deploy off main" deploy.yml "s|github.ref == 'refs/heads/main' \&\& ||" "must be limited to main"
policy_rejects "no smoke test after the deploy" deploy.yml 's|scripts/smoke.sh "\$url"|echo "$url"|g' \
  "must run scripts/smoke.sh after"
policy_rejects "--allow-replace in CI" deploy.yml 's|scripts/deploy.sh --no-smoke|scripts/deploy.sh --no-smoke --allow-replace|' \
  "--allow-replace"
policy_rejects "CI without pull requests" ci.yml 's/^  pull_request:$/  release:/' "must run on push and pull_request"
policy_rejects "CI that does not run .ci/run" ci.yml 's|run: .ci/run|run: scripts/build.sh|' "no job runs .ci/run"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
