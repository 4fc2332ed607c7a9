#include "serve.h"

#include <uuid/uuid.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "host.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "version.h"

/* Per-connection memory: request line, headers and the read buffer. A header
 * section that does not fit is answered 431 by libmicrohttpd itself. */
#define CONN_MEMORY_LIMIT ((size_t)64 * 1024)
/* Idle seconds before a connection is dropped (API Gateway waits 30 s). */
#define CONN_TIMEOUT_S 30u
#define LISTEN_BACKLOG 128
#define MAX_WORKERS 1024
/* On SIGINT/SIGTERM, requests already started get this long to finish. */
#define DRAIN_MS 10000
/* Then, or at once on a second signal, "stop now": the stores' stop flag cuts
 * the store calls in flight short (a DynamoDB request within 50 ms, see
 * http.c) and their routes answer 503; the answers get this long to go out. */
#define STOP_NOW_MS 2000
/* The exit status when requests were still unanswered after STOP_NOW_MS. */
#define EXIT_UNANSWERED 1
/* "[" IPv6 "]:" port, NUL */
#define ADDR_TEXT_LEN (INET6_ADDRSTRLEN + 16)

/* One worker: a Lua host and the store it borrows, used by one request at a
 * time. last_reload_err keeps a failing reload from being logged per request. */
typedef struct worker {
  th_host *host;
  th_store *store;
  char last_reload_err[512];
} worker;

typedef struct server {
  const th_config *cfg;
  th_jwks_cache *keys;  /* TASKHOST_AUTH=jwt: the key set every host verifies with */
  th_metrics *metrics;  /* TASKHOST_METRICS=stderr: one EMF line per request; else NULL */
  worker *workers;
  int nworkers;  /* workers created (all of them once start-up succeeded) */
  int *idle;     /* stack of indexes of idle workers */
  int nidle;
  int inflight;  /* requests between on_uri and on_completed */
  atomic_int stop_now; /* every worker's store->stop (store.h) */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int sync_ready;
} server;

/* One HTTP request, from the request line to the completion callback. */
typedef struct request_ctx {
  char *raw_query;         /* as sent, without '?' */
  long long time_epoch_ms; /* when the request line arrived */
  double started_ms;       /* th_now_ms() then, for durationMs */
  th_buf body;             /* max = cfg->max_body_bytes */
  int started;             /* the access handler saw the headers */
  int too_large;           /* body past the limit: discard the rest, answer 413 */
  int failed;              /* out of memory collecting the body: answer 500 */
  int nul_in_path;         /* "%00" in the path: the decoded url libmicrohttpd
                              hands over ends there ("/tasks/<id>%00x" would
                              reach the route as "/tasks/<id>"): answer 404 */
} request_ctx;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ---- the worker pool ---- */

static worker *checkout(server *s) {
  pthread_mutex_lock(&s->lock);
  while (s->nidle == 0)
    pthread_cond_wait(&s->cond, &s->lock);
  worker *w = &s->workers[s->idle[--s->nidle]];
  pthread_mutex_unlock(&s->lock);
  return w;
}

static void checkin(server *s, worker *w) {
  pthread_mutex_lock(&s->lock);
  s->idle[s->nidle++] = (int)(w - s->workers);
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->lock);
}

/* Creates every worker up front, so a broken script or store stops start-up
 * rather than the first request. */
static th_result pool_init(server *s, const th_config *cfg, th_serve_open_store_fn open_store,
                           char *err, size_t errlen) {
  s->cfg = cfg;
  if (pthread_mutex_init(&s->lock, NULL) != 0)
    goto nomem;
  if (pthread_cond_init(&s->cond, NULL) != 0) {
    pthread_mutex_destroy(&s->lock);
    goto nomem;
  }
  s->sync_ready = 1;
  s->workers = calloc((size_t)cfg->workers, sizeof *s->workers);
  s->idle = calloc((size_t)cfg->workers, sizeof *s->idle);
  if (!s->workers || !s->idle)
    goto nomem;
  for (int i = 0; i < cfg->workers; i++) {
    worker *w = &s->workers[i];
    w->store = open_store(cfg, err, errlen);
    if (!w->store)
      return TH_ERR_UNAVAILABLE;
    w->store->stop = &s->stop_now;
    th_result rc = th_host_new(cfg, w->store, &w->host, err, errlen);
    if (rc == TH_OK && s->keys && (rc = th_host_verify_tokens(w->host, s->keys)) != TH_OK) {
      th_host_free(w->host);
      set_err(err, errlen, "out of memory starting the HTTP server");
    }
    if (rc != TH_OK) {
      w->store->ops->close(w->store);
      w->store = NULL;
      w->host = NULL;
      return rc;
    }
    s->nworkers++;
    s->idle[s->nidle++] = i;
  }
  return TH_OK;
nomem:
  set_err(err, errlen, "out of memory starting the HTTP server");
  return TH_ERR_NOMEM;
}

