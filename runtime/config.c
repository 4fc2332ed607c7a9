#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "log.h"
#include "partition.h"
#include "sigv4.h"

static const char *env(const char *name) {
  const char *v = getenv(name);
  return (v && *v) ? v : NULL;
}

/* Reads a whole-number variable in [lo, hi]; anything else is an error. */
static th_result env_int(const char *name, long long def, long long lo, long long hi,
                         long long *out, char *err, size_t errlen) {
  const char *v = env(name);
  if (!v) {
    *out = def;
    return TH_OK;
  }
  char *end = NULL;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || end == v || *end != '\0' || n < lo || n > hi) {
    snprintf(err, errlen, "invalid %s='%s': expected a whole number from %lld to %lld", name, v,
             lo, hi);
    return TH_ERR_INVALID;
  }
  *out = n;
  return TH_OK;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Names of DynamoDB tables: 3..255 of [A-Za-z0-9_.-]. */
static int valid_table(const char *s) {
  size_t n = strlen(s);
  if (n < 3 || n > 255)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* Region names: letters, digits and '-' ("eu-west-1", "us-gov-west-1"). */
static int valid_region(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 64)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '-'))
      return 0;
  return 1;
}

/* Credentials are visible ASCII (what SigV4 can carry); an access key id
 * also has no '/' or ','. The value never appears in the message. */
static th_result check_secret(const char *name, const char *v, size_t max, int key_id, char *err,
                              size_t errlen) {
  size_t n = strlen(v);
  int ok = n <= max;
  for (const char *p = v; ok && *p; p++)
    ok = *p > 0x20 && *p < 0x7f && !(key_id && (*p == '/' || *p == ','));
  if (ok)
    return TH_OK;
  snprintf(err, errlen, "invalid %s (value not shown): %s", name,
           n > max ? "too long" : "must be printable ASCII without spaces");
  return TH_ERR_INVALID;
}

/* The DynamoDB settings (config.h); called only for TASKHOST_STORE=dynamodb. */
static th_result read_aws(th_config *c, char *err, size_t errlen) {
  long long n;
  const char *region_var = env("AWS_REGION") ? "AWS_REGION" : "AWS_DEFAULT_REGION";
  const char *region = env(region_var);
  if (!valid_table(c->table_name)) {
    snprintf(err, errlen, "invalid TABLE_NAME='%.100s': DynamoDB table names are 3 to 255 characters "
             "of A-Z a-z 0-9 _ - .", c->table_name);
    return TH_ERR_INVALID;
  }
  if (!region) {
    snprintf(err, errlen, "TASKHOST_STORE=dynamodb needs AWS_REGION (or AWS_DEFAULT_REGION) to be set");
    return TH_ERR_INVALID;
  }
  if (!valid_region(region)) {
    snprintf(err, errlen, "invalid %s='%.100s': expected a region name such as eu-west-1", region_var,
             region);
    return TH_ERR_INVALID;
  }
  const char *akid = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
  const char *token = env("AWS_SESSION_TOKEN");
  if (!akid || !secret) {
    snprintf(err, errlen, "TASKHOST_STORE=dynamodb needs AWS credentials: %s not set (on Lambda "
             "they come from the function's role)",
             !akid && !secret ? "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are"
             : !akid          ? "AWS_ACCESS_KEY_ID is"
                              : "AWS_SECRET_ACCESS_KEY is");
    return TH_ERR_INVALID;
  }
  if (check_secret("AWS_ACCESS_KEY_ID", akid, TH_SIGV4_MAX_CREDENTIAL, 1, err, errlen) ||
      check_secret("AWS_SECRET_ACCESS_KEY", secret, TH_SIGV4_MAX_CREDENTIAL, 0, err, errlen) ||
      (token && check_secret("AWS_SESSION_TOKEN", token, TH_SIGV4_MAX_TOKEN, 0, err, errlen)))
    return TH_ERR_INVALID;
  /* ASIA… ids are temporary (STS) credentials: AWS refuses every request
   * signed with one unless its session token goes along. */
  if (strncmp(akid, "ASIA", 4) == 0 && !token) {
    snprintf(err, errlen, "AWS_SESSION_TOKEN is not set, but AWS_ACCESS_KEY_ID (value not shown) is "
             "a temporary key (ASIA...) that is refused without its session token");
    return TH_ERR_INVALID;
  }

  const char *ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  int use_env = !(ignore && strcasecmp(ignore, "true") == 0);
  const char *endpoint_var = use_env && env("AWS_ENDPOINT_URL_DYNAMODB") ? "AWS_ENDPOINT_URL_DYNAMODB"
                             : use_env && env("AWS_ENDPOINT_URL")        ? "AWS_ENDPOINT_URL"
                                                                         : NULL;
  if (endpoint_var) {
    const char *url = env(endpoint_var), *why = NULL;
    th_http_url parsed;
    if (th_http_parse_url(url, &parsed, &why) != TH_OK) {
      /* A URL with user information may carry a password: not echoed. */
      if (strchr(url, '@'))
        snprintf(err, errlen, "invalid %s (value not shown): %s", endpoint_var, why);
      else
        snprintf(err, errlen, "invalid %s='%.200s': %s", endpoint_var, url, why);
      return TH_ERR_INVALID;
    }
    c->dynamodb_endpoint = strdup(url);
  } else {
    /* The regional endpoint, in the region's partition (partition.h). */
    const char *suffix = th_partition_of(region)->dns_suffix;
    size_t len = strlen("https://dynamodb..") + strlen(region) + strlen(suffix) + 1;
    if ((c->dynamodb_endpoint = malloc(len)))
      snprintf(c->dynamodb_endpoint, len, "https://dynamodb.%s.%s", region, suffix);
  }
  if (env_int("AWS_MAX_ATTEMPTS", 3, 1, 20, &n, err, errlen))
    return TH_ERR_INVALID;
  c->aws_max_attempts = (int)n;
  c->aws_region = strdup(region);
  c->aws_access_key_id = strdup(akid);
  c->aws_secret_access_key = strdup(secret);
  c->aws_session_token = dup_or_null(token);
  if (!c->dynamodb_endpoint || !c->aws_region || !c->aws_access_key_id ||
      !c->aws_secret_access_key || (token && !c->aws_session_token)) {
    snprintf(err, errlen, "out of memory reading the configuration");
    return TH_ERR_NOMEM;
  }
  return TH_OK;
}

