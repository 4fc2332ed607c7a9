#!/usr/bin/env bash
# Deploys taskhost to AWS: package, terraform init, plan, apply, then prints the API URL.
#
#   scripts/deploy.sh [--no-package | --lua-only] [--allow-replace] [--no-smoke] [-var NAME=VALUE]... [-var-file FILE]...
#
#   --no-package     deploy dist/taskhost-lambda-ARCH.zip as it is (do not run scripts/package.sh)
#   --lua-only       after a lua/*.lua edit: scripts/package.sh --lua-only (re-zip, no compile)
# ARCH is the function's architecture, Terraform's var.architecture (arm64 unless set, e.g.
# -var architecture=x86_64 or in terraform/terraform.tfvars): the package is built for it
# (scripts/package.sh --arch ARCH) and a zip whose bootstrap is for the other one is refused
# before anything is deployed.
#   --allow-replace  apply a plan that destroys or replaces the table (every task), the
#                    Cognito user pool (every account) or the function's IAM role without
#                    asking; otherwise such a plan is applied only after you type 'replace'
#                    at a terminal, and never from a script
#   --no-smoke       do not run scripts/smoke.sh against the API after the apply
#   -var, -var-file  passed to `terraform plan` (TF_VAR_<name> environment variables and
#                    terraform/*.tfvars work too), e.g. -var region=eu-west-1
#                    -var cors_origin=https://app.example.com; a relative -var-file is taken
#                    from the current directory
#
# Checks first, and stops with one line per missing prerequisite (all of them, not the first):
# terraform >= 1.5, the aws CLI, working AWS credentials (a network that cannot reach AWS is
# told from credentials that are missing or refused), a region, jq (reads the plan), unzip
# and readelf (check the package), and a package (or scripts/package.sh to make one).
# Before uploading, it unzips the package, checks its bootstrap fits Lambda (scripts/lambda-fit.sh:
# ELF machine = the function's architecture, no glibc symbol newer than AL2023's 2.34) and runs
# it with --check (route scripts and configuration load), so a bad binary or a Lua syntax error
# stops here rather than in Lambda's init.
# The stack's region is recorded in the Terraform state: a deploy (or teardown) from another
# region refuses with one line and changes nothing — IAM is global, and a plan made from the
# wrong region would replace the live function's role.
# After the apply, scripts/smoke.sh checks the deployed API (create, read, update, list, delete,
# errors, CORS preflight; it deletes what it creates) and a failure makes deploy.sh exit 1 (the
# stack stays deployed). With auth on it needs a token: SMOKE_TOKEN (environment), e.g.
#   SMOKE_TOKEN=$(scripts/token.sh --user you@example.com) scripts/deploy.sh
# without one it is skipped, and the command to run it is printed.
# The Terraform state is local (terraform/terraform.tfstate) unless you configure a backend
# (terraform/backend.tf.example): keep it, it is how teardown.sh and the next deploy find the
# stack. The plan file (it holds the cursor secret) lives in a private temporary directory
# that is removed however the script ends.
set -euo pipefail

TF_MIN_MAJOR=1
TF_MIN_MINOR=5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
tfdir="$root/terraform"
arch=arm64
zip="$root/dist/taskhost-lambda-$arch.zip"
me=$(basename "$0")

problems=0
problem() {
  echo "$me: $*" >&2
  problems=$((problems + 1))
}

