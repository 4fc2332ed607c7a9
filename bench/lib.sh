# bench/lib.sh — what bench/run.sh and bench/compare.sh share: the Lambda
# environment, the event templates and the per-operation plan. Sourced; needs
# $ENDPOINT and $TABLE_NAME set, and jq.

# The variables Lambda gives a provided.al2023 function (as tests/package/lib.sh),
# with a session token of a real one's length (it is signed into every request).
TOKEN="IQoJb3JpZ2luX2VjEBench$(printf 'A%.0s' $(seq 1 780))"
lambda_env() {
  local root_dir=$1
  LAMBDA_ENV=(
    "_HANDLER=bootstrap" "LAMBDA_TASK_ROOT=$root_dir" "LAMBDA_RUNTIME_DIR=/var/runtime"
    "AWS_REGION=us-east-1" "AWS_DEFAULT_REGION=us-east-1"
    "AWS_ACCESS_KEY_ID=ASIABENCHMARKEXAMPLE" "AWS_SECRET_ACCESS_KEY=benchmarkSecretAccessKeyExample0123456789"
    "AWS_SESSION_TOKEN=$TOKEN"
    "AWS_LAMBDA_FUNCTION_NAME=taskhost" "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128"
    "AWS_LAMBDA_FUNCTION_VERSION=\$LATEST" "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand"
    "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/taskhost"
    "AWS_LAMBDA_LOG_STREAM_NAME=2025/01/01/[\$LATEST]0123456789abcdef0123456789abcdef"
    "AWS_XRAY_CONTEXT_MISSING=LOG_ERROR" "AWS_XRAY_DAEMON_ADDRESS=169.254.79.129:2000"
    "TZ=:UTC" "LANG=en_US.UTF-8" "PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin"
    "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:$root_dir:$root_dir/lib:/opt/lib"
    "TABLE_NAME=$TABLE_NAME" "AWS_ENDPOINT_URL_DYNAMODB=$ENDPOINT"
  )
  # BENCH_CLAIMS=1: accounts on, as Terraform deploys them (the events carry the claims);
  # BENCH_AUTH overrides TASKHOST_AUTH (none with claims: what reading them costs).
  if [ "${BENCH_CLAIMS:-0}" = 1 ]; then LAMBDA_ENV+=("TASKHOST_AUTH=${BENCH_AUTH:-jwt}"); fi
  # BENCH_METRICS=off: no EMF line (what the metrics cost, same binary).
  if [ -n "${BENCH_METRICS:-}" ]; then LAMBDA_ENV+=("TASKHOST_METRICS=$BENCH_METRICS"); fi
}

# An HTTP API (payload 2.0) event as API Gateway sends it; @ID@ is a task id. With
# BENCH_CLAIMS=1 it carries what the JWT authorizer adds for a Cognito access token (every
# claim a string, as API Gateway passes them) and the Authorization header it checked.
event() {
  jq -n -c --arg m "$1" --arg p "$2" --arg b "${3:-}" --arg claims "${BENCH_CLAIMS:-0}" '
  {version: "2.0", routeKey: "$default", rawPath: $p, rawQueryString: "",
   headers: ({accept: "*/*", "content-length": ($b | length | tostring),
     host: "abcdef1234.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.5.0",
     "x-amzn-trace-id": "Root=1-5e9f0c65-1de4d666d4dd26aced652b6c", "x-forwarded-for": "203.0.113.7",
     "x-forwarded-port": "443", "x-forwarded-proto": "https"}
     + (if $b != "" then {"content-type": "application/json"} else {} end)),
   requestContext: {accountId: "123456789012", apiId: "abcdef1234",
     domainName: "abcdef1234.execute-api.us-east-1.amazonaws.com", domainPrefix: "abcdef1234",
     http: {method: $m, path: $p, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "curl/8.5.0"},
     requestId: "LV7fzho-PHcEJPw=", routeKey: "$default", stage: "$default",
     time: "21/Apr/2020:15:08:21 +0000", timeEpoch: 1587481701067},
   isBase64Encoded: false} + (if $b != "" then {body: $b} else {} end)
  | if $claims == "1" then
      .headers.authorization = "Bearer eyJraWQiOiJiZW5jaCIsImFsZyI6IlJTMjU2In0.\("x" * 600).\("s" * 342)"
      | .requestContext.authorizer = {jwt: {scopes: null, claims: {
          sub: "4b1c8e2a-90f1-7000-a1d2-5e6f7a8b9c0d",
          "cognito:groups": "[users]",
          iss: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI",
          client_id: "3n4b5urk1ft4fl3mg5e62d9ado", origin_jti: "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
          event_id: "1a2b3c4d-5e6f-7890-abcd-ef1234567890", token_use: "access",
          scope: "aws.cognito.signin.user.admin", auth_time: "1796300000", exp: "1796303600",
          iat: "1796300000", jti: "9f8e7d6c-5b4a-3210-fedc-ba9876543210",
          username: "4b1c8e2a-90f1-7000-a1d2-5e6f7a8b9c0d"}}}
    else . end'
}

plan_ops() { # count warmup (event templates in $ev)
  local n=$1 w=$2
  printf '%s %s %s %s\n' create "$n" "$w" "$ev/create.json" get "$n" "$w" "$ev/get.json" \
    list "$n" "$w" "$ev/list.json" update "$n" "$w" "$ev/update.json" \
    delete "$n" "$w" "$ev/delete.json"
}

# write_events DIR: the five event templates (@ID@: a task id).
write_events() {
  local dir=$1
  mkdir -p "$dir"
  event POST /tasks '{"task":"Write the benchmark report","priority":"high"}' >"$dir/create.json"
  event GET '/tasks/@ID@' >"$dir/get.json"
  event GET /tasks >"$dir/list.json"
  event PUT '/tasks/@ID@' '{"status":"in_progress"}' >"$dir/update.json"
  event DELETE '/tasks/@ID@' >"$dir/delete.json"
}
