/* floor — the least a client can do to send taskhost's DynamoDB requests: one
 * libcurl easy handle kept alive, request bodies printed with snprintf in the
 * shapes runtime/dynamodb.c produces, SigV4-signed with the signing key
 * derived once (it only changes with the date), the response body collected
 * and its status checked, nothing parsed. No Lua, no JSON library, no logging.
 *
 *   floor [--warmup W] [--count N] [--ops put,get,query,update,delete]
 *   environment: AWS_ENDPOINT_URL_DYNAMODB (http://127.0.0.1:PORT), TABLE_NAME,
 *                AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
 *
 * Phases in order; each sends W + N requests and reports the last N: client
 * latency (signing + curl_easy_perform; CLOCK_MONOTONIC) p50/p90/p99, and CPU
 * per request from getrusage(RUSAGE_SELF) (user+sys). put creates the ids
 * that get/update use and delete removes (all of them: N+W each). One JSON
 * line per phase.
 *
 * At start the signer is checked against runtime/sigv4.c (th_sigv4_sign, the
 * signer taskhost uses): same canonical request, same Authorization header,
 * or the program stops. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sigv4.h"

#define TARGET "DynamoDB_20120810."
/* The table's key with auth off (the owner "public"), as runtime/dynamodb.c writes it. */
#define KEY "{\"user_id\":{\"S\":\"public\"},\"id\":{\"S\":\"%s\"}}"

static void die(const char *m) {
  fprintf(stderr, "floor: %s\n", m);
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void hex(const unsigned char *p, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[p[i] >> 4];
    out[2 * i + 1] = d[p[i] & 15];
  }
  out[2 * n] = '\0';
}

/* ---- a minimal SigV4 for POST / with four signed headers ---- */

typedef struct signer {
  const char *host, *region, *akid, *secret, *token; /* token: NULL without */
  char day[9];
  unsigned char key[32]; /* kSigning for `day` */
} signer;

static void hmac(const unsigned char *k, size_t kl, const char *m, size_t ml, unsigned char out[32]) {
  unsigned int l = 32;
  HMAC(EVP_sha256(), k, (int)kl, (const unsigned char *)m, ml, out, &l);
}

static void derive(signer *s, const char *day) {
  char k0[256];
  unsigned char a[32], b[32];
  snprintf(k0, sizeof k0, "AWS4%s", s->secret);
  hmac((unsigned char *)k0, strlen(k0), day, 8, a);
  hmac(a, 32, s->region, strlen(s->region), b);
  hmac(b, 32, "dynamodb", 8, a);
  hmac(a, 32, "aws4_request", 12, s->key);
  memcpy(s->day, day, 9);
}

/* Fills amzdate (YYYYMMDDTHHMMSSZ) and auth (the Authorization value). */
static void sign(signer *s, time_t t, const char *target, const char *body, size_t len,
                 char amzdate[17], char auth[512], char *canon_out, size_t canon_cap) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(amzdate, 17, "%Y%m%dT%H%M%SZ", &tm);
  if (memcmp(s->day, amzdate, 8) != 0) {
    char day[9];
    memcpy(day, amzdate, 8);
    day[8] = '\0';
    derive(s, day);
  }
  unsigned char h[32];
  char ph[65], ch[65], sig[65];
  SHA256((const unsigned char *)body, len, h);
  hex(h, 32, ph);
  char canon[4096];
  int cl = s->token ? snprintf(canon, sizeof canon,
                               "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:%s\n"
                               "x-amz-date:%s\nx-amz-security-token:%s\nx-amz-target:%s\n\n"
                               "content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n%s",
                               s->host, amzdate, s->token, target, ph)
                    : snprintf(canon, sizeof canon,
                               "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:%s\n"
                               "x-amz-date:%s\nx-amz-target:%s\n\n"
                               "content-type;host;x-amz-date;x-amz-target\n%s",
                               s->host, amzdate, target, ph);
  if (canon_out)
    snprintf(canon_out, canon_cap, "%s", canon);
  SHA256((const unsigned char *)canon, (size_t)cl, h);
  hex(h, 32, ch);
  char sts[256];
  int sl = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/dynamodb/aws4_request\n%s", amzdate,
                    amzdate, s->region, ch);
  hmac(s->key, 32, sts, (size_t)sl, h);
  hex(h, 32, sig);
  snprintf(auth, 512,
           "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/dynamodb/aws4_request, "
           "SignedHeaders=content-type;host;x-amz-date;%sx-amz-target, Signature=%s",
           s->akid, amzdate, s->region, s->token ? "x-amz-security-token;" : "", sig);
}

