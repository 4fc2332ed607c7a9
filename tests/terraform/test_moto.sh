#!/usr/bin/env bash
# Real Terraform, for real, against an AWS emulator (CTest: terraform.moto).
#
# terraform fmt -check on terraform/; then, in a scratch copy of the repository (scripts/,
# terraform/, lua/ and the real Lambda package as dist/taskhost-lambda-x86_64.zip, deployed with architecture = x86_64):
#   init from the local filesystem mirror of hashicorp/aws (no network), validate, and the
#   whole life of a stack on moto_server (127.0.0.1), through the scripts a user runs (the
#   alarm topic, the seven alarms and the dashboard read back after the first deploy):
#   scripts/deploy.sh with the default auth = "cognito" (the user pool, its app client, the
#   JWT authorizer on $default and the unauthenticated OPTIONS /{proxy+} route, read back;
#   scripts/token.sh signs a user in through the stack's outputs), a second deploy that
#   replaces nothing, the refusals (another region, a -var-file naming another region, a plan
#   that replaces the table or deletes the user pool, auth = "jwt" without an issuer, a
#   bootstrap built for the wrong machine or a newer glibc), and scripts/teardown.sh — from the
#   wrong region (refused, stack whole) and from the right one (everything gone, the pool too);
#   then a stack with auth = "none" (no pool, no authorizer), switched to auth = "jwt" (your
#   own issuer) with nothing replaced, and torn down; and last the README's "Upgrading" steps,
#   one by one, from a stack deployed with the Terraform of main before accounts (commit
#   c0ccc58, taken from this checkout's history): the old table survives, every task is copied.
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
PACKAGE_ZIP=${PACKAGE_ZIP:-$repo/build/package/taskhost-lambda-x86_64.zip}
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
cp "$PACKAGE_ZIP" "$R/dist/taskhost-lambda-x86_64.zip"
# The package under test is this machine's own (x86_64); Terraform's default is arm64, so the
# stack is deployed as x86_64 (Terraform and deploy.sh both read TF_VAR_architecture).
export TF_VAR_architecture=x86_64
services="apigateway apigatewayv2 cloudwatch cognitoidp dynamodb iam kms lambda logs sns sts wafv2"
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
# The scripts' temporary files (their plans) in a directory of this run's own, so the check for
# plans left behind sees only this run's, not those of another test running beside it.
export TMPDIR=$t/tmp
mkdir -p "$TMPDIR"
unset TF_PLUGIN_CACHE_DIR TF_DATA_DIR
awsr() { aws --region "$1" --output json "${@:2}"; }
# authorizers API-ID: the API's authorizers as a JSON list. moto does not implement GetAuthorizers
# (the list: a 500, said once below), so there they are the Terraform state's, each read back
# with GetAuthorizer.
authorizers() {
  local list id
  if list=$(awsr $REGION apigatewayv2 get-authorizers --api-id "$1" 2>/dev/null); then
    jq '.Items' <<<"$list"
    return
  fi
  for id in $(cd "$R" && terraform -chdir=terraform show -json | jq -r '.values.root_module.resources[]? | select(.type == "aws_apigatewayv2_authorizer") | .values.id'); do
    awsr $REGION apigatewayv2 get-authorizer --api-id "$1" --authorizer-id "$id"
  done | jq -s '.'
}
echo "# moto_server on $endpoint; $(terraform version | head -n 1); provider mirror $mirror"