static void pool_free(server *s) {
  for (int i = 0; i < s->nworkers; i++) {
    th_host_free(s->workers[i].host); /* the host borrows the store: free it first */
    s->workers[i].store->ops->close(s->workers[i].store);
  }
  free(s->workers);
  free(s->idle);
  if (s->sync_ready) {
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
  }
  s->workers = NULL;
  s->idle = NULL;
  s->nworkers = s->nidle = 0;
  s->sync_ready = 0;
}

/* TASKHOST_AUTH=jwt: the key set, loaded once before any worker exists
 * (a URL is fetched now; jwt.h fetches it again for an unknown kid). */
static th_result load_keys(server *s, const th_config *cfg, char *err, size_t errlen) {
  if (cfg->auth != TH_AUTH_JWT)
    return TH_OK;
  th_result rc = th_config_check_serve(cfg, err, errlen);
  if (rc != TH_OK)
    return rc;
  char why[512] = "";
  th_jwks_report rep = {0};
  rc = th_jwks_cache_new(cfg->jwks, th_now_ms(), &s->keys, &rep, why, sizeof why);
  if (rc != TH_OK) {
    set_err(err, errlen, "cannot load the key set TASKHOST_JWKS=%s: %s", cfg->jwks, why);
    return rc;
  }
  th_log_field f[] = {TH_LOG_STR("jwks", cfg->jwks), TH_LOG_NUM("keys", rep.usable),
                      TH_LOG_NUM("skipped", rep.not_object + rep.not_rsa + rep.not_sig +
                                                rep.other_alg + rep.no_kid + rep.bad_key +
                                                rep.duplicate),
                      TH_LOG_STR("issuer", cfg->jwt_issuer)};
  th_log(TH_LOG_INFO, NULL, "verifying bearer tokens", f, (int)TH_ARRAY_LEN(f));
  return TH_OK;
}

/* ---- addresses ---- */

static socklen_t sockaddr_len(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return (socklen_t)sizeof(struct sockaddr_in);
  if (sa->sa_family == AF_INET6)
    return (socklen_t)sizeof(struct sockaddr_in6);
  return 0;
}

/* "1.2.3.4" / "::1" into out ("" when it cannot be formatted). */
static void format_host(const struct sockaddr *sa, char *out, size_t outlen) {
  socklen_t len = sockaddr_len(sa);
  out[0] = '\0';
  if (!len || getnameinfo(sa, len, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST) != 0)
    out[0] = '\0';
}

