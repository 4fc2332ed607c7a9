/* http — see http.h. One curl easy handle, configured once; each request
 * only sets what changes (URL, method, headers, body, timeouts). The handle
 * runs in a multi handle of its own (what curl_easy_perform does inside,
 * but polling every STOP_POLL_MS rather than every second, so the request's
 * stop flag is seen soon); libcurl keeps the connection in that multi
 * handle's cache across requests, which is what gives keep-alive, and the
 * TLS session in the easy handle. */
#include "http.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define KEEPIDLE_S 30  /* first TCP keep-alive probe after this idle time */
#define KEEPINTVL_S 15 /* then one every KEEPINTVL_S */
#define STOP_POLL_MS 50 /* a silent transfer looks at its stop flag this often */

struct th_http {
  CURL *curl;
  CURLM *multi; /* runs curl, and keeps its connection between requests */
  th_http_options opt;
  th_http_stats stats;
  char errbuf[CURL_ERROR_SIZE];
  /* The response being received (valid during th_http_send only). */
  th_buf body;
  th_http_resp *cur;
  int too_large, nomem;
  int resent;   /* see on_prereq */
  int attempts; /* on_prereq calls during this send */
  int unresolved; /* the last send failed resolving the host name */
  int stopped;  /* perform cut the transfer: the request's stop flag */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in every libcurl: run it once. It is
 * never undone; the process exit releases it. */
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---------------------------------------------------------------- URLs */

static int is_unreserved_host(int ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

th_result th_http_parse_url(const char *url, th_http_url *out, const char **why) {
  th_http_url u;
  const char *p, *host, *host_end;
  const char *reason = NULL;
  memset(&u, 0, sizeof u);
  if (!url || !*url) {
    reason = "empty";
    goto fail;
  }
  if (strncasecmp(url, "https://", 8) == 0) {
    memcpy(u.scheme, "https", 6);
    u.port = 443;
    p = url + 8;
  } else if (strncasecmp(url, "http://", 7) == 0) {
    memcpy(u.scheme, "http", 5);
    u.port = 80;
    p = url + 7;
  } else {
    reason = "must start with http:// or https://";
    goto fail;
  }
  host = p;
  if (*p == '[') { /* IPv6 literal */
    p++;
    while (*p && *p != ']' && (strchr("0123456789abcdefABCDEF:.", *p)))
      p++;
    if (*p != ']' || p == host + 1) {
      reason = "malformed IPv6 host";
      goto fail;
    }
    p++;
  } else {
    while (is_unreserved_host((unsigned char)*p))
      p++;
  }
  host_end = p;
  if (host_end == host) {
    reason = *p == '@' ? "must not contain user information" : "has no host";
    goto fail;
  }
  if ((size_t)(host_end - host) >= sizeof u.host) {
    reason = "host name too long";
    goto fail;
  }
  memcpy(u.host, host, (size_t)(host_end - host));
  int explicit_port = 0;
  if (*p == ':') {
    long port = 0;
    p++;
    if (!(*p >= '0' && *p <= '9')) {
      reason = "malformed port";
      goto fail;
    }
    while (*p >= '0' && *p <= '9' && port <= 65535)
      port = port * 10 + (*p++ - '0');
    if (port < 1 || port > 65535) {
      reason = "port must be 1..65535";
      goto fail;
    }
    explicit_port = (int)port != u.port;
    u.port = (int)port;
  }
  if (*p == '/')
    p++;
  if (*p) {
    reason = *p == '@'   ? "must not contain user information"
             : *p == '?' ? "must not have a query"
             : *p == '#' ? "must not have a fragment"
                         : "must not have a path (only scheme://host[:port])";
    goto fail;
  }
  if (explicit_port)
    snprintf(u.authority, sizeof u.authority, "%s:%d", u.host, u.port);
  else
    snprintf(u.authority, sizeof u.authority, "%s", u.host);
  *out = u;
  return TH_OK;
fail:
  if (why)
    *why = reason;
  return TH_ERR_INVALID;
}

/* ------------------------------------------------------------ callbacks */

/* Copies a header value (trimmed) into a fixed field, cut to fit. */
static void keep_value(char *dst, size_t cap, const char *v, size_t n) {
  while (n && (*v == ' ' || *v == '\t')) {
    v++;
    n--;
  }
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
    n--;
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, v, n);
  dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud) {
  th_http *h = ud;
  size_t n = size * nitems;
  static const struct {
    const char *name;
    size_t off, cap;
  } wanted[] = {
    {"x-amzn-errortype", offsetof(th_http_resp, errortype), sizeof ((th_http_resp *)0)->errortype},
    {"x-amzn-requestid", offsetof(th_http_resp, request_id), sizeof ((th_http_resp *)0)->request_id},
    {"x-amz-crc32", offsetof(th_http_resp, crc32), sizeof ((th_http_resp *)0)->crc32},
    {"x-amz-retry-after", offsetof(th_http_resp, retry_after), sizeof ((th_http_resp *)0)->retry_after},
  };
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    /* A new response begins (after an interim 1xx): forget the old headers. */
    for (size_t i = 0; i < TH_ARRAY_LEN(wanted); i++)
      ((char *)h->cur + wanted[i].off)[0] = '\0';
    return n;
  }
  const char *colon = memchr(data, ':', n);
  if (!colon)
    return n;
  size_t name_len = (size_t)(colon - data);
  for (size_t i = 0; i < TH_ARRAY_LEN(wanted); i++)
    if (strlen(wanted[i].name) == name_len && strncasecmp(data, wanted[i].name, name_len) == 0)
      keep_value((char *)h->cur + wanted[i].off, wanted[i].cap, colon + 1, n - name_len - 1);
  return n;
}

