/* lambda — the AWS Lambda Runtime API loop (custom runtime, provided.al2023):
 * GET invocation/next → th_host_invoke → POST invocation/<id>/response, or
 * invocation/<id>/error when there is no proxy response to give. Start-up
 * failures go to init/error (th_lambda_init_error) before the process exits.
 *
 * Protocol (http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/...): one
 * libcurl easy handle for every call, so one keep-alive connection; HTTP/1.1;
 * no proxy whatever the environment says (the API is on the sandbox's
 * loopback); TCP keepalive; a connect timeout on every call. `next` has no
 * total timeout: the sandbox may be frozen between events for any length of
 * time. Posts have a bounded total timeout (TH_LAMBDA_POST_TIMEOUT_MS).
 *
 * Per invocation: Lambda-Runtime-Aws-Request-Id is the request id of every
 * log line; Lambda-Runtime-Deadline-Ms (epoch ms) becomes the host's deadline
 * minus TH_LAMBDA_DEADLINE_MARGIN_MS, so the Lua budget and the store's
 * timeouts end before Lambda's own and the JSON 500 still gets out;
 * Lambda-Runtime-Invoked-Function-Arn is request.function_arn;
 * Lambda-Runtime-Trace-Id is set as _X_AMZN_TRACE_ID (unset when absent).
 * After the answer is posted, the invocation's EMF line (metrics.h) goes out
 * with the route's operation, status, handling time and store costs (an
 * invocation answered on /error: status 0, counted as a 5xx).
 *
 * Errors (POST …/error, body {errorMessage, errorType, stackTrace: []} encoded
 * by lua-cjson, header Lambda-Runtime-Function-Error-Type = errorType):
 *   Runtime.InvalidEvent            the event is not an API Gateway event
 *   Runtime.PayloadTooLarge         the event is over TH_LAMBDA_MAX_EVENT_BYTES
 *   Function.ResponseSizeTooLarge   the proxy response is over
 *                                   TH_LAMBDA_MAX_RESPONSE_BYTES (or the API
 *                                   answered 413 to it)
 *   Runtime.Unknown                 the host failed without a response, or
 *                                   the event could not be held in memory
 * A route's own failure is not one of these: the host turns it into a JSON
 * 500 response, so the client never sees a 502.
 *
 * Runtime API answers (th_lambda_classify): 2xx is success; 500 and above,
 * and 410, mean the environment is in a state the runtime cannot recover from
 * (the docs: "exit promptly"), so the loop ends with status 1; 403 on `next`
 * too. Any other 4xx to a post loses that one invocation (logged) and the loop
 * goes on. A `next` that fails otherwise is retried a few times with backoff,
 * then the loop ends with status 1 (Lambda restarts the environment).
 *
 * SIGTERM/SIGINT (Lambda sends SIGTERM at shutdown): the handler only sets a
 * flag. Between calls the loop checks it; while `next` waits, a libcurl
 * progress callback checks it (the signal interrupts curl's poll, and curl
 * polls at least once a second anyway) and aborts the wait when no byte of
 * an event has arrived yet. An invocation in progress is finished and
 * answered first. Either way th_lambda_run returns 0 and the caller frees
 * everything normally.
 *
 * Ownership: a th_lambda owns its curl handle and a private Lua state (for
 * JSON). th_lambda_run borrows the host. One th_lambda per process (the
 * signal flag is process-wide).
 */
#ifndef TH_LAMBDA_H
#define TH_LAMBDA_H

#include <stddef.h>

#include "common.h"
#include "host.h"

/* Lambda's synchronous payload limit is 6 MiB; it reports a response over
 * 6291556 bytes as too large. An event is accepted up to 6 MiB plus room for
 * the envelope. */
#define TH_LAMBDA_MAX_EVENT_BYTES ((size_t)6 * 1024 * 1024 + 65536)
#define TH_LAMBDA_MAX_RESPONSE_BYTES ((size_t)6291556)
/* Taken off Lambda's deadline: the time left after the script is stopped to
 * rebuild the Lua state, encode the 500 and post it (generous for a 128 MB
 * function's CPU share). */
#define TH_LAMBDA_DEADLINE_MARGIN_MS 200.0
#define TH_LAMBDA_CONNECT_TIMEOUT_MS 1000L
#define TH_LAMBDA_POST_TIMEOUT_MS 10000L

typedef struct th_lambda th_lambda;

/* runtime_api: AWS_LAMBDA_RUNTIME_API ("host:port"). Makes no connection.
 * Fails (err filled) when it is empty or not a host:port. */
th_result th_lambda_new(const char *runtime_api, th_lambda **out, char *err, size_t errlen);

/* POST init/error with error_type ("Runtime.ConfigError", ...) and the
 * message; logs the outcome. The caller then exits non-zero. */
th_result th_lambda_init_error(th_lambda *l, const char *error_type, const char *message);

/* Serves invocations until SIGTERM/SIGINT (returns 0) or until the Runtime
 * API is lost or reports a non-recoverable state (returns 1). A watchdog
 * (watchdog.h) answers an invocation whose route is stuck inside one C call
 * past lua_timeout_ms + TH_WATCHDOG_GRACE_MS (or just before Lambda's
 * deadline) with the JSON 500 and ends the process with status 3. */
int th_lambda_run(th_lambda *l, th_host *host, int lua_timeout_ms);

/* From now on each invocation writes its EMF line through m (metrics.h):
 * borrowed, must outlive the loop; NULL: none. */
struct th_metrics;
void th_lambda_set_metrics(th_lambda *l, struct th_metrics *m);

void th_lambda_free(th_lambda *l);

/* ---- the pieces of the protocol, exposed for the unit tests ---- */

typedef enum th_lambda_call {
  TH_LAMBDA_NEXT, TH_LAMBDA_RESPONSE, TH_LAMBDA_ERROR, TH_LAMBDA_INIT_ERROR
} th_lambda_call;

typedef enum th_lambda_verdict {
  TH_LAMBDA_OK,        /* 2xx */
  TH_LAMBDA_RETRY,     /* next: try again after a pause */
  TH_LAMBDA_TOO_LARGE, /* response: 413, send Function.ResponseSizeTooLarge */
  TH_LAMBDA_DROP,      /* a post was refused: this invocation is lost, go on */
  TH_LAMBDA_FATAL      /* non-recoverable: end the loop, exit non-zero */
} th_lambda_verdict;

/* What to do after `call` got HTTP `status` (0: no answer at all). */
th_lambda_verdict th_lambda_classify(th_lambda_call call, long status);

/* The th_now_ms() deadline for a Lambda-Runtime-Deadline-Ms header value
 * (epoch ms, digits only), TH_LAMBDA_DEADLINE_MARGIN_MS earlier; a deadline
 * already past gives now_mono_ms (stop at once). 0 (no deadline) when the
 * header is absent or not a number. */
double th_lambda_deadline(const char *header, double now_epoch_ms, double now_mono_ms);

/* Whether s is an errorType Lambda accepts: "Runtime." or "Function."
 * followed by letters and digits. */
int th_lambda_error_type_valid(const char *s);

/* The error document {"errorMessage":..,"errorType":..,"stackTrace":[]}.
 * *out is malloc'd (caller frees). TH_ERR_INVALID for a bad error_type. */
th_result th_lambda_error_json(th_lambda *l, const char *error_type, const char *message,
                               char **out, size_t *len);

#endif
