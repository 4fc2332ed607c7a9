/* The DynamoDB store against a real DynamoDB-compatible server (dynalite),
 * run under tests/integration/with_dynalite.sh, which provides the endpoint,
 * the table and dummy credentials in the environment.
 *
 *   - the shared store contract suite (every check must pass);
 *   - 1000 sequential operations on one store use one TCP connection
 *     (counted by libcurl, and by a proxy that counts accepted connections);
 *   - retries, through a fault-injecting proxy in a thread of this program
 *     that answers chosen requests with throttling or 5xx errors, slows
 *     down, loses answers of requests it did forward, corrupts CRCs or closes
 *     connections, and forwards everything else to dynalite: attempt counts,
 *     the throttled/unavailable mapping after the last attempt, the deadline,
 *     a create whose first attempt landed, and secrets kept out of errors
 *     and logs;
 *   - scans (Queries of one owner's partition) whose last page is exactly
 *     full, or which DynamoDB cuts short (1 MB pages);
 *   - TLS: verification against SSL_CERT_FILE, keep-alive over https, an
 *     unknown CA refused. */
#include "../unit/check.h"
#include "config.h"
#include "dynamodb.h"
#include "http.h"
#include "log.h"
#include "store.h"
#include "store_contract.h"
#include "store_dynamodb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static th_config cfg; /* from the environment (with_dynalite.sh) */
static int upstream_port;

/* ============================================================ the proxy */

enum { FWD, FAIL, LAND_THEN_FAIL, BAD_CRC };
#define MAX_CONNS 512

typedef struct proxy {
  int listen_fd, port;
  pthread_t thread;
  pthread_mutex_t mu;
  /* What to do (under mu). Faults apply to requests whose X-Amz-Target
   * ends with `target` ("" for all). */
  char target[64];
  int fail_n, fail_status;
  char fail_body[700], fail_headers[300];
  int land_then_fail_n, bad_crc_n, delay_ms, close_after;
  /* What happened. */
  int requests, matched, accepted;
  /* Connection threads. */
  pthread_t conns[MAX_CONNS];
  int conn_fd[MAX_CONNS], nconns, stop;
} proxy;

static proxy P;

static int send_all(int fd, const void *p, size_t n) {
  const char *s = p;
  while (n) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR)
        continue;
      return -1;
    }
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads one HTTP message (head + Content-Length body) into buf. Returns its
 * length, 0 on a clean EOF before anything, -1 on error. */
static ssize_t read_message(int fd, char *buf, size_t cap, size_t *head_len, long *content_length) {
  size_t len = 0;
  char *end = NULL;
  while (!end) {
    if (len + 1 >= cap)
      return -1;
    ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return len == 0 && n == 0 ? 0 : -1;
    len += (size_t)n;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  *head_len = (size_t)(end - buf) + 4;
  long cl = 0;
  for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2) {
    if (strncasecmp(p, "Content-Length:", 15) == 0)
      cl = strtol(p + 15, NULL, 10);
    if (!strstr(p, "\r\n"))
      break;
  }
  if (cl < 0 || *head_len + (size_t)cl >= cap)
    return -1;
  while (len < *head_len + (size_t)cl) {
    ssize_t n = recv(fd, buf + len, *head_len + (size_t)cl - len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    len += (size_t)n;
  }
  buf[len] = '\0';
  *content_length = cl;
  return (ssize_t)len;
}

/* Copies the value of header `name` out of an HTTP head. */
static void header_value(const char *head, size_t head_len, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  out[0] = '\0';
  for (const char *p = head; p && p < head + head_len; p = strstr(p, "\r\n")) {
    if (p != head)
      p += 2;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1, *e = strstr(v, "\r\n");
      while (*v == ' ')
        v++;
      size_t n = e ? (size_t)(e - v) : strlen(v);
      if (n >= cap)
        n = cap - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return;
    }
  }
}

static int respond(int fd, int status, const char *extra_headers, const char *body, size_t body_len) {
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d X\r\nContent-Type: application/x-amz-json-1.0\r\n"
                   "Content-Length: %zu\r\n%s\r\n",
                   status, body_len, extra_headers ? extra_headers : "");
  return send_all(fd, head, (size_t)n) || send_all(fd, body, body_len) ? -1 : 0;
}

/* Sends the request to dynalite and reads its answer into resp. */
static ssize_t forward(const char *req, size_t req_len, char *resp, size_t cap, size_t *head_len) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)upstream_port)};
  long cl;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0)
    return -1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ssize_t n = -1;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && send_all(fd, req, req_len) == 0)
    n = read_message(fd, resp, cap, head_len, &cl);
  close(fd);
  return n;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

