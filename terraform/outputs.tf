output "api_endpoint" {
  description = "Base URL of the API (the stage's invoke URL, no trailing slash): curl $API_URL/tasks"
  value       = trimsuffix(aws_apigatewayv2_stage.api.invoke_url, "/")
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