# run NAME WANT_RC [VAR=VALUE...] -- CMD...: runs CMD in the scratch repo (stdin not a
# terminal), output in $out; checks the exit status.
run() {
  local name=$1 want=$2
  shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local started=$SECONDS
  set +e
  out=$(cd "$R" && env "${envs[@]+"${envs[@]}"}" "$@" </dev/null 2>&1)
  rc=$?
  set -e
  if [ "$rc" -eq "$want" ]; then
    ok "$name (exit $rc, $((SECONDS - started)) s)"
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
no_plan_left() { # NAME: no plan file in the scratch terraform/ or this run's temporary directory
  local left
  left=$(find "$R" "$TMPDIR" -maxdepth 3 -name '*.tfplan' 2>/dev/null | head -n 3)
  if [ -z "$left" ]; then ok "$1: no *.tfplan left behind"; else bad "$1: left $left"; fi
}

# --- init from the mirror, validate -----------------------------------------------------------
run "terraform init from the local mirror (no network)" 0 -- terraform -chdir=terraform init -input=false -no-color
has "init: hashicorp/aws from the mirror" "Installing hashicorp/aws"
lacks "init: no other provider (hashicorp/random is gone: only the public registry has it)" "hashicorp/random"
run "terraform validate" 0 -- terraform -chdir=terraform validate -no-color

# --- deploy -------------------------------------------------------------------------------------
# --no-smoke, on every deploy.sh here: moto creates the API but runs no function behind it,
# so scripts/smoke.sh would have nothing to check (tests/e2e/test_smoke.sh tests it).
run "deploy.sh --no-package to $REGION" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke
has "deploy: the package fits Lambda and passes its self-check" "== package self-check: "
has "deploy: prints the API URL" "api_endpoint = https://"
has "deploy: shows how to get a token" 'TOKEN=$(scripts/token.sh --create --user you@example.com)'
has "deploy: and the curl that sends it" 'curl -s -H "Authorization: Bearer $TOKEN" $API_URL/tasks'
no_plan_left "deploy"

table=$(cd "$R" && terraform -chdir=terraform output -raw table_name)
fn=$(cd "$R" && terraform -chdir=terraform output -raw function_name)
role=taskhost-$REGION
desc=$(awsr $REGION dynamodb describe-table --table-name "$table")
check "table: on-demand, partition key user_id, sort key id" jq -e '.Table.BillingModeSummary.BillingMode == "PAY_PER_REQUEST"
  and .Table.KeySchema == [{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}]
  and (.Table.AttributeDefinitions | sort_by(.AttributeName)) == [{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "user_id", "AttributeType": "S"}]' <<<"$desc"
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
check "function: TASKHOST_AUTH=jwt (API Gateway verifies the token, the function reads its claims)" jq -e '.Environment.Variables.TASKHOST_AUTH == "jwt"' <<<"$conf"
check "function: a 64-hex-digit cursor secret (terraform_data, no random provider)" jq -e '.Environment.Variables.TASKHOST_CURSOR_SECRET | test("^[0-9a-f]{64}$")' <<<"$conf"
secret1=$(jq -r '.Environment.Variables.TASKHOST_CURSOR_SECRET' <<<"$conf")
check "function: its role is $role" jq -e --arg r "$role" '.Role | endswith(":role/" + $r)' <<<"$conf"
api_id=$(awsr $REGION apigatewayv2 get-apis | jq -r '.Items[] | select(.Name == "taskhost") | .ApiId')
api=$(awsr $REGION apigatewayv2 get-api --api-id "$api_id")
check "api: browsers may read Location and ETag (expose_headers)" jq -e '.CorsConfiguration.ExposeHeaders | map(ascii_downcase) | index("location") and index("etag")' <<<"$api"
check "api: browsers may send Authorization (allow_headers)" jq -e '.CorsConfiguration.AllowHeaders | map(ascii_downcase) | index("authorization")' <<<"$api"

# --- monitoring (monitoring.tf): the alarm topic, the alarms, the dashboard ---------------------
check "function: TASKHOST_METRICS_NAMESPACE=taskhost (the namespace the alarms read)" jq -e '.Environment.Variables.TASKHOST_METRICS_NAMESPACE == "taskhost"' <<<"$conf"
topics=$(awsr $REGION sns list-topics 2>/dev/null || echo '{}')
check "sns: the alarm topic taskhost-alarms" jq -e '[.Topics[].TopicArn | select(endswith(":taskhost-alarms"))] | length == 1' <<<"$topics"
alarms=$(awsr $REGION cloudwatch describe-alarms --alarm-name-prefix taskhost- 2>/dev/null || echo '{}')
check "alarms: seven, each notifying the topic on ALARM and OK, missing data not breaching" jq -e '(.MetricAlarms | length) == 7
  and all(.MetricAlarms[]; .AlarmActions == .OKActions and (.AlarmActions | length) == 1
    and (.AlarmActions[0] | endswith(":taskhost-alarms")) and .TreatMissingData == "notBreaching")' <<<"$alarms"
check "alarms: API 5xx is AWS/ApiGateway 5xx by ApiId and Stage of this API" jq -e --arg api "$api_id" '.MetricAlarms[] | select(.AlarmName == "taskhost-api-5xx")
  | .Namespace == "AWS/ApiGateway" and .MetricName == "5xx" and .Statistic == "Sum"
    and ((.Dimensions | sort_by(.Name)) == [{"Name": "ApiId", "Value": $api}, {"Name": "Stage", "Value": "$default"}])' <<<"$alarms"
check "alarms: Lambda errors on this function; duration at 80% of the 10 s timeout" jq -e --arg fn "$fn" '
  (.MetricAlarms[] | select(.AlarmName == "taskhost-lambda-errors") | .Namespace == "AWS/Lambda" and .MetricName == "Errors" and .Dimensions == [{"Name": "FunctionName", "Value": $fn}])
  and (.MetricAlarms[] | select(.AlarmName == "taskhost-lambda-duration-near-timeout") | .MetricName == "Duration" and .Threshold == 8000)' <<<"$alarms"
check "alarms: the runtime's 5xx and store retries in namespace taskhost by Service" jq -e --arg fn "$fn" '
  [.MetricAlarms[] | select(.AlarmName == "taskhost-runtime-5xx" or .AlarmName == "taskhost-store-retries")
   | select(.Namespace == "taskhost" and .Dimensions == [{"Name": "Service", "Value": $fn}])] | length == 2' <<<"$alarms"
if jq -e '.MetricAlarms[] | select(.AlarmName == "taskhost-dynamodb-throttles") | (.Metrics | length) == 3' <<<"$alarms" >/dev/null 2>&1; then
  ok "alarms: DynamoDB throttles is reads + writes of this table (metric math)"
else
  moto_note "describe-alarms does not return the DynamoDB throttles alarm's metric queries ($(jq -c '.MetricAlarms[] | select(.AlarmName == "taskhost-dynamodb-throttles") | .Metrics' <<<"$alarms" 2>/dev/null | head -c 200)): tests/terraform/check.js checks them"
fi
dash=$(awsr $REGION cloudwatch get-dashboard --dashboard-name taskhost 2>/dev/null || echo '{}')
check "dashboard: taskhost, eleven metric widgets" jq -e '.DashboardBody | fromjson | .widgets | length == 11 and all(.[]; .type == "metric")' <<<"$dash"
check "outputs: dashboard_url opens it" jq -e --arg r "$REGION" '.dashboard_url.value == "https://\($r).console.aws.amazon.com/cloudwatch/home?region=\($r)#dashboards:name=taskhost"' \
  <(cd "$R" && terraform -chdir=terraform output -json)

# --- auth = "cognito" (the default): the pool, its client, the authorizer, the routes -----------
outputs=$(cd "$R" && terraform -chdir=terraform output -json)
pool_id=$(jq -r '.cognito_user_pool_id.value // empty' <<<"$outputs")
client_id=$(jq -r '.cognito_client_id.value // empty' <<<"$outputs")
check "outputs: cognito_user_pool_id names a pool of $REGION" grep -Eq "^${REGION}_[A-Za-z0-9]+\$" <<<"$pool_id"
check "outputs: cognito_issuer is https://cognito-idp.$REGION.amazonaws.com/<pool id>" jq -e --arg i "https://cognito-idp.$REGION.amazonaws.com/$pool_id" '.cognito_issuer.value == $i' <<<"$outputs"
check "outputs: region is $REGION" jq -e --arg r "$REGION" '.region.value == $r' <<<"$outputs"
up=$(awsr $REGION cognito-idp describe-user-pool --user-pool-id "$pool_id" 2>/dev/null || echo '{}')
check "pool: named taskhost, the email is the user name and is verified" jq -e '.UserPool.Name == "taskhost" and .UserPool.UsernameAttributes == ["email"] and .UserPool.AutoVerifiedAttributes == ["email"]' <<<"$up"
check "pool: password policy (12 characters, lower, upper, digit)" jq -e '.UserPool.Policies.PasswordPolicy | .MinimumLength == 12 and .RequireLowercase and .RequireUppercase and .RequireNumbers' <<<"$up"
if jq -e '.UserPool | has("UsernameConfiguration")' <<<"$up" >/dev/null; then
  check "pool: user names are case-insensitive" jq -e '.UserPool.UsernameConfiguration.CaseSensitive == false' <<<"$up"
else
  moto_note "describe-user-pool has no UsernameConfiguration: case-insensitive user names are not read back"
fi
check "pool: deletion protection on" jq -e '.UserPool.DeletionProtection == "ACTIVE"' <<<"$up"
uc=$(awsr $REGION cognito-idp describe-user-pool-client --user-pool-id "$pool_id" --client-id "$client_id" 2>/dev/null || echo '{}')
check "client: the output's client is the pool's, named taskhost" jq -e '.UserPoolClient.ClientName == "taskhost"' <<<"$uc"
check "client: no secret" jq -e '.UserPoolClient | has("ClientSecret") | not' <<<"$uc"
check "client: exactly USER_PASSWORD_AUTH, USER_SRP_AUTH, REFRESH_TOKEN_AUTH" jq -e '(.UserPoolClient.ExplicitAuthFlows | sort) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"]' <<<"$uc"
check "client: tokens 60 minutes, refresh tokens 30 days" jq -e '.UserPoolClient | .AccessTokenValidity == 60 and .IdTokenValidity == 60 and .RefreshTokenValidity == 30
  and .TokenValidityUnits == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"}' <<<"$uc"
# The authorizer the $default route names (moto has no GetAuthorizers, the list: see authorizers()).
awsr $REGION apigatewayv2 get-authorizers --api-id "$api_id" >/dev/null 2>&1 ||
  moto_note "GetAuthorizers (the list of an API's authorizers) answers 500: the authorizers are those in the Terraform state, each read back with GetAuthorizer"
moto_note "the JWT authorizer is stored, not run: no request is served, so that a token is demanded, and that a preflight passes without one, is up to AWS (and to tests/cognito/ for the function's side)"
routes=$(awsr $REGION apigatewayv2 get-routes --api-id "$api_id")
authz_id=$(jq -r '[.Items[] | select(.RouteKey == "$default")][0].AuthorizerId // empty' <<<"$routes")
check "routes: \$default needs the JWT authorizer" jq -e '[.Items[] | select(.RouteKey == "$default")] | length == 1 and .[0].AuthorizationType == "JWT"' <<<"$routes"
authz=$(awsr $REGION apigatewayv2 get-authorizer --api-id "$api_id" --authorizer-id "${authz_id:-none}" 2>/dev/null || echo '{}')
check "authorizer: JWT, on the Authorization header" jq -e '.AuthorizerType == "JWT" and .IdentitySource == ["$request.header.Authorization"]' <<<"$authz"
check "authorizer: issuer the pool's, audience the client id" jq -e --arg i "https://cognito-idp.$REGION.amazonaws.com/$pool_id" --arg c "$client_id" \
  '.JwtConfiguration == {"Issuer": $i, "Audience": [$c]}' <<<"$authz"
check "authorizer: the only one" jq -e 'length == 1' <(authorizers "$api_id")
check "routes: OPTIONS /{proxy+} (preflights) needs no token and reaches the function" jq -e '[.Items[] | select(.RouteKey == "OPTIONS /{proxy+}")]
  | length == 1 and (.[0].AuthorizationType // "NONE") == "NONE" and (.[0] | has("AuthorizerId") | not) and (.[0].Target | startswith("integrations/"))' <<<"$routes"
check "routes: no other" jq -e '.Items | length == 2' <<<"$routes"

# scripts/token.sh finds the pool through these outputs and signs a new user in.
export TASKHOST_PASSWORD='Correct-Horse-9-battery'
run "token.sh --create through the stack's outputs" 0 -- bash scripts/token.sh --create --user alice@example.com
token=$(tail -n 1 <<<"$out")
claims=$(cut -d. -f2 <<<"$token" | tr '_-' '/+' | python3 -c 'import base64, sys; s = sys.stdin.read().strip(); print(base64.b64decode(s + "=" * (-len(s) % 4)).decode())' 2>/dev/null || echo '{}')
check "token: iss is the authorizer's issuer, client_id its audience, token_use access" jq -e --arg i "https://cognito-idp.$REGION.amazonaws.com/$pool_id" --arg c "$client_id" \
  '.iss == $i and .client_id == $c and .token_use == "access" and (.sub | length > 0)' <<<"$claims"
# README "Upgrading" finds the owner for migrate-table.sh --owner this way.
sub=$(awsr $REGION cognito-idp admin-get-user --user-pool-id "$pool_id" --username alice@example.com \
  --query "UserAttributes[?Name=='sub'].Value" --output text 2>/dev/null || true)
check "the README's admin-get-user command gives the token's sub" jq -e --arg s "$sub" '.sub == $s and ($s | length > 0)' <<<"$claims"
unset TASKHOST_PASSWORD
if jq -e '.LoggingConfig.LogFormat == "JSON"' <<<"$conf" >/dev/null 2>&1; then
  ok "function: JSON logging_config kept"
else
  moto_note "get-function-configuration has no LoggingConfig: moto keeps no logging_config (so every plan wants to set it again)"
fi

# --- a second deploy replaces nothing -----------------------------------------------------------
run "second deploy.sh from $REGION" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke
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
run "deploy.sh from $OTHER: refused" 1 AWS_REGION=$OTHER -- bash scripts/deploy.sh --no-package --no-smoke
has "deploy from $OTHER: one line naming both regions" "the stack in the Terraform state is in $REGION, not $OTHER"
lacks "deploy from $OTHER: no plan was made" "== terraform plan"
stack_whole "after deploy from $OTHER"
run "teardown.sh --yes from $OTHER: refused" 1 AWS_REGION=$OTHER -- bash scripts/teardown.sh --yes
has "teardown from $OTHER: one line naming both regions" \
  "the stack in the Terraform state is in $REGION, not $OTHER: run with AWS_REGION=$REGION (or -var region=$REGION); nothing was destroyed"
stack_whole "after teardown from $OTHER"
printf 'region = "%s"\n' "$OTHER" >"$t/other.tfvars"
run "deploy.sh with AWS_REGION=$REGION but -var-file naming $OTHER: refused" 1 AWS_REGION=$REGION -- \
  bash scripts/deploy.sh --no-package --no-smoke -var-file "$t/other.tfvars"
has "deploy -var-file: the file's region is the one checked" "is in $REGION, not $OTHER"
printf 'region = "%s"\n' "$OTHER" >"$R/terraform/zz.auto.tfvars"
run "teardown.sh with terraform/*.auto.tfvars naming $OTHER: refused" 1 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes
rm -f "$R/terraform/zz.auto.tfvars"
stack_whole "after the -var-file and auto.tfvars runs"

# --- a plan that replaces the table: never applied without confirmation -----------------------
run "deploy.sh -var name=renamed (replaces the table and the role), no terminal: refused" 1 \
  AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke -var name=renamed
has "replace: the plan's deletions are listed" "aws_dynamodb_table.tasks: delete then create"
has "replace: the role too" "module.lambda.aws_iam_role.function: delete then create"
# The pool is replaced create-then-delete: the REST deployment's create_before_destroy reaches
# it through the authorizer (docs/deployment.md, "Switching an existing stack").
has "replace: the user pool too (a new pool: every account gone, new subs)" "aws_cognito_user_pool.users[0]: create then delete"
has "replace: nothing applied" "nothing was applied"
stack_whole "after the refused replacement"
no_plan_left "refused replacement"

# --- a plan that deletes the user pool (auth = "none"): never applied without confirmation ------
run "deploy.sh -var auth=none on a Cognito stack (deletes the pool), no terminal: refused" 1 \
  AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke -var auth=none
has "auth=none: the pool's deletion is listed" "aws_cognito_user_pool.users[0]: delete"
has "auth=none: nothing applied" "nothing was applied"
if awsr $REGION cognito-idp describe-user-pool --user-pool-id "$pool_id" >/dev/null 2>&1; then
  ok "auth=none refused: the pool is still there"
else bad "auth=none refused: the pool is gone"; fi
run "deploy.sh -var auth=jwt without jwt_issuer: refused at plan time" 1 AWS_REGION=$REGION -- \
  bash scripts/deploy.sh --no-package --no-smoke -var auth=jwt
has "auth=jwt without an issuer: the precondition says what is missing" 'auth = "jwt" needs jwt_issuer'
check "auth=jwt refused: the authorizer is still the pool's" jq -e --arg i "https://cognito-idp.$REGION.amazonaws.com/$pool_id" \
  'length == 1 and .[0].JwtConfiguration.Issuer == $i' <(authorizers "$api_id")
stack_whole "after the refused auth switches"

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
  rm -f "$R/dist/taskhost-lambda-x86_64.zip"
  (cd "$t/pkg" && zip -qr "$R/dist/taskhost-lambda-x86_64.zip" .)
}
bad_zip aarch64
run "deploy.sh with an AArch64 bootstrap for an x86_64 function: refused" 1 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke
has "machine: said so" "built for 'AArch64', but the function's architecture is x86_64"
lacks "machine: nothing planned" "== terraform plan"
bad_zip glibc238
run "deploy.sh with a bootstrap needing GLIBC_2.38: refused" 1 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke
has "glibc: said so" "needs GLIBC_2.38, newer than Amazon Linux 2023's 2.34"
cp "$PACKAGE_ZIP" "$R/dist/taskhost-lambda-x86_64.zip"

# --- teardown from the right region --------------------------------------------------------------
run "teardown.sh --yes from $REGION" 0 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes
has "teardown: done" "== destroyed"
has "teardown: the pool's deletion protection is turned off with the table's" "== turning deletion protection off ($table and the user pool)"
has "teardown: the pool updated in place first" "aws_cognito_user_pool.users[0]: Modifications complete"
# Does the emulator refuse to delete a protected pool? (AWS does: without the step above the
# destroy would fail there.)
probe=$(awsr $REGION cognito-idp create-user-pool --pool-name deletion-probe --deletion-protection ACTIVE | jq -r '.UserPool.Id')
if awsr $REGION cognito-idp delete-user-pool --user-pool-id "$probe" >/dev/null 2>&1; then
  moto_note "DeleteUserPool ignores DeletionProtection: here the output above shows the pool's protection turned off before the destroy; AWS would refuse the destroy without it"
else
  ok "the emulator refuses to delete a protected pool, as AWS does"
  awsr $REGION cognito-idp update-user-pool --user-pool-id "$probe" --deletion-protection INACTIVE >/dev/null 2>&1 || true
  awsr $REGION cognito-idp delete-user-pool --user-pool-id "$probe" >/dev/null 2>&1 || true
fi
has "teardown: names the backup DynamoDB keeps" "$table\$DeletedTableBackup"
no_plan_left "teardown"
if awsr $REGION dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then bad "teardown: the table is still there"; else ok "teardown: table gone"; fi
if awsr $REGION iam get-role --role-name "$role" >/dev/null 2>&1; then bad "teardown: the role is still there"; else ok "teardown: role gone"; fi
if awsr $REGION lambda get-function --function-name "$fn" >/dev/null 2>&1; then bad "teardown: the function is still there"; else ok "teardown: function gone"; fi
if awsr $REGION cognito-idp describe-user-pool --user-pool-id "$pool_id" >/dev/null 2>&1; then bad "teardown: the user pool is still there"; else ok "teardown: user pool gone"; fi
left=$(cd "$R" && terraform -chdir=terraform state list 2>/dev/null || true)
if [ -z "$left" ]; then ok "teardown: the state is empty"; else bad "teardown: state still lists $left"; fi
backups=$(awsr $REGION dynamodb list-backups --backup-type SYSTEM 2>/dev/null | jq -r '[.BackupSummaries[]?.BackupName] | join(",")' || true)
case $backups in
  *DeletedTableBackup*) ok "teardown: DynamoDB kept the system backup ($backups)" ;;
  *) moto_note "no \$DeletedTableBackup system backup after deleting a PITR table (AWS keeps one for 35 days)" ;;
