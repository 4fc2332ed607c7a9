/* rapi — a fast stand-in for the AWS Lambda Runtime API (2018-06-01) for
 * benchmarks. It spawns the runtime itself (so it knows the exec instant and
 * the pid), serves it on loopback, and measures:
 *
 *   rapi cold  --starts N --event FILE                      [--] CMD [ARG...]
 *     N times: exec CMD → its first GET invocation/next ("init") → its first
 *     POST .../response ("first"); then SIGKILL, wait4 (the child's rusage:
 *     CPU to the first response). Prints one JSON line per start and a
 *     summary line (median, p95).
 *
 *   rapi warm  --plan FILE [--rss-at N,N,...]               [--] CMD [ARG...]
 *     one process for the whole plan; each plan line is a phase:
 *       NAME COUNT WARMUP TEMPLATE [TEMPLATE...]
 *     TEMPLATE is an event file; "@ID@" in it is replaced by a task id taken
 *     from the Location header of earlier create responses (the pool):
 *       create   ids are collected from the responses
 *       get/update/list...  pool[i % pool size]
 *       delete   (NAME starting with "delete") each pool id once, newest first
 *       mix      (NAME starting with "mix") cycles of the templates in order,
 *                the id being the one the cycle's first template created
 *     Per phase, over the COUNT measured invocations (after WARMUP):
 *     latency = from the event's last byte written to the response's last
 *     byte read (this server's CLOCK_MONOTONIC), and the runtime's CPU
 *     (utime+stime of /proc/PID/stat, all threads) read while it waits in
 *     `next` before the first and after the last measured invocation.
 *     --rss-at: VmRSS/VmHWM when `next` arrives after N invocations in all.
 *
 * Responses must be posted with Content-Length (libcurl, http.client do).
 * The expected statusCode of each phase is checked in the proxy response
 * ("statusCode":NNN); mismatches are counted as errors.
 *
 * Single-threaded, poll(), no allocation on the hot path beyond the event
 * text: a round trip costs a few µs of this server's CPU (measured by
 * `rapi warm` against bench/nullrt.c and reported).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PREFIX "/2018-06-01/runtime"
#define MAX_CLIENTS 8
#define RBUF (1 << 20)
#define MAX_PHASES 32
#define MAX_TEMPLATES 8
#define ARN "arn:aws:lambda:us-east-1:123456789012:function:taskhost-bench"

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("rapi: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t epoch_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    die("cannot open %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (!s || fread(s, 1, (size_t)n, f) != (size_t)n)
    die("cannot read %s", path);
  s[n] = '\0';
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return s;
}

/* ------------------------------------------------------------ templates */

typedef struct tmpl {
  char *text;
  size_t len;
  int expect; /* statusCode expected */
} tmpl;

typedef enum { PH_CREATE, PH_POOL, PH_DELETE, PH_MIX } ph_kind;

typedef struct phase {
  char name[32];
  ph_kind kind;
  long count, warmup;
  tmpl t[MAX_TEMPLATES];
  int nt;
  /* results */
  int64_t *lat;
  long nlat;
  long errors;
  double cpu_us, user_us, sys_us; /* per measured invocation */
  long rss_kb, hwm_kb;
} phase;

/* The method of an event template decides the expected status. */
static int expected_status(const char *text) {
  const char *m = strstr(text, "\"method\"");
  if (!m)
    return 200;
  m += 8;
  while (*m == ' ' || *m == ':')
    m++;
  return strncmp(m, "\"POST\"", 6) == 0 ? 201 : 200;
}

/* -------------------------------------------------------------- server */

typedef struct client {
  int fd;
  char *buf;
  size_t len;
} client;

typedef struct server {
  int lfd, port;
  client c[MAX_CLIENTS];
  pid_t child;
  int clk_tck;
} server;

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void server_listen(server *s) {
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->lfd < 0)
    die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 16) != 0)
    die("bind/listen: %s", strerror(errno));
  socklen_t al = sizeof a;
  getsockname(s->lfd, (struct sockaddr *)&a, &al);
  s->port = ntohs(a.sin_port);
  for (int i = 0; i < MAX_CLIENTS; i++)
    s->c[i].fd = -1;
  s->clk_tck = (int)sysconf(_SC_CLK_TCK);
}

static void close_clients(server *s) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (s->c[i].fd >= 0) {
      close(s->c[i].fd);
      s->c[i].fd = -1;
      s->c[i].len = 0;
    }
}

