/* nullrt — a Lambda runtime that does nothing: GET invocation/next, then POST
 * a fixed proxy response, on one libcurl handle configured as
 * runtime/lambda.c configures its own (HTTP/1.1, TCP_NODELAY, no Expect).
 * Run under `rapi warm`, it measures what the Runtime API round trip itself
 * costs (the harness plus libcurl), the part of taskhost's latency and CPU
 * that no runtime can avoid. The response claims the status the event's
 * method would get (201 for POST, else 200) so rapi's checks pass; for a
 * create it carries a fresh Location so later phases have ids. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct st {
  char rid[128];
  char body[1 << 16];
  size_t len;
} st;

static size_t on_body(char *d, size_t sz, size_t n, void *ud) {
  st *s = ud;
  size_t k = sz * n;
  if (s->len + k < sizeof s->body) {
    memcpy(s->body + s->len, d, k);
    s->len += k;
    s->body[s->len] = '\0';
  }
  return k;
}

static size_t on_header(char *line, size_t sz, size_t n, void *ud) {
  st *s = ud;
  size_t k = sz * n;
  if (k > 31 && strncasecmp(line, "Lambda-Runtime-Aws-Request-Id:", 30) == 0) {
    const char *v = line + 30;
    while (*v == ' ')
      v++;
    size_t m = strcspn(v, "\r\n");
    if (m >= sizeof s->rid)
      m = sizeof s->rid - 1;
    memcpy(s->rid, v, m);
    s->rid[m] = '\0';
  }
  return k;
}

int main(void) {
  const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api)
    return 1;
  char next[300], post[512];
  snprintf(next, sizeof next, "http://%s/2018-06-01/runtime/invocation/next", api);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *c = curl_easy_init();
  static st s;
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  unsigned long n = 0;
  char resp[512];
  for (;;) {
    s.len = 0;
    s.rid[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, next);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    if (curl_easy_perform(c) != CURLE_OK)
      return 1;
    int create = strstr(s.body, "\"method\":\"POST\"") != NULL;
    n++;
    int len = snprintf(resp, sizeof resp,
                       "{\"statusCode\":%d,\"headers\":{\"Location\":\"/tasks/00000000-0000-4000-8000-%012lx\"},"
                       "\"body\":\"{}\"}",
                       create ? 201 : 200, n);
    snprintf(post, sizeof post, "http://%s/2018-06-01/runtime/invocation/%s/response", api, s.rid);
    s.len = 0;
    curl_easy_setopt(c, CURLOPT_URL, post);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, resp);
    if (curl_easy_perform(c) != CURLE_OK)
      return 1;
  }
}