static void *serve_conn(void *arg) {
  int slot = (int)(intptr_t)arg;
  pthread_mutex_lock(&P.mu);
  int fd = P.conn_fd[slot];
  pthread_mutex_unlock(&P.mu);
  size_t cap = 8u << 20;
  char *req = malloc(cap), *resp = malloc(cap);
  while (req && resp) {
    size_t head_len, rhead;
    long cl;
    ssize_t n = read_message(fd, req, cap, &head_len, &cl);
    if (n <= 0)
      break;
    char target[128];
    header_value(req, head_len, "X-Amz-Target", target, sizeof target);
    pthread_mutex_lock(&P.mu);
    size_t tl = strlen(target), fl = strlen(P.target);
    int match = !fl || (tl >= fl && strcmp(target + tl - fl, P.target) == 0);
    int action = FWD, delay = P.delay_ms, close_after = P.close_after, status = P.fail_status;
    char body[sizeof P.fail_body], headers[sizeof P.fail_headers];
    memcpy(body, P.fail_body, sizeof body);
    memcpy(headers, P.fail_headers, sizeof headers);
    P.requests++;
    if (match) {
      P.matched++;
      if (P.fail_n > 0) {
        P.fail_n--;
        action = FAIL;
      } else if (P.land_then_fail_n > 0) {
        P.land_then_fail_n--;
        action = LAND_THEN_FAIL;
      } else if (P.bad_crc_n > 0) {
        P.bad_crc_n--;
        action = BAD_CRC;
      }
    }
    pthread_mutex_unlock(&P.mu);
    for (int waited = 0; waited < delay && !P.stop; waited += 10)
      sleep_ms(10);
    int bad = 0;
    if (action == FAIL) {
      bad = respond(fd, status, headers, body, strlen(body));
    } else {
      ssize_t m = forward(req, (size_t)n, resp, cap, &rhead);
      if (m < 0) {
        bad = 1;
      } else if (action == LAND_THEN_FAIL) {
        static const char lost[] = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#InternalServerError\","
                                   "\"message\":\"Internal server error\"}";
        bad = respond(fd, 500, NULL, lost, strlen(lost));
      } else {
        char crc[32], rid[128], extra[256];
        header_value(resp, rhead, "x-amz-crc32", crc, sizeof crc);
        header_value(resp, rhead, "x-amzn-RequestId", rid, sizeof rid);
        snprintf(extra, sizeof extra, "x-amz-crc32: %s\r\nx-amzn-RequestId: %s\r\n",
                 action == BAD_CRC ? "12345" : crc, rid);
        bad = respond(fd, (int)strtol(resp + 9, NULL, 10), extra, resp + rhead, (size_t)m - rhead);
      }
    }
    if (bad || close_after)
      break;
  }
  free(req);
  free(resp);
  pthread_mutex_lock(&P.mu);
  P.conn_fd[slot] = -1;
  close(fd);
  pthread_mutex_unlock(&P.mu);
  return NULL;
}

static void *accept_loop(void *unused) {
  (void)unused;
  for (;;) {
    int fd = accept(P.listen_fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR)
        continue;
      return NULL; /* shut down */
    }
    pthread_mutex_lock(&P.mu);
    if (P.stop || P.nconns >= MAX_CONNS) {
      pthread_mutex_unlock(&P.mu);
      close(fd);
      continue;
    }
    int one = 1; /* answers go out at once (no Nagle / delayed-ACK stalls) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int slot = P.nconns++;
    P.conn_fd[slot] = fd;
    P.accepted++;
    pthread_create(&P.conns[slot], NULL, serve_conn, (void *)(intptr_t)slot);
    pthread_mutex_unlock(&P.mu);
  }
}

static int proxy_start(void) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t al = sizeof a;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  pthread_mutex_init(&P.mu, NULL);
  P.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (P.listen_fd < 0 || bind(P.listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(P.listen_fd, 64) != 0 || getsockname(P.listen_fd, (struct sockaddr *)&a, &al) != 0)
    return -1;
  P.port = ntohs(a.sin_port);
  return pthread_create(&P.thread, NULL, accept_loop, NULL) == 0 ? 0 : -1;
}

static void proxy_stop(void) {
  pthread_mutex_lock(&P.mu);
  P.stop = 1;
  pthread_mutex_unlock(&P.mu);
  shutdown(P.listen_fd, SHUT_RDWR);
  pthread_join(P.thread, NULL);
  close(P.listen_fd);
  pthread_mutex_lock(&P.mu);
  for (int i = 0; i < P.nconns; i++)
    if (P.conn_fd[i] >= 0)
      shutdown(P.conn_fd[i], SHUT_RDWR);
  int n = P.nconns;
  pthread_mutex_unlock(&P.mu);
  for (int i = 0; i < n; i++)
    pthread_join(P.conns[i], NULL);
  pthread_mutex_destroy(&P.mu);
}

/* Sets the faults for the next requests and zeroes the counters. */
static void proxy_set(const char *target, int fail_n, int status, const char *body,
                      const char *headers) {
  pthread_mutex_lock(&P.mu);
  snprintf(P.target, sizeof P.target, "%s", target ? target : "");
  P.fail_n = fail_n;
  P.fail_status = status;
  snprintf(P.fail_body, sizeof P.fail_body, "%s", body ? body : "");
  snprintf(P.fail_headers, sizeof P.fail_headers, "%s", headers ? headers : "");
  P.land_then_fail_n = P.bad_crc_n = P.delay_ms = P.close_after = 0;
  P.requests = P.matched = P.accepted = 0;
  pthread_mutex_unlock(&P.mu);
}

static int proxy_count(int *field) {
  pthread_mutex_lock(&P.mu);
  int v = *field;
  pthread_mutex_unlock(&P.mu);
  return v;
}

#define THROTTLED_BODY                                                                          \
  "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException\","    \
  "\"message\":\"The level of configured provisioned throughput for the table was exceeded.\"}"

/* ============================================================== helpers */

static th_store *open_cfg(const th_config *c) {
  char err[512];
  th_store *s = th_store_dynamodb_open(c, err, sizeof err);
  if (!s)
    fprintf(stderr, "open: %s\n", err);
  else
    th_store_set_owner(s, NULL); /* outside the contract suite: the public owner (auth off) */
  return s;
}

/* A store on the proxy (max_attempts 0: the configured default). */
static th_store *open_proxy(int max_attempts) {
  char url[64];
  th_config c = cfg;
  snprintf(url, sizeof url, "http://127.0.0.1:%d", P.port);
  c.dynamodb_endpoint = url;
  if (max_attempts)
    c.aws_max_attempts = max_attempts;
  return open_cfg(&c);
}

static th_store *open_fresh(void *ctx) {
  (void)ctx;
  return open_cfg(&cfg);
}

static void new_id(char *out, size_t n, const char *tag) {
  static unsigned seq;
  snprintf(out, n, "it-%s-%ld-%u-%u", tag, (long)getpid(), (unsigned)time(NULL), seq++);
}

static th_result op_get(th_store *s, const char *id) {
  char *item = NULL;
  s->error[0] = '\0';
  th_result r = s->ops->get(s, id, &item);
  free(item);
  return r;
}

static void drop(th_store *s, const char *id) {
  char *old = NULL;
  s->deadline_ms = 0;
  s->ops->remove(s, id, &old);
  free(old);
}

/* ================================================================ tests */

static void test_contract(void) {
  int failed = th_store_contract_run(open_fresh, NULL, stdout);
  CHECK(failed == 0, "%d contract checks failed", failed);
}

/* 250 × (create, get, update, remove) on one store. */
static int thousand_ops(th_store *s, double *ms) {
  char id[96], item[256];
  int ok = 0;
  double t0 = th_now_ms();
  for (int i = 0; i < 250; i++) {
    char *out = NULL;
    new_id(id, sizeof id, "conn");
    snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"n\":{\"N\":\"%d\"}}", id, i);
    ok += s->ops->create(s, id, item) == TH_OK;
    ok += s->ops->get(s, id, &out) == TH_OK;
    free(out);
    out = NULL;
    ok += s->ops->update(s, id, "{\"done\":{\"BOOL\":true}}", &out) == TH_OK;
    free(out);
    out = NULL;
    ok += s->ops->remove(s, id, &out) == TH_OK;
    free(out);
  }
  *ms = th_now_ms() - t0;
  return ok;
}

