#!/usr/bin/env bash
# Deploys taskhost to AWS: package, terraform init, plan, apply, then prints the API URL.
#
#   scripts/deploy.sh [--no-package | --lua-only] [-var NAME=VALUE]... [-var-file FILE]...
#
#   --no-package     deploy dist/taskhost-lambda.zip as it is (do not run scripts/package.sh)
#   --lua-only       after a lua/*.lua edit: scripts/package.sh --lua-only (re-zip, no compile)
#   -var, -var-file  passed to `terraform plan` (TF_VAR_<name> environment variables work too),
#                    e.g. -var region=eu-west-1 -var cors_origin=https://app.example.com
#
# Checks first, and stops with one line per missing prerequisite: terraform >= 1.5, the aws
# CLI, working AWS credentials, a region, and a package (or scripts/package.sh to make one).
# Before uploading, it unzips the package and runs its bootstrap with --check (route scripts
# and configuration load), so a Lua syntax error stops here rather than in Lambda's init.
# The Terraform state is local (terraform/terraform.tfstate): keep it, it is how teardown.sh
# and the next deploy find the stack.
set -euo pipefail

TF_MIN_MAJOR=1
TF_MIN_MINOR=5

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
tfdir="$root/terraform"
zip="$root/dist/taskhost-lambda.zip"
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

# The region Terraform will use: -var region=..., TF_VAR_region, then the AWS SDK's own order.
region_from_args() {
  local prev=""
  for a in "$@"; do
    if [ "$prev" = "-var" ] && [[ "$a" == region=* ]]; then echo "${a#region=}"; fi
    if [[ "$a" == -var=region=* ]]; then echo "${a#-var=region=}"; fi
    prev=$a
  done | tail -n 1
}

check_aws() {
  if ! command -v aws >/dev/null 2>&1; then
    problem "aws CLI not found on PATH: install it (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html) and run \`aws configure\`"
    return
  fi
  local out
  if ! out=$(aws sts get-caller-identity --query Arn --output text 2>&1); then
    problem "AWS credentials do not work (\`aws sts get-caller-identity\` failed: $(grep -m 1 -v '^[[:space:]]*$' <<<"$out" | sed 's/^[[:space:]]*//')): run \`aws configure\`, \`aws sso login\`, or set AWS_PROFILE / AWS_ACCESS_KEY_ID"
    return
  fi
  caller=$out
  region=$(region_from_args "$@")
  region=${region:-${TF_VAR_region:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}}
  if [ -z "$region" ]; then
    region=$(aws configure get region 2>/dev/null || true)
  fi
  if [ -z "$region" ]; then
    problem "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in \`aws configure\`), or pass -var region=us-east-1"
  fi
}

# The zip about to be uploaded: its bootstrap must start and load its own lua/ (--check),
# against a throwaway SQLite store, with nothing from this shell's environment.
selfcheck_package() {
  if ! command -v unzip >/dev/null 2>&1; then
    echo "$me: note: unzip not found, so the package's self-check (bootstrap --check) is skipped" >&2
    return 0
  fi
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
  out=$(cd "$dir" && env -i PATH=/usr/bin:/bin TASKHOST_STORE="sqlite:$dir/check.db" \
    AWS_LAMBDA_LOG_FORMAT=Text ./pkg/bootstrap --check 2>&1) || rc=$?
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

# Parses the options common to deploy.sh and teardown.sh into tf_args; the rest is the
# caller's ($extra_opts are the flags it takes, each handled through opt_<flag>=1).
parse_args() {
  tf_args=()
  while [ $# -gt 0 ]; do
    case $1 in
      -h | --help) usage; exit 0 ;;
      -var | -var-file)
        [ $# -ge 2 ] || { echo "$me: $1 needs a value" >&2; exit 2; }
        tf_args+=("$1" "$2"); shift 2 ;;
      -var=* | -var-file=*) tf_args+=("$1"); shift ;;
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
  extra_opts="no-package lua-only"
  opt_no_package=0
  opt_lua_only=0
  parse_args "$@"
  if [ "$opt_no_package" = 1 ] && [ "$opt_lua_only" = 1 ]; then
    echo "$me: --no-package and --lua-only exclude each other" >&2
    exit 2
  fi

  check_terraform
  check_aws "${tf_args[@]+"${tf_args[@]}"}"
  check_package "$opt_no_package"
  if [ "$problems" -gt 0 ]; then
    echo "$me: $problems prerequisite(s) missing; nothing was deployed" >&2
    exit 1
  fi
  echo "== deploying as $caller to $region"

  if [ "$opt_no_package" = 0 ]; then
    local pkg_args=()
    [ "$opt_lua_only" = 0 ] || pkg_args=(--lua-only)
    echo "== scripts/package.sh ${pkg_args[*]-}"
    bash "$root/scripts/package.sh" "${pkg_args[@]+"${pkg_args[@]}"}"
    [ -f "$zip" ] || { echo "$me: scripts/package.sh did not write ${zip#"$root"/}" >&2; exit 1; }
  fi
  selfcheck_package || { echo "$me: nothing was deployed" >&2; exit 1; }

  export AWS_REGION="$region"
  local plan="$tfdir/taskhost.tfplan"
  echo "== terraform init"
  terraform -chdir="$tfdir" init -input=false
  echo "== terraform plan"
  terraform -chdir="$tfdir" plan -input=false -out="$plan" "${tf_args[@]+"${tf_args[@]}"}"
  echo "== terraform apply"
  terraform -chdir="$tfdir" apply -input=false "$plan"
  rm -f "$plan"

  local url fn
  url=$(terraform -chdir="$tfdir" output -raw api_endpoint)
  fn=$(terraform -chdir="$tfdir" output -raw log_group 2>/dev/null || true)
  cat <<EOF

api_endpoint = $url

Try it:
  export API_URL=$url
  curl -s -X POST \$API_URL/tasks -H 'Content-Type: application/json' -d '{"task": "Try taskhost", "priority": "high"}'
  curl -s \$API_URL/tasks
Logs:
  aws logs tail ${fn:-/aws/lambda/taskhost} --follow --region $region
EOF
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