/* libcurl re-sends a request by itself on a fresh connection when a reused
 * connection breaks before any answer (transfer.c, Curl_retry_request: the
 * "Connection died, retrying a fresh connect" info line; at most 5 times).
 * The first copy may have been received and applied: the caller must know
 * (a retried create or delete meets its own write). Every copy is preceded
 * by the pre-request callback (multi.c, state DO: once per attempt, after
 * the connection is made or reused, before the request goes out), and
 * nothing else brings a transfer back to that state here (no redirects
 * followed, no HTTP authentication): a second call is a re-send. This costs
 * one call per request, where CURLOPT_VERBOSE + a debug callback (the way
 * this was detected before libcurl 7.80) made libcurl format every info
 * line (bench/hotpath.md). */
#if LIBCURL_VERSION_NUM >= 0x075000
static int on_prereq(void *ud, char *remote_ip, char *local_ip, int remote_port, int local_port) {
  th_http *h = ud;
  (void)remote_ip, (void)local_ip, (void)remote_port, (void)local_port;
  if (h->attempts++)
    h->resent = 1;
  return CURL_PREREQFUNC_OK;
}
#else
/* Before 7.80: the info line itself, through the debug callback. Only
 * CURLINFO_TEXT is looked at: the other kinds carry headers (signatures,
 * tokens) and are ignored. */
static int on_debug(CURL *c, curl_infotype type, char *data, size_t size, void *ud) {
  static const char died[] = "Connection died, retrying a fresh connect";
  th_http *h = ud;
  (void)c;
  if (type == CURLINFO_TEXT && size >= sizeof died - 1 && memcmp(data, died, sizeof died - 1) == 0)
    h->resent = 1;
  return 0;
}
#endif

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  th_http *h = ud;
  size_t n = size * nmemb;
  th_result r = th_buf_append(&h->body, data, n);
  if (r == TH_OK)
    return n;
  if (r == TH_ERR_TOO_LARGE)
    h->too_large = 1;
  else
    h->nomem = 1;
  return 0; /* aborts the transfer */
}

/* ------------------------------------------------------------- handles */

