#!/usr/bin/env bash
# scripts/deploy.sh and scripts/teardown.sh (CTest: terraform.deploy_prereqs).
#
# Runs both scripts from a scratch copy of the repository with a PATH that holds only the
# few base tools they use, so terraform and aws are missing unless a scenario adds a stub for
# them. Asserts the one-line messages and the exit status of each missing prerequisite, then,
# with stubs that record their arguments, the order of the terraform commands (init, plan
# -out, apply of that plan; teardown's deletion-protection apply before destroy). No network,
# no AWS account: the stubs answer everything.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }

# A scratch repository: the two scripts, an empty terraform/ and no package yet.
mkdir -p "$t/repo/scripts" "$t/repo/terraform" "$t/repo/dist" "$t/home" "$t/bin" "$t/stubs"
cp "$repo/scripts/deploy.sh" "$repo/scripts/teardown.sh" "$t/repo/scripts/"
ZIP="$t/repo/dist/taskhost-lambda.zip"

# The base tools, nothing else: no terraform, no aws.
for tool in bash dirname basename head tail sed grep mktemp rm cat env; do
  src=$(command -v "$tool") || { echo "test needs $tool"; exit 1; }
  ln -s "$src" "$t/bin/$tool"
done
BASH_BIN=$(command -v bash)

# Stubs, put on PATH per scenario.
mkdir -p "$t/stubs/terraform" "$t/stubs/aws"
cat > "$t/stubs/terraform/terraform" <<EOF
#!$BASH_BIN
echo "terraform \$*" >>"\$STUB_LOG"
case \$1 in
  version) echo "\${STUB_TF_VERSION_LINE:-Terraform v1.11.4}"; echo "on linux_amd64" ;;
  -chdir=*)
    case \$2 in
      output)
        case \$4 in
          api_endpoint) echo "https://abc123.execute-api.eu-west-1.amazonaws.com" ;;
          table_name) echo "taskhost-tasks" ;;
          log_group) echo "/aws/lambda/taskhost" ;;
        esac ;;
      state) [ "\${STUB_TF_EMPTY_STATE:-0}" = 1 ] || printf 'aws_dynamodb_table.tasks\nmodule.lambda.aws_lambda_function.this\n' ;;
    esac ;;
esac
exit 0
EOF
cat > "$t/stubs/aws/aws" <<EOF
#!$BASH_BIN
echo "aws \$*" >>"\$STUB_LOG"
case "\$1 \$2" in
  "sts get-caller-identity")
    if [ "\${STUB_AWS_CREDS:-1}" = 1 ]; then echo "arn:aws:iam::123456789012:user/dev"
    else echo "" >&2; echo "Unable to locate credentials. You can configure credentials by running \"aws configure\"." >&2; exit 253; fi ;;
  "configure get") [ -n "\${STUB_AWS_PROFILE_REGION:-}" ] && echo "\$STUB_AWS_PROFILE_REGION" || exit 1 ;;
esac
EOF
chmod +x "$t/stubs/terraform/terraform" "$t/stubs/aws/aws"
cat > "$t/package.sh" <<EOF
#!$BASH_BIN
echo "package.sh \$*" >>"\$STUB_LOG"
: >"$ZIP"
EOF

# run SCRIPT PATH_EXTRA [VAR=VALUE...] -- ARGS...  → $out (stdout+stderr), $rc, $log
run() {
  local script=$1 extra=$2
  shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  : >"$t/log"
  set +e
  out=$(/usr/bin/env -i HOME="$t/home" PATH="${extra:+$extra:}$t/bin" STUB_LOG="$t/log" \
    "${envs[@]+"${envs[@]}"}" "$BASH_BIN" "$t/repo/scripts/$script" "$@" </dev/null 2>&1)
  rc=$?
  set -e
  log=$(cat "$t/log")
}

