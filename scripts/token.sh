#!/usr/bin/env bash
# Prints a token for a user of the deployed Cognito user pool, for curl's Authorization header:
#
#   export TASKHOST_USER=alice@example.com
#   TOKEN=$(scripts/token.sh --create)          # asks for the password on a terminal
#   curl -H "Authorization: Bearer $TOKEN" "$(terraform -chdir=terraform output -raw api_endpoint)/tasks"
#
#   scripts/token.sh [--user EMAIL] [--password PASSWORD] [--create] [--id-token]
#                    [--user-pool-id ID] [--client-id ID] [--region REGION] [--endpoint-url URL]
#
#   --user EMAIL         the user's email, or TASKHOST_USER; asked for when stdin is a terminal
#   --password PASSWORD  or TASKHOST_PASSWORD; asked for (not echoed) when stdin is a terminal.
#                        Other local users can read a command line (ps): prefer the prompt or
#                        the environment variable
#   --create             first create the user with that password, permanent (admin-create-user
#                        without an invitation email, then admin-set-user-password): needs AWS
#                        credentials allowed to administer the pool. A user that exists already
#                        is left as it is (its password is not changed) and just signed in
#   --id-token           print the ID token (aud: the app client) instead of the access token
#   --user-pool-id ID, --client-id ID, --region REGION
#                        instead of the Terraform outputs cognito_user_pool_id, cognito_client_id
#                        and region (or COGNITO_USER_POOL_ID, COGNITO_CLIENT_ID, COGNITO_REGION);
#                        terraform is run only for what is still missing, and a pool id such as
#                        eu-west-1_AbC123 names its region
#   --endpoint-url URL   a Cognito-compatible endpoint instead of AWS's (or COGNITO_ENDPOINT),
#                        e.g. cognito-local started by tests/cognito/with_cognito.sh
#
# Signs in with `aws cognito-idp initiate-auth --auth-flow USER_PASSWORD_AUTH` (no AWS
# credentials needed for that). Only the token goes to stdout, as one line; every message goes
# to stderr as one line and never holds the password or a token. The password reaches the AWS
# CLI in a private temporary file (mode 0600, in /dev/shm when there is one, removed as soon as
# the call returns), never on its command line.
#
# Exit status:
#   0  the token was printed
#   1  Cognito refused the user: wrong email or password, no such user, not confirmed, a new
#      password required, or (--create) a password or email the pool does not accept
#   2  usage: an unknown option, or no email or password and stdin is not a terminal
#   3  a prerequisite is missing: the aws CLI, jq, terraform, or the Terraform outputs (the
#      stack is not deployed, or it was deployed without Cognito auth)
#   4  another failure: Cognito unreachable, AWS credentials missing or refused (--create),
#      user pool or app client not found, an app client that does not allow
#      USER_PASSWORD_AUTH or has a secret
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
me=$(basename "$0")

die() {
  local status=$1
  shift
  echo "$me: $*" >&2
  exit "$status"
}

usage() {
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
  exit 0
}

user=${TASKHOST_USER:-}
password=${TASKHOST_PASSWORD:-}
pool=${COGNITO_USER_POOL_ID:-}
client=${COGNITO_CLIENT_ID:-}
region=${COGNITO_REGION:-}
endpoint=${COGNITO_ENDPOINT:-}
create=0
want=AccessToken

# need_value OPTION "$@": OPTION is followed by a non-empty value (--opt VALUE; --opt=VALUE
# is split into the two first).
need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then die 2 "$1 needs a value (--help for usage)"; fi; }
while [ $# -gt 0 ]; do
  case $1 in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --user) need_value "$@"; user=$2; shift ;;
    --password) need_value "$@"; password=$2; shift ;;
    --user-pool-id) need_value "$@"; pool=$2; shift ;;
    --client-id) need_value "$@"; client=$2; shift ;;
    --region) need_value "$@"; region=$2; shift ;;
    --endpoint-url) need_value "$@"; endpoint=$2; shift ;;
    --create) create=1 ;;
    --id-token) want=IdToken ;;
    -h | --help) usage ;;
    *) die 2 "unknown argument '$1' (--help for usage)" ;;
  esac
  shift
done

command -v aws >/dev/null 2>&1 ||
  die 3 "aws CLI not found on PATH: install it (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
command -v jq >/dev/null 2>&1 || die 3 "jq not found on PATH: install it (e.g. apt-get install jq)"

# A private directory for the request files that hold the password; in memory when possible.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
work=$(umask 077 && mktemp -d "$shm/taskhost-token.XXXXXX") || die 4 "cannot create a temporary directory in $shm"
trap 'rm -rf "$work"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- where the pool is --------------------------------------------------------------------

