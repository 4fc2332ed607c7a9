#!/usr/bin/env bash
# scripts/deploy.sh and scripts/teardown.sh (CTest: terraform.deploy_prereqs).
#
# Runs both scripts from a scratch copy of the repository with a PATH that holds only the
# few base tools they use, so terraform and aws are missing unless a scenario adds a stub for
# them. Asserts the one-line messages and the exit status of each missing prerequisite, then,
# with stubs that record their arguments, the order of the terraform commands (init, plan
# -out, apply of that plan; teardown's deletion-protection plan and apply before destroy),
# the region read from -var, -var-file and terraform/*.tfvars, the refusals (a state in
# another region, a plan that deletes the table or the role, a bootstrap that is not an ELF
# for the function's architecture: var.architecture, x86_64 here unless a scenario says
# otherwise, arm64 by default). No network, no AWS account: the stubs answer everything.
# tests/terraform/test_moto.sh runs the same scripts with real Terraform against moto.
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
cp "$repo/scripts/deploy.sh" "$repo/scripts/teardown.sh" "$repo/scripts/lambda-fit.sh" "$t/repo/scripts/"
ZIP="$t/repo/dist/taskhost-lambda-x86_64.zip"
ZIP_ARM="$t/repo/dist/taskhost-lambda-arm64.zip"
# A local state holding a resource: teardown.sh reads it before anything else (without one it
# says "nothing deployed"); the stub terraform answers the rest.
STATE='{"version": 4, "resources": [{"mode": "managed", "type": "aws_dynamodb_table", "name": "tasks"}]}'
echo "$STATE" >"$t/repo/terraform/terraform.tfstate"

# The base tools, nothing else: no terraform, no aws. jq, unzip and readelf are deploy's own
# prerequisites: bin/ has them, nojq/ is the same without jq.
mkdir -p "$t/nojq"
# curl is deploy's when it runs the smoke test: nocurl/ is bin/ without it.
mkdir -p "$t/nocurl"
for tool in bash dirname basename head tail sed grep mktemp rm cat cp env sort tr awk jq unzip readelf curl; do
  src=$(command -v "$tool") || { echo "test needs $tool"; exit 1; }
  ln -s "$src" "$t/bin/$tool"
  [ "$tool" = jq ] || ln -s "$src" "$t/nojq/$tool"
  [ "$tool" = curl ] || ln -s "$src" "$t/nocurl/$tool"
done

# Real x86-64 ELF bootstraps (they fit Lambda: glibc only): one whose --check passes, one whose
# --check fails as a route script with a syntax error would.
cat >"$t/boot.c" <<'EOF'
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--check") != 0) return 2;
#ifdef FAIL
  fputs("taskhost: cannot load the route scripts: lua/routes.lua:3: unexpected symbol near x\n", stderr);
  return 1;
#else
  puts("ok: configuration and route scripts (lua) load");
  return 0;
#endif
}
EOF
cc -O1 -o "$t/boot-ok" "$t/boot.c" && cc -O1 -DFAIL -o "$t/boot-fail" "$t/boot.c" ||
  { echo "test needs a C compiler"; exit 1; }
# make_zip BOOTSTRAP: a package with that file as bootstrap (none when empty) and lua/.
make_zip() {
  rm -rf "$t/pkg" "$ZIP"
  mkdir -p "$t/pkg/lua"
  echo 'return {}' >"$t/pkg/lua/routes.lua"
  if [ -n "$1" ]; then cp "$1" "$t/pkg/bootstrap"; chmod 0755 "$t/pkg/bootstrap"; fi
  (cd "$t/pkg" && zip -qr "$ZIP" .)
}
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
          cognito_user_pool_id) [ -n "\${STUB_TF_POOL:-}" ] && echo "\"\$STUB_TF_POOL\"" || echo null ;;
          -json) [ -n "\${STUB_TF_STATE_REGION:-}" ] && echo "{\\"region\\":{\\"value\\":\\"\$STUB_TF_STATE_REGION\\"}}" || echo "{}" ;;
        esac ;;
      state) [ "\${STUB_TF_EMPTY_STATE:-0}" = 1 ] || printf 'aws_dynamodb_table.tasks\nmodule.lambda.aws_lambda_function.this\n' ;;
      show) echo "\${STUB_TF_SHOW_JSON:-{\}}" ;;
    esac ;;
