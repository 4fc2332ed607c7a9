# var.api_type = "rest": an API Gateway REST API in front of the function instead of the HTTP
# API of main.tf, for what HTTP APIs lack: an AWS WAF web ACL (var.waf) and usage plans with
# API keys (var.api_clients). Nothing here exists with api_type = "http" (the default).
#
#   - the root "/" and "/{proxy+}", each with ANY -> the function (Lambda proxy, payload 1.0:
#     runtime/event.c takes the path from requestContext.path minus the stage, or the
#     resource path with the proxy parameter when a custom domain's base path is in front)
#     and OPTIONS -> the function too, without authorizer or key: CORS preflights are
#     answered by the function, which already does (one list of CORS headers, runtime/host.c,
#     instead of a second copy in mock integrations here; a REST API passes the function's
#     Access-Control-* headers through untouched, unlike an HTTP API's cors_configuration);
#   - auth = "cognito": a Cognito user-pool authorizer on every ANY method, taking the pool's
#     access tokens (REST APIs have no JWT authorizer, so auth = "jwt" is refused at plan
#     time); the function reads the same claims (requestContext.authorizer.claims) and
#     TASKHOST_AUTH stays "jwt";
#   - gateway responses: API Gateway's own 4xx/5xx (401 from the authorizer, 403 for a missing
#     API key or a WAF block, 429 from throttling or a quota) carry the CORS origin, so a
#     browser's script can read them;
#   - a stage (var.stage_name; "$default" is an HTTP API name, so "api" here) with the JSON
#     access log of main.tf's log group and the same throttling;
#   - usage plans and API keys, one of each per var.api_clients entry;
#   - the WAF web ACL, its association with the stage and its log group.

locals {
  # REST stage names are letters, digits, '-' and '_': "$default" becomes "api".
  rest_stage = var.stage_name == "$default" ? "api" : var.stage_name
  # The methods need an API key exactly when some client has one.
  api_keys_on = local.rest && length(var.api_clients) > 0
  # var.waf = null: on for "rest".
  waf_on = local.rest && var.waf != false
}

resource "aws_api_gateway_rest_api" "rest" {
  count = local.rest ? 1 : 0

  name           = var.name
  description    = "taskhost Task CRUD API"
  api_key_source = "HEADER"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    precondition {
      condition     = var.auth != "jwt"
      error_message = "api_type = \"rest\" cannot take auth = \"jwt\": REST APIs have no JWT authorizer. Use auth = \"cognito\" (a Cognito user-pool authorizer) or \"none\", or api_type = \"http\" for your own OIDC issuer."
    }
  }
}

resource "aws_api_gateway_resource" "proxy" {
  count = local.rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  parent_id   = aws_api_gateway_rest_api.rest[0].root_resource_id
  path_part   = "{proxy+}"
}

# The Cognito user-pool authorizer: API Gateway checks the ID token in the Authorization
# header (signature, exp, iss = the pool) and answers 401 before the function runs.
resource "aws_api_gateway_authorizer" "cognito" {
  count = local.rest && local.cognito ? 1 : 0

  name            = "${var.name}-cognito"
  rest_api_id     = aws_api_gateway_rest_api.rest[0].id
  type            = "COGNITO_USER_POOLS"
  provider_arns   = [aws_cognito_user_pool.users[0].arn]
  identity_source = "method.request.header.Authorization"
}

# The function's invoke URI, spelt out from its name (the module names the function var.name)
# rather than read from module.lambda: the deployment below is create_before_destroy, and
# Terraform makes everything a create_before_destroy resource depends on create_before_destroy
# too, for every stack, REST or not. Through module.lambda that would be the table and the
# role, whose replacement under the same name (a key change) must delete first. The user pool
# (through the authorizer) does become create_before_destroy: Cognito allows two pools of one
# name, so its replacement still works.
data "aws_partition" "current" {}

locals {
  rest_invoke_uri = "arn:${data.aws_partition.current.partition}:apigateway:${data.aws_region.current.name}:lambda:path/2015-03-31/functions/arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:function:${var.name}/invocations"
}

locals {
  # resource key -> resource id; the methods and integrations are one per (resource, method).
  rest_resources = local.rest ? {
    root  = aws_api_gateway_rest_api.rest[0].root_resource_id
    proxy = aws_api_gateway_resource.proxy[0].id
  } : {}
  rest_methods = local.rest ? {
    "root-ANY"      = { resource = "root", method = "ANY" }
    "root-OPTIONS"  = { resource = "root", method = "OPTIONS" }
    "proxy-ANY"     = { resource = "proxy", method = "ANY" }
    "proxy-OPTIONS" = { resource = "proxy", method = "OPTIONS" }
  } : {}
}

