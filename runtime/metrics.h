/* metrics — one CloudWatch Embedded Metric Format (EMF) line per invocation.
 *
 * The line is a JSON object (the EMF specification: an `_aws` member with
 * Timestamp in epoch ms and CloudWatchMetrics), written whole on one line to
 * the stream the caller chose (stdout in Lambda, where CloudWatch Logs
 * extracts the metrics; stderr for local inspection). Two metric directives
 * in namespace `ns`:
 *   dimensions [["Service"]]: every metric below;
 *   dimensions [["Service","Operation"]]: Requests, Latency, 4xx, 5xx.
 * Metrics (values of the root members of the same names):
 *   Requests 1 (Count); Latency, the invocation's handling time (Milliseconds);
 *   2xx, 4xx, 5xx: 1 for the status class answered, 0 for the others
 *   (Count; an invocation that answered no status counts as 5xx);
 *   StoreCalls, StoreRetries, StoreThrottles (Count) and StoreLatency
 *   (Milliseconds, the sum over the calls): th_store_stats (store.h);
 *   ColdStart: 1 on the first line the th_metrics writes, 0 after (Count).
 * Dimension values: Service (the function's name, config.h), Operation (the
 * route's name, request.operation: 1..63 letters and digits, else
 * TH_METRICS_UNMATCHED) — never an id or a user. Properties, so a metric
 * leads to its log: requestId, traceId (Lambda-Runtime-Trace-Id), version;
 * each left out when NULL, empty or not valid UTF-8. And "level", when given
 * at creation: Lambda's log-level filtering (JSON log format) reads a line
 * without one as INFO and drops it under AWS_LAMBDA_LOG_LEVEL=WARN or above,
 * which would silence the metrics; main.c passes the higher of INFO and the
 * configured level, so the line always passes the filter.
 * Encoding: lua-cjson on a private Lua state owned by the th_metrics (no
 * second JSON encoder). A line that cannot be encoded (out of memory) is not
 * written; the next one is tried afresh.
 * Threads: one th_metrics may be shared; a mutex serialises lines.
 * Ownership: the th_metrics copies the strings it is given at creation; the
 * stream is borrowed and must outlive it. */
#ifndef TH_METRICS_H
#define TH_METRICS_H

#include <stdio.h>

#include "common.h"
#include "store.h"

#define TH_METRICS_UNMATCHED "Unmatched"

typedef struct th_metrics th_metrics;

typedef struct th_metrics_sample {
  const char *operation;  /* the route's name, or NULL / "" (TH_METRICS_UNMATCHED) */
  int status;             /* the HTTP status answered; 0: none */
  double latency_ms;
  th_store_stats store;
  const char *request_id; /* or NULL */
  const char *trace_id;   /* or NULL */
  double timestamp_ms;    /* epoch ms of the line; 0: now */
} th_metrics_sample;

/* ns, service (1..255 bytes, checked by config.c), version and level (or
 * NULL: no "level" member) are copied; out is the stream every line goes to. */
th_result th_metrics_new(const char *ns, const char *service, const char *version,
                         const char *level, FILE *out, th_metrics **m_out);

/* The sample's line without its newline; *line points into m and stays
 * valid until the next call on m (for tests: it is what th_metrics_emit
 * writes, and counts as the cold start as th_metrics_emit does). */
th_result th_metrics_encode(th_metrics *m, const th_metrics_sample *s, const char **line,
                            size_t *len);

/* Encodes the sample and writes it as one line (m NULL: nothing). */
void th_metrics_emit(th_metrics *m, const th_metrics_sample *s);

void th_metrics_free(th_metrics *m);

#endif
