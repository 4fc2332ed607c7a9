#!/usr/bin/env bash
# Real Terraform, for real, against an AWS emulator (CTest: terraform.moto).
#
# terraform fmt -check on terraform/; then, in a scratch copy of the repository (scripts/,
# terraform/, lua/ and the real Lambda package as dist/taskhost-lambda.zip):
#   init from the local filesystem mirror of hashicorp/aws (no network), validate, and the
#   whole life of a stack on moto_server (127.0.0.1), through the scripts a user runs:
#   scripts/deploy.sh, a second deploy that replaces nothing, the refusals (another region, a
#   -var-file naming another region, a plan that replaces the table, a bootstrap built for the
#   wrong machine or a newer glibc), and scripts/teardown.sh — from the wrong region (refused,
#   stack whole) and from the right one (everything gone).
# The provider's endpoints point at moto through terraform/moto_override.tf, written here into
# the scratch copy only (never into terraform/). The AWS CLI that deploy.sh and this test run
# finds moto through AWS_ENDPOINT_URL.
# Where moto differs from AWS, the test says so by name (a "moto:" line) instead of hiding it.
# Needs terraform >= 1.5, the hashicorp/aws provider in a filesystem mirror (found under
# /opt/tf-plugins, /usr/share/terraform/plugins, ~/.terraform.d/plugins or
# ~/.local/share/terraform/plugins; or TASKHOST_TF_MIRROR), moto_server, jq, the AWS CLI and
# the package (PACKAGE_ZIP). Under CI (CI=true) a missing one fails the test; elsewhere it
# prints one SKIP line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PACKAGE_ZIP=${PACKAGE_ZIP:-$repo/build/package/taskhost-lambda.zip}
REGION=eu-west-1
OTHER=us-east-1

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { # NAME CMD...: passes when CMD succeeds
  local name=$1
  shift
  if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi
}
moto_note() { echo "moto: $*"; }

missing() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL - $* (CI must have it: the machine image carries Terraform, the provider mirror and moto)"
    echo "0 passed, 1 failed"
    exit 1
  fi
  echo "SKIP: $*"
  exit 0
}

# --- what it needs ---------------------------------------------------------------------------
command -v terraform >/dev/null || missing "terraform not found on PATH"
mirror=${TASKHOST_TF_MIRROR:-}
if [ -z "$mirror" ]; then
  for d in /opt/tf-plugins /usr/share/terraform/plugins "$HOME/.terraform.d/plugins" \
    "$HOME/.local/share/terraform/plugins"; do
    if compgen -G "$d/registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*" >/dev/null; then
      mirror=$d
      break
    fi
  done
fi
[ -n "$mirror" ] || missing "no filesystem mirror of the hashicorp/aws provider (set TASKHOST_TF_MIRROR)"
moto=$(command -v moto_server || true)
[ -n "$moto" ] || missing "moto_server not found on PATH"
for tool in jq aws unzip readelf curl; do
  command -v "$tool" >/dev/null || missing "$tool not found on PATH"
done
[ -f "$PACKAGE_ZIP" ] || missing "no Lambda package at $PACKAGE_ZIP (scripts/package.sh)"

t=$(mktemp -d)
moto_pid=""
cleanup() {
  [ -z "$moto_pid" ] || kill "$moto_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$t"
}
trap cleanup EXIT

# --- fmt on the real tree ---------------------------------------------------------------------
if fmt_out=$(terraform fmt -check -recursive -diff "$repo/terraform" 2>&1); then
  ok "terraform fmt -check: terraform/ is formatted"
else
  bad "terraform fmt -check"
  sed 's/^/    | /' <<<"$fmt_out"
fi

# --- moto on a free loopback port -------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" >"$t/moto.log" 2>&1 &
moto_pid=$!
endpoint=http://127.0.0.1:$port
for _ in $(seq 1 100); do
  curl -fs "$endpoint/moto-api/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "$endpoint/moto-api/" >/dev/null || { echo "FAIL - moto_server did not start:"; cat "$t/moto.log"; exit 1; }

