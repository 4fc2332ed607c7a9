/* The Lambda Runtime API loop (see lambda.h). */
#include "lambda.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "lua_modules.h"
#include "metrics.h"
#include "version.h"
#include "watchdog.h"

#define API_PATH "/2018-06-01/runtime"
#define MAX_RUNTIME_API 256
#define MAX_REPLY_BYTES 65536  /* kept of a post's answer, for the log */
#define MAX_NEXT_FAILURES 6    /* consecutive failed `next` calls before giving up */
#define RETRY_FIRST_MS 50
#define RETRY_MAX_MS 1000
#define TRACE_ENV "_X_AMZN_TRACE_ID"

/* The headers of one Runtime API answer that the loop uses. A value too long
 * for its field is dropped (treated as absent). */
typedef struct answer_headers {
  char request_id[128];
  char deadline[32];
  char function_arn[1024];
  char trace_id[1024];
  int started;  /* a status line arrived: an answer is on its way */
} answer_headers;

/* Longest path under API_PATH: /invocation/<id, every byte %XX>/response. */
#define MAX_PATH (sizeof(((answer_headers *)0)->request_id) * 3 + 32)

struct th_lambda {
  CURL *curl;
  char base[MAX_RUNTIME_API + 32]; /* http://host:port/2018-06-01/runtime */
  size_t base_len;
  char next_url[MAX_RUNTIME_API + 64]; /* base + /invocation/next, built once */
  char url[MAX_RUNTIME_API + 32 + MAX_PATH]; /* the post's URL, rebuilt in place */
  struct curl_slist *post_headers; /* Content-Type, Expect: (built once) */
  th_buf body;                     /* the answer's body (the event, for next) */
  int body_too_large;              /* the body passed body.max */
  int body_nomem;
  int waiting_next;                /* the progress callback may end the wait */
  answer_headers hdr;
  lua_State *J;                    /* private state: cjson for error documents */
  /* "_X_AMZN_TRACE_ID=<value>", handed to putenv once and then rewritten in
   * place: setenv would keep a copy of every value it was ever given (glibc
   * never frees them), and each invocation brings a new trace id. */
  char trace_env[sizeof TRACE_ENV "=" + sizeof(((answer_headers *)0)->trace_id)];
  int trace_in_env;                /* trace_env is in the environment */
  char curl_err[CURL_ERROR_SIZE];
  int curl_ready;                  /* curl_global_init succeeded */
  th_watchdog *watchdog;           /* during th_lambda_run */
  th_metrics *metrics;             /* borrowed, or NULL */
};

/* Set by SIGTERM/SIGINT; read between calls and by the progress callback. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* ---- pure pieces ---- */

th_lambda_verdict th_lambda_classify(th_lambda_call call, long status) {
  if (status >= 200 && status <= 299)
    return TH_LAMBDA_OK;
  /* "Container error. Non-recoverable state. Runtime should exit promptly." */
  if (status >= 500 || status == 410)
    return call == TH_LAMBDA_INIT_ERROR ? TH_LAMBDA_DROP : TH_LAMBDA_FATAL;
  switch (call) {
  case TH_LAMBDA_NEXT:
    return status == 403 ? TH_LAMBDA_FATAL : TH_LAMBDA_RETRY;
  case TH_LAMBDA_RESPONSE:
    return status == 413 ? TH_LAMBDA_TOO_LARGE : TH_LAMBDA_DROP;
  case TH_LAMBDA_ERROR:
  case TH_LAMBDA_INIT_ERROR:
    return TH_LAMBDA_DROP;
  }
  return TH_LAMBDA_DROP;
}

double th_lambda_deadline(const char *header, double now_epoch_ms, double now_mono_ms) {
  if (!header)
    return 0;
  size_t n = strlen(header);
  if (n == 0 || n > 15 || strspn(header, "0123456789") != n)
    return 0;
  double epoch = (double)strtoll(header, NULL, 10);
  double left = epoch - now_epoch_ms;
  if (left <= 0)
    return now_mono_ms;
  /* The margin never takes more than a quarter of what is left, so a short
   * deadline still leaves the route most of its time. */
  double margin = TH_LAMBDA_DEADLINE_MARGIN_MS;
  if (margin > left / 4)
    margin = left / 4;
  return now_mono_ms + left - margin;
}

