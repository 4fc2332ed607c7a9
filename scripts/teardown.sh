#!/usr/bin/env bash
# Destroys the taskhost stack that scripts/deploy.sh created, table and tasks included (and
# the Cognito user pool with every account, when it was deployed with auth = "cognito").
#
#   scripts/teardown.sh [--yes] [-var NAME=VALUE]... [-var-file FILE]...
#
#   --yes            do not ask for confirmation (needed when stdin is not a terminal)
#   -var, -var-file  the same ones given to deploy.sh (e.g. -var name=... -var region=...)
#
# The table and the user pool are created with deletion protection on, which makes a plain
# `terraform destroy` fail. So, after the confirmation, this runs two steps:
#   1. terraform apply -target=aws_dynamodb_table.tasks -target=aws_cognito_user_pool.users
#      -var deletion_protection=false (from a saved plan, applied only if it updates those two
#      in place and nothing else; without a pool, the table alone)
#   2. terraform destroy -var deletion_protection=false
# Checks the same prerequisites as deploy.sh (terraform >= 1.5, the aws CLI, credentials, a
# region, jq) first, each with its own line; with no Terraform state in terraform/ (and no
# backend configured) it says "nothing deployed" and stops, without `terraform init`. It
# refuses, changing nothing, when the stack in the state lives in another region than the
# one given (IAM is global: a teardown from the wrong region would create a new table there
# and then destroy it together with the live function's role).
# What stays: with point-in-time recovery on, DynamoDB keeps a system backup of the deleted
# table, "<table>$DeletedTableBackup", for 35 days (restorable; storage billed as a backup).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=deploy.sh
source "$here/deploy.sh"

main_teardown() {
  extra_opts="yes"
  opt_yes=0
  parse_args "$@"
  set_architecture

  check_terraform
  check_aws
  command -v jq >/dev/null 2>&1 ||
    problem "jq not found on PATH: install it (apt-get install jq, brew install jq); it reads the Terraform plan"
  if [ "$problems" -gt 0 ]; then
    echo "$me: $problems prerequisite(s) missing; nothing was destroyed" >&2
    exit 1
  fi
  export AWS_REGION="$region"

  # Nothing deployed from this checkout: no backend configured and no local state holding a
  # resource. Said without `terraform init`, which would fetch providers from the registry.
  if ! grep -qs '^[[:space:]]*backend[[:space:]]*"' "$tfdir"/*.tf &&
    ! jq -e '(.resources // []) | length > 0' "$tfdir/terraform.tfstate" >/dev/null 2>&1; then
    echo "$me: nothing deployed: terraform/ has no Terraform state with resources in it and no backend configured, so there is nothing to destroy (was the stack deployed from this checkout?)"
    exit 0
  fi

  # filebase64sha256(package_path) is evaluated on every plan, destroy included: when the zip
  # is gone, hand Terraform a placeholder (nothing is uploaded by a destroy).
  placeholder=""
  plandir=$(umask 077 && mktemp -d) # the plan holds the cursor secret: private, gone on exit
  trap 'rm -rf "$plandir" ${placeholder:+"$(dirname "$placeholder")"}' EXIT
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
  check_state_region destroyed
  local table
  table=$(terraform -chdir="$tfdir" output -raw table_name 2>/dev/null || echo "the table")

  if [ "$opt_yes" != 1 ]; then
    if [ ! -t 0 ]; then
      echo "$me: stdin is not a terminal; pass --yes to destroy without a confirmation" >&2
      exit 1
    fi
    echo "This destroys the taskhost stack as $caller in $region:"
    echo "$resources" | sed 's/^/  /'
    echo "including the DynamoDB table $table and every task in it. Point-in-time recovery"
    echo "leaves one system backup, $table\$DeletedTableBackup, kept by DynamoDB for 35 days."
    if grep -qx 'aws_cognito_user_pool\.users\[0\]' <<<"$resources"; then
      echo "And the Cognito user pool with every user account in it (nothing of it is kept)."
    fi
    local answer
    read -r -p "Type 'yes' to destroy: " answer
    if [ "$answer" != "yes" ]; then
      echo "$me: not confirmed; nothing was destroyed"
      exit 1
    fi
  fi

  local pool=""
  grep -qx 'aws_cognito_user_pool\.users\[0\]' <<<"$resources" && pool=" and the user pool"
  echo "== turning deletion protection off ($table$pool)"
  terraform -chdir="$tfdir" plan -input=false -out="$plandir/protection.tfplan" \
    -target=aws_dynamodb_table.tasks -target=aws_cognito_user_pool.users \
    "${tf_args[@]+"${tf_args[@]}"}" -var deletion_protection=false
  # Anything but an in-place update of the table or the pool (a create: it is not where the
  # state says; a replace: the table's key or a fixed setting of the pool changed; a delete:
  # the variables say auth is not "cognito" any more) means this is not the stack the state
  # describes.
  local other
  other=$(terraform -chdir="$tfdir" show -json "$plandir/protection.tfplan" | jq -r '
    .resource_changes[]? | select(.change.actions != ["no-op"] and .change.actions != ["read"])
    | select((.address != "aws_dynamodb_table.tasks" and .address != "aws_cognito_user_pool.users[0]")
             or .change.actions != ["update"])
    | "\(.address): \(.change.actions | join(" then "))"') ||
    { echo "$me: cannot read the plan as JSON; nothing was destroyed" >&2; exit 1; }
  if [ -n "$other" ]; then
    echo "$me: turning deletion protection off would also change:" >&2
    sed 's/^/    /' <<<"$other" >&2
    echo "$me: the state does not match the stack in $region; nothing was destroyed" >&2
    exit 1
  fi
  terraform -chdir="$tfdir" apply -input=false "$plandir/protection.tfplan"
  echo "== terraform destroy"
  terraform -chdir="$tfdir" destroy -input=false -auto-approve \
    "${tf_args[@]+"${tf_args[@]}"}" -var deletion_protection=false
  echo "== destroyed (kept by DynamoDB for 35 days: the system backup $table\$DeletedTableBackup)"
}

main_teardown "$@"