/* "1.2.3.4:80" / "[::1]:80". */
static void format_address(const struct sockaddr *sa, char *out, size_t outlen) {
  char host[INET6_ADDRSTRLEN] = "";
  char port[8] = "";
  socklen_t len = sockaddr_len(sa);
  if (!len || getnameinfo(sa, len, host, sizeof host, port, sizeof port,
                          NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(out, outlen, "?");
    return;
  }
  if (sa->sa_family == AF_INET6)
    snprintf(out, outlen, "[%s]:%s", host, port);
  else
    snprintf(out, outlen, "%s:%s", host, port);
}

/* Splits "[HOST:]PORT" / "[IPv6]:PORT" into host and port texts. */
static th_result parse_listen(const char *spec, char *host, size_t hostlen, char *port,
                              size_t portlen, char *err, size_t errlen) {
  const char *h = "127.0.0.1";
  size_t hlen = strlen(h);
  const char *p = spec;
  if (spec[0] == '[') {
    const char *rb = strchr(spec, ']');
    if (!rb || rb[1] != ':')
      goto bad;
    h = spec + 1;
    hlen = (size_t)(rb - h);
    p = rb + 2;
  } else {
    const char *colon = strrchr(spec, ':');
    if (colon) {
      if (memchr(spec, ':', (size_t)(colon - spec))) {
        set_err(err, errlen, "invalid listen address '%s': write IPv6 addresses in brackets, "
                             "e.g. [::1]:3000", spec);
        return TH_ERR_INVALID;
      }
      h = spec;
      hlen = (size_t)(colon - spec);
      p = colon + 1;
    }
  }
  if (hlen == 0 || hlen >= hostlen)
    goto bad;
  size_t plen = strlen(p);
  if (plen == 0 || plen > 5 || plen >= portlen || strspn(p, "0123456789") != plen)
    goto bad;
  char *end = NULL;
  long n = strtol(p, &end, 10);
  if (*end != '\0' || n < 0 || n > 65535)
    goto bad;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  memcpy(port, p, plen + 1);
  return TH_OK;
bad:
  set_err(err, errlen, "invalid listen address '%s': expected [HOST:]PORT, e.g. 3000, "
                       "127.0.0.1:3000 or [::1]:3000", spec);
  return TH_ERR_INVALID;
}

/* Resolves, binds and listens. We make the socket ourselves (rather than
 * letting libmicrohttpd do it) to say why binding failed; the daemon takes it
 * over. bound: the address actually bound (for port 0, the chosen port). */
static th_result open_listener(const char *spec, int *fd_out, char *bound, size_t boundlen,
                               char *err, size_t errlen) {
  struct addrinfo *res = NULL;
  char host[256];
  char port[8];
  th_result rc = parse_listen(spec, host, sizeof host, port, sizeof port, err, errlen);
  if (rc != TH_OK)
    goto done;

  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int gai = getaddrinfo(host, port, &hints, &res);
  if (gai != 0) {
    set_err(err, errlen, "cannot listen on %s: cannot resolve '%s': %s", spec, host,
            gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
    res = NULL;
    rc = TH_ERR_INVALID;
    goto done;
  }

  rc = TH_ERR_IO;
  set_err(err, errlen, "cannot listen on %s: no IPv4 or IPv6 address", spec);
  /* Names like localhost may give several addresses: the first that binds wins. */
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    char addr[ADDR_TEXT_LEN];
    int one = 1;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    format_address(ai->ai_addr, addr, sizeof addr);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    /* SO_REUSEADDR: a restart need not wait out TIME_WAIT; a port another
     * socket listens on stays taken (Linux semantics). */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
      set_err(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
      if (fd >= 0)
        close(fd);
      continue;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
      format_address((struct sockaddr *)&ss, bound, boundlen);
    else
      snprintf(bound, boundlen, "%s", addr);
    *fd_out = fd;
    rc = TH_OK;
    break;
  }
done:
  if (res)
    freeaddrinfo(res);
  return rc;
}

/* ---- one request ---- */

static long long epoch_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Frees a request's context and takes it off the in-flight count. */
static void release(server *s, request_ctx *rq) {
  th_buf_free(&rq->body);
  free(rq->raw_query);
  free(rq);
  pthread_mutex_lock(&s->lock);
  s->inflight--;
  pthread_mutex_unlock(&s->lock);
}

/* Per connection: the request on_uri started and on_completed has not ended.
 * libmicrohttpd (0.9.75) does not call on_completed for a request it refuses
 * itself after on_uri — e.g. ~900 query parameters exhaust the connection's
 * memory pool and it closes the connection without an answer — so the
 * context would leak (with its copy of the query) and `inflight` stay up for
 * good (every shutdown then waits DRAIN_MS). The connection's close frees
 * what is left. */
typedef struct conn_slot {
  request_ctx *rq;
} conn_slot;

static conn_slot *slot_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  server *s = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    *socket_context = calloc(1, sizeof(conn_slot)); /* NULL: no safety net, as before */
    return;
  }
  conn_slot *slot = *socket_context;
  if (slot && slot->rq)
    release(s, slot->rq);
  free(slot);
  *socket_context = NULL;
}