static void send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return; /* the runtime went away: its next request tells */
    }
    p += w;
    n -= (size_t)w;
  }
}

/* One parsed request. */
typedef struct req {
  int cli;
  int is_get;
  char path[512];
  const char *body;
  size_t body_len;
  size_t total; /* bytes consumed from the client buffer */
} req;

/* Looks for a complete request in client i's buffer. */
static int parse_one(client *c, req *r) {
  char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (!end)
    return 0;
  size_t hlen = (size_t)(end - c->buf) + 4;
  r->is_get = c->len >= 4 && memcmp(c->buf, "GET ", 4) == 0;
  char *sp = memchr(c->buf, ' ', hlen);
  char *sp2 = sp ? memchr(sp + 1, ' ', hlen - (size_t)(sp + 1 - c->buf)) : NULL;
  if (!sp || !sp2 || (size_t)(sp2 - sp - 1) >= sizeof r->path)
    die("malformed request line");
  memcpy(r->path, sp + 1, (size_t)(sp2 - sp - 1));
  r->path[sp2 - sp - 1] = '\0';
  size_t clen = 0;
  for (char *p = c->buf; p < end;) {
    char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
    if (!eol)
      break;
    if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0)
      clen = strtoul(p + 15, NULL, 10);
    else if (eol - p > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0)
      die("chunked request bodies are not supported");
    p = eol + 2;
  }
  if (c->len < hlen + clen)
    return 0;
  r->body = c->buf + hlen;
  r->body_len = clen;
  r->total = hlen + clen;
  return 1;
}

static void consume(client *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* Waits for the next complete request from any client (accepting new
 * connections). Returns 0 when the child exited first (*status set). */
static int next_request(server *s, req *r, int *wstatus) {
  for (;;) {
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (s->c[i].fd >= 0 && parse_one(&s->c[i], r)) {
        r->cli = i;
        return 1;
      }
    struct pollfd p[MAX_CLIENTS + 1];
    int idx[MAX_CLIENTS + 1], n = 0;
    p[n] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
    idx[n++] = -1;
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (s->c[i].fd >= 0) {
        p[n] = (struct pollfd){.fd = s->c[i].fd, .events = POLLIN};
        idx[n++] = i;
      }
    int rc = poll(p, (nfds_t)n, 200);
    if (rc < 0 && errno != EINTR)
      die("poll: %s", strerror(errno));
    if (rc <= 0) {
      if (s->child > 0) {
        pid_t w = waitpid(s->child, wstatus, WNOHANG);
        if (w == s->child) {
          s->child = 0;
          return 0;
        }
      }
      continue;
    }
    for (int k = 0; k < n; k++) {
      if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      if (idx[k] < 0) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
          continue;
        set_nodelay(fd);
        int slot = -1;
        for (int i = 0; i < MAX_CLIENTS; i++)
          if (s->c[i].fd < 0) {
            slot = i;
            break;
          }
        if (slot < 0) {
          close(fd);
          continue;
        }
        s->c[slot].fd = fd;
        s->c[slot].len = 0;
        if (!s->c[slot].buf && !(s->c[slot].buf = malloc(RBUF)))
          die("out of memory");
        continue;
      }
      client *c = &s->c[idx[k]];
      if (c->len == RBUF)
        die("request too large");
      ssize_t got = recv(c->fd, c->buf + c->len, RBUF - c->len, 0);
      if (got <= 0) {
        close(c->fd);
        c->fd = -1;
        c->len = 0;
        continue;
      }
      c->len += (size_t)got;
    }
  }
}

static void reply(server *s, int cli, int status, const char *body) {
  char out[512];
  size_t blen = strlen(body);
  int n = snprintf(out, sizeof out,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   status, status == 202 ? "Accepted" : status == 404 ? "Not Found" : "OK", blen, body);
  send_all(s->c[cli].fd, out, (size_t)n);
}

/* Hands out one event; returns after its last byte was written. */
static void send_event(server *s, int cli, const char *rid, const char *ev, size_t len) {
  static char head[1024];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Lambda-Runtime-Aws-Request-Id: %s\r\n"
                   "Lambda-Runtime-Deadline-Ms: %lld\r\n"
                   "Lambda-Runtime-Invoked-Function-Arn: " ARN "\r\n"
                   "Lambda-Runtime-Trace-Id: Root=1-5e9f0c65-1de4d666d4dd26aced652b6c;Parent=53995c3f42cd8ad8;Sampled=0\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   rid, (long long)(epoch_ms() + 60000), len);
  /* One write when it fits: the runtime sees the whole answer at once. */
  static char *one;
  static size_t onecap;
  if ((size_t)n + len > onecap) {
    onecap = ((size_t)n + len) * 2;
    one = realloc(one, onecap);
    if (!one)
      die("out of memory");
  }
  memcpy(one, head, (size_t)n);
  memcpy(one + n, ev, len);
  send_all(s->c[cli].fd, one, (size_t)n + len);
}