int th_lambda_error_type_valid(const char *s) {
  const char *rest = NULL;
  if (!s)
    return 0;
  if (strncmp(s, "Runtime.", 8) == 0)
    rest = s + 8;
  else if (strncmp(s, "Function.", 9) == 0)
    rest = s + 9;
  else
    return 0;
  size_t n = strlen(rest);
  return n > 0 && n <= 64 &&
         strspn(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == n;
}

/* ---- JSON error documents, on the private state ---- */

static int setup_json_protected(lua_State *L) {
  th_json_setup(L);
  return 0;
}

typedef struct error_doc {
  const char *type;
  const char *message;
} error_doc;

static int error_json_protected(lua_State *L) {
  const error_doc *d = lua_touserdata(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, d->message);
  lua_setfield(L, -2, "errorMessage");
  lua_pushstring(L, d->type);
  lua_setfield(L, -2, "errorType");
  lua_newtable(L);
  th_json_mark_array(L, -1);
  lua_setfield(L, -2, "stackTrace");
  th_json_encode(L, -1);
  return 1;
}

th_result th_lambda_error_json(th_lambda *l, const char *error_type, const char *message,
                               char **out, size_t *len) {
  if (!th_lambda_error_type_valid(error_type))
    return TH_ERR_INVALID;
  error_doc d = {error_type, message ? message : ""};
  lua_State *L = l->J;
  th_result rc = TH_ERR_NOMEM;
  lua_settop(L, 0);
  lua_pushcfunction(L, error_json_protected);
  lua_pushlightuserdata(L, &d);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    char *copy = s ? malloc(n + 1) : NULL;
    if (copy) {
      memcpy(copy, s, n + 1);
      *out = copy;
      *len = n;
      rc = TH_OK;
    }
  }
  lua_settop(L, 0);
  return rc;
}

/* ---- libcurl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  th_lambda *l = ud;
  size_t n = size * nmemb;
  if (l->waiting_next) {
    th_result rc = th_buf_append(&l->body, data, n);
    if (rc == TH_OK)
      return n;
    if (rc == TH_ERR_TOO_LARGE)
      l->body_too_large = 1;
    else
      l->body_nomem = 1;
    return 0; /* ends the transfer */
  }
  /* A post's answer: keep the start for the log, drop the rest. */
  if (l->body.len < l->body.max)
    th_buf_append(&l->body, data, n < l->body.max - l->body.len ? n : l->body.max - l->body.len);
  return n;
}

static void copy_value(char *dst, size_t dstlen, const char *v, size_t vlen) {
  if (vlen < dstlen) {
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
  } else {
    dst[0] = '\0'; /* too long to be real: treat as absent */
  }
}

/* One header line ("Name: value\r\n", or a status line) at a time. */
static size_t on_header(char *line, size_t size, size_t nitems, void *ud) {
  th_lambda *l = ud;
  size_t n = size * nitems;
  if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    /* A new answer (after an interim 1xx too): forget the previous one's. */
    memset(&l->hdr, 0, sizeof l->hdr);
    l->hdr.started = 1;
    return n;
  }
  const char *colon = memchr(line, ':', n);
  if (!colon)
    return n;
  size_t name_len = (size_t)(colon - line);
  const char *v = colon + 1;
  const char *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  size_t vlen = (size_t)(end - v);
  static const struct {
    const char *name;
    size_t offset, size;
  } wanted[] = {
      {"Lambda-Runtime-Aws-Request-Id", offsetof(answer_headers, request_id),
       sizeof(((answer_headers *)0)->request_id)},
      {"Lambda-Runtime-Deadline-Ms", offsetof(answer_headers, deadline),
       sizeof(((answer_headers *)0)->deadline)},
      {"Lambda-Runtime-Invoked-Function-Arn", offsetof(answer_headers, function_arn),
       sizeof(((answer_headers *)0)->function_arn)},
      {"Lambda-Runtime-Trace-Id", offsetof(answer_headers, trace_id),
       sizeof(((answer_headers *)0)->trace_id)},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(wanted); i++) {
    if (strlen(wanted[i].name) == name_len && strncasecmp(line, wanted[i].name, name_len) == 0) {
      copy_value((char *)&l->hdr + wanted[i].offset, wanted[i].size, v, vlen);
      break;
    }
  }
  return n;
}