/* Same request through runtime/sigv4.c: must give the same Authorization. */
static void check_signer(signer *s) {
  const char *body = "{\"TableName\":\"t\",\"Key\":{\"id\":{\"S\":\"x\"}},\"ConsistentRead\":true}";
  time_t t = 1700000000;
  char amzdate[17], auth[512], canon[4096];
  sign(s, t, TARGET "GetItem", body, strlen(body), amzdate, auth, canon, sizeof canon);
  th_sigv4_header hs[] = {{"Host", s->host},
                          {"Content-Type", "application/x-amz-json-1.0"},
                          {"X-Amz-Target", TARGET "GetItem"}};
  th_sigv4_request rq = {.method = "POST", .path = "/", .headers = hs, .nheaders = 3, .payload = body,
                         .payload_len = strlen(body)};
  th_sigv4_credentials cr = {s->akid, s->secret, s->token};
  th_sigv4_params pr = {.region = s->region, .service = "dynamodb"};
  th_sigv4_result sr;
  const char *why = NULL;
  if (th_sigv4_time_from_unix(t, &pr.time) != TH_OK || th_sigv4_sign(&rq, &cr, &pr, &sr, &why) != TH_OK)
    die("th_sigv4_sign failed");
  const char *ref = NULL;
  for (size_t i = 0; i < sr.nheaders; i++)
    if (!strcmp(sr.headers[i].name, "Authorization"))
      ref = sr.headers[i].value;
  if (!ref || strcmp(ref, auth) != 0 || strcmp(sr.canonical_request, canon) != 0) {
    fprintf(stderr, "floor: signer mismatch\n ours: %s\n ref:  %s\n", auth, ref ? ref : "(none)");
    exit(1);
  }
  th_sigv4_result_free(&sr);
}

/* ---- the loop ---- */

typedef struct buf {
  char *d;
  size_t n, cap;
} buf;

