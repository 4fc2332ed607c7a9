/* dynamodb: the parts that need no server — error decoding on the AWS
 * protocol vectors (tests/fixtures/dynamodb, see its SOURCE.md), error
 * classification and retry policy, backoff bounds, CRC32, number
 * canonicalisation, request bodies and response parsing (exact numbers,
 * empty lists), item equality, endpoint URLs and the AWS configuration;
 * and a call cut short by its stop flag, against a loopback socket that
 * never answers. The behaviour against a real server is
 * tests/integration/test_store_dynamodb.c. */
#include "check.h"
#include "config.h"
#include "dynamodb.h"
#include "http.h"
#include "log.h"
#include "lua_modules.h"
#include "store_dynamodb.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <lualib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static lua_State *TL;      /* the test's own JSON reader for fixtures */
static th_ddb_codec *C;

static char *read_fixture(const char *rel) {
  const char *dir = getenv("FIXTURES");
  char path[1024];
  snprintf(path, sizeof path, "%s/dynamodb/%s", dir ? dir : "tests/fixtures", rel);
  FILE *f = fopen(path, "rb");
  if (!f) {
    CHECK(0, "cannot open %s", path);
    return NULL;
  }
  th_buf b;
  th_buf_init(&b, 16u << 20);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    th_buf_append(&b, chunk, n);
  fclose(f);
  if (!b.data)
    th_buf_append(&b, "", 0);
  return th_buf_steal(&b, NULL);
}

static int decode_p(lua_State *L) {
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  th_json_decode(L, s, n);
  return 1;
}

/* Pushes the decoded fixture (nil when unreadable). */
static void push_fixture(const char *rel) {
  char *text = read_fixture(rel);
  lua_pushcfunction(TL, decode_p);
  lua_pushstring(TL, text ? text : "null");
  if (lua_pcall(TL, 1, 1, 0) != LUA_OK) {
    CHECK(0, "%s: %s", rel, lua_tostring(TL, -1));
    lua_pop(TL, 1);
    lua_pushnil(TL);
  }
  free(text);
}

static int encode_p(lua_State *L) {
  th_json_encode(L, 1);
  return 1;
}

/* The JSON text of the value at idx (caller frees). */
static char *encode_at(int idx) {
  idx = lua_absindex(TL, idx);
  lua_pushcfunction(TL, encode_p);
  lua_pushvalue(TL, idx);
  if (lua_pcall(TL, 1, 1, 0) != LUA_OK) {
    lua_pop(TL, 1);
    return NULL;
  }
  char *s = strdup(lua_tostring(TL, -1));
  lua_pop(TL, 1);
  return s;
}

static const char *field_str(int idx, const char *k) {
  lua_getfield(TL, idx, k);
  const char *s = lua_type(TL, -1) == LUA_TSTRING ? lua_tostring(TL, -1) : NULL;
  lua_pop(TL, 1); /* the string stays alive: the table still holds it */
  return s;
}

/* ---------------------------------------------------------------- errors */

/* Every error case of the awsJson1_0 protocol tests. */
static void test_protocol_errors(void) {
  int cases = 0;
  push_fixture("protocol/json_1_0.output.json");
  int suites = lua_gettop(TL);
  for (lua_Integer i = 1; lua_rawgeti(TL, suites, i) == LUA_TTABLE; i++) {
    lua_getfield(TL, -1, "cases");
    int list = lua_gettop(TL);
    for (lua_Integer k = 1; lua_rawgeti(TL, list, k) == LUA_TTABLE; k++) {
      int cs = lua_gettop(TL);
      const char *want_code = field_str(cs, "errorCode");
      if (want_code) {
        const char *id = field_str(cs, "id");
        const char *want_msg = field_str(cs, "errorMessage");
        lua_getfield(TL, cs, "response");
        int resp = lua_gettop(TL);
        lua_getfield(TL, resp, "status_code");
        long status = (long)lua_tointeger(TL, -1);
        lua_pop(TL, 1);
        const char *body = field_str(resp, "body");
        const char *errortype = NULL;
        if (lua_getfield(TL, resp, "headers") == LUA_TTABLE) {
          lua_pushnil(TL);
          while (lua_next(TL, -2)) {
            if (strcasecmp(lua_tostring(TL, -2), "X-Amzn-Errortype") == 0)
              errortype = lua_tostring(TL, -1);
            lua_pop(TL, 1);
          }
        }
        lua_pop(TL, 1);
        th_ddb_error e;
        th_ddb_error_decode(C, status, errortype, body, body ? strlen(body) : 0, &e);
        CHECK(strcmp(e.code, want_code) == 0, "%s: code '%s', want '%s'", id, e.code, want_code);
        CHECK(strcmp(e.message, want_msg ? want_msg : "") == 0, "%s: message '%s', want '%s'", id,
              e.message, want_msg ? want_msg : "");
        CHECK(e.status == status, "%s: status", id);
        cases++;
        lua_settop(TL, cs);
      }
      lua_pop(TL, 1);
    }
    lua_settop(TL, suites);
  }
  lua_settop(TL, 0);
  CHECK(cases >= 10, "only %d error cases found", cases);
}

static void test_botocore_error(void) {
  char *body = read_fixture("errors/botocore-dynamodb-put-item.error-body.json");
  push_fixture("errors/botocore-dynamodb-put-item.expected.json");
  lua_getfield(TL, -1, "Error");
  th_ddb_error e;
  th_ddb_error_decode(C, 400, NULL, body, body ? strlen(body) : 0, &e);
  CHECK_STR(e.code, field_str(-1, "Code"));
  CHECK_STR(e.message, field_str(-1, "Message"));
  CHECK(e.kind == TH_DDB_THROTTLING, "kind %s", th_ddb_kind_name(e.kind));
  CHECK(th_ddb_kind_result(e.kind) == TH_ERR_THROTTLED, "result");
  lua_settop(TL, 0);
  free(body);
}

/* A whole HTTP response from the developer guide. */
static void test_devguide_response(void) {
  char *raw = read_fixture("devguide/error-resourcenotfound.response.txt");
  if (!raw)
    return;
  long status = strtol(raw + strlen("HTTP/1.1 "), NULL, 10);
  const char *body = strstr(raw, "\n\n");
  char request_id[128] = "";
  const char *rid = strstr(raw, "x-amzn-RequestId: ");
  if (rid)
    sscanf(rid, "x-amzn-RequestId: %127s", request_id);
  th_ddb_error e;
  th_ddb_error_decode(C, status, NULL, body ? body + 2 : "", body ? strlen(body + 2) : 0, &e);
  CHECK(status == 400, "status %ld", status);
  CHECK_STR(e.code, "ResourceNotFoundException");
  CHECK_STR(e.message, "Requested resource not found: Table: tablename not found");
  CHECK(e.kind == TH_DDB_NO_TABLE && th_ddb_kind_result(e.kind) == TH_ERR_INTERNAL, "kind %s",
        th_ddb_kind_name(e.kind));
  CHECK_STR(request_id, "LDM6CJP8RMQ1FHKSC1RBVJFPNVV4KQNSO5AEMF66Q9ASUAAJG");
  free(raw);
}

/* The guide's table: we retry what it says is OK to retry, except where the
 * SDKs (botocore's standard mode) do not, which we follow. */
static void test_errors_table(void) {
  static const char *const sdk_differs[] = {
    "ItemCollectionSizeLimitExceededException", /* a data condition: retrying cannot help */
    "UnrecognizedClientException",              /* bad credentials stay bad */
  };
  int rows = 0;
  push_fixture("devguide/errors-table.json");
  lua_getfield(TL, -1, "errors");
  int list = lua_gettop(TL);
  for (lua_Integer i = 1; lua_rawgeti(TL, list, i) == LUA_TTABLE; i++) {
    int row = lua_gettop(TL);
    const char *code = field_str(row, "exception");
    lua_getfield(TL, row, "http_status");
    long status = (long)lua_tointeger(TL, -1);
    lua_getfield(TL, row, "ok_to_retry");
    int doc_retry = lua_toboolean(TL, -1);
    th_ddb_kind k = th_ddb_classify(status, code ? code : "");
    int differs = 0;
    for (size_t j = 0; code && j < TH_ARRAY_LEN(sdk_differs); j++)
      differs |= strcmp(code, sdk_differs[j]) == 0;
    CHECK(th_ddb_retryable(k) == (differs ? !doc_retry : doc_retry), "%s (%ld): kind %s",
          code ? code : "(status only)", status, th_ddb_kind_name(k));
    rows++;
    lua_settop(TL, list);
  }
  lua_settop(TL, 0);
  CHECK(rows >= 16, "%d rows", rows);
}

