# Monitoring: an SNS topic for alarms (optionally mailed to var.alarm_email), the alarms, and
# one CloudWatch dashboard. docs/operations.md says what each alarm means and what to check
# first when it fires.
#
# Every metric here is one its service really publishes, with the dimensions it publishes it
# under (tests/terraform/check.js holds the table and checks each alarm and widget against it):
#   AWS/Lambda      Errors, Throttles, Duration, Invocations, ConcurrentExecutions by FunctionName
#   AWS/ApiGateway  HTTP APIs: Count, 4xx, 5xx, Latency, IntegrationLatency by ApiId and Stage;
#                   REST APIs (api_type = "rest"): Count, 4XXError, 5XXError, Latency,
#                   IntegrationLatency by ApiName and Stage
#   AWS/DynamoDB    ConsumedRead/WriteCapacityUnits, ReadThrottleEvents, WriteThrottleEvents by
#                   TableName; ThrottledRequests by TableName and Operation
#   var.metrics_namespace  the runtime's own EMF metrics (runtime/metrics.h): every metric by
#                   Service (the function's name), Requests/Latency/4xx/5xx also by Service and
#                   Operation (the route's name)
#
# treat_missing_data: every metric alarmed on here is published only while there is traffic
# (Lambda and API Gateway: per invocation or request; the EMF metrics: per invocation) or only
# when it is not zero (DynamoDB's throttle events). No data therefore means "nothing went
# wrong", never "we are blind": notBreaching, so a quiet night is OK rather than ALARM or
# INSUFFICIENT_DATA. Turning the EMF metrics off (TASKHOST_METRICS=off) silences the two
# runtime alarms; the Lambda and API Gateway alarms still watch the same failures from outside.

locals {
  alarm_topic = [aws_sns_topic.alarms.arn]

  # The dimension values, each from the resource that owns the name.
  fn_dims = { FunctionName = module.lambda.function_name }
  # An HTTP API publishes Count/4xx/5xx/Latency by ApiId and Stage; a REST API publishes
  # Count/4XXError/5XXError/Latency by ApiName and Stage (var.api_type).
  api_dims = local.http ? {
    ApiId = aws_apigatewayv2_api.http[0].id, Stage = aws_apigatewayv2_stage.api[0].name
    } : {
    ApiName = aws_api_gateway_rest_api.rest[0].name, Stage = aws_api_gateway_stage.rest[0].stage_name
  }
  api_4xx = local.http ? "4xx" : "4XXError"
  api_5xx = local.http ? "5xx" : "5XXError"
  # A dashboard metric row's dimensions, flattened: ["ApiId", id, "Stage", name] or the REST
  # API's ["ApiName", name, "Stage", name].
  api_dim_row = local.http ? ["ApiId", aws_apigatewayv2_api.http[0].id, "Stage", aws_apigatewayv2_stage.api[0].name] : ["ApiName", aws_api_gateway_rest_api.rest[0].name, "Stage", aws_api_gateway_stage.rest[0].stage_name]
  table_dims  = { TableName = aws_dynamodb_table.tasks.name }
  # The runtime's Service dimension is AWS_LAMBDA_FUNCTION_NAME, the function's name.
  emf_dims = { Service = module.lambda.function_name }

  region = data.aws_region.current.name
}

# ------------------------------------------------------------------------------- the topic

resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
}

# Optional: AWS mails a confirmation link first; nothing is delivered until it is clicked.
resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ------------------------------------------------------------------------------ the alarms

# Lambda Errors: invocations that ended on /error (not an API Gateway event, a response too
# large, a crash, the watchdog's exit). A route's own failure is a JSON 500, counted by the
# runtime's 5xx alarm below, not here.
resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  alarm_name          = "${var.name}-lambda-errors"
  alarm_description   = "Lambda Errors >= 1 in 5 minutes: invocations answered on /error (docs/operations.md)"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = local.fn_dims
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
}

# Lambda Throttles: requests refused for lack of concurrency (reserved concurrency or the
# account's limit); API Gateway answers them 500/503 without the function running.
resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  alarm_name          = "${var.name}-lambda-throttles"
  alarm_description   = "Lambda Throttles >= 1 in 5 minutes: out of concurrency (docs/operations.md)"
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = local.fn_dims
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
}