/* Called with the request line, before libmicrohttpd unescapes the URI: the
 * only place the query string is seen as sent. The result becomes the
 * request's context (*con_cls), freed in on_completed. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  server *s = cls;
  request_ctx *rq = calloc(1, sizeof *rq);
  if (!rq)
    return NULL;
  const char *q = strchr(uri, '?');
  size_t path_len = q ? (size_t)(q - uri) : strlen(uri);
  for (size_t i = 0; i + 2 < path_len; i++)
    if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
      rq->nul_in_path = 1;
  rq->raw_query = strdup(q ? q + 1 : "");
  if (!rq->raw_query) {
    free(rq);
    return NULL;
  }
  rq->time_epoch_ms = epoch_ms();
  rq->started_ms = th_now_ms();
  th_buf_init(&rq->body, s->cfg->max_body_bytes);
  pthread_mutex_lock(&s->lock);
  s->inflight++;
  pthread_mutex_unlock(&s->lock);
  conn_slot *slot = slot_of(c);
  if (slot) {
    if (slot->rq) /* the connection's previous request never completed */
      release(s, slot->rq);
    slot->rq = rq;
  }
  return rq;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  server *s = cls;
  request_ctx *rq = *con_cls;
  if (!rq)
    return;
  conn_slot *slot = slot_of(c);
  if (slot && slot->rq == rq)
    slot->rq = NULL;
  *con_cls = NULL;
  release(s, rq);
}

/* libmicrohttpd's own diagnostics, as our log records. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  th_log_field f[] = {TH_LOG_STR("detail", msg)};
  th_log(TH_LOG_WARN, NULL, "libmicrohttpd", f, (int)TH_ARRAY_LEN(f));
}

/* Content-Length past the limit (or too big to parse). */
static int length_exceeds(const char *v, size_t max) {
  unsigned long long n = 0;
  while (*v == ' ' || *v == '\t')
    v++;
  for (; *v >= '0' && *v <= '9'; v++) {
    unsigned d = (unsigned)(*v - '0');
    if (n > (ULLONG_MAX - d) / 10)
      return 1;
    n = n * 10 + d;
  }
  return n > (unsigned long long)max;
}

/* Hands a response to libmicrohttpd (it copies the body). Framing headers
 * are libmicrohttpd's to write. */
static enum MHD_Result send_response(struct MHD_Connection *c, const th_http_response *r) {
  struct MHD_Response *m = MHD_create_response_from_buffer(
      r->body ? r->body_len : 0, r->body ? r->body : (char *)"", MHD_RESPMEM_MUST_COPY);
  if (!m)
    return MHD_NO;
  for (size_t i = 0; i < r->nheaders; i++) {
    const char *name = r->header_names[i];
    if (strcasecmp(name, "content-length") == 0 || strcasecmp(name, "transfer-encoding") == 0)
      continue;
    if (MHD_add_response_header(m, name, r->header_values[i]) != MHD_YES) {
      th_log_field f[] = {TH_LOG_STR("header", name)};
      th_log(TH_LOG_WARN, NULL, "response header dropped", f, (int)TH_ARRAY_LEN(f));
    }
  }
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, m);
  MHD_destroy_response(m);
  if (ok != MHD_YES) {
    th_log_field f[] = {TH_LOG_NUM("status", r->status)};
    th_log(TH_LOG_ERROR, NULL, "cannot send response", f, (int)TH_ARRAY_LEN(f));
  }
  return ok;
}

/* Answers status/message without running a route (413, or 500 when the
 * request could not be collected): the host writes the usual JSON and CORS. */
static enum MHD_Result answer_error(server *s, struct MHD_Connection *c, const request_ctx *rq,
                                    const char *method, const char *path, int status,
                                    const char *message) {
  th_http_response resp = {0};
  /* The same record the host writes for the requests it runs. */
  uuid_t u;
  char request_id[37];
  uuid_generate_random(u);
  uuid_unparse_lower(u, request_id);
  double ms = rq ? th_now_ms() - rq->started_ms : 0;
  th_log_field f[] = {TH_LOG_STR("method", method), TH_LOG_STR("path", path),
                      TH_LOG_NUM("status", status), TH_LOG_STR("reason", message),
                      TH_LOG_NUM("durationMs", trunc(ms * 1000) / 1000)};
  th_log(status >= 500 ? TH_LOG_ERROR : TH_LOG_INFO, request_id, "request", f,
         (int)TH_ARRAY_LEN(f));
  worker *w = checkout(s);
  th_result rc = th_host_error_http(w->host, status, message, &resp);
  checkin(s, w);
  if (rc != TH_OK) {
    th_http_response_free(&resp);
    return MHD_NO; /* out of memory: drop the connection */
  }
  enum MHD_Result ok = send_response(c, &resp);
  th_http_response_free(&resp);
  return ok;
}

