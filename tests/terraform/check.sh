#!/usr/bin/env bash
# Terraform checks without a Terraform binary (CTest: terraform.checks).
#   tests/terraform/check.sh [REPO_ROOT]
# Installs the pinned parser (@cdktf/hcl2json, package-lock.json) on first use, parses every
# .tf file under terraform/, and checks the deployment's consistencies (check.js says which).
# One line per check, then "N passed, N failed"; exit 1 when a check failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${1:-$(cd "$here/../.." && pwd)}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "FAIL - tooling: node and npm are needed (scripts/deps.sh --test installs them)"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -f "$here/node_modules/@cdktf/hcl2json/package.json" ]; then
  echo "check.sh: installing the pinned HCL parser (npm ci in tests/terraform)" >&2
  # A lock directory keeps two concurrent first runs (ctest -j) from racing in node_modules.
  lock="$here/.npm-ci.lock"
  for _ in $(seq 1 300); do mkdir "$lock" 2>/dev/null && break; sleep 1; done
  trap 'rmdir "$lock" 2>/dev/null || true' EXIT
  if [ ! -f "$here/node_modules/@cdktf/hcl2json/package.json" ]; then
    if ! (cd "$here" && npm ci --no-audit --no-fund >&2); then
      echo "FAIL - tooling: 'npm ci' in tests/terraform failed (is the npm registry reachable?)"
      echo "0 passed, 1 failed"
      exit 1
    fi
  fi
  rmdir "$lock" 2>/dev/null || true
  trap - EXIT
fi
exec node "$here/check.js" "$root"