# --- the scratch repository -------------------------------------------------------------------
R=$t/repo
mkdir -p "$R/dist"
cp -r "$repo/scripts" "$repo/lua" "$R/"
cp -r "$repo/terraform" "$R/terraform"
# Nothing of this checkout's own use of terraform/: its state, lock file, backend, variables.
rm -rf "$R/terraform/.terraform" "$R/terraform/terraform.tfstate"* "$R/terraform/.terraform.lock.hcl" \
  "$R/terraform/backend.tf" "$R/terraform/"*.tfvars "$R/terraform/"*.tfvars.json "$R/terraform/"*.tfplan
cp "$PACKAGE_ZIP" "$R/dist/taskhost-lambda.zip"
services="apigateway apigatewayv2 cloudwatch dynamodb iam kms lambda logs sts"
{
  echo '# Written by tests/terraform/test_moto.sh into its scratch copy: every AWS call goes to moto.'
  echo 'provider "aws" {'
  echo '  skip_credentials_validation = true'
  echo '  skip_requesting_account_id  = true'
  echo '  skip_metadata_api_check     = true'
  echo '  endpoints {'
  for s in $services; do printf '    %-12s = "%s"\n' "$s" "$endpoint"; done
  echo '  }'
  echo '}'
} >"$R/terraform/moto_override.tf"
cat >"$t/cli.tfrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF

# Only the emulator and dummy credentials: nothing of the caller's AWS setup may leak in.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION AWS_REGION TF_VAR_region AWS_CONFIG_FILE
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_SHARED_CREDENTIALS_FILE=$t/no-credentials AWS_CONFIG_FILE=$t/no-config
export AWS_ENDPOINT_URL=$endpoint
export TF_CLI_CONFIG_FILE=$t/cli.tfrc TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
unset TF_PLUGIN_CACHE_DIR TF_DATA_DIR
awsr() { aws --region "$1" --output json "${@:2}"; }
echo "# moto_server on $endpoint; $(terraform version | head -n 1); provider mirror $mirror"

# run NAME WANT_RC [VAR=VALUE...] -- CMD...: runs CMD in the scratch repo (stdin not a
# terminal), output in $out; checks the exit status.
run() {
  local name=$1 want=$2
  shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  set +e
  out=$(cd "$R" && env "${envs[@]+"${envs[@]}"}" "$@" </dev/null 2>&1)
  rc=$?
  set -e
  if [ "$rc" -eq "$want" ]; then
    ok "$name (exit $rc)"
  else
    bad "$name: exit $rc, want $want"
    tail -n 40 <<<"$out" | sed 's/^/    | /'
  fi
}
has() { # NAME TEXT: $out contains TEXT
  if grep -qF -- "$2" <<<"$out"; then ok "$1"; else bad "$1: no '$2' in the output"; tail -n 20 <<<"$out" | sed 's/^/    | /'; fi
}
lacks() {
  if grep -qF -- "$2" <<<"$out"; then bad "$1: '$2' in the output"; else ok "$1"; fi
}
no_plan_left() { # NAME: no plan file anywhere in the scratch terraform/ or the temp dirs
  local left
  left=$(find "$R" "${TMPDIR:-/tmp}" -maxdepth 3 -name '*.tfplan' -newer "$t/cli.tfrc" 2>/dev/null | head -n 3)
  if [ -z "$left" ]; then ok "$1: no *.tfplan left behind"; else bad "$1: left $left"; fi
}

# --- init from the mirror, validate -----------------------------------------------------------
run "terraform init from the local mirror (no network)" 0 -- terraform -chdir=terraform init -input=false -no-color
has "init: hashicorp/aws from the mirror" "Installing hashicorp/aws"
lacks "init: no other provider (hashicorp/random is gone: only the public registry has it)" "hashicorp/random"
run "terraform validate" 0 -- terraform -chdir=terraform validate -no-color