esac
run "teardown.sh again: nothing to destroy" 0 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes
has "teardown again: said so" "nothing to destroy"

# --- auth = "none": no pool, no authorizer, every route open -------------------------------------
run "deploy.sh -var auth=none" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke -var auth=none
lacks "auth=none: no token in the example" "TOKEN="
has "auth=none: the plain curl" 'curl -s $API_URL/tasks'
outputs=$(cd "$R" && terraform -chdir=terraform output -json)
check "auth=none: cognito_user_pool_id, cognito_client_id, cognito_issuer are null" jq -e '.cognito_user_pool_id.value == null and .cognito_client_id.value == null and .cognito_issuer.value == null' <<<"$outputs"
check "auth=none: no user pool" jq -e '[.UserPools[]? | select(.Name == "taskhost")] | length == 0' <(awsr $REGION cognito-idp list-user-pools --max-results 60)
api_id=$(awsr $REGION apigatewayv2 get-apis | jq -r '.Items[] | select(.Name == "taskhost") | .ApiId')
check "auth=none: no authorizer" jq -e 'length == 0' <(authorizers "$api_id")
check "auth=none: one route, \$default, open" jq -e '.Items | length == 1 and .[0].RouteKey == "$default" and (.[0].AuthorizationType // "NONE") == "NONE"' \
  <(awsr $REGION apigatewayv2 get-routes --api-id "$api_id")