/* The system CA bundle: $SSL_CERT_FILE, else the first bundle that exists. */
static const char *ca_bundle(void) {
  static const char *const paths[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Alpine */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* RHEL, Amazon Linux */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* RHEL, Amazon Linux 2023 */
    "/etc/ssl/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
  };
  const char *env = getenv("SSL_CERT_FILE");
  if (env && *env && access(env, R_OK) == 0)
    return env;
  for (size_t i = 0; i < TH_ARRAY_LEN(paths); i++)
    if (access(paths[i], R_OK) == 0)
      return paths[i];
  return NULL; /* libcurl's built-in default */
}

th_http *th_http_new(const th_http_options *opt, char *err, size_t errlen) {
  th_http *h = NULL;
  CURLcode rc = CURLE_OK;
  pthread_once(&global_once, global_init);
  if (global_rc != CURLE_OK) {
    snprintf(err, errlen, "http: curl_global_init failed: %s", curl_easy_strerror(global_rc));
    return NULL;
  }
  h = calloc(1, sizeof *h);
  if (!h || !(h->curl = curl_easy_init()) || !(h->multi = curl_multi_init())) {
    snprintf(err, errlen, "http: out of memory creating a curl handle");
    goto fail;
  }
  if (opt)
    h->opt = *opt;
  if (h->opt.connect_timeout_ms <= 0)
    h->opt.connect_timeout_ms = TH_HTTP_CONNECT_TIMEOUT_MS;
  if (h->opt.timeout_ms <= 0)
    h->opt.timeout_ms = TH_HTTP_TIMEOUT_MS;
  if (h->opt.max_response == 0)
    h->opt.max_response = TH_HTTP_MAX_RESPONSE;
  const char *ca = ca_bundle();
  CURL *c = h->curl;
#define SET(opt_, val_)                                                                         \
  do {                                                                                          \
    if (rc == CURLE_OK)                                                                         \
      rc = curl_easy_setopt(c, opt_, val_);                                                     \
  } while (0)
  SET(CURLOPT_ERRORBUFFER, h->errbuf);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_PROXY, ""); /* "" disables the proxy environment variables */
  SET(CURLOPT_TCP_NODELAY, 1L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_TCP_KEEPIDLE, (long)KEEPIDLE_S);
  SET(CURLOPT_TCP_KEEPINTVL, (long)KEEPINTVL_S);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  if (ca)
    SET(CURLOPT_CAINFO, ca);
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->opt.max_response);
  SET(CURLOPT_USERAGENT, h->opt.user_agent ? h->opt.user_agent : "taskhost");
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, h);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, h);
#if LIBCURL_VERSION_NUM >= 0x075000
  SET(CURLOPT_PREREQFUNCTION, on_prereq);
  SET(CURLOPT_PREREQDATA, h);
#else
  SET(CURLOPT_DEBUGFUNCTION, on_debug);
  SET(CURLOPT_DEBUGDATA, h);
  SET(CURLOPT_VERBOSE, 1L); /* to on_debug only: nothing is printed */
#endif
#undef SET
  if (rc != CURLE_OK) {
    snprintf(err, errlen, "http: cannot configure curl: %s", curl_easy_strerror(rc));
    goto fail;
  }
  h->opt.user_agent = NULL; /* borrowed: curl keeps its own copy */
  return h;
fail:
  th_http_free(h);
  return NULL;
}

void th_http_free(th_http *h) {
  if (!h)
    return;
  if (h->curl)
    curl_easy_cleanup(h->curl);
  if (h->multi)
    curl_multi_cleanup(h->multi);
  th_buf_free(&h->body);
  free(h);
}

th_http_stats th_http_get_stats(const th_http *h) { return h->stats; }

int th_http_unresolved(const th_http *h) { return h->unresolved; }

void th_http_resp_free(th_http_resp *resp) {
  if (!resp)
    return;
  free(resp->body);
  resp->body = NULL;
  resp->body_len = 0;
}

