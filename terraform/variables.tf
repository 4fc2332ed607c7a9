# Every input of the root module. Each one has a type, a description and, where a bad value
# would only fail half-way through an apply, a validation that fails at plan time instead.
# The README's Deployment section lists them in a table.

variable "name" {
  description = "Base name of every resource: the Lambda function and its IAM role, the API, the log groups; the table is \"<name>-user-tasks\", the user pool and app client \"<name>\". Use a different name for each copy of the stack in one account and region."
  type        = string
  default     = "taskhost"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,39}$", var.name))
    error_message = "name must start with a letter and have at most 40 letters, digits, '-' or '_' (it becomes the function name and part of the IAM role name)."
  }
}

variable "region" {
  description = "AWS region to deploy to. null uses the AWS CLI/SDK default (AWS_REGION, AWS_DEFAULT_REGION, or the profile's region)."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
  }
}

variable "architecture" {
  description = "The function's instruction set: \"arm64\" (Graviton: 20 % cheaper per GB-second) or \"x86_64\". The package must be built for it (scripts/package.sh --arch; scripts/deploy.sh does so and refuses a zip whose bootstrap is for the other one)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\" (Lambda's two)."
  }
}

variable "package_path" {
  description = "The Lambda zip written by scripts/package.sh, relative to this directory (terraform/) or absolute; null: ../dist/taskhost-lambda-<architecture>.zip, the one scripts/package.sh --arch <architecture> writes. Its SHA-256 is the function's source_code_hash, so a re-zipped package is redeployed."
  type        = string
  default     = null

  validation {
    condition     = var.package_path == null || endswith(coalesce(var.package_path, ".zip"), ".zip")
    error_message = "package_path must name the .zip file written by scripts/package.sh."
  }
}

variable "memory_size" {
  description = "Lambda memory in MB (CPU is proportional to it). 128 is plenty for taskhost; the price per GB-second is the same at every size."
  type        = number
  default     = 128

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB from 128 to 10240."
  }
}

variable "timeout" {
  description = "Lambda timeout in seconds. The route scripts' budget and the DynamoDB retries end before it. API Gateway HTTP APIs give up after 30 s, so a longer timeout would only be billed."
  type        = number
  default     = 10

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 30 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds from 1 to 30 (the HTTP API integration limit)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the function: a hard cap on parallel instances (and so on cost and on DynamoDB load). null leaves the function on the account's unreserved pool; 0 stops all invocations."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrency == null || try(var.reserved_concurrency >= 0 && floor(var.reserved_concurrency) == var.reserved_concurrency, false)
    error_message = "reserved_concurrency must be null or a whole number >= 0."
  }
}