static pid_t spawn(server *s, char **argv) {
  char api[64];
  snprintf(api, sizeof api, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:%d", s->port);
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = calloc(n + 2, sizeof *env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "AWS_LAMBDA_RUNTIME_API=", 23) != 0)
      env[k++] = environ[i];
  env[k++] = api;
  env[k] = NULL;
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, env);
  free(env);
  if (rc != 0)
    die("cannot exec %s: %s", argv[0], strerror(rc));
  s->child = pid;
  return pid;
}

static void rid_for(long n, char out[40]) {
  snprintf(out, 40, "b3e0c1a2-%04lx-4%03lx-8%03lx-%012lx", (n >> 24) & 0xffff, (n >> 12) & 0xfff,
           n & 0xfff, (unsigned long)n * 2654435761UL & 0xffffffffffffUL);
}

/* utime+stime (ticks) of the whole process, and its RSS/HWM (kB). */
static void proc_cpu(pid_t pid, long *ut, long *st) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close(fd);
  *ut = *st = 0;
  if (n <= 0)
    return;
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (!p)
    return;
  /* fields after ')': 3 state ... 14 utime 15 stime */
  int field = 2;
  for (p++; *p && field < 14; p++)
    if (*p == ' ')
      field++;
  *ut = strtol(p, &p, 10);
  *st = strtol(p, &p, 10);
}

static long rss_anon_kb, rss_file_kb; /* of the last proc_mem */

static void proc_mem(pid_t pid, long *rss, long *hwm) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  *rss = *hwm = rss_anon_kb = rss_file_kb = -1;
  if (!f)
    return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0)
      *rss = strtol(line + 6, NULL, 10);
    else if (strncmp(line, "VmHWM:", 6) == 0)
      *hwm = strtol(line + 6, NULL, 10);
    else if (strncmp(line, "RssAnon:", 8) == 0)
      rss_anon_kb = strtol(line + 8, NULL, 10);
    else if (strncmp(line, "RssFile:", 8) == 0)
      rss_file_kb = strtol(line + 8, NULL, 10);
  }
  fclose(f);
}

static double self_cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec * 1e6 +
         (double)ru.ru_stime.tv_usec;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v (q in 0..100). */
static double pct(const int64_t *v, long n, double q) {
  if (n <= 0)
    return 0;
  long k = (long)((q / 100.0) * (double)n + 0.999999999);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return (double)v[k - 1];
}

static int status_of(const char *body, size_t len) {
  const char *p = memmem(body, len, "\"statusCode\":", 13);
  return p ? atoi(p + 13) : -1;
}

/* The task id in a create's proxy response: its Location header,
 * "/tasks/<36>" (cjson writes "\/tasks\/<36>"). */
static int id_of(const char *body, size_t len, char out[37]) {
  const char *p = memmem(body, len, "tasks\\/", 7);
  size_t skip = 7;
  if (!p) {
    p = memmem(body, len, "tasks/", 6);
    skip = 6;
  }
  if (!p || (size_t)(body + len - (p + skip)) < 36)
    return 0;
  memcpy(out, p + skip, 36);
  out[36] = '\0';
  return 1;
}

/* Renders template t with id (or as is). */
static const char *render(const tmpl *t, const char *id, size_t *len) {
  static char *buf;
  static size_t cap;
  const char *at = id ? strstr(t->text, "@ID@") : NULL;
  if (!at) {
    *len = t->len;
    return t->text;
  }
  size_t need = t->len + 64;
  if (need > cap) {
    cap = need * 2;
    buf = realloc(buf, cap);
  }
  size_t out = 0;
  const char *p = t->text;
  while ((at = strstr(p, "@ID@"))) {
    memcpy(buf + out, p, (size_t)(at - p));
    out += (size_t)(at - p);
    memcpy(buf + out, id, 36);
    out += 36;
    p = at + 4;
  }
  size_t rest = strlen(p);
  memcpy(buf + out, p, rest);
  out += rest;
  buf[out] = '\0';
  *len = out;
  return buf;
}

