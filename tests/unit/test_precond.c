/* precond: If-Match / If-None-Match / Idempotency-Key grammar, the ETag of a
 * version and the fingerprint (SHA-256 of a NIST vector), table-driven. */
#include <string.h>

#include "check.h"
#include "precond.h"

typedef struct im_case {
  const char *value;
  th_result want;
  int any, n;
  long long v0, v1;
} im_case;

static const im_case if_match[] = {
    {"*", TH_OK, 1, 0, 0, 0},
    {"  *  ", TH_OK, 1, 0, 0, 0},
    {"\"1\"", TH_OK, 0, 1, 1, 0},
    {"\"12\", \"3\"", TH_OK, 0, 2, 12, 3},
    {"\"12\",\"3\"", TH_OK, 0, 2, 12, 3},
    {", \"7\" ,,", TH_OK, 0, 1, 7, 0},          /* #rule: empty elements */
    {"W/\"1\"", TH_OK, 0, 0, 0, 0},             /* weak: never matches */
    {"W/\"1\", \"2\"", TH_OK, 0, 1, 2, 0},
    {"\"abc\"", TH_OK, 0, 0, 0, 0},             /* a tag naming no version */
    {"\"0\"", TH_OK, 0, 0, 0, 0},
    {"\"01\"", TH_OK, 0, 0, 0, 0},
    {"\"\"", TH_OK, 0, 0, 0, 0},
    {"\"1234567890123456789\"", TH_OK, 0, 0, 0, 0}, /* 19 digits: not ours */
    {"", TH_ERR_INVALID, 0, 0, 0, 0},
    {" , ", TH_ERR_INVALID, 0, 0, 0, 0},
    {"1", TH_ERR_INVALID, 0, 0, 0, 0},
    {"\"1", TH_ERR_INVALID, 0, 0, 0, 0},
    {"\"1\" \"2\"", TH_ERR_INVALID, 0, 0, 0, 0},
    {"*, \"1\"", TH_ERR_INVALID, 0, 0, 0, 0},
    {"w/\"1\"", TH_ERR_INVALID, 0, 0, 0, 0},
    {"\"a b\"", TH_ERR_INVALID, 0, 0, 0, 0},   /* a space is not an etagc */
    {"\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\","
     "\"15\",\"16\"", TH_OK, 0, 16, 1, 2},
    {"\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\","
     "\"15\",\"16\",\"17\"", TH_ERR_INVALID, 0, 0, 0, 0},
};

typedef struct key_case {
  const char *value;
  const char *want; /* NULL: invalid */
} key_case;

static char k255[258], k256[259];

int main(void) {
  for (size_t i = 0; i < TH_ARRAY_LEN(if_match); i++) {
    const im_case *c = &if_match[i];
    th_store_match m = {.n = -1};
    th_result r = th_precond_if_match(c->value, &m);
    CHECK(r == c->want, "If-Match [%s]: %s", c->value, th_result_name(r));
    if (r != TH_OK) {
      CHECK(m.n == -1, "If-Match [%s]: output written on failure", c->value);
      continue;
    }
    CHECK(m.active && m.any == c->any && m.n == c->n, "If-Match [%s]: any %d n %d", c->value,
          m.any, m.n);
    if (c->n > 0)
      CHECK(m.versions[0] == c->v0, "If-Match [%s]: first %lld", c->value, m.versions[0]);
    if (c->n > 1)
      CHECK(m.versions[1] == c->v1, "If-Match [%s]: second %lld", c->value, m.versions[1]);
  }

  CHECK(th_precond_none_match("\"3\"", 3) == 1, "If-None-Match: same tag");
  CHECK(th_precond_none_match("W/\"3\"", 3) == 1, "If-None-Match: weak comparison");
  CHECK(th_precond_none_match("\"1\", \"3\"", 3) == 1, "If-None-Match: in a list");
  CHECK(th_precond_none_match("*", 9) == 1, "If-None-Match: *");
  CHECK(th_precond_none_match("\"4\"", 3) == 0, "If-None-Match: another version");
  CHECK(th_precond_none_match("3", 3) == 0, "If-None-Match: malformed never matches");
  CHECK(th_precond_none_match("", 3) == 0, "If-None-Match: empty");

  char etag[32];
  th_precond_etag(42, etag, sizeof etag);
  CHECK_STR(etag, "\"42\"");

  memset(k255, 'k', 255);
  memset(k256 + 1, 'k', 256);
  k256[0] = '"';
  k256[257] = '"';
  const key_case keys[] = {
      {"\"abc\"", "abc"},
      {"abc", "abc"},
      {"  \"a-b_c.1~!\"  ", "a-b_c.1~!"},
      {k255, k255},
      {k256, NULL},
      {"", NULL},
      {"\"\"", NULL},
      {"\"a b\"", NULL},
      {"\"a\\\"b\"", NULL},
      {"\"a\\\\b\"", NULL},
      {"\"caf\xc3\xa9\"", NULL},
      {"\"tab\there\"", NULL},
      {"\"x", NULL},
      {"\"", NULL},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(keys); i++) {
    char out[TH_IDEM_MAX_KEY + 1] = "untouched";
    th_result r = th_idem_parse_key(keys[i].value, out);
    if (keys[i].want) {
      CHECK(r == TH_OK, "key [%.40s]: %s", keys[i].value, th_result_name(r));
      CHECK_STR(out, keys[i].want);
    } else {
      CHECK(r == TH_ERR_INVALID && strcmp(out, "untouched") == 0, "key [%.40s] refused, untouched",
            keys[i].value);
    }
  }

  /* SHA-256("POST\0/tasks\0abc"), computed independently with Python's hashlib. */
  char fp[TH_IDEM_FINGERPRINT_LEN];
  CHECK(th_idem_fingerprint("POST", "/tasks", "abc", 3, fp) == TH_OK, "fingerprint");
  CHECK_STR(fp, "3d500010ad30a47377b5bf7b7afc55a9451160020123a995e4c940db4399394d");
  return CHECK_DONE();
}