/* Ends a `next` wait once a stop was asked for, unless an event has started
 * to arrive (it is then served, and the loop stops after answering it). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  (void)dltotal, (void)ultotal, (void)ulnow;
  th_lambda *l = ud;
  return l->waiting_next && stop_requested && dlnow == 0 && !l->hdr.started;
}

/* ---- set-up ---- */

static int valid_runtime_api(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n <= MAX_RUNTIME_API &&
         strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]") == n;
}

/* Options every call shares; set once, so the handle (and its connection)
 * is the same for the life of the process. */
static CURLcode configure(th_lambda *l) {
  CURL *c = l->curl;
  CURLcode rc = CURLE_OK;
#define SET(opt, val)                                   \
  do {                                                  \
    if (rc == CURLE_OK)                                 \
      rc = curl_easy_setopt(c, opt, val);               \
  } while (0)
  SET(CURLOPT_ERRORBUFFER, l->curl_err);
  SET(CURLOPT_PROTOCOLS_STR, "http");
  SET(CURLOPT_PROXY, "");   /* the API is local: ignore http_proxy & co */
  SET(CURLOPT_NOPROXY, "*");
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_TCP_NODELAY, 1L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, TH_LAMBDA_CONNECT_TIMEOUT_MS);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_USERAGENT, "taskhost");
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, l);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, l);
  SET(CURLOPT_XFERINFOFUNCTION, on_progress);
  SET(CURLOPT_XFERINFODATA, l);
  SET(CURLOPT_NOPROGRESS, 0L);
#undef SET
  return rc;
}

th_result th_lambda_new(const char *runtime_api, th_lambda **out, char *err, size_t errlen) {
  if (!runtime_api || !valid_runtime_api(runtime_api)) {
    snprintf(err, errlen, "AWS_LAMBDA_RUNTIME_API must be set to the Runtime API's host:port%s",
             runtime_api && *runtime_api ? " (got something else)" : "");
    return TH_ERR_INVALID;
  }
  th_lambda *l = calloc(1, sizeof *l);
  if (!l)
    goto nomem;
  snprintf(l->base, sizeof l->base, "http://%s" API_PATH, runtime_api);
  l->base_len = strlen(l->base);
  snprintf(l->next_url, sizeof l->next_url, "%s/invocation/next", l->base);
  memcpy(l->url, l->base, l->base_len + 1);
  th_buf_init(&l->body, TH_LAMBDA_MAX_EVENT_BYTES);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "cannot initialise libcurl");
    free(l);
    return TH_ERR_INTERNAL;
  }
  l->curl_ready = 1;
  l->curl = curl_easy_init();
  l->J = luaL_newstate();
  if (!l->curl || !l->J)
    goto nomem;
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  if (!h || !(l->post_headers = curl_slist_append(h, "Expect:"))) {
    curl_slist_free_all(h);
    goto nomem;
  }
  lua_pushcfunction(l->J, setup_json_protected);
  if (lua_pcall(l->J, 0, 0, 0) != LUA_OK)
    goto nomem;
  CURLcode crc = configure(l);
  if (crc != CURLE_OK) {
    snprintf(err, errlen, "cannot configure libcurl: %s", curl_easy_strerror(crc));
    th_lambda_free(l);
    return TH_ERR_INTERNAL;
  }
  *out = l;
  return TH_OK;
nomem:
  th_lambda_free(l);
  snprintf(err, errlen, "out of memory starting the Lambda runtime");
  return TH_ERR_NOMEM;
}

void th_lambda_set_metrics(th_lambda *l, th_metrics *m) { l->metrics = m; }

void th_lambda_free(th_lambda *l) {
  if (!l)
    return;
  if (l->trace_in_env)
    unsetenv(TRACE_ENV); /* before its string goes */
  if (l->curl)
    curl_easy_cleanup(l->curl);
  curl_slist_free_all(l->post_headers);
  if (l->J)
    lua_close(l->J);
  th_buf_free(&l->body);
  if (l->curl_ready)
    curl_global_cleanup();
  free(l);
}

/* ---- calls ---- */

static double epoch_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static const char *call_name(th_lambda_call call) {
  switch (call) {
  case TH_LAMBDA_NEXT: return "next";
  case TH_LAMBDA_RESPONSE: return "response";
  case TH_LAMBDA_ERROR: return "error";
  case TH_LAMBDA_INIT_ERROR: return "init/error";
  }
  return "?";
}