# Each check prints what is wrong and how to fix it; all are run, then we stop if any failed.
check_terraform() {
  if ! command -v terraform >/dev/null 2>&1; then
    problem "terraform not found on PATH: install Terraform ${TF_MIN_MAJOR}.${TF_MIN_MINOR} or newer (https://developer.hashicorp.com/terraform/install)"
    return
  fi
  local line version major minor
  line=$(terraform version 2>/dev/null | head -n 1 || true)
  version=$(sed -n 's/^Terraform v\([0-9][0-9]*\.[0-9][0-9]*\)\..*/\1/p' <<<"$line")
  if [ -z "$version" ]; then
    problem "cannot tell the terraform version (\`terraform version\` printed: ${line:-nothing}); need ${TF_MIN_MAJOR}.${TF_MIN_MINOR} or newer"
    return
  fi
  major=${version%%.*}
  minor=${version#*.}
  if [ "$major" -lt "$TF_MIN_MAJOR" ] || { [ "$major" -eq "$TF_MIN_MAJOR" ] && [ "$minor" -lt "$TF_MIN_MINOR" ]; }; then
    problem "terraform ${line#Terraform v} is too old: need ${TF_MIN_MAJOR}.${TF_MIN_MINOR} or newer"
  fi
}

# tfvar NAME: the value Terraform will give the string variable NAME ("" when unset), in
# Terraform's own order, later ones winning: TF_VAR_NAME, terraform/terraform.tfvars,
# terraform.tfvars.json, terraform/*.auto.tfvars(.json) in lexical order, then each -var and
# -var-file of tf_args in command-line order. Files are read for lines `NAME = "value"` (HCL)
# or `"NAME": "value"` (JSON).
tfvar() {
  local name=$1 env="TF_VAR_$1" val="" f prev="" a
  val=${!env:-}
  from_file() {
    local v
    case $1 in
      *.json) v=$(sed -n -E "s/.*\"$name\"[[:space:]]*:[[:space:]]*\"([^\"]*)\".*/\1/p" "$1" | tail -n 1) ;;
      *) v=$(sed -n -E "s/^[[:space:]]*$name[[:space:]]*=[[:space:]]*\"([^\"]*)\".*/\1/p" "$1" | tail -n 1) ;;
    esac
    [ -z "$v" ] || val=$v
  }
  for f in "$tfdir/terraform.tfvars" "$tfdir/terraform.tfvars.json" "$tfdir"/*.auto.tfvars "$tfdir"/*.auto.tfvars.json; do
    [ -f "$f" ] && from_file "$f"
  done
  for a in "${tf_args[@]+"${tf_args[@]}"}"; do
    case $prev:$a in
      -var:"$name="*) val=${a#"$name="} ;;
      *:-var="$name="*) val=${a#-var="$name="} ;;
      -var-file:*) f=$a; [ "${f#/}" != "$f" ] || f="$tfdir/$f"; [ -f "$f" ] && from_file "$f" ;;
      *:-var-file=*) f=${a#-var-file=}; [ "${f#/}" != "$f" ] || f="$tfdir/$f"; [ -f "$f" ] && from_file "$f" ;;
    esac
    prev=$a
  done
  echo "$val"
}

# The function's architecture (var.architecture, default arm64) and so the zip deployed:
# sets arch and zip. Called once the -var/-var-file arguments are parsed.
set_architecture() {
  arch=$(tfvar architecture)
  arch=${arch:-arm64}
  case $arch in
    arm64 | x86_64) ;;
    *) echo "$me: architecture \"$arch\": Lambda has arm64 and x86_64" >&2; exit 2 ;;
  esac
  zip="$root/dist/taskhost-lambda-$arch.zip"
}

check_aws() {
  if ! command -v aws >/dev/null 2>&1; then
    problem "aws CLI not found on PATH: install it (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html) and run \`aws configure\`"
    return
  fi
  # The region first: AWS CLI v1 reads AWS_DEFAULT_REGION but not AWS_REGION, so the STS
  # call below gets it explicitly.
  region=$(tfvar region)
  region=${region:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}
  if [ -z "$region" ]; then
    region=$(aws configure get region 2>/dev/null || true)
  fi
  if [ -z "$region" ]; then
    problem "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in \`aws configure\`), or pass -var region=us-east-1"
  fi
  # The credentials are checked even without a region (STS answers in any), so that every
  # missing prerequisite is reported at once. The AWS CLI's message tells a network that
  # cannot reach AWS from credentials that are missing or refused.
  local out first
  if ! out=$(aws sts get-caller-identity --region "${region:-us-east-1}" --query Arn --output text \
    --cli-connect-timeout 15 2>&1); then
    first=$(grep -m 1 -v '^[[:space:]]*$' <<<"$out" | sed 's/^[[:space:]]*//')
    case $out in
      *"Could not connect to the endpoint URL"* | *"Connect timeout on endpoint URL"* | \
        *"Read timeout on endpoint URL"* | *"Failed to resolve"* | *"Name or service not known"* | \
        *"Temporary failure in name resolution"* | *"ProxyConnectionError"* | *"Failed to connect to proxy"*)
        problem "cannot reach AWS: the network is unreachable from here (\`aws sts get-caller-identity\` failed: $first); check the connection, a proxy (HTTPS_PROXY) or AWS_ENDPOINT_URL; the credentials were not checked" ;;
      *InvalidClientTokenId* | *SignatureDoesNotMatch* | *ExpiredToken* | *UnrecognizedClientException* | \
        *AuthFailure* | *"security token included in the request is invalid"*)
        problem "AWS credentials do not work: AWS refused them (\`aws sts get-caller-identity\` failed: $first): they are wrong or expired; run \`aws configure\`, \`aws sso login\`, or set AWS_PROFILE / AWS_ACCESS_KEY_ID" ;;
      *)
        problem "AWS credentials do not work (\`aws sts get-caller-identity\` failed: $first): run \`aws configure\`, \`aws sso login\`, or set AWS_PROFILE / AWS_ACCESS_KEY_ID" ;;
    esac
    return
  fi
  caller=$out
}