static void test_one_connection(void) {
  double ms;
  th_store *s = open_fresh(NULL);
  if (!s)
    return;
  int ok = thousand_ops(s, &ms);
  th_http_stats st = th_store_dynamodb_http_stats(s);
  printf("connections: 1000 operations against dynalite: %d ok, %ld requests, %ld TCP connection(s), "
         "%.0f ms (%.0f ops/s)\n", ok, st.requests, st.connections, ms, 1000 / (ms / 1000));
  CHECK(ok == 1000, "%d of 1000 operations ok (%s)", ok, s->error);
  CHECK(st.requests == 1000, "%ld requests", st.requests);
  CHECK(st.connections == 1, "%ld TCP connections for 1000 operations", st.connections);
  s->ops->close(s);

  /* The same seen from the other side: connections the server accepted. */
  proxy_set(NULL, 0, 0, NULL, NULL);
  s = open_proxy(0);
  if (!s)
    return;
  ok = thousand_ops(s, &ms);
  st = th_store_dynamodb_http_stats(s);
  int accepted = proxy_count(&P.accepted);
  printf("connections: 1000 operations through the counting proxy: %d ok, %d connection(s) "
         "accepted, %ld counted by curl\n", ok, accepted, st.connections);
  CHECK(ok == 1000 && accepted == 1 && st.connections == 1, "proxy: %d ok, %d accepted", ok, accepted);
  s->ops->close(s);
}

/* Throttled twice, then served: three requests, success. */
static void test_throttled_then_ok(void) {
  char id[96];
  new_id(id, sizeof id, "thr");
  th_store *s = open_proxy(0);
  if (!s)
    return;
  proxy_set("GetItem", 2, 400, THROTTLED_BODY, NULL);
  double t0 = th_now_ms();
  th_result r = op_get(s, id);
  double ms = th_now_ms() - t0;
  int n = proxy_count(&P.matched);
  printf("retry: 2 x ProvisionedThroughputExceeded then served: %s after %d requests in %.0f ms\n",
         th_result_name(r), n, ms);
  CHECK(r == TH_ERR_NOT_FOUND && n == 3, "%s, %d requests (%s)", th_result_name(r), n, s->error);
  CHECK(ms < 1000 + 2000 + 500, "backoff took %.0f ms (at most 1 s + 2 s)", ms);
  s->ops->close(s);
}