typedef struct header_list {
  const char **names;
  const char **values;
  size_t n;
  size_t cap;
} header_list;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
  header_list *hl = cls;
  if (hl->n >= hl->cap)
    return MHD_NO;
  hl->names[hl->n] = key;
  hl->values[hl->n] = value ? value : "";
  hl->n++;
  return MHD_YES;
}

/* Logs a failed reload once per distinct message; the old scripts serve on. */
static void reload_scripts(worker *w) {
  char err[512] = "";
  if (th_host_reload_if_changed(w->host, err, sizeof err) == TH_OK) {
    w->last_reload_err[0] = '\0';
    return;
  }
  if (strcmp(err, w->last_reload_err) == 0)
    return;
  snprintf(w->last_reload_err, sizeof w->last_reload_err, "%s", err);
  th_log_field f[] = {TH_LOG_STR("error", err)};
  th_log(TH_LOG_ERROR, NULL, "route scripts not reloaded; previous scripts stay in service", f,
         (int)TH_ARRAY_LEN(f));
}

/* Runs the complete request through a worker's host. */
static enum MHD_Result answer_route(server *s, struct MHD_Connection *c, request_ctx *rq,
                                    const char *path, const char *method) {
  enum MHD_Result ok = MHD_NO;
  header_list hl = {0};
  th_http_response resp = {0};
  worker *w = NULL;
  char ip[INET6_ADDRSTRLEN] = "";

  int n = MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL);
  if (n > 0) {
    hl.cap = (size_t)n;
    hl.names = calloc(hl.cap, sizeof *hl.names);
    hl.values = calloc(hl.cap, sizeof *hl.values);
    if (!hl.names || !hl.values) {
      ok = answer_error(s, c, rq, method, path, 500, "Internal server error");
      goto done;
    }
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &hl);
  }
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci && ci->client_addr)
    format_host(ci->client_addr, ip, sizeof ip);

  th_http_request req = {
      .method = method,
      .path = path,
      .raw_query = rq->raw_query,
      .header_names = hl.names,
      .header_values = hl.values,
      .nheaders = hl.n,
      .body = rq->body.data,
      .body_len = rq->body.len,
      .source_ip = ip,
      .request_id = NULL,
      .time_epoch_ms = rq->time_epoch_ms,
  };
  th_invoke_result res = {0};
  char err[512] = "";

  w = checkout(s);
  reload_scripts(w);
  th_result rc = th_host_invoke_http(w->host, &req, &resp, &res, err, sizeof err);
  if (rc != TH_OK) {
    th_log_field f[] = {TH_LOG_STR("error", err), TH_LOG_STR("result", th_result_name(rc))};
    th_log(TH_LOG_ERROR, res.request_id[0] ? res.request_id : NULL, "request not run", f,
           (int)TH_ARRAY_LEN(f));
    th_http_response_free(&resp);
    rc = th_host_error_http(w->host, 500, "Internal server error", &resp);
  }
  checkin(s, w);
  if (rc == TH_OK)
    ok = send_response(c, &resp);
  if (s->metrics) {
    th_metrics_sample ms = {.operation = res.operation, .status = rc == TH_OK ? resp.status : 0,
                            .latency_ms = res.duration_ms, .store = res.store,
                            .request_id = res.request_id};
    th_metrics_emit(s->metrics, &ms);
  }
done:
  th_http_response_free(&resp);
  free(hl.names);
  free(hl.values);
  return ok;
}