check_tools() { # the tools that read the plan and check the package
  command -v jq >/dev/null 2>&1 ||
    problem "jq not found on PATH: install it (apt-get install jq, brew install jq); it reads the Terraform plan"
  command -v unzip >/dev/null 2>&1 ||
    problem "unzip not found on PATH: install it; the package is checked before it is uploaded"
  command -v readelf >/dev/null 2>&1 ||
    problem "readelf not found on PATH: install binutils; it checks the package's bootstrap fits Lambda"
}

# The region of the stack in the Terraform state, "" when the state holds none: the root
# module's `region` output, or, for a state written before that output existed, the region
# field of the first regional ARN in it.
state_region() {
  local r
  r=$(terraform -chdir="$tfdir" output -no-color -json 2>/dev/null | jq -r '.region.value? // empty | strings' 2>/dev/null) || r=""
  if [ -z "$r" ]; then
    r=$(terraform -chdir="$tfdir" show -json 2>/dev/null | jq -r '
      [.values.root_module? // {} | .. | objects | .arn? | strings | split(":")
       | select(length > 4 and .[3] != "") | .[3]] | first // empty' 2>/dev/null) || r=""
  fi
  echo "$r"
}

# Refuses (exit 1) when the state's stack lives in another region than $region: a refresh
# from the wrong region drops every regional resource from the state, and the plan that
# follows would replace the live function's IAM role (IAM is global).
check_state_region() { # $1 = what was not done ("deployed", "destroyed")
  local sr
  sr=$(state_region)
  if [ -n "$sr" ] && [ "$sr" != "$region" ]; then
    echo "$me: the stack in the Terraform state is in $sr, not $region: run with AWS_REGION=$sr (or -var region=$sr); nothing was $1" >&2
    exit 1
  fi
}

# Prints "ADDRESS: ACTIONS" for each change in plan $1 that deletes the table (every task),
# the user pool (every account: a new pool gives each user a new sub, so their tasks would be
# orphaned) or the function's IAM role, alone or as part of a replacement.
plan_dangers() {
  terraform -chdir="$tfdir" show -json "$1" | jq -r '
    .resource_changes[]?
    | select(.address == "aws_dynamodb_table.tasks" or .address == "aws_cognito_user_pool.users[0]"
             or .address == "module.lambda.aws_iam_role.function")
    | select(.change.actions | index("delete"))
    | "\(.address): \(.change.actions | join(" then "))"'
}

# Applies plan $1 only when it destroys nothing protected, or when the user said so:
# --allow-replace, or 'replace' typed at a terminal.
confirm_plan() {
  local dangers answer
  dangers=$(plan_dangers "$1") || { echo "$me: cannot read the plan as JSON; nothing was applied" >&2; exit 1; }
  [ -n "$dangers" ] || return 0
  echo "$me: this plan destroys or replaces:" >&2
  sed 's/^/    /' <<<"$dangers" >&2
  if grep -q '^aws_dynamodb_table\.tasks: ' <<<"$dangers"; then
    echo "$me: upgrading a stack deployed before accounts (its table keyed by id alone)? README \"Upgrading\" keeps that table and copies its tasks" >&2
  fi
  if [ "$opt_allow_replace" = 1 ]; then
    echo "$me: --allow-replace given: applying it" >&2
    return 0
  fi
  if [ ! -t 0 ]; then
    echo "$me: stdin is not a terminal; re-run with --allow-replace if you mean it; nothing was applied" >&2
    exit 1
  fi
  read -r -p "Type 'replace' to apply it anyway: " answer
  if [ "$answer" != "replace" ]; then
    echo "$me: not confirmed; nothing was applied" >&2
    exit 1
  fi
}

# The zip about to be uploaded: its bootstrap must start and load its own lua/ (--check),
# against a throwaway SQLite store, with nothing from this shell's environment.
selfcheck_package() {
  local dir out rc=0
  dir=$(mktemp -d)
  if ! unzip -q "$zip" -d "$dir/pkg" 2>"$dir/unzip.err"; then
    echo "$me: ${zip#"$root"/} is not a valid zip: $(head -n 1 "$dir/unzip.err")" >&2
    rm -rf "$dir"
    return 1
  fi
  if [ ! -f "$dir/pkg/bootstrap" ]; then
    echo "$me: ${zip#"$root"/} has no bootstrap at its root; provided.al2023 would not start (run scripts/package.sh)" >&2
    rm -rf "$dir"
    return 1
  fi
  if ! bash "$here/lambda-fit.sh" "$dir/pkg/bootstrap" "$arch" >/dev/null 2>"$dir/fit.err"; then
    echo "$me: ${zip#"$root"/}'s bootstrap cannot run on Lambda (provided.al2023, $arch):" >&2
    sed "s|$dir/pkg/||; s/^/    /" "$dir/fit.err" >&2
    rm -rf "$dir"
    return 1
  fi
  # An arm64 bootstrap on an x86_64 machine runs under qemu-aarch64-static when it is there.
  local emu=()
  if [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ] && command -v qemu-aarch64-static >/dev/null; then
    emu=(qemu-aarch64-static)
  fi
  out=$(cd "$dir" && env -i PATH=/usr/bin:/bin TASKHOST_STORE="sqlite:$dir/check.db" \
    AWS_LAMBDA_LOG_FORMAT=Text "${emu[@]+"${emu[@]}"}" ./pkg/bootstrap --check 2>&1) || rc=$?
  rm -rf "$dir"
  case $rc in
    0) echo "== package self-check: $out" ;;
    126 | 127)
      echo "$me: note: the packaged bootstrap cannot run on this machine (exit $rc), so its self-check is skipped" >&2 ;;
    *)
      echo "$me: the packaged bootstrap fails its start-up check, so Lambda's init would fail too:" >&2
      echo "$out" | sed 's/^/    /' >&2
      return 1 ;;
  esac
}