resource "aws_api_gateway_method" "rest" {
  for_each = local.rest_methods

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  resource_id = local.rest_resources[each.value.resource]
  http_method = each.value.method

  # Every method needs the token and (with clients) the key, but a CORS preflight: a browser
  # sends it without either.
  authorization    = each.value.method != "OPTIONS" && local.cognito ? "COGNITO_USER_POOLS" : "NONE"
  authorizer_id    = each.value.method != "OPTIONS" && local.cognito ? aws_api_gateway_authorizer.cognito[0].id : null
  api_key_required = each.value.method != "OPTIONS" && local.api_keys_on
  # With a scope named, a Cognito authorizer takes ACCESS tokens (what scripts/token.sh prints
  # and the HTTP API's authorizer takes) carrying it; without one it would take ID tokens only.
  # aws.cognito.signin.user.admin is in every access token of a user-pool sign-in.
  authorization_scopes = each.value.method != "OPTIONS" && local.cognito ? ["aws.cognito.signin.user.admin"] : null
}

resource "aws_api_gateway_integration" "rest" {
  for_each = local.rest_methods

  rest_api_id             = aws_api_gateway_rest_api.rest[0].id
  resource_id             = aws_api_gateway_method.rest[each.key].resource_id
  http_method             = aws_api_gateway_method.rest[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = local.rest_invoke_uri
  timeout_milliseconds    = 29000
}

# API Gateway's own error answers carry the CORS origin (the function's answers carry it
# already).
resource "aws_api_gateway_gateway_response" "cors" {
  for_each = local.rest ? { DEFAULT_4XX = "4xx", DEFAULT_5XX = "5xx" } : {}

  rest_api_id   = aws_api_gateway_rest_api.rest[0].id
  response_type = each.key
  response_parameters = {
    "gatewayresponse.header.Access-Control-Allow-Origin"   = "'${var.cors_origin}'"
    "gatewayresponse.header.Access-Control-Expose-Headers" = "'Location, ETag, WWW-Authenticate, Retry-After'"
  }
}

# A REST API serves a deployment (a snapshot of its resources), made again whenever a method,
# an integration or a gateway response changes.
resource "aws_api_gateway_deployment" "rest" {
  count = local.rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  description = "taskhost"

  # From the configuration, not from attributes read back (an emulator or the API may read
  # them back otherwise, and a trigger that moves redeploys on every apply).
  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.proxy[0].id,
      local.rest_methods,
      local.cognito,
      aws_api_gateway_authorizer.cognito[*].id,
      local.api_keys_on,
      "scopes: aws.cognito.signin.user.admin",
      local.rest_invoke_uri,
      var.cors_origin,
    ]))
  }

  depends_on = [aws_api_gateway_method.rest, aws_api_gateway_integration.rest, aws_api_gateway_gateway_response.cors]

  lifecycle {
    create_before_destroy = true
  }
}

# REST API access logging needs the region's API Gateway account setting to name a role that
# may write to CloudWatch Logs (one setting per account and region; HTTP APIs need none).
resource "aws_iam_role" "apigateway_logs" {
  count = local.rest && var.manage_apigateway_account ? 1 : 0

  name               = "${var.name}-apigw-logs-${data.aws_region.current.name}"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume[0].json
}

data "aws_iam_policy_document" "apigateway_assume" {
  count = local.rest && var.manage_apigateway_account ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

# The actions of AWS's AmazonAPIGatewayPushToCloudWatchLogs policy, on log groups.
data "aws_iam_policy_document" "apigateway_logs" {
  count = local.rest && var.manage_apigateway_account ? 1 : 0

  statement {
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DescribeLogGroups",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
      "logs:GetLogEvents",
      "logs:FilterLogEvents",
    ]
    resources = ["arn:aws:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"]
  }
}

data "aws_caller_identity" "current" {}

resource "aws_iam_role_policy" "apigateway_logs" {
  count = local.rest && var.manage_apigateway_account ? 1 : 0

  name   = "cloudwatch-logs"
  role   = aws_iam_role.apigateway_logs[0].id
  policy = data.aws_iam_policy_document.apigateway_logs[0].json
}

resource "aws_api_gateway_account" "this" {
  count = local.rest && var.manage_apigateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.apigateway_logs[0].arn
  depends_on          = [aws_iam_role_policy.apigateway_logs]
}

resource "aws_api_gateway_stage" "rest" {
  count = local.rest ? 1 : 0

  rest_api_id   = aws_api_gateway_rest_api.rest[0].id
  deployment_id = aws_api_gateway_deployment.rest[0].id
  stage_name    = local.rest_stage

  xray_tracing_enabled = var.enable_tracing

  # One JSON object per request, the HTTP API's fields plus the API key's id and WAF's verdict.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId               = "$context.requestId"
      lambdaRequestId         = "$context.integration.requestId"
      ip                      = "$context.identity.sourceIp"
      userAgent               = "$context.identity.userAgent"
      requestTime             = "$context.requestTime"
      httpMethod              = "$context.httpMethod"
      resourcePath            = "$context.resourcePath"
      path                    = "$context.path"
      status                  = "$context.status"
      protocol                = "$context.protocol"
      responseLength          = "$context.responseLength"
      responseLatency         = "$context.responseLatency"
      integrationStatus       = "$context.integration.status"
      integrationLatency      = "$context.integration.latency"
      integrationErrorMessage = "$context.integrationErrorMessage"
      errorMessage            = "$context.error.message"
      apiKeyId                = "$context.identity.apiKeyId"
      wafResponseCode         = "$context.wafResponseCode"
      webAclArn               = "$context.webaclArn"
    })
  }

  depends_on = [aws_api_gateway_account.this]
}