# region_of POOL-ID: the region a user pool id names (<region>_<id>), if it names one.
region_of() { [[ $1 =~ ^([a-z]{2}(-[a-z]+)+-[0-9]+)_ ]] && echo "${BASH_REMATCH[1]}"; }
[ -n "$region" ] || region=$(region_of "$pool") || true

# The Terraform outputs, only for what the options and the environment left open.
if [ -z "$pool" ] || [ -z "$client" ] || { [ -z "$region" ] && [ -z "$endpoint" ]; }; then
  command -v terraform >/dev/null 2>&1 ||
    die 3 "terraform not found on PATH: it reads the user pool from the stack's outputs; install it, or pass --user-pool-id, --client-id and --region"
  if ! outputs=$(terraform -chdir="$root/terraform" output -json 2>"$work/tf.err"); then
    why=$(grep -m 1 'Error' "$work/tf.err" || grep -m 1 '[[:alnum:]]' "$work/tf.err" || true)
    die 3 "\`terraform output\` failed in $root/terraform: $(sed 's/^[^[:alnum:]]*//' <<<"${why:-no message}")"
  fi
  output() { jq -r --arg k "$1" '.[$k].value // empty | strings' <<<"$outputs" 2>/dev/null; }
  jq -e 'type == "object"' >/dev/null 2>&1 <<<"$outputs" ||
    die 3 "\`terraform output -json\` in $root/terraform did not print a JSON object"
  for name in cognito_user_pool_id cognito_client_id; do
    if [ -z "$(output "$name")" ]; then
      if [ "$outputs" = "{}" ] || [ -z "$(output api_endpoint)" ]; then
        die 3 "the Terraform outputs have no $name: the stack is not deployed (scripts/deploy.sh), or pass --user-pool-id and --client-id"
      fi
      die 3 "the Terraform outputs have no $name: the stack was deployed without Cognito auth (redeploy it with scripts/deploy.sh), or pass --user-pool-id and --client-id"
    fi
  done
  [ -n "$pool" ] || pool=$(output cognito_user_pool_id)
  [ -n "$client" ] || client=$(output cognito_client_id)
  [ -n "$region" ] || region=$(region_of "$pool") || region=$(output region)
fi
[ -n "$region" ] || region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
if [ -z "$region" ]; then
  [ -n "$endpoint" ] || die 3 "no region: the Terraform outputs have none; pass --region"
  region=us-east-1 # an emulator takes any
fi

# ---- who ----------------------------------------------------------------------------------

if [ -z "$user" ]; then
  [ -t 0 ] || die 2 "no user: pass --user EMAIL or set TASKHOST_USER (stdin is not a terminal to ask on)"
  read -r -p "Email: " user || true
  [ -n "$user" ] || die 2 "no user given"
fi
if [ -z "$password" ]; then
  [ -t 0 ] || die 2 "no password: set TASKHOST_PASSWORD or pass --password (stdin is not a terminal to ask on)"
  read -r -s -p "Password for $user: " password || true
  echo >&2
  [ -n "$password" ] || die 2 "no password given"
fi

# ---- Cognito calls ------------------------------------------------------------------------

# redact TEXT: TEXT without the password in it (an AWS CLI message may quote its input).
redact() {
  local text=$1
  [ -z "$password" ] || text=${text//"$password"/<password>}
  printf '%s' "$text"
}

# call OPERATION JQ-PROGRAM: runs `aws cognito-idp OPERATION` with the request that
# JQ-PROGRAM builds (it reads the password as $ENV.TH_PASSWORD, never from an argument).
# Returns the AWS CLI's status and sets OUT (stdout: it may hold tokens, so never echoed),
# CODE (the Cognito error code, e.g. NotAuthorizedException; empty for other failures)
# and MSG (Cognito's message, or the CLI's first line).
call() {
  local op=$1 program=$2 input="$work/request.json" status=0 err
  OUT="" CODE="" MSG=""
  (umask 077 && TH_PASSWORD=$password jq -n --arg pool "$pool" --arg client "$client" \
    --arg user "$user" "$program" >"$input") || die 4 "cannot write the $op request"
  local args=(cognito-idp "$op" --cli-input-json "file://$input" --region "$region" --output json)
  [ -z "$endpoint" ] || args+=(--endpoint-url "$endpoint")
  OUT=$(AWS_PAGER="" aws "${args[@]}" 2>"$work/aws.err" </dev/null) || status=$?
  rm -f "$input"
  if [ "$status" -ne 0 ]; then
    err=$(redact "$(cat "$work/aws.err")")
    CODE=$(sed -n 's/.*An error occurred (\([A-Za-z.#]*\)).*/\1/p' <<<"$err" | head -n 1)
    if [ -n "$CODE" ]; then
      MSG=$(grep -m 1 'An error occurred (' <<<"$err" | sed 's/^.* operation\( ([^)]*)\)\{0,1\}: //')
    else
      MSG=$(grep -m 1 -v '^[[:space:]]*$' <<<"$err" | sed 's/^[[:space:]]*//')
    fi
  fi
  rm -f "$work/aws.err"
  return "$status"
}

where=${endpoint:-$region}

# A failure no operation-specific case covers: exit 4, naming what was called where.
other_failure() {
  local op=$1
  case $MSG in
    *"Unable to locate credentials"* | *"security token"* | *"ExpiredToken"* | *"AccessDenied"*)
      die 4 "$op needs AWS credentials allowed to administer user pool $pool: ${MSG:-no message}" ;;
  esac
  if [ "$CODE" = ResourceNotFoundException ]; then
    die 4 "user pool $pool or app client $client not found in $where ($CODE: $MSG): check --user-pool-id, --client-id and --region"
  fi
  die 4 "$op failed in $where: ${CODE:+$CODE: }${MSG:-no message from the AWS CLI}"
}