/* ----------------------------------------------------------------- cold */

static int cold(int argc, char **argv) {
  long starts = 30;
  const char *event = NULL;
  int i = 0;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--starts") && i + 1 < argc)
      starts = atol(argv[++i]);
    else if (!strcmp(argv[i], "--event") && i + 1 < argc)
      event = argv[++i];
    else if (!strcmp(argv[i], "--"))
      { i++; break; }
    else
      break;
  }
  if (!event || i >= argc)
    die("usage: rapi cold --starts N --event FILE -- CMD [ARG...]");
  size_t elen;
  char *ev = read_file(event, &elen);
  server s = {0};
  server_listen(&s);
  int64_t *init = calloc((size_t)starts, sizeof *init), *first = calloc((size_t)starts, sizeof *first);
  int64_t *cpu = calloc((size_t)starts, sizeof *cpu), *maxrss = calloc((size_t)starts, sizeof *maxrss);
  for (long k = 0; k < starts; k++) {
    int64_t t0 = now_ns();
    pid_t pid = spawn(&s, argv + i);
    int64_t t_next = 0, t_resp = 0;
    int wst = 0;
    req r;
    char rid[40];
    rid_for(k + 1, rid);
    while (!t_resp) {
      if (!next_request(&s, &r, &wst))
        die("start %ld: the runtime exited (status %d) before answering", k, wst);
      int64_t t = now_ns();
      if (r.is_get && strcmp(r.path, PREFIX "/invocation/next") == 0) {
        if (t_next)
          die("start %ld: a second next before the response", k);
        t_next = t;
        consume(&s.c[r.cli], r.total);
        send_event(&s, r.cli, rid, ev, elen);
      } else if (!r.is_get && strstr(r.path, "/response")) {
        t_resp = t;
        int st = status_of(r.body, r.body_len);
        if (st != 200 && st != 201)
          die("start %ld: response status %d: %.*s", k, st, (int)r.body_len, r.body);
        consume(&s.c[r.cli], r.total);
        reply(&s, r.cli, 202, "{\"status\":\"OK\"}");
      } else {
        die("start %ld: unexpected %s %s: %.*s", k, r.is_get ? "GET" : "POST", r.path,
            (int)r.body_len, r.body);
      }
    }
    kill(pid, SIGKILL);
    struct rusage ru;
    if (wait4(pid, &wst, 0, &ru) != pid)
      die("wait4: %s", strerror(errno));
    s.child = 0;
    close_clients(&s);
    init[k] = t_next - t0;
    first[k] = t_resp - t0;
    cpu[k] = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
             (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    maxrss[k] = ru.ru_maxrss;
    printf("{\"start\":%ld,\"init_ms\":%.3f,\"first_ms\":%.3f,\"cpu_ms\":%.3f,\"maxrss_kb\":%lld}\n", k,
           (double)init[k] / 1e6, (double)first[k] / 1e6, (double)cpu[k] / 1e3, (long long)maxrss[k]);
    fflush(stdout);
    usleep(20000); /* let dynalite and the page cache settle between starts */
  }
  qsort(init, (size_t)starts, sizeof *init, cmp64);
  qsort(first, (size_t)starts, sizeof *first, cmp64);
  qsort(cpu, (size_t)starts, sizeof *cpu, cmp64);
  qsort(maxrss, (size_t)starts, sizeof *maxrss, cmp64);
  printf("{\"summary\":\"cold\",\"starts\":%ld,\"init_p50_ms\":%.3f,\"init_p95_ms\":%.3f,"
         "\"first_p50_ms\":%.3f,\"first_p95_ms\":%.3f,\"cpu_p50_ms\":%.3f,\"maxrss_p50_kb\":%lld}\n",
         starts, pct(init, starts, 50) / 1e6, pct(init, starts, 95) / 1e6, pct(first, starts, 50) / 1e6,
         pct(first, starts, 95) / 1e6, pct(cpu, starts, 50) / 1e3, (long long)pct(maxrss, starts, 50));
  return 0;
}

/* ----------------------------------------------------------------- warm */