esac
exit 0
EOF
cat > "$t/stubs/aws/aws" <<EOF
#!$BASH_BIN
echo "aws \$*" >>"\$STUB_LOG"
case "\$1 \$2" in
  "sts get-caller-identity")
    case \${STUB_AWS_CREDS:-1} in
      1) echo "arn:aws:iam::123456789012:user/dev" ;;
      net) echo "" >&2; echo "Could not connect to the endpoint URL: \"https://sts.\$4.amazonaws.com/\"" >&2; exit 255 ;;
      bad) echo "" >&2; echo "An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation: The security token included in the request is invalid." >&2; exit 254 ;;
      *) echo "" >&2; echo "Unable to locate credentials. You can configure credentials by running \"aws configure\"." >&2; exit 253 ;;
    esac ;;
  "configure get") [ -n "\${STUB_AWS_PROFILE_REGION:-}" ] && echo "\$STUB_AWS_PROFILE_REGION" || exit 1 ;;
esac
EOF
chmod +x "$t/stubs/terraform/terraform" "$t/stubs/aws/aws"
# scripts/smoke.sh (deploy runs it after the apply): records its arguments, exits STUB_SMOKE_RC.
cat > "$t/repo/scripts/smoke.sh" <<EOF
#!$BASH_BIN
echo "smoke.sh \$*" >>"\$STUB_LOG"
echo "== smoke.sh: stub"
exit \${STUB_SMOKE_RC:-0}
EOF
cat > "$t/package.sh" <<EOF
#!$BASH_BIN
echo "package.sh \$*" >>"\$STUB_LOG"
[ "\$1" = --arch ] || { echo "package.sh stub: no --arch" >&2; exit 2; }
cp "$t/good.zip" "$t/repo/dist/taskhost-lambda-\$2.zip"
EOF
make_zip "$t/boot-ok"
cp "$ZIP" "$t/good.zip"
rm -f "$ZIP"