static void test_classify(void) {
  static const struct {
    long status;
    const char *code;
    th_ddb_kind kind;
    th_result result;
  } cases[] = {
    {400, "ConditionalCheckFailedException", TH_DDB_CONDITION, TH_ERR_EXISTS},
    {400, "ProvisionedThroughputExceededException", TH_DDB_THROTTLING, TH_ERR_THROTTLED},
    {400, "ThrottlingException", TH_DDB_THROTTLING, TH_ERR_THROTTLED},
    {400, "RequestLimitExceeded", TH_DDB_THROTTLING, TH_ERR_THROTTLED},
    {400, "LimitExceededException", TH_DDB_THROTTLING, TH_ERR_THROTTLED},
    {400, "TransactionInProgressException", TH_DDB_THROTTLING, TH_ERR_THROTTLED},
    {503, "ThrottlingException", TH_DDB_THROTTLING, TH_ERR_THROTTLED},
    {500, "InternalServerError", TH_DDB_TRANSIENT, TH_ERR_UNAVAILABLE},
    {500, "", TH_DDB_TRANSIENT, TH_ERR_UNAVAILABLE},
    {502, "", TH_DDB_TRANSIENT, TH_ERR_UNAVAILABLE},
    {503, "ServiceUnavailable", TH_DDB_TRANSIENT, TH_ERR_UNAVAILABLE},
    {504, "", TH_DDB_TRANSIENT, TH_ERR_UNAVAILABLE},
    {500, "ValidationException", TH_DDB_TRANSIENT, TH_ERR_UNAVAILABLE}, /* status wins, as in the SDKs */
    {400, "RequestTimeoutException", TH_DDB_TRANSIENT, TH_ERR_UNAVAILABLE},
    {400, "ReplicatedWriteConflictException", TH_DDB_TRANSIENT, TH_ERR_UNAVAILABLE},
    {429, "", TH_DDB_THROTTLING, TH_ERR_THROTTLED},
    {400, "ValidationException", TH_DDB_INVALID, TH_ERR_INVALID},
    {400, "SerializationException", TH_DDB_INVALID, TH_ERR_INVALID},
    {413, "", TH_DDB_INVALID, TH_ERR_INVALID},
    {400, "AccessDeniedException", TH_DDB_AUTH, TH_ERR_INTERNAL},
    {400, "UnrecognizedClientException", TH_DDB_AUTH, TH_ERR_INTERNAL},
    {400, "InvalidSignatureException", TH_DDB_AUTH, TH_ERR_INTERNAL},
    {400, "MissingAuthenticationTokenException", TH_DDB_AUTH, TH_ERR_INTERNAL},
    {400, "ExpiredTokenException", TH_DDB_AUTH, TH_ERR_INTERNAL},
    {403, "", TH_DDB_AUTH, TH_ERR_INTERNAL},
    {400, "ResourceNotFoundException", TH_DDB_NO_TABLE, TH_ERR_INTERNAL},
    {400, "TransactionConflictException", TH_DDB_BUSY, TH_ERR_UNAVAILABLE},
    {400, "ItemCollectionSizeLimitExceededException", TH_DDB_OTHER, TH_ERR_INTERNAL},
    {400, "", TH_DDB_OTHER, TH_ERR_INTERNAL},
    {404, "UnknownOperationException", TH_DDB_OTHER, TH_ERR_INTERNAL},
    {200, "", TH_DDB_NONE, TH_OK},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_ddb_kind k = th_ddb_classify(cases[i].status, cases[i].code);
    CHECK(k == cases[i].kind, "%ld %s: kind %s, want %s", cases[i].status, cases[i].code,
          th_ddb_kind_name(k), th_ddb_kind_name(cases[i].kind));
    CHECK(th_ddb_kind_result(k) == cases[i].result, "%ld %s: result %s", cases[i].status,
          cases[i].code, th_result_name(th_ddb_kind_result(k)));
    CHECK(th_ddb_retryable(k) == (k == TH_DDB_THROTTLING || k == TH_DDB_TRANSIENT), "retryable");
  }
  /* The header beats the body; ':' suffixes and namespaces go. */
  th_ddb_error e;
  const char *body = "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ValidationException\","
                     "\"message\":\"line one\\nline two\"}";
  th_ddb_error_decode(C, 400, "ThrottlingException:http://internal.amazon.com/coral/x/", body,
                      strlen(body), &e);
  CHECK_STR(e.code, "ThrottlingException");
  CHECK_STR(e.message, "line one line two");
  th_ddb_error_decode(C, 502, NULL, "<html>Bad Gateway</html>", 24, &e);
  CHECK(e.code[0] == '\0' && e.kind == TH_DDB_TRANSIENT, "502 with HTML: %s", e.code);
  th_ddb_error_decode(C, 400, "", NULL, 0, &e);
  CHECK(e.code[0] == '\0' && e.kind == TH_DDB_OTHER, "empty 400");
}

/* --------------------------------------------------------------- retries */

static void test_retry_policy(void) {
  th_ddb_retry p = th_ddb_retry_standard(0);
  CHECK(p.max_attempts == 3, "default attempts %d", p.max_attempts);
  CHECK(p.base_ms == 25 && p.throttle_base_ms == 1000 && p.max_backoff_ms == 20000, "bases");
  CHECK(th_ddb_retry_standard(5).max_attempts == 5, "AWS_MAX_ATTEMPTS=5");
  CHECK(th_ddb_retry_standard(1000).max_attempts == TH_DDB_MAX_ATTEMPTS, "capped");

  /* Full jitter: [0, min(base * 2^(n-1), 20 s)). */
  for (int throttling = 0; throttling <= 1; throttling++) {
    double base = throttling ? 1000 : 25;
    for (int n = 1; n <= 40; n++) {
      double cap = base * (double)(1ull << (n - 1 < 30 ? n - 1 : 30));
      if (cap > 20000)
        cap = 20000;
      CHECK(th_ddb_backoff_ms(&p, n, throttling, 0.0, -1) == 0, "r=0 gives 0");
      double hi = th_ddb_backoff_ms(&p, n, throttling, 0.999999, -1);
      CHECK(hi <= cap && hi > cap * 0.999, "attempt %d throttling %d: %f vs cap %f", n, throttling,
            hi, cap);
      CHECK(th_ddb_backoff_ms(&p, n, throttling, 0.5, -1) == cap / 2, "midpoint");
    }
  }
  CHECK(th_ddb_backoff_ms(&p, 1, 0, 1.5, -1) < 25, "r01 out of range is clamped");
  CHECK(th_ddb_backoff_ms(&p, 1, 0, -1, -1) == 0, "negative r01 is clamped");
  /* Seeded sweep: every draw within bounds. */
  unsigned long long x = 88172645463325252ull;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double r = (double)(x >> 11) * 0x1.0p-53;
    int n = 1 + i % 12, thr = i & 1;
    double d = th_ddb_backoff_ms(&p, n, thr, r, -1);
    double cap = (thr ? 1000.0 : 25.0) * (double)(1u << (n - 1));
    if (cap > 20000)
      cap = 20000;
    if (!(d >= 0 && d < cap)) {
      CHECK(0, "draw %d: %f outside [0, %f)", i, d, cap);
      break;
    }
  }
  /* x-amz-retry-after: at least the server's wish, at most t + 5 s. */
  CHECK(th_ddb_backoff_ms(&p, 1, 0, 0.0, 3000) == 3000, "retry-after 3 s");
  CHECK(th_ddb_backoff_ms(&p, 1, 0, 0.0, 9000) == 5000, "retry-after capped at t + 5 s");
  CHECK(th_ddb_backoff_ms(&p, 1, 1, 0.5, 100) == 500, "retry-after below t changes nothing");
}

/* ----------------------------------------------------------- pure helpers */

static void test_crc32(void) {
  CHECK(th_ddb_crc32("123456789", 9) == 0xCBF43926u, "check value");
  CHECK(th_ddb_crc32("", 0) == 0, "empty");
  /* The values dynalite sends for its two fixed bodies. */
  const char *healthy = "healthy: dynamodb.us-east-1.amazonaws.com ";
  CHECK(th_ddb_crc32(healthy, strlen(healthy)) == 3128867991u, "dynalite GET /");
  const char *unknown = "<UnknownOperationException/>\n";
  CHECK(th_ddb_crc32(unknown, strlen(unknown)) == 3552371480u, "dynalite 404");
}

static void test_number_canon(void) {
  static const struct {
    const char *in, *want; /* want NULL: invalid */
  } cases[] = {
    {"1703001234", "1703001234"},
    {"9007199254740993", "9007199254740993"},
    {"123456789012345678901234567890", "12345678901234567890123456789e1"},
    {"-0.5", "-5e-1"},
    {"1.50", "15e-1"},
    {"1.5", "15e-1"},
    {"0.0", "0"},
    {"-0", "0"},
    {"000", "0"},
    {"100", "1e2"},
    {"1e2", "1e2"},
    {"1E+2", "1e2"},
    {"-0012.50e1", "-125"},
    {"+7", "7"},
    {".5", "5e-1"},
    {"5.", "5"},
    {"1e-130", "1e-130"},
    {"", NULL}, {"abc", NULL}, {"1.2.3", NULL}, {"1e", NULL}, {"--1", NULL},
    {".", NULL}, {"1e999999999", NULL}, {" 1", NULL}, {"1 ", NULL}, {"0x10", NULL},
    {"NaN", NULL}, {"Infinity", NULL},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_buf b;
    th_buf_init(&b, 1024);
    th_result r = th_ddb_number_canon(cases[i].in, &b);
    if (cases[i].want) {
      CHECK(r == TH_OK, "'%s': %s", cases[i].in, th_result_name(r));
      CHECK_STR(b.data, cases[i].want);
    } else {
      CHECK(r == TH_ERR_INVALID, "'%s' accepted as '%s'", cases[i].in, b.data ? b.data : "");
    }
    th_buf_free(&b);
  }
}