static int load_plan(const char *path, phase *ph) {
  FILE *f = fopen(path, "r");
  if (!f)
    die("cannot open %s", path);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
    if (!tok || tok[0] == '#')
      continue;
    if (n == MAX_PHASES)
      die("too many phases");
    phase *p = &ph[n++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", tok);
    p->kind = !strncmp(tok, "create", 6) ? PH_CREATE
              : !strncmp(tok, "delete", 6) ? PH_DELETE
              : !strncmp(tok, "mix", 3) ? PH_MIX
                                          : PH_POOL;
    char *c = strtok_r(NULL, " \t\r\n", &save), *w = strtok_r(NULL, " \t\r\n", &save);
    if (!c || !w)
      die("plan: NAME COUNT WARMUP TEMPLATE...");
    p->count = atol(c);
    p->warmup = atol(w);
    while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
      if (p->nt == MAX_TEMPLATES)
        die("too many templates");
      tmpl *t = &p->t[p->nt++];
      t->text = read_file(tok, &t->len);
      t->expect = expected_status(t->text);
    }
    if (!p->nt)
      die("phase %s has no template", p->name);
    p->lat = calloc((size_t)p->count + 1, sizeof *p->lat);
  }
  fclose(f);
  return n;
}

static int warm(int argc, char **argv) {
  const char *plan = NULL;
  long rss_at[64];
  int nrss = 0;
  int i = 0;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--plan") && i + 1 < argc)
      plan = argv[++i];
    else if (!strcmp(argv[i], "--rss-at") && i + 1 < argc) {
      char *p = argv[++i];
      while (*p && nrss < 64) {
        rss_at[nrss++] = strtol(p, &p, 10);
        if (*p == ',')
          p++;
      }
    } else if (!strcmp(argv[i], "--")) {
      i++;
      break;
    } else
      break;
  }
  if (!plan || i >= argc)
    die("usage: rapi warm --plan FILE [--rss-at N,...] -- CMD [ARG...]");
  static phase ph[MAX_PHASES];
  int nph = load_plan(plan, ph);
  /* The id pool: created ids, consumed from the end by delete phases. */
  size_t pool_cap = 1024, pool_n = 0;
  char (*pool)[37] = malloc(pool_cap * sizeof *pool);

  server s = {0};
  server_listen(&s);
  int64_t t_spawn = now_ns();
  pid_t pid = spawn(&s, argv + i);
  long invocations = 0;
  int rss_i = 0, wst = 0;
  req r;
  int64_t t_init = 0;
  int pending = -1; /* client whose `next` is waiting, taken by the next phase */

  for (int pi = 0; pi < nph; pi++) {
    phase *p = &ph[pi];
    long total = p->warmup + p->count;
    long ut0 = 0, st0 = 0;
    double srv0 = 0, srv_us = 0;
    char cycle_id[37] = "";
    for (long k = 0; k <= total; k++) {
      /* Wait for `next` (the runtime is then idle), unless the previous
       * phase ended on one. */
      if (pending >= 0) {
        r.cli = pending;
        pending = -1;
      } else {
        for (;;) {
          if (!next_request(&s, &r, &wst))
            die("phase %s: the runtime exited (status %d)", p->name, wst);
          if (r.is_get)
            break;
          die("phase %s: unexpected POST %s: %.*s", p->name, r.path, (int)r.body_len, r.body);
        }
        if (strcmp(r.path, PREFIX "/invocation/next") != 0)
          die("unexpected GET %s", r.path);
        consume(&s.c[r.cli], r.total);
      }
      if (!t_init)
        t_init = now_ns();
      while (rss_i < nrss && invocations >= rss_at[rss_i]) {
        long rss, hwm;
        proc_mem(pid, &rss, &hwm);
        printf("{\"rss_at\":%ld,\"vmrss_kb\":%ld,\"vmhwm_kb\":%ld,\"rss_anon_kb\":%ld,\"rss_file_kb\":%ld}\n",
               invocations, rss, hwm, rss_anon_kb, rss_file_kb);
        fflush(stdout);
        rss_i++;
      }
      if (k == p->warmup) {
        proc_cpu(pid, &ut0, &st0);
        srv0 = self_cpu_us();
      }
      if (k == total) {
        long ut1, st1;
        proc_cpu(pid, &ut1, &st1);
        double tick_us = 1e6 / s.clk_tck;
        p->user_us = (double)(ut1 - ut0) * tick_us / (double)p->count;
        p->sys_us = (double)(st1 - st0) * tick_us / (double)p->count;
        p->cpu_us = p->user_us + p->sys_us;
        srv_us = (self_cpu_us() - srv0) / (double)p->count;
        proc_mem(pid, &p->rss_kb, &p->hwm_kb);
        pending = r.cli; /* this `next` opens the following phase */
        break;
      }
      /* Pick the event. */
      const tmpl *t;
      const char *id = NULL;
      if (p->kind == PH_MIX) {
        t = &p->t[k % p->nt];
        if (k % p->nt != 0)
          id = cycle_id;
      } else {
        t = &p->t[k % p->nt];
        if (p->kind == PH_POOL && pool_n)
          id = pool[(size_t)k % pool_n];
        else if (p->kind == PH_DELETE) {
          if (!pool_n)
            die("phase %s: no ids left to delete", p->name);
          id = pool[--pool_n];
        }
      }
      size_t elen;
      const char *ev = render(t, id, &elen);
      char rid[40];
      rid_for(++invocations, rid);
      send_event(&s, r.cli, rid, ev, elen);
      int64_t t0 = now_ns();
      for (;;) {
        if (!next_request(&s, &r, &wst))
          die("phase %s: the runtime exited (status %d)", p->name, wst);
        if (!r.is_get)
          break;
        die("phase %s: a next before the response", p->name);
      }
      int64_t t1 = now_ns();
      int err = strstr(r.path, "/response") == NULL;
      int st = err ? -1 : status_of(r.body, r.body_len);
      if (st != t->expect) {
        if (p->errors < 3)
          fprintf(stderr, "rapi: phase %s: got %d (want %d): %.*s\n", p->name, st, t->expect,
                  (int)(r.body_len < 300 ? r.body_len : 300), r.body);
        p->errors++;
      }
      if (st == 201 && (p->kind == PH_CREATE || p->kind == PH_MIX)) {
        char idb[37];
        if (id_of(r.body, r.body_len, idb)) {
          if (p->kind == PH_MIX)
            memcpy(cycle_id, idb, 37);
          else {
            if (pool_n == pool_cap) {
              pool_cap *= 2;
              pool = realloc(pool, pool_cap * sizeof *pool);
            }
            memcpy(pool[pool_n++], idb, 37);
          }
        }
      }
      consume(&s.c[r.cli], r.total);
      reply(&s, r.cli, 202, "{\"status\":\"OK\"}");
      if (k >= p->warmup)
        p->lat[p->nlat++] = t1 - t0;
    }
    qsort(p->lat, (size_t)p->nlat, sizeof *p->lat, cmp64);
    double sum = 0;
    for (long k = 0; k < p->nlat; k++)
      sum += (double)p->lat[k];
    printf("{\"phase\":\"%s\",\"n\":%ld,\"errors\":%ld,\"p50_us\":%.1f,\"p90_us\":%.1f,"
           "\"p99_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"cpu_us\":%.1f,\"user_us\":%.1f,"
           "\"sys_us\":%.1f,\"vmrss_kb\":%ld,\"vmhwm_kb\":%ld,\"server_cpu_us\":%.1f}\n",
           p->name, p->nlat, p->errors, pct(p->lat, p->nlat, 50) / 1e3, pct(p->lat, p->nlat, 90) / 1e3,
           pct(p->lat, p->nlat, 99) / 1e3, p->nlat ? (double)p->lat[p->nlat - 1] / 1e3 : 0,
           p->nlat ? sum / (double)p->nlat / 1e3 : 0, p->cpu_us, p->user_us, p->sys_us, p->rss_kb,
           p->hwm_kb, srv_us);
    fflush(stdout);
  }
  while (rss_i < nrss && invocations >= rss_at[rss_i]) {
    long rss, hwm;
    proc_mem(pid, &rss, &hwm);
    printf("{\"rss_at\":%ld,\"vmrss_kb\":%ld,\"vmhwm_kb\":%ld,\"rss_anon_kb\":%ld,\"rss_file_kb\":%ld}\n",
           invocations, rss, hwm, rss_anon_kb, rss_file_kb);
    rss_i++;
  }
  printf("{\"init_ms\":%.3f}\n", (double)(t_init - t_spawn) / 1e6);
  kill(pid, SIGTERM);
  struct rusage ru;
  int64_t dl = now_ns() + 3000000000LL;
  while (waitpid(pid, &wst, WNOHANG) == 0) {
    if (now_ns() > dl) {
      kill(pid, SIGKILL);
      waitpid(pid, &wst, 0);
      break;
    }
    usleep(1000);
  }
  (void)ru;
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && !strcmp(argv[1], "cold"))
    return cold(argc - 2, argv + 2);
  if (argc >= 2 && !strcmp(argv[1], "warm"))
    return warm(argc - 2, argv + 2);
  fprintf(stderr, "usage: rapi cold|warm ... (see the comment at the top of rapi.c)\n");
  return 2;
}
