/* nullrt_raw — bench/nullrt.c without libcurl: the same do-nothing Lambda
 * runtime speaking HTTP/1.1 to the Runtime API over one blocking,
 * kept-alive socket (request written with one send(); answer read until its
 * headers end and Content-Length bytes of body followed). Measured next to
 * nullrt, it shows what libcurl itself costs per invocation on the Runtime
 * API leg — the saving a hand-written client in runtime/lambda.c would
 * bring. Not a complete client: no chunked answers, no reconnect. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[1 << 20];
static size_t have;

/* Reads one answer; returns its body (NUL-terminated, in buf) and length,
 * and copies the request id header. The previous answer was consumed. */
static char *read_answer(int fd, size_t *blen, char rid[128]) {
  char *end;
  for (;;) {
    end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
    if (end)
      break;
    ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
    if (n <= 0)
      exit(1);
    have += (size_t)n;
  }
  size_t hlen = (size_t)(end - buf) + 4, clen = 0;
  rid[0] = '\0';
  for (char *p = buf; p < end;) {
    char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
    if (!eol)
      break;
    if (eol - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
      clen = strtoul(p + 15, NULL, 10);
    else if (eol - p > 30 && strncasecmp(p, "Lambda-Runtime-Aws-Request-Id:", 30) == 0) {
      char *v = p + 30;
      while (*v == ' ')
        v++;
      size_t m = (size_t)(eol - v) < 127 ? (size_t)(eol - v) : 127;
      memcpy(rid, v, m);
      rid[m] = '\0';
    }
    p = eol + 2;
  }
  while (have < hlen + clen) {
    ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
    if (n <= 0)
      exit(1);
    have += (size_t)n;
  }
  *blen = clen;
  return buf + hlen;
}

static void consume(size_t n) {
  memmove(buf, buf + n, have - n);
  have -= n;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      exit(1);
    p += w;
    n -= (size_t)w;
  }
}

int main(void) {
  const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api)
    return 1;
  char host[256];
  snprintf(host, sizeof host, "%s", api);
  char *colon = strrchr(host, ':');
  if (!colon)
    return 1;
  *colon = '\0';
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(colon + 1))};
  inet_pton(AF_INET, host, &a.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    return 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char req[1024], resp[512], rid[128];
  unsigned long n = 0;
  int nl = snprintf(req, sizeof req,
                    "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n"
                    "User-Agent: taskhost\r\n\r\n",
                    api);
  char next[1024];
  memcpy(next, req, (size_t)nl);
  for (;;) {
    send_all(fd, next, (size_t)nl);
    size_t blen;
    char *body = read_answer(fd, &blen, rid);
    int create = memmem(body, blen, "\"method\":\"POST\"", 15) != NULL;
    consume((size_t)(body - buf) + blen);
    n++;
    int rl = snprintf(resp, sizeof resp,
                      "{\"statusCode\":%d,\"headers\":{\"Location\":\"/tasks/00000000-0000-4000-8000-%012lx\"},"
                      "\"body\":\"{}\"}",
                      create ? 201 : 200, n);
    int ql = snprintf(req, sizeof req,
                      "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
                      "User-Agent: taskhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      rid, api, rl, resp);
    send_all(fd, req, (size_t)ql);
    body = read_answer(fd, &blen, rid);
    consume((size_t)(body - buf) + blen);
  }
}