/* --------------------------------------------------------- request bodies */

/* Decodes a body with the test's reader and pushes it (nil on failure). */
static void push_body(const char *body) {
  lua_pushcfunction(TL, decode_p);
  lua_pushstring(TL, body ? body : "");
  if (lua_pcall(TL, 1, 1, 0) != LUA_OK) {
    CHECK(0, "body is not JSON: %s", body ? body : "(null)");
    lua_pop(TL, 1);
    lua_pushnil(TL);
  }
}

static const char *path_str(int idx, const char *const *keys, size_t n) {
  lua_pushvalue(TL, idx);
  for (size_t i = 0; i < n; i++) {
    if (lua_type(TL, -1) != LUA_TTABLE) {
      lua_pop(TL, 1);
      return NULL;
    }
    lua_getfield(TL, -1, keys[i]);
    lua_remove(TL, -2);
  }
  const char *s = lua_type(TL, -1) == LUA_TSTRING ? lua_tostring(TL, -1) : NULL;
  lua_pop(TL, 1);
  return s;
}
#define PATH(idx, ...) path_str((idx), (const char *const[]){__VA_ARGS__}, \
                                sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

#define EXACT_VALUES                                                                           \
  "\"n2\":{\"N\":\"9007199254740993\"},\"n4\":{\"N\":\"123456789012345678901234567890\"},"     \
  "\"n1\":{\"N\":\"1703001234\"},\"l0\":{\"L\":[]},\"m0\":{\"M\":{}},"                         \
  "\"l\":{\"L\":[{\"L\":[]},{\"M\":{}},{\"N\":\"-0.5\"},{\"NULL\":true},{\"BOOL\":false}]},"   \
  "\"ss\":{\"SS\":[\"a\",\"b\"]},\"ns\":{\"NS\":[\"1\",\"2.5\"]},\"bs\":{\"BS\":[\"AAE=\"]},"  \
  "\"b\":{\"B\":\"dGVzdA==\"},\"u\":{\"S\":\"\\u00e9 \\ud83c\\udf89 \\\" \\\\ \\u0000\"}"

static void test_body_put(void) {
  static const char item[] = "{\"id\":{\"S\":\"k1\"}," EXACT_VALUES "}";
  char *body = NULL, why[256] = "";
  th_result r = th_ddb_body_put(C, "Tasks", "owner-1", "k1", item, &body, why, sizeof why);
  CHECK(r == TH_OK, "put: %s %s", th_result_name(r), why);
  if (!body)
    return;
  /* Exactness on the wire, as text. */
  CHECK(strstr(body, "\"N\":\"9007199254740993\"") != NULL, "2^53+1: %s", body);
  CHECK(strstr(body, "\"N\":\"123456789012345678901234567890\"") != NULL, "30 digits: %s", body);
  CHECK(strstr(body, "\"N\":\"1703001234\"") != NULL, "epoch: %s", body);
  CHECK(strstr(body, "\"l0\":{\"L\":[]}") != NULL, "empty L: %s", body);
  CHECK(strstr(body, "{\"L\":[]},{\"M\":{}}") != NULL, "nested empty L and M: %s", body);
  CHECK(strstr(body, "\"m0\":{\"M\":{}}") != NULL, "empty M: %s", body);
  CHECK(strstr(body, "e+") == NULL && strstr(body, "E+") == NULL, "no exponent: %s", body);
  CHECK(strstr(body, "\\u0000") != NULL, "NUL kept: %s", body);
  push_body(body);
  int b = lua_gettop(TL);
  CHECK_STR(PATH(b, "TableName"), "Tasks");
  CHECK_STR(PATH(b, "Item", "id", "S"), "k1");
  CHECK_STR(PATH(b, "Item", "user_id", "S"), "owner-1"); /* the partition key, added */
  CHECK_STR(PATH(b, "Item", "u", "S"), "\xc3\xa9 \xf0\x9f\x8e\x89 \" \\ ");
  CHECK_STR(PATH(b, "ConditionExpression"), "attribute_not_exists(#k)");
  CHECK_STR(PATH(b, "ExpressionAttributeNames", "#k"), "id");
  CHECK_STR(PATH(b, "Item", "version", "N"), "1"); /* every item starts at version 1 */
  lua_getfield(TL, b, "Item");
  lua_pushnil(TL);
  lua_setfield(TL, -2, "user_id");
  lua_pushnil(TL);
  lua_setfield(TL, -2, "version");
  char *again = encode_at(-1);
  CHECK(again && th_ddb_items_equal(C, again, item) == 1, "item kept: %s", again);
  free(again);
  lua_settop(TL, 0);
  free(body);
}

static void test_body_other(void) {
  char *body = NULL, why[256] = "";
  CHECK(th_ddb_body_get(C, "Tasks", "owner-1", "a\"b", &body, why, sizeof why) == TH_OK, "get %s", why);
  push_body(body);
  CHECK_STR(PATH(1, "Key", "id", "S"), "a\"b");
  CHECK_STR(PATH(1, "Key", "user_id", "S"), "owner-1");
  lua_getfield(TL, 1, "ConsistentRead");
  CHECK(lua_toboolean(TL, -1), "ConsistentRead");
  lua_settop(TL, 0);
  free(body);

  body = NULL;
  CHECK(th_ddb_body_delete(C, "Tasks", "owner-1", "x", &body, why, sizeof why) == TH_OK, "delete %s", why);
  push_body(body);
  CHECK_STR(PATH(1, "Key", "id", "S"), "x");
  CHECK_STR(PATH(1, "Key", "user_id", "S"), "owner-1");
  CHECK_STR(PATH(1, "ReturnValues"), "ALL_OLD");
  CHECK_STR(PATH(1, "ConditionExpression"), "attribute_exists(#k)");
  CHECK_STR(PATH(1, "ExpressionAttributeNames", "#k"), "id");
  lua_settop(TL, 0);
  free(body);

  /* The list: a Query of the owner's partition, newest first. */
  body = NULL;
  CHECK(th_ddb_body_query(C, "Tasks", "o\"1", 26, NULL, &body, why, sizeof why) == TH_OK,
        "query %s", why);
  CHECK(body && strstr(body, "\"Limit\":26") && strstr(body, "\"ConsistentRead\":true") &&
            strstr(body, "\"ScanIndexForward\":false") && !strstr(body, "ExclusiveStartKey"),
        "query: %s", body);
  push_body(body);
  CHECK_STR(PATH(1, "TableName"), "Tasks");
  CHECK_STR(PATH(1, "KeyConditionExpression"), "#u = :u AND #k < :r");
  CHECK_STR(PATH(1, "ExpressionAttributeNames", "#u"), "user_id");
  CHECK_STR(PATH(1, "ExpressionAttributeNames", "#k"), "id");
  /* bounded below the idempotency records (U+10FFFF...), never filtered */
  CHECK_STR(PATH(1, "ExpressionAttributeValues", ":r", "S"), "\xF4\x8F\xBF\xBF");
  CHECK(!strstr(body, "FilterExpression"), "query: %s", body);
  CHECK_STR(PATH(1, "ExpressionAttributeValues", ":u", "S"), "o\"1");
  lua_settop(TL, 0);
  free(body);
  body = NULL;
  CHECK(th_ddb_body_query(C, "Tasks", "o1", 1001, "last", &body, why, sizeof why) == TH_OK,
        "query %s", why);
  push_body(body);
  CHECK_STR(PATH(1, "ExclusiveStartKey", "id", "S"), "last");
  CHECK_STR(PATH(1, "ExclusiveStartKey", "user_id", "S"), "o1");
  lua_settop(TL, 0);
  free(body);
  body = NULL;
  CHECK(th_ddb_body_query(C, "Tasks", "o1", 0, NULL, &body, why, sizeof why) == TH_ERR_INVALID &&
            !body, "limit 0");
  CHECK(th_ddb_body_query(C, "Tasks", NULL, 1, NULL, &body, why, sizeof why) == TH_ERR_INVALID &&
            !body, "NULL owner");
}