/* Called once with the headers, once per piece of body, and once more at its
 * end; the route runs on that last call. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  server *s = cls;
  request_ctx *rq = *con_cls;
  if (!rq)
    return MHD_NO; /* on_uri ran out of memory */
  if (!rq->started) {
    rq->started = 1;
    if (rq->nul_in_path)
      return answer_error(s, c, rq, method, url, 404, "Not found");
    /* Refused before a byte of body is read (and before 100 Continue). */
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && length_exceeds(cl, s->cfg->max_body_bytes))
      return answer_error(s, c, rq, method, url, 413, "Request body too large");
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    /* Chunked bodies have no length up front: past the limit, the rest is
     * read and dropped, and the answer is 413 (a response cannot be queued
     * in the middle of an upload). */
    if (!rq->too_large && !rq->failed) {
      th_result rc = th_buf_append(&rq->body, upload_data, *upload_data_size);
      if (rc == TH_ERR_TOO_LARGE)
        rq->too_large = 1;
      else if (rc != TH_OK)
        rq->failed = 1;
      if (rc != TH_OK)
        th_buf_free(&rq->body);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (rq->too_large)
    return answer_error(s, c, rq, method, url, 413, "Request body too large");
  if (rq->failed)
    return answer_error(s, c, rq, method, url, 500, "Internal server error");
  return answer_route(s, c, rq, url, method);
}

/* ---- the server ---- */

static int inflight(server *s) {
  pthread_mutex_lock(&s->lock);
  int n = s->inflight;
  pthread_mutex_unlock(&s->lock);
  return n;
}

/* Waits until no request is in flight, for at most ms, or until another
 * SIGINT/SIGTERM (*signalled = 1). Returns the requests still in flight.
 * Zero must be seen twice a tick apart: a connection accepted just before
 * the stop may have its request line read only once its thread is free. */
static int wait_answered(server *s, double ms, const sigset_t *sigs, int *signalled) {
  double until = th_now_ms() + ms;
  const struct timespec tick = {0, 20 * 1000000L};
  int quiet = 0, n = 0;
  *signalled = 0;
  while (quiet < 2) {
    n = inflight(s);
    quiet = n == 0 ? quiet + 1 : 0;
    if (n > 0 && th_now_ms() >= until)
      break;
    if (sigtimedwait(sigs, NULL, &tick) > 0) {
      *signalled = 1;
      break;
    }
  }
  return quiet < 2 ? n : 0;
}

/* libmicrohttpd's stop lets a running handler return but drops its response
 * unsent, so first stop accepting, then wait for the requests already started
 * to be answered (up to DRAIN_MS). A second SIGINT/SIGTERM, or DRAIN_MS
 * passing, means "stop now": the stop flag cuts the store calls in flight
 * short, their routes answer 503, and those answers get STOP_NOW_MS to go
 * out. A request still unanswered then (its route still running: a script
 * stuck in one C call) cannot be stopped, nor its thread joined: the process
 * exits at once with EXIT_UNANSWERED (or on a third signal). Idle keep-alive
 * connections are simply closed by the stop. */
static void stop_server(server *s, struct MHD_Daemon *d, const sigset_t *sigs) {
  MHD_socket lfd = MHD_quiesce_daemon(d);
  if (lfd != MHD_INVALID_SOCKET)
    close(lfd);
  int signalled = 0;
  int n = wait_answered(s, DRAIN_MS, sigs, &signalled);
  if (n > 0 || signalled) {
    atomic_store(&s->stop_now, 1);
    th_log_field f[] = {TH_LOG_NUM("requests", n),
                        TH_LOG_STR("reason", signalled ? "second signal" : "drain time over")};
    th_log(TH_LOG_WARN, NULL,
           "stopping now: store calls in flight are cut short and their requests answered 503",
           f, (int)TH_ARRAY_LEN(f));
    n = wait_answered(s, STOP_NOW_MS, sigs, &signalled);
    if (n > 0) {
      th_log_field u[] = {TH_LOG_NUM("requests", n), TH_LOG_NUM("status", EXIT_UNANSWERED)};
      th_log(TH_LOG_ERROR, NULL,
             "exiting with requests unanswered (their routes are still running)", u,
             (int)TH_ARRAY_LEN(u));
      _exit(EXIT_UNANSWERED);
    }
  }
  MHD_stop_daemon(d);
}

