/* sigv4-suite — runs th_sigv4_sign over an AWS SigV4 test suite folder
 * (the aws-c-auth layout, see tests/fixtures/sigv4/FORMAT.md).
 *
 * Usage: sigv4-suite DIR
 *
 * For every case sub-folder (sorted by name) it parses request.txt and
 * context.json (decoded with lua-cjson in a bare lua_State), signs in header
 * mode and, when the case has query-* files, in query mode, and compares byte
 * for byte: the canonical request, the string to sign, the signature, and the
 * values the signer adds (the headers that header-signed-request.txt has on
 * top of request.txt; the X-Amz-* parameters of query-signed-request.txt).
 * Prints "PASS name" or "FAIL name: what differed" per case, then
 * "N passed, N failed"; exits non-zero on any failure or when no case ran.
 */
#include "common.h"
#include "sigv4.h"

#include <dirent.h>
#include <stdarg.h>
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_FILE (16u << 20)
#define MAX_HEADERS TH_SIGV4_MAX_HEADERS
#define MAX_PARAMS 64
#define HINT 512

/* ---- files ------------------------------------------------------------ */

/* Reads a whole file (NUL-terminated; caller frees). TH_ERR_NOT_FOUND when
 * it does not exist. */
static th_result read_file(const char *dir, const char *name, char **data, size_t *len) {
  char path[4096];
  th_result r = TH_ERR_IO;
  th_buf b;
  th_buf_init(&b, MAX_FILE);
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
    return TH_ERR_TOO_LARGE;
  FILE *f = fopen(path, "rb");
  if (!f)
    return TH_ERR_NOT_FOUND;
  char chunk[8192];
  size_t n;
  r = th_buf_append(&b, "", 0);
  while (r == TH_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    r = th_buf_append(&b, chunk, n);
  if (r == TH_OK && ferror(f))
    r = TH_ERR_IO;
  fclose(f);
  if (r != TH_OK) {
    th_buf_free(&b);
    return r;
  }
  *data = th_buf_steal(&b, len);
  return TH_OK;
}

static int file_exists(const char *dir, const char *name) {
  char path[4096];
  struct stat st;
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
    return 0;
  return stat(path, &st) == 0;
}

/* ---- request.txt ------------------------------------------------------- */

typedef struct request {
  char *method, *path, *query; /* query NULL when the target has no '?' */
  th_sigv4_header headers[MAX_HEADERS];
  size_t nheaders;
  const char *body;            /* into the file text */
  size_t body_len;
} request;

static char *dup_range(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static void request_free(request *rq) {
  free(rq->method);
  free(rq->path);
  free(rq->query);
  for (size_t i = 0; i < rq->nheaders; i++) {
    free((char *)rq->headers[i].name);
    free((char *)rq->headers[i].value);
  }
  memset(rq, 0, sizeof *rq);
}

/* Next line of text[*pos..len): its start and length without CR/LF. */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *n) {
  if (*pos >= len)
    return 0;
  const char *s = text + *pos;
  const char *nl = memchr(s, '\n', len - *pos);
  size_t l = nl ? (size_t)(nl - s) : len - *pos;
  *pos += l + (nl ? 1 : 0);
  if (l && s[l - 1] == '\r')
    l--;
  *line = s;
  *n = l;
  return 1;
}

/* Parses "METHOD SP target SP HTTP/1.1", then headers ("Name:value", a line
 * starting with SP or HT continues the previous value: it is kept joined
 * with "\n" so that the signer's folding is what gets tested), a blank line
 * and the body. The target may hold spaces: the method ends at the first
 * space and the version starts after the last one. */
static th_result parse_request(const char *text, size_t len, request *rq, const char **why) {
  size_t pos = 0, n;
  const char *line;
  memset(rq, 0, sizeof *rq);
  *why = "empty request";
  if (!next_line(text, len, &pos, &line, &n))
    goto fail;
  const char *sp1 = memchr(line, ' ', n);
  const char *sp2 = NULL;
  for (size_t i = n; i-- > 0;)
    if (line[i] == ' ') {
      sp2 = line + i;
      break;
    }
  *why = "bad request line";
  if (!sp1 || sp2 <= sp1)
    goto fail;
  const char *target = sp1 + 1;
  size_t tlen = (size_t)(sp2 - target);
  const char *q = memchr(target, '?', tlen);
  rq->method = dup_range(line, (size_t)(sp1 - line));
  rq->path = dup_range(target, q ? (size_t)(q - target) : tlen);
  if (q)
    rq->query = dup_range(q + 1, tlen - (size_t)(q - target) - 1);
  *why = "out of memory";
  if (!rq->method || !rq->path || (q && !rq->query))
    goto fail;
  int ended = 0;
  while (next_line(text, len, &pos, &line, &n)) {
    if (n == 0) {
      ended = 1;
      break;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      *why = "continuation line before any header";
      if (!rq->nheaders)
        goto fail;
      th_sigv4_header *h = &rq->headers[rq->nheaders - 1];
      size_t old = strlen(h->value);
      char *v = realloc((char *)h->value, old + 1 + n + 1);
      *why = "out of memory";
      if (!v)
        goto fail;
      v[old] = '\n';
      memcpy(v + old + 1, line, n);
      v[old + 1 + n] = '\0';
      h->value = v;
      continue;
    }
    const char *colon = memchr(line, ':', n);
    *why = "header line without ':'";
    if (!colon)
      goto fail;
    *why = "too many headers";
    if (rq->nheaders == MAX_HEADERS)
      goto fail;
    th_sigv4_header *h = &rq->headers[rq->nheaders];
    h->name = dup_range(line, (size_t)(colon - line));
    h->value = dup_range(colon + 1, n - (size_t)(colon - line) - 1);
    rq->nheaders++;
    *why = "out of memory";
    if (!h->name || !h->value)
      goto fail;
  }
  rq->body = text + pos;
  rq->body_len = ended ? len - pos : 0;
  return TH_OK;
fail:
  request_free(rq);
  return TH_ERR_INVALID;
}

/* ---- context.json ------------------------------------------------------ */

typedef struct context {
  char *access_key, *secret, *token, *region, *service;
  th_sigv4_time time;
  long expires;
  int normalize, sign_body, omit_token;
} context;

static void context_free(context *c) {
  free(c->access_key);
  free(c->secret);
  free(c->token);
  free(c->region);
  free(c->service);
  memset(c, 0, sizeof *c);
}

/* Field `key` of the table at the top of the stack as a new string, or NULL
 * (with *ok cleared when the field is required). */
static char *get_string(lua_State *L, const char *key, int required, int *ok) {
  char *s = NULL;
  lua_getfield(L, -1, key);
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *v = lua_tolstring(L, -1, &n);
    s = dup_range(v, n);
    if (!s)
      *ok = 0;
  } else if (required) {
    *ok = 0;
  }
  lua_pop(L, 1);
  return s;
}

