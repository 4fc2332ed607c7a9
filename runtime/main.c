/* taskhost — entry point: reads the configuration, opens the store and the
 * Lua host, and runs one of the modes:
 *   --local FILE|-        one API Gateway event in, the proxy response out
 *   --serve [HOST:]PORT   local HTTP server (default 127.0.0.1:3000)
 *   --check               load configuration and scripts, then exit
 *   --lua-test FILE       run a Lua test script inside the sandbox
 *   --lambda              the Lambda Runtime API loop; also what runs with no
 *                         arguments when AWS_LAMBDA_RUNTIME_API is set (Lambda
 *                         starts `bootstrap` that way). A start-up failure is
 *                         reported to the Runtime API's init/error.
 *   --version             version, commit and build type (version.h)
 * Metrics (metrics.h, TASKHOST_METRICS): one EMF line per invocation, on
 * stdout in Lambda mode; on stderr in every mode with TASKHOST_METRICS=stderr.
 * Exit status: 0 ran (--lambda: stopped by SIGTERM/SIGINT); 1 start-up failed
 * (configuration, scripts, store), the Runtime API was lost, or --serve
 * stopped now with a request it could not answer (serve.h); 2 bad usage or
 * the input is not an API Gateway event. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "config.h"
#include "host.h"
#include "lambda.h"
#include "log.h"
#include "metrics.h"
#include "serve.h"
#include "store.h"
#include "store_dynamodb.h"
#include "version.h"
#include "watchdog.h"

#define MAX_EVENT_BYTES (6 * 1024 * 1024 + 65536) /* Lambda's payload limit + envelope */

static void usage(FILE *out) {
  fputs("usage: taskhost --local FILE|-        run one API Gateway event, print the response\n"
        "       taskhost --serve [HOST:]PORT   serve the API over HTTP (default 127.0.0.1:3000)\n"
        "       taskhost --check               check configuration and route scripts\n"
        "       taskhost --lua-test FILE       run a Lua test script in the sandbox\n"
        "       taskhost --lambda              the AWS Lambda Runtime API loop (the default\n"
        "                                      when AWS_LAMBDA_RUNTIME_API is set)\n"
        "       taskhost --version             version, commit and build type\n"
        "configuration comes from the environment: see README.md\n",
        out);
}

/* The folder of the binary as invoked (a symlink's own folder, so a link at
 * the repository root finds lua/ beside it). */