variable "log_level" {
  description = "Application log level, passed by Lambda's advanced logging controls as AWS_LAMBDA_LOG_LEVEL (which taskhost reads); Lambda also drops JSON lines below it."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "log_retention_days" {
  description = "Retention of both log groups (the function's and the API's access log), in days."
  type        = number
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "cors_origin" {
  description = "The one origin allowed to call the API from a browser (\"*\" for any). Used at both layers from this one value: API Gateway's CORS configuration (preflight) and the function's TASKHOST_CORS_ORIGIN (every response)."
  type        = string
  default     = "*"

  validation {
    condition     = var.cors_origin == "*" || can(regex("^https?://[^/*\\s]+$", var.cors_origin))
    error_message = "cors_origin must be \"*\" or an origin such as https://app.example.com (scheme and host, optional port, no path or trailing slash)."
  }
}

variable "cors_max_age" {
  description = "Seconds a browser may cache a CORS preflight answered by API Gateway (the function's own preflight answer uses 600)."
  type        = number
  default     = 600

  validation {
    condition     = var.cors_max_age >= 0 && var.cors_max_age <= 86400 && floor(var.cors_max_age) == var.cors_max_age
    error_message = "cors_max_age must be a whole number of seconds from 0 to 86400."
  }
}

variable "stage_name" {
  description = "API Gateway stage. \"$default\" serves at the API's root URL; another name (e.g. \"dev\") puts it in the path (…/dev/tasks), which taskhost strips."
  type        = string
  default     = "$default"

  validation {
    condition     = var.stage_name == "$default" || can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "stage_name must be \"$default\" or letters, digits, '-' and '_'."
  }
}

variable "throttling_rate_limit" {
  description = "Stage throttling: steady-state requests per second across all routes (API Gateway answers 429 above it)."
  type        = number
  default     = 50

  validation {
    condition     = var.throttling_rate_limit > 0
    error_message = "throttling_rate_limit must be positive."
  }
}

variable "throttling_burst_limit" {
  description = "Stage throttling: the burst of requests allowed above the rate limit."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_burst_limit >= 0 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "throttling_burst_limit must be a whole number >= 0."
  }
}

variable "deletion_protection" {
  description = "Deletion protection of the DynamoDB table and of the Cognito user pool (auth = \"cognito\"). Keep it true; scripts/teardown.sh sets it to false (one apply) just before it destroys the stack."
  type        = bool
  default     = true
}

variable "enable_tracing" {
  description = "X-Ray active tracing of the function. Adds the X-Ray write actions (which have no resource-level permissions, hence Resource \"*\") to the function's role only when true."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for every resource (added to Project = \"taskhost\" and ManagedBy = \"terraform\")."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key that encrypts the function's environment variables (TASKHOST_CURSOR_SECRET among them) at rest. null: Lambda's AWS managed key (aws/lambda). With a key of yours, key policy and CloudTrail decide and show who can read the secret; the deployer needs kms:Encrypt/kms:CreateGrant on it and the function's role gets nothing more (Lambda decrypts through a grant)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "table_max_read_request_units" {
  description = "Cost guard: the most read request units per second the on-demand table serves (DynamoDB throttles above it; the API answers 503 with Retry-After). 4000 RRU/s is ~$1.8 an hour at us-east-1's on-demand price, and far above what the default stage throttling (50 requests/s) can ask for. -1: no cap."
  type        = number
  default     = 4000

  validation {
    condition     = var.table_max_read_request_units == -1 || (var.table_max_read_request_units >= 1 && floor(var.table_max_read_request_units) == var.table_max_read_request_units)
    error_message = "table_max_read_request_units must be -1 (no cap) or a whole number >= 1."
  }
}

variable "table_max_write_request_units" {
  description = "Cost guard: the most write request units per second the on-demand table accepts (DynamoDB throttles above it; the API answers 503 with Retry-After). 1000 WRU/s is ~$2.3 an hour at us-east-1's on-demand price. -1: no cap."
  type        = number
  default     = 1000

  validation {
    condition     = var.table_max_write_request_units == -1 || (var.table_max_write_request_units >= 1 && floor(var.table_max_write_request_units) == var.table_max_write_request_units)
    error_message = "table_max_write_request_units must be -1 (no cap) or a whole number >= 1."
  }
}

variable "auth" {
  description = "Who may call the API. \"cognito\": a Cognito user pool (email sign-in) and app client are created, and API Gateway's JWT authorizer accepts their tokens; \"jwt\": the authorizer accepts tokens of your own OIDC issuer (Auth0, Okta, Entra ID, ...: set jwt_issuer and jwt_audience); \"none\": no authorizer, every task belongs to the one owner \"public\" (anyone with the URL reads and changes every task). Each user sees only their own tasks (owner = the token's sub)."
  type        = string
  default     = "cognito"

  validation {
    condition     = contains(["cognito", "jwt", "none"], var.auth)
    error_message = "auth must be \"cognito\", \"jwt\" or \"none\"."
  }
}

variable "jwt_issuer" {
  description = "With auth = \"jwt\": the issuer URL of your identity provider, exactly the iss of its tokens (e.g. https://example.eu.auth0.com/); API Gateway reads <issuer>/.well-known/openid-configuration for its keys. Ignored otherwise."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_issuer == null || can(regex("^https://[^\\s/?#]+(/[^\\s?#]*)?$", var.jwt_issuer))
    error_message = "jwt_issuer must be an https:// URL without a query or fragment (API Gateway fetches the issuer's discovery document over HTTPS)."
  }
}

variable "jwt_audience" {
  description = "With auth = \"jwt\": the audiences API Gateway accepts: a token passes when its aud, or (without aud) its client_id, is one of them. At least one. Ignored otherwise."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.jwt_audience : trimspace(a) != ""])
    error_message = "jwt_audience must not hold empty strings."
  }
}

# ------------------------------------------------------------- monitoring (monitoring.tf)

variable "alarm_email" {
  description = "An e-mail address the alarm topic (SNS) mails every alarm and recovery to; AWS first sends it a confirmation link. null: no subscription (subscribe a pager, chat or another address to the topic yourself; its ARN is the alarm_topic_arn output)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be null or an e-mail address."
  }
}

variable "alarm_5xx_threshold" {
  description = "The API 5xx and runtime 5xx alarms fire at this many 5xx answers in 5 minutes."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_5xx_threshold >= 1 && floor(var.alarm_5xx_threshold) == var.alarm_5xx_threshold
    error_message = "alarm_5xx_threshold must be a whole number >= 1."
  }
}

variable "alarm_store_retries_threshold" {
  description = "The store-retries alarm fires at this many DynamoDB retries (summed over requests, runtime EMF metric StoreRetries) in 5 minutes."
  type        = number
  default     = 20

  validation {
    condition     = var.alarm_store_retries_threshold >= 1 && floor(var.alarm_store_retries_threshold) == var.alarm_store_retries_threshold
    error_message = "alarm_store_retries_threshold must be a whole number >= 1."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the runtime's EMF metrics (the function's TASKHOST_METRICS_NAMESPACE; the alarms and the dashboard read it). Stacks in one account and region may share it: the Service dimension is each function's name."
  type        = string
  default     = "taskhost"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#: -]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1 to 255 of A-Z a-z 0-9 . - _ / # : and space, and not start with AWS/ (the runtime refuses anything else at start)."
  }
}