/* One request on the shared handle, to url (l->next_url, or l->url built by
 * the caller). For `next` (body NULL) the event lands in l->body; for posts,
 * error_type adds Lambda-Runtime-Function-Error-Type to the prebuilt
 * headers. *status: the HTTP status, 0 when no answer came. Returns the
 * transfer's own result. Only what differs between `next` and a post is set
 * here; the rest was set once by configure(). */
static CURLcode perform(th_lambda *l, th_lambda_call call, const char *url, const char *body,
                        size_t len, const char *error_type, long *status) {
  CURL *c = l->curl;
  struct curl_slist *extra = NULL, *headers = l->post_headers;
  CURLcode rc = CURLE_OK;
  th_buf_reset(&l->body);
  l->body_too_large = l->body_nomem = 0;
  memset(&l->hdr, 0, sizeof l->hdr);
  l->curl_err[0] = '\0';
  *status = 0;

  rc = curl_easy_setopt(c, CURLOPT_URL, url);
  if (call == TH_LAMBDA_NEXT) {
    l->body.max = TH_LAMBDA_MAX_EVENT_BYTES;
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (rc == CURLE_OK) /* no total timeout: the sandbox may sleep between events */
      rc = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 0L);
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
  } else {
    l->body.max = MAX_REPLY_BYTES;
    if (error_type) { /* rare: a list of its own, the prebuilt one stays as it is */
      char type_header[128];
      snprintf(type_header, sizeof type_header, "Lambda-Runtime-Function-Error-Type: %s",
               error_type);
      struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
      extra = h ? curl_slist_append(h, "Expect:") : NULL;
      extra = extra ? curl_slist_append(extra, type_header) : NULL;
      if (!extra) {
        curl_slist_free_all(h);
        return CURLE_OUT_OF_MEMORY;
      }
      headers = extra;
    }
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, TH_LAMBDA_POST_TIMEOUT_MS);
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  }
  if (rc == CURLE_OK) {
    l->waiting_next = call == TH_LAMBDA_NEXT;
    rc = curl_easy_perform(c);
    l->waiting_next = 0;
    long code = 0;
    if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK)
      *status = code;
  }
  if (extra) { /* the handle must not keep a list that is freed */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(extra);
  }
  return rc;
}

/* Puts base + path + tail into l->url. Returns 0 when it does not fit. */
static int set_url(th_lambda *l, const char *path, size_t plen, const char *tail) {
  size_t tlen = strlen(tail);
  if (l->base_len + plen + tlen >= sizeof l->url)
    return 0;
  memcpy(l->url + l->base_len, path, plen);
  memcpy(l->url + l->base_len + plen, tail, tlen + 1);
  return 1;
}

static const char *curl_reason(th_lambda *l, CURLcode rc) {
  return l->curl_err[0] ? l->curl_err : curl_easy_strerror(rc);
}

