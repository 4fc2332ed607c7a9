#!/usr/bin/env bash
# test_token.sh — scripts/token.sh against cognito-local (CTest: cognito.token). Runs under
# with_cognito.sh, which starts cognito-local with its pools and exports COGNITO_*:
#
#   bash tests/cognito/with_cognito.sh bash tests/cognito/test_token.sh
#
# --create then sign-in: the token is the only thing on stdout, verifies against the pool's
#   JWKS with PyJWT (tests/cognito/jwt_check.py; a tampered token and a wrong issuer do not),
#   and carries the user's sub, the client_id, the issuer, token_use access and no aud;
#   signing in needs no AWS credentials; a second --create signs in and changes no password;
#   --id-token gives an ID token with aud = the client id.
# Refusals, each one line on stderr and its exit status: wrong password, unknown user, a user
#   with a temporary password, an unconfirmed user, a user name the pool refuses and a
#   password its policy refuses, with the user removed again (1); usage (2); missing
#   aws/jq/terraform and missing Terraform outputs (3); an unreachable endpoint, an unknown
#   client, --create without AWS credentials (4). Where cognito-local answers unlike Cognito
#   (its error codes and messages, no password policy, no client restrictions), an aws
#   wrapper on PATH gives token.sh Cognito's answer instead.
# Terraform outputs through a fake terraform on PATH (a full stack, `{}`, a stack without
#   Cognito, a failing terraform; options and environment override the outputs).
# A terminal: the email and password are asked for, the password is not echoed.
# Secrets: no run's stderr holds a password or any part of a JWT, and the password is never
#   on the AWS CLI's command line; its request files are gone after each run.
# with_cognito.sh itself: without node it fails under CI=true and skips otherwise.
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
set -u
set -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=${SOURCE_DIR:-$(cd "$here/../.." && pwd)}
TOKEN_SH=$SOURCE_DIR/scripts/token.sh
PY=/usr/bin/python3 # Debian's, with python3-jwt (scripts/deps.sh --test)
: "${COGNITO_ENDPOINT:?run under tests/cognito/with_cognito.sh}"

if ! "$PY" -c 'import jwt, cryptography' 2>/dev/null; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: $PY has no jwt/cryptography module (scripts/deps.sh --test installs python3-jwt)"
    exit 1
  fi
  echo "SKIP: $PY has no jwt/cryptography module (scripts/deps.sh --test installs python3-jwt)"
  exit 0
fi
for tool in jq aws; do
  command -v "$tool" >/dev/null || { echo "test_token: $tool is required" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test-token.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
SECONDS=0

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); }
fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL: $1${2:+ — $2}"
  echo "      last run: status ${RC:-?}; stderr: ${ERR:0:400}"
}
check_eq() { if [ "$2" == "$3" ]; then pass; else fail "$1" "expected [${2:0:300}], got [${3:0:300}]"; fi; }
check_match() { if [[ $3 =~ $2 ]]; then pass; else fail "$1" "[${3:0:300}] does not match /$2/"; fi; }
check_jq() {
  local name=$1 json=$2 filter=$3
  shift 3
  if jq -e "$@" "$filter" >/dev/null 2>&1 <<<"$json"; then pass; else fail "$name" "jq '$filter' does not hold on ${json:0:600}"; fi
}
section() { echo "== $*"; }

# ---- running token.sh -----------------------------------------------------------------------

# The environment every run starts from: with_cognito.sh's pool and client, no user.
unset TASKHOST_USER TASKHOST_PASSWORD COGNITO_REGION
JWT_RE='^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
RUNS=0
TOKENS="$TMP/tokens" # every token printed, one a line
: >"$TOKENS"