# run SCRIPT PATH_EXTRA [VAR=VALUE...] -- ARGS...  → $out (stdout+stderr), $rc, $log
run() {
  local script=$1 extra=$2
  shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  : >"$t/log"
  set +e
  out=$(/usr/bin/env -i HOME="$t/home" PATH="${extra:+$extra:}${base_bin:-$t/bin}" STUB_LOG="$t/log" \
    TF_VAR_architecture="${TF_ARCH-x86_64}" "${envs[@]+"${envs[@]}"}" "$BASH_BIN" "$t/repo/scripts/$script" "$@" </dev/null 2>&1)
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
  "deploy.sh: scripts/package.sh not found and dist/taskhost-lambda-x86_64.zip does not exist" \
  "deploy.sh: 3 prerequisite(s) missing; nothing was deployed"
run teardown.sh "" --
expect "teardown: no terraform, no aws → each named, exit 1" 1 \
  "teardown.sh: terraform not found on PATH" "teardown.sh: aws CLI not found on PATH" \
  "teardown.sh: 2 prerequisite(s) missing; nothing was destroyed"

# --- one missing at a time ----------------------------------------------------------------
make_zip "$t/boot-ok"
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
run deploy.sh "$BOTH" STUB_AWS_CREDS=0 -- --no-package
expect "deploy: no region and no credentials → both named" 1 "no AWS region: set AWS_REGION" \
  "AWS credentials do not work (\`aws sts get-caller-identity\` failed: Unable to locate credentials" \
  "2 prerequisite(s) missing"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_AWS_CREDS=net -- --no-package
expect "deploy: AWS unreachable → the network named, not the credentials" 1 \
  "cannot reach AWS: the network is unreachable from here" "Could not connect to the endpoint URL" \
  "the credentials were not checked"
if grep -q "credentials do not work" <<<"$out"; then bad "deploy: unreachable network blamed on the credentials"
else ok "deploy: unreachable network not blamed on the credentials"; fi
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_AWS_CREDS=bad -- --no-package
expect "deploy: credentials refused by AWS → said so, not the network" 1 \
  "AWS credentials do not work: AWS refused them" "InvalidClientTokenId"
if grep -q "cannot reach AWS" <<<"$out"; then bad "deploy: refused credentials blamed on the network"
else ok "deploy: refused credentials not blamed on the network"; fi
run deploy.sh "$BOTH" -- --no-package -var region=ap-southeast-2
expect "deploy: -var region=… is a region" 0 "api_endpoint ="
run deploy.sh "$BOTH" STUB_AWS_PROFILE_REGION=eu-central-1 -- --no-package
expect "deploy: the profile's region is a region" 0 "to eu-central-1"

run deploy.sh "$BOTH" -- --no-package -var-file "$t/region.tfvars"
expect "deploy: a -var-file that does not exist is Terraform's to report" 1 "no AWS region"
printf 'name = "x"\nregion = "sa-east-1"\n' >"$t/region.tfvars"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package -var-file "$t/region.tfvars"
expect "deploy: the region of a -var-file wins over AWS_REGION" 0 "to sa-east-1"
if grep -q "sts get-caller-identity --region sa-east-1" <<<"$log"; then ok "deploy: STS is asked in that region (AWS CLI v1 reads no AWS_REGION)"
else bad "deploy: sts call: $(grep sts <<<"$log")"; fi
printf '{"region": "ca-central-1"}\n' >"$t/region.tfvars.json"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package -var-file="$t/region.tfvars.json" -var region=me-south-1
expect "deploy: a later -var wins over an earlier JSON -var-file" 0 "to me-south-1"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package -var region=me-south-1 -var-file="$t/region.tfvars.json"
expect "deploy: a later JSON -var-file wins over an earlier -var" 0 "to ca-central-1"
printf 'region = "ap-south-1"\n' >"$t/repo/terraform/terraform.tfvars"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: terraform/terraform.tfvars wins over AWS_REGION" 0 "to ap-south-1"
printf 'region = "ap-east-1"\n' >"$t/repo/terraform/b.auto.tfvars"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: terraform/*.auto.tfvars wins over terraform.tfvars" 0 "to ap-east-1"
rm -f "$t/repo/terraform/terraform.tfvars" "$t/repo/terraform/b.auto.tfvars"
(cd "$t" && run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package -var-file region.tfvars &&
  if grep -q -- "-var-file $t/region.tfvars" <<<"$log"; then ok "deploy: a relative -var-file is taken from the current directory"
  else bad "deploy: -var-file passed as $(grep -o -- '-var-file [^ ]*' <<<"$log" | head -n 1)"; fi)

base_bin=$t/nojq
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
base_bin=""
expect "deploy: no jq → said so" 1 "jq not found on PATH" "1 prerequisite(s) missing"

run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_STATE_REGION=us-west-2 -- --no-package
expect "deploy: the state's stack is in another region → refused, one line" 1 \
  "the stack in the Terraform state is in us-west-2, not eu-west-1: run with AWS_REGION=us-west-2"
no_call "deploy: no plan against a state of another region" "terraform -chdir=[^ ]* plan"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_STATE_REGION=us-west-2 -- --yes
expect "teardown: the state's stack is in another region → refused" 1 \
  "is in us-west-2, not eu-west-1: run with AWS_REGION=us-west-2 (or -var region=us-west-2); nothing was destroyed"
no_call "teardown: nothing applied or destroyed from the wrong region" "terraform -chdir=[^ ]* \(apply\|destroy\)"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_STATE_REGION=eu-west-1 -- --no-package
expect "deploy: the state's stack in the same region → deploys" 0 "api_endpoint ="

replace_json='{"resource_changes":[{"address":"aws_dynamodb_table.tasks","change":{"actions":["delete","create"]}},{"address":"module.lambda.aws_lambda_function.this","change":{"actions":["update"]}}]}'
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_SHOW_JSON="$replace_json" -- --no-package
expect "deploy: a plan replacing the table, no terminal → refused" 1 \
  "this plan destroys or replaces:" "aws_dynamodb_table.tasks: delete then create" "nothing was applied"
no_call "deploy: the replacing plan is not applied" "terraform -chdir=[^ ]* apply"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_SHOW_JSON="$replace_json" -- --no-package --allow-replace
expect "deploy --allow-replace: applied" 0 "--allow-replace given: applying it" "api_endpoint ="
role_json='{"resource_changes":[{"address":"module.lambda.aws_iam_role.function","change":{"actions":["delete"]}}]}'
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_SHOW_JSON="$role_json" -- --no-package
expect "deploy: a plan deleting the role → refused" 1 "module.lambda.aws_iam_role.function: delete"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_SHOW_JSON='{"resource_changes":[{"address":"aws_dynamodb_table.tasks","change":{"actions":["create"]}}]}' -- --yes
expect "teardown: turning protection off would create a table → refused" 1 \
  "aws_dynamodb_table.tasks: create" "the state does not match the stack in eu-west-1; nothing was destroyed"
no_call "teardown: nothing destroyed then" "terraform -chdir=[^ ]* destroy"
pool_json='{"resource_changes":[{"address":"aws_cognito_user_pool.users[0]","change":{"actions":["delete"]}},{"address":"aws_apigatewayv2_authorizer.jwt[0]","change":{"actions":["delete"]}}]}'
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_SHOW_JSON="$pool_json" -- --no-package -var auth=none
expect "deploy: a plan deleting the user pool (every account) → refused" 1 \
  "aws_cognito_user_pool.users[0]: delete" "nothing was applied"
no_call "deploy: the pool-deleting plan is not applied" "terraform -chdir=[^ ]* apply"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_SHOW_JSON='{"resource_changes":[{"address":"aws_dynamodb_table.tasks","change":{"actions":["update"]}},{"address":"aws_cognito_user_pool.users[0]","change":{"actions":["update"]}}]}' -- --yes
expect "teardown: the table's and the pool's protection off in place → destroys" 0 "== destroyed"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_SHOW_JSON='{"resource_changes":[{"address":"aws_cognito_user_pool.users[0]","change":{"actions":["delete"]}}]}' -- --yes
expect "teardown: the protection step would delete the pool → refused" 1 \
  "aws_cognito_user_pool.users[0]: delete" "the state does not match the stack in eu-west-1; nothing was destroyed"
no_call "teardown: nothing destroyed then" "terraform -chdir=[^ ]* destroy"

rm -f "$ZIP"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: --no-package without a zip → said so" 1 \
  "--no-package, but dist/taskhost-lambda-x86_64.zip does not exist: run scripts/package.sh"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 --
expect "deploy: no package.sh, no zip → said so" 1 \
  "scripts/package.sh not found and dist/taskhost-lambda-x86_64.zip does not exist"

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
make_zip "$t/boot-ok"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- -var cors_origin=https://app.example -var-file prod.tfvars
expect "deploy: packages, applies and prints the URL and a curl line" 0 \
  "api_endpoint = https://abc123.execute-api.eu-west-1.amazonaws.com" \
  "export API_URL=https://abc123.execute-api.eu-west-1.amazonaws.com" \
  "curl -s \$API_URL/tasks"
want="package.sh --arch x86_64
terraform -chdir=$t/repo/terraform init -input=false
terraform -chdir=$t/repo/terraform plan -input=false -out=PLAN -var cors_origin=https://app.example -var-file prod.tfvars
terraform -chdir=$t/repo/terraform apply -input=false PLAN"
got=$(grep -E '^(package.sh|terraform -chdir=[^ ]* (init|plan|apply))' <<<"$log" | sed -E 's|(-out=)?/[^ ]*/taskhost\.tfplan|\1PLAN|; s|-out=PLAN|-out=PLAN|')
if [ "$got" = "$want" ]; then ok "deploy: package, init, plan -out (vars passed), apply that plan — in order"
else bad "deploy: command order"; diff <(echo "$want") <(echo "$got") | sed 's/^/    | /'; fi
plan_path=$(grep -oE -- '-out=[^ ]*' <<<"$log" | head -n 1)
plan_path=${plan_path#-out=}
case $plan_path in
  "$t/repo/"*) bad "deploy: the plan is written inside the repository ($plan_path)" ;;
  *) if [ -e "$plan_path" ] || [ -e "$(dirname "$plan_path")" ]; then bad "deploy: $plan_path left behind"
     else ok "deploy: the plan lives outside the repository and is gone afterwards"; fi ;;