/* TASKHOST_JWT_AUDIENCE: comma-separated, each entry trimmed of spaces and
 * tabs; an empty entry is a mistake (",," or a trailing comma), not skipped. */
/* TASKHOST_METRICS, TASKHOST_METRICS_NAMESPACE and the Service dimension
 * (config.h). CloudWatch refuses a namespace outside its character set or
 * in the AWS/ space reserved for AWS services. */
static th_result read_metrics(th_config *c, char *err, size_t errlen) {
  static const char ns_chars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_/#: ";
  static const char name_chars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char *mode = env("TASKHOST_METRICS");
  c->metrics = TH_METRICS_ON;
  if (mode && strcasecmp(mode, "off") == 0)
    c->metrics = TH_METRICS_OFF;
  else if (mode && strcasecmp(mode, "stderr") == 0)
    c->metrics = TH_METRICS_STDERR;
  else if (mode && strcasecmp(mode, "on") != 0) {
    snprintf(err, errlen, "invalid TASKHOST_METRICS: expected on, off or stderr");
    return TH_ERR_INVALID;
  }
  const char *ns = env("TASKHOST_METRICS_NAMESPACE");
  if (!ns)
    ns = "taskhost";
  size_t n = strlen(ns);
  if (n == 0 || n >= sizeof c->metrics_namespace || strspn(ns, ns_chars) != n ||
      strncmp(ns, "AWS/", 4) == 0) {
    snprintf(err, errlen,
             "invalid TASKHOST_METRICS_NAMESPACE: 1 to 255 of A-Z a-z 0-9 . - _ / # : and "
             "space, not starting with AWS/");
    return TH_ERR_INVALID;
  }
  memcpy(c->metrics_namespace, ns, n + 1);
  /* Lambda's function names: 1..64 letters, digits, - and _ (a name Lambda
   * would not set is not used: the dimension stays the default). */
  const char *fn = env("AWS_LAMBDA_FUNCTION_NAME");
  size_t fl = fn ? strlen(fn) : 0;
  if (!fn || fl >= sizeof c->metrics_service || strspn(fn, name_chars) != fl)
    fn = "taskhost";
  snprintf(c->metrics_service, sizeof c->metrics_service, "%s", fn);
  return TH_OK;
}

