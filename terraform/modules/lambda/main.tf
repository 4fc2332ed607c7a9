# The taskhost function: log group, IAM role and policy, function.

data "aws_region" "current" {}

# ----------------------------------------------------------------------------- log group
# Created here, with a retention, before the function exists (depends_on below), so Lambda
# never creates /aws/lambda/<name> itself with unlimited retention; and the role is not
# allowed logs:CreateLogGroup, so it cannot.

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
}

# ----------------------------------------------------------------------------------- IAM

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "LambdaAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  # IAM is global: the region in the name lets the same stack name exist in two regions.
  name                 = "${var.name}-${data.aws_region.current.name}"
  description          = "Execution role of the ${var.name} Lambda function"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "permissions" {
  # Exactly the operations runtime/dynamodb.c sends (tests/terraform/check.sh compares the
  # two sets), on this one table.
  statement {
    sid    = "TaskTableItems"
    effect = "Allow"
    actions = [
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [var.table.arn]
  }

  # Log writes to the function's own log group (":*" = its log streams).
  statement {
    sid    = "FunctionLogs"
    effect = "Allow"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  # X-Ray's write actions support no resource-level permissions, so "*" is the only possible
  # resource; present only when tracing is on.
  dynamic "statement" {
    for_each = var.enable_tracing ? [1] : []
    content {
      sid    = "XRayWrite"
      effect = "Allow"
      actions = [
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "${var.name}-permissions"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.permissions.json
}

# ------------------------------------------------------------------------------ function

resource "aws_lambda_function" "this" {
  function_name = var.name
  description   = "taskhost: Task CRUD API (C + Lua 5.4)"
  role          = aws_iam_role.function.arn

  # The custom runtime runs the file named bootstrap at the zip root, which is the taskhost
  # binary itself (scripts/package.sh); the handler is only passed to it as _HANDLER.
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]

  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)

  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency

  # The environment holds TASKHOST_CURSOR_SECRET: a key of the caller's encrypts it at rest.
  kms_key_arn = var.kms_key_arn

  environment {
    # Last, so var.environment cannot override them: TABLE_NAME always comes from the table
    # resource, and the explicit store makes a missing TABLE_NAME an init error ("needs
    # TABLE_NAME") instead of a fallback to the embedded SQLite store.
    variables = merge(var.environment, {
      TASKHOST_STORE = "dynamodb"
      TABLE_NAME     = var.table.name
    })
  }

  # Sets AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL, which taskhost reads, and sends
  # the logs to the group created above.
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.function.name
    application_log_level = var.log_level
    system_log_level      = "INFO"
  }

  tracing_config {
    mode = var.enable_tracing ? "Active" : "PassThrough"
  }

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]
}