# Throttling of every method of the stage (429 above), as the HTTP API's default route
# settings; CloudWatch per-method metrics off (the API-level ones by ApiName and Stage stay).
resource "aws_api_gateway_method_settings" "rest" {
  count = local.rest ? 1 : 0

  rest_api_id = aws_api_gateway_rest_api.rest[0].id
  stage_name  = aws_api_gateway_stage.rest[0].stage_name
  method_path = "*/*"

  settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
    metrics_enabled        = false
    logging_level          = "OFF"
  }
}

# API Gateway may invoke the function, from this API only.
resource "aws_lambda_permission" "rest" {
  count = local.rest ? 1 : 0

  statement_id  = "AllowInvokeFromRestApi"
  action        = "lambda:InvokeFunction"
  function_name = module.lambda.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.rest[0].execution_arn}/*"
}

# ------------------------------------------------------------ usage plans and API keys
# One key and one usage plan per client: the plan's quota and throttle are the client's own
# (API Gateway answers 429 past either). The key's value is generated by API Gateway and is in
# the state, never in an output: docs/deployment.md shows how to read it and hand it over.

resource "aws_api_gateway_api_key" "client" {
  for_each = local.rest ? var.api_clients : {}

  name        = "${var.name}-${each.key}"
  description = "taskhost API key of ${each.key}"
  enabled     = true
}

resource "aws_api_gateway_usage_plan" "client" {
  for_each = local.rest ? var.api_clients : {}

  name        = "${var.name}-${each.key}"
  description = "taskhost usage plan of ${each.key}"

  api_stages {
    api_id = aws_api_gateway_rest_api.rest[0].id
    stage  = aws_api_gateway_stage.rest[0].stage_name
  }

  dynamic "quota_settings" {
    for_each = each.value.quota_limit == null ? [] : [each.value]
    content {
      limit  = quota_settings.value.quota_limit
      period = quota_settings.value.quota_period
    }
  }

  dynamic "throttle_settings" {
    for_each = each.value.rate_limit == null && each.value.burst_limit == null ? [] : [each.value]
    content {
      rate_limit  = coalesce(throttle_settings.value.rate_limit, var.throttling_rate_limit)
      burst_limit = coalesce(throttle_settings.value.burst_limit, var.throttling_burst_limit)
    }
  }
}

resource "aws_api_gateway_usage_plan_key" "client" {
  for_each = local.rest ? var.api_clients : {}

  key_id        = aws_api_gateway_api_key.client[each.key].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.client[each.key].id
}

# ------------------------------------------------------------------------------- AWS WAF
# A regional web ACL on the stage: AWS's managed common rule set (OWASP top-10 style: bad
# bodies, paths, headers) and known bad inputs (Log4j, Java deserialisation ...), and a
# rate-based rule per client IP. var.waf_mode = "count" only counts what the rules match (the
# default action allows everything else either way), for a first rollout; "block" answers 403.
# Note: the common rule set's SizeRestrictions_BODY blocks bodies over 8 KB; taskhost's own
# limit is 64 KB (TASKHOST_MAX_BODY_BYTES) but a valid task (1000 characters) is far below 8 KB.

locals {
  waf_managed = {
    AWSManagedRulesCommonRuleSet         = 10
    AWSManagedRulesKnownBadInputsRuleSet = 20
  }
}

resource "aws_wafv2_web_acl" "api" {
  count = local.waf_on ? 1 : 0

  name        = var.name
  description = "taskhost REST API (${var.waf_mode} mode)"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  dynamic "rule" {
    for_each = local.waf_managed
    content {
      name     = rule.key
      priority = rule.value

      override_action {
        dynamic "none" {
          for_each = var.waf_mode == "block" ? [1] : []
          content {}
        }
        dynamic "count" {
          for_each = var.waf_mode == "count" ? [1] : []
          content {}
        }
      }

      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.key
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "rate-per-ip"
    priority = 30

    action {
      dynamic "block" {
        for_each = var.waf_mode == "block" ? [1] : []
        content {}
      }
      dynamic "count" {
        for_each = var.waf_mode == "count" ? [1] : []
        content {}
      }
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-per-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "api" {
  count = local.waf_on ? 1 : 0

  resource_arn = aws_api_gateway_stage.rest[0].arn
  web_acl_arn  = aws_wafv2_web_acl.api[0].arn
}

# WAF's log: one JSON record per request it evaluated, with the rule that matched. WAF takes
# only log groups named aws-waf-logs-*. The token and the API key are redacted.
resource "aws_cloudwatch_log_group" "waf" {
  count = local.waf_on ? 1 : 0

  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  count = local.waf_on ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.api[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}
