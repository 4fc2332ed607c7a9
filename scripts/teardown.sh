#!/usr/bin/env bash
# Destroys the taskhost stack that scripts/deploy.sh created, table and tasks included.
#
#   scripts/teardown.sh [--yes] [-var NAME=VALUE]... [-var-file FILE]...
#
#   --yes            do not ask for confirmation (needed when stdin is not a terminal)
#   -var, -var-file  the same ones given to deploy.sh (e.g. -var name=... -var region=...)
#
# The table is created with deletion protection on, which makes a plain `terraform destroy`
# fail. So, after the confirmation, this runs two steps:
#   1. terraform apply -target=aws_dynamodb_table.tasks -var deletion_protection=false
#   2. terraform destroy -var deletion_protection=false
# Checks the same prerequisites as deploy.sh (terraform >= 1.5, the aws CLI, credentials, a
# region) first, each with its own line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=deploy.sh
source "$here/deploy.sh"

main_teardown() {
  extra_opts="yes"
  opt_yes=0
  parse_args "$@"

  check_terraform
  check_aws "${tf_args[@]+"${tf_args[@]}"}"
  if [ "$problems" -gt 0 ]; then
    echo "$me: $problems prerequisite(s) missing; nothing was destroyed" >&2
    exit 1
  fi
  export AWS_REGION="$region"

  # filebase64sha256(package_path) is evaluated on every plan, destroy included: when the zip
  # is gone, hand Terraform a placeholder (nothing is uploaded by a destroy).
  local placeholder=""
  if [ ! -f "$zip" ] && ! printf '%s\n' "${tf_args[@]+"${tf_args[@]}"}" | grep -q '^\(-var=\)\{0,1\}package_path='; then
    placeholder=$(mktemp -d)/placeholder.zip
    : >"$placeholder"
    tf_args+=(-var "package_path=$placeholder")
  fi

  echo "== terraform init"
  terraform -chdir="$tfdir" init -input=false >/dev/null
  local resources
  resources=$(terraform -chdir="$tfdir" state list 2>/dev/null || true)
  if [ -z "$resources" ]; then
    echo "$me: the Terraform state in terraform/ is empty: nothing to destroy (was the stack deployed from this checkout?)"
    exit 0
  fi
  local table
  table=$(terraform -chdir="$tfdir" output -raw table_name 2>/dev/null || echo "the table")

  if [ "$opt_yes" != 1 ]; then
    if [ ! -t 0 ]; then
      echo "$me: stdin is not a terminal; pass --yes to destroy without a confirmation" >&2
      exit 1
    fi
    echo "This destroys the taskhost stack as $caller in $region:"
    echo "$resources" | sed 's/^/  /'
    echo "including the DynamoDB table $table and every task in it (its backups go with it)."
    local answer
    read -r -p "Type 'yes' to destroy: " answer
    if [ "$answer" != "yes" ]; then
      echo "$me: not confirmed; nothing was destroyed"
      exit 1
    fi
  fi

  echo "== turning deletion protection off ($table)"
  terraform -chdir="$tfdir" apply -input=false -auto-approve -target=aws_dynamodb_table.tasks \
    "${tf_args[@]+"${tf_args[@]}"}" -var deletion_protection=false
  echo "== terraform destroy"
  terraform -chdir="$tfdir" destroy -input=false -auto-approve \
    "${tf_args[@]+"${tf_args[@]}"}" -var deletion_protection=false
  [ -z "$placeholder" ] || rm -rf "$(dirname "$placeholder")"
  echo "== destroyed"
}

main_teardown "$@"
