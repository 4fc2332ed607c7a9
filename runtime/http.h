/* http — a small HTTP/1.1 client on libcurl for the AWS endpoints the core
 * talks to (DynamoDB). One th_http wraps one curl easy handle, created once
 * per endpoint and reused for every request, so the TCP connection (and the
 * TLS session) stays open across requests and Lambda invocations.
 *
 * Choices, all fixed here:
 *   - HTTP/1.1 only; no redirects; only the http and https protocols.
 *   - Proxy environment variables (http_proxy, HTTPS_PROXY, ALL_PROXY, ...)
 *     are ignored: requests always go straight to the endpoint (Lambda has
 *     no proxy; a stray variable on a developer machine must not reroute
 *     signed requests).
 *   - TLS peers are verified against the system CA bundle: $SSL_CERT_FILE
 *     when set, else the first existing of the Debian, RHEL/Amazon Linux and
 *     Alpine bundle paths (the Debian-built libcurl we ship would otherwise
 *     look only at Debian's path, which Amazon Linux 2023 lacks).
 *   - TCP keep-alive probes on idle connections; Nagle off; no signals
 *     (timeouts work in threads); no "Expect: 100-continue" round trip.
 *   - Each request has a connect timeout and a total timeout; both are cut
 *     to the request's deadline. A request's stop flag, once raised, cuts
 *     the transfer too (within 50 ms: it is looked at between socket events,
 *     and every 50 ms while the peer is silent). The response body is capped (max_response,
 *     else TH_HTTP_MAX_RESPONSE); past it the transfer stops: TH_ERR_TOO_LARGE.
 *   - Never logs: headers carry signatures and tokens.
 *
 * Needs: libcurl. curl_global_init runs once per process (first th_http_new).
 * Ownership: th_http_new's result is freed with th_http_free. A response's
 * body is owned by the response; th_http_resp_free releases it. A
 * th_http is used by one thread at a time.
 */
#ifndef TH_HTTP_H
#define TH_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

#include "common.h"

#define TH_HTTP_MAX_RESPONSE (16u << 20)   /* default response body cap: 16 MiB */
#define TH_HTTP_CONNECT_TIMEOUT_MS 3000    /* default connect timeout */
#define TH_HTTP_TIMEOUT_MS 10000           /* default total timeout per request */

/* A parsed endpoint URL: scheme://host[:port][/] and nothing more. */
typedef struct th_http_url {
  char scheme[8];      /* "http" or "https", lower case */
  char host[256];      /* as written; an IPv6 literal keeps its brackets */
  int port;            /* explicit or the scheme's default */
  char authority[272]; /* the Host header: host, plus ":port" when not the default */
} th_http_url;

/* Parses an endpoint URL. Accepts http and https (any case), a host name, IPv4
 * or bracketed IPv6 host, an optional port 1..65535 and an optional "/" path.
 * Userinfo, other paths, queries and fragments are TH_ERR_INVALID; *why then
 * points at a short static reason. Pure. */
th_result th_http_parse_url(const char *url, th_http_url *out, const char **why);

typedef struct th_http_header {
  const char *name;
  const char *value;
} th_http_header;

typedef struct th_http_options {
  long connect_timeout_ms; /* 0: TH_HTTP_CONNECT_TIMEOUT_MS */
  long timeout_ms;         /* 0: TH_HTTP_TIMEOUT_MS */
  size_t max_response;     /* 0: TH_HTTP_MAX_RESPONSE */
  const char *user_agent;  /* NULL: "taskhost" */
} th_http_options;

typedef struct th_http_req {
  const char *method;             /* "POST", "GET" */
  const char *url;
  const th_http_header *headers;  /* sent as given (Host included, if any) */
  size_t nheaders;
  const void *body;
  size_t body_len;
  double deadline_ms;             /* th_now_ms() time the request must end by; 0: none */
  const atomic_int *stop;         /* or NULL: once non-zero, the request is cut short */
} th_http_req;

/* What came back. Header values longer than their field are cut short. */
typedef struct th_http_resp {
  long status;              /* HTTP status of the final response */
  char *body;               /* NUL-terminated; owned, see th_http_resp_free */
  size_t body_len;
  char errortype[256];      /* X-Amzn-Errortype, or "" */
  char request_id[128];     /* x-amzn-RequestId, or "" */
  char crc32[16];           /* x-amz-crc32 (decimal), or "" */
  char retry_after[16];     /* x-amz-retry-after (milliseconds), or "" */
  long connects;            /* new connections this request opened (0 on reuse) */
  int resent;               /* libcurl sent the request a second time on a fresh
                               connection after the reused one broke with no
                               answer: the first copy may have been applied */
} th_http_resp;

typedef struct th_http th_http;

/* Creates the handle and sets the fixed options. NULL on failure, with a
 * one-line reason in err. */
th_http *th_http_new(const th_http_options *opt, char *err, size_t errlen);
void th_http_free(th_http *h);

/* Performs one request. TH_OK means an HTTP response arrived, whatever its
 * status; *resp is then filled (free it with th_http_resp_free).
 * Otherwise *resp is untouched and the request failed without a response:
 *   TH_ERR_TIMEOUT      the deadline passed, or the stop flag was raised
 *                       (before or during the request: a request cut short
 *                       may have reached the peer)
 *   TH_ERR_UNAVAILABLE  could not connect, the connection broke, or the
 *                       request's own timeout expired (transient)
 *   TH_ERR_TOO_LARGE    the response body passed the cap
 *   TH_ERR_INVALID      the request could not be set up (bad URL, headers)
 *   TH_ERR_NOMEM / TH_ERR_INTERNAL
 * err (when non-NULL) receives a one-line detail (curl's message) on failure. */
th_result th_http_send(th_http *h, const th_http_req *req, th_http_resp *resp,
                       char *err, size_t errlen);

void th_http_resp_free(th_http_resp *resp);

/* Whether the last th_http_send failed because the host name did not resolve
 * (libcurl's CURLE_COULDNT_RESOLVE_HOST: the resolver answered that the name
 * does not exist, or could not be asked). It then returned TH_ERR_UNAVAILABLE,
 * as for any failure to connect, since a resolver can also fail for a moment;
 * what a lasting failure means is the caller's to say. A resolution cut short
 * by the connect timeout is a timeout, not this. */
int th_http_unresolved(const th_http *h);

/* Counters since th_http_new: requests performed (with or without a
 * response) and TCP connections opened (CURLINFO_NUM_CONNECTS summed). */
typedef struct th_http_stats {
  long requests;
  long connections;
} th_http_stats;
th_http_stats th_http_get_stats(const th_http *h);

#endif