static int get_bool(lua_State *L, const char *key, int *ok) {
  lua_getfield(L, -1, key);
  int t = lua_type(L, -1), v = lua_toboolean(L, -1);
  if (t != LUA_TBOOLEAN && t != LUA_TNIL)
    *ok = 0;
  lua_pop(L, 1);
  return v;
}

static int digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* "2015-08-30T12:36:00Z" */
static int parse_iso(const char *s, th_sigv4_time *t) {
  if (!s || strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != 'Z')
    return 0;
  t->year = digits(s, 4);
  t->month = digits(s + 5, 2);
  t->day = digits(s + 8, 2);
  t->hour = digits(s + 11, 2);
  t->minute = digits(s + 14, 2);
  t->second = digits(s + 17, 2);
  return t->year >= 0 && t->month >= 0 && t->day >= 0 && t->hour >= 0 && t->minute >= 0 &&
         t->second >= 0;
}

/* Decodes context.json with cjson.decode (kept in the registry). */
static th_result parse_context(lua_State *L, const char *text, size_t len, context *c,
                               const char **why) {
  int top = lua_gettop(L), ok = 1;
  char *stamp = NULL;
  memset(c, 0, sizeof *c);
  lua_getfield(L, LUA_REGISTRYINDEX, "sigv4_suite.decode");
  lua_pushlstring(L, text, len);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    *why = "context.json is not a JSON object";
    lua_settop(L, top);
    return TH_ERR_INVALID;
  }
  lua_getfield(L, -1, "credentials");
  if (lua_istable(L, -1)) {
    c->access_key = get_string(L, "access_key_id", 1, &ok);
    c->secret = get_string(L, "secret_access_key", 1, &ok);
    c->token = get_string(L, "token", 0, &ok);
  } else {
    ok = 0;
  }
  lua_pop(L, 1);
  c->region = get_string(L, "region", 1, &ok);
  c->service = get_string(L, "service", 1, &ok);
  stamp = get_string(L, "timestamp", 1, &ok);
  c->normalize = get_bool(L, "normalize", &ok);
  c->sign_body = get_bool(L, "sign_body", &ok);
  c->omit_token = get_bool(L, "omit_session_token", &ok);
  lua_getfield(L, -1, "expiration_in_seconds");
  int isnum = 0;
  lua_Number e = lua_tonumberx(L, -1, &isnum);
  c->expires = isnum && e >= 0 && e <= 1e9 ? (long)e : 0;
  lua_pop(L, 1);
  if (ok && !parse_iso(stamp, &c->time))
    ok = 0;
  free(stamp);
  lua_settop(L, top);
  if (!ok) {
    *why = "context.json lacks a field or has one of the wrong type";
    context_free(c);
    return TH_ERR_INVALID;
  }
  return TH_OK;
}