if [ "$create" = 1 ]; then
  if call admin-create-user '{UserPoolId: $pool, Username: $user, MessageAction: "SUPPRESS",
        UserAttributes: [{Name: "email", Value: $user}, {Name: "email_verified", Value: "true"}]}'; then
    if ! call admin-set-user-password \
      '{UserPoolId: $pool, Username: $user, Password: $ENV.TH_PASSWORD, Permanent: true}'; then
      # Leave no half-made user behind (one that could not sign in with this password).
      code=$CODE msg=$MSG
      call admin-delete-user '{UserPoolId: $pool, Username: $user}' || true
      CODE=$code MSG=$msg
      case $CODE in
        InvalidPasswordException | InvalidParameterException)
          die 1 "user pool $pool does not accept this password ($CODE: $MSG); the user was not created" ;;
      esac
      other_failure admin-set-user-password
    fi
    echo "$me: created user $user in user pool $pool" >&2
  else
    case $CODE in
      UsernameExistsException | AliasExistsException) echo "$me: user $user exists already: signing in" >&2 ;;
      InvalidParameterException) die 1 "user pool $pool does not accept the user $user ($CODE: $MSG)" ;;
      *) other_failure admin-create-user ;;
    esac
  fi
fi

if ! call initiate-auth '{ClientId: $client, AuthFlow: "USER_PASSWORD_AUTH",
      AuthParameters: {USERNAME: $user, PASSWORD: $ENV.TH_PASSWORD}}'; then
  case $MSG in
    *"flow not enabled"*) die 4 "app client $client does not allow USER_PASSWORD_AUTH ($CODE: $MSG)" ;;
    *"secret hash"*) die 4 "app client $client has a secret: token.sh needs a client without one ($CODE: $MSG)" ;;
  esac
  case $CODE in
    NotAuthorizedException | InvalidPasswordException)
      case $MSG in
        *"disabled"*) die 1 "user $user is disabled ($CODE: $MSG)" ;;
      esac
      die 1 "wrong email or password for $user ($CODE: $MSG)" ;;
    UserNotFoundException)
      die 1 "no user $user in user pool $pool ($CODE: $MSG): --create makes one" ;;
    UserNotConfirmedException)
      die 1 "user $user is not confirmed ($CODE: $MSG): aws cognito-idp admin-confirm-sign-up confirms it" ;;
    PasswordResetRequiredException)
      die 1 "user $user must reset the password first ($CODE: $MSG)" ;;
  esac
  other_failure initiate-auth
fi

challenge=$(jq -r '.ChallengeName // empty' <<<"$OUT" 2>/dev/null) || true
case $challenge in
  "") ;;
  NEW_PASSWORD_REQUIRED)
    die 1 "user $user must set a new password first ($challenge): aws cognito-idp admin-set-user-password --user-pool-id $pool --username $user --permanent --password ... sets one" ;;
  *) die 1 "user $user cannot sign in with a password alone: Cognito asks for $challenge, which $me does not answer" ;;
esac
token=$(jq -r --arg t "$want" '.AuthenticationResult[$t] // empty' <<<"$OUT" 2>/dev/null) || true
[ -n "$token" ] || die 4 "initiate-auth in $where answered without $want"
printf '%s\n' "$token"