static void test_gives_up(void) {
  char id[96];
  new_id(id, sizeof id, "up");
  th_store *s = open_proxy(0);
  if (!s)
    return;
  proxy_set("GetItem", 1000, 400, THROTTLED_BODY, NULL);
  double t0 = th_now_ms();
  th_result r = op_get(s, id);
  double ms = th_now_ms() - t0;
  int n = proxy_count(&P.matched);
  printf("retry: always throttled: %s after %d requests in %.0f ms: %s\n", th_result_name(r), n, ms,
         s->error);
  CHECK(r == TH_ERR_THROTTLED && n == 3, "%s, %d requests", th_result_name(r), n);
  CHECK(strstr(s->error, "ProvisionedThroughputExceededException") && strstr(s->error, "3 attempts"),
        "detail: %s", s->error);

  proxy_set("GetItem", 1000, 503, "", NULL);
  t0 = th_now_ms();
  r = op_get(s, id);
  ms = th_now_ms() - t0;
  n = proxy_count(&P.matched);
  printf("retry: always 503: %s after %d requests in %.0f ms: %s\n", th_result_name(r), n, ms, s->error);
  CHECK(r == TH_ERR_UNAVAILABLE && n == 3, "%s, %d requests", th_result_name(r), n);
  CHECK(ms < 25 + 50 + 300, "5xx backoff (25 ms base) took %.0f ms", ms);
  s->ops->close(s);

  /* AWS_MAX_ATTEMPTS. */
  s = open_proxy(5);
  if (!s)
    return;
  proxy_set("GetItem", 1000, 500,
            "{\"__type\":\"com.amazonaws.dynamodb.v20120810#InternalServerError\",\"message\":\"x\"}", NULL);
  r = op_get(s, id);
  n = proxy_count(&P.matched);
  printf("retry: AWS_MAX_ATTEMPTS=5, always 500: %s after %d requests\n", th_result_name(r), n);
  CHECK(r == TH_ERR_UNAVAILABLE && n == 5, "%s, %d requests", th_result_name(r), n);
  s->ops->close(s);

  /* The error type from the header alone; one attempt. */
  s = open_proxy(1);
  if (!s)
    return;
  proxy_set("GetItem", 1000, 400, "",
            "X-Amzn-Errortype: ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/\r\n");
  r = op_get(s, id);
  n = proxy_count(&P.matched);
  CHECK(r == TH_ERR_THROTTLED && n == 1 && strstr(s->error, "ThrottlingException (HTTP 400"),
        "header only: %s, %d requests, %s", th_result_name(r), n, s->error);
  s->ops->close(s);
}

/* What is not retried, and what it maps to. */
static void test_not_retried(void) {
  static const struct {
    const char *type;
    th_result want;
  } cases[] = {
    {"com.amazon.coral.validate#ValidationException", TH_ERR_INVALID},
    {"com.amazon.coral.service#SerializationException", TH_ERR_INVALID},
    {"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", TH_ERR_INTERNAL},
    {"com.amazon.coral.service#AccessDeniedException", TH_ERR_INTERNAL},
    {"com.amazon.coral.service#UnrecognizedClientException", TH_ERR_INTERNAL},
    {"com.amazonaws.dynamodb.v20120810#TransactionConflictException", TH_ERR_UNAVAILABLE},
  };
  char id[96], body[512];
  new_id(id, sizeof id, "nr");
  th_store *s = open_proxy(0);
  if (!s)
    return;
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    snprintf(body, sizeof body, "{\"__type\":\"%s\",\"message\":\"test message\"}", cases[i].type);
    proxy_set("GetItem", 1000, 400, body, NULL);
    th_result r = op_get(s, id);
    int n = proxy_count(&P.matched);
    const char *name = strchr(cases[i].type, '#') + 1;
    CHECK(r == cases[i].want && n == 1 && strstr(s->error, name) && strstr(s->error, "test message"),
          "%s: %s after %d requests: %s", name, th_result_name(r), n, s->error);
  }
  s->ops->close(s);
}

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TOKEN "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN0123456789abcdef"
#define AKID "AKIAIOSFODNN7EXAMPLE"