/* ---- comparison -------------------------------------------------------- */

typedef struct report {
  char first[HINT];
  int count;
} report;

/* Records a difference; only the first one is kept in full. */
__attribute__((format(printf, 2, 3))) static void fail(report *rep, const char *fmt, ...) {
  if (rep->count++ == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->first, sizeof rep->first, fmt, ap);
    va_end(ap);
  }
}

/* Up to 48 bytes of s (a line, or a whole value) around byte `at`, with
 * "..." where it was cut. */
static void window(const char *s, size_t len, size_t at, char *out, size_t size) {
  size_t from = at > 24 ? at - 24 : 0, n = len - from > 48 ? 48 : len - from;
  snprintf(out, size, "%s%.*s%s", from ? "..." : "", (int)n, s + from,
           from + n < len ? "..." : "");
}

/* Where a and b first differ: the line, and each side's text around it. */
static void diff_hint(const char *what, const char *got, const char *want, char *out,
                      size_t size) {
  size_t i = 0, line_start = 0;
  int lineno = 1;
  while (got[i] && got[i] == want[i]) {
    if (got[i] == '\n') {
      lineno++;
      line_start = i + 1;
    }
    i++;
  }
  char g[80], w[80];
  window(got + line_start, strcspn(got + line_start, "\n"), i - line_start, g, sizeof g);
  window(want + line_start, strcspn(want + line_start, "\n"), i - line_start, w, sizeof w);
  snprintf(out, size, "%s differs at line %d col %zu: got '%s', want '%s'", what, lineno,
           i - line_start + 1, g, w);
}

/* Byte-for-byte comparison; on a difference records where. */
static void compare(report *rep, const char *what, const char *got, const char *want) {
  if (!want) {
    fail(rep, "%s: expected file missing", what);
    return;
  }
  if (got && strcmp(got, want) == 0)
    return;
  char msg[HINT];
  diff_hint(what, got ? got : "", want, msg, sizeof msg);
  fail(rep, "%s", msg);
}

/* The headers `signed_rq` has beyond those of `orig` (a multiset
 * difference: same name and same raw value consume each other). */
static size_t added_headers(const request *orig, const request *signed_rq,
                            const th_sigv4_header **out, size_t max) {
  int used[MAX_HEADERS] = {0};
  size_t n = 0;
  for (size_t i = 0; i < signed_rq->nheaders; i++) {
    const th_sigv4_header *h = &signed_rq->headers[i];
    int found = 0;
    for (size_t j = 0; j < orig->nheaders && !found; j++) {
      if (!used[j] && strcmp(orig->headers[j].name, h->name) == 0 &&
          strcmp(orig->headers[j].value, h->value) == 0) {
        used[j] = 1;
        found = 1;
      }
    }
    if (!found && n < max)
      out[n++] = h;
  }
  return n;
}