static void test_body_update(void) {
  static const char fields[] = "{" EXACT_VALUES ",\"title\":{\"S\":\"t\"},\"#weird :name\":{\"S\":\"w\"}}";
  char *body = NULL, why[256] = "";
  th_result r = th_ddb_body_update(C, "Tasks", "owner-1", "k1", fields, &body, why, sizeof why);
  CHECK(r == TH_OK, "update: %s %s", th_result_name(r), why);
  if (!body)
    return;
  CHECK(strstr(body, "\"N\":\"9007199254740993\"") && strstr(body, "{\"L\":[]}"), "exact: %s", body);
  push_body(body);
  int b = lua_gettop(TL);
  CHECK_STR(PATH(b, "Key", "id", "S"), "k1");
  CHECK_STR(PATH(b, "ReturnValues"), "ALL_NEW");
  CHECK_STR(PATH(b, "ConditionExpression"), "attribute_exists(#k)");
  const char *expr = PATH(b, "UpdateExpression");
  CHECK(expr && strncmp(expr, "SET #n0 = :v0, #n1 = :v1", 24) == 0, "expression %s", expr);
  /* Rebuild {name: value} from the placeholders: it must equal the fields. */
  lua_getfield(TL, b, "ExpressionAttributeNames");
  lua_getfield(TL, b, "ExpressionAttributeValues");
  int names = b + 1, values = b + 2, n = 0;
  lua_newtable(TL);
  int rebuilt = lua_gettop(TL);
  for (int i = 0;; i++) {
    char nk[32], vk[32];
    snprintf(nk, sizeof nk, "#n%d", i);
    snprintf(vk, sizeof vk, ":v%d", i);
    if (lua_getfield(TL, names, nk) != LUA_TSTRING) {
      lua_pop(TL, 1);
      break;
    }
    lua_getfield(TL, values, vk);
    lua_settable(TL, rebuilt);
    n++;
  }
  CHECK(n == 13, "%d placeholders", n);
  char *text = encode_at(rebuilt);
  CHECK(text && th_ddb_items_equal(C, text, fields) == 1, "rebuilt %s", text);
  free(text);
  lua_settop(TL, 0);
  free(body);

  body = (char *)"untouched";
  CHECK(th_ddb_body_update(C, "Tasks", "owner-1", "k1", "{}", &body, why, sizeof why) == TH_OK && !body,
        "empty fields: nothing to send");
  /* The update-expression limit. */
  th_buf many;
  th_buf_init(&many, 1u << 20);
  th_buf_append_str(&many, "{");
  for (int i = 0; i <= TH_DDB_MAX_UPDATE_FIELDS; i++) {
    char f[64];
    snprintf(f, sizeof f, "%s\"f%d\":{\"N\":\"%d\"}", i ? "," : "", i, i);
    th_buf_append_str(&many, f);
  }
  th_buf_append_str(&many, "}");
  body = NULL;
  CHECK(th_ddb_body_update(C, "Tasks", "owner-1", "k1", many.data, &body, why, sizeof why) == TH_ERR_INVALID &&
            !body && strstr(why, "at most"), "too many fields: %s", why);
  th_buf_free(&many);
}