/* Secrets never reach s->error or the log, even when the server quotes them. */
static void test_secrets(void) {
  char url[64], id[96], body[512], path[] = "/tmp/th_ddb_log_XXXXXX";
  th_config c = cfg;
  snprintf(url, sizeof url, "http://127.0.0.1:%d", P.port);
  c.dynamodb_endpoint = url;
  c.aws_access_key_id = AKID;
  c.aws_secret_access_key = SECRET;
  c.aws_session_token = TOKEN;
  new_id(id, sizeof id, "sec");
  th_store *s = open_cfg(&c);
  int logfd = mkstemp(path);
  if (!s || logfd < 0)
    return;
  fflush(stderr);
  int saved = dup(2);
  dup2(logfd, 2);
  th_log_configure(TH_LOG_TRACE, 1);

  snprintf(body, sizeof body, "{\"__type\":\"ServiceUnavailable\",\"message\":\"key %s secret %s token %s\"}",
           AKID, SECRET, TOKEN);
  proxy_set("GetItem", 1000, 503, body, NULL);
  th_result r1 = op_get(s, id);
  char err1[512];
  snprintf(err1, sizeof err1, "%s", s->error);
  snprintf(body, sizeof body, "{\"__type\":\"com.amazon.coral.service#InvalidSignatureException\","
           "\"message\":\"The Canonical String for this request should have been 'x-amz-security-token:%s'\"}",
           TOKEN);
  proxy_set("GetItem", 1000, 400, body, NULL);
  th_result r2 = op_get(s, id);
  char err2[512];
  snprintf(err2, sizeof err2, "%s", s->error);
  /* A long message cut inside the secret: its first part must not show. */
  char pad[241];
  memset(pad, 'x', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  snprintf(body, sizeof body, "{\"__type\":\"AccessDeniedException\",\"message\":\"%s%s\"}", pad, SECRET);
  proxy_set("GetItem", 1000, 400, body, NULL);
  th_result r4 = op_get(s, id);
  char err4[512];
  snprintf(err4, sizeof err4, "%s", s->error);
  proxy_set(NULL, 0, 0, NULL, NULL);
  th_result r3 = op_get(s, id); /* a real request: signed with the token */

  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  th_log_configure(TH_LOG_WARN, 0);
  char log[65536] = "";
  ssize_t n = pread(logfd, log, sizeof log - 1, 0);
  log[n > 0 ? n : 0] = '\0';
  close(logfd);
  unlink(path);

  CHECK(r1 == TH_ERR_UNAVAILABLE && r2 == TH_ERR_INTERNAL && r3 == TH_ERR_NOT_FOUND, "%s %s %s",
        th_result_name(r1), th_result_name(r2), th_result_name(r3));
  static const char *const secrets[] = {SECRET, TOKEN, AKID, "Authorization", "AWS4-HMAC-SHA256",
                                        "Signature="};
  for (size_t i = 0; i < TH_ARRAY_LEN(secrets); i++) {
    CHECK(!strstr(err1, secrets[i]) && !strstr(err2, secrets[i]), "'%s' in an error: %s | %s",
          secrets[i], err1, err2);
    CHECK(!strstr(log, secrets[i]), "'%s' in the log:\n%s", secrets[i], log);
  }
  CHECK(strstr(err1, "key *** secret *** token ***"), "scrubbed: %s", err1);
  char head[9];
  memcpy(head, SECRET, 8);
  head[8] = '\0';
  CHECK(r4 == TH_ERR_INTERNAL && !strstr(err4, head) && strstr(err4, "x***"), "cut secret: %s", err4);
  CHECK(strstr(err2, "withheld"), "signature message withheld: %s", err2);
  CHECK(strstr(log, "dynamodb: retrying") && strstr(log, "\"op\":\"GetItem\""), "retry logged:\n%s", log);
  printf("secrets: error lines '%s' and '%s'; %zu bytes of log without a secret\n", err1, err2,
         strlen(log));
  s->ops->close(s);
}

/* The deadline bounds everything: a slow server, and throttling backoff. */
static void test_deadline(void) {
  char id[96];
  new_id(id, sizeof id, "dl");
  th_store *s = open_proxy(0);
  if (!s)
    return;
  proxy_set(NULL, 0, 0, NULL, NULL);
  pthread_mutex_lock(&P.mu);
  P.delay_ms = 2000;
  pthread_mutex_unlock(&P.mu);
  double t0 = th_now_ms();
  s->deadline_ms = t0 + 300;
  th_result r = op_get(s, id);
  double ms = th_now_ms() - t0;
  printf("deadline: server answering after 2 s, deadline 300 ms: %s in %.0f ms (%s)\n",
         th_result_name(r), ms, s->error);
  CHECK(r == TH_ERR_TIMEOUT, "slow server: %s", th_result_name(r));
  CHECK(ms >= 290 && ms < 350, "slow server: %.0f ms", ms);
  pthread_mutex_lock(&P.mu);
  P.delay_ms = 0;
  pthread_mutex_unlock(&P.mu);

  proxy_set("GetItem", 1000, 400, THROTTLED_BODY, NULL);
  for (int i = 0; i < 5; i++) {
    t0 = th_now_ms();
    s->deadline_ms = t0 + 300;
    r = op_get(s, id);
    ms = th_now_ms() - t0;
    printf("deadline: always throttled, deadline 300 ms: %s in %.0f ms\n", th_result_name(r), ms);
    CHECK((r == TH_ERR_THROTTLED || r == TH_ERR_TIMEOUT) && ms < 350, "%s in %.0f ms",
          th_result_name(r), ms);
  }
  printf("deadline: %d throttled attempts in 5 operations\n", proxy_count(&P.matched));
  s->deadline_ms = 0;
  s->ops->close(s);
}

/* Counts the items of the whole table whose JSON mentions `needle`. */
static int count_in_table(th_store *s, const char *needle) {
  char *after = NULL;
  int found = 0;
  for (;;) {
    char *items = NULL, *last = NULL;
    if (s->ops->scan(s, 1000, after, &items, &last) != TH_OK) {
      found = -1;
      break;
    }
    for (char *p = items; (p = strstr(p, needle)); p += strlen(needle))
      found++;
    free(items);
    free(after);
    after = last;
    if (!after)
      break;
  }
  free(after);
  return found;
}

/* Lost answers: create (landed → OK, or someone else's → EXISTS), update
 * (idempotent), remove (reported unavailable), and a damaged CRC. */
static void test_lost_answers(void) {
  char id[96], id2[96], item[256], needle[128];
  char *out = NULL;
  th_store *direct = open_fresh(NULL), *s = open_proxy(0);
  if (!direct || !s)
    return;
  new_id(id, sizeof id, "land");
  snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"n\":{\"N\":\"1.50\"},\"l\":{\"L\":[]},"
           "\"ss\":{\"SS\":[\"b\",\"a\"]}}", id);
  proxy_set("PutItem", 0, 0, NULL, NULL);
  pthread_mutex_lock(&P.mu);
  P.land_then_fail_n = 1;
  pthread_mutex_unlock(&P.mu);
  th_result r = s->ops->create(s, id, item);
  int puts = proxy_count(&P.matched);
  snprintf(needle, sizeof needle, "\"%s\"", id);
  int copies = count_in_table(direct, needle);
  printf("create whose first attempt landed: %s after %d PutItem requests; %d item(s) in the table\n",
         th_result_name(r), puts, copies);
  CHECK(r == TH_OK && puts == 2 && copies == 1, "%s, %d puts, %d copies (%s)", th_result_name(r),
        puts, copies, s->error);

  /* The same, but the item there is someone else's. */
  new_id(id2, sizeof id2, "other");
  snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"who\":{\"S\":\"first\"}}", id2);
  CHECK(direct->ops->create(direct, id2, item) == TH_OK, "setup: %s", direct->error);
  snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"},\"who\":{\"S\":\"second\"}}", id2);
  proxy_set("PutItem", 0, 0, NULL, NULL);
  pthread_mutex_lock(&P.mu);
  P.land_then_fail_n = 1;
  pthread_mutex_unlock(&P.mu);
  r = s->ops->create(s, id2, item);
  CHECK(r == TH_ERR_EXISTS, "someone else's item: %s (%s)", th_result_name(r), s->error);

  proxy_set("UpdateItem", 0, 0, NULL, NULL);
  pthread_mutex_lock(&P.mu);
  P.land_then_fail_n = 1;
  pthread_mutex_unlock(&P.mu);
  r = s->ops->update(s, id, "{\"n\":{\"N\":\"2\"}}", &out);
  CHECK(r == TH_OK && out && strstr(out, "\"2\"") && proxy_count(&P.matched) == 2,
        "update after a lost answer: %s %s", th_result_name(r), out);
  free(out);
  out = NULL;

  proxy_set("GetItem", 0, 0, NULL, NULL);
  pthread_mutex_lock(&P.mu);
  P.bad_crc_n = 1;
  pthread_mutex_unlock(&P.mu);
  r = s->ops->get(s, id, &out);
  CHECK(r == TH_OK && out && proxy_count(&P.matched) == 2, "bad CRC retried: %s, %d requests",
        th_result_name(r), proxy_count(&P.matched));
  free(out);
  out = NULL;

  proxy_set("DeleteItem", 0, 0, NULL, NULL);
  pthread_mutex_lock(&P.mu);
  P.land_then_fail_n = 1;
  pthread_mutex_unlock(&P.mu);
  r = s->ops->remove(s, id, &out);
  CHECK(r == TH_ERR_UNAVAILABLE && !out && strstr(s->error, "answer was lost"),
        "remove after a lost answer: %s (%s)", th_result_name(r), s->error);
  CHECK(op_get(direct, id) == TH_ERR_NOT_FOUND, "the item is gone");
  drop(direct, id2);
  s->ops->close(s);
  direct->ops->close(direct);
}

