# taskhost on AWS: DynamoDB table -> Lambda (provided.al2023, the taskhost binary as
# `bootstrap`) -> API Gateway HTTP API (payload format 2.0, one $default route) with a JWT
# authorizer in front of it (var.auth): a Cognito user pool's (the default), another OIDC
# issuer's, or none.
#
# Coupling between the code and this configuration is kept to values that come from one
# place, and tests/terraform/check.sh checks each one without a Terraform binary:
#   - the handler is "bootstrap", the name scripts/package.sh gives the binary in the zip;
#   - TABLE_NAME is the table resource's own name (the module is handed the resource);
#   - the role allows exactly the DynamoDB operations runtime/dynamodb.c issues, on this table;
#   - CORS: API Gateway and the function both take var.cors_origin;
#   - auth: the authorizer guards the $default route whenever var.auth is not "none", its
#     issuer and audience are the user pool's and the app client's, and the function gets
#     TASKHOST_AUTH=jwt exactly then (it reads the verified claims; owner = sub).

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "taskhost", ManagedBy = "terraform" }, var.tags)
  }
}

locals {
  # Relative paths are taken from this directory, so `terraform -chdir=terraform` and
  # `cd terraform` behave the same.
  # The zip of the function's architecture unless one is named (scripts/package.sh --arch).
  package_file = coalesce(var.package_path, "../dist/taskhost-lambda-${var.architecture}.zip")
  package_path = startswith(local.package_file, "/") ? local.package_file : "${path.module}/${local.package_file}"

  # "cognito" and "jwt" put the JWT authorizer in front of the function; only "cognito" makes
  # the user pool and its app client.
  auth_on = var.auth != "none"
  cognito = var.auth == "cognito"
  # The iss of the pool's tokens: https://cognito-idp.<region>.amazonaws.com/<pool id> (the
  # pool's endpoint attribute is that host and path, in the partition's own domain).
  cognito_issuer = local.cognito ? "https://${aws_cognito_user_pool.users[0].endpoint}" : null

  # var.api_type: "http" makes the HTTP API below, "rest" the REST API of rest.tf instead.
  http = var.api_type == "http"
  rest = var.api_type == "rest"
}

# ------------------------------------------------------------------------------ the table

# Every task lives in its owner's partition: the list is a Query on user_id (never a Scan),
# and id (time-ordered UUIDv7) sorts it newest first. With auth "none" every task has the
# owner "public": one partition, whose throughput is the ceiling (the README has the figures).
# Named <name>-user-tasks, not <name>-tasks as before accounts: a table's key cannot change,
# and the old table must live on beside this one while scripts/migrate-table.sh copies its
# tasks (README "Upgrading"; DynamoDB table names are unique in a region).
resource "aws_dynamodb_table" "tasks" {
  name         = "${var.name}-user-tasks"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "user_id"
  range_key    = "id"

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

  # Idempotency-Key records (docs/idempotency.md) share the table and carry their expiry
  # here (epoch seconds); DynamoDB deletes them some time after it. TTL deletion lags, so
  # the runtime also compares the time itself. Tasks have no expires_at: TTL never
  # touches them.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
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

# ------------------------------------------------------------------------ the user pool
# var.auth = "cognito" (the default): the users sign in with their email address; the app
# client is what a web page or scripts/token.sh signs in through. Neither exists otherwise.

resource "aws_cognito_user_pool" "users" {
  count = local.cognito ? 1 : 0

  name = var.name

  # The email is the user name (Cognito's own user name is then the sub), matched case-
  # insensitively, verified by a code Cognito mails at sign-up.
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]

  username_configuration {
    case_sensitive = false
  }

  # Length over composition (NIST SP 800-63B): at least 12 characters, with a lower-case and
  # an upper-case letter and a digit; no symbol required. A temporary password (an admin-made
  # user) must be changed within 7 days.
  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = false
    temporary_password_validity_days = 7
  }

  # A forgotten password is reset through the verified email only.
  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  # Deleting the pool deletes every account, and a new pool gives every user a new sub, so
  # their tasks (keyed by sub) would be orphaned: protected like the table, by the same
  # variable. scripts/teardown.sh turns both off (one targeted apply) just before destroying.
  deletion_protection = var.deletion_protection ? "ACTIVE" : "INACTIVE"
}

resource "aws_cognito_user_pool_client" "api" {
  count = local.cognito ? 1 : 0

  name         = var.name
  user_pool_id = aws_cognito_user_pool.users[0].id

  # A public client (a browser page, a CLI): no secret, which such a client could not keep.
  generate_secret = false
  # Password sign-in (USER_PASSWORD_AUTH: scripts/token.sh; USER_SRP_AUTH: Amplify and other
  # SDKs, the password never sent) and refreshing; nothing else.
  explicit_auth_flows = [
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
  ]
  # Access and ID tokens live 60 minutes (what a stolen token is worth), refresh tokens 30
  # days (how long a signed-in page stays signed in); revocation ends a refresh token early.
  access_token_validity  = 60
  id_token_validity      = 60
  refresh_token_validity = 30
  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
  enable_token_revocation = true
  # A wrong email and a wrong password get the same answer.
  prevent_user_existence_errors = "ENABLED"
}

# ------------------------------------------------------------------------- the function

module "lambda" {
  source = "./modules/lambda"