esac

run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
no_call "deploy --no-package: package.sh is not run" "^package.sh"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --lua-only
if grep -qx "package.sh --arch x86_64 --lua-only" <<<"$log"; then ok "deploy --lua-only: package.sh --lua-only (re-zip, no compile)"
else bad "deploy --lua-only: package.sh calls: $(grep '^package.sh' <<<"$log")"; fi
# The architecture: Terraform's default (arm64) unless var.architecture says otherwise; the
# package is built for it and the zip of that name deployed.
TF_ARCH="" run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --lua-only
if grep -qx "package.sh --arch arm64 --lua-only" <<<"$log"; then ok "deploy: var.architecture unset → package.sh --arch arm64"
else bad "deploy without var.architecture: package.sh calls: $(grep '^package.sh' <<<"$log")"; fi
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- -var architecture=arm64
if grep -qx "package.sh --arch arm64" <<<"$log"; then ok "deploy -var architecture=arm64 → package.sh --arch arm64"
else bad "deploy -var architecture=arm64: package.sh calls: $(grep '^package.sh' <<<"$log")"; fi
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package -var architecture=sparc
expect "deploy: architecture neither arm64 nor x86_64 → exit 2" 2 'architecture "sparc": Lambda has arm64 and x86_64'
rm -f "$ZIP_ARM"