/* A server that closes every connection after answering: each request
 * opens a new one, and nothing fails. */
static void test_server_closes(void) {
  char id[96];
  th_store *s = open_proxy(0);
  if (!s)
    return;
  proxy_set(NULL, 0, 0, NULL, NULL);
  pthread_mutex_lock(&P.mu);
  P.close_after = 1;
  pthread_mutex_unlock(&P.mu);
  int ok = 0;
  for (int i = 0; i < 20; i++) {
    new_id(id, sizeof id, "close");
    ok += op_get(s, id) == TH_ERR_NOT_FOUND;
  }
  th_http_stats st = th_store_dynamodb_http_stats(s);
  printf("server closing after each answer: %d of 20 ok, %ld connections\n", ok, st.connections);
  CHECK(ok == 20 && st.connections == 20, "%d ok, %ld connections", ok, st.connections);
  s->ops->close(s);
}

/* List pages: exactly full last pages, and DynamoDB's 1 MB short pages. */
static void test_scan_pages(void) {
  char ids[12][96], item[1536];
  th_store *s = open_fresh(NULL);
  if (!s)
    return;
  int before = count_in_table(s, "\"id\":");
  for (int i = 0; i < 12; i++) {
    new_id(ids[i], sizeof ids[i], "page");
    snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"}}", ids[i]);
    CHECK(s->ops->create(s, ids[i], item) == TH_OK, "create: %s", s->error);
  }
  int total = before + 12;
  static const int limits[] = {1, 2, 3, 4, 6, 12};
  for (size_t k = 0; k < TH_ARRAY_LEN(limits); k++) {
    int lim = limits[k];
    if (total % lim)
      continue;
    char *after = NULL;
    int pages = 0, seen = 0;
    for (;;) {
      char *items = NULL, *last = NULL;
      if (s->ops->scan(s, lim, after, &items, &last) != TH_OK)
        break;
      int n = 0;
      for (char *p = items; (p = strstr(p, "\"id\":")); p += 5)
        n++;
      pages++;
      seen += n;
      CHECK(n == lim, "limit %d, page %d: %d items (full pages only: %d items in all)", lim, pages, n, total);
      free(items);
      free(after);
      after = last;
      if (!after)
        break;
    }
    free(after);
    CHECK(seen == total && pages == total / lim, "limit %d: %d items in %d pages", lim, seen, pages);
  }
  for (int i = 0; i < 12; i++)
    drop(s, ids[i]);

  /* Three items of ~350 KB: DynamoDB (and dynalite) stop a page at 1 MB, so
   * a limit-3 scan needs two requests for its one full page. */
  char big_ids[3][96];
  size_t big = 350 * 1024;
  char *text = malloc(big + 256);
  int made = 0;
  for (int i = 0; i < 3 && text; i++) {
    new_id(big_ids[i], sizeof big_ids[i], "big");
    int h = snprintf(text, big + 256, "{\"id\":{\"S\":\"%s\"},\"pad\":{\"S\":\"", big_ids[i]);
    memset(text + h, 'x', big);
    snprintf(text + h + big, 256, "\"}}");
    made += s->ops->create(s, big_ids[i], text) == TH_OK;
  }
  free(text);
  CHECK(made == 3, "big items: %s", s->error);
  if (before == 0 && made == 3) {
    char *items = NULL, *last = NULL;
    th_http_stats st0 = th_store_dynamodb_http_stats(s);
    th_result r = s->ops->scan(s, 3, NULL, &items, &last);
    th_http_stats st1 = th_store_dynamodb_http_stats(s);
    int n = 0;
    for (char *p = items; p && (p = strstr(p, "\"id\":")); p += 5)
      n++;
    printf("scan: 3 items of 350 KB, limit 3: %s, %d items, last_id %s, %ld Query requests\n",
           th_result_name(r), n, last ? last : "NULL", st1.requests - st0.requests);
    CHECK(r == TH_OK && n == 3 && !last, "short pages joined: %s %d %s", th_result_name(r), n, last);
    CHECK(st1.requests - st0.requests >= 2, "dynalite cut the page at 1 MB");
    free(items);
    free(last);
  }
  for (int i = 0; i < 3; i++)
    drop(s, big_ids[i]);
  s->ops->close(s);
}