static th_result split_audiences(th_config *c, const char *v, char *err, size_t errlen) {
  size_t n = 1;
  for (const char *p = v; *p; p++)
    n += *p == ',';
  c->jwt_audiences = calloc(n, sizeof *c->jwt_audiences);
  if (!c->jwt_audiences)
    goto nomem;
  for (const char *p = v;; p++) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len > 0 && (*p == ' ' || *p == '\t')) {
      p++;
      len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    if (len == 0) {
      snprintf(err, errlen, "invalid TASKHOST_JWT_AUDIENCE='%.200s': an empty entry; expected "
               "audiences (app client ids) separated by commas", v);
      return TH_ERR_INVALID;
    }
    if (!(c->jwt_audiences[c->jwt_naudiences] = strndup(p, len)))
      goto nomem;
    c->jwt_naudiences++;
    if (!end)
      return TH_OK;
    p = end;
  }
nomem:
  snprintf(err, errlen, "out of memory reading the configuration");
  return TH_ERR_NOMEM;
}

/* TASKHOST_AUTH and, with jwt, the verifier's settings (config.h). */
static th_result read_auth(th_config *c, char *err, size_t errlen) {
  const char *mode = env("TASKHOST_AUTH");
  if (!mode || strcmp(mode, "none") == 0) {
    c->auth = TH_AUTH_NONE;
    return TH_OK;
  }
  if (strcmp(mode, "jwt") != 0) {
    snprintf(err, errlen, "invalid TASKHOST_AUTH='%.100s': expected 'none' or 'jwt'", mode);
    return TH_ERR_INVALID;
  }
  c->auth = TH_AUTH_JWT;
  const char *jwks = env("TASKHOST_JWKS"), *issuer = env("TASKHOST_JWT_ISSUER");
  const char *audience = env("TASKHOST_JWT_AUDIENCE");
  if ((jwks && !(c->jwks = strdup(jwks))) || (issuer && !(c->jwt_issuer = strdup(issuer)))) {
    snprintf(err, errlen, "out of memory reading the configuration");
    return TH_ERR_NOMEM;
  }
  return audience ? split_audiences(c, audience, err, errlen) : TH_OK;
}

th_result th_config_check_serve(const th_config *c, char *err, size_t errlen) {
  if (c->auth != TH_AUTH_JWT || (c->jwks && c->jwt_issuer && c->jwt_naudiences))
    return TH_OK;
  const char *names[3];
  size_t n = 0;
  if (!c->jwks)
    names[n++] = "TASKHOST_JWKS";
  if (!c->jwt_issuer)
    names[n++] = "TASKHOST_JWT_ISSUER";
  if (!c->jwt_naudiences)
    names[n++] = "TASKHOST_JWT_AUDIENCE";
  snprintf(err, errlen, "TASKHOST_AUTH=jwt with --serve needs %s%s%s%s%s to be set: --serve "
           "verifies the tokens itself (in Lambda, API Gateway does)",
           names[0], n == 3 ? ", " : n == 2 ? " and " : "", n > 1 ? names[1] : "",
           n == 3 ? " and " : "", n == 3 ? names[2] : "");
  return TH_ERR_INVALID;
}

