#!/usr/bin/env bash
# Proves the Terraform checks can fail (CTest: terraform.check_mutations).
#
# Copies terraform/ into a scratch repository with a stand-in runtime/dynamodb.c (the five
# operations: PutItem, GetItem, UpdateItem, DeleteItem, Query) and scripts/package.sh, and the
# real scripts/deploy.sh and scripts/teardown.sh (the checks read which resources they
# guard), checks that check.sh passes there, then breaks one thing at a time — a wildcard
# action, a missing or extra DynamoDB operation, a literal TABLE_NAME, payload format 1.0, a
# log group without retention, a route without the authorizer, a client with a secret, a
# syntax error, an alarm or dashboard metric its service does not publish (a REST API name, a
# dimension it lacks, a literal resource name, a statistic that means nothing for it), an
# alarm without its runbook entry, ... — and requires check.sh to exit 1 with the expected
# check failing. The monitoring checks read the real runtime/metrics.c, lua/routes.lua and
# docs/operations.md, copied in.
# Independent of the state of the real runtime and package script, so it tests the checker
# only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Each file's parse is kept by its content (check.js): only the mutated file is parsed again.
export TF_CHECK_PARSE_CACHE="$scratch/parse-cache"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }

fresh() {
  rm -rf "$scratch/repo"
  mkdir -p "$scratch/repo/runtime" "$scratch/repo/scripts"
  cp -r "$repo/terraform" "$scratch/repo/terraform"
  cp "$repo/scripts/deploy.sh" "$repo/scripts/teardown.sh" "$scratch/repo/scripts/"
  cp "$repo/runtime/host.c" "$scratch/repo/runtime/"
  # The monitoring checks read the runtime's EMF metric table, the route names and the runbook.
  mkdir -p "$scratch/repo/lua" "$scratch/repo/docs"
  cp "$repo/runtime/metrics.c" "$scratch/repo/runtime/"
  cp "$repo/lua/routes.lua" "$scratch/repo/lua/"
  cp "$repo/docs/operations.md" "$scratch/repo/docs/"
  rm -rf "$scratch/repo/terraform/.terraform"
  # Stand-ins shaped like the real ones: the client builds the target from a prefix, the
  # store names the operations it calls.
  cat > "$scratch/repo/runtime/dynamodb.c" <<'EOF'
/* Stand-in for the DynamoDB client. A "Scan" in a comment is not an operation. */
#define TARGET_PREFIX "DynamoDB_20120810."
static const char *msg = "Scan failed"; // "BatchWriteItem" in a line comment neither
EOF
  cat > "$scratch/repo/runtime/store_dynamodb.c" <<'EOF'
static int get(q) { return call(q, "GetItem", body, &o); }
static int put(q) { return call(q, "PutItem", body, &o); }
static int update(q) { return call(q, "UpdateItem", body, &o); }
static int del(q) { return call(q, "DeleteItem", body, &o); }
static int list(q) { return call(q, "Query", body, &o); }
/* Like dynamodb.c's idempotency commit: a transaction of a Put and an Update. */
static const char tx_body[] = "{\"TransactItems\":[{\"Put\":{\"TableName\":\"t\"}},"
                              "{\"Update\":{\"TableName\":\"t\"}}]}";
static int tx(q) { return call(q, "TransactWriteItems", tx_body, &o); }
EOF
  cat > "$scratch/repo/scripts/package.sh" <<'EOF'
#!/usr/bin/env bash
# stand-in: the binary becomes bootstrap at the zip root
arch=arm64
output=${output:-$root/dist/taskhost-lambda-$arch.zip}
strip --strip-all -o "$stage/bootstrap" "$binary"
(cd "$stage" && zip -qr "$output" .)
EOF
}

# run_check → sets $out and $rc
run_check() {
  set +e
  out=$("$here/check.sh" "$scratch/repo" 2>&1)
  rc=$?
  set -e
}

# mutate "what" FILE PERL-SUBSTITUTION "expected failing check (substring)"
mutate() {
  local what=$1 file=$2 subst=$3 expect=$4
  fresh
  local target="$scratch/repo/$file"
  if [ "$subst" = "DELETE" ]; then
    rm -f "$target"
  else
    [ -f "$target" ] || { bad "$what: $file does not exist in the scratch copy"; return; }
    cp "$target" "$scratch/before"
    perl -0pi -e "$subst" "$target"
    if cmp -s "$target" "$scratch/before"; then
      bad "$what: the mutation did not change $file (update this test)"
      return
    fi
  fi
  run_check
  if [ "$rc" -eq 1 ] && grep -q "^FAIL - .*$expect" <<<"$out"; then
    ok "$what: caught by '$expect'"
  else
    bad "$what: expected exit 1 and a FAIL line with '$expect'; got exit $rc:"
    grep -E '^(FAIL|[0-9]+ passed)' <<<"$out" | sed 's/^/    /'
  fi
}

fresh
run_check
if [ "$rc" -eq 0 ] && grep -q '^[0-9]* passed, 0 failed$' <<<"$out"; then
  ok "unchanged terraform/ passes every check"
else
  bad "unchanged terraform/ should pass; got exit $rc:"
  grep -E '^(FAIL|[0-9]+ passed)' <<<"$out" | sed 's/^/    /'
fi