check "auth=none: TASKHOST_AUTH=none" jq -e '.Environment.Variables.TASKHOST_AUTH == "none"' <(awsr $REGION lambda get-function-configuration --function-name "$fn")
check "auth=none: the table is keyed (user_id, id) all the same" jq -e '.Table.KeySchema == [{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}]' \
  <(awsr $REGION dynamodb describe-table --table-name "$table")
export TASKHOST_PASSWORD='Correct-Horse-9-battery'
run "auth=none: token.sh says the stack has no Cognito" 3 -- bash scripts/token.sh --user alice@example.com
has "auth=none: token.sh names the missing output" "the Terraform outputs have no cognito_user_pool_id: the stack was deployed without Cognito auth"
unset TASKHOST_PASSWORD
run "second deploy.sh -var auth=none" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke -var auth=none
has "auth=none, second deploy: nothing added" "0 to add"
has "auth=none, second deploy: nothing destroyed" "0 to destroy"

# --- switched to auth = "jwt" (an issuer of your own): the authorizer added, nothing replaced ------
issuer=https://issuer.example.com/
run "deploy.sh -var auth=jwt with an issuer and an audience" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke \
  -var auth=jwt -var jwt_issuer=$issuer -var 'jwt_audience=["api://taskhost","spa-client"]'