# --- the smoke test after the apply ----------------------------------------------------------
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package -var cors_origin=https://app.example
if grep -qx "smoke.sh https://abc123.execute-api.eu-west-1.amazonaws.com --wait 60 --origin https://app.example" <<<"$log"
then ok "deploy: scripts/smoke.sh after the apply, with the API URL and the CORS origin"
else bad "deploy: smoke.sh calls: $(grep '^smoke.sh' <<<"$log")"; fi
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
if [ "$(grep -E '^(terraform -chdir=[^ ]* apply|smoke.sh)' <<<"$log" | cut -d' ' -f1 | tr '\n' ' ')" = "terraform smoke.sh " ]
then ok "deploy: the smoke test runs after the apply, once"
else bad "deploy: apply/smoke order: $(grep -E '^(terraform -chdir=[^ ]* apply|smoke.sh)' <<<"$log")"; fi
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package --no-smoke
expect "deploy --no-smoke: deployed, smoke test skipped" 0 "api_endpoint =" "smoke test skipped (--no-smoke)"
no_call "deploy --no-smoke: smoke.sh is not run" "^smoke.sh"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_SMOKE_RC=1 -- --no-package
expect "deploy: a failed smoke test → exit 1, the stack said to be deployed" 1 \
  "the stack is deployed, but the smoke test failed"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_POOL=eu-west-1_abc -- --no-package