check_package() { # $1 = 1 when scripts/package.sh will not be run
  if [ "$1" = 1 ]; then
    [ -f "$zip" ] || problem "--no-package, but ${zip#"$root"/} does not exist: run scripts/package.sh (or drop --no-package)"
  elif [ ! -f "$root/scripts/package.sh" ]; then
    if [ -f "$zip" ]; then
      problem "scripts/package.sh not found; ${zip#"$root"/} exists: deploy it as it is with --no-package"
    else
      problem "scripts/package.sh not found and ${zip#"$root"/} does not exist: nothing to deploy"
    fi
  fi
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
}

# Terraform runs with -chdir=terraform, so it would read a relative -var-file from there: a
# file given relative to where the user stands is made absolute.
var_file_path() {
  if [ "${1#/}" = "$1" ] && [ -f "$PWD/$1" ]; then echo "$PWD/$1"; else echo "$1"; fi
}

# Parses the options common to deploy.sh and teardown.sh into tf_args; the rest is the
# caller's ($extra_opts are the flags it takes, each handled through opt_<flag>=1).
parse_args() {
  tf_args=()
  while [ $# -gt 0 ]; do
    case $1 in
      -h | --help) usage; exit 0 ;;
      -var)
        [ $# -ge 2 ] || { echo "$me: $1 needs a value" >&2; exit 2; }
        tf_args+=("$1" "$2"); shift 2 ;;
      -var-file)
        [ $# -ge 2 ] || { echo "$me: $1 needs a value" >&2; exit 2; }
        tf_args+=("$1" "$(var_file_path "$2")"); shift 2 ;;
      -var-file=*) tf_args+=(-var-file "$(var_file_path "${1#-var-file=}")"); shift ;;
      -var=*) tf_args+=("$1"); shift ;;
      --*)
        local flag=${1#--}
        if [[ " $extra_opts " == *" $flag "* ]]; then
          printf -v "opt_${flag//-/_}" 1; shift
        else
          echo "$me: unknown option $1 (see --help)" >&2; exit 2
        fi ;;
      *) echo "$me: unexpected argument $1 (see --help)" >&2; exit 2 ;;
    esac
  done
}