/* Failures without a response, by what the caller can do about them. */
static th_result map_curl(CURLcode rc) {
  switch (rc) {
  case CURLE_OUT_OF_MEMORY: return TH_ERR_NOMEM;
  case CURLE_FILESIZE_EXCEEDED: return TH_ERR_TOO_LARGE;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_BAD_FUNCTION_ARGUMENT: return TH_ERR_INVALID;
  /* A certificate that does not verify is a configuration (or worse)
   * problem, not something a retry fixes. */
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM: return TH_ERR_INTERNAL;
  default: return TH_ERR_UNAVAILABLE; /* resolve, connect, send, receive, TLS */
  }
}

/* curl_easy_perform through the handle's own multi handle, looking at the
 * stop flag between socket events and every STOP_POLL_MS of silence; a raised
 * flag sets h->stopped and abandons the transfer (removing an unfinished
 * transfer closes its connection). */
static CURLcode perform(th_http *h, const atomic_int *stop) {
  CURLcode rc = CURLE_OK;
  CURLMcode mc = curl_multi_add_handle(h->multi, h->curl);
  int running = 1;
  while (mc == CURLM_OK) {
    mc = curl_multi_perform(h->multi, &running);
    if (mc != CURLM_OK || !running)
      break;
    if (stop && atomic_load(stop)) {
      h->stopped = 1;
      break;
    }
#if LIBCURL_VERSION_NUM >= 0x074200
    mc = curl_multi_poll(h->multi, NULL, 0, STOP_POLL_MS, NULL);
#else
    mc = curl_multi_wait(h->multi, NULL, 0, STOP_POLL_MS, NULL);
#endif
  }
  if (mc != CURLM_OK) {
    snprintf(h->errbuf, sizeof h->errbuf, "%s", curl_multi_strerror(mc));
    rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
  } else if (h->stopped) {
    rc = CURLE_ABORTED_BY_CALLBACK;
  } else {
    CURLMsg *m;
    int left;
    rc = CURLE_FAILED_INIT; /* no DONE message: cannot happen */
    while ((m = curl_multi_info_read(h->multi, &left)))
      if (m->msg == CURLMSG_DONE && m->easy_handle == h->curl)
        rc = m->data.result;
  }
  curl_multi_remove_handle(h->multi, h->curl);
  return rc;
}

static int header_ok(const char *s) {
  for (; *s; s++)
    if (*s == '\r' || *s == '\n')
      return 0;
  return 1;
}