L=terraform/modules/lambda/main.tf
M=terraform/main.tf
mutate 'wildcard action "dynamodb:*"' $L 's/"dynamodb:DeleteItem",/"dynamodb:DeleteItem",\n      "dynamodb:*",/' 'no "\*" in any action'
mutate 'wildcard action also breaks the action set' $L 's/"dynamodb:DeleteItem",/"dynamodb:DeleteItem",\n      "dynamodb:*",/' 'may but the runtime never sends: dynamodb:\*'
mutate 'action missing (Query)' $L 's/\s*"dynamodb:Query",//' 'the runtime sends but the role may not: dynamodb:Query'
mutate 'extra action (BatchWriteItem)' $L 's/"dynamodb:Query",/"dynamodb:Query",\n      "dynamodb:BatchWriteItem",/' 'never sends: dynamodb:BatchWriteItem'
mutate 'Scan granted again beside Query' $L 's/"dynamodb:Query",/"dynamodb:Query",\n      "dynamodb:Scan",/' 'the role may but the runtime never sends: dynamodb:Scan'
mutate 'runtime sends a new operation (DynamoDB_20120810.Scan)' runtime/dynamodb.c 's/^#define TARGET_PREFIX.*$/$&\nstatic const char *q = "DynamoDB_20120810." "Scan";/m' 'the runtime sends but the role may not: dynamodb:Scan'
mutate 'the store calls a new operation ("BatchWriteItem")' runtime/store_dynamodb.c 's/\z/static int tx(q) { return call(q, "BatchWriteItem", body, &o); }\n/' 'may not: dynamodb:BatchWriteItem'
mutate 'the transaction gains a ConditionCheck' runtime/store_dynamodb.c 's/\{\\"Update\\":\{\\"TableName\\":/{\\"ConditionCheck\\":{\\"TableName\\":/' 'may not: dynamodb:ConditionCheckItem'
mutate 'a transaction without its actions' runtime/store_dynamodb.c 's/\\"(Put|Update)\\":\{/\\"$1\\":[/g' 'no transaction action'
mutate 'the store no longer queries' runtime/store_dynamodb.c 's/^static int list.*\n//m' 'the role may but the runtime never sends: dynamodb:Query'
mutate 'runtime/dynamodb.c missing' runtime/dynamodb.c DELETE 'runtime/dynamodb.c not found'
mutate 'resource "*" on the DynamoDB statement' $L 's/resources = \[var\.table\.arn\]/resources = ["*"]/' 'no "\*" in any action'
mutate 'DynamoDB statement on a literal ARN' $L 's/resources = \[var\.table\.arn\]/resources = ["arn:aws:dynamodb:us-east-1:123456789012:table\/tasks"]/' 'resource is the literal'
mutate 'X-Ray statement without the enable_tracing guard' $L 's/for_each = var\.enable_tracing \? \[1\] : \[\]/for_each = [1]/' 'only when var.enable_tracing'
mutate 'logs:CreateLogGroup granted' $L 's/"logs:CreateLogStream",/"logs:CreateLogGroup",\n      "logs:CreateLogStream",/' 'log writes are CreateLogStream'
mutate 'log resource arn:aws:logs:*:*:*' $L 's/resources = \["\$\{aws_cloudwatch_log_group\.function\.arn\}:\*"\]/resources = ["arn:aws:logs:*:*:*"]/' 'no "\*" in any action'
mutate 'managed policy attachment' $L 's/\z/\nresource "aws_iam_role_policy_attachment" "basic" {\n  role       = aws_iam_role.function.name\n  policy_arn = "arn:aws:iam::aws:policy\/service-role\/AWSLambdaBasicExecutionRole"\n}\n/' 'no managed policy attachments'
mutate 'jsonencode() policy (unreadable here)' $L 's/policy = data\.aws_iam_policy_document\.permissions\.json/policy = jsonencode({ Statement = [] })/' 'is not a data.aws_iam_policy_document'
mutate 'handler "main"' $L 's/handler\s*=\s*"bootstrap"/handler = "main"/' 'handler is "bootstrap"'
mutate 'package.sh no longer writes bootstrap' scripts/package.sh 's/"\$stage\/bootstrap"/"\$stage\/taskhost"/' 'writes no file named "bootstrap"'
mutate 'package.sh writes bootstrap in a subfolder' scripts/package.sh 's/"\$stage\/bootstrap"/"\$stage\/bin\/bootstrap"/' 'writes no file named "bootstrap"'
mutate 'package.sh writes another zip' scripts/package.sh 's/taskhost-lambda-\$arch\.zip/taskhost-lambda.zip/' 'does not write dist/taskhost-lambda-\$arch.zip'
mutate 'package_path default names one zip for both architectures' $M 's/taskhost-lambda-\$\{var\.architecture\}\.zip/taskhost-lambda.zip/' 'no "../dist/taskhost-lambda-'
mutate 'package_path default no longer null' terraform/variables.tf 's/(variable "package_path" \{.*?default\s*=\s*)null/$1"..\/dist\/taskhost-lambda-arm64.zip"/s' 'defaults to "../dist/taskhost-lambda-arm64.zip", not null'
mutate 'runtime provided.al2' $L 's/"provided\.al2023"/"provided.al2"/' 'runtime is provided.al2023'
mutate 'architectures pinned to x86_64' $L 's/\[var\.architecture\]/["x86_64"]/' 'architectures is \["x86_64"\], not \[var.architecture\]'
mutate 'architecture default x86_64 (package.sh builds arm64)' terraform/variables.tf 's/(variable "architecture" \{.*?default\s*=\s*)"arm64"/$1"x86_64"/s' 'root variable architecture defaults to "x86_64"'
mutate 'package.sh default --arch x86_64 (Terraform deploys arm64)' scripts/package.sh 's/^arch=arm64$/arch=x86_64/m' "default --arch is x86_64, Terraform's is arm64"
mutate 'architecture not passed to the module' $M 's/\n\s*architecture = var\.architecture//' 'gets architecture = undefined'
mutate 'architecture without validation' terraform/variables.tf 's/(variable "architecture" \{.*?)\n  validation \{.*?\n  \}\n/$1/s' 'has no validation naming'
mutate 'source_code_hash removed' $L 's/\n\s*source_code_hash[^\n]*//' 'source_code_hash = filebase64sha256'
mutate 'literal TABLE_NAME' $L 's/TABLE_NAME\s*= var\.table\.name/TABLE_NAME = "taskhost-tasks"/' 'TABLE_NAME is the aws_dynamodb_table'
mutate 'TABLE_NAME overridable from the environment map' $M 's/TASKHOST_CORS_ORIGIN   = var\.cors_origin/TABLE_NAME = "other"\n    TASKHOST_CORS_ORIGIN   = var.cors_origin/' 'TABLE_NAME is the aws_dynamodb_table'
mutate 'module handed another name' $M 's/table = aws_dynamodb_table\.tasks/table = { name = "tasks", arn = aws_dynamodb_table.tasks.arn }/' 'TABLE_NAME is the aws_dynamodb_table'
mutate 'TASKHOST_STORE dropped' $L 's/\n\s*TASKHOST_STORE = "dynamodb"//' 'TASKHOST_STORE is "dynamodb"'
mutate 'payload_format_version 1.0' $M 's/payload_format_version = "2\.0"/payload_format_version = "1.0"/' 'payload_format_version "2.0"'
mutate 'payload_format_version left implicit' $M 's/\n\s*payload_format_version[^\n]*//' 'payload_format_version "2.0"'
mutate 'access log group without retention' $M 's/(name\s*=\s*"\/aws\/apigateway\/\$\{var\.name\}\/access"\n)\s*retention_in_days[^\n]*\n/$1/' 'every log group has a retention'
mutate 'function log group without retention' $L 's/(name\s*=\s*"\/aws\/lambda\/\$\{var\.name\}"\n)\s*retention_in_days[^\n]*\n/$1/' 'every log group has a retention'
mutate 'retention default 0 (never expire)' terraform/variables.tf 's/default     = 14/default     = 0/' 'every log group has a retention'
mutate 'function not depending on its log group' $L 's/\n\s*aws_cloudwatch_log_group\.function,\n/\n/' 'created first (depends_on)'
mutate 'point-in-time recovery off' $M 's/(point_in_time_recovery \{\n\s*enabled = )true/${1}false/' 'point-in-time recovery enabled'
mutate 'TTL off' $M 's/(ttl \{\n\s*attribute_name = "expires_at"\n\s*enabled\s*= )true/${1}false/' 'TTL on expires_at'
mutate 'TTL on another attribute' $M 's/attribute_name = "expires_at"/attribute_name = "ttl"/' 'TTL on expires_at'
mutate 'TTL block dropped' $M 's/\n\s*ttl \{\n[^}]*\}\n/\n/' 'TTL on expires_at'
mutate 'transaction put not granted' terraform/modules/lambda/main.tf 's/\n\s*"dynamodb:PutItem",//' 'the runtime sends but the role may not: dynamodb:PutItem'
mutate 'a made-up TransactWriteItems action' terraform/modules/lambda/main.tf 's/"dynamodb:Query",/"dynamodb:Query",\n      "dynamodb:TransactWriteItems",/' 'the role may but the runtime never sends: dynamodb:TransactWriteItems'
mutate 'server-side encryption off' $M 's/(server_side_encryption \{\n\s*enabled = )true/${1}false/' 'server-side encryption enabled'
mutate 'billing PROVISIONED' $M 's/"PAY_PER_REQUEST"/"PROVISIONED"/' 'billing_mode is PAY_PER_REQUEST'
mutate 'deletion protection hard-coded off' $M 's/deletion_protection_enabled = var\.deletion_protection/deletion_protection_enabled = false/' 'deletion_protection_enabled = var.deletion_protection'
mutate 'CORS origin literal at the gateway' $M 's/allow_origins(\s+)= \[var\.cors_origin\]/allow_origins$1= ["*"]/' 'CORS from var.cors_origin'
mutate 'browsers cannot read Location (no expose_headers)' $M 's/^\s*expose_headers\s*=.*\n//m' 'browsers may read Location and ETag'
mutate 'ETag not exposed' $M 's/expose_headers(\s+)= \["location", "etag",/expose_headers$1= ["location",/' 'browsers may read Location and ETag'
mutate 'WWW-Authenticate not exposed' $M 's/, "www-authenticate"//' 'browsers may read Location and ETag'
mutate 'function exposes a header the gateway does not' runtime/host.c 's/"Location, ETag, WWW-Authenticate, Retry-After"/"Location, ETag, WWW-Authenticate, Retry-After, X-Extra"/' 'browsers may read Location and ETag'
mutate 'stage without throttling' $M 's/\n\s*throttling_burst_limit = var\.throttling_burst_limit//' 'throttling set'
mutate 'Lambda permission for any source' $M 's/\n\s*source_arn\s*=[^\n]*//' 'scoped to this API'
mutate 'variable without a description' terraform/variables.tf 's/\n\s*description = "X-Ray active tracing[^\n]*//' 'every variable has a description'
mutate 'module variable without a type' terraform/modules/lambda/variables.tf 's/(variable "timeout" \{\n[^}]*?)\n\s*type\s*=\s*number/$1/' 'every variable has a description and a type'
mutate 'api_endpoint output missing' terraform/outputs.tf 's/output "api_endpoint"/output "api_url"/' 'outputs: api_endpoint'
# The table's keys.
mutate 'table keyed by id alone' $M 's/hash_key     = "user_id"\n  range_key    = "id"/hash_key     = "id"/' 'partition key user_id (S), sort key id (S)'
mutate 'table named like the old one' $M 's/name         = "\$\{var\.name\}-user-tasks"/name         = "\${var.name}-tasks"/' 'the table is not named <name>-tasks'
mutate 'table without the sort key' $M 's/\n\s*range_key    = "id"//' 'partition key user_id (S), sort key id (S)'
mutate 'table keyed id, user_id (swapped)' $M 's/hash_key     = "user_id"\n  range_key    = "id"/hash_key     = "id"\n  range_key    = "user_id"/' 'partition key user_id (S), sort key id (S)'
# Auth: the variables.
V=terraform/variables.tf
O=terraform/outputs.tf
mutate 'auth defaults to none' $V 's/(variable "auth" \{.*?default\s*=\s*)"cognito"/$1"none"/s' 'var.auth is "cognito" (the default)'
mutate 'auth validation accepts anything' $V 's/contains\(\["cognito", "jwt", "none"\], var\.auth\)/length(var.auth) > 0/' 'var.auth is "cognito" (the default)'
mutate 'auth validation forgets "jwt"' $V 's/contains\(\["cognito", "jwt", "none"\], var\.auth\)/contains(["cognito", "none"], var.auth)/' 'var.auth is "cognito" (the default)'
mutate 'jwt without its precondition' $M 's/\n  lifecycle \{\n\s*# Checked at plan time.*?\n  \}\n/\n/s' '"jwt" without jwt_issuer or jwt_audience'
mutate 'precondition forgets the audience' $M 's/local\.cognito \|\| \(var\.jwt_issuer != null && length\(var\.jwt_audience\) > 0\)/local.cognito || var.jwt_issuer != null/' '"jwt" without jwt_issuer or jwt_audience'
mutate 'precondition also refuses cognito' $M 's/local\.cognito \|\| \(var\.jwt_issuer/local.auth_on \&\& (var.jwt_issuer/' '"jwt" without jwt_issuer or jwt_audience'
mutate 'jwt_audience a string' $V 's/(variable "jwt_audience" \{.*?type\s*=\s*)list\(string\)/${1}string/s' 'jwt_audience (a list of strings)'
mutate 'a validation that needs Terraform 1.9' $V 's/(variable "jwt_issuer" \{.*?validation \{\n\s*condition\s*=\s*)/${1}var.auth != "jwt" || /s' 'a validation refers to its own variable only'
# Auth: the user pool and its client.
mutate 'user pool always created' $M 's/(resource "aws_cognito_user_pool" "users" \{\n\s*count = )local\.cognito \? 1 : 0/${1}1/' 'exist exactly when auth = "cognito"'
mutate 'app client also with auth = jwt' $M 's/(resource "aws_cognito_user_pool_client" "api" \{\n\s*count = )local\.cognito/${1}local.auth_on/' 'exist exactly when auth = "cognito"'
mutate 'client of another pool' $M 's/user_pool_id = aws_cognito_user_pool\.users\[0\]\.id/user_pool_id = "eu-west-1_AbC123"/' 'exist exactly when auth = "cognito"'
mutate 'user name not the email' $M 's/\n\s*username_attributes\s*=[^\n]*//' 'sign in with their email'
mutate 'email not verified' $M 's/\n\s*auto_verified_attributes\s*=[^\n]*//' 'sign in with their email'
mutate 'password of 6 characters' $M 's/minimum_length(\s*)= 12/minimum_length${1}= 6/' 'a password policy of 8 characters or more'
mutate 'no password policy' $M 's/\n  password_policy \{.*?\n  \}\n//s' 'a password policy of 8 characters or more'
mutate 'pool deletion protection off for good' $M 's/deletion_protection = var\.deletion_protection \? "ACTIVE" : "INACTIVE"/deletion_protection = "INACTIVE"/' "the pool's deletion protection follows var.deletion_protection"
mutate 'pool deletion protection inverted' $M 's/var\.deletion_protection \? "ACTIVE" : "INACTIVE"/var.deletion_protection ? "INACTIVE" : "ACTIVE"/' "the pool's deletion protection follows var.deletion_protection"
mutate 'teardown.sh leaves the pool protected' scripts/teardown.sh 's/ -target=aws_cognito_user_pool\.users//g' 'teardown.sh and deploy.sh know the pool'
mutate "teardown.sh's plan check refuses the pool's update" scripts/teardown.sh 's/ and \.address != "aws_cognito_user_pool\.users\[0\]"//' 'teardown.sh and deploy.sh know the pool'
mutate "deploy.sh does not guard the pool" scripts/deploy.sh 's/ or \.address == "aws_cognito_user_pool\.users\[0\]"//' 'teardown.sh and deploy.sh know the pool'
mutate 'client with a secret' $M 's/generate_secret = false/generate_secret = true/' 'the app client has no secret'
mutate 'client without SRP' $M 's/\n\s*"ALLOW_USER_SRP_AUTH",//' 'exactly USER_PASSWORD_AUTH, USER_SRP_AUTH and REFRESH_TOKEN_AUTH'
mutate 'client with admin password auth too' $M 's/"ALLOW_REFRESH_TOKEN_AUTH",/"ALLOW_REFRESH_TOKEN_AUTH",\n    "ALLOW_ADMIN_USER_PASSWORD_AUTH",/' 'exactly USER_PASSWORD_AUTH, USER_SRP_AUTH and REFRESH_TOKEN_AUTH'
mutate 'client flows left to the default' $M 's/\n  explicit_auth_flows = \[.*?\]\n/\n/s' 'exactly USER_PASSWORD_AUTH, USER_SRP_AUTH and REFRESH_TOKEN_AUTH'
mutate 'access token validity not stated' $M 's/\n\s*access_token_validity\s*=[^\n]*//' 'stated token validities'
mutate 'token validity units not stated' $M 's/\n  token_validity_units \{.*?\n  \}\n/\n/s' 'stated token validities'
# Auth: the authorizer.
mutate 'authorizer also with auth = none' $M 's/(resource "aws_apigatewayv2_authorizer" "jwt" \{\n\s*count = )local\.http && local\.auth_on \? 1 : 0/${1}local.http ? 1 : 0/' 'a JWT authorizer on the Authorization header, exactly when'
mutate 'authorizer only with cognito' $M 's/(resource "aws_apigatewayv2_authorizer" "jwt" \{\n\s*count = )local\.http && local\.auth_on/${1}local.http \&\& local.cognito/' 'a JWT authorizer on the Authorization header, exactly when'
mutate 'authorizer on another header' $M 's/\$request\.header\.Authorization/\$request.header.X-Token/' 'a JWT authorizer on the Authorization header'
mutate 'a Lambda authorizer' $M 's/authorizer_type\s*=\s*"JWT"/authorizer_type  = "REQUEST"/' 'a JWT authorizer on the Authorization header'
mutate 'issuer a literal' $M 's/issuer   = local\.cognito \? local\.cognito_issuer : var\.jwt_issuer/issuer   = local.cognito ? "https:\/\/cognito-idp.eu-west-1.amazonaws.com\/eu-west-1_AbC123" : var.jwt_issuer/' "issuer is the pool's"
mutate 'issuer over http' $M 's/"https:\/\/\$\{aws_cognito_user_pool\.users\[0\]\.endpoint\}"/"http:\/\/\${aws_cognito_user_pool.users[0].endpoint}"/' "issuer is the pool's"
mutate 'issuer the pool id alone' $M 's/\$\{aws_cognito_user_pool\.users\[0\]\.endpoint\}/\${aws_cognito_user_pool.users[0].id}/' "issuer is the pool's"
mutate 'jwt issuer ignored' $M 's/local\.cognito \? local\.cognito_issuer : var\.jwt_issuer/local.cognito_issuer/' "issuer is the pool's"
mutate 'audience not the client id' $M 's/audience = local\.cognito \? \[aws_cognito_user_pool_client\.api\[0\]\.id\] : var\.jwt_audience/audience = var.jwt_audience/' 'audience is .the app client'
mutate 'audience the pool id' $M 's/\[aws_cognito_user_pool_client\.api\[0\]\.id\]/[aws_cognito_user_pool.users[0].id]/' 'audience is .the app client'
# Auth: the routes.
mutate '$default without the authorizer' $M 's/\n\s*authorization_type = local\.auth_on \? "JWT" : "NONE"\n\s*authorizer_id\s*= [^\n]*//' 'every route needs the authorizer'
mutate '$default authorization NONE' $M 's/authorization_type = local\.auth_on \? "JWT" : "NONE"/authorization_type = "NONE"/' 'every route needs the authorizer'
mutate '$default JWT also with auth = none' $M 's/authorization_type = local\.auth_on \? "JWT" : "NONE"/authorization_type = "JWT"/' 'every route needs the authorizer'
mutate 'a second route without the authorizer' $M 's/\z/\nresource "aws_apigatewayv2_route" "open" {\n  api_id    = aws_apigatewayv2_api.http.id\n  route_key = "GET \/tasks"\n  target    = "integrations\/\${aws_apigatewayv2_integration.lambda.id}"\n}\n/' 'every route needs the authorizer'
mutate 'the preflight route needs a token' $M 's/(route_key\s*= "OPTIONS \/\{proxy\+\}"\n.*?authorization_type = )"NONE"/${1}"JWT"\n  authorizer_id      = aws_apigatewayv2_authorizer.jwt[0].id/s' 'every route needs the authorizer'
mutate 'no preflight route' $M 's/\nresource "aws_apigatewayv2_route" "preflight" \{.*?\n\}\n//s' 'CORS preflights need no token'
mutate 'preflight route only with cognito' $M 's/(resource "aws_apigatewayv2_route" "preflight" \{\n\s*count = )local\.http && local\.auth_on/${1}local.http \&\& local.cognito/' 'CORS preflights need no token'
mutate 'preflight route on one path only' $M 's/"OPTIONS \/\{proxy\+\}"/"OPTIONS \/tasks"/' 'CORS preflights need no token'
mutate 'browsers may not send Authorization' $M 's/allow_headers  = \["content-type", "authorization", /allow_headers  = ["content-type", /' 'CORS preflights need no token'
# Auth: the function and the outputs.
mutate 'TASKHOST_AUTH not set' $M 's/\n\s*TASKHOST_AUTH = [^\n]*//' 'TASKHOST_AUTH is "jwt" exactly when'
mutate 'TASKHOST_AUTH always jwt' $M 's/TASKHOST_AUTH = local\.auth_on \? "jwt" : "none"/TASKHOST_AUTH = "jwt"/' 'TASKHOST_AUTH is "jwt" exactly when'
mutate 'TASKHOST_AUTH only with cognito' $M 's/TASKHOST_AUTH = local\.auth_on \?/TASKHOST_AUTH = local.cognito ?/' 'TASKHOST_AUTH is "jwt" exactly when'
mutate 'TASKHOST_AUTH overridden by the module' $L 's/TASKHOST_STORE = "dynamodb"/TASKHOST_STORE = "dynamodb"\n      TASKHOST_AUTH  = "none"/' 'TASKHOST_AUTH is "jwt" exactly when'
mutate 'no cognito_client_id output' $O 's/output "cognito_client_id"/output "client_id"/' 'outputs: cognito_user_pool_id, cognito_client_id, cognito_issuer'
mutate 'cognito_issuer not the authorizer issuer' $O 's/value       = local\.cognito_issuer/value       = local.cognito ? aws_cognito_user_pool.users[0].endpoint : null/' 'outputs: cognito_user_pool_id, cognito_client_id, cognito_issuer'
mutate 'cognito_user_pool_id without its condition' $O 's/value       = local\.cognito \? aws_cognito_user_pool\.users\[0\]\.id : null/value       = aws_cognito_user_pool.users[0].id/' 'outputs: cognito_user_pool_id, cognito_client_id, cognito_issuer'
mutate 'no region output' $O 's/output "region"/output "aws_region"/' 'outputs: cognito_user_pool_id, cognito_client_id, cognito_issuer'
mutate 'deployer may not delete the pool' terraform/deployer-policy.json 's/"cognito-idp:DeleteUserPool",//' 'deployer policy:'
mutate 'deployer may not create the client' terraform/deployer-policy.json 's/"cognito-idp:CreateUserPoolClient", //' 'deployer policy:'
mutate 'deployer may not touch the authorizers' terraform/deployer-policy.json 's/"arn:aws:apigateway:\*::\/apis\/\*", //' 'deployer policy:'
# Monitoring (issue 14): every alarm and dashboard metric is one its service publishes.
W=terraform/monitoring.tf
mutate 'API 5xx alarm on the REST API metric name' $W 's/api_5xx = local\.http \? "5xx" : "5XXError"/api_5xx = "5XXError"/' 'every alarm.s metric is one its service publishes'
mutate 'API alarms by ApiName (REST) instead of ApiId' $W 's/\{\n\s*ApiId = aws_apigatewayv2_api\.http\[0\]\.id,/{\n    ApiName = aws_apigatewayv2_api.http[0].id,/' 'every alarm.s metric is one its service publishes'
mutate 'Stage dimension the stage id, not its name' $W 's/Stage = aws_apigatewayv2_stage\.api\[0\]\.name\n/Stage = aws_apigatewayv2_stage.api[0].id\n/' 'dimension Stage'
mutate 'FunctionName a literal' $W 's/fn_dims = \{ FunctionName = module\.lambda\.function_name \}/fn_dims = { FunctionName = "taskhost" }/' 'dimension FunctionName'
mutate 'Lambda metric under a dimension it lacks' $W 's/fn_dims = \{ FunctionName = module\.lambda\.function_name \}/fn_dims = { FunctionName = module.lambda.function_name, Stage = "api" }/' 'is not published by dimensions'
mutate 'Duration summed' $W 's/(metric_name\s*= "Duration"\n\s*dimensions\s*= local\.fn_dims\n\s*statistic\s*= )"Maximum"/${1}"Sum"/' 'statistic "Sum" is not a meaningful one for Duration'
mutate 'ThrottledRequests without its Operation' $W 's/metric_name = "ReadThrottleEvents"/metric_name = "ThrottledRequests"/' 'ThrottledRequests is not published by dimensions \[TableName\]'
mutate 'a DynamoDB metric that does not exist' $W 's/metric_name = "WriteThrottleEvents"/metric_name = "WriteThrottles"/' 'publishes no metric "WriteThrottles"'
mutate 'alarm expression names no query' $W 's/expression  = "reads \+ writes"/expression  = "reads + writez"/' 'names writez, no query'
mutate 'EMF metric the runtime does not write' $W 's/metric_name\s*= "StoreRetries"/metric_name         = "StoreRetry"/' 'publishes no metric "StoreRetry"'
mutate 'EMF alarm in a literal namespace' $W 's/namespace\s*= var\.metrics_namespace\n(\s*metric_name\s*= "5xx")/namespace           = "AWS\/Taskhost"\n$1/' 'namespace "AWS/Taskhost" is not one of'
mutate 'EMF metric by Operation the runtime publishes by Service only' $W 's/emf_dims = \{ Service = module\.lambda\.function_name \}/emf_dims = { Service = module.lambda.function_name, Operation = "CreateTask" }/' 'StoreRetries is not published by dimensions \[Operation, Service\]'
mutate 'the runtime stops writing StoreRetries' runtime/metrics.c 's/^.*"StoreRetries".*\n//m' 'publishes no metric "StoreRetries"'
mutate 'TASKHOST_METRICS_NAMESPACE not passed to the function' $M 's/\n\s*TASKHOST_METRICS_NAMESPACE = var\.metrics_namespace//' 'TASKHOST_METRICS_NAMESPACE is var.metrics_namespace'
mutate 'an alarm without treat_missing_data' $W 's/(alarm_name\s*= "\$\{var\.name\}-lambda-errors"(?:.*?\n)*?)\s*treat_missing_data\s*= "notBreaching"\n/$1\n/' 'chooses treat_missing_data'
mutate 'an alarm that does not notify on recovery' $W 's/(alarm_name\s*= "\$\{var\.name\}-api-5xx"(?:.*?\n)*?)\s*ok_actions\s*= local\.alarm_topic\n/$1\n/' 'api_5xx: ok_actions lacks'
mutate 'no API 5xx alarm' $W 's/\nresource "aws_cloudwatch_metric_alarm" "api_5xx" \{.*?\n\}\n//s' 'no alarm on: API 5xx'
mutate 'no store-retries alarm' $W 's/\nresource "aws_cloudwatch_metric_alarm" "store_retries" \{.*?\n\}\n//s' 'no alarm on: runtime store retries'
mutate 'duration alarm at the timeout itself' $W 's/threshold           = var\.timeout \* 1000 \* 0\.8/threshold           = var.timeout * 1000/' 'fires before the function.s timeout'
mutate 'an alarm without a runbook entry' docs/operations.md 's/<name>-store-retries/<name>-store-retry-count/g' 'not in docs/operations.md: taskhost-store-retries'
mutate 'the e-mail subscription always made' $W 's/count = var\.alarm_email == null \? 0 : 1/count = 1/' 'e-mail subscription exactly when var.alarm_email'
mutate 'dashboard: a REST API metric' $W 's/api_4xx = local\.http \? "4xx" : "4XXError"/api_4xx = "4XXError"/' 'every dashboard metric'
mutate 'dashboard: the "." shorthand' $W 's/concat\(\["AWS\/ApiGateway", local\.api_5xx\], local\.api_dim_row\)/[".", local.api_5xx, ".", ".", ".", "."]/' 'shorthand'
mutate 'dashboard: an operation no route has' $W 's/"Operation", "UpdateTask"\]/"Operation", "PatchTask"]/' 'dimension Operation = "PatchTask"'
mutate 'dashboard: DynamoDB Operation the runtime never sends' $W 's/"Operation", "Query"\]/"Operation", "Scan"]/' 'dimension Operation = "Scan"'
mutate 'dashboard: TableName a literal' $W 's/\["AWS\/DynamoDB", "ConsumedReadCapacityUnits", "TableName", aws_dynamodb_table\.tasks\.name\]/["AWS\/DynamoDB", "ConsumedReadCapacityUnits", "TableName", "taskhost-user-tasks"]/' 'dimension TableName'
mutate 'dashboard: no cold starts' $W 's/\n\s*\[var\.metrics_namespace, "ColdStart".*?\],//' 'the dashboard lacks: cold starts'
mutate 'dashboard: API latency p99 missing' $W 's/stat = "p99", label = "API p99"/stat = "p90", label = "API p90"/' 'the dashboard lacks: API latency p99'
mutate 'dashboard: a percentile of a count' $W 's/\[var\.metrics_namespace, "2xx", "Service", module\.lambda\.function_name\]/[var.metrics_namespace, "2xx", "Service", module.lambda.function_name, { stat = "p99" }]/' 'statistic "p99" is not a meaningful one for 2xx'
mutate 'dashboard_url not the dashboard' $O 's/#dashboards:name=\$\{aws_cloudwatch_dashboard\.main\.dashboard_name\}/#dashboards:name=\${var.name}/' 'dashboard_url opens this stack'
mutate 'deployer may not put alarms' terraform/deployer-policy.json 's/"cloudwatch:PutMetricAlarm", //' 'deployer policy: .* alarm topic'
mutate 'deployer may not create the topic' terraform/deployer-policy.json 's/"sns:CreateTopic", //' 'deployer policy: .* alarm topic'
P=terraform/deployer-policy.json
mutate 'deployer may not touch the REST API' $P 's/"arn:aws:apigateway:\*::\/restapis", "arn:aws:apigateway:\*::\/restapis\/\*",//' 'deployer policy: .* REST API'
mutate 'deployer may not create API keys' $P 's/"arn:aws:apigateway:\*::\/apikeys", //' 'deployer policy: .* REST API'
mutate 'deployer may not set the web ACL on the stage' $P 's/"Action": "apigateway:SetWebACL"/"Action": "apigateway:GET"/' 'deployer policy: .* REST API'
mutate 'deployer may not associate the web ACL' $P 's/"wafv2:AssociateWebACL", //' 'deployer policy: .* REST API'
mutate 'deployer may not log WAF to its group' $P 's/"arn:aws:logs:\*:\*:log-group:aws-waf-logs-taskhost",//' 'deployer policy: .* REST API'
mutate 'the logging role passed to any service' $P 's/"iam:PassedToService": "apigateway.amazonaws.com"/"iam:PassedToService": "lambda.amazonaws.com"/' 'deployer policy: .* REST API'
# api_type = "rest" (rest.tf): the REST API, its authorizer, keys, usage plans and WAF.
R=terraform/rest.tf
mutate 'rest + jwt planned' $R 's/condition     = var\.auth != "jwt"/condition     = true/' 'refused at plan time (REST APIs have no JWT authorizer)'
mutate 'http + waf = true planned' $O 's/condition     = local\.rest \|\| var\.waf != true/condition     = true/' 'http: waf = true and api_clients refused'
mutate 'http + api_clients planned' $O 's/condition     = local\.rest \|\| length\(var\.api_clients\) == 0/condition     = true/' 'http: waf = true and api_clients refused'
mutate 'the HTTP API also with rest' $M 's/(resource "aws_apigatewayv2_api" "http" \{\n\s*count = )local\.http \? 1 : 0/${1}1/' 'the HTTP API exists exactly with'
mutate 'no REST stage with rest' $R 's/(resource "aws_api_gateway_stage" "rest" \{\n\s*count = )local\.rest \? 1 : 0/${1}0/' 'the HTTP API exists exactly with'
mutate 'OPTIONS behind the authorizer' $R 's/authorization    = each\.value\.method != "OPTIONS" && local\.cognito/authorization    = local.cognito/' 'ANY needs the Cognito authorizer'
mutate 'OPTIONS needs the API key' $R 's/api_key_required = each\.value\.method != "OPTIONS" && local\.api_keys_on/api_key_required = local.api_keys_on/' 'ANY needs the Cognito authorizer'
mutate 'API key required without clients' $R 's/api_keys_on = local\.rest && length\(var\.api_clients\) > 0/api_keys_on = local.rest/' 'ANY needs the Cognito authorizer'
mutate 'Cognito authorizer without a scope (ID tokens only)' $R 's/\n\s*authorization_scopes = [^\n]*//' 'authorization_scopes'
mutate 'the authorizer on another pool' $R 's/provider_arns   = \[aws_cognito_user_pool\.users\[0\]\.arn\]/provider_arns   = ["arn:aws:cognito-idp:eu-west-1:123456789012:userpool\/eu-west-1_other"]/' 'ANY needs the Cognito authorizer'
mutate 'no ANY on {proxy+}' $R 's/\n\s*"proxy-ANY"\s*= \{[^\n]*\}//' 'the root and {proxy+}'
mutate 'a non-proxy integration' $R 's/type                    = "AWS_PROXY"/type                    = "AWS"/' 'the root and {proxy+}'
mutate 'API keys with http' $R 's/for_each = local\.rest \? var\.api_clients : \{\}/for_each = var.api_clients/' 'one API key, usage plan and plan key per api_clients entry'
mutate 'a key outside its plan' $R 's/key_id        = aws_api_gateway_api_key\.client\[each\.key\]\.id/key_id        = aws_api_gateway_api_key.client["partner"].id/' 'one API key, usage plan and plan key per api_clients entry'
mutate 'api_key_ids hands out the values' $O 's/k => key\.id \}/k => key.value }/' 'api_key_ids names each client'
mutate 'WAF off by default' $R 's/waf_on = local\.rest && var\.waf != false/waf_on = local.rest \&\& var.waf == true/' 'on by default for rest'
mutate 'WAF on the HTTP side' $R 's/waf_on = local\.rest && var\.waf != false/waf_on = var.waf != false/' 'on by default for rest'
mutate 'WAF log group without the aws-waf-logs- prefix' $R 's/name              = "aws-waf-logs-\$\{var\.name\}"/name              = "\/aws\/waf\/\${var.name}"/' 'logging to aws-waf-logs-'
mutate 'WAF logs the API key' $R 's/\n  redacted_fields \{\n    single_header \{\n      name = "x-api-key"\n    \}\n  \}\n//' 'the token and the key must not be logged'
mutate 'no known bad inputs rule group' $R 's/\n\s*AWSManagedRulesKnownBadInputsRuleSet = 20//' 'no AWSManagedRulesKnownBadInputsRuleSet'
mutate 'count mode still blocks (managed groups)' $R 's/for_each = var\.waf_mode == "count" \? \[1\] : \[\]/for_each = []/' 'waf_mode count counts, block blocks'
mutate 'the rate rule always blocks' $R 's/(dynamic "block" \{\n\s*for_each = )var\.waf_mode == "block" \? \[1\] : \[\]/${1}[1]/' 'waf_mode count counts, block blocks'
mutate 'a literal rate limit' $R 's/limit              = var\.waf_rate_limit/limit              = 2000/' 'rate limit per client IP'
mutate 'REST stage unthrottled' $R 's/throttling_rate_limit  = var\.throttling_rate_limit\n/throttling_rate_limit  = 10000\n/' 'throttling from var.throttling_'
mutate 'gateway errors without the CORS origin' $R 's/gatewayresponse\.header\.Access-Control-Allow-Origin"   =/gatewayresponse.header.Access-Control-Allow-Originx"  =/' 'every API Gateway error carries the CORS origin'
mutate 'x-api-key not an allowed CORS header' $M 's/"x-api-key", //' 'x-api-key is an allowed header'
mutate 'the logging role trusts Lambda' $R 's/identifiers = \["apigateway\.amazonaws\.com"\]/identifiers = ["lambda.amazonaws.com"]/' 'logging role is assumed by apigateway'
mutate 'the REST 5xx alarm reads the HTTP metric' $W 's/api_5xx = local\.http \? "5xx" : "5XXError"/api_5xx = "5xx"/' '5xx is not published by dimensions \[ApiName, Stage\]'
mutate 'the integration reads module.lambda (table and role made create_before_destroy)' $R 's/uri                     = local\.rest_invoke_uri/uri                     = module.lambda.invoke_arn/' 'no create_before_destroy resource depends on the table'
mutate 'the REST dashboard by ApiId' $W 's/: \["ApiName", aws_api_gateway_rest_api\.rest\[0\]\.name,/: ["ApiId", aws_api_gateway_rest_api.rest[0].id,/' 'dimension ApiId'
mutate 'a syntax error' terraform/outputs.tf 's/\z/\noutput "broken" {\n  value = [\n}\n/' 'parse terraform/outputs.tf'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