static void test_body_invalid(void) {
  static const struct {
    const char *text;
    int fields;
  } bad[] = {
    {"", 0}, {"[]", 0}, {"[{\"id\":{\"S\":\"k\"}}]", 0}, {"{\"id\":{\"S\":\"k\"}", 0},
    {"{\"t\":{\"S\":\"no id\"}}", 0}, {"{\"id\":{\"S\":\"other\"}}", 0}, {"{\"id\":{\"N\":\"1\"}}", 0},
    {"{\"id\":\"k\"}", 0}, {"{\"id\":{\"S\":\"k\",\"N\":\"1\"}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":null}", 0}, {"{\"id\":{\"S\":\"k\"},\"t\":\"plain\"}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":{}}", 0}, {"{\"id\":{\"S\":\"k\"},\"t\":{\"S\":1}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":{\"N\":1}}", 0}, {"{\"id\":{\"S\":\"k\"},\"t\":{\"FOO\":\"x\"}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":{\"BOOL\":\"true\"}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":{\"L\":{\"a\":{\"S\":\"x\"}}}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":{\"L\":[{\"S\":\"x\"},\"bare\"]}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":{\"M\":[{\"S\":\"x\"}]}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":{\"SS\":[1]}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"t\":{\"M\":{\"in\":{\"L\":[{}]}}}}", 0},
    {"{\"id\":{\"S\":\"k\"}} trailing", 0},
    {"{\"id\":{\"S\":\"k\"},\"user_id\":{\"S\":\"owner-1\"}}", 0},
    {"{\"id\":{\"S\":\"k\"},\"user_id\":{\"S\":\"someone else\"}}", 0},
    {"{\"id\":{\"S\":\"k\"}}", 1}, {"[]", 1}, {"{\"t\":null}", 1}, {"", 1}, {"nope", 1},
    {"{\"user_id\":{\"S\":\"x\"}}", 1}, {"{\"t\":{\"S\":\"x\"},\"user_id\":{\"N\":\"1\"}}", 1},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    char *body = NULL, why[256] = "";
    th_result r = bad[i].fields
                      ? th_ddb_body_update(C, "Tasks", "owner-1", "k", bad[i].text, &body, why, sizeof why)
                      : th_ddb_body_put(C, "Tasks", "owner-1", "k", bad[i].text, &body, why, sizeof why);
    CHECK(r == TH_ERR_INVALID && !body && why[0], "%s '%s': %s (%s)",
          bad[i].fields ? "fields" : "item", bad[i].text, th_result_name(r), why);
    CHECK(!strchr(why, '\n'), "why is one line: %s", why);
    free(body);
  }
  char *body = NULL, why[64];
  CHECK(th_ddb_body_put(C, "Tasks", "owner-1", "k", NULL, &body, why, sizeof why) == TH_ERR_INVALID, "NULL item");
  CHECK(th_ddb_body_get(C, "Tasks", "owner-1", NULL, &body, why, sizeof why) == TH_ERR_INVALID, "NULL id");
  CHECK(th_ddb_body_get(C, "Tasks", NULL, "k", &body, why, sizeof why) == TH_ERR_INVALID, "NULL owner");
  CHECK(th_ddb_body_put(C, "Tasks", NULL, "k", "{\"id\":{\"S\":\"k\"}}", &body, why, sizeof why) ==
            TH_ERR_INVALID, "put, NULL owner");
  CHECK(th_ddb_body_update(C, "Tasks", NULL, "k", "{\"t\":{\"S\":\"x\"}}", &body, why, sizeof why) ==
            TH_ERR_INVALID, "update, NULL owner");
  CHECK(th_ddb_body_delete(C, "Tasks", NULL, "k", &body, why, sizeof why) == TH_ERR_INVALID,
        "delete, NULL owner");
}

/* Every example of the API model's AttributeValue documentation. */
static void test_doc_examples(void) {
  int n = 0;
  push_fixture("attributevalue/service-2-attributevalue-doc-examples.json");
  lua_getfield(TL, -1, "examples");
  int list = lua_gettop(TL);
  for (lua_Integer i = 1; lua_rawgeti(TL, list, i) == LUA_TTABLE; i++) {
    int ex = lua_gettop(TL);
    const char *type = field_str(ex, "type");
    lua_newtable(TL);
    lua_newtable(TL);
    lua_pushstring(TL, "k");
    lua_setfield(TL, -2, "S");
    lua_setfield(TL, -2, "id");
    lua_getfield(TL, ex, "example");
    lua_setfield(TL, -2, "v");
    char *item = encode_at(-1), *body = NULL, why[256] = "";
    th_result r = th_ddb_body_put(C, "T", "owner-1", "k", item, &body, why, sizeof why);
    CHECK(r == TH_OK, "%s: %s %s", type, th_result_name(r), why);
    if (body) {
      push_body(body);
      lua_getfield(TL, -1, "Item");
      lua_pushnil(TL); /* the owner and the version, added by put */
      lua_setfield(TL, -2, "user_id");
      lua_pushnil(TL);
      lua_setfield(TL, -2, "version");
      char *back = encode_at(-1);
      CHECK(back && th_ddb_items_equal(C, back, item) == 1, "%s: %s vs %s", type, back, item);
      free(back);
    }
    free(item);
    free(body);
    n++;
    lua_settop(TL, list);
  }
  lua_settop(TL, 0);
  CHECK(n == 10, "%d examples", n);
}

/* ------------------------------------------------------------- responses */

static void test_parse_item(void) {
  char *text = read_fixture("devguide/getitem-pets.response.json"), *item = NULL, why[256] = "";
  th_result r = th_ddb_parse_item(C, text, text ? strlen(text) : 0, "Item", &item, why, sizeof why);
  CHECK(r == TH_OK && item, "pets: %s %s", th_result_name(r), why);
  push_fixture("devguide/getitem-pets.response.json");
  lua_getfield(TL, -1, "Item");
  char *want = encode_at(-1);
  CHECK(item && want && th_ddb_items_equal(C, item, want) == 1, "pets: %s", item);
  CHECK(item && strstr(item, "\"N\":\"8\""), "Age stays a string: %s", item);
  free(want);
  free(item);
  lua_settop(TL, 0);

  item = (char *)"untouched";
  r = th_ddb_parse_item(C, text, text ? strlen(text) : 0, "Attributes", &item, why, sizeof why);
  CHECK(r == TH_OK && item == NULL, "absent member gives NULL");
  free(text);

  static const char *const bad[] = {"", "[]", "{\"Item\":[1]}", "{\"Item\":{\"a\":{\"X\":1}}}", "{\"Item\":", "null"};
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    item = (char *)"untouched";
    r = th_ddb_parse_item(C, bad[i], strlen(bad[i]), "Item", &item, why, sizeof why);
    CHECK(r == TH_ERR_INTERNAL && !strcmp(item, "untouched"), "'%s': %s", bad[i], th_result_name(r));
  }
  /* The owner's attribute is the store's: an item comes back without it. */
  static const char owned[] = "{\"Item\":{\"user_id\":{\"S\":\"o1\"},\"id\":{\"S\":\"k\"},"
                              "\"t\":{\"S\":\"user_id\"}}}";
  item = NULL;
  r = th_ddb_parse_item(C, owned, strlen(owned), "Item", &item, why, sizeof why);
  CHECK(r == TH_OK && item && th_ddb_items_equal(C, item, "{\"id\":{\"S\":\"k\"},"
                                                          "\"t\":{\"S\":\"user_id\"}}") == 1,
        "user_id stripped: %s", item);
  free(item);
  /* Exact numbers and empty lists come back as they were. */
  static const char resp[] = "{\"Item\":{\"id\":{\"S\":\"k\"}," EXACT_VALUES "}}";
  item = NULL;
  r = th_ddb_parse_item(C, resp, strlen(resp), "Item", &item, why, sizeof why);
  CHECK(r == TH_OK && item && strstr(item, "\"N\":\"9007199254740993\"") &&
            strstr(item, "\"N\":\"123456789012345678901234567890\"") && strstr(item, "\"l0\":{\"L\":[]}") &&
            strstr(item, "{\"L\":[]},{\"M\":{}}"), "exact: %s", item);
  free(item);
}

/* Every AttributeValue type of the streams event, through the walk. */
static void test_stream_images(void) {
  int n = 0;
  push_fixture("attributevalue/dynamodb-stream-event.json");
  lua_getfield(TL, -1, "Records");
  int recs = lua_gettop(TL);
  for (lua_Integer i = 1; lua_rawgeti(TL, recs, i) == LUA_TTABLE; i++) {
    lua_getfield(TL, -1, "dynamodb");
    if (lua_getfield(TL, -1, "NewImage") == LUA_TTABLE) {
      int img = lua_gettop(TL);
      lua_newtable(TL);
      lua_pushvalue(TL, img);
      lua_setfield(TL, -2, "Item");
      char *resp = encode_at(-1), *item = NULL, *orig = encode_at(img), why[256] = "";
      th_result r = th_ddb_parse_item(C, resp, strlen(resp), "Item", &item, why, sizeof why);
      CHECK(r == TH_OK && item, "record %lld: %s %s", (long long)i, th_result_name(r), why);
      CHECK(item && th_ddb_items_equal(C, item, orig) == 1, "record %lld: %s", (long long)i, item);
      /* The fixture's empty string set must come out as an array. */
      if (item && strstr(orig, "EmptyStringSet"))
        CHECK(strstr(item, "\"EmptyStringSet\":{\"SS\":[]}"), "empty SS: %s", item);
      free(resp);
      free(orig);
      free(item);
      n++;
    }
    lua_settop(TL, recs);
  }
  lua_settop(TL, 0);
  CHECK(n >= 2, "%d images", n);

  char *bad = read_fixture("attributevalue/dynamodb-stream-event-malformed.json"), *item = NULL, why[256];
  th_result r = th_ddb_parse_item(C, bad, bad ? strlen(bad) : 0, "Item", &item, why, sizeof why);
  CHECK(r == TH_ERR_INTERNAL && !item && strstr(why, "not valid JSON"), "malformed: %s", why);
  free(bad);
}

static void test_parse_scan(void) {
  static const char resp[] =
    "{\"Items\":[{\"id\":{\"S\":\"a\"},\"l\":{\"L\":[]},\"user_id\":{\"S\":\"owner-1\"}},"
    "{\"id\":{\"S\":\"b\"},\"n\":{\"N\":\"9007199254740993\"},\"user_id\":{\"S\":\"owner-1\"}},"
    "{\"id\":{\"S\":\"c\"},\"user_id\":{\"S\":\"owner-1\"}}],\"Count\":3,\"ScannedCount\":3,"
    "\"LastEvaluatedKey\":{\"user_id\":{\"S\":\"owner-1\"},\"id\":{\"S\":\"c\"}}}";
  th_ddb_page p;
  char why[256] = "";
  th_result r = th_ddb_parse_scan(C, resp, strlen(resp), 2, &p, why, sizeof why);
  CHECK(r == TH_OK, "scan: %s", why);
  if (r == TH_OK) {
    CHECK(p.count == 2 && p.more == 1, "count %zu more %d", p.count, p.more);
    CHECK_STR(p.last_id, "b");
    CHECK_STR(p.lek_id, "c");
    CHECK(strstr(p.items, "{\"L\":[]}") && strstr(p.items, "\"9007199254740993\"") &&
              !strstr(p.items, "\"c\"") && !strstr(p.items, "user_id") &&
              !strstr(p.items, "owner-1"), "items %s", p.items);
    th_ddb_page_free(&p);
  }
  r = th_ddb_parse_scan(C, resp, strlen(resp), 3, &p, why, sizeof why);
  CHECK(r == TH_OK && p.count == 3 && !p.more && !strcmp(p.last_id, "c"), "all three");
  th_ddb_page_free(&p);
  r = th_ddb_parse_scan(C, resp, strlen(resp), 0, &p, why, sizeof why);
  CHECK(r == TH_OK && p.count == 0 && p.more && !p.last_id && !strcmp(p.items, ""), "probe");
  th_ddb_page_free(&p);
  static const char empty[] = "{\"Items\":[],\"Count\":0,\"ScannedCount\":0}";
  r = th_ddb_parse_scan(C, empty, strlen(empty), 5, &p, why, sizeof why);
  CHECK(r == TH_OK && p.count == 0 && !p.more && !p.lek_id && !p.last_id, "empty page");
  th_ddb_page_free(&p);

  /* The developer guide's pages: a table keyed by (year, title), not id. */
  char *page2 = read_fixture("devguide/scan-movies-page2.response.json");
  r = th_ddb_parse_scan(C, page2, page2 ? strlen(page2) : 0, 0, &p, why, sizeof why);
  CHECK(r == TH_OK && !p.lek_id && p.more, "page 2 ends the scan");
  th_ddb_page_free(&p);
  r = th_ddb_parse_scan(C, page2, page2 ? strlen(page2) : 0, 1, &p, why, sizeof why);
  CHECK(r == TH_ERR_INTERNAL && strstr(why, "id"), "items without id: %s", why);
  free(page2);
  char *page1 = read_fixture("devguide/scan-movies-page1.response.json");
  r = th_ddb_parse_scan(C, page1, page1 ? strlen(page1) : 0, 0, &p, why, sizeof why);
  CHECK(r == TH_ERR_INTERNAL && strstr(why, "LastEvaluatedKey"), "foreign key: %s", why);
  free(page1);
}

static void test_items_equal(void) {
  static const struct {
    const char *a, *b;
    int want;
  } cases[] = {
    {"{\"a\":{\"N\":\"1.50\"}}", "{\"a\":{\"N\":\"1.5\"}}", 1},
    {"{\"a\":{\"N\":\"100\"}}", "{\"a\":{\"N\":\"1e2\"}}", 1},
    {"{\"a\":{\"N\":\"9007199254740993\"}}", "{\"a\":{\"N\":\"9007199254740992\"}}", 0},
    {"{\"a\":{\"N\":\"1\"}}", "{\"a\":{\"S\":\"1\"}}", 0},
    {"{\"a\":{\"SS\":[\"x\",\"y\"]}}", "{\"a\":{\"SS\":[\"y\",\"x\"]}}", 1},
    {"{\"a\":{\"NS\":[\"1.0\",\"2\"]}}", "{\"a\":{\"NS\":[\"2\",\"1\"]}}", 1},
    {"{\"a\":{\"NS\":[\"1\",\"2\"]}}", "{\"a\":{\"NS\":[\"1\",\"3\"]}}", 0},
    {"{\"a\":{\"L\":[{\"S\":\"x\"},{\"S\":\"y\"}]}}", "{\"a\":{\"L\":[{\"S\":\"y\"},{\"S\":\"x\"}]}}", 0},
    {"{\"a\":{\"L\":[]}}", "{\"a\":{\"L\":[]}}", 1},
    {"{\"a\":{\"M\":{\"x\":{\"BOOL\":true}}}}", "{\"a\":{\"M\":{\"x\":{\"BOOL\":true}}}}", 1},
    {"{\"a\":{\"M\":{\"x\":{\"BOOL\":true}}}}", "{\"a\":{\"M\":{\"x\":{\"BOOL\":false}}}}", 0},
    {"{\"a\":{\"M\":{}}}", "{\"a\":{\"M\":{\"x\":{\"NULL\":true}}}}", 0},
    {"{\"a\":{\"S\":\"x\"}}", "{\"a\":{\"S\":\"x\"},\"b\":{\"S\":\"x\"}}", 0},
    {"{\"a\":{\"S\":\"\\u00e9\"}}", "{\"a\":{\"S\":\"\xc3\xa9\"}}", 1},
    {"{}", "{}", 1},
    {"{\"a\":1}", "{}", -1},
    {"not json", "{}", -1},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    int got = th_ddb_items_equal(C, cases[i].a, cases[i].b);
    CHECK(got == cases[i].want, "%s vs %s: %d, want %d", cases[i].a, cases[i].b, got, cases[i].want);
    if (cases[i].want >= 0)
      CHECK(th_ddb_items_equal(C, cases[i].b, cases[i].a) == cases[i].want, "symmetric %zu", i);
  }
}

/* Items as deep as the scripts can make them (JSON depth 64) read back
 * from a response that wraps them one level deeper. */
static void test_depth(void) {
  th_buf item, resp;
  th_buf_init(&item, 1u << 20);
  th_buf_init(&resp, 1u << 20);
  th_buf_append_str(&item, "{\"id\":{\"S\":\"k\"},\"d\":");
  int levels = 31; /* each {"L":[ ... ]} is two JSON levels */
  for (int i = 0; i < levels; i++)
    th_buf_append_str(&item, "{\"L\":[");
  th_buf_append_str(&item, "{\"L\":[]}");
  for (int i = 0; i < levels; i++)
    th_buf_append_str(&item, "]}");
  th_buf_append_str(&item, "}");
  th_buf_append_str(&resp, "{\"Item\":");
  th_buf_append_str(&resp, item.data);
  th_buf_append_str(&resp, "}");
  char *out = NULL, *body = NULL, why[256] = "";
  th_result r = th_ddb_parse_item(C, resp.data, resp.len, "Item", &out, why, sizeof why);
  CHECK(r == TH_OK && out && th_ddb_items_equal(C, out, item.data) == 1, "deep item: %s %s",
        th_result_name(r), why);
  r = th_ddb_body_put(C, "T", "owner-1", "k", item.data, &body, why, sizeof why);
  CHECK(r == TH_OK && body && strstr(body, "{\"L\":[]}"), "deep put: %s %s", th_result_name(r), why);
  free(out);
  free(body);
  th_buf_free(&item);
  th_buf_free(&resp);
}

/* ------------------------------------------------------------ endpoints */

static void test_urls(void) {
  static const struct {
    const char *url, *authority;
    int port;
  } good[] = {
    {"https://dynamodb.eu-west-1.amazonaws.com", "dynamodb.eu-west-1.amazonaws.com", 443},
    {"https://dynamodb.eu-west-1.amazonaws.com/", "dynamodb.eu-west-1.amazonaws.com", 443},
    {"HTTPS://Example.COM", "Example.COM", 443},
    {"http://127.0.0.1:8000", "127.0.0.1:8000", 8000},
    {"http://localhost:80", "localhost", 80},
    {"https://x:443/", "x", 443},
    {"https://x:8443", "x:8443", 8443},
    {"http://[::1]:4567", "[::1]:4567", 4567},
    {"http://[fe80::1]", "[fe80::1]", 80},
  };
  static const char *const bad[] = {
    "", "ftp://x", "http://", "http://u:p@x", "http://@x", "http://x/path", "http://x/?q",
    "http://x?q", "http://x#f", "http://x:0", "http://x:65536", "http://x:abc", "http://x:",
    "dynamodb.eu-west-1.amazonaws.com", "http://[::1", "http://[]", "http:// x", "http://x y",
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(good); i++) {
    th_http_url u;
    const char *why = NULL;
    th_result r = th_http_parse_url(good[i].url, &u, &why);
    CHECK(r == TH_OK, "%s: %s", good[i].url, why);
    if (r == TH_OK) {
      CHECK_STR(u.authority, good[i].authority);
      CHECK(u.port == good[i].port, "%s: port %d", good[i].url, u.port);
    }
  }
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    th_http_url u;
    const char *why = NULL;
    CHECK(th_http_parse_url(bad[i], &u, &why) == TH_ERR_INVALID && why, "'%s' accepted", bad[i]);
  }
}

/* -------------------------------------------------------- configuration */

static const char *const aws_vars[] = {
  "TABLE_NAME", "TASKHOST_STORE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL",
  "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_MAX_ATTEMPTS",
};

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TOKEN "FQoGZXIvYXdzEXAMPLETOKENvalue0123456789"

static void base_env(void) {
  for (size_t i = 0; i < TH_ARRAY_LEN(aws_vars); i++)
    unsetenv(aws_vars[i]);
  setenv("TABLE_NAME", "Tasks", 1);
  setenv("AWS_REGION", "eu-west-1", 1);
  setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
}

/* Reads the configuration; returns the error line ("" on success). */
static th_result load(th_config *c, char *err, size_t errlen) {
  err[0] = '\0';
  th_result r = th_config_from_env(c, "/opt", err, errlen);
  CHECK(!strstr(err, SECRET) && !strstr(err, TOKEN), "secret in error: %s", err);
  CHECK(!strchr(err, '\n'), "error not one line: %s", err);
  return r;
}

static void test_config(void) {
  th_config c;
  char err[512];

  base_env();
  CHECK(load(&c, err, sizeof err) == TH_OK, "base: %s", err);
  CHECK(c.store_kind == TH_STORE_DYNAMODB, "TABLE_NAME selects dynamodb");
  CHECK_STR(c.aws_region, "eu-west-1");
  CHECK_STR(c.aws_access_key_id, "AKIDEXAMPLE");
  CHECK_STR(c.aws_secret_access_key, SECRET);
  CHECK(c.aws_session_token == NULL, "no token");
  CHECK_STR(c.dynamodb_endpoint, "https://dynamodb.eu-west-1.amazonaws.com");
  CHECK(c.aws_max_attempts == 3, "attempts %d", c.aws_max_attempts);
  /* Opening touches no network. */
  th_store *s = th_store_dynamodb_open(&c, err, sizeof err);
  CHECK(s && !strcmp(s->identity, "dynamodb:Tasks"), "open: %s", err);
  if (s) {
    th_http_stats st = th_store_dynamodb_http_stats(s);
    CHECK(st.requests == 0 && st.connections == 0, "no request at open");
    s->ops->close(s);
  }
  th_config_free(&c);

  base_env();
  unsetenv("AWS_REGION");
  setenv("AWS_DEFAULT_REGION", "cn-north-1", 1);
  setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLETEMPORARY", 1); /* temporary: needs the token */
  setenv("AWS_SESSION_TOKEN", TOKEN, 1);
  setenv("AWS_MAX_ATTEMPTS", "7", 1);
  CHECK(load(&c, err, sizeof err) == TH_OK, "default region: %s", err);
  CHECK_STR(c.aws_region, "cn-north-1");
  CHECK_STR(c.dynamodb_endpoint, "https://dynamodb.cn-north-1.amazonaws.com.cn");
  CHECK_STR(c.aws_session_token, TOKEN);
  CHECK(c.aws_max_attempts == 7, "attempts %d", c.aws_max_attempts);
  th_config_free(&c);

  base_env();
  static const struct {
    const char *region, *endpoint;
  } partitions[] = {
    {"us-gov-west-1", "https://dynamodb.us-gov-west-1.amazonaws.com"},
    {"us-iso-east-1", "https://dynamodb.us-iso-east-1.c2s.ic.gov"},
    {"us-isob-east-1", "https://dynamodb.us-isob-east-1.sc2s.sgov.gov"},
    {"eu-isoe-west-1", "https://dynamodb.eu-isoe-west-1.cloud.adc-e.uk"},
    {"us-isof-south-1", "https://dynamodb.us-isof-south-1.csp.hci.ic.gov"},
    {"eusc-de-east-1", "https://dynamodb.eusc-de-east-1.amazonaws.eu"},
    {"cn-north-x", "https://dynamodb.cn-north-x.amazonaws.com"}, /* no partition's pattern */
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(partitions); i++) {
    base_env();
    setenv("AWS_REGION", partitions[i].region, 1);
    CHECK(load(&c, err, sizeof err) == TH_OK && c.dynamodb_endpoint &&
              !strcmp(c.dynamodb_endpoint, partitions[i].endpoint),
          "%s: %s (%s)", partitions[i].region, c.dynamodb_endpoint ? c.dynamodb_endpoint : "-", err);
    th_config_free(&c);
  }

  base_env();
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566", 1);
  CHECK(load(&c, err, sizeof err) == TH_OK && !strcmp(c.dynamodb_endpoint, "http://127.0.0.1:4566"),
        "AWS_ENDPOINT_URL: %s", err);
  th_config_free(&c);
  setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:8000/", 1);
  CHECK(load(&c, err, sizeof err) == TH_OK && !strcmp(c.dynamodb_endpoint, "http://localhost:8000/"),
        "the service's own variable wins: %s", err);
  th_config_free(&c);
  setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
  CHECK(load(&c, err, sizeof err) == TH_OK &&
            !strcmp(c.dynamodb_endpoint, "https://dynamodb.eu-west-1.amazonaws.com"),
        "ignored endpoints: %s", err);
  th_config_free(&c);

  /* SQLite: nothing of AWS is read or required. */
  base_env();
  unsetenv("AWS_REGION");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  setenv("TASKHOST_STORE", "sqlite:/tmp/x.db", 1);
  setenv("AWS_ENDPOINT_URL", "not a url", 1);
  CHECK(load(&c, err, sizeof err) == TH_OK && c.store_kind == TH_STORE_SQLITE && !c.aws_region &&
            !c.dynamodb_endpoint, "sqlite ignores AWS: %s", err);
  th_config_free(&c);

  static const struct {
    const char *var, *value, *want; /* value NULL: unset */
  } bad[] = {
    {"AWS_REGION", NULL, "AWS_REGION (or AWS_DEFAULT_REGION)"},
    {"AWS_REGION", "eu west 1", "invalid AWS_REGION='eu west 1'"},
    {"AWS_ACCESS_KEY_ID", NULL, "AWS_ACCESS_KEY_ID is not set"},
    {"AWS_SECRET_ACCESS_KEY", NULL, "AWS_SECRET_ACCESS_KEY is not set"},
    {"AWS_SECRET_ACCESS_KEY", SECRET " x", "invalid AWS_SECRET_ACCESS_KEY (value not shown)"},
    {"AWS_SESSION_TOKEN", TOKEN "\t", "invalid AWS_SESSION_TOKEN (value not shown)"},
    {"AWS_ACCESS_KEY_ID", "AKID/X", "invalid AWS_ACCESS_KEY_ID (value not shown)"},
    {"AWS_ACCESS_KEY_ID", "ASIAEXAMPLETEMPORARY", "AWS_SESSION_TOKEN is not set"},
    {"AWS_ENDPOINT_URL_DYNAMODB", "localhost:8000", "invalid AWS_ENDPOINT_URL_DYNAMODB='localhost:8000'"},
    {"AWS_ENDPOINT_URL_DYNAMODB", "http://user:" SECRET "@h", "invalid AWS_ENDPOINT_URL_DYNAMODB (value not shown)"},
    {"AWS_ENDPOINT_URL", "https://h/path", "invalid AWS_ENDPOINT_URL='https://h/path'"},
    {"AWS_MAX_ATTEMPTS", "0", "invalid AWS_MAX_ATTEMPTS='0'"},
    {"AWS_MAX_ATTEMPTS", "three", "invalid AWS_MAX_ATTEMPTS"},
    {"TABLE_NAME", "ab", "invalid TABLE_NAME='ab'"},
    {"TABLE_NAME", "my table", "invalid TABLE_NAME='my table'"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    base_env();
    if (bad[i].value)
      setenv(bad[i].var, bad[i].value, 1);
    else
      unsetenv(bad[i].var);
    th_result r = load(&c, err, sizeof err);
    CHECK(r == TH_ERR_INVALID && strstr(err, bad[i].want), "%s=%s: %s (%s)", bad[i].var,
          bad[i].value ? bad[i].value : "(unset)", th_result_name(r), err);
    if (r == TH_OK)
      th_config_free(&c);
  }
  for (size_t i = 0; i < TH_ARRAY_LEN(aws_vars); i++)
    unsetenv(aws_vars[i]);
}

/* ------------------------------------------------------------- the client */

/* Without a server: connection refused is transient (retried, then
 * UNAVAILABLE); a passed deadline is TIMEOUT before anything is sent. */
static void test_client_no_server(void) {
  char err[256];
  th_ddb_config cfg = {.endpoint = "http://127.0.0.1:1", .region = "us-east-1",
                       .access_key_id = "AKIDEXAMPLE", .secret_access_key = SECRET,
                       .session_token = TOKEN, .max_attempts = 2};
  th_ddb *d = th_ddb_new(&cfg, err, sizeof err);
  CHECK(d, "new: %s", err);
  if (!d)
    return;
  th_ddb_outcome o;
  double t0 = th_now_ms();
  th_result r = th_ddb_call(d, "GetItem", "{}", t0 + 5000, NULL, &o);
  CHECK(r == TH_ERR_UNAVAILABLE && o.attempts == 2 && o.maybe_applied, "refused: %s, %d attempts (%s)",
        th_result_name(r), o.attempts, o.detail);
  CHECK(strstr(o.detail, "GetItem") && strstr(o.detail, "2 attempts"), "detail: %s", o.detail);
  CHECK(!strstr(o.detail, SECRET) && !strstr(o.detail, TOKEN), "detail leaks: %s", o.detail);
  th_ddb_outcome_free(&o);
  th_http_stats st = th_ddb_http_stats(d);
  CHECK(st.requests == 2, "requests %ld", st.requests);
  r = th_ddb_call(d, "GetItem", "{}", th_now_ms() - 1, NULL, &o);
  CHECK(r == TH_ERR_TIMEOUT && o.attempts == 1, "passed deadline: %s", th_result_name(r));
  CHECK(th_ddb_http_stats(d).requests == 2, "nothing sent after the deadline");
  th_ddb_outcome_free(&o);
  /* A transaction is resent only with its ClientRequestToken. */
  r = th_ddb_call(d, "TransactWriteItems", "{\"TransactItems\":[]}", th_now_ms() + 5000, NULL, &o);
  CHECK(r == TH_ERR_UNAVAILABLE && o.attempts == 1 && strstr(o.detail, "ClientRequestToken"),
        "transaction without a token: %d attempts (%s)", o.attempts, o.detail);
  th_ddb_outcome_free(&o);
  r = th_ddb_call(d, "TransactWriteItems", "{\"TransactItems\":[],\"ClientRequestToken\":\"t\"}",
                  th_now_ms() + 5000, NULL, &o);
  CHECK(r == TH_ERR_UNAVAILABLE && o.attempts == 2, "transaction with a token: %d attempts (%s)",
        o.attempts, o.detail);
  th_ddb_outcome_free(&o);
  th_ddb_free(d);

  static const th_ddb_config bad[] = {
    {.endpoint = "ftp://x", .region = "r", .access_key_id = "a", .secret_access_key = "s"},
    {.endpoint = "http://x", .region = NULL, .access_key_id = "a", .secret_access_key = "s"},
    {.endpoint = "http://x", .region = "r", .access_key_id = "a", .secret_access_key = ""},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    err[0] = '\0';
    CHECK(!th_ddb_new(&bad[i], err, sizeof err) && err[0], "bad config %zu accepted", i);
  }
}

/* An endpoint host that does not resolve (.invalid never does, RFC 6761):
 * retried like a failed connection, then INTERNAL (a configuration error,
 * 500), not UNAVAILABLE (503); the detail names the host; nothing was sent,
 * so nothing may have been applied; and it fails fast (no hang). */
static void test_client_unresolved(void) {
  char err[256];
  th_ddb_config cfg = {.endpoint = "http://does-not-resolve.invalid:8000", .region = "us-east-1",
                       .access_key_id = "AKIDEXAMPLE", .secret_access_key = SECRET,
                       .max_attempts = 3};
  th_ddb *d = th_ddb_new(&cfg, err, sizeof err);
  CHECK(d, "new: %s", err);
  if (!d)
    return;
  th_ddb_outcome o;
  double t0 = th_now_ms();
  th_result r = th_ddb_call(d, "GetItem", "{}", t0 + 60000, NULL, &o);
  double took = th_now_ms() - t0;
  CHECK(r == TH_ERR_INTERNAL && o.attempts == 3, "unresolved: %s after %d attempts (%s)",
        th_result_name(r), o.attempts, o.detail);
  CHECK(!o.maybe_applied, "unresolved: nothing was sent, yet maybe_applied");
  CHECK(strstr(o.detail, "does-not-resolve.invalid does not resolve") &&
            strstr(o.detail, "AWS_ENDPOINT_URL_DYNAMODB") && strstr(o.detail, "3 attempts"),
        "detail: %s", o.detail);
  CHECK(took < 30000, "unresolved: %.0f ms for three attempts", took);
  th_ddb_outcome_free(&o);
  CHECK(th_ddb_http_stats(d).requests == 3, "three attempts made");
  th_ddb_free(d);
}

typedef struct raiser {
  atomic_int *flag;
  int after_ms;
} raiser;

static void *raise_later(void *arg) {
  raiser *r = arg;
  struct timespec ts = {r->after_ms / 1000, (long)(r->after_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  atomic_store(r->flag, 1);
  return NULL;
}

/* A loopback listener that never accepts: connections complete (the
 * kernel's backlog), the request is taken in, no answer ever comes. */
static int silent_listener(int *port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

/* The stop flag cuts an attempt waiting for its answer within a poll
 * interval (not at the deadline 5 s later), makes no retry, and once raised
 * sends nothing more. */
static void test_client_stopped(void) {
  char err[256], url[64];
  int port = 0, fd = silent_listener(&port);
  CHECK(fd >= 0, "listen on loopback");
  if (fd < 0)
    return;
  snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
  th_ddb_config cfg = {.endpoint = url, .region = "us-east-1", .access_key_id = "AKIDEXAMPLE",
                       .secret_access_key = "secret-for-the-stop-test", .max_attempts = 3};
  th_ddb *d = th_ddb_new(&cfg, err, sizeof err);
  CHECK(d, "new: %s", err);
  if (!d) {
    close(fd);
    return;
  }
  atomic_int flag = 0;
  raiser rs = {&flag, 300};
  pthread_t t;
  th_ddb_outcome o;
  pthread_create(&t, NULL, raise_later, &rs);
  double t0 = th_now_ms();
  th_result r = th_ddb_call(d, "PutItem", "{}", t0 + 5000, &flag, &o);
  double ms = th_now_ms() - t0;
  pthread_join(t, NULL);
  CHECK(r == TH_ERR_TIMEOUT && o.attempts == 1, "stopped: %s after %d attempts (%s)",
        th_result_name(r), o.attempts, o.detail);
  CHECK(strstr(o.detail, "stopped"), "detail: %s", o.detail);
  CHECK(ms >= 250 && ms < 1000, "cut after %.0f ms, the flag raised at 300 ms", ms);
  th_ddb_outcome_free(&o);
  long sent = th_ddb_http_stats(d).requests;
  r = th_ddb_call(d, "PutItem", "{}", th_now_ms() + 5000, &flag, &o);
  CHECK(r == TH_ERR_TIMEOUT && th_ddb_http_stats(d).requests == sent,
        "flag already raised: %s, %ld requests sent", th_result_name(r),
        th_ddb_http_stats(d).requests - sent);
  th_ddb_outcome_free(&o);
  th_ddb_free(d);
  close(fd);
}

/* TransactionCanceledException as moto 5.2.1 answers it (the shape AWS
 * documents), and the idempotency record bodies. */
static void test_transactions(void) {
  static const char cancelled[] =
    "{\"__type\": \"com.amazonaws.dynamodb.v20120810#TransactionCanceledException\", "
    "\"CancellationReasons\": [{\"Code\": \"None\"}, {\"Code\": \"ConditionalCheckFailed\", "
    "\"Message\": \"The conditional request failed\"}], \"Message\": \"Transaction cancelled, "
    "please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]\"}";
  th_ddb_error e;
  th_ddb_error_decode(C, 400, "TransactionCanceledException", cancelled, strlen(cancelled), &e);
  CHECK_STR(e.code, "TransactionCanceledException");
  CHECK(e.n_reasons == 2, "reasons: %d", e.n_reasons);
  CHECK_STR(e.reasons[0], "None");
  CHECK_STR(e.reasons[1], "ConditionalCheckFailed");
  CHECK(e.kind == TH_DDB_CONDITION, "kind %s", th_ddb_kind_name(e.kind));
  static const char conflict[] =
    "{\"__type\":\"TransactionCanceledException\",\"CancellationReasons\":"
    "[{\"Code\":\"TransactionConflict\"},{\"Code\":\"None\"}],\"Message\":\"x\"}";
  th_ddb_error_decode(C, 400, NULL, conflict, strlen(conflict), &e);
  CHECK(e.n_reasons == 2 && e.kind == TH_DDB_BUSY && !th_ddb_retryable(e.kind), "conflict: %s",
        th_ddb_kind_name(e.kind));

  th_store_idem r = {.key = "k", .fingerprint = "fp", .token = "tok-1", .now_ms = 1700000000123,
                     .expires_at = 1700086400, .locked_until_ms = 1700000031000};
  const char *rec = TH_DDB_IDEM_PREFIX "k";
  char why[256], *body = NULL;
  CHECK(th_ddb_body_idem_claim(C, "T", "o1", rec, &r, &body, why, sizeof why) == TH_OK, "%s", why);
  push_body(body);
  CHECK_STR(PATH(1, "Item", "id", "S"), rec);
  CHECK_STR(PATH(1, "Item", "status", "S"), "IN_PROGRESS");
  CHECK_STR(PATH(1, "Item", "expires_at", "N"), "1700086400");
  CHECK_STR(PATH(1, "ConditionExpression"),
            "attribute_not_exists(#k) OR #e <= :now OR (#st = :ip AND #l <= :nowms)");
  CHECK_STR(PATH(1, "ExpressionAttributeValues", ":now", "N"), "1700000000");
  lua_settop(TL, 0);
  free(body);
  body = NULL;
  r.pending_id = "t1";
  r.pending_item = "{\"id\":{\"S\":\"t1\"},\"task\":{\"S\":\"x\"}}";
  CHECK(th_ddb_body_idem_commit(C, "T", "o1", rec, &r, "{\"status\":201}", &body, why,
                                sizeof why) == TH_OK, "%s", why);
  push_body(body);
  CHECK_STR(PATH(1, "ClientRequestToken"), "tok-1");
  lua_getfield(TL, 1, "TransactItems");
  lua_rawgeti(TL, -1, 1);
  CHECK_STR(PATH(-1, "Put", "Item", "user_id", "S"), "o1");
  CHECK_STR(PATH(-1, "Put", "Item", "version", "N"), "1");
  CHECK_STR(PATH(-1, "Put", "ConditionExpression"), "attribute_not_exists(#k)");
  lua_rawgeti(TL, -2, 2);
  CHECK_STR(PATH(-1, "Update", "Key", "id", "S"), rec);
  CHECK_STR(PATH(-1, "Update", "ConditionExpression"), "#t = :tok AND #st = :ip");
  CHECK_STR(PATH(-1, "Update", "ExpressionAttributeValues", ":tok", "S"), "tok-1");
  CHECK_STR(PATH(-1, "Update", "ExpressionAttributeValues", ":resp", "S"), "{\"status\":201}");
  lua_settop(TL, 0);
  free(body);
  body = NULL;
  CHECK(th_ddb_body_idem_release(C, "T", "o1", rec, &r, &body, why, sizeof why) == TH_OK, "%s",
        why);
  push_body(body);
  CHECK_STR(PATH(1, "ConditionExpression"), "#t = :tok AND #st = :ip");
  lua_settop(TL, 0);
  free(body);

  static const char got[] =
    "{\"Item\":{\"user_id\":{\"S\":\"o1\"},\"id\":{\"S\":\"x\"},\"status\":{\"S\":\"COMPLETED\"},"
    "\"fingerprint\":{\"S\":\"fp\"},\"token\":{\"S\":\"tok-1\"},\"expires_at\":{\"N\":\"5\"},"
    "\"locked_until_ms\":{\"N\":\"0\"},\"response\":{\"S\":\"{}\"}}}";
  th_ddb_idem_record f = {0};
  CHECK(th_ddb_parse_idem(C, got, strlen(got), &f, why, sizeof why) == TH_OK, "%s", why);
  CHECK(f.found && f.completed && f.expires_at == 5 && f.response && strcmp(f.response, "{}") == 0,
        "parse_idem");
  free(f.response);
  f = (th_ddb_idem_record){0};
  CHECK(th_ddb_parse_idem(C, "{}", 2, &f, why, sizeof why) == TH_OK && !f.found, "absent");
  static const char partial[] = "{\"Item\":{\"status\":{\"S\":\"COMPLETED\"}}}";
  CHECK(th_ddb_parse_idem(C, partial, strlen(partial), &f, why, sizeof why) == TH_ERR_INTERNAL &&
            strstr(why, "fingerprint"), "a record without its attributes: %s", why);
}

int main(void) {
  th_log_configure(TH_LOG_ERROR, 0); /* the retry warnings are expected here */
  TL = luaL_newstate();
  th_json_setup(TL);
  C = th_ddb_codec_new();
  CHECK(C, "codec");

  test_protocol_errors();
  test_botocore_error();
  test_devguide_response();
  test_errors_table();
  test_classify();
  test_retry_policy();
  test_crc32();
  test_number_canon();
  test_body_put();
  test_body_other();
  test_body_update();
  test_body_invalid();
  test_doc_examples();
  test_parse_item();
  test_stream_images();
  test_parse_scan();
  test_items_equal();
  test_depth();
  test_urls();
  test_config();
  test_client_no_server();
  test_client_unresolved();
  test_client_stopped();
  test_transactions();

  th_ddb_codec_free(C);
  lua_close(TL);
  th_log_shutdown();
  return CHECK_DONE();
}