# run [VAR=VALUE | -u VAR]... -- [ARG...]: token.sh ARGS with stdin from /dev/null and the
# current environment with those variables set or unset. Sets RC, OUT (stdout), ERR
# (stderr); keeps every stderr in $TMP/err.N for the secrets check.
run() {
  local unsets=() sets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    if [ "$1" = -u ]; then unsets+=(-u "$2"); shift; else sets+=("$1"); fi
    shift
  done
  [ $# -gt 0 ] && shift
  RUNS=$((RUNS + 1))
  env "${unsets[@]+"${unsets[@]}"}" "${sets[@]+"${sets[@]}"}" bash "$TOKEN_SH" "$@" \
    </dev/null >"$TMP/out.$RUNS" 2>"$TMP/err.$RUNS"
  RC=$?
  OUT=$(cat "$TMP/out.$RUNS")
  ERR=$(cat "$TMP/err.$RUNS")
  if [[ $OUT =~ $JWT_RE ]]; then echo "$OUT" >>"$TOKENS"; fi
}

# expect_token NAME: the run succeeded and printed exactly one JWT line.
expect_token() {
  check_eq "$1: exit status" 0 "$RC"
  check_eq "$1: one line on stdout" 1 "$(wc -l <"$TMP/out.$RUNS")"
  check_match "$1: stdout is a JWT" "$JWT_RE" "$OUT"
}

# expect_refusal NAME STATUS MESSAGE-REGEX: the run failed with STATUS, printed nothing on
# stdout and one line on stderr, "token.sh: " and matching MESSAGE-REGEX.
expect_refusal() {
  check_eq "$1: exit status" "$2" "$RC"
  check_eq "$1: nothing on stdout" "" "$OUT"
  check_eq "$1: one line on stderr" 1 "$(grep -c '' "$TMP/err.$RUNS")"
  check_match "$1: message" "^token\.sh: $3" "$ERR"
}

# verify NAME TOKEN ISSUER [AUDIENCE]: jwt_check.py's verdict; sets CLAIMS (header + claims).
verify() {
  local name=$1 token=$2
  shift 2
  CLAIMS=$("$PY" "$here/jwt_check.py" "$COGNITO_JWKS_URL" "$@" <<<"$token")
  local status=$?
  check_eq "$name: verifies against the pool's JWKS" 0 "$status"
  [ "$status" -eq 0 ] || echo "      jwt_check: $CLAIMS"
}

# Dummy credentials only; the sign-in itself needs none.
aws_admin() {
  aws --endpoint-url "$COGNITO_ENDPOINT" --region us-east-1 --output json cognito-idp "$@"
}
sub_of() {
  aws_admin admin-get-user --user-pool-id "${2:-$COGNITO_USER_POOL_ID}" --username "$1" |
    jq -r '.UserAttributes[] | select(.Name == "sub") | .Value'
}

# A password with everything JSON and the shell could trip on.
PW='Tr1cky "pass" \ $HOME é`x`'
ALICE=alice@example.com
SECRETS=("$PW") # every password used: none may reach stderr

section "--create, then the token"
run TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" -- --create
expect_token "--create"
check_match "--create: says it created the user" "^token\.sh: created user $ALICE in user pool $COGNITO_USER_POOL_ID$" "$ERR"
ACCESS=$OUT
ALICE_SUB=$(sub_of "$ALICE")
check_match "the user exists, with a sub" '^[0-9a-f-]{36}$' "$ALICE_SUB"

verify "access token" "$ACCESS" "$COGNITO_ISSUER"
check_jq "access token: header" "$CLAIMS" '.header == {alg: "RS256", typ: "JWT", kid: "CognitoLocal"}'
check_jq "access token: claims" "$CLAIMS" '.claims | .token_use == "access" and .sub == $sub
  and .client_id == $client and .iss == $iss and (has("aud") | not) and .username == $sub
  and .scope == "aws.cognito.signin.user.admin" and .exp - .iat == 3600' \
  --arg sub "$ALICE_SUB" --arg client "$COGNITO_CLIENT_ID" --arg iss "$COGNITO_ISSUER"
JWKS=$(curl -s --noproxy '*' "$COGNITO_JWKS_URL")
check_jq "the JWKS holds the token's key (by kid)" "$JWKS" '.keys | map(.kid) | index("CognitoLocal") != null'
check_eq "the issuer is the JWKS URL's base" "$COGNITO_ISSUER/.well-known/jwks.json" "$COGNITO_JWKS_URL"

# The checks can fail: another issuer, a payload changed after signing.
out=$("$PY" "$here/jwt_check.py" "$COGNITO_JWKS_URL" "$COGNITO_OTHER_ISSUER" <<<"$ACCESS")
check_match "jwt_check: another pool's issuer is refused" '^invalid: InvalidIssuerError' "$out"
IFS=. read -r head payload sig <<<"$ACCESS"
forged_payload=$(printf '%s' "$payload" | tr '_-' '/+' | base64 -d 2>/dev/null |
  jq -c '.sub = "00000000-0000-4000-8000-000000000000"' | base64 -w0 | tr '/+' '_-' | tr -d '=')
out=$("$PY" "$here/jwt_check.py" "$COGNITO_JWKS_URL" "$COGNITO_ISSUER" <<<"$head.$forged_payload.$sig")
check_match "jwt_check: a changed payload is refused" '^invalid: InvalidSignatureError' "$out"
out=$("$PY" "$here/jwt_check.py" "$COGNITO_JWKS_URL" "$COGNITO_ISSUER" "$COGNITO_CLIENT_ID" <<<"$ACCESS")
check_match "jwt_check: an access token is no ID token" '^invalid: (InvalidAudienceError|MissingRequiredClaimError)' "$out"

section "sign-in without --create, with options and no AWS credentials"
run -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  AWS_CONFIG_FILE=/dev/null -u COGNITO_USER_POOL_ID -u COGNITO_CLIENT_ID -u COGNITO_ENDPOINT -- \
  --user "$ALICE" --password "$PW" --user-pool-id "$COGNITO_USER_POOL_ID" \
  --client-id="$COGNITO_CLIENT_ID" --endpoint-url "$COGNITO_ENDPOINT"
expect_token "sign-in"
check_eq "sign-in: nothing on stderr" "" "$ERR"
verify "sign-in token" "$OUT" "$COGNITO_ISSUER"
check_jq "sign-in token: same user, a new token" "$CLAIMS" \
  '.claims.sub == $sub and .claims.client_id == $client and .claims.token_use == "access"' \
  --arg sub "$ALICE_SUB" --arg client "$COGNITO_CLIENT_ID"
check_eq "sign-in token differs from the first" 1 "$([ "$OUT" != "$ACCESS" ] && echo 1)"

section "a second --create"
run TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" -- --create
expect_token "second --create"
check_eq "second --create: says so" "token.sh: user $ALICE exists already: signing in" "$ERR"
verify "second --create token" "$OUT" "$COGNITO_ISSUER"
check_jq "second --create: the same user" "$CLAIMS" '.claims.sub == $sub' --arg sub "$ALICE_SUB"
SECRETS+=("Another1Passw0rd")
run TASKHOST_USER=$ALICE TASKHOST_PASSWORD=Another1Passw0rd -- --create
check_eq "--create of an existing user with another password: exit status" 1 "$RC"
check_eq "--create of an existing user with another password: stderr" \
  "token.sh: user $ALICE exists already: signing in"$'\n'"token.sh: wrong email or password for $ALICE" \
  "$(sed 's/ (.*)$//' <<<"$ERR")"
run TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_token "the first password still signs in"

section "--id-token"
run TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" -- --id-token
expect_token "--id-token"
verify "ID token" "$OUT" "$COGNITO_ISSUER" "$COGNITO_CLIENT_ID"
check_jq "ID token: claims" "$CLAIMS" '.claims | .token_use == "id" and .aud == $client
  and .sub == $sub and .email == $email and .email_verified == true and (has("client_id") | not)
  and .["cognito:username"] == $sub' \
  --arg sub "$ALICE_SUB" --arg client "$COGNITO_CLIENT_ID" --arg email "$ALICE"

section "refusals"
SECRETS+=("Wr0ng-password")
run TASKHOST_USER=$ALICE TASKHOST_PASSWORD=Wr0ng-password --
expect_refusal "wrong password" 1 "wrong email or password for $ALICE \((InvalidPasswordException|NotAuthorizedException): "
run TASKHOST_USER=nobody@example.com "TASKHOST_PASSWORD=$PW" --
expect_refusal "unknown user" 1 "(wrong email or password for|no user) nobody@example\.com "
run TASKHOST_USER=not-an-email "TASKHOST_PASSWORD=$PW" -- --create
expect_refusal "--create of a user name that is no email" 1 "user pool $COGNITO_USER_POOL_ID does not accept the user not-an-email \(InvalidParameterException: "
run TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" -- --client-id no-such-client
expect_refusal "unknown app client" 4 "user pool $COGNITO_USER_POOL_ID or app client no-such-client not found in $COGNITO_ENDPOINT "
run TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" AWS_MAX_ATTEMPTS=1 -- --endpoint-url http://127.0.0.1:1
expect_refusal "unreachable endpoint" 4 "initiate-auth failed in http://127\.0\.0\.1:1: .*(connect|Connect)"
run TASKHOST_USER=$ALICE --
expect_refusal "no password, no terminal" 2 "no password: set TASKHOST_PASSWORD or pass --password"
run "TASKHOST_PASSWORD=$PW" --
expect_refusal "no user, no terminal" 2 "no user: pass --user EMAIL or set TASKHOST_USER"
run -- --frobnicate
expect_refusal "unknown option" 2 "unknown argument '--frobnicate'"
run -- --user
expect_refusal "an option without its value" 2 "--user needs a value"

section "users that cannot sign in with a password"
FRANK=frank@example.com
SECRETS+=("Temp0rary-pw")
aws_admin admin-create-user --user-pool-id "$COGNITO_USER_POOL_ID" --username "$FRANK" \
  --temporary-password Temp0rary-pw --message-action SUPPRESS >/dev/null
run TASKHOST_USER=$FRANK TASKHOST_PASSWORD=Temp0rary-pw --
expect_refusal "a user with a temporary password" 1 "user $FRANK must set a new password first \(NEW_PASSWORD_REQUIRED\): aws cognito-idp admin-set-user-password "
GINA=gina@example.com
aws --endpoint-url "$COGNITO_ENDPOINT" --region us-east-1 cognito-idp sign-up --client-id "$COGNITO_CLIENT_ID" \
  --username "$GINA" --password "$PW" --user-attributes Name=email,Value="$GINA" >/dev/null
run TASKHOST_USER=$GINA "TASKHOST_PASSWORD=$PW" --
expect_refusal "a user who signed up and is not confirmed" 1 "user $GINA is not confirmed \(UserNotConfirmedException: "
run TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null -- --create
expect_refusal "--create without AWS credentials" 4 "admin-create-user needs AWS credentials allowed to administer user pool $COGNITO_USER_POOL_ID: Unable to locate credentials"

section "another pool"
BOB=bob@example.com
run TASKHOST_USER=$BOB "TASKHOST_PASSWORD=$PW" -- --create --user-pool-id "$COGNITO_OTHER_POOL_ID" \
  --client-id "$COGNITO_OTHER_POOL_CLIENT_ID"
expect_token "--create in the other pool"
OTHER=$OUT
out=$("$PY" "$here/jwt_check.py" "$COGNITO_OTHER_JWKS_URL" "$COGNITO_OTHER_ISSUER" <<<"$OTHER")
check_jq "other pool's token: its own issuer and client" "$out" '.claims.iss == $iss and .claims.client_id == $client
  and .claims.sub == $sub' --arg iss "$COGNITO_OTHER_ISSUER" --arg client "$COGNITO_OTHER_POOL_CLIENT_ID" \
  --arg sub "$(sub_of "$BOB" "$COGNITO_OTHER_POOL_ID")"
run TASKHOST_USER=$BOB "TASKHOST_PASSWORD=$PW" --
expect_refusal "that user is not in the first pool" 1 "(wrong email or password for|no user) $BOB "

# ---- the Terraform outputs ------------------------------------------------------------------

section "Terraform outputs (a fake terraform on PATH)"
mkdir -p "$TMP/tf"
cat >"$TMP/tf/terraform" <<EOF
#!$(command -v bash)
# Answers only \`terraform -chdir=$SOURCE_DIR/terraform output -json\`, as token.sh must ask.
if [ "\$*" != "-chdir=$SOURCE_DIR/terraform output -json" ]; then
  echo "fake terraform: unexpected arguments: \$*" >&2
  exit 64
fi
if [ -n "\${FAKE_TF_FAIL:-}" ]; then
  printf '\n│ Error: %s\n│\n' "\$FAKE_TF_FAIL" >&2
  exit 1
fi
cat "\$FAKE_TF_OUTPUTS"
EOF
chmod +x "$TMP/tf/terraform"
out_json() { # out_json NAME=VALUE...: terraform output -json for those outputs
  local kv args=()
  for kv in "$@"; do args+=(--arg "${kv%%=*}" "${kv#*=}"); done
  jq -n "${args[@]}" '$ARGS.named | map_values({sensitive: false, type: "string", value: .})'
}
out_json cognito_user_pool_id="$COGNITO_USER_POOL_ID" cognito_client_id="$COGNITO_CLIENT_ID" \
  cognito_issuer="$COGNITO_ISSUER" region=us-east-1 \
  api_endpoint=https://abc123.execute-api.us-east-1.amazonaws.com >"$TMP/full.json"
echo '{}' >"$TMP/empty.json"
out_json region=us-east-1 api_endpoint=https://abc123.execute-api.us-east-1.amazonaws.com \
  table_name=taskhost-tasks >"$TMP/nocognito.json"
out_json cognito_user_pool_id=us-east-1_NoSuchPool cognito_client_id=nosuchclient region=us-east-1 \
  api_endpoint=https://abc123.execute-api.us-east-1.amazonaws.com >"$TMP/bogus.json"
TF=(PATH="$TMP/tf:$PATH" -u COGNITO_USER_POOL_ID -u COGNITO_CLIENT_ID -u AWS_REGION -u AWS_DEFAULT_REGION)

run "${TF[@]}" FAKE_TF_OUTPUTS="$TMP/full.json" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_token "outputs of a deployed stack"
verify "token via the outputs" "$OUT" "$COGNITO_ISSUER"
check_jq "token via the outputs: the output's pool and client" "$CLAIMS" \
  '.claims.sub == $sub and .claims.client_id == $client' --arg sub "$ALICE_SUB" --arg client "$COGNITO_CLIENT_ID"
run "${TF[@]}" FAKE_TF_OUTPUTS="$TMP/empty.json" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_refusal "outputs {} (not deployed)" 3 "the Terraform outputs have no cognito_user_pool_id: the stack is not deployed \(scripts/deploy\.sh\)"
run "${TF[@]}" FAKE_TF_OUTPUTS="$TMP/nocognito.json" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_refusal "outputs of a stack without Cognito" 3 "the Terraform outputs have no cognito_user_pool_id: the stack was deployed without Cognito auth"
run "${TF[@]}" FAKE_TF_FAIL="Backend initialization required, please run \"terraform init\"" \
  TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_refusal "terraform output fails" 3 "\`terraform output\` failed in $SOURCE_DIR/terraform: Error: Backend initialization required"
run "${TF[@]}" FAKE_TF_OUTPUTS="$TMP/bogus.json" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" -- \
  --user-pool-id "$COGNITO_USER_POOL_ID" --client-id "$COGNITO_CLIENT_ID"
expect_token "options override the outputs"
run "${TF[@]}" FAKE_TF_OUTPUTS="$TMP/bogus.json" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" \
  COGNITO_CLIENT_ID="$COGNITO_CLIENT_ID" COGNITO_USER_POOL_ID="$COGNITO_USER_POOL_ID" --
expect_token "the environment overrides the outputs"
run "${TF[@]}" FAKE_TF_OUTPUTS="$TMP/bogus.json" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_refusal "the outputs are used (a pool the emulator does not have)" 4 "user pool us-east-1_NoSuchPool or app client nosuchclient not found"

# ---- missing tools --------------------------------------------------------------------------

section "missing tools"
# A PATH of the base tools token.sh uses, and per scenario only some of jq, aws, terraform.
mkdir -p "$TMP/base" "$TMP/jq" "$TMP/aws"
for tool in bash env dirname basename mktemp rm cat sed grep head; do
  ln -s "$(command -v "$tool")" "$TMP/base/$tool"
done
ln -s "$(command -v jq)" "$TMP/jq/jq"
printf '#!%s\necho "stub aws: must not be called" >&2\nexit 99\n' "$(command -v bash)" >"$TMP/aws/aws"
chmod +x "$TMP/aws/aws"
run PATH="$TMP/base:$TMP/jq" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_refusal "no aws CLI" 3 "aws CLI not found on PATH"
run PATH="$TMP/base:$TMP/aws" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_refusal "no jq" 3 "jq not found on PATH"
run PATH="$TMP/base:$TMP/aws:$TMP/jq" -u COGNITO_USER_POOL_ID TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
expect_refusal "no terraform and no pool given" 3 "terraform not found on PATH"

# ---- a terminal -----------------------------------------------------------------------------

section "prompts on a terminal"
PTY_EMAIL=$ALICE PTY_PASSWORD=$PW "$PY" "$here/pty_answer.py" "$TMP/transcript" \
  bash -c 'exec bash "$0" >"$1"' "$TOKEN_SH" "$TMP/pty.out"
RC=$?
ERR=$(tr -d '\r' <"$TMP/transcript")
check_eq "terminal: exit status" 0 "$RC"
check_match "terminal: asks for the email" "Email: $ALICE" "$ERR"
check_match "terminal: asks for the password" "Password for $ALICE: " "$ERR"
check_eq "terminal: the password is not echoed" 0 "$(grep -cF -- "$PW" "$TMP/transcript")"
check_match "terminal: the token on stdout" "$JWT_RE" "$(cat "$TMP/pty.out")"
cat "$TMP/pty.out" >>"$TOKENS"
cp "$TMP/transcript" "$TMP/err.pty"

# ---- secrets ------------------------------------------------------------------------------

section "the password never on the AWS CLI's command line; Cognito's own refusals"
# An aws on PATH that logs its arguments and its request file, then runs the real one; with
# FAKE_FAIL=OPERATION|CODE|MESSAGE it answers OPERATION with that error instead, as Cognito
# does where cognito-local differs (a password policy, its error codes and messages).
REAL_AWS=$(command -v aws)
cat >"$TMP/aws/aws" <<EOF
#!$(command -v bash)
printf '%s\n' "\$*" >>"$TMP/aws-argv.log"
for a in "\$@"; do case \$a in file://*) printf '%s\n' "\${a#file://}" >>"$TMP/aws-files.log" ;; esac; done
IFS='|' read -r op code msg <<<"\${FAKE_FAIL:-}"
if [ -n "\$op" ] && [ "\$2" = "\$op" ]; then
  printf '\nAn error occurred (%s) when calling the %s operation: %s\n' "\$code" "\$op" "\$msg" >&2
  exit 254
fi
exec "$REAL_AWS" "\$@"
EOF
: >"$TMP/aws-argv.log"
: >"$TMP/aws-files.log"
CAROL=carol@example.com
run PATH="$TMP/aws:$PATH" TASKHOST_USER=$CAROL "TASKHOST_PASSWORD=$PW" -- --create
expect_token "--create through the logging aws"
check_eq "the AWS CLI ran 3 times (create, set password, sign in)" 3 "$(grep -c '' "$TMP/aws-argv.log")"
check_eq "the password is on no AWS CLI command line" 0 "$(grep -cF -- "$PW" "$TMP/aws-argv.log")"
leftover=0
while IFS= read -r f; do [ ! -e "$f" ] || leftover=$((leftover + 1)); done <"$TMP/aws-files.log"
check_eq "every request file is removed" 0 "$leftover"
check_match "request files are private (in /dev/shm or TMPDIR)" "^(/dev/shm|${TMPDIR:-/tmp})/taskhost-token\.[^/]+/request\.json$" "$(head -n 1 "$TMP/aws-files.log")"
SECRETS+=("weakpassw0rd")
run PATH="$TMP/aws:$PATH" TASKHOST_USER=dave@example.com TASKHOST_PASSWORD=weakpassw0rd \
  "FAKE_FAIL=admin-set-user-password|InvalidPasswordException|Password did not conform with policy: Password must have uppercase characters" \
  -- --create
expect_refusal "a password the pool's policy refuses" 1 "user pool $COGNITO_USER_POOL_ID does not accept this password \(InvalidPasswordException: Password did not conform with policy: .*\); the user was not created$"
aws_admin admin-get-user --user-pool-id "$COGNITO_USER_POOL_ID" --username dave@example.com >/dev/null 2>"$TMP/getuser.err"
check_match "that user was removed again" "UserNotFoundException" "$(cat "$TMP/getuser.err")"
# fake_refusal NAME STATUS MESSAGE-REGEX CODE MESSAGE: what token.sh makes of Cognito's
# answer CODE/MESSAGE to initiate-auth.
fake_refusal() {
  run PATH="$TMP/aws:$PATH" "FAKE_FAIL=initiate-auth|$4|$5" TASKHOST_USER=$ALICE "TASKHOST_PASSWORD=$PW" --
  expect_refusal "$1" "$2" "$3"
}
fake_refusal "Cognito's wrong password" 1 "wrong email or password for $ALICE \(NotAuthorizedException: Incorrect username or password\.\)$" \
  NotAuthorizedException "Incorrect username or password."
fake_refusal "Cognito's unknown user" 1 "no user $ALICE in user pool $COGNITO_USER_POOL_ID \(UserNotFoundException: User does not exist\.\): --create makes one$" \
  UserNotFoundException "User does not exist."
fake_refusal "a disabled user" 1 "user $ALICE is disabled \(NotAuthorizedException: User is disabled\.\)$" \
  NotAuthorizedException "User is disabled."
fake_refusal "a client without USER_PASSWORD_AUTH" 4 "app client $COGNITO_CLIENT_ID does not allow USER_PASSWORD_AUTH \(InvalidParameterException: " \
  InvalidParameterException "USER_PASSWORD_AUTH flow not enabled for this client"
fake_refusal "a client with a secret" 4 "app client $COGNITO_CLIENT_ID has a secret: token.sh needs a client without one" \
  NotAuthorizedException "Unable to verify secret hash for client $COGNITO_CLIENT_ID"
fake_refusal "throttling" 4 "initiate-auth failed in $COGNITO_ENDPOINT: TooManyRequestsException: Rate exceeded$" \
  TooManyRequestsException "Rate exceeded"

section "nothing secret on stderr"
leaks=""
for f in "$TMP"/err.*; do
  for s in "${SECRETS[@]}"; do grep -qF -- "$s" "$f" && leaks+=" $f(password)"; done
  grep -q 'eyJ' "$f" && leaks+=" $f(a JWT part)"
  while IFS=. read -r _ _ sig; do
    grep -qF -- "$sig" "$f" && leaks+=" $f(a signature)"
  done <"$TOKENS"
done
check_eq "no password or token on any run's stderr ($RUNS runs, $(grep -c '' "$TOKENS") tokens)" "" "$leaks"

# ---- with_cognito.sh without node -------------------------------------------------------------

section "with_cognito.sh without node"
out=$(env -u CI PATH="$TMP/base" bash "$here/with_cognito.sh" true 2>&1)
check_eq "outside CI: exit 0" 0 "$?"
check_match "outside CI: a skip" "^SKIP: node npm aws curl not installed" "$out"
out=$(env CI=true PATH="$TMP/base" bash "$here/with_cognito.sh" true 2>&1)
check_eq "under CI=true: exit 1" 1 "$?"
check_match "under CI=true: a failure" "^FAIL: node npm aws curl not installed" "$out"

echo "($SECONDS s)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
