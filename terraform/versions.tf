terraform {
  # Written and validated with Terraform 1.11; nothing newer than 1.5 is used.
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.32 added aws_lambda_function.logging_config (JSON logs, log level, log group).
      version = "~> 5.32"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}