/* TLS (dynalite.sh serves a second dynalite over TLS when it has openssl):
 * the CA bundle named by SSL_CERT_FILE verifies the server, the connection
 * is kept across 1000 operations, and without that CA the certificate is
 * refused (a configuration error, not retried). */
static void test_tls(void) {
  const char *dir = getenv("DYNALITE_DIR");
  char path[512], ca[512], url[96], port[16] = "";
  snprintf(path, sizeof path, "%s/tls_port", dir ? dir : ".");
  snprintf(ca, sizeof ca, "%s/ca.pem", dir ? dir : ".");
  FILE *f = fopen(path, "r");
  if (!f || !fgets(port, sizeof port, f)) {
    printf("tls: skipped (no TLS server: openssl missing?)\n");
    if (f)
      fclose(f);
    return;
  }
  fclose(f);
  snprintf(url, sizeof url, "https://localhost:%ld", strtol(port, NULL, 10));
  th_config c = cfg;
  c.dynamodb_endpoint = url;
  setenv("SSL_CERT_FILE", ca, 1);
  th_store *s = open_cfg(&c);
  unsetenv("SSL_CERT_FILE");
  if (!s)
    return;
  double ms;
  int ok = thousand_ops(s, &ms);
  th_http_stats st = th_store_dynamodb_http_stats(s);
  printf("tls: 1000 operations over https: %d ok, %ld TCP connection(s), %.0f ms\n", ok,
         st.connections, ms);
  CHECK(ok == 1000 && st.connections == 1, "tls: %d ok, %ld connections (%s)", ok, st.connections,
        s->error);
  s->ops->close(s);

  s = open_cfg(&c); /* the system bundle does not know the test CA */
  if (!s)
    return;
  char id[96];
  new_id(id, sizeof id, "tls");
  th_result r = op_get(s, id);
  printf("tls: unknown CA: %s (%s)\n", th_result_name(r), s->error);
  CHECK(r == TH_ERR_INTERNAL && strstr(s->error, "certificate") && strstr(s->error, "1 attempt"),
        "unknown CA: %s (%s)", th_result_name(r), s->error);
  s->ops->close(s);
}

static int parse_port(const char *url) {
  th_http_url u;
  return url && th_http_parse_url(url, &u, NULL) == TH_OK ? u.port : 0;
}

/* Idempotency records (dynamodb.h) are items of the owner's partition that
 * the task operations never reach: claimed, refused as another request's,
 * released — and meanwhile 404 by id, absent from every page, refused as a
 * new task's id or a cursor. (The claim is one PutItem: dynalite can do it;
 * the transaction of the commit is tested on moto.) */
