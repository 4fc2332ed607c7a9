variable "name" {
  description = "Function name; also names the log group (/aws/lambda/<name>) and the IAM role (<name>-<region>)."
  type        = string
}

variable "package_path" {
  description = "Path of the deployment zip (bootstrap at its root, plus lua/; lib/ only for a --system-libs package)."
  type        = string
}

variable "architecture" {
  description = "arm64 or x86_64: what the package's bootstrap was built for."
  type        = string

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "table" {
  description = "The DynamoDB table the function uses: pass the aws_dynamodb_table resource itself. Its name becomes TABLE_NAME and its ARN the only resource of the DynamoDB permissions."
  type = object({
    name = string
    arn  = string
  })
}

variable "environment" {
  description = "Further environment variables of the function (TASKHOST_STORE=dynamodb and TABLE_NAME from var.table are set by the module and cannot be overridden here)."
  type        = map(string)
  default     = {}
}

variable "memory_size" {
  description = "Memory in MB."
  type        = number
  default     = 128
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
  default     = 10
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; null for none (the account's unreserved pool)."
  type        = number
  default     = null
}

variable "log_level" {
  description = "Application log level (Lambda passes it as AWS_LAMBDA_LOG_LEVEL and filters JSON lines below it)."
  type        = string
  default     = "INFO"
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
  default     = 14
}

variable "enable_tracing" {
  description = "X-Ray active tracing; when true the role also gets X-Ray's write actions."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the environment variables at rest; null: Lambda's AWS managed key."
  type        = string
  default     = null
}