# --- deploy -------------------------------------------------------------------------------------
run "deploy.sh --no-package to $REGION" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package
has "deploy: the package fits Lambda and passes its self-check" "== package self-check: "
has "deploy: prints the API URL" "api_endpoint = https://"
no_plan_left "deploy"

table=$(cd "$R" && terraform -chdir=terraform output -raw table_name)
fn=$(cd "$R" && terraform -chdir=terraform output -raw function_name)
role=taskhost-$REGION
desc=$(awsr $REGION dynamodb describe-table --table-name "$table")
check "table: on-demand, keys user_id (HASH) and id (RANGE)" jq -e '.Table.BillingModeSummary.BillingMode == "PAY_PER_REQUEST" and .Table.KeySchema == [{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}]' <<<"$desc"
check "table: deletion protection on" jq -e '.Table.DeletionProtectionEnabled == true' <<<"$desc"
check "table: encrypted with KMS" jq -e '.Table.SSEDescription.Status == "ENABLED"' <<<"$desc"
if jq -e '.Table.OnDemandThroughput.MaxWriteRequestUnits == 1000 and .Table.OnDemandThroughput.MaxReadRequestUnits == 4000' <<<"$desc" >/dev/null; then
  ok "table: on-demand throughput capped (4000 RRU/s, 1000 WRU/s)"
else
  moto_note "describe-table has no OnDemandThroughput ($(jq -c '.Table.OnDemandThroughput' <<<"$desc")): the cost cap is checked in the plan below"
fi
pitr=$(awsr $REGION dynamodb describe-continuous-backups --table-name "$table")
check "table: point-in-time recovery on" jq -e '.ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus == "ENABLED"' <<<"$pitr"
conf=$(awsr $REGION lambda get-function-configuration --function-name "$fn")
check "function: provided.al2023, handler bootstrap, x86_64" jq -e '.Runtime == "provided.al2023" and .Handler == "bootstrap" and .Architectures == ["x86_64"]' <<<"$conf"
check "function: TABLE_NAME is the table, store dynamodb" jq -e --arg t "$table" '.Environment.Variables.TABLE_NAME == $t and .Environment.Variables.TASKHOST_STORE == "dynamodb"' <<<"$conf"
check "function: a 64-hex-digit cursor secret (terraform_data, no random provider)" jq -e '.Environment.Variables.TASKHOST_CURSOR_SECRET | test("^[0-9a-f]{64}$")' <<<"$conf"
secret1=$(jq -r '.Environment.Variables.TASKHOST_CURSOR_SECRET' <<<"$conf")
check "function: its role is $role" jq -e --arg r "$role" '.Role | endswith(":role/" + $r)' <<<"$conf"
api_id=$(awsr $REGION apigatewayv2 get-apis | jq -r '.Items[] | select(.Name == "taskhost") | .ApiId')
api=$(awsr $REGION apigatewayv2 get-api --api-id "$api_id")
check "api: browsers may read Location and ETag (expose_headers)" jq -e '.CorsConfiguration.ExposeHeaders | map(ascii_downcase) | index("location") and index("etag")' <<<"$api"
if jq -e '.LoggingConfig.LogFormat == "JSON"' <<<"$conf" >/dev/null 2>&1; then
  ok "function: JSON logging_config kept"
else
  moto_note "get-function-configuration has no LoggingConfig: moto keeps no logging_config (so every plan wants to set it again)"
fi