static void test_record_range(void) {
  th_store *s = open_fresh(NULL);
  CHECK(s, "open");
  if (!s)
    return;
  CHECK(s->ops->idem_begin && s->ops->idem_release, "the store has idempotency records");
  if (!s->ops->idem_begin || !s->ops->idem_release) {
    s->ops->close(s);
    return;
  }
  char key[64], rec[128], *out = NULL, *last = NULL;
  new_id(key, sizeof key, "key");
  snprintf(rec, sizeof rec, "%s%s", TH_DDB_IDEM_PREFIX, key);
  th_store_idem a = {.now_ms = (long long)time(NULL) * 1000, .expires_at = time(NULL) + 3600};
  snprintf(a.key, sizeof a.key, "%s", key);
  snprintf(a.fingerprint, sizeof a.fingerprint, "fp-a");
  snprintf(a.token, sizeof a.token, "token-a");
  a.locked_until_ms = a.now_ms + 600000;
  th_idem_state st = TH_IDEM_REPLAY;
  CHECK(s->ops->idem_begin(s, &a, &st, &out) == TH_OK && st == TH_IDEM_NEW, "claim: %s",
        s->error);
  th_store_idem b = a;
  snprintf(b.token, sizeof b.token, "token-b");
  CHECK(s->ops->idem_begin(s, &b, &st, &out) == TH_OK && st == TH_IDEM_IN_FLIGHT,
        "another request, same fingerprint: in flight (%d, %s)", (int)st, s->error);
  snprintf(b.fingerprint, sizeof b.fingerprint, "fp-b");
  CHECK(s->ops->idem_begin(s, &b, &st, &out) == TH_OK && st == TH_IDEM_MISMATCH,
        "another fingerprint: mismatch (%d, %s)", (int)st, s->error);
  CHECK(s->ops->idem_begin(s, &a, &st, &out) == TH_OK && st == TH_IDEM_NEW,
        "the same claim again (a resend after a lost answer): still ours (%d)", (int)st);
  CHECK(op_get(s, rec) == TH_ERR_NOT_FOUND, "get of the record's id: %s", s->error);
  CHECK(s->ops->update(s, rec, "{\"task\":{\"S\":\"x\"}}", &out) == TH_ERR_NOT_FOUND,
        "update of the record's id");
  CHECK(s->ops->remove(s, rec, &out) == TH_ERR_NOT_FOUND, "remove of the record's id");
  char item[256];
  snprintf(item, sizeof item, "{\"id\":{\"S\":\"%s\"}}", rec);
  CHECK(s->ops->create(s, rec, item) == TH_ERR_INVALID, "create at the record's id");
  CHECK(s->ops->scan(s, 1, rec, &out, &last) == TH_ERR_INVALID, "a cursor at the record's id");
  /* Every page of the owner, to the end: never the record. */
  char *after = NULL;
  int pages = 0, seen = 0;
  for (;;) {
    char *items = NULL, *next = NULL;
    th_result r = s->ops->scan(s, 1000, after, &items, &next);
    CHECK(r == TH_OK, "scan: %s", s->error);
    if (r != TH_OK)
      break;
    seen += strstr(items, "idem:") != NULL;
    free(items);
    free(after);
    after = next;
    if (!after || ++pages > 100)
      break;
  }
  free(after);
  CHECK(seen == 0, "a page held an idempotency record");
  CHECK(s->ops->idem_release(s, &b) == TH_OK, "release of another's claim: nothing to drop");
  CHECK(s->ops->idem_begin(s, &b, &st, &out) == TH_OK && st == TH_IDEM_MISMATCH,
        "still a's claim after b's release");
  CHECK(s->ops->idem_release(s, &a) == TH_OK, "release: %s", s->error);
  CHECK(s->ops->idem_begin(s, &b, &st, &out) == TH_OK && st == TH_IDEM_NEW,
        "released: the key is free (%d)", (int)st);
  /* Past its deadline a claim is taken over. */
  a.now_ms = b.locked_until_ms + 1;
  CHECK(s->ops->idem_begin(s, &a, &st, &out) == TH_OK && st == TH_IDEM_NEW,
        "taken over after the deadline (%d, %s)", (int)st, s->error);
  s->ops->idem_release(s, &a);
  s->ops->close(s);
}

int main(void) {
  char err[512];
  if (th_config_from_env(&cfg, ".", err, sizeof err) != TH_OK) {
    fprintf(stderr, "configuration: %s\n", err);
    return 2;
  }
  if (cfg.store_kind != TH_STORE_DYNAMODB || !(upstream_port = parse_port(cfg.dynamodb_endpoint))) {
    fprintf(stderr, "run me under tests/integration/with_dynalite.sh\n");
    th_config_free(&cfg);
    return 2;
  }
  th_log_configure(TH_LOG_WARN, 0);
  if (proxy_start() != 0) {
    fprintf(stderr, "cannot start the proxy: %s\n", strerror(errno));
    return 2;
  }
  test_contract();
  test_one_connection();
  test_throttled_then_ok();
  test_gives_up();
  test_not_retried();
  test_secrets();
  test_deadline();
  test_lost_answers();
  test_server_closes();
  test_scan_pages();
  test_tls();
  test_record_range();
  proxy_stop();
  th_config_free(&cfg);
  th_log_shutdown();
  return CHECK_DONE();
}