main() {
  extra_opts="no-package lua-only allow-replace no-smoke"
  opt_no_smoke=0
  opt_no_package=0
  opt_lua_only=0
  opt_allow_replace=0
  parse_args "$@"
  set_architecture
  if [ "$opt_no_package" = 1 ] && [ "$opt_lua_only" = 1 ]; then
    echo "$me: --no-package and --lua-only exclude each other" >&2
    exit 2
  fi

  check_terraform
  check_aws
  check_tools
  [ "$opt_no_smoke" = 1 ] || command -v curl >/dev/null 2>&1 ||
    problem "curl not found on PATH: install it; scripts/smoke.sh checks the API after the deploy (or pass --no-smoke)"
  check_package "$opt_no_package"
  if [ "$problems" -gt 0 ]; then
    echo "$me: $problems prerequisite(s) missing; nothing was deployed" >&2
    exit 1
  fi
  echo "== deploying as $caller to $region"

  if [ "$opt_no_package" = 0 ]; then
    local pkg_args=(--arch "$arch")
    [ "$opt_lua_only" = 0 ] || pkg_args+=(--lua-only)
    echo "== scripts/package.sh ${pkg_args[*]-}"
    bash "$root/scripts/package.sh" "${pkg_args[@]+"${pkg_args[@]}"}"
    [ -f "$zip" ] || { echo "$me: scripts/package.sh did not write ${zip#"$root"/}" >&2; exit 1; }
  fi
  selfcheck_package || { echo "$me: nothing was deployed" >&2; exit 1; }

  export AWS_REGION="$region"
  # The plan holds every variable, the cursor secret among them: private, and gone on any exit.
  plandir=$(umask 077 && mktemp -d)
  trap 'rm -rf "$plandir"' EXIT
  local plan="$plandir/taskhost.tfplan"
  echo "== terraform init"
  terraform -chdir="$tfdir" init -input=false
  check_state_region deployed
  echo "== terraform plan"
  terraform -chdir="$tfdir" plan -input=false -out="$plan" "${tf_args[@]+"${tf_args[@]}"}"
  confirm_plan "$plan"
  echo "== terraform apply"
  terraform -chdir="$tfdir" apply -input=false "$plan"

  local url fn pool auth_header="" token_line=""
  url=$(terraform -chdir="$tfdir" output -raw api_endpoint)
  fn=$(terraform -chdir="$tfdir" output -raw log_group 2>/dev/null || true)
  pool=$(terraform -chdir="$tfdir" output -json cognito_user_pool_id 2>/dev/null | jq -r 'strings' 2>/dev/null || true)
  # shellcheck disable=SC2016 # $TOKEN is printed for the user's shell
  if [ -n "$pool" ]; then
    token_line='  TOKEN=$(scripts/token.sh --create --user you@example.com)   # a user of pool '"$pool"$'\n'
    auth_header=' -H "Authorization: Bearer $TOKEN"'
  elif [ "$(tfvar auth)" = jwt ]; then
    token_line='  TOKEN=...   # an access token from your issuer (jwt_issuer), for one of jwt_audience'$'\n'
    auth_header=' -H "Authorization: Bearer $TOKEN"'
  fi
  # A REST API with api_clients: every request needs a client's API key (the first one here).
  local key_client key_id key_line="" key_header=""
  key_client=$(terraform -chdir="$tfdir" output -json api_key_ids 2>/dev/null | jq -r 'keys[0] // empty' 2>/dev/null || true)
  if [ -n "$key_client" ]; then
    key_id=$(terraform -chdir="$tfdir" output -json api_key_ids | jq -r --arg c "$key_client" '.[$c]')
    # shellcheck disable=SC2016 # $API_KEY is printed for the user's shell
    key_line='  API_KEY=$(aws apigateway get-api-key --api-key '"$key_id"' --include-value --query value --output text --region '"$region"')   # client '"$key_client"$'\n'
    key_header=' -H "x-api-key: $API_KEY"'
  fi
  cat <<EOF

api_endpoint = $url

Try it:
  export API_URL=$url
${token_line}${key_line}  curl -s -X POST \$API_URL/tasks$auth_header$key_header -H 'Content-Type: application/json' -d '{"task": "Try taskhost", "priority": "high"}'
  curl -s$auth_header$key_header \$API_URL/tasks
Logs:
  aws logs tail ${fn:-/aws/lambda/taskhost} --follow --region $region
EOF
  smoke_deployed "$url" "$auth_header" "${key_id:-}"
}