# Duration near the timeout: the slowest invocations (Maximum) past 80% of var.timeout for
# two 5-minute periods running. Past the timeout Lambda kills the invocation and API Gateway
# answers 503/504.
resource "aws_cloudwatch_metric_alarm" "lambda_duration" {
  alarm_name          = "${var.name}-lambda-duration-near-timeout"
  alarm_description   = "Lambda Duration (Maximum) above 80% of the function's timeout (docs/operations.md)"
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = local.fn_dims
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  threshold           = var.timeout * 1000 * 0.8
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
}

# API Gateway 5xx: what clients saw, including what never reached the function (throttled by
# Lambda, integration timeouts, 502s from a function that answered no proxy response).
resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-api-5xx"
  alarm_description   = "API Gateway ${local.api_5xx} >= ${var.alarm_5xx_threshold} in 5 minutes (docs/operations.md)"
  namespace           = "AWS/ApiGateway"
  metric_name         = local.api_5xx
  dimensions          = local.api_dims
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_5xx_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
}

# DynamoDB throttle events (reads + writes): the on-demand cost cap
# (var.table_max_read/write_request_units) or a hot partition. The runtime retries them
# (StoreRetries) and answers 503 when the retries run out.
resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  alarm_name          = "${var.name}-dynamodb-throttles"
  alarm_description   = "DynamoDB Read+WriteThrottleEvents >= 1 in 5 minutes on the tasks table (docs/operations.md)"
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic

  metric_query {
    id          = "throttles"
    expression  = "reads + writes"
    label       = "Throttle events"
    return_data = true
  }

  metric_query {
    id = "reads"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      dimensions  = local.table_dims
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "writes"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      dimensions  = local.table_dims
      stat        = "Sum"
      period      = 300
    }
  }
}

# The runtime's own 5xx (EMF): route failures, store errors answered 500/503, the watchdog.
resource "aws_cloudwatch_metric_alarm" "runtime_5xx" {
  alarm_name          = "${var.name}-runtime-5xx"
  alarm_description   = "taskhost 5xx (EMF) >= ${var.alarm_5xx_threshold} in 5 minutes (docs/operations.md)"
  namespace           = var.metrics_namespace
  metric_name         = "5xx"
  dimensions          = local.emf_dims
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_5xx_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
}

# The runtime's store retries (EMF): DynamoDB throttling or errors retried inside requests;
# the early sign before 503s.
resource "aws_cloudwatch_metric_alarm" "store_retries" {
  alarm_name          = "${var.name}-store-retries"
  alarm_description   = "taskhost StoreRetries (EMF) >= ${var.alarm_store_retries_threshold} in 5 minutes (docs/operations.md)"
  namespace           = var.metrics_namespace
  metric_name         = "StoreRetries"
  dimensions          = local.emf_dims
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_store_retries_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
}

# --------------------------------------------------------------------------- the dashboard
# Rows of three widgets, 8 units wide, 6 high. Each metric row is written out in full (no "."
# shorthand), so the checks can resolve every one.