static size_t on_body(char *d, size_t sz, size_t n, void *ud) {
  buf *b = ud;
  size_t k = sz * n;
  if (b->n + k + 1 > b->cap) {
    b->cap = (b->n + k + 1) * 2;
    b->d = realloc(b->d, b->cap);
    if (!b->d)
      return 0;
  }
  memcpy(b->d + b->n, d, k);
  b->n += k;
  b->d[b->n] = '\0';
  return k;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t xr(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545F4914F6CDD1DULL;
}

static void new_id(char out[37]) {
  uint64_t a = xr(), b = xr();
  snprintf(out, 37, "%08x-%04x-4%03x-%x%03x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
           (unsigned)a & 0xfff, 8 + (unsigned)(b >> 62), (unsigned)(b >> 48) & 0xfff,
           (unsigned long long)(b & 0xffffffffffffULL));
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, long n, double q) {
  long k = (long)((q / 100.0) * (double)n + 0.999999999);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return (double)v[k - 1];
}

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec * 1e6 +
         (double)ru.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  long warmup = 200, count = 10000;
  const char *ops = "put,get,query,update,delete";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
      warmup = atol(argv[++i]);
    else if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = atol(argv[++i]);
    else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
      ops = argv[++i];
    else
      die("usage: floor [--warmup W] [--count N] [--ops put,get,query,update,delete]");
  }
  const char *ep = getenv("AWS_ENDPOINT_URL_DYNAMODB"), *table = getenv("TABLE_NAME");
  signer s = {.region = getenv("AWS_REGION"), .akid = getenv("AWS_ACCESS_KEY_ID"),
              .secret = getenv("AWS_SECRET_ACCESS_KEY"), .token = getenv("AWS_SESSION_TOKEN")};
  if (s.token && !*s.token)
    s.token = NULL;
  if (!ep || !table || !s.region || !s.akid || !s.secret || strncmp(ep, "http://", 7) != 0)
    die("set AWS_ENDPOINT_URL_DYNAMODB (http://host:port), TABLE_NAME, AWS_REGION and credentials");
  char url[256], host[200];
  snprintf(host, sizeof host, "%s", ep + 7);
  host[strcspn(host, "/")] = '\0';
  snprintf(url, sizeof url, "http://%s/", host);
  s.host = host;
  check_signer(&s);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *c = curl_easy_init();
  buf b = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_POST, 1L);

  long total = warmup + count;
  char (*ids)[37] = malloc((size_t)total * sizeof *ids);
  for (long i = 0; i < total; i++)
    new_id(ids[i]);
  int64_t *lat = malloc((size_t)count * sizeof *lat);
  static char body[4096];
  char tgt[64], hdr_target[96], hdr_date[40], hdr_auth[560], amzdate[17], auth[512];
  char *hdr_token = NULL;
  static const char token_prefix[] = "X-Amz-Security-Token: ";
  if (s.token && (!(hdr_token = malloc(sizeof token_prefix + strlen(s.token))) ||
                  snprintf(hdr_token, sizeof token_prefix + strlen(s.token), "%s%s", token_prefix,
                           s.token) < 0))
    die("out of memory");
  long connects = 0;

  char opsbuf[256];
  snprintf(opsbuf, sizeof opsbuf, "%s", ops);
  for (char *save = NULL, *op = strtok_r(opsbuf, ",", &save); op; op = strtok_r(NULL, ",", &save)) {
    const char *target = !strcmp(op, "put")      ? "PutItem"
                         : !strcmp(op, "get")    ? "GetItem"
                         : !strcmp(op, "query")  ? "Query"
                         : !strcmp(op, "update") ? "UpdateItem"
                         : !strcmp(op, "delete") ? "DeleteItem"
                                                 : NULL;
    if (!target)
      die("unknown op");
    snprintf(tgt, sizeof tgt, TARGET "%s", target);
    snprintf(hdr_target, sizeof hdr_target, "X-Amz-Target: %s", tgt);
    long errors = 0;
    double cpu0 = 0;
    for (long i = 0; i < total; i++) {
      if (i == warmup)
        cpu0 = cpu_us();
      int64_t t0 = now_ns();
      time_t now = time(NULL);
      const char *id = ids[!strcmp(op, "delete") ? total - 1 - i : i];
      int len;
      if (!strcmp(op, "put"))
        len = snprintf(body, sizeof body,
                       "{\"TableName\":\"%s\",\"Item\":{\"created_at\":{\"N\":\"%ld\"},\"id\":{\"S\":\"%s\"},"
                       "\"priority\":{\"S\":\"high\"},\"status\":{\"S\":\"new\"},"
                       "\"task\":{\"S\":\"Write the benchmark report\"},\"updated_at\":{\"N\":\"%ld\"},"
                       "\"user_id\":{\"S\":\"public\"}},"
                       "\"ConditionExpression\":\"attribute_not_exists(#k)\","
                       "\"ExpressionAttributeNames\":{\"#k\":\"id\"}}",
                       table, (long)now, id, (long)now);
      else if (!strcmp(op, "get"))
        len = snprintf(body, sizeof body,
                       "{\"TableName\":\"%s\",\"Key\":" KEY ",\"ConsistentRead\":true}", table, id);
      else if (!strcmp(op, "query"))
        len = snprintf(body, sizeof body,
                       "{\"TableName\":\"%s\",\"KeyConditionExpression\":\"#u = :u\","
                       "\"ExpressionAttributeNames\":{\"#u\":\"user_id\"},"
                       "\"ExpressionAttributeValues\":{\":u\":{\"S\":\"public\"}},"
                       "\"ScanIndexForward\":false,\"Limit\":26,\"ConsistentRead\":true}", table);
      else if (!strcmp(op, "update"))
        len = snprintf(body, sizeof body,
                       "{\"TableName\":\"%s\",\"Key\":" KEY ","
                       "\"UpdateExpression\":\"SET #n0 = :v0, #n1 = :v1\","
                       "\"ConditionExpression\":\"attribute_exists(#k)\","
                       "\"ExpressionAttributeNames\":{\"#k\":\"id\",\"#n0\":\"status\",\"#n1\":\"updated_at\"},"
                       "\"ExpressionAttributeValues\":{\":v0\":{\"S\":\"in_progress\"},\":v1\":{\"N\":\"%ld\"}},"
                       "\"ReturnValues\":\"ALL_NEW\"}",
                       table, id, (long)now);
      else
        len = snprintf(body, sizeof body,
                       "{\"TableName\":\"%s\",\"Key\":" KEY ","
                       "\"ConditionExpression\":\"attribute_exists(#k)\","
                       "\"ExpressionAttributeNames\":{\"#k\":\"id\"},\"ReturnValues\":\"ALL_OLD\"}",
                       table, id);
      sign(&s, now, tgt, body, (size_t)len, amzdate, auth, NULL, 0);
      snprintf(hdr_date, sizeof hdr_date, "X-Amz-Date: %s", amzdate);
      snprintf(hdr_auth, sizeof hdr_auth, "Authorization: %s", auth);
      struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.0");
      h = curl_slist_append(h, hdr_target);
      h = curl_slist_append(h, hdr_date);
      h = curl_slist_append(h, hdr_auth);
      if (hdr_token)
        h = curl_slist_append(h, hdr_token);
      h = curl_slist_append(h, "Expect:");
      h = curl_slist_append(h, "Accept:");
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
      b.n = 0;
      CURLcode rc = curl_easy_perform(c);
      long code = 0, nc = 0;
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
      curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc);
      connects += nc;
      curl_slist_free_all(h);
      int64_t t1 = now_ns();
      if (rc != CURLE_OK || code != 200) {
        if (errors < 3)
          fprintf(stderr, "floor: %s: %s %ld %.*s\n", target, curl_easy_strerror(rc), code,
                  (int)(b.n < 300 ? b.n : 300), b.d ? b.d : "");
        errors++;
      }
      if (i >= warmup)
        lat[i - warmup] = t1 - t0;
    }
    double cpu = (cpu_us() - cpu0) / (double)count;
    qsort(lat, (size_t)count, sizeof *lat, cmp64);
    double sum = 0;
    for (long i = 0; i < count; i++)
      sum += (double)lat[i];
    printf("{\"phase\":\"%s\",\"n\":%ld,\"errors\":%ld,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
           "\"mean_us\":%.1f,\"cpu_us\":%.1f,\"connections\":%ld}\n",
           op, count, errors, pct(lat, count, 50) / 1e3, pct(lat, count, 90) / 1e3, pct(lat, count, 99) / 1e3,
           sum / (double)count / 1e3, cpu, connects);
    fflush(stdout);
  }
  curl_easy_cleanup(c);
  return 0;
}