# expect NAME RC TEXT...  (every TEXT must appear in $out)
expect() {
  local name=$1 want=$2
  shift 2
  local missing=()
  for text in "$@"; do grep -qF -- "$text" <<<"$out" || missing+=("$text"); done
  if [ "$rc" -eq "$want" ] && [ ${#missing[@]} -eq 0 ]; then
    ok "$name"
  else
    bad "$name: exit $rc (want $want); missing: ${missing[*]-none}"
    sed 's/^/    | /' <<<"$out"
  fi
}
no_call() { # NAME PATTERN: the stub log must not contain PATTERN
  if grep -q -- "$2" <<<"$log"; then bad "$1: '$2' was run"; else ok "$1"; fi
}

TF="$t/stubs/terraform"
AWS="$t/stubs/aws"
BOTH="$TF:$AWS"

# --- nothing installed ------------------------------------------------------------------
run deploy.sh "" --
expect "deploy: no terraform, no aws, no package → each named, exit 1" 1 \
  "deploy.sh: terraform not found on PATH: install Terraform 1.5 or newer" \
  "deploy.sh: aws CLI not found on PATH" \
  "deploy.sh: scripts/package.sh not found and dist/taskhost-lambda.zip does not exist" \
  "deploy.sh: 3 prerequisite(s) missing; nothing was deployed"
run teardown.sh "" --
expect "teardown: no terraform, no aws → each named, exit 1" 1 \
  "teardown.sh: terraform not found on PATH" "teardown.sh: aws CLI not found on PATH" \
  "teardown.sh: 2 prerequisite(s) missing; nothing was destroyed"

# --- one missing at a time ----------------------------------------------------------------
: >"$ZIP"
run deploy.sh "$AWS" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: only terraform missing → exit 1, one problem" 1 \
  "terraform not found on PATH" "1 prerequisite(s) missing"
run deploy.sh "$TF" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: only aws missing → exit 1, one problem" 1 \
  "aws CLI not found on PATH" "1 prerequisite(s) missing"
run teardown.sh "$TF" AWS_REGION=eu-west-1 -- --yes
expect "teardown: only aws missing → exit 1" 1 "teardown.sh: aws CLI not found on PATH"
run teardown.sh "$AWS" AWS_REGION=eu-west-1 -- --yes
expect "teardown: only terraform missing → exit 1" 1 "teardown.sh: terraform not found on PATH"

run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_VERSION_LINE="Terraform v1.4.6" -- --no-package
expect "deploy: terraform 1.4.6 → too old" 1 "terraform 1.4.6 is too old: need 1.5 or newer"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_VERSION_LINE="Terraform v0.15.5" -- --no-package
expect "deploy: terraform 0.15.5 → too old" 1 "terraform 0.15.5 is too old"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_VERSION_LINE="OpenTofu v1.8.0" -- --no-package
expect "deploy: unreadable version → said so" 1 "cannot tell the terraform version"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_VERSION_LINE="Terraform v1.5.0" -- --no-package
expect "deploy: terraform 1.5.0 is enough" 0 "api_endpoint = https://abc123.execute-api.eu-west-1.amazonaws.com"

run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_AWS_CREDS=0 -- --no-package
expect "deploy: no credentials → the aws error and how to fix it" 1 \
  "AWS credentials do not work (\`aws sts get-caller-identity\` failed: Unable to locate credentials" \
  "aws configure"
no_call "deploy: no terraform command runs without credentials" "terraform -chdir"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 STUB_AWS_CREDS=0 -- --yes
expect "teardown: no credentials → exit 1" 1 "AWS credentials do not work"

run deploy.sh "$BOTH" -- --no-package
expect "deploy: no region anywhere → said so" 1 "no AWS region: set AWS_REGION"
run deploy.sh "$BOTH" -- --no-package -var region=ap-southeast-2
expect "deploy: -var region=… is a region" 0 "api_endpoint ="
run deploy.sh "$BOTH" STUB_AWS_PROFILE_REGION=eu-central-1 -- --no-package
expect "deploy: the profile's region is a region" 0 "to eu-central-1"

rm -f "$ZIP"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: --no-package without a zip → said so" 1 \
  "--no-package, but dist/taskhost-lambda.zip does not exist: run scripts/package.sh"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 --
expect "deploy: no package.sh, no zip → said so" 1 \
  "scripts/package.sh not found and dist/taskhost-lambda.zip does not exist"

run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --bogus
expect "deploy: unknown option → exit 2" 2 "unknown option --bogus"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "teardown: deploy's --no-package is not teardown's → exit 2" 2 "unknown option --no-package"
run deploy.sh "" -- --help
expect "deploy: --help" 0 "scripts/deploy.sh [--no-package | --lua-only]"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package --lua-only
expect "deploy: --no-package with --lua-only → exit 2" 2 "exclude each other"

# --- everything there (stubs): the commands and their order ----------------------------------
cp "$t/package.sh" "$t/repo/scripts/package.sh"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- -var cors_origin=https://app.example -var-file prod.tfvars
expect "deploy: packages, applies and prints the URL and a curl line" 0 \
  "api_endpoint = https://abc123.execute-api.eu-west-1.amazonaws.com" \
  "export API_URL=https://abc123.execute-api.eu-west-1.amazonaws.com" \
  "curl -s \$API_URL/tasks"
want="package.sh 
terraform -chdir=$t/repo/terraform init -input=false
terraform -chdir=$t/repo/terraform plan -input=false -out=$t/repo/terraform/taskhost.tfplan -var cors_origin=https://app.example -var-file prod.tfvars
terraform -chdir=$t/repo/terraform apply -input=false $t/repo/terraform/taskhost.tfplan"
got=$(grep -E '^(package.sh|terraform -chdir=[^ ]* (init|plan|apply))' <<<"$log")
if [ "$got" = "$want" ]; then ok "deploy: package, init, plan -out (vars passed), apply that plan — in order"
else bad "deploy: command order"; diff <(echo "$want") <(echo "$got") | sed 's/^/    | /'; fi

expect "deploy: without unzip, the package self-check is skipped with a note" 0 \
  "unzip not found, so the package's self-check (bootstrap --check) is skipped"

run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
no_call "deploy --no-package: package.sh is not run" "^package.sh"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --lua-only
if grep -qx "package.sh --lua-only" <<<"$log"; then ok "deploy --lua-only: package.sh --lua-only (re-zip, no compile)"
else bad "deploy --lua-only: package.sh calls: $(grep '^package.sh' <<<"$log")"; fi

# --- the package self-check: the zip's bootstrap --check, before any terraform command ----
if command -v zip >/dev/null && command -v unzip >/dev/null; then
  mkdir -p "$t/unzip"
  ln -s "$(command -v unzip)" "$t/unzip/unzip"
  # make_zip BOOTSTRAP_BODY: a package whose bootstrap is a script (or none when empty).
  make_zip() {
    rm -rf "$t/pkg" "$ZIP"
    mkdir -p "$t/pkg/lua"
    echo 'return {}' >"$t/pkg/lua/routes.lua"
    if [ -n "$1" ]; then
      printf '#!%s\n%s\n' "$BASH_BIN" "$1" >"$t/pkg/bootstrap"
      chmod 0755 "$t/pkg/bootstrap"
    fi
    (cd "$t/pkg" && zip -qr "$ZIP" .)
  }
  make_zip 'echo "ok: configuration and route scripts ($PWD/pkg/lua) load"; [ "$1" = --check ]'
  run deploy.sh "$BOTH:$t/unzip" AWS_REGION=eu-west-1 -- --no-package
  expect "deploy: the package's bootstrap --check passes → deploys" 0 \
    "== package self-check: ok: configuration and route scripts" "api_endpoint ="
  make_zip 'echo "taskhost: cannot load the route scripts: lua/routes.lua:3: unexpected symbol near x" >&2; exit 1'
  run deploy.sh "$BOTH:$t/unzip" AWS_REGION=eu-west-1 -- --no-package
  expect "deploy: a route script that does not load stops the deploy" 1 \
    "the packaged bootstrap fails its start-up check" "lua/routes.lua:3: unexpected symbol" "nothing was deployed"
  no_call "deploy: no terraform command after a failed self-check" "terraform -chdir"
  make_zip ""
  run deploy.sh "$BOTH:$t/unzip" AWS_REGION=eu-west-1 -- --no-package
  expect "deploy: a zip without bootstrap at its root stops the deploy" 1 "has no bootstrap at its root"
  echo "not a zip" >"$ZIP"
  run deploy.sh "$BOTH:$t/unzip" AWS_REGION=eu-west-1 -- --no-package
  expect "deploy: a corrupt zip stops the deploy" 1 "is not a valid zip"
  : >"$ZIP"
else
  ok "deploy: package self-check scenarios # SKIP zip/unzip not installed"
fi

run teardown.sh "$BOTH" AWS_REGION=eu-west-1 --
expect "teardown: no terminal, no --yes → refuses" 1 "pass --yes"
no_call "teardown: nothing destroyed without confirmation" "destroy"

run teardown.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_EMPTY_STATE=1 -- --yes
expect "teardown: empty state → nothing to destroy, exit 0" 0 "nothing to destroy"
no_call "teardown: empty state → no destroy" "destroy"

run teardown.sh "$BOTH" AWS_REGION=eu-west-1 -- --yes -var name=demo
expect "teardown --yes: destroys" 0 "== destroyed"
want="terraform -chdir=$t/repo/terraform apply -input=false -auto-approve -target=aws_dynamodb_table.tasks -var name=demo -var deletion_protection=false
terraform -chdir=$t/repo/terraform destroy -input=false -auto-approve -var name=demo -var deletion_protection=false"
got=$(grep -E '^terraform -chdir=[^ ]* (apply|destroy)' <<<"$log")
if [ "$got" = "$want" ]; then ok "teardown: deletion protection off (targeted apply), then destroy"
else bad "teardown: command order"; diff <(echo "$want") <(echo "$got") | sed 's/^/    | /'; fi

rm -f "$ZIP"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 -- --yes
if [ "$rc" -eq 0 ] && grep -q 'destroy .*-var package_path=.*placeholder.zip' <<<"$log"; then
  ok "teardown: without the zip, a placeholder package_path keeps destroy working"
else bad "teardown without the zip: exit $rc"; sed 's/^/    | /' <<<"$log"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