expect "deploy: auth on, no SMOKE_TOKEN → skipped, the command to run it printed" 0 \
  "smoke test skipped: auth is on and SMOKE_TOKEN is not set" \
  "scripts/smoke.sh https://abc123.execute-api.eu-west-1.amazonaws.com --token"
no_call "deploy: auth on, no SMOKE_TOKEN → smoke.sh is not run" "^smoke.sh"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_POOL=eu-west-1_abc SMOKE_TOKEN=tok.en.sig -- --no-package
if grep -qx "smoke.sh https://abc123.execute-api.eu-west-1.amazonaws.com --wait 60 --token tok.en.sig" <<<"$log"
then ok "deploy: auth on, SMOKE_TOKEN → smoke.sh --token"
else bad "deploy: auth on, SMOKE_TOKEN: smoke.sh calls: $(grep '^smoke.sh' <<<"$log")"; fi
base_bin=$t/nocurl run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: no curl → a missing prerequisite (the smoke test needs it)" 1 \
  "curl not found on PATH" "1 prerequisite(s) missing"
base_bin=$t/nocurl run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package --no-smoke
expect "deploy --no-smoke: no curl needed" 0 "api_endpoint ="

# --- the package checks: fits Lambda, then its bootstrap --check, before any terraform command --
mkdir -p "$t/nounzip"
for f in "$t/bin"/*; do [ "${f##*/}" = unzip ] || ln -s "$(readlink "$f")" "$t/nounzip/${f##*/}"; done
make_zip "$t/boot-ok"
base_bin=$t/nounzip
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
base_bin=""
expect "deploy: without unzip → a missing prerequisite (the package must be checked)" 1 "unzip not found on PATH"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: the package's bootstrap fits and --check passes → deploys" 0 \
  "== package self-check: ok: configuration and route scripts" "api_endpoint ="
make_zip "$t/boot-fail"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: a route script that does not load stops the deploy" 1 \
  "the packaged bootstrap fails its start-up check" "lua/routes.lua:3: unexpected symbol" "nothing was deployed"
no_call "deploy: no terraform command after a failed self-check" "terraform -chdir"
printf '#!%s\necho ok\n' "$BASH_BIN" >"$t/script-boot"
make_zip "$t/script-boot"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: a script as bootstrap → not an ELF executable, refused" 1 \
  "bootstrap cannot run on Lambda" "not an ELF executable" "nothing was deployed"
cp "$t/boot-ok" "$t/boot-arm"
printf '\xb7\x00' | dd of="$t/boot-arm" bs=1 seek=18 conv=notrunc status=none # e_machine = AArch64
make_zip "$t/boot-arm"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: an AArch64 bootstrap for the x86_64 function → refused" 1 \
  "built for 'AArch64', but the function's architecture is x86_64" "nothing was deployed"
no_call "deploy: no terraform command for a bootstrap that does not fit" "terraform -chdir"
# An x86-64 bootstrap in the zip deployed to the arm64 function (the default): refused.
make_zip "$t/boot-ok"
mv "$ZIP" "$ZIP_ARM"
TF_ARCH="" run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: an x86-64 bootstrap for the arm64 function (the default) → refused" 1 \
  "dist/taskhost-lambda-arm64.zip's bootstrap cannot run on Lambda (provided.al2023, arm64)" \
  "built for 'Advanced Micro Devices X86-64', but the function's architecture is arm64" "nothing was deployed"
no_call "deploy: no terraform command for the x86-64 bootstrap on arm64" "terraform -chdir"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package -var architecture=arm64
expect "deploy -var architecture=arm64: the same refusal" 1 \
  "built for 'Advanced Micro Devices X86-64', but the function's architecture is arm64"
# A real arm64 bootstrap for the arm64 function: deployed, its --check run under qemu.
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64-static >/dev/null; then
  aarch64-linux-gnu-gcc -O1 -o "$t/boot-a64" "$t/boot.c"
  ln -sf "$(command -v qemu-aarch64-static)" "$t/bin/qemu-aarch64-static"
  ln -sf "$(command -v uname)" "$t/bin/uname"
  make_zip "$t/boot-a64"
  mv "$ZIP" "$ZIP_ARM"
  TF_ARCH="" run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
  expect "deploy: an arm64 bootstrap for the arm64 function → self-check (qemu) and deploys" 0 \
    "== package self-check: ok: configuration and route scripts" "api_endpoint ="
  rm -f "$t/bin/qemu-aarch64-static" "$t/bin/uname"
elif [ "${CI:-}" = true ]; then
  bad "aarch64-linux-gnu-gcc or qemu-aarch64-static missing (scripts/deps.sh --test installs them)"
else
  echo "SKIP: no aarch64-linux-gnu-gcc or qemu-aarch64-static: the arm64 deploy case is not run"
fi
rm -f "$ZIP_ARM"
make_zip ""
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: a zip without bootstrap at its root stops the deploy" 1 "has no bootstrap at its root"
echo "not a zip" >"$ZIP"
run deploy.sh "$BOTH" AWS_REGION=eu-west-1 -- --no-package
expect "deploy: a corrupt zip stops the deploy" 1 "is not a valid zip"
make_zip "$t/boot-ok"

run teardown.sh "$BOTH" AWS_REGION=eu-west-1 --
expect "teardown: no terminal, no --yes → refuses" 1 "pass --yes"
no_call "teardown: nothing destroyed without confirmation" "destroy"

run teardown.sh "$BOTH" AWS_REGION=eu-west-1 STUB_TF_EMPTY_STATE=1 -- --yes
expect "teardown: empty state → nothing to destroy, exit 0" 0 "nothing to destroy"
no_call "teardown: empty state → no destroy" "destroy"
rm "$t/repo/terraform/terraform.tfstate"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 -- --yes
expect "teardown: no state at all → nothing deployed, exit 0" 0 "nothing deployed" "nothing to destroy"
no_call "teardown: no state → no terraform init (no registry)" "terraform -chdir=[^ ]* init"
echo '{"version": 4, "resources": []}' >"$t/repo/terraform/terraform.tfstate"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 -- --yes
expect "teardown: a state with no resources (destroyed before) → nothing deployed" 0 "nothing deployed"
no_call "teardown: empty state file → no terraform init" "terraform -chdir=[^ ]* init"
echo "$STATE" >"$t/repo/terraform/terraform.tfstate"

run teardown.sh "$BOTH" AWS_REGION=eu-west-1 -- --yes -var name=demo
expect "teardown --yes: destroys" 0 "== destroyed"
want="terraform -chdir=$t/repo/terraform plan -input=false -out=PLAN -target=aws_dynamodb_table.tasks -target=aws_cognito_user_pool.users -var name=demo -var deletion_protection=false
terraform -chdir=$t/repo/terraform apply -input=false PLAN
terraform -chdir=$t/repo/terraform destroy -input=false -auto-approve -var name=demo -var deletion_protection=false"
got=$(grep -E '^terraform -chdir=[^ ]* (plan|apply|destroy)' <<<"$log" | sed -E 's|(-out=)?/[^ ]*/protection\.tfplan|\1PLAN|')
if [ "$got" = "$want" ]; then ok "teardown: deletion protection off (targeted plan, checked, applied), then destroy"
else bad "teardown: command order"; diff <(echo "$want") <(echo "$got") | sed 's/^/    | /'; fi

rm -f "$ZIP"
run teardown.sh "$BOTH" AWS_REGION=eu-west-1 -- --yes
if [ "$rc" -eq 0 ] && grep -q 'destroy .*-var package_path=.*placeholder.zip' <<<"$log"; then
  ok "teardown: without the zip, a placeholder package_path keeps destroy working"
else bad "teardown without the zip: exit $rc"; sed 's/^/    | /' <<<"$log"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
