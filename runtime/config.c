#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

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

void th_config_free(th_config *c) {
  free(c->sqlite_path);
  free(c->table_name);
  free(c->routes_dir);
  free(c->cors_origin);
  free(c->cursor_secret);
  memset(c, 0, sizeof *c);
}
