/* host — one sandboxed Lua state running the route scripts, and the request
 * pipeline around it: event JSON → request table → routes.handle(request) →
 * response table → proxy response JSON in the event's own payload format.
 *
 * The sandbox opens only base, table, string, math and utf8; no io, os, debug,
 * no bytecode, no load/loadfile/dofile/string.dump/collectgarbage. `require`
 * loads only the native modules (json, store, uuid, clock, log) and text
 * scripts from the routes folder. Memory is capped by the allocator; a count
 * hook stops a script that runs past its instruction budget or its deadline.
 * After an out-of-memory error or a stopped script the state is rebuilt.
 *
 * Route contract (lua/routes.lua): the script returns a table with a function
 * `handle(request)` that returns a response table {status=, headers=, body=}
 * (body: a table encoded as JSON, or a string). Any error raised becomes a JSON
 * 500 {"message":"Internal server error"}; the detail goes only to the log.
 *
 * One th_host per thread. The host borrows the store (caller keeps ownership).
 */
#ifndef TH_HOST_H
#define TH_HOST_H

#include <stdatomic.h>

#include "common.h"
#include "config.h"
#include "store.h"

typedef struct th_host th_host;

typedef struct th_invoke_ctx {
  const char *request_id;   /* Lambda's request id, or NULL (one is generated) */
  double deadline_ms;       /* th_now_ms() time by which we must answer; 0 = none */
  const char *function_arn; /* visible to routes as request.function_arn, or NULL */
  atomic_int *in_route;     /* or NULL: set to 1 while routes.handle runs, 0 after
                               (th_watchdog_route_flag: read by the watchdog) */
  const char *owner;        /* whose items the route may reach: bound to the store
                               while the route runs (th_store_set_owner); NULL:
                               TH_STORE_PUBLIC_OWNER. With TASKHOST_AUTH=jwt the
                               host sets it from the caller's identity (auth.h)
                               and what the caller passed is not used. */
} th_invoke_ctx;

typedef struct th_invoke_result {
  int status;               /* HTTP status of the response written */
  char request_id[128];     /* the id used in logs */
  /* For the metrics (metrics.h): the name the route gave the request
   * (request.operation, a string of at most 63 bytes; "" when it set none),
   * the time th_host_invoke took, and the store operations the route made. */
  char operation[64];
  double duration_ms;
  th_store_stats store;
} th_invoke_result;

/* Creates a host and loads the route scripts from cfg->routes_dir.
 * A script that fails to load (syntax error) fails here with one line naming
 * file and line in err. */
th_result th_host_new(const th_config *cfg, th_store *store, th_host **out, char *err,
                      size_t errlen);

/* Runs one API Gateway proxy event. On TH_OK, *response holds the proxy
 * response JSON (caller frees) — also for 4xx/5xx answers. TH_ERR_INVALID:
 * the text is not an API Gateway proxy event (err says why; nothing written).
 * Before the route runs, the caller's identity is resolved (auth.h): a
 * request refused there is answered 401 without running any script; one let
 * through sees req.auth. */
th_result th_host_invoke(th_host *h, const char *event, size_t len, const th_invoke_ctx *ctx,
                         char **response, size_t *response_len, th_invoke_result *res,
                         char *err, size_t errlen);

/* --serve: runs one HTTP request through the same path, as the payload-2.0
 * event an HTTP API would send; req->owner is the invoke_ctx's owner.
 * *out owns the decoded response. */
struct th_http_request;
struct th_http_response;
th_result th_host_invoke_http(th_host *h, const struct th_http_request *req,
                              struct th_http_response *out, th_invoke_result *res, char *err,
                              size_t errlen);

/* --serve with TASKHOST_AUTH=jwt: from now on the host verifies each
 * request's bearer token against keys (auth.h) instead of reading API
 * Gateway's claims. keys is borrowed (the hosts of all workers share it) and
 * must outlive h. TH_ERR_NOMEM leaves the host as it was. */
struct th_jwks_cache;
th_result th_host_verify_tokens(th_host *h, struct th_jwks_cache *keys);

/* Answers with a JSON error without running any script (e.g. 413 from the
 * HTTP server before the body is read): same headers as every response. */
th_result th_host_error_http(th_host *h, int status, const char *message,
                             struct th_http_response *out);

/* The same error as a proxy response JSON (*json malloc'd, caller frees). */
th_result th_host_error_json(th_host *h, int status, const char *message, char **json,
                             size_t *len);

/* Reloads the scripts when a *.lua file in the routes folder changed since the
 * last load. On a load error the previous scripts stay in service; returns the
 * error (err filled) so the caller can log it once. */
th_result th_host_reload_if_changed(th_host *h, char *err, size_t errlen);

/* Runs a Lua test script inside the sandbox (with `require` also reaching the
 * script's own folder). Returns TH_OK when it ran to the end without error. */
th_result th_host_run_script(th_host *h, const char *path, char *err, size_t errlen);

void th_host_free(th_host *h);

#endif