has "auth=jwt: nothing destroyed" "0 to destroy"
has "auth=jwt: the example sends a token" 'Authorization: Bearer $TOKEN'
check "auth=jwt: the authorizer takes the issuer and the audiences" jq -e --arg i "$issuer" \
  'length == 1 and .[0].AuthorizerType == "JWT" and .[0].JwtConfiguration == {"Issuer": $i, "Audience": ["api://taskhost", "spa-client"]}' \
  <(authorizers "$api_id")
check "auth=jwt: \$default needs it, OPTIONS /{proxy+} does not" jq -e '.Items | length == 2
  and ([.[] | select(.RouteKey == "$default")][0].AuthorizationType == "JWT")
  and (([.[] | select(.RouteKey == "OPTIONS /{proxy+}")][0].AuthorizationType // "NONE") == "NONE")' \
  <(awsr $REGION apigatewayv2 get-routes --api-id "$api_id")
check "auth=jwt: TASKHOST_AUTH=jwt" jq -e '.Environment.Variables.TASKHOST_AUTH == "jwt"' <(awsr $REGION lambda get-function-configuration --function-name "$fn")
check "auth=jwt: still no user pool" jq -e '[.UserPools[]? | select(.Name == "taskhost")] | length == 0' <(awsr $REGION cognito-idp list-user-pools --max-results 60)
run "teardown.sh --yes of the auth=jwt stack" 0 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes \
  -var auth=jwt -var jwt_issuer=$issuer -var 'jwt_audience=["api://taskhost","spa-client"]'
has "teardown (jwt): the table alone has deletion protection to turn off" "== turning deletion protection off ($table)"
left=$(cd "$R" && terraform -chdir=terraform state list 2>/dev/null || true)
if [ -z "$left" ]; then ok "teardown (jwt): the state is empty"; else bad "teardown (jwt): state still lists $left"; fi
if awsr $REGION dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then bad "teardown (jwt): the table is still there"; else ok "teardown (jwt): table gone"; fi

# --- api_type = "rest": a REST API with WAF, usage plans and API keys (rest.tf) -----------------
rest_vars=(-var api_type=rest -var 'api_clients={"partner-a"={quota_limit=10000,rate_limit=5,burst_limit=10},"partner-b"={}}')
run "deploy.sh -var api_type=rest with two API clients (auth cognito, WAF on by default)" 0 AWS_REGION=$REGION -- \
  bash scripts/deploy.sh --no-package --no-smoke "${rest_vars[@]}"
has "rest: the example sends a client's API key" 'API_KEY=$(aws apigateway get-api-key --api-key '
has "rest: and the token" 'Authorization: Bearer $TOKEN'
outputs=$(cd "$R" && terraform -chdir=terraform output -json)
rest_id=$(awsr $REGION apigateway get-rest-apis | jq -r '.items[] | select(.name == "taskhost") | .id')
check "rest: api_endpoint is the REST stage's URL, .../api" jq -e --arg id "$rest_id" --arg r "$REGION" \
  '.api_endpoint.value == "https://\($id).execute-api.\($r).amazonaws.com/api" and .api_type.value == "rest"' <<<"$outputs"
check "rest: no HTTP API" jq -e '[.Items[]? | select(.Name == "taskhost")] | length == 0' <(awsr $REGION apigatewayv2 get-apis)
res=$(awsr $REGION apigateway get-resources --rest-api-id "$rest_id" --embed methods)
pool_id=$(jq -r '.cognito_user_pool_id.value' <<<"$outputs")
authz=$(awsr $REGION apigateway get-authorizers --rest-api-id "$rest_id")
check "rest: one Cognito user-pool authorizer, the stack's pool, on the Authorization header" jq -e --arg p "$pool_id" \
  '.items | length == 1 and .[0].type == "COGNITO_USER_POOLS" and (.[0].providerARNs[0] | endswith("userpool/" + $p))
   and .[0].identitySource == "method.request.header.Authorization"' <<<"$authz"
authz_id=$(jq -r '.items[0].id' <<<"$authz")
check "rest: / and /{proxy+}, each ANY and OPTIONS, every one a Lambda proxy integration" jq -e '
  (.items | map(.path) | sort) == ["/", "/{proxy+}"]
  and all(.items[]; (.resourceMethods | keys | sort) == ["ANY", "OPTIONS"]
    and all(.resourceMethods[]; .methodIntegration.type == "AWS_PROXY" and .methodIntegration.httpMethod == "POST"
      and (.methodIntegration.uri | test(":function:taskhost/invocations$"))))' <<<"$res"
check "rest: ANY needs the authorizer (access tokens: scope aws.cognito.signin.user.admin) and an API key" jq -e --arg a "$authz_id" '
  all(.items[].resourceMethods.ANY; .authorizationType == "COGNITO_USER_POOLS" and .authorizerId == $a and .apiKeyRequired == true
    and .authorizationScopes == ["aws.cognito.signin.user.admin"])' <<<"$res"
check "rest: OPTIONS (preflights) needs neither" jq -e '
  all(.items[].resourceMethods.OPTIONS; .authorizationType == "NONE" and .apiKeyRequired == false)' <<<"$res"
stage=$(awsr $REGION apigateway get-stage --rest-api-id "$rest_id" --stage-name api)
check "rest: stage api, throttled 50/s burst 100, JSON access log to the access log group" jq -e '
  .methodSettings["*/*"].throttlingRateLimit == 50 and .methodSettings["*/*"].throttlingBurstLimit == 100
  and (.accessLogSettings.destinationArn | endswith(":log-group:/aws/apigateway/taskhost/access"))
  and (.accessLogSettings.format | fromjson | .requestId == "$context.requestId" and .apiKeyId == "$context.identity.apiKeyId")' <<<"$stage"
check "rest: API Gateway's own 4xx/5xx carry the CORS origin" jq -e '
  [.items[] | select(.responseType == "DEFAULT_4XX" or .responseType == "DEFAULT_5XX")
   | .responseParameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "'"'"'*'"'"'"] == [true, true]' \
  <(awsr $REGION apigateway get-gateway-responses --rest-api-id "$rest_id")
check "rest: the account's CloudWatch role is the stack's (REST access logging needs it)" jq -e --arg r "taskhost-apigw-logs-$REGION" \
  '.cloudwatchRoleArn | endswith(":role/" + $r)' <(awsr $REGION apigateway get-account)
check "rest: the function may be invoked by this REST API" jq -e --arg id "$rest_id" \
  '.Policy | fromjson | any(.Statement[]; .Principal.Service == "apigateway.amazonaws.com" and (.Condition.ArnLike["AWS:SourceArn"] | test(":" + $id + "/\\*$")))' \
  <(awsr $REGION lambda get-policy --function-name "$fn")
plans=$(awsr $REGION apigateway get-usage-plans)
check "usage plans: one per client on this stage; partner-a's quota 10000/MONTH, throttle 5/s burst 10; partner-b's none" jq -e --arg id "$rest_id" '
  (.items | map(.name) | sort) == ["taskhost-partner-a", "taskhost-partner-b"]
  and all(.items[]; .apiStages == [{"apiId": $id, "stage": "api"}])
  and (.items[] | select(.name == "taskhost-partner-a") | .quota.limit == 10000 and .quota.period == "MONTH"
       and .throttle.rateLimit == 5 and .throttle.burstLimit == 10)
  and (.items[] | select(.name == "taskhost-partner-b") | .quota == null and .throttle == null)' <<<"$plans"
keya=$(jq -r '.api_key_ids.value["partner-a"]' <<<"$outputs")
check "api keys: the api_key_ids output names both clients' keys" jq -e '.api_key_ids.value | keys == ["partner-a", "partner-b"]' <<<"$outputs"
if grep -qF "$(awsr $REGION apigateway get-api-key --api-key "$keya" --include-value | jq -r '.value')" <<<"$outputs"; then
  bad "api keys: a key's value is in the outputs"
else ok "api keys: no key's value in any output"; fi
check "api keys: partner-a's key is in partner-a's plan, enabled" jq -e --arg k "$keya" '.id == $k and .enabled == true and .name == "taskhost-partner-a"' \
  <(awsr $REGION apigateway get-api-key --api-key "$keya")
plan_a=$(jq -r '.items[] | select(.name == "taskhost-partner-a") | .id' <<<"$plans")
check "api keys: partner-a's plan holds exactly partner-a's key" jq -e --arg k "$keya" '[.items[].id] == [$k]' \
  <(awsr $REGION apigateway get-usage-plan-keys --usage-plan-id "$plan_a")
acl_arn=$(jq -r '.waf_web_acl_arn.value' <<<"$outputs")
acl_name=$(cut -d/ -f3 <<<"$acl_arn") acl_id=$(cut -d/ -f4 <<<"$acl_arn")
acl=$(awsr $REGION wafv2 get-web-acl --scope REGIONAL --name "$acl_name" --id "$acl_id")
check "waf: a regional web ACL, default allow, the common and known-bad-inputs rule groups and a rate rule per IP, blocking" jq -e '
  .WebACL.DefaultAction == {"Allow": {}}
  and ([.WebACL.Rules[] | select(.Statement.ManagedRuleGroupStatement) | .Statement.ManagedRuleGroupStatement | "\(.VendorName)/\(.Name)"] | sort)
      == ["AWS/AWSManagedRulesCommonRuleSet", "AWS/AWSManagedRulesKnownBadInputsRuleSet"]
  and all(.WebACL.Rules[] | select(.Statement.ManagedRuleGroupStatement); .OverrideAction == {"None": {}})
  and (.WebACL.Rules[] | select(.Statement.RateBasedStatement) | .Statement.RateBasedStatement.Limit == 2000
       and .Statement.RateBasedStatement.AggregateKeyType == "IP" and .Action == {"Block": {}})' <<<"$acl"
stage_arn="arn:aws:apigateway:$REGION::/restapis/$rest_id/stages/api"
if wa=$(awsr $REGION wafv2 get-web-acl-for-resource --resource-arn "$stage_arn" 2>/dev/null); then
  check "waf: the web ACL is associated with the stage" jq -e --arg a "$acl_arn" '.WebACL.ARN == $a' <<<"$wa"
else
  moto_note "GetWebACLForResource is not answered: the association is the Terraform state's only"
fi
moto_note "WAF, usage plans and API keys are stored, not enforced: no request is served, so that WAF blocks (or counts), that a missing key is a 403 and a quota a 429 is up to AWS"
check "waf: logging to aws-waf-logs-taskhost, the token and the API key redacted" jq -e '
  .LoggingConfiguration.LogDestinationConfigs == [.LoggingConfiguration.LogDestinationConfigs[0]]
  and (.LoggingConfiguration.LogDestinationConfigs[0] | endswith(":log-group:aws-waf-logs-taskhost"))
  and (.LoggingConfiguration.RedactedFields | map(.SingleHeader.Name) | sort) == ["authorization", "x-api-key"]' \
  <(awsr $REGION wafv2 get-logging-configuration --resource-arn "$acl_arn")
check "waf: its log group keeps 14 days" jq -e '.logGroups | length == 1 and .[0].retentionInDays == 14' \
  <(awsr $REGION logs describe-log-groups --log-group-name-prefix aws-waf-logs-taskhost)
alarms=$(awsr $REGION cloudwatch describe-alarms --alarm-name-prefix taskhost-)
check "rest: the API 5xx alarm is AWS/ApiGateway 5XXError by ApiName and Stage" jq -e '.MetricAlarms[] | select(.AlarmName == "taskhost-api-5xx")
  | .MetricName == "5XXError" and ((.Dimensions | sort_by(.Name)) == [{"Name": "ApiName", "Value": "taskhost"}, {"Name": "Stage", "Value": "api"}])' <<<"$alarms"
check "rest: the dashboard's API widgets read 4XXError/5XXError/Count/Latency by ApiName" jq -e '
  [.DashboardBody | fromjson | .widgets[].properties.metrics[] | select(.[0] == "AWS/ApiGateway")]
  | length == 6 and all(.[]; .[2] == "ApiName" and .[3] == "taskhost" and .[4] == "Stage" and .[5] == "api")
  and (map(.[1]) | index("4XXError") and index("5XXError"))' <(awsr $REGION cloudwatch get-dashboard --dashboard-name taskhost)
run "rest: a second deploy.sh" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke "${rest_vars[@]}"
has "rest, second deploy: nothing added" "0 to add"
has "rest, second deploy: nothing destroyed" "0 to destroy"
run "rest: waf_mode=count" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke "${rest_vars[@]}" -var waf_mode=count
check "waf, count mode: the rule groups count (override count), the rate rule counts" jq -e '
  all(.WebACL.Rules[] | select(.Statement.ManagedRuleGroupStatement); .OverrideAction == {"Count": {}})
  and (.WebACL.Rules[] | select(.Statement.RateBasedStatement) | .Action == {"Count": {}})' \
  <(awsr $REGION wafv2 get-web-acl --scope REGIONAL --name "$acl_name" --id "$acl_id")
run "rest: auth=jwt refused at plan time" 1 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke "${rest_vars[@]}" \
  -var auth=jwt -var jwt_issuer=https://issuer.example.com/ -var 'jwt_audience=["x"]'
has "rest + jwt: says why" 'cannot take auth = "jwt": REST APIs have no JWT'
run "http: waf=true refused at plan time" 1 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke -var waf=true
has "http + waf: says why" 'waf = true needs api_type = "rest": AWS WAF cannot be associated'
run "teardown.sh --yes of the REST stack" 0 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes "${rest_vars[@]}" -var waf_mode=count
left=$(cd "$R" && terraform -chdir=terraform state list 2>/dev/null || true)
if [ -z "$left" ]; then ok "teardown (rest): the state is empty"; else bad "teardown (rest): state still lists $left"; fi
check "teardown (rest): no REST API, no usage plan, no web ACL left" jq -e '.a == 0 and .p == 0 and .w == 0' <(jq -n \
  --argjson a "$(awsr $REGION apigateway get-rest-apis | jq '.items | length')" \
  --argjson p "$(awsr $REGION apigateway get-usage-plans | jq '.items | length')" \
  --argjson w "$(awsr $REGION wafv2 list-web-acls --scope REGIONAL | jq '.WebACLs | length')" '{a: $a, p: $p, w: $w}')

# --- upgrading a stack deployed before accounts: README "Upgrading", step by step ------------------
# c0ccc58 is main just before accounts: the table <name>-tasks keyed id alone.
OLD_MAIN=c0ccc58
if ! git -C "$repo" cat-file -e "$OLD_MAIN:terraform/main.tf" 2>/dev/null; then
  if [ "${CI:-}" = true ]; then
    bad "upgrade: commit $OLD_MAIN (main before accounts) is not in this checkout's history (a shallow clone?)"
  else
    echo "# upgrade steps not run: commit $OLD_MAIN (main before accounts) is not in this checkout's history"
  fi
else
  mv "$R/terraform" "$R/terraform.new"
  git -C "$repo" archive "$OLD_MAIN" terraform | tar -x -C "$R"
  cp "$R/terraform.new/moto_override.tf" "$R/terraform/"
  # That checkout's Terraform takes its zip under the name it had then (one architecture, x86_64).
  cp "$PACKAGE_ZIP" "$R/dist/taskhost-lambda.zip"
  run "upgrade: a stack of main before accounts" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke
  old_table=$(cd "$R" && terraform -chdir=terraform output -raw table_name)
  check "upgrade: its table, $old_table, is keyed id alone" jq -e '.Table.KeySchema == [{"AttributeName": "id", "KeyType": "HASH"}]' \
    <(awsr $REGION dynamodb describe-table --table-name "$old_table")
  # 30 tasks, as the old API wrote them.
  jq -n -c --arg t "$old_table" '{($t): [range(0; 25) | {PutRequest: {Item: {id: {S: "00000000-0000-4000-8000-00000000\(1000 + .)"},
    task: {S: "old task \(.)"}, status: {S: "new"}, priority: {S: "low"}, created_at: {N: "1700000000"}, updated_at: {N: "1700000000"}}}}]}' >"$t/b1.json"
  jq -n -c --arg t "$old_table" '{($t): [range(25; 30) | {PutRequest: {Item: {id: {S: "00000000-0000-4000-8000-00000000\(1000 + .)"},
    task: {S: "old task \(.)"}, status: {S: "new"}, priority: {S: "low"}, created_at: {N: "1700000000"}, updated_at: {N: "1700000000"}}}}]}' >"$t/b2.json"
  awsr $REGION dynamodb batch-write-item --request-items "file://$t/b1.json" >/dev/null
  awsr $REGION dynamodb batch-write-item --request-items "file://$t/b2.json" >/dev/null
  # git pull: this version's Terraform over the same state.
  cp "$R/terraform.new/"*.tf "$R/terraform/"
  rm -rf "$R/terraform/modules" && cp -r "$R/terraform.new/modules" "$R/terraform/modules"
  echo 'auth = "none"' >"$R/terraform/auth.auto.tfvars"
  run "upgrade: deploy.sh at once is refused (the new key would replace the table)" 1 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke
  has "upgrade: the table's replacement is named" "aws_dynamodb_table.tasks: delete then create"
  has "upgrade: and the way round it" 'README "Upgrading" keeps that table and copies its tasks'
  run "upgrade 1: terraform state rm aws_dynamodb_table.tasks" 0 AWS_REGION=$REGION -- terraform -chdir=terraform state rm aws_dynamodb_table.tasks
  # The HTTP API's resources became counted (api_type): their state moves to [0], and a -target
  # plan refuses to leave those moves out; state mv makes them first (no AWS call).
  for r in aws_apigatewayv2_api.http aws_apigatewayv2_integration.lambda aws_apigatewayv2_route.default \
    aws_apigatewayv2_stage.api aws_lambda_permission.api; do
    run "upgrade 1b: terraform state mv $r $r[0]" 0 -- terraform -chdir=terraform state mv "$r" "$r[0]"
  done
  run "upgrade 2: apply -target=aws_dynamodb_table.tasks creates the new table alone" 0 AWS_REGION=$REGION -- \
    terraform -chdir=terraform apply -input=false -auto-approve -target=aws_dynamodb_table.tasks
  has "upgrade 2: one resource added, nothing destroyed" "Resources: 1 added, 0 changed, 0 destroyed"
  new_table=${old_table%-tasks}-user-tasks
  check "upgrade 2: $new_table keyed (user_id, id)" jq -e '.Table.KeySchema == [{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}]' \
    <(awsr $REGION dynamodb describe-table --table-name "$new_table")
  check "upgrade 2: the function still serves from $old_table" jq -e --arg t "$old_table" '.Environment.Variables.TABLE_NAME == $t' \
    <(awsr $REGION lambda get-function-configuration --function-name "$fn")
  run "upgrade 3: migrate-table.sh while the old stack serves" 0 -- bash scripts/migrate-table.sh --from "$old_table" --to "$new_table" --region $REGION
  has "upgrade 3: 30 copied, verified" "verified: $old_table has 30 items; $new_table has 30 of owner 'public'"
  # The old stack's users go on: a new task, and a changed one.
  awsr $REGION dynamodb put-item --table-name "$old_table" --item '{"id": {"S": "00000000-0000-4000-8000-000000002000"}, "task": {"S": "written before the switch"}, "updated_at": {"N": "1700000100"}}' >/dev/null
  awsr $REGION dynamodb update-item --table-name "$old_table" --key '{"id": {"S": "00000000-0000-4000-8000-000000001003"}}' \
    --update-expression "SET #s = :s, updated_at = :u" --expression-attribute-names '{"#s": "status"}' \
    --expression-attribute-values '{":s": {"S": "completed"}, ":u": {"N": "1700000200"}}' >/dev/null
  run "upgrade 4: deploy.sh switches the function" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke
  lacks "upgrade 4: auth.auto.tfvars kept auth = none (no user pool)" "aws_cognito_user_pool.users[0]: Creat"
  has "upgrade 4: nothing destroyed" "0 to destroy"
  check "upgrade 4: the function serves from $new_table" jq -e --arg t "$new_table" '.Environment.Variables.TABLE_NAME == $t' \
    <(awsr $REGION lambda get-function-configuration --function-name "$fn")
  old_sum=$(awsr $REGION dynamodb scan --table-name "$old_table" --consistent-read | jq -S -c '.Items | sort_by(.id.S)' | sha256sum)
  run "upgrade 5: migrate-table.sh again" 0 -- bash scripts/migrate-table.sh --from "$old_table" --to "$new_table" --region $REGION
  has "upgrade 5: the new task copied, the changed one updated" "done: 31 items read: 1 copied, 1 updated, 29 already there, 0 kept"
  has "upgrade 5: verified" "verified: $old_table has 31 items; $new_table has 31 of owner 'public'"
  check "upgrade 5: the changed task's new status is in $new_table" jq -e '.Item.status.S == "completed"' \
    <(awsr $REGION dynamodb get-item --table-name "$new_table" --key '{"user_id": {"S": "public"}, "id": {"S": "00000000-0000-4000-8000-000000001003"}}')
  if [ "$old_sum" = "$(awsr $REGION dynamodb scan --table-name "$old_table" --consistent-read | jq -S -c '.Items | sort_by(.id.S)' | sha256sum)" ]; then
    ok "upgrade: migrate-table.sh left $old_table as it was"
  else bad "upgrade: $old_table changed"; fi
  check "upgrade: $old_table survives, deletion protection on" jq -e '.Table.DeletionProtectionEnabled == true' <(awsr $REGION dynamodb describe-table --table-name "$old_table")
  run "upgrade: a later deploy changes nothing more" 0 AWS_REGION=$REGION -- bash scripts/deploy.sh --no-package --no-smoke
  has "upgrade: later deploy, nothing destroyed" "0 to destroy"
  run "upgrade 6: deletion protection off the old table" 0 -- aws --region $REGION dynamodb update-table --table-name "$old_table" --no-deletion-protection-enabled
  run "upgrade 6: delete the old table" 0 -- aws --region $REGION dynamodb delete-table --table-name "$old_table"
  run "upgrade: teardown.sh" 0 AWS_REGION=$REGION -- bash scripts/teardown.sh --yes
  for tb in "$old_table" "$new_table"; do
    if awsr $REGION dynamodb describe-table --table-name "$tb" >/dev/null 2>&1; then bad "upgrade: $tb is still there"; else ok "upgrade: $tb gone"; fi
  done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