/* A post to invocation/<id>/<what> (what: "response" or "error"). */
static th_lambda_verdict post_invocation(th_lambda *l, th_lambda_call call, const char *request_id,
                                         const char *body, size_t len, const char *error_type) {
  /* Request ids are UUIDs: escaped (by libcurl) only when they need it. */
  static const char plain[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
  size_t idlen = strlen(request_id);
  char *escaped = NULL;
  const char *id = request_id;
  if (strspn(request_id, plain) != idlen) {
    if (!(escaped = curl_easy_escape(l->curl, request_id, 0))) {
      th_log(TH_LOG_ERROR, request_id, "out of memory posting to the Runtime API", NULL, 0);
      return TH_LAMBDA_DROP;
    }
    id = escaped;
    idlen = strlen(escaped);
  }
  int fits = l->base_len + 12 + idlen + 10 < sizeof l->url; /* "/response" + NUL */
  if (fits) {
    memcpy(l->url + l->base_len, "/invocation/", 12);
    memcpy(l->url + l->base_len + 12, id, idlen);
    const char *tail = call == TH_LAMBDA_RESPONSE ? "/response" : "/error";
    memcpy(l->url + l->base_len + 12 + idlen, tail, strlen(tail) + 1);
  }
  curl_free(escaped);
  if (!fits) { /* cannot happen: the header field is bounded */
    th_log(TH_LOG_ERROR, request_id, "request id too long for the Runtime API URL", NULL, 0);
    return TH_LAMBDA_DROP;
  }
  long status = 0;
  CURLcode rc = perform(l, call, l->url, body, len, error_type, &status);
  if (rc != CURLE_OK) {
    th_log_field f[] = {TH_LOG_STR("call", call_name(call)),
                        TH_LOG_STR("error", curl_reason(l, rc))};
    th_log(TH_LOG_ERROR, request_id, "Runtime API post failed", f, (int)TH_ARRAY_LEN(f));
    /* No answer: the invocation is lost; `next` finds out whether the API is. */
    return TH_LAMBDA_DROP;
  }
  th_lambda_verdict v = th_lambda_classify(call, status);
  if (v != TH_LAMBDA_OK) {
    th_log_field f[] = {TH_LOG_STR("call", call_name(call)), TH_LOG_NUM("status", status),
                        TH_LOG_STR("answer", l->body.data)};
    th_log(v == TH_LAMBDA_FATAL ? TH_LOG_ERROR : TH_LOG_WARN, request_id,
           "Runtime API refused the post", f, (int)TH_ARRAY_LEN(f));
  }
  return v;
}

/* POST invocation/<id>/error. */
static th_lambda_verdict post_error(th_lambda *l, const char *request_id, const char *type,
                                    const char *message) {
  char *doc = NULL;
  size_t len = 0;
  th_log_field f[] = {TH_LOG_STR("errorType", type), TH_LOG_STR("error", message)};
  th_log(TH_LOG_ERROR, request_id, "invocation failed", f, (int)TH_ARRAY_LEN(f));
  if (th_lambda_error_json(l, type, message, &doc, &len) != TH_OK) {
    th_log(TH_LOG_ERROR, request_id, "cannot encode the error document", NULL, 0);
    return TH_LAMBDA_DROP;
  }
  th_lambda_verdict v = post_invocation(l, TH_LAMBDA_ERROR, request_id, doc, len, type);
  free(doc);
  return v;
}

th_result th_lambda_init_error(th_lambda *l, const char *error_type, const char *message) {
  char *doc = NULL;
  size_t len = 0;
  th_result res = th_lambda_error_json(l, error_type, message, &doc, &len);
  if (res != TH_OK)
    return res;
  long status = 0;
  CURLcode rc = CURLE_URL_MALFORMAT;
  if (set_url(l, "/init/error", 11, ""))
    rc = perform(l, TH_LAMBDA_INIT_ERROR, l->url, doc, len, error_type, &status);
  free(doc);
  if (rc != CURLE_OK || th_lambda_classify(TH_LAMBDA_INIT_ERROR, status) != TH_LAMBDA_OK) {
    th_log_field f[] = {TH_LOG_NUM("status", status),
                        TH_LOG_STR("error", rc != CURLE_OK ? curl_reason(l, rc) : l->body.data)};
    th_log(TH_LOG_ERROR, NULL, "cannot report the init error to the Runtime API", f,
           (int)TH_ARRAY_LEN(f));
    return TH_ERR_IO;
  }
  return TH_OK;
}

/* ---- the loop ---- */

typedef enum { NEXT_EVENT, NEXT_STOPPED, NEXT_RETRY, NEXT_FATAL } next_outcome;

static next_outcome get_next(th_lambda *l) {
  long status = 0;
  CURLcode rc = perform(l, TH_LAMBDA_NEXT, l->next_url, NULL, 0, NULL, &status);
  if (rc == CURLE_ABORTED_BY_CALLBACK && stop_requested)
    return NEXT_STOPPED;
  if (rc == CURLE_WRITE_ERROR && (l->body_too_large || l->body_nomem) && status == 200 &&
      l->hdr.request_id[0])
    return NEXT_EVENT; /* an event we could not keep: serve_one answers /error */
  if (rc != CURLE_OK) {
    th_log_field f[] = {TH_LOG_STR("error", l->body_nomem ? "out of memory" : curl_reason(l, rc))};
    th_log(TH_LOG_ERROR, NULL, "Runtime API next failed", f, 1);
    return NEXT_RETRY;
  }
  th_lambda_verdict v = th_lambda_classify(TH_LAMBDA_NEXT, status);
  if (v == TH_LAMBDA_OK && !l->hdr.request_id[0]) {
    th_log(TH_LOG_ERROR, NULL, "Runtime API next: no Lambda-Runtime-Aws-Request-Id", NULL, 0);
    return NEXT_RETRY;
  }
  if (v != TH_LAMBDA_OK) {
    th_log_field f[] = {TH_LOG_NUM("status", status), TH_LOG_STR("answer", l->body.data)};
    th_log(TH_LOG_ERROR, NULL, "Runtime API refused next", f, (int)TH_ARRAY_LEN(f));
    return v == TH_LAMBDA_FATAL ? NEXT_FATAL : NEXT_RETRY;
  }
  return NEXT_EVENT;
}

/* _X_AMZN_TRACE_ID for this invocation: its trace id, or unset. */
static void set_trace_env(th_lambda *l, const char *trace_id) {
  static const char prefix[] = TRACE_ENV "=";
  size_t n = strlen(trace_id);
  if (n > sizeof l->trace_env - sizeof prefix)
    n = 0; /* cannot happen: the header field is smaller */
  if (n) {
    memcpy(l->trace_env, prefix, sizeof prefix - 1);
    memcpy(l->trace_env + sizeof prefix - 1, trace_id, n + 1);
    if (!l->trace_in_env && putenv(l->trace_env) == 0)
      l->trace_in_env = 1;
  } else if (l->trace_in_env || getenv(TRACE_ENV)) {
    unsetenv(TRACE_ENV);
    l->trace_in_env = 0;
  }
}

/* The invocation's EMF line, once it is answered (the client does not wait
 * for it). status: the one the client got, 0 when it got none (an /error). */
static void emit_metrics(th_lambda *l, const answer_headers *h, const th_invoke_result *res,
                         int status) {
  if (!l->metrics)
    return;
  th_metrics_sample ms = {.operation = res->operation, .status = status,
                          .latency_ms = res->duration_ms, .store = res->store,
                          .request_id = h->request_id, .trace_id = h->trace_id};
  th_metrics_emit(l->metrics, &ms);
}

/* Runs the event in l->body and answers it. Returns 1 when the Runtime API
 * reported a non-recoverable state. */
static int serve_one(th_lambda *l, th_host *host) {
  /* A copy: every later call on the handle overwrites l->hdr. */
  answer_headers hdr = l->hdr;
  const answer_headers *h = &hdr;
  int too_large = l->body_too_large, nomem = l->body_nomem;
  const char *rid = h->request_id;
  set_trace_env(l, h->trace_id);
  double deadline = th_lambda_deadline(h->deadline[0] ? h->deadline : NULL, epoch_now_ms(),
                                       th_now_ms());
  if (th_log_enabled(TH_LOG_DEBUG)) {
    th_log_field f[4];
    int n = 0;
    f[n++] = TH_LOG_NUM("eventBytes", l->body.len);
    if (deadline > 0)
      f[n++] = TH_LOG_NUM("remainingMs", trunc(deadline - th_now_ms()));
    if (h->function_arn[0])
      f[n++] = TH_LOG_STR("functionArn", h->function_arn);
    if (getenv(TRACE_ENV))
      f[n++] = TH_LOG_STR("traceId", getenv(TRACE_ENV));
    th_log(TH_LOG_DEBUG, rid, "invocation", f, n);
  }

  th_lambda_verdict v;
  if (too_large || nomem) {
    char msg[160] = "out of memory reading the event";
    if (too_large)
      snprintf(msg, sizeof msg, "the event is larger than %zu bytes",
               (size_t)TH_LAMBDA_MAX_EVENT_BYTES);
    v = post_error(l, rid, too_large ? "Runtime.PayloadTooLarge" : "Runtime.Unknown", msg);
    th_invoke_result none = {0};
    emit_metrics(l, h, &none, 0);
    th_buf_free(&l->body);
    return v == TH_LAMBDA_FATAL;
  }
  th_invoke_ctx ctx = {.request_id = rid,
                       .deadline_ms = deadline,
                       .function_arn = h->function_arn[0] ? h->function_arn : NULL,
                       .in_route = th_watchdog_route_flag(l->watchdog)};
  char *response = NULL;
  size_t rlen = 0;
  char err[1024] = "";
  th_invoke_result res = {0};
  int answered = 0; /* the proxy response was posted and taken */
  th_watchdog_arm(l->watchdog, rid, deadline);
  th_result rc = th_host_invoke(host, l->body.data ? l->body.data : "", l->body.len, &ctx,
                                &response, &rlen, &res, err, sizeof err);
  th_watchdog_disarm(l->watchdog); /* does not return if the watchdog answered */
  if (rc == TH_OK && rlen > TH_LAMBDA_MAX_RESPONSE_BYTES) {
    char msg[160];
    snprintf(msg, sizeof msg, "the response is %zu bytes, over Lambda's limit of %zu", rlen,
             (size_t)TH_LAMBDA_MAX_RESPONSE_BYTES);
    v = post_error(l, rid, "Function.ResponseSizeTooLarge", msg);
  } else if (rc == TH_OK) {
    v = post_invocation(l, TH_LAMBDA_RESPONSE, rid, response, rlen, NULL);
    answered = v == TH_LAMBDA_OK;
    if (v == TH_LAMBDA_TOO_LARGE)
      v = post_error(l, rid, "Function.ResponseSizeTooLarge",
                     "the Runtime API refused the response as too large");
  } else if (rc == TH_ERR_INVALID) {
    v = post_error(l, rid, "Runtime.InvalidEvent", err);
  } else {
    v = post_error(l, rid, "Runtime.Unknown", err[0] ? err : th_result_name(rc));
  }
  free(response);
  emit_metrics(l, h, &res, answered ? res.status : 0);
  /* An unusually large event leaves no big buffer behind. */
  if (l->body.cap > ((size_t)1 << 20))
    th_buf_free(&l->body);
  return v == TH_LAMBDA_FATAL;
}

/* Sleeps ms, or less when a signal arrives. */
static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int th_lambda_run(th_lambda *l, th_host *host, int lua_timeout_ms) {
  char err[256];
  if (th_watchdog_start(host, l->base, lua_timeout_ms, TH_LAMBDA_DEADLINE_MARGIN_MS, &l->watchdog,
                        err, sizeof err) != TH_OK) {
    th_log_field f[] = {TH_LOG_STR("error", err)};
    th_log(TH_LOG_ERROR, NULL, "cannot start the Lambda loop's watchdog", f, 1);
    return 1;
  }
  struct sigaction stop = {0}, ignore = {0}, old_term, old_int, old_pipe;
  stop.sa_handler = on_stop_signal; /* no SA_RESTART: let waits see EINTR */
  sigemptyset(&stop.sa_mask);
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  stop_requested = 0;
  sigaction(SIGTERM, &stop, &old_term);
  sigaction(SIGINT, &stop, &old_int);
  sigaction(SIGPIPE, &ignore, &old_pipe);

  th_log_field vf[] = {TH_LOG_STR("version", TH_VERSION), TH_LOG_STR("commit", TH_COMMIT),
                       TH_LOG_STR("buildType", TH_BUILD_TYPE)};
  th_log(TH_LOG_INFO, NULL, "Runtime API loop started", vf, (int)TH_ARRAY_LEN(vf));
  int status = 0, failures = 0;
  long pause = RETRY_FIRST_MS;
  while (!stop_requested) {
    next_outcome o = get_next(l);
    if (o == NEXT_STOPPED)
      break;
    if (o == NEXT_FATAL) {
      status = 1;
      break;
    }
    if (o == NEXT_RETRY) {
      if (++failures >= MAX_NEXT_FAILURES) {
        th_log(TH_LOG_ERROR, NULL, "Runtime API unavailable: giving up", NULL, 0);
        status = 1;
        break;
      }
      pause_ms(pause);
      pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
      continue;
    }
    failures = 0;
    pause = RETRY_FIRST_MS;
    if (serve_one(l, host)) {
      status = 1;
      break;
    }
  }
  th_log_field f[] = {TH_LOG_STR("reason", status ? "Runtime API error" : "signal")};
  th_log(status ? TH_LOG_ERROR : TH_LOG_INFO, NULL, "Runtime API loop stopped", f, 1);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGPIPE, &old_pipe, NULL);
  th_watchdog_stop(l->watchdog);
  l->watchdog = NULL;
  return status;
}