th_result th_http_send(th_http *h, const th_http_req *req, th_http_resp *resp,
                       char *err, size_t errlen) {
  th_result r = TH_ERR_INTERNAL;
  struct curl_slist *list = NULL, *grown;
  th_http_resp out;
  th_buf line;
  CURLcode rc = CURLE_OK;
  char dummy[1];
  if (!err) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  memset(&out, 0, sizeof out);
  th_buf_init(&line, 64 * 1024);
  th_buf_init(&h->body, h->opt.max_response);
  h->cur = &out;
  h->too_large = h->nomem = h->resent = h->attempts = h->unresolved = h->stopped = 0;
  h->errbuf[0] = '\0';

  if (req->stop && atomic_load(req->stop)) {
    snprintf(err, errlen, "stopped before the request was sent");
    r = TH_ERR_TIMEOUT;
    goto out;
  }
  long total = h->opt.timeout_ms;
  int deadline_bound = 0;
  if (req->deadline_ms > 0) {
    double left = req->deadline_ms - th_now_ms();
    if (left < 1) {
      snprintf(err, errlen, "deadline passed before the request was sent");
      r = TH_ERR_TIMEOUT;
      goto out;
    }
    int64_t whole;
    if (left < (double)total && th_double_to_int64(floor(left), &whole)) {
      total = (long)whole; /* 1 <= whole < total */
      deadline_bound = 1;
    }
  }
  long connect = h->opt.connect_timeout_ms < total ? h->opt.connect_timeout_ms : total;

  /* Empty values remove curl's own Expect and Accept headers. */
  static const th_http_header fixed[] = {{"Expect", ""}, {"Accept", ""}};
  for (size_t i = 0; i < req->nheaders + TH_ARRAY_LEN(fixed); i++) {
    const th_http_header *hd = i < req->nheaders ? &req->headers[i] : &fixed[i - req->nheaders];
    if (!header_ok(hd->name) || !header_ok(hd->value) || !hd->name[0]) {
      snprintf(err, errlen, "header %s: name or value holds a line break", hd->name);
      r = TH_ERR_INVALID;
      goto out;
    }
    th_buf_reset(&line);
    if ((r = th_buf_append_str(&line, hd->name)) != TH_OK ||
        (r = th_buf_append_str(&line, hd->value[0] ? ": " : ":")) != TH_OK ||
        (r = th_buf_append_str(&line, hd->value)) != TH_OK) {
      snprintf(err, errlen, "header %s too long", hd->name);
      goto out;
    }
    if (!(grown = curl_slist_append(list, line.data))) {
      r = TH_ERR_NOMEM;
      goto out;
    }
    list = grown;
  }

  CURL *c = h->curl;
#define SET(opt_, val_)                                                                         \
  do {                                                                                          \
    if (rc == CURLE_OK)                                                                         \
      rc = curl_easy_setopt(c, opt_, val_);                                                     \
  } while (0)
  SET(CURLOPT_URL, req->url);
  if (strcmp(req->method, "GET") == 0) {
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_CUSTOMREQUEST, (char *)NULL);
  } else {
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    SET(CURLOPT_POSTFIELDS, req->body_len ? req->body : "");
    SET(CURLOPT_CUSTOMREQUEST, strcmp(req->method, "POST") == 0 ? NULL : req->method);
  }
  SET(CURLOPT_HTTPHEADER, list);
  SET(CURLOPT_TIMEOUT_MS, total);
  SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
#undef SET
  if (rc != CURLE_OK) {
    snprintf(err, errlen, "cannot set up the request: %s", curl_easy_strerror(rc));
    r = map_curl(rc);
    goto out;
  }
  rc = perform(h, req->stop);
  h->stats.requests++;
  long connects = 0;
  if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0) {
    h->stats.connections += connects;
    out.connects = connects;
  }
  if (rc != CURLE_OK) {
    if (h->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      snprintf(err, errlen, "response larger than %zu bytes", h->opt.max_response);
      r = TH_ERR_TOO_LARGE;
    } else if (h->nomem) {
      snprintf(err, errlen, "out of memory receiving the response");
      r = TH_ERR_NOMEM;
    } else if (h->stopped) {
      snprintf(err, errlen, "stopped: the request was cut short");
      r = TH_ERR_TIMEOUT;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
      int past = req->deadline_ms > 0 && (deadline_bound || th_now_ms() >= req->deadline_ms);
      snprintf(err, errlen, "%s after %ld ms: %s", past ? "deadline reached" : "timed out", total,
               h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
      r = past ? TH_ERR_TIMEOUT : TH_ERR_UNAVAILABLE;
    } else {
      snprintf(err, errlen, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
      r = map_curl(rc);
      h->unresolved = rc == CURLE_COULDNT_RESOLVE_HOST;
    }
    goto out;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  out.resent = h->resent;
  if (!h->body.data && (r = th_buf_append(&h->body, "", 0)) != TH_OK) {
    r = TH_ERR_NOMEM;
    goto out;
  }
  out.body = th_buf_steal(&h->body, &out.body_len);
  *resp = out;
  r = TH_OK;
out:
  /* The list dies here: the handle must not keep a pointer to it. */
  curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
  curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (char *)NULL);
  curl_slist_free_all(list);
  th_buf_free(&line);
  th_buf_free(&h->body);
  h->cur = NULL;
  return r;
}