# smoke_deployed URL AUTH_HEADER [API_KEY_ID]: scripts/smoke.sh against the new stack (see the
# top); with a key id (a REST API with api_clients) it sends that key (SMOKE_API_KEY, or the
# key's value read with get-api-key).
smoke_deployed() {
  local url=$1 auth_on=${2:+1} key_id=${3:-} origin smoke_args=() key
  if [ "$opt_no_smoke" = 1 ]; then
    echo "== smoke test skipped (--no-smoke)"
    return 0
  fi
  if [ ! -f "$here/smoke.sh" ]; then
    echo "$me: note: scripts/smoke.sh not found: the smoke test is skipped" >&2
    return 0
  fi
  if [ -n "$auth_on" ] && [ -z "${SMOKE_TOKEN:-}" ]; then
    echo "== smoke test skipped: auth is on and SMOKE_TOKEN is not set; run it with a token:"
    # shellcheck disable=SC2016 # printed for the user's shell
    echo '  scripts/smoke.sh '"$url"' --token "$(scripts/token.sh --create --user you@example.com)"'
    return 0
  fi
  [ -z "$auth_on" ] || smoke_args+=(--token "$SMOKE_TOKEN")
  if [ -n "$key_id" ]; then
    key=${SMOKE_API_KEY:-$(aws apigateway get-api-key --api-key "$key_id" --include-value --query value --output text --region "$region")} ||
      { echo "$me: could not read API key $key_id for the smoke test (set SMOKE_API_KEY)" >&2; exit 1; }
    smoke_args+=(--api-key "$key")
  fi
  origin=$(tfvar cors_origin)
  [ -z "$origin" ] || [ "$origin" = "*" ] || smoke_args+=(--origin "$origin")
  echo "== scripts/smoke.sh $url"
  # --wait: a new stage can take a few seconds to answer.
  if ! bash "$here/smoke.sh" "$url" --wait 60 "${smoke_args[@]+"${smoke_args[@]}"}"; then
    echo "$me: the stack is deployed, but the smoke test failed (above): see the function's logs" >&2
    exit 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