# --- a second deploy replaces nothing -----------------------------------------------------------
run "second deploy.sh from $REGION" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package
has "second deploy: nothing added or destroyed" "0 to add"
has "second deploy: nothing destroyed" "0 to destroy"
(cd "$R" && AWS_REGION=$REGION terraform -chdir=terraform plan -input=false -no-color -out="$t/again.tfplan" >/dev/null)
# Each change as "ADDRESS ACTIONS ATTRIBUTES-THAT-DIFFER".
(cd "$R" && terraform -chdir=terraform show -json "$t/again.tfplan") >"$t/again.json"
check "plan: the table's on-demand throughput is capped (4000 RRU/s, 1000 WRU/s)" jq -e '
  .planned_values.root_module.resources[] | select(.address == "aws_dynamodb_table.tasks")
  | .values.on_demand_throughput == [{"max_read_request_units": 4000, "max_write_request_units": 1000}]' "$t/again.json"
changes=$(jq -r '
  .resource_changes[] | select(.change.actions != ["no-op"] and .change.actions != ["read"])
  | .address as $a | .change as $c
  | ([(($c.before // {}) | keys), (($c.after // {}) | keys)] | add | unique
     | map(select(($c.before // {})[.] != ($c.after // {})[.] and ($c.after_unknown // {})[.] != true))) as $diff
  | "\($a) \($c.actions | join(",")) \($diff | join(","))"' "$t/again.json")
rm -f "$t/again.tfplan" "$t/again.json"
# moto stores neither of these two blocks, so Terraform sets them again on every plan; AWS keeps
# them, and there the plan is empty.
known="aws_dynamodb_table.tasks update on_demand_throughput
module.lambda.aws_lambda_function.this update logging_config"
others=$(grep -vxF -f <(echo "$known") <<<"$changes" || true)
if [ -z "$others" ]; then
  ok "third plan: nothing replaced; only the two blocks moto does not keep are set again"
else
  bad "third plan changes: $others"
fi
while read -r addr _ attrs; do
  [ -n "$addr" ] && moto_note "a plan after apply sets $attrs of $addr again: moto does not keep it (AWS does: no change there)"
done <<<"$changes"
secret2=$(awsr $REGION lambda get-function-configuration --function-name "$fn" | jq -r '.Environment.Variables.TASKHOST_CURSOR_SECRET')
if [ "$secret1" = "$secret2" ]; then ok "the cursor secret survives a redeploy"; else bad "the cursor secret changed on redeploy"; fi

# --- from the wrong region: refused, nothing changed ------------------------------------------
stack_whole() { # NAME
  local n=0
  awsr $REGION dynamodb describe-table --table-name "$table" >/dev/null 2>&1 && n=$((n + 1))
  awsr $REGION iam get-role --role-name "$role" >/dev/null 2>&1 && n=$((n + 1))
  awsr $REGION lambda get-function --function-name "$fn" >/dev/null 2>&1 && n=$((n + 1))
  if [ "$n" = 3 ]; then ok "$1: table, role and function still there"; else bad "$1: only $n of table, role, function left"; fi
  if awsr $OTHER dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then
    bad "$1: a table appeared in $OTHER"
  else ok "$1: no table created in $OTHER"; fi
}
run "deploy.sh from $OTHER: refused" 1 AWS_REGION=$OTHER -- bash scripts/deploy.sh --no-package
has "deploy from $OTHER: one line naming both regions" "the stack in the Terraform state is in $REGION, not $OTHER"
lacks "deploy from $OTHER: no plan was made" "== terraform plan"
stack_whole "after deploy from $OTHER"
run "teardown.sh --yes from $OTHER: refused" 1 AWS_REGION=$OTHER -- bash scripts/teardown.sh --yes
has "teardown from $OTHER: one line naming both regions" \
  "the stack in the Terraform state is in $REGION, not $OTHER: run with AWS_REGION=$REGION (or -var region=$REGION); nothing was destroyed"
stack_whole "after teardown from $OTHER"
printf 'region = "%s"\n' "$OTHER" >"$t/other.tfvars"
run "deploy.sh with AWS_REGION=$REGION but -var-file naming $OTHER: refused" 1 AWS_REGION=$REGION -- \
  bash scripts/deploy.sh --no-package -var-file "$t/other.tfvars"
has "deploy -var-file: the file's region is the one checked" "is in $REGION, not $OTHER"
printf 'region = "%s"\n' "$OTHER" >"$R/terraform/zz.auto.tfvars"
run "teardown.sh with terraform/*.auto.tfvars naming $OTHER: refused" 1 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes
rm -f "$R/terraform/zz.auto.tfvars"
stack_whole "after the -var-file and auto.tfvars runs"

# --- a plan that replaces the table: never applied without confirmation -----------------------
run "deploy.sh -var name=renamed (replaces the table and the role), no terminal: refused" 1 \
  AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package -var name=renamed
has "replace: the plan's deletions are listed" "aws_dynamodb_table.tasks: delete then create"
has "replace: the role too" "module.lambda.aws_iam_role.function: delete then create"
has "replace: nothing applied" "nothing was applied"
stack_whole "after the refused replacement"
no_plan_left "refused replacement"

# --- a bootstrap that cannot run on Lambda: refused before anything is planned -----------------
bad_zip() { # PATCH: a copy of the package whose bootstrap is patched by the python expression
  rm -rf "$t/pkg"
  mkdir -p "$t/pkg"
  (cd "$t/pkg" && unzip -q "$PACKAGE_ZIP")
  python3 - "$t/pkg/bootstrap" "$1" <<'EOF'
import sys
path, what = sys.argv[1], sys.argv[2]
data = bytearray(open(path, "rb").read())
if what == "aarch64":
    data[18:20] = (183).to_bytes(2, "little")  # e_machine = EM_AARCH64
elif what == "glibc238":
    i = data.find(b"GLIBC_2.34")
    assert i > 0, "no GLIBC_2.34 reference to patch"
    data[i:i + 10] = b"GLIBC_2.38"
open(path, "wb").write(bytes(data))
EOF
  rm -f "$R/dist/taskhost-lambda.zip"
  (cd "$t/pkg" && zip -qr "$R/dist/taskhost-lambda.zip" .)
}
bad_zip aarch64
run "deploy.sh with an AArch64 bootstrap for an x86_64 function: refused" 1 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package
has "machine: said so" "built for 'AArch64', but the function's architecture is x86_64"
lacks "machine: nothing planned" "== terraform plan"
bad_zip glibc238
run "deploy.sh with a bootstrap needing GLIBC_2.38: refused" 1 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package
has "glibc: said so" "needs GLIBC_2.38, newer than Amazon Linux 2023's 2.34"
cp "$PACKAGE_ZIP" "$R/dist/taskhost-lambda.zip"

# --- teardown from the right region --------------------------------------------------------------
run "teardown.sh --yes from $REGION" 0 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes
has "teardown: done" "== destroyed"
has "teardown: names the backup DynamoDB keeps" "$table\$DeletedTableBackup"
no_plan_left "teardown"
if awsr $REGION dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then bad "teardown: the table is still there"; else ok "teardown: table gone"; fi
if awsr $REGION iam get-role --role-name "$role" >/dev/null 2>&1; then bad "teardown: the role is still there"; else ok "teardown: role gone"; fi
if awsr $REGION lambda get-function --function-name "$fn" >/dev/null 2>&1; then bad "teardown: the function is still there"; else ok "teardown: function gone"; fi
left=$(cd "$R" && terraform -chdir=terraform state list 2>/dev/null || true)
if [ -z "$left" ]; then ok "teardown: the state is empty"; else bad "teardown: state still lists $left"; fi
backups=$(awsr $REGION dynamodb list-backups --backup-type SYSTEM 2>/dev/null | jq -r '[.BackupSummaries[]?.BackupName] | join(",")' || true)
case $backups in
  *DeletedTableBackup*) ok "teardown: DynamoDB kept the system backup ($backups)" ;;
  *) moto_note "no \$DeletedTableBackup system backup after deleting a PITR table (AWS keeps one for 35 days)" ;;
esac
run "teardown.sh again: nothing to destroy" 0 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes
has "teardown again: said so" "nothing to destroy"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