static void exe_dir(const char *argv0, char *out, size_t n) {
  const char *slash = strrchr(argv0, '/');
  if (slash) {
    snprintf(out, n, "%.*s", (int)(slash - argv0), argv0);
    if (!*out)
      snprintf(out, n, "/");
    return;
  }
  char path[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
  if (len <= 0) {
    snprintf(out, n, ".");
    return;
  }
  path[len] = '\0';
  char *s = strrchr(path, '/');
  if (s)
    *s = '\0';
  snprintf(out, n, "%s", path);
}

static th_store *open_store(const th_config *cfg, char *err, size_t errlen) {
  if (cfg->store_kind == TH_STORE_SQLITE)
    return th_store_sqlite_open(cfg->sqlite_path, err, errlen);
  return th_store_dynamodb_open(cfg, err, errlen);
}

static int read_all(const char *path, char **out, size_t *len, char *err, size_t errlen) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  th_buf b;
  th_buf_init(&b, MAX_EVENT_BYTES);
  char chunk[65536];
  size_t n;
  th_result rc = TH_OK;
  while (rc == TH_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = th_buf_append(&b, chunk, n);
  int failed = ferror(f);
  if (f != stdin)
    fclose(f);
  if (rc != TH_OK || failed) {
    snprintf(err, errlen, "cannot read %s: %s", path,
             rc == TH_ERR_TOO_LARGE ? "larger than Lambda's 6 MB payload limit"
                                    : failed ? "read error" : "out of memory");
    th_buf_free(&b);
    return -1;
  }
  if (!b.data)
    th_buf_append(&b, "", 0);
  *out = th_buf_steal(&b, len);
  return 0;
}

static int run_local(th_host *host, th_metrics *metrics, const char *path,
                     double lua_timeout_ms) {
  char err[1024];
  char *event = NULL, *response = NULL;
  size_t len = 0, rlen = 0;
  if (read_all(path, &event, &len, err, sizeof err) != 0) {
    fprintf(stderr, "taskhost: %s\n", err);
    return 2;
  }
  /* A route stuck inside one C call cannot be stopped by the host: the
   * watchdog prints the 500 and exits 3 at the budget + its grace. */
  char rid[37];
  uuid_t u;
  uuid_generate_random(u);
  uuid_unparse_lower(u, rid);
  th_watchdog *wd = NULL;
  if (th_watchdog_start(host, NULL, lua_timeout_ms, 0, &wd, err, sizeof err) != TH_OK) {
    free(event);
    fprintf(stderr, "taskhost: %s\n", err);
    return 1;
  }
  th_invoke_ctx ctx = {.request_id = rid, .in_route = th_watchdog_route_flag(wd)};
  th_watchdog_arm(wd, rid, 0);
  th_invoke_result res = {0};
  th_result rc = th_host_invoke(host, event, len, &ctx, &response, &rlen, &res, err, sizeof err);
  th_watchdog_disarm(wd); /* does not return if the watchdog answered */
  th_watchdog_stop(wd);
  free(event);
  if (rc != TH_ERR_INVALID) {
    th_metrics_sample ms = {.operation = res.operation, .status = rc == TH_OK ? res.status : 0,
                            .latency_ms = res.duration_ms, .store = res.store, .request_id = rid,
                            .trace_id = getenv("_X_AMZN_TRACE_ID")};
    th_metrics_emit(metrics, &ms);
  }
  if (rc == TH_ERR_INVALID) {
    fprintf(stderr, "taskhost: %s: %s\n", strcmp(path, "-") == 0 ? "stdin" : path, err);
    return 2;
  }
  if (rc != TH_OK) {
    fprintf(stderr, "taskhost: %s\n", err);
    return 1;
  }
  fwrite(response, 1, rlen, stdout);
  fputc('\n', stdout);
  free(response);
  return fflush(stdout) == 0 ? 0 : 1;
}

/* A start-up failure: the one line on stderr, and in Lambda mode the same
 * to the Runtime API's init/error. */
static void start_failed(th_lambda *rt, const char *error_type, const char *err) {
  fprintf(stderr, "taskhost: %s\n", err);
  if (rt)
    th_lambda_init_error(rt, error_type, err);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : NULL;
  const char *arg = argc > 2 ? argv[2] : NULL;
  const char *runtime_api = getenv("AWS_LAMBDA_RUNTIME_API");
  if (!mode && runtime_api && *runtime_api)
    mode = "--lambda"; /* Lambda runs bootstrap with no arguments */
  if (mode && strcmp(mode, "--version") == 0 && argc == 2) {
    printf("taskhost %s (commit %s, %s build)\n", TH_VERSION, TH_COMMIT, TH_BUILD_TYPE);
    return fflush(stdout) == 0 ? 0 : 1;
  }
  if (!mode || strcmp(mode, "--help") == 0 || strcmp(mode, "-h") == 0) {
    usage(mode ? stdout : stderr);
    return mode ? 0 : 2;
  }
  int known = strcmp(mode, "--local") == 0 || strcmp(mode, "--serve") == 0 ||
              strcmp(mode, "--check") == 0 || strcmp(mode, "--lua-test") == 0 ||
              strcmp(mode, "--lambda") == 0;
  if (!known || ((strcmp(mode, "--local") == 0 || strcmp(mode, "--lua-test") == 0) && !arg) ||
      (strcmp(mode, "--lambda") == 0 && arg) || argc > 3) {
    fprintf(stderr, "taskhost: bad arguments\n");
    usage(stderr);
    return 2;
  }

  char dir[PATH_MAX], err[1024];
  th_lambda *rt = NULL;
  if (strcmp(mode, "--lambda") == 0 &&
      th_lambda_new(runtime_api, &rt, err, sizeof err) != TH_OK) {
    fprintf(stderr, "taskhost: %s\n", err);
    return 1;
  }
  exe_dir(argv[0], dir, sizeof dir);
  th_config cfg;
  if (th_config_from_env(&cfg, dir, err, sizeof err) != TH_OK) {
    start_failed(rt, "Runtime.ConfigError", err);
    th_lambda_free(rt);
    th_log_shutdown();
    return 1;
  }
  th_log_configure((th_log_level)cfg.log_level, cfg.log_json);
  int status = 1;
  th_store *store = NULL;
  th_host *host = NULL;
  th_metrics *metrics = NULL;

  if (strcmp(mode, "--serve") == 0) {
    status = th_serve_run(&cfg, arg ? arg : "127.0.0.1:3000", open_store, err, sizeof err);
    if (status != 0)
      fprintf(stderr, "taskhost: %s\n", err);
    goto done;
  }
  store = open_store(&cfg, err, sizeof err);
  if (!store) {
    start_failed(rt, "Runtime.StoreError", err);
    goto done;
  }
  th_result hrc = th_host_new(&cfg, store, &host, err, sizeof err);
  if (hrc != TH_OK) {
    start_failed(rt, hrc == TH_ERR_INVALID ? "Runtime.RouteScriptError" : "Runtime.Unknown", err);
    goto done;
  }
  FILE *mout = cfg.metrics == TH_METRICS_STDERR         ? stderr
               : cfg.metrics == TH_METRICS_ON && rt ? stdout
                                                    : NULL;
  /* The line's "level": never below what Lambda's log filter lets through. */
  const char *mlevel = th_log_level_name(cfg.log_level > TH_LOG_INFO ? cfg.log_level : TH_LOG_INFO);
  if (mout && th_metrics_new(cfg.metrics_namespace, cfg.metrics_service, TH_VERSION "+" TH_COMMIT,
                             mlevel, mout, &metrics) != TH_OK) {
    start_failed(rt, "Runtime.Unknown", "out of memory setting up the metrics");
    goto done;
  }
  if (rt) {
    th_lambda_set_metrics(rt, metrics);
    status = th_lambda_run(rt, host, cfg.lua_timeout_ms);
  } else if (strcmp(mode, "--check") == 0) {
    printf("ok: configuration and route scripts (%s) load\n", cfg.routes_dir);
    status = 0;
  } else if (strcmp(mode, "--local") == 0) {
    status = run_local(host, metrics, arg, cfg.lua_timeout_ms);
  } else {
    status = th_host_run_script(host, arg, err, sizeof err) == TH_OK ? 0 : 1;
    if (status)
      fprintf(stderr, "taskhost: %s\n", err);
  }
done:
  th_metrics_free(metrics);
  th_host_free(host);
  if (store)
    store->ops->close(store);
  th_lambda_free(rt);
  th_config_free(&cfg);
  th_log_shutdown();
  return status;
}
