/* config — the process configuration, read once from the environment at start.
 * Names follow the AWS conventions first, then our own TASKHOST_* (see README).
 * An invalid value fails th_config_from_env with one line naming the variable.
 * Ownership: th_config owns its strings; th_config_free releases them. */
#ifndef TH_CONFIG_H
#define TH_CONFIG_H

#include <stddef.h>

#include "common.h"

typedef enum th_store_kind { TH_STORE_SQLITE, TH_STORE_DYNAMODB } th_store_kind;

/* TASKHOST_METRICS: where the per-invocation EMF line goes (metrics.h).
 * on (default): stdout in Lambda mode, nowhere in --local and --serve;
 * stderr: on stderr in every mode (local inspection); off: nowhere. */
typedef enum th_metrics_mode { TH_METRICS_ON, TH_METRICS_OFF, TH_METRICS_STDERR } th_metrics_mode;

/* TASKHOST_AUTH: none (every task belongs to "public") or jwt (auth.h). */
typedef enum th_auth_mode { TH_AUTH_NONE, TH_AUTH_JWT } th_auth_mode;

typedef struct th_config {
  th_store_kind store_kind;
  char *sqlite_path;          /* TASKHOST_STORE=sqlite:<path> (default ./taskhost.db) */
  char *table_name;           /* TABLE_NAME */
  char *routes_dir;           /* TASKHOST_ROUTES (default: lua/ beside the binary) */
  char *cors_origin;          /* TASKHOST_CORS_ORIGIN (default "*") */
  char *cursor_secret;        /* TASKHOST_CURSOR_SECRET (default: fixed, see README) */
  size_t max_body_bytes;      /* TASKHOST_MAX_BODY_BYTES (default 65536) */
  size_t lua_memory_bytes;    /* TASKHOST_LUA_MEMORY_MB (default 64) */
  long long lua_instructions; /* TASKHOST_LUA_INSTRUCTIONS per request (default 50M) */
  int lua_timeout_ms;         /* TASKHOST_LUA_TIMEOUT_MS per request (default 5000) */
  int workers;                /* TASKHOST_WORKERS for --serve (default 4) */
  long long idempotency_ttl_s; /* TASKHOST_IDEMPOTENCY_TTL_S: how long an
                                  Idempotency-Key is remembered (default 86400) */
  int log_level;              /* th_log_level; AWS_LAMBDA_LOG_LEVEL or TASKHOST_LOG_LEVEL */
  int log_json;               /* AWS_LAMBDA_LOG_FORMAT: JSON (default) or Text */
  th_metrics_mode metrics;    /* TASKHOST_METRICS (above) */
  char metrics_namespace[256]; /* TASKHOST_METRICS_NAMESPACE (default "taskhost"): 1..255
                                  of A-Z a-z 0-9 . - _ / # : and space, not AWS/... */
  char metrics_service[65];    /* the Service dimension: AWS_LAMBDA_FUNCTION_NAME (Lambda
                                  sets it), else "taskhost" */

  /* Accounts. TASKHOST_AUTH (default none). The three below are read only
   * with jwt (NULL / 0 otherwise), and needed only by --serve, which verifies
   * tokens itself (th_config_check_serve); in Lambda and --local API Gateway
   * has verified the token and taskhost reads its claims. */
  th_auth_mode auth;
  char *jwks;                 /* TASKHOST_JWKS: a file path or an http(s) URL */
  char *jwt_issuer;           /* TASKHOST_JWT_ISSUER, compared byte for byte */
  char **jwt_audiences;       /* TASKHOST_JWT_AUDIENCE split on commas, each */
  size_t jwt_naudiences;      /* trimmed of spaces and tabs, none empty */

  /* DynamoDB: read and checked only when store_kind is TH_STORE_DYNAMODB
   * (all NULL / 0 otherwise). The credentials are secrets: no error message
   * or log line ever shows them. Credentials come from the environment only
   * (Lambda sets them from the function's role); no profiles, no IMDS. */
  char *aws_region;            /* AWS_REGION, else AWS_DEFAULT_REGION */
  char *aws_access_key_id;     /* AWS_ACCESS_KEY_ID */
  char *aws_secret_access_key; /* AWS_SECRET_ACCESS_KEY */
  char *aws_session_token;     /* AWS_SESSION_TOKEN, or NULL */
  /* AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL (both ignored when
   * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), else
   * https://dynamodb.<region>.<the DNS suffix of the region's partition>
   * (partition.h: amazonaws.com, amazonaws.com.cn, c2s.ic.gov, ...).
   * Checked: http or https, a host, an optional port, no path/query/userinfo. */
  char *dynamodb_endpoint;
  int aws_max_attempts;        /* AWS_MAX_ATTEMPTS, 1..20 (default 3) */
} th_config;

/* exe_dir: folder of the running binary (for the default routes folder). */
/* th_config_free wipes the credential strings before freeing them. */
th_result th_config_from_env(th_config *c, const char *exe_dir, char *err, size_t errlen);
/* What --serve needs on top: with TASKHOST_AUTH=jwt, TASKHOST_JWKS,
 * TASKHOST_JWT_ISSUER and TASKHOST_JWT_AUDIENCE. TH_ERR_INVALID with one
 * line naming the missing ones. */
th_result th_config_check_serve(const th_config *c, char *err, size_t errlen);
void th_config_free(th_config *c);

#endif
