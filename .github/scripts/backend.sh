#!/usr/bin/env bash
# backend.sh BUCKET REGION — writes terraform/backend.tf for the deploy workflow: the S3 backend
# of terraform/backend.tf.example, one state object per stack region, S3-native locking.
set -euo pipefail
bucket=${1:?usage: backend.sh BUCKET REGION (the TF_STATE_BUCKET and TF_STATE_REGION variables)}
region=${2:?usage: backend.sh BUCKET REGION}
: "${AWS_REGION:?AWS_REGION, the region of the stack, must be set}"
cat >terraform/backend.tf <<TF
terraform {
  backend "s3" {
    bucket       = "$bucket"
    key          = "taskhost/$AWS_REGION/terraform.tfstate"
    region       = "$region"
    encrypt      = true
    use_lockfile = true
  }
}
TF
echo "backend.sh: state in s3://$bucket/taskhost/$AWS_REGION/terraform.tfstate"