/* Every (name, value) of `want` is in `got` and vice versa. */
static void compare_sets(report *rep, const char *what, const th_sigv4_header *got,
                         size_t ngot, const th_sigv4_header *const *want, size_t nwant,
                         int nocase) {
  char msg[HINT];
  for (size_t i = 0; i < nwant; i++) {
    size_t j = 0;
    while (j < ngot && (nocase ? strcasecmp(got[j].name, want[i]->name)
                               : strcmp(got[j].name, want[i]->name)) != 0)
      j++;
    if (j == ngot) {
      fail(rep, "%s: %s not added", what, want[i]->name);
    } else if (strcmp(got[j].value, want[i]->value) != 0) {
      char label[128];
      snprintf(label, sizeof label, "%s: %s", what, want[i]->name);
      diff_hint(label, got[j].value, want[i]->value, msg, sizeof msg);
      fail(rep, "%s", msg);
    }
  }
  for (size_t j = 0; j < ngot; j++) {
    size_t i = 0;
    while (i < nwant && (nocase ? strcasecmp(got[j].name, want[i]->name)
                                : strcmp(got[j].name, want[i]->name)) != 0)
      i++;
    if (i == nwant)
      fail(rep, "%s: %s added but not expected", what, got[j].name);
  }
}

/* ---- one case ---------------------------------------------------------- */

static void sign_mode(report *rep, const char *dir, const request *rq, const context *c,
                      int presign) {
  const char *prefix = presign ? "query" : "header";
  char name[64];
  char *want_creq = NULL, *want_sts = NULL, *want_sig = NULL, *want_signed = NULL;
  size_t want_signed_len = 0;
  th_sigv4_result res;
  request srq;
  memset(&srq, 0, sizeof srq);

  snprintf(name, sizeof name, "%s-canonical-request.txt", prefix);
  read_file(dir, name, &want_creq, NULL);
  snprintf(name, sizeof name, "%s-string-to-sign.txt", prefix);
  read_file(dir, name, &want_sts, NULL);
  snprintf(name, sizeof name, "%s-signature.txt", prefix);
  read_file(dir, name, &want_sig, NULL);
  snprintf(name, sizeof name, "%s-signed-request.txt", prefix);
  read_file(dir, name, &want_signed, &want_signed_len);

  th_sigv4_request req = {.method = rq->method,
                          .path = rq->path,
                          .query = rq->query,
                          .headers = rq->headers,
                          .nheaders = rq->nheaders,
                          .payload = rq->body,
                          .payload_len = rq->body_len};
  th_sigv4_credentials cred = {c->access_key, c->secret, c->token};
  th_sigv4_params params = {.region = c->region,
                            .service = c->service,
                            .time = c->time,
                            .expires = c->expires};
  params.flags = (c->normalize ? 0 : TH_SIGV4_NO_NORMALIZE) |
                 (c->sign_body && !presign ? TH_SIGV4_SIGN_BODY : 0) |
                 (c->omit_token ? TH_SIGV4_OMIT_TOKEN : 0) | (presign ? TH_SIGV4_PRESIGN : 0);
  const char *why = NULL;
  th_result r = th_sigv4_sign(&req, &cred, &params, &res, &why);
  if (r != TH_OK) {
    fail(rep, "%s signing failed: %s (%s)", prefix, th_result_name(r), why ? why : "?");
    goto done;
  }
  snprintf(name, sizeof name, "%s canonical request", prefix);
  compare(rep, name, res.canonical_request, want_creq);
  snprintf(name, sizeof name, "%s string to sign", prefix);
  compare(rep, name, res.string_to_sign, want_sts);
  snprintf(name, sizeof name, "%s signature", prefix);
  compare(rep, name, res.signature, want_sig);

  if (!want_signed) {
    fail(rep, "%s-signed-request.txt missing", prefix);
    goto done;
  }
  const char *perr = NULL;
  if (parse_request(want_signed, want_signed_len, &srq, &perr) != TH_OK) {
    fail(rep, "%s-signed-request.txt: %s", prefix, perr);
    goto done;
  }
  if (!presign) {
    const th_sigv4_header *want[MAX_HEADERS];
    size_t nwant = added_headers(rq, &srq, want, MAX_HEADERS);
    compare_sets(rep, "added headers", res.headers, res.nheaders, want, nwant, 1);
  } else {
    /* The X-Amz-* parameters of the signed request line. */
    th_sigv4_header pairs[MAX_PARAMS];
    const th_sigv4_header *want[MAX_PARAMS];
    size_t nwant = 0;
    char *qs = srq.query;
    size_t qn = qs ? strlen(qs) : 0;
    for (size_t i = 0; i < qn && nwant < MAX_PARAMS;) {
      size_t end = i + strcspn(qs + i, "&");
      qs[end] = '\0';
      char *eq = strchr(qs + i, '=');
      if (strncmp(qs + i, "X-Amz-", 6) == 0) {
        if (eq)
          *eq = '\0';
        pairs[nwant] = (th_sigv4_header){qs + i, eq ? eq + 1 : ""};
        want[nwant] = &pairs[nwant];
        nwant++;
      }
      i = end + 1;
    }
    compare_sets(rep, "added parameters", res.params, res.nparams, want, nwant, 0);
  }
  th_sigv4_result_free(&res);
done:
  request_free(&srq);
  free(want_creq);
  free(want_sts);
  free(want_sig);
  free(want_signed);
}

