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
  # Each user's tasks are one partition (user_id: the token's sub, or "public" with auth
  # off), sorted by id (UUIDv7: creation order), so a list is a Query, never a Scan.
  hash_key  = "user_id"
  range_key = "id"

  attribute {
    name = "user_id"
    type = "S"
  }

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

  # A cost guard: on-demand tables scale without limit, so a runaway client or bug could run
  # up the bill. Requests above these units per second are throttled (the runtime answers
  # 503 + Retry-After). -1 removes a cap.
  on_demand_throughput {
    max_read_request_units  = var.table_max_read_request_units
    max_write_request_units = var.table_max_write_request_units
  }

  deletion_protection_enabled = var.deletion_protection
}

# ------------------------------------------------------------------ the cursor secret
# HMAC key of the pagination cursors (TASKHOST_CURSOR_SECRET). Generated once, at the first
# apply, and kept in the Terraform state, so every instance of the function shares it and it
# survives redeploys: terraform_data is built into Terraform (no provider to download), its
# input is two random UUIDs (Terraform's uuid() reads the OS's CSPRNG: 244 random bits), and
# ignore_changes keeps the first value, since uuid() gives a new one on every plan. Whoever can
# read the state or the function's configuration can forge a cursor, which at worst starts a
# page at a chosen key of the caller's own list (var.kms_key_arn encrypts the function's
# environment with a key of yours). Rotate with
# `terraform apply -replace=terraform_data.cursor_secret` (outstanding cursors become 400s).

resource "terraform_data" "cursor_secret" {
  input = sensitive(replace("${uuid()}${uuid()}", "-", ""))

  lifecycle {
    ignore_changes = [input]
  }
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
    TASKHOST_CURSOR_SECRET = terraform_data.cursor_secret.output
  }

  kms_key_arn          = var.kms_key_arn
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

  # With a cors_configuration, API Gateway answers preflight requests itself and REPLACES the
  # function's Access-Control-* response headers with the ones below: what a browser may do is
  # decided here alone, so this list must name every header a client reads. expose_headers:
  # without it a browser's script cannot read Location (the new task's URL) or ETag. The
  # function sends the same origin (TASKHOST_CORS_ORIGIN) and lists for --serve and for
  # clients that reach it without this layer; tests/terraform/check.sh compares the two.
  cors_configuration {
    allow_origins  = [var.cors_origin]
    allow_methods  = ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
    allow_headers  = ["content-type", "authorization", "x-amz-date", "x-api-key", "x-amz-security-token"]
    expose_headers = ["location", "etag"]
    max_age        = var.cors_max_age
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
