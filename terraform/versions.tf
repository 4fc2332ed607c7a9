terraform {
  # Written and run with Terraform 1.11; nothing newer than 1.5 is used (terraform_data: 1.4).
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # logging_config came in 5.32, on_demand_throughput in 5.54; tests/terraform/test_moto.sh
      # runs this configuration for real with the 5.100 of the machines' local mirror.
      version = "~> 5.80"
    }
  }
}