  name         = var.name
  package_path = local.package_path
  architecture = var.architecture
  # The whole resource: the module takes TABLE_NAME and the IAM resource from it.
  table = aws_dynamodb_table.tasks

  environment = {
    TASKHOST_CORS_ORIGIN   = var.cors_origin
    TASKHOST_CURSOR_SECRET = terraform_data.cursor_secret.output
    # API Gateway has verified the token: the function takes the owner from the authorizer's
    # claims (sub) and answers 401 when there is none. Only with the authorizer in front.
    TASKHOST_AUTH = local.auth_on ? "jwt" : "none"
    # The runtime's EMF metrics (one line per invocation) land here; monitoring.tf reads them.
    TASKHOST_METRICS_NAMESPACE = var.metrics_namespace
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
  count = local.http ? 1 : 0

  name          = var.name
  description   = "taskhost Task CRUD API"
  protocol_type = "HTTP"

  # With a cors_configuration, API Gateway answers preflight requests itself and REPLACES the
  # function's Access-Control-* response headers with the ones below: what a browser may do is
  # decided here alone, so this list must name every header a client reads. expose_headers:
  # without it a browser's script cannot read Location (the new task's URL), ETag, why a 401
  # happened (WWW-Authenticate) or when to retry (Retry-After). The
  # function sends the same origin (TASKHOST_CORS_ORIGIN) and lists for --serve and for
  # clients that reach it without this layer; tests/terraform/check.sh compares the two.
  cors_configuration {
    allow_origins  = [var.cors_origin]
    allow_methods  = ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
    allow_headers  = ["content-type", "authorization", "x-amz-date", "x-api-key", "x-amz-security-token", "if-match", "if-none-match", "idempotency-key"]
    expose_headers = ["location", "etag", "www-authenticate", "retry-after"]
    max_age        = var.cors_max_age
  }
}

resource "aws_apigatewayv2_integration" "lambda" {
  count = local.http ? 1 : 0

  api_id                 = aws_apigatewayv2_api.http[0].id
  description            = "taskhost function (Lambda proxy)"
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = module.lambda.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

# The JWT authorizer (var.auth "cognito" or "jwt"): API Gateway checks the bearer token's
# signature (the issuer's JWKS, found through its /.well-known/openid-configuration), exp, nbf
# and iss, and that its aud (an ID token) or client_id (a Cognito access token) is in the
# audience; anything else is a 401 before the function runs.
resource "aws_apigatewayv2_authorizer" "jwt" {
  count = local.http && local.auth_on ? 1 : 0

  api_id           = aws_apigatewayv2_api.http[0].id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = local.cognito ? local.cognito_issuer : var.jwt_issuer
    audience = local.cognito ? [aws_cognito_user_pool_client.api[0].id] : var.jwt_audience
  }

  lifecycle {
    # Checked at plan time (a variable's own validation cannot look at var.auth on
    # Terraform 1.5).
    precondition {
      condition     = local.cognito || (var.jwt_issuer != null && length(var.jwt_audience) > 0)
      error_message = "auth = \"jwt\" needs jwt_issuer (your OIDC issuer, e.g. https://example.eu.auth0.com/) and jwt_audience (a list of at least one audience or client id)."
    }
  }
}

# One catch-all route: routing lives in lua/routes.lua only, so a route added there needs no
# Terraform change, and unknown paths get the function's JSON 404/405 (with CORS headers)
# instead of API Gateway's own. Every request on it needs a valid token unless auth is "none".
resource "aws_apigatewayv2_route" "default" {
  count = local.http ? 1 : 0

  api_id    = aws_apigatewayv2_api.http[0].id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.lambda[0].id}"

  authorization_type = local.auth_on ? "JWT" : "NONE"
  authorizer_id      = local.auth_on ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

# CORS preflights without a token. A browser sends its preflight (OPTIONS with Origin and
# Access-Control-Request-Method) without the Authorization header, so it must not meet the
# authorizer. API Gateway answers preflights itself from cors_configuration only when no
# route matches the OPTIONS request; the $default route matches every method, so with an
# authorizer on it the preflight would be a 401 without CORS headers and the browser would
# never send the real request. AWS's "Configure CORS for HTTP APIs" page, section
# "Configuring CORS for an HTTP API with a $default route and an authorizer"
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html): "The
# $default route catches requests for all methods and routes that you haven't explicitly
# defined, including OPTIONS requests. To support unauthorized OPTIONS requests, add an
# OPTIONS /{proxy+} route to your API that doesn't require authorization and attach an
# integration to the route." This is that route: it has priority over $default and needs no
# token; its integration is the function, which answers a preflight without looking for one,
# and API Gateway's answer carries the cors_configuration headers either way. It exists exactly
# when the authorizer does.
resource "aws_apigatewayv2_route" "preflight" {
  count = local.http && local.auth_on ? 1 : 0

  api_id             = aws_apigatewayv2_api.http[0].id
  route_key          = "OPTIONS /{proxy+}"
  target             = "integrations/${aws_apigatewayv2_integration.lambda[0].id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "api" {
  count = local.http ? 1 : 0

  api_id      = aws_apigatewayv2_api.http[0].id
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
  count = local.http ? 1 : 0

  statement_id  = "AllowInvokeFromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = module.lambda.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http[0].execution_arn}/*"
}

data "aws_region" "current" {}