static int run_case(lua_State *L, const char *suite, const char *name) {
  char dir[4096];
  char *rtext = NULL, *ctext = NULL;
  size_t rlen = 0, clen = 0;
  request rq;
  context c;
  report rep = {.count = 0};
  const char *why = NULL;
  memset(&rq, 0, sizeof rq);
  memset(&c, 0, sizeof c);
  snprintf(dir, sizeof dir, "%s/%s", suite, name);

  if (read_file(dir, "request.txt", &rtext, &rlen) != TH_OK) {
    fail(&rep, "cannot read request.txt");
  } else if (read_file(dir, "context.json", &ctext, &clen) != TH_OK) {
    fail(&rep, "cannot read context.json");
  } else if (parse_request(rtext, rlen, &rq, &why) != TH_OK) {
    fail(&rep, "request.txt: %s", why);
  } else if (parse_context(L, ctext, clen, &c, &why) != TH_OK) {
    fail(&rep, "%s", why);
  } else {
    sign_mode(&rep, dir, &rq, &c, 0);
    if (file_exists(dir, "query-canonical-request.txt") ||
        file_exists(dir, "query-signed-request.txt"))
      sign_mode(&rep, dir, &rq, &c, 1);
  }
  if (rep.count == 0)
    printf("PASS %s\n", name);
  else if (rep.count == 1)
    printf("FAIL %s: %s\n", name, rep.first);
  else
    printf("FAIL %s: %s (and %d more differences)\n", name, rep.first, rep.count - 1);
  request_free(&rq);
  context_free(&c);
  free(rtext);
  free(ctext);
  return rep.count == 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SUITE_DIR\n", argv[0]);
    return 2;
  }
  const char *suite = argv[1];
  DIR *d = opendir(suite);
  if (!d) {
    fprintf(stderr, "sigv4-suite: cannot open %s\n", suite);
    return 2;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char path[4096];
    struct stat st;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", suite, e->d_name);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, sizeof *nn * cap);
      if (!nn) {
        fprintf(stderr, "sigv4-suite: out of memory\n");
        return 2;
      }
      names = nn;
    }
    names[n] = strdup(e->d_name);
    if (!names[n]) {
      fprintf(stderr, "sigv4-suite: out of memory\n");
      return 2;
    }
    n++;
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, by_name);

  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "sigv4-suite: cannot create a Lua state\n");
    return 2;
  }
  lua_pushcfunction(L, luaopen_cjson);
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode");
  lua_setfield(L, LUA_REGISTRYINDEX, "sigv4_suite.decode");
  lua_pop(L, 1);

  int passed = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (run_case(L, suite, names[i]))
      passed++;
    else
      failed++;
    free(names[i]);
  }
  free(names);
  lua_close(L);
  printf("%d passed, %d failed\n", passed, failed);
  return failed || passed == 0 ? 1 : 0;
}