locals {
  dashboard = {
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 8, height = 6
        properties = {
          title = "API requests", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            concat(["AWS/ApiGateway", "Count"], local.api_dim_row),
          ]
        }
      },
      {
        type = "metric", x = 8, y = 0, width = 8, height = 6
        properties = {
          title = "API 4xx and 5xx", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            concat(["AWS/ApiGateway", local.api_4xx], local.api_dim_row),
            concat(["AWS/ApiGateway", local.api_5xx], local.api_dim_row),
          ]
        }
      },
      {
        type = "metric", x = 16, y = 0, width = 8, height = 6
        properties = {
          title = "API latency p50 / p99 (ms)", region = local.region, view = "timeSeries", period = 60
          metrics = [
            concat(["AWS/ApiGateway", "Latency"], local.api_dim_row, [{ stat = "p50", label = "API p50" }]),
            concat(["AWS/ApiGateway", "Latency"], local.api_dim_row, [{ stat = "p99", label = "API p99" }]),
            concat(["AWS/ApiGateway", "IntegrationLatency"], local.api_dim_row, [{ stat = "p99", label = "integration p99" }]),
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 8, height = 6
        properties = {
          title = "Function: requests by status class (EMF)", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            [var.metrics_namespace, "2xx", "Service", module.lambda.function_name],
            [var.metrics_namespace, "4xx", "Service", module.lambda.function_name],
            [var.metrics_namespace, "5xx", "Service", module.lambda.function_name],
          ]
        }
      },
      {
        type = "metric", x = 8, y = 6, width = 8, height = 6
        properties = {
          title = "Function latency p50 / p99 (ms)", region = local.region, view = "timeSeries", period = 60
          metrics = [
            [var.metrics_namespace, "Latency", "Service", module.lambda.function_name, { stat = "p50", label = "handling p50 (EMF)" }],
            [var.metrics_namespace, "Latency", "Service", module.lambda.function_name, { stat = "p99", label = "handling p99 (EMF)" }],
            ["AWS/Lambda", "Duration", "FunctionName", module.lambda.function_name, { stat = "p99", label = "Lambda Duration p99" }],
          ]
        }
      },
      {
        type = "metric", x = 16, y = 6, width = 8, height = 6
        properties = {
          title = "5xx by operation (EMF)", region = local.region, view = "timeSeries", stat = "Sum", period = 300
          metrics = [
            [var.metrics_namespace, "5xx", "Service", module.lambda.function_name, "Operation", "CreateTask"],
            [var.metrics_namespace, "5xx", "Service", module.lambda.function_name, "Operation", "GetTask"],
            [var.metrics_namespace, "5xx", "Service", module.lambda.function_name, "Operation", "ListTasks"],
            [var.metrics_namespace, "5xx", "Service", module.lambda.function_name, "Operation", "UpdateTask"],
            [var.metrics_namespace, "5xx", "Service", module.lambda.function_name, "Operation", "DeleteTask"],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 8, height = 6
        properties = {
          title = "Cold starts (EMF) and Lambda concurrency", region = local.region, view = "timeSeries", period = 60
          metrics = [
            [var.metrics_namespace, "ColdStart", "Service", module.lambda.function_name, { stat = "Sum", label = "cold starts" }],
            ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", module.lambda.function_name, { stat = "Maximum", label = "concurrency (max)" }],
          ]
        }
      },
      {
        type = "metric", x = 8, y = 12, width = 8, height = 6
        properties = {
          title = "Lambda invocations, errors, throttles", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", module.lambda.function_name],
            ["AWS/Lambda", "Errors", "FunctionName", module.lambda.function_name],
            ["AWS/Lambda", "Throttles", "FunctionName", module.lambda.function_name],
          ]
        }
      },
      {
        type = "metric", x = 16, y = 12, width = 8, height = 6
        properties = {
          title = "Store calls, retries, throttles (EMF)", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            [var.metrics_namespace, "StoreCalls", "Service", module.lambda.function_name],
            [var.metrics_namespace, "StoreRetries", "Service", module.lambda.function_name],
            [var.metrics_namespace, "StoreThrottles", "Service", module.lambda.function_name],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 18, width = 12, height = 6
        properties = {
          title = "DynamoDB consumed capacity", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", aws_dynamodb_table.tasks.name],
            ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", aws_dynamodb_table.tasks.name],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 18, width = 12, height = 6
        properties = {
          title = "DynamoDB throttles", region = local.region, view = "timeSeries", stat = "Sum", period = 60
          metrics = [
            ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", aws_dynamodb_table.tasks.name],
            ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", aws_dynamodb_table.tasks.name],
            ["AWS/DynamoDB", "ThrottledRequests", "TableName", aws_dynamodb_table.tasks.name, "Operation", "PutItem"],
            ["AWS/DynamoDB", "ThrottledRequests", "TableName", aws_dynamodb_table.tasks.name, "Operation", "Query"],
          ]
        }
      },
    ]
  }
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = var.name
  dashboard_body = jsonencode(local.dashboard)
}