# ---------------------------------------------------------- custom domain (domain.tf)

variable "domain_name" {
  description = "A custom domain for the API (api.example.com); null: none, the API is reached at its execute-api URL only. Needs domain_zone_id (the certificate is then requested and DNS-validated there) or domain_certificate_arn."
  type        = string
  default     = null

  validation {
    condition     = var.domain_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be null or a lower-case DNS name such as api.example.com."
  }
}

variable "domain_zone_id" {
  description = "With domain_name: the Route 53 hosted zone that holds it. The certificate's validation records and the domain's A/AAAA alias records are created there. null: manage DNS yourself (then domain_certificate_arn is needed, and point the name at the api_domain_target output)."
  type        = string
  default     = null
}

variable "domain_certificate_arn" {
  description = "With domain_name: an ISSUED ACM certificate for it in the stack's region, to use instead of requesting one. null: request one (DNS validation in domain_zone_id)."
  type        = string
  default     = null

  validation {
    condition     = var.domain_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.domain_certificate_arn))
    error_message = "domain_certificate_arn must be null or an ACM certificate ARN."
  }
}

# ------------------------------------------------- API type, WAF, usage plans (rest.tf)

variable "api_type" {
  description = "The API Gateway flavour in front of the function. \"http\": an HTTP API (payload 2.0, JWT authorizer; the cheapest). \"rest\": a REST API (payload 1.0, Cognito user-pool authorizer) with an AWS WAF web ACL (var.waf) and usage plans with API keys (var.api_clients), which HTTP APIs do not have. docs/deployment.md compares them."
  type        = string
  default     = "http"

  validation {
    condition     = contains(["http", "rest"], var.api_type)
    error_message = "api_type must be \"http\" or \"rest\"."
  }
}

variable "waf" {
  description = "With api_type = \"rest\": put an AWS WAF web ACL (managed rule groups, a rate limit per client IP, logging) in front of the stage. null: on for \"rest\". HTTP APIs cannot have one: true with api_type = \"http\" is refused at plan time."
  type        = bool
  default     = null
}

variable "waf_mode" {
  description = "What the web ACL's rules do with a matching request: \"count\" (only count and log it: a first rollout, to see what would be blocked) or \"block\" (answer 403)."
  type        = string
  default     = "block"

  validation {
    condition     = contains(["count", "block"], var.waf_mode)
    error_message = "waf_mode must be \"count\" or \"block\"."
  }
}

variable "waf_rate_limit" {
  description = "The WAF rate-based rule: the most requests one client IP may send in any 5 minutes (AWS WAF's window) before its further requests are blocked (or counted, waf_mode = \"count\"). 100 to 2000000000."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit >= 100 && var.waf_rate_limit <= 2000000000 && floor(var.waf_rate_limit) == var.waf_rate_limit
    error_message = "waf_rate_limit must be a whole number from 100 to 2000000000 (AWS WAF's bounds for a rate-based rule)."
  }
}

variable "api_clients" {
  description = "With api_type = \"rest\": the partners (or apps) that get an API key, by name; each gets its own key and usage plan with a quota (requests per DAY, WEEK or MONTH; null: none) and a throttle (requests per second and burst; null: the stage's). When any is defined every method except OPTIONS requires an x-api-key header (on top of the authorizer). The keys' ids are the api_key_ids output; their values never appear in an output. Refused with api_type = \"http\" (HTTP APIs have no API keys)."
  type = map(object({
    quota_limit  = optional(number)
    quota_period = optional(string, "MONTH")
    rate_limit   = optional(number)
    burst_limit  = optional(number)
  }))
  default = {}

  validation {
    condition = alltrue([for k, c in var.api_clients : can(regex("^[A-Za-z0-9_-]{1,64}$", k)) &&
      contains(["DAY", "WEEK", "MONTH"], c.quota_period) &&
      (c.quota_limit == null || try(c.quota_limit >= 1 && floor(c.quota_limit) == c.quota_limit, false)) &&
      (c.rate_limit == null || try(c.rate_limit > 0, false)) &&
    (c.burst_limit == null || try(c.burst_limit >= 0 && floor(c.burst_limit) == c.burst_limit, false))])
    error_message = "api_clients: each name is 1 to 64 letters, digits, '-' or '_'; quota_period is DAY, WEEK or MONTH; quota_limit a whole number >= 1 or null; rate_limit > 0 or null; burst_limit a whole number >= 0 or null."
  }
}

variable "manage_apigateway_account" {
  description = "With api_type = \"rest\": set the region's API Gateway account setting (one per account and region) to a role that lets API Gateway write the REST stage's access log to CloudWatch Logs. REST APIs need it for access logging; HTTP APIs do not. false: it is already set (by another stack or by hand)."
  type        = bool
  default     = true
}