th_result th_config_from_env(th_config *c, const char *exe_dir, char *err, size_t errlen) {
  th_result rc = TH_ERR_INVALID;
  memset(c, 0, sizeof *c);
  long long n;

  c->table_name = dup_or_null(env("TABLE_NAME"));
  const char *store = env("TASKHOST_STORE");
  if (!store) {
    c->store_kind = c->table_name ? TH_STORE_DYNAMODB : TH_STORE_SQLITE;
    if (!c->table_name)
      c->sqlite_path = strdup("./taskhost.db");
  } else if (strcmp(store, "dynamodb") == 0) {
    c->store_kind = TH_STORE_DYNAMODB;
  } else if (strncmp(store, "sqlite:", 7) == 0 && store[7]) {
    c->store_kind = TH_STORE_SQLITE;
    c->sqlite_path = strdup(store + 7);
  } else {
    snprintf(err, errlen, "invalid TASKHOST_STORE='%s': expected 'sqlite:<path>' or 'dynamodb'",
             store);
    goto fail;
  }
  if (c->store_kind == TH_STORE_DYNAMODB && !c->table_name) {
    snprintf(err, errlen, "TASKHOST_STORE=dynamodb needs TABLE_NAME to be set");
    goto fail;
  }
  if (c->store_kind == TH_STORE_DYNAMODB && (rc = read_aws(c, err, errlen)) != TH_OK)
    goto fail;
  rc = TH_ERR_INVALID;

  const char *routes = env("TASKHOST_ROUTES");
  if (routes) {
    c->routes_dir = strdup(routes);
  } else {
    size_t len = strlen(exe_dir) + 8;
    c->routes_dir = malloc(len);
    if (c->routes_dir)
      snprintf(c->routes_dir, len, "%s/lua", exe_dir);
  }
  const char *origin = env("TASKHOST_CORS_ORIGIN");
  if (origin && strpbrk(origin, "\r\n")) {
    snprintf(err, errlen, "invalid TASKHOST_CORS_ORIGIN: must be one line");
    goto fail;
  }
  c->cors_origin = strdup(origin ? origin : "*");
  /* Without a configured secret cursors are still tamper-evident and bound to
   * the table, but someone who reads this source can forge them. */
  const char *secret = env("TASKHOST_CURSOR_SECRET");
  c->cursor_secret = strdup(secret ? secret : "taskhost-default-cursor-secret");

  if (env_int("TASKHOST_MAX_BODY_BYTES", 65536, 1024, 6 * 1024 * 1024, &n, err, errlen))
    goto fail;
  c->max_body_bytes = (size_t)n;
  if (env_int("TASKHOST_LUA_MEMORY_MB", 64, 8, 4096, &n, err, errlen))
    goto fail;
  c->lua_memory_bytes = (size_t)n * 1024 * 1024;
  if (env_int("TASKHOST_LUA_INSTRUCTIONS", 50000000, 100000, 100000000000LL, &n, err, errlen))
    goto fail;
  c->lua_instructions = n;
  if (env_int("TASKHOST_LUA_TIMEOUT_MS", 5000, 10, 900000, &n, err, errlen))
    goto fail;
  c->lua_timeout_ms = (int)n;
  if (env_int("TASKHOST_WORKERS", 4, 1, 256, &n, err, errlen))
    goto fail;
  c->workers = (int)n;
  /* One year at most: a key is a retry's, not an archive's. */
  if (env_int("TASKHOST_IDEMPOTENCY_TTL_S", 86400, 1, 31536000, &n, err, errlen))
    goto fail;
  c->idempotency_ttl_s = n;

  const char *level_var = env("AWS_LAMBDA_LOG_LEVEL") ? "AWS_LAMBDA_LOG_LEVEL" : "TASKHOST_LOG_LEVEL";
  const char *level = env(level_var);
  c->log_level = TH_LOG_INFO;
  if (level && (c->log_level = th_log_level_parse(level)) < 0) {
    snprintf(err, errlen, "invalid %s='%s': expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL",
             level_var, level);
    goto fail;
  }
  const char *format = env("AWS_LAMBDA_LOG_FORMAT");
  c->log_json = 1;
  if (format) {
    if (strcasecmp(format, "JSON") == 0)
      c->log_json = 1;
    else if (strcasecmp(format, "Text") == 0)
      c->log_json = 0;
    else {
      snprintf(err, errlen, "invalid AWS_LAMBDA_LOG_FORMAT='%s': expected JSON or Text", format);
      goto fail;
    }
  }
  if ((rc = read_auth(c, err, errlen)) != TH_OK)
    goto fail;
  if ((rc = read_metrics(c, err, errlen)) != TH_OK)
    goto fail;
  rc = TH_ERR_INVALID;
  if (!c->routes_dir || !c->cors_origin || !c->cursor_secret ||
      (c->store_kind == TH_STORE_SQLITE && !c->sqlite_path)) {
    snprintf(err, errlen, "out of memory reading the configuration");
    rc = TH_ERR_NOMEM;
    goto fail;
  }
  return TH_OK;
fail:
  th_config_free(c);
  return rc;
}

/* Secrets do not outlive their use in freed heap memory. */
static void wipe_free(char *s) {
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

void th_config_free(th_config *c) {
  free(c->aws_region);
  wipe_free(c->aws_access_key_id);
  wipe_free(c->aws_secret_access_key);
  wipe_free(c->aws_session_token);
  free(c->dynamodb_endpoint);
  free(c->sqlite_path);
  free(c->table_name);
  free(c->routes_dir);
  free(c->cors_origin);
  free(c->cursor_secret);
  free(c->jwks);
  free(c->jwt_issuer);
  for (size_t i = 0; i < c->jwt_naudiences; i++)
    free(c->jwt_audiences[i]);
  free(c->jwt_audiences);
  memset(c, 0, sizeof *c);
}
