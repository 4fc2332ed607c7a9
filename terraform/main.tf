# taskhost on AWS: DynamoDB table -> Lambda (provided.al2023, the taskhost binary as
# `bootstrap`) -> API Gateway HTTP API (payload format 2.0, one $default route).
#
# Coupling between the code and this configuration is kept to values that come from one
# place, and tests/terraform/check.sh checks each one without a Terraform binary:
#   - the handler is "bootstrap", the name scripts/package.sh gives the binary in the zip;
#   - TABLE_NAME is the table resource's own name (the module is handed the resource);
#   - the role allows exactly the DynamoDB operations runtime/dynamodb.c issues, on this table;
#   - CORS: API Gateway and the function both take var.cors_origin.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "taskhost", ManagedBy = "terraform" }, var.tags)
  }
}

locals {
  # Relative paths are taken from this directory, so `terraform -chdir=terraform` and
  # `cd terraform` behave the same.
  package_path = startswith(var.package_path, "/") ? var.package_path : "${path.module}/${var.package_path}"
}

# ------------------------------------------------------------------------------ the table

resource "aws_dynamodb_table" "tasks" {
  name         = "${var.name}-tasks"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"

  attribute {
    name = "id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  # Encryption at rest with the AWS managed key (aws/dynamodb) rather than the default
  # AWS owned key, so key use shows in CloudTrail.
  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = var.deletion_protection
}

# ------------------------------------------------------------------ the cursor secret
# HMAC key of the pagination cursors (TASKHOST_CURSOR_SECRET). Generated once and kept in the
# Terraform state, so every instance of the function shares it and it survives redeploys.
# It is in the state and in the function's configuration: whoever can read either can forge
# a cursor, which at worst starts a scan at a chosen key of this same table. Rotate with
# `terraform apply -replace=random_password.cursor_secret` (outstanding cursors become 400s).

resource "random_password" "cursor_secret" {
  length  = 48
  special = false
}

# ------------------------------------------------------------------------- the function

module "lambda" {
  source = "./modules/lambda"

  name         = var.name
  package_path = local.package_path
  # The whole resource: the module takes TABLE_NAME and the IAM resource from it.
  table = aws_dynamodb_table.tasks

  environment = {
    TASKHOST_CORS_ORIGIN   = var.cors_origin
    TASKHOST_CURSOR_SECRET = random_password.cursor_secret.result
  }

  memory_size          = var.memory_size
  timeout              = var.timeout
  reserved_concurrency = var.reserved_concurrency
  log_level            = var.log_level
  log_retention_days   = var.log_retention_days
  enable_tracing       = var.enable_tracing
}

# ------------------------------------------------------------------------------ the API

resource "aws_apigatewayv2_api" "http" {
  name          = var.name
  description   = "taskhost Task CRUD API"
  protocol_type = "HTTP"

  # API Gateway answers preflight requests itself and sets these headers on every response;
  # the function sends the same values (TASKHOST_CORS_ORIGIN below, and its built-in header
  # and method lists), so both layers agree by construction.
  cors_configuration {
    allow_origins = [var.cors_origin]
    allow_methods = ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
    allow_headers = ["content-type", "authorization", "x-amz-date", "x-api-key", "x-amz-security-token"]
    max_age       = var.cors_max_age
  }
}

resource "aws_apigatewayv2_integration" "lambda" {
  api_id                 = aws_apigatewayv2_api.http.id
  description            = "taskhost function (Lambda proxy)"
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = module.lambda.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

# One catch-all route: routing lives in lua/routes.lua only, so a route added there needs no
# Terraform change, and unknown paths get the function's JSON 404/405 (with CORS headers)
# instead of API Gateway's own.
resource "aws_apigatewayv2_route" "default" {
  api_id    = aws_apigatewayv2_api.http.id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.lambda.id}"
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "api" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = var.stage_name
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }

  # One JSON object per request. lambdaRequestId is the requestId of the function's own log
  # lines for the same request.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId               = "$context.requestId"
      lambdaRequestId         = "$context.integration.requestId"
      ip                      = "$context.identity.sourceIp"
      userAgent               = "$context.identity.userAgent"
      requestTime             = "$context.requestTime"
      httpMethod              = "$context.httpMethod"
      routeKey                = "$context.routeKey"
      path                    = "$context.path"
      status                  = "$context.status"
      protocol                = "$context.protocol"
      responseLength          = "$context.responseLength"
      responseLatency         = "$context.responseLatency"
      integrationStatus       = "$context.integrationStatus"
      integrationLatency      = "$context.integrationLatency"
      integrationErrorMessage = "$context.integrationErrorMessage"
      errorMessage            = "$context.error.message"
    })
  }
}

# API Gateway may invoke the function, from this API only.
resource "aws_lambda_permission" "api" {
  statement_id  = "AllowInvokeFromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = module.lambda.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*"
}

data "aws_region" "current" {}