int th_serve_run(const th_config *cfg, const char *listen_addr, th_serve_open_store_fn open_store,
                 char *err, size_t errlen) {
  th_result rc = TH_ERR_INVALID;
  server s;
  struct MHD_Daemon *d = NULL;
  int fd = -1;
  char bound[ADDR_TEXT_LEN] = "";
  sigset_t sigs, old_mask;
  int masked = 0;
  int bad_address = 0;
  memset(&s, 0, sizeof s);

  if (!cfg || !listen_addr || !open_store) {
    set_err(err, errlen, "th_serve_run: missing argument");
    goto done;
  }
  if (cfg->workers < 1 || cfg->workers > MAX_WORKERS) {
    set_err(err, errlen, "invalid worker count %d (1..%d)", cfg->workers, MAX_WORKERS);
    goto done;
  }

  /* Block the stop signals before any thread exists: every thread inherits
   * the mask, so only sigwait below ever sees them. */
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &sigs, &old_mask) != 0) {
    set_err(err, errlen, "cannot block SIGINT/SIGTERM");
    rc = TH_ERR_INTERNAL;
    goto done;
  }
  masked = 1;

  rc = load_keys(&s, cfg, err, errlen);
  if (rc != TH_OK)
    goto done;
  if (cfg->metrics == TH_METRICS_STDERR &&
      (rc = th_metrics_new(cfg->metrics_namespace, cfg->metrics_service, TH_VERSION "+" TH_COMMIT,
                           th_log_level_name(cfg->log_level > TH_LOG_INFO ? cfg->log_level
                                                                          : TH_LOG_INFO),
                           stderr, &s.metrics)) != TH_OK) {
    set_err(err, errlen, "cannot set up the metrics: %s", th_result_name(rc));
    goto done;
  }
  rc = pool_init(&s, cfg, open_store, err, errlen);
  if (rc != TH_OK)
    goto done;
  rc = open_listener(listen_addr, &fd, bound, sizeof bound, err, errlen);
  if (rc != TH_OK) {
    bad_address = rc == TH_ERR_INVALID;
    goto done;
  }

  /* AUTO picks epoll; ITC lets MHD_quiesce_daemon stop the accepting. */
  unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  /* One worker is the polling thread itself: libmicrohttpd warns about a pool
   * of 1 (or 0), so that slot repeats the timeout option instead. */
  enum MHD_OPTION pool_opt = MHD_OPTION_THREAD_POOL_SIZE;
  unsigned int pool_val = (unsigned int)cfg->workers;
  if (cfg->workers == 1) {
    pool_opt = MHD_OPTION_CONNECTION_TIMEOUT;
    pool_val = CONN_TIMEOUT_S;
  }
  d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &s,
                       MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)NULL,
                       MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                       pool_opt, pool_val,
                       MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY_LIMIT,
                       MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT_S,
                       MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)&s,
                       MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)&s,
                       MHD_OPTION_NOTIFY_CONNECTION, on_connection, (void *)&s,
                       MHD_OPTION_END);
  if (!d) {
    /* Whether a failed start closed the socket differs between versions. */
    if (fcntl(fd, F_GETFD) != -1)
      close(fd);
    fd = -1;
    set_err(err, errlen, "cannot start the HTTP server on %s (see the libmicrohttpd log)",
            bound);
    rc = TH_ERR_INTERNAL;
    goto done;
  }
  fd = -1; /* the daemon closes it */

  /* The socket is bound and accepting: callers wait for this line. */
  th_log_field lf[] = {TH_LOG_STR("address", bound), TH_LOG_NUM("workers", cfg->workers),
                       TH_LOG_STR("store", s.workers[0].store->identity),
                       TH_LOG_STR("routes", cfg->routes_dir), TH_LOG_STR("version", TH_VERSION),
                       TH_LOG_STR("commit", TH_COMMIT), TH_LOG_STR("buildType", TH_BUILD_TYPE)};
  th_log(TH_LOG_INFO, NULL, "listening", lf, (int)TH_ARRAY_LEN(lf));

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0)
    ;
  th_log_field sf[] = {TH_LOG_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM")};
  th_log(TH_LOG_INFO, NULL, "shutting down", sf, (int)TH_ARRAY_LEN(sf));
  stop_server(&s, d, &sigs);
  d = NULL;
  rc = TH_OK;

done:
  if (d)
    MHD_stop_daemon(d);
  if (fd >= 0)
    close(fd);
  pool_free(&s);
  th_jwks_cache_free(s.keys); /* after the hosts that borrow it */
  th_metrics_free(s.metrics); /* after the workers that write through it */
  if (masked) {
    /* A second Ctrl-C during shutdown is consumed, not fatal once unblocked. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&sigs, NULL, &zero) > 0)
      ;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  }
  if (rc == TH_OK)
    return 0;
  return bad_address ? 2 : 1;
}
