output "api_endpoint" {
  description = "Base URL of the API (the stage's invoke URL, no trailing slash): curl $API_URL/tasks"
  value       = trimsuffix(local.http ? aws_apigatewayv2_stage.api[0].invoke_url : aws_api_gateway_stage.rest[0].invoke_url, "/")

  # What only a REST API has, asked of an HTTP API: refused at plan time.
  precondition {
    condition     = local.rest || var.waf != true
    error_message = "waf = true needs api_type = \"rest\": AWS WAF cannot be associated with an HTTP API."
  }
  precondition {
    condition     = local.rest || length(var.api_clients) == 0
    error_message = "api_clients needs api_type = \"rest\": HTTP APIs have no usage plans or API keys."
  }
}

output "api_type" {
  description = "The API Gateway flavour in front of the function: \"http\" (HTTP API) or \"rest\" (REST API)."
  value       = var.api_type
}

# The ids (never the values) of the clients' API keys; the value of one:
# aws apigateway get-api-key --api-key <id> --include-value --query value --output text
output "api_key_ids" {
  description = "The API key id of each api_clients entry (api_type = \"rest\"), by client name; the key's value is read with aws apigateway get-api-key --api-key <id> --include-value."
  value       = { for k, key in aws_api_gateway_api_key.client : k => key.id }
}

output "waf_web_acl_arn" {
  description = "The WAF web ACL in front of the REST API's stage (null without one)."
  value       = local.waf_on ? aws_wafv2_web_acl.api[0].arn : null
}

output "waf_log_group" {
  description = "The WAF log group (aws-waf-logs-<name>; null without a web ACL): one JSON record per request WAF evaluated."
  value       = local.waf_on ? aws_cloudwatch_log_group.waf[0].name : null
}

output "table_name" {
  description = "The DynamoDB table (the function's TABLE_NAME)."
  value       = aws_dynamodb_table.tasks.name
}

output "function_name" {
  description = "The Lambda function."
  value       = module.lambda.function_name
}

output "log_group" {
  description = "The function's log group: aws logs tail <log_group> --follow"
  value       = module.lambda.log_group_name
}

output "access_log_group" {
  description = "The API's access log group (one JSON line per request)."
  value       = aws_cloudwatch_log_group.access.name
}

output "region" {
  description = "The region the stack is in."
  value       = data.aws_region.current.name
}

# The user pool, for scripts/token.sh and for a web page's sign-in; null unless auth = "cognito".
output "cognito_user_pool_id" {
  description = "The Cognito user pool (auth = \"cognito\"; null otherwise): scripts/token.sh signs users in to it."
  value       = local.cognito ? aws_cognito_user_pool.users[0].id : null
}

output "cognito_client_id" {
  description = "The user pool's app client (no secret; null unless auth = \"cognito\"): the audience the API's authorizer accepts."
  value       = local.cognito ? aws_cognito_user_pool_client.api[0].id : null
}

output "cognito_issuer" {
  description = "The iss of the pool's tokens, https://cognito-idp.<region>.amazonaws.com/<pool id>, which the API's authorizer accepts (null unless auth = \"cognito\"); its JWKS is <issuer>/.well-known/jwks.json."
  value       = local.cognito_issuer
}

output "dashboard_url" {
  description = "The CloudWatch dashboard (monitoring.tf): requests, 4xx/5xx, latency, cold starts, concurrency, DynamoDB capacity and throttles."
  value       = "https://${data.aws_region.current.name}.console.aws.amazon.com/cloudwatch/home?region=${data.aws_region.current.name}#dashboards:name=${aws_cloudwatch_dashboard.main.dashboard_name}"
}

output "alarm_topic_arn" {
  description = "The SNS topic every alarm notifies (subscribe a pager, chat or e-mail to it; alarm_email does the last)."
  value       = aws_sns_topic.alarms.arn
}

output "api_custom_url" {
  description = "https://<domain_name> when a custom domain is set (domain.tf), else null."
  value       = local.domain_on ? "https://${var.domain_name}" : null

  precondition {
    condition     = var.domain_name == null || var.domain_zone_id != null || var.domain_certificate_arn != null
    error_message = "domain_name needs domain_zone_id (a Route 53 zone to validate a new certificate in) or domain_certificate_arn (an issued certificate)."
  }
}

output "api_domain_target" {
  description = "With a custom domain: the regional API Gateway host name to point the domain at (a CNAME or an alias), else null."
  value       = local.domain_on ? aws_apigatewayv2_domain_name.api[0].domain_name_configuration[0].target_domain_name : null
}
