/* sigv4: the canonicalisation steps one by one (percent-encoding, header
 * value folding, path normalisation, query canonicalisation, time
 * breakdown), whole signatures (AWS suite vectors, a DynamoDB PutItem whose
 * expected Authorization was computed with botocore 1.29.27's SigV4Auth),
 * the options, and the inputs that must be refused with the output left
 * alone. */
#define TH_SIGV4_TESTING
#include "check.h"
#include "sigv4.h"

#include <stdlib.h>

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUITE_SCOPE "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"

static const th_sigv4_time suite_time = {2015, 8, 30, 12, 36, 0};

/* ---- building blocks ---------------------------------------------------- */

static void test_uri_encode(void) {
  static const struct {
    const char *in;
    size_t len;
    int keep_slash;
    const char *want;
  } cases[] = {
      {"", 0, 0, ""},
      {"abcXYZ019", 9, 0, "abcXYZ019"},
      {"-._~", 4, 0, "-._~"},
      {"a b", 3, 0, "a%20b"},
      {"/a/b", 4, 0, "%2Fa%2Fb"},
      {"/a/b", 4, 1, "/a/b"},
      {"\xe1\x88\xb4", 3, 1, "%E1%88%B4"},
      {"%41", 3, 0, "%2541"},
      {"!*'();:@&=+$,?#[]", 17, 1, "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%3F%23%5B%5D"},
      {"\x00\xff\x7f", 3, 0, "%00%FF%7F"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_buf b;
    th_buf_init(&b, 1024);
    th_buf_append(&b, "", 0);
    CHECK(th_sigv4_uri_encode(&b, cases[i].in, cases[i].len, cases[i].keep_slash) == TH_OK,
          "encode #%zu", i);
    CHECK_STR(b.data, cases[i].want);
    th_buf_free(&b);
  }
  /* The buffer's maximum is honoured. */
  th_buf small;
  th_buf_init(&small, 5);
  CHECK(th_sigv4_uri_encode(&small, "  ", 2, 0) == TH_ERR_TOO_LARGE, "encode past max");
  th_buf_free(&small);
}

static void test_fold_value(void) {
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"value1", "value1"},
      {" value1", "value1"},
      {"  both  ", "both"},
      {"\"a   b   c\"", "\"a b c\""},
      {"\ttabs\t\tand  spaces\t", "tabs and spaces"},
      {"value1\n  value2\n     value3", "value1 value2 value3"},
      {"line1\r\n line2", "line1 line2"},
      {"a\v\fb", "a b"},
      {"", ""},
      {"   ", ""},
      {"UPPER lower", "UPPER lower"},
      {"caf\xc3\xa9  \xe2\x98\x95", "caf\xc3\xa9 \xe2\x98\x95"},
      {"a,b , c", "a,b , c"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_buf b;
    th_buf_init(&b, 1024);
    CHECK(th_sigv4_fold_value(&b, cases[i].in) == TH_OK, "fold #%zu", i);
    CHECK_STR(b.data, cases[i].want);
    th_buf_free(&b);
  }
  static const char *const bad[] = {"a\x01" "b", "a\x7f", "\x1c", "x\x1fy"};
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    th_buf b;
    th_buf_init(&b, 1024);
    CHECK(th_sigv4_fold_value(&b, bad[i]) == TH_ERR_INVALID, "control character #%zu", i);
    th_buf_free(&b);
  }
}

static void test_normalize_path(void) {
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"/", "/"},
      {"/example/..", "/"},
      {"/example1/example2/../..", "/"},
      {"/./", "/"},
      {"/./example", "/example"},
      {"//example//", "/example/"},
      {"//", "/"},
      {"/a/b/../c/", "/a/c/"},
      {"/..", "/"},
      {"/../a", "/a"},
      {"/a/./b/./", "/a/b/"},
      {"/...", "/..."},
      {"/a/.b/..c", "/a/.b/..c"},
      {"/a//b///c", "/a/b/c"},
      {"/example space/", "/example space/"},
      {"/a/b/../../..", "/"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_buf b;
    th_buf_init(&b, 1024);
    th_buf_append(&b, "", 0);
    CHECK(th_sigv4_normalize_path(&b, cases[i].in, strlen(cases[i].in)) == TH_OK, "norm #%zu",
          i);
    CHECK_STR(b.data, cases[i].want);
    th_buf_free(&b);
  }
}

static void test_canonical_path(void) {
  static const struct {
    const char *in;
    unsigned flags;
    th_result r;
    const char *want;
  } cases[] = {
      {"/", 0, TH_OK, "/"},
      {"", 0, TH_OK, "/"},
      {NULL, 0, TH_OK, "/"},
      {"/example space/", 0, TH_OK, "/example%20space/"},
      {"/example space/", TH_SIGV4_NO_NORMALIZE, TH_OK, "/example%20space/"},
      {"/\xe1\x88\xb4", 0, TH_OK, "/%E1%88%B4"},
      {"/a%20b", 0, TH_OK, "/a%2520b"},             /* double encoding */
      {"/a%20b", TH_SIGV4_NO_DOUBLE_ENCODE, TH_OK, "/a%20b"},
      {"/a b%2/%zz%", TH_SIGV4_NO_DOUBLE_ENCODE, TH_OK, "/a%20b%252/%25zz%25"},
      {"//example//", 0, TH_OK, "/example/"},
      {"//example//", TH_SIGV4_NO_NORMALIZE, TH_OK, "//example//"},
      {"/example/..", TH_SIGV4_NO_NORMALIZE, TH_OK, "/example/.."},
      {"/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 0, TH_OK,
       "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
      {"/$", 0, TH_OK, "/%24"},
      {"relative", 0, TH_ERR_INVALID, NULL},
      {"?x", 0, TH_ERR_INVALID, NULL},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_buf b;
    th_buf_init(&b, 1024);
    th_buf_append(&b, "", 0);
    th_result r = th_sigv4_canonical_path(&b, cases[i].in, cases[i].flags);
    CHECK(r == cases[i].r, "path #%zu: %s", i, th_result_name(r));
    if (cases[i].want)
      CHECK_STR(b.data, cases[i].want);
    th_buf_free(&b);
  }
  char *big = malloc(TH_SIGV4_MAX_PATH + 2);
  memset(big, 'a', TH_SIGV4_MAX_PATH + 1);
  big[0] = '/';
  big[TH_SIGV4_MAX_PATH + 1] = '\0';
  th_buf b;
  th_buf_init(&b, TH_SIGV4_MAX_CANONICAL);
  CHECK(th_sigv4_canonical_path(&b, big, 0) == TH_ERR_TOO_LARGE, "path too long");
  th_buf_free(&b);
  free(big);
}

static void test_canonical_query(void) {
  static const struct {
    const char *in;
    th_result r;
    const char *want;
  } cases[] = {
      {"", TH_OK, ""},
      {NULL, TH_OK, ""},
      {"Param1=value1", TH_OK, "Param1=value1"},
      {"Param2=value2&Param1=value1", TH_OK, "Param1=value1&Param2=value2"},
      {"\xe1\x88\xb4=bar", TH_OK, "%E1%88%B4=bar"},
      {"%E1%88%B4=bar", TH_OK, "%E1%88%B4=bar"},     /* not encoded twice */
      {"%e1%88%b4=bar", TH_OK, "%E1%88%B4=bar"},     /* upper-case hex */
      {"a=2&a=1&a=10", TH_OK, "a=1&a=10&a=2"},       /* repeated key: by value */
      {"Param1=value2&Param1=value1", TH_OK, "Param1=value1&Param1=value2"},
      {"key", TH_OK, "key="},                         /* no '=' */
      {"key=", TH_OK, "key="},
      {"=v", TH_OK, "=v"},
      {"a=b=c", TH_OK, "a=b%3Dc"},
      {"a+b=c+d", TH_OK, "a%2Bb=c%2Bd"},             /* '+' is not a space */
      {"a%2fb=%7e%41", TH_OK, "a%2Fb=~A"},
      {"x=1&&y=2&", TH_OK, "x=1&y=2"},               /* empty pieces ignored */
      {"a-b=1&a=2", TH_OK, "a=2&a-b=1"},             /* by key, not by "k=v" */
      {"b=1&B=2&_=3", TH_OK, "B=2&_=3&b=1"},         /* byte order */
      {"%00=x%20y", TH_OK, "%00=x%20y"},
      {"a=x y;z/", TH_OK, "a=x%20y%3Bz%2F"},
      {"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       TH_OK,
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
      {"a=%zz", TH_ERR_INVALID, NULL},
      {"a=%4", TH_ERR_INVALID, NULL},
      {"%", TH_ERR_INVALID, NULL},
      {"a=100%&b=1", TH_ERR_INVALID, NULL},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_buf b;
    th_buf_init(&b, 4096);
    th_result r = th_sigv4_canonical_query(&b, cases[i].in);
    CHECK(r == cases[i].r, "query #%zu: %s", i, th_result_name(r));
    if (cases[i].want)
      CHECK_STR(b.data, cases[i].want);
    th_buf_free(&b);
  }
}

static void test_time(void) {
  static const struct {
    int64_t t;
    th_sigv4_time want;
  } cases[] = {
      {0, {1970, 1, 1, 0, 0, 0}},
      {1440938160, {2015, 8, 30, 12, 36, 0}},
      {951868799, {2000, 2, 29, 23, 59, 59}},
      {951868800, {2000, 3, 1, 0, 0, 0}},
      {1709251199, {2024, 2, 29, 23, 59, 59}},
      {4107542400, {2100, 3, 1, 0, 0, 0}},           /* 2100 is not leap */
      {INT64_C(253402300799), {9999, 12, 31, 23, 59, 59}},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    th_sigv4_time got = {0};
    CHECK(th_sigv4_time_from_unix(cases[i].t, &got) == TH_OK, "time #%zu", i);
    CHECK(memcmp(&got, &cases[i].want, sizeof got) == 0,
          "time #%zu: got %04d-%02d-%02d %02d:%02d:%02d", i, got.year, got.month, got.day,
          got.hour, got.minute, got.second);
  }
  th_sigv4_time untouched = {1, 2, 3, 4, 5, 6}, t = untouched;
  CHECK(th_sigv4_time_from_unix(-1, &t) == TH_ERR_INVALID, "negative time");
  CHECK(th_sigv4_time_from_unix(INT64_C(253402300800), &t) == TH_ERR_INVALID, "year 10000");
  CHECK(memcmp(&t, &untouched, sizeof t) == 0, "output written on failure");
}

/* ---- whole signatures ---------------------------------------------------- */

static const th_sigv4_header host_only[] = {{"Host", "example.amazonaws.com"}};

static th_sigv4_params suite_params(unsigned flags) {
  th_sigv4_params p = {.region = "us-east-1", .service = "service", .time = suite_time,
                       .flags = flags, .expires = 3600};
  return p;
}

static const char *find(const th_sigv4_header *h, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(h[i].name, name) == 0)
      return h[i].value;
  return NULL;
}

/* get-vanilla from the AWS suite, both modes. */
static void test_vanilla(void) {
  th_sigv4_request req = {.method = "GET", .path = "/", .headers = host_only, .nheaders = 1};
  th_sigv4_credentials cred = {AKID, SECRET, NULL};
  th_sigv4_params p = suite_params(0);
  th_sigv4_result res;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "vanilla");
  CHECK_STR(res.canonical_request, "GET\n/\n\nhost:example.amazonaws.com\n"
                                   "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256);
  CHECK_STR(res.string_to_sign, "AWS4-HMAC-SHA256\n20150830T123600Z\n"
                                "20150830/us-east-1/service/aws4_request\n"
                                "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  CHECK_STR(res.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  CHECK(res.nheaders == 2 && res.nparams == 0 && res.query == NULL, "vanilla outputs");
  CHECK_STR(res.headers[0].name, "X-Amz-Date");
  CHECK_STR(res.headers[0].value, "20150830T123600Z");
  CHECK_STR(res.headers[1].name, "Authorization");
  CHECK_STR(res.headers[1].value,
            "AWS4-HMAC-SHA256 Credential=" SUITE_SCOPE ", SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  th_sigv4_result_free(&res);
  th_sigv4_result_free(&res); /* twice is harmless */

  p = suite_params(TH_SIGV4_PRESIGN);
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "vanilla presign");
  CHECK_STR(res.signature, "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d");
  CHECK(res.nheaders == 0 && res.nparams == 6, "presign outputs: %zu %zu", res.nheaders,
        res.nparams);
  CHECK_STR(find(res.params, res.nparams, "X-Amz-Credential"),
            "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request");
  CHECK_STR(res.query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2F"
            "us-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&"
            "X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature="
            "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d");
  th_sigv4_result_free(&res);
}

/* Repeated headers keep their order (AWS suite: get-header-value-order). */
static void test_header_order(void) {
  static const th_sigv4_header h[] = {{"Host", "example.amazonaws.com"},
                                      {"My-Header1", "value4"},
                                      {"My-Header1", "value1"},
                                      {"my-header1", "value3"},
                                      {"MY-HEADER1", " value2 "}};
  th_sigv4_request req = {.method = "GET", .path = "/", .headers = h, .nheaders = 5};
  th_sigv4_credentials cred = {AKID, SECRET, NULL};
  th_sigv4_params p = suite_params(0);
  th_sigv4_result res;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "header order");
  CHECK_STR(res.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY_SHA256);
  th_sigv4_result_free(&res);
}

/* A DynamoDB PutItem as the store backend sends it. The expected
 * Authorization values were computed with botocore 1.29.27 SigV4Auth
 * (same request, clock pinned to 2024-05-01T10:20:30Z). */
static void test_dynamodb(void) {
  static const char body[] =
      "{\"TableName\":\"tasks\",\"Item\":{\"id\":{\"S\":\"t-1\"},\"title\":{\"S\":\"Buy "
      "milk\"}},\"ConditionExpression\":\"attribute_not_exists(id)\"}";
  static const th_sigv4_header h[] = {{"Host", "dynamodb.eu-west-1.amazonaws.com"},
                                      {"Content-Type", "application/x-amz-json-1.0"},
                                      {"X-Amz-Target", "DynamoDB_20120810.PutItem"}};
  th_sigv4_request req = {.method = "POST", .path = "/", .headers = h, .nheaders = 3,
                          .payload = body, .payload_len = sizeof body - 1};
  th_sigv4_params p = {.region = "eu-west-1", .service = "dynamodb",
                       .time = {2024, 5, 1, 10, 20, 30}};
  th_sigv4_credentials cred = {AKID, SECRET, NULL};
  th_sigv4_result res;
  CHECK(sizeof body - 1 == 121, "body length %zu", sizeof body - 1);
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "dynamodb");
  CHECK_STR(find(res.headers, res.nheaders, "X-Amz-Date"), "20240501T102030Z");
  CHECK_STR(find(res.headers, res.nheaders, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/eu-west-1/dynamodb/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
            "Signature=52abea05f8b41023dbcc9b37c71c7cd15095d7fdcd27a6ea32e6b122fceade07");
  CHECK(find(res.headers, res.nheaders, "X-Amz-Security-Token") == NULL, "no token header");
  th_sigv4_result_free(&res);

  static const char token[] = "FwoGZXIvYXdzEXAMPLETOKEN//////////wEaDEXAMPLE+abc=";
  cred.session_token = token;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "dynamodb with token");
  CHECK_STR(find(res.headers, res.nheaders, "X-Amz-Security-Token"), token);
  CHECK_STR(find(res.headers, res.nheaders, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/eu-west-1/dynamodb/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
            "Signature=176d988e00dab0a611921b787fb8a8ea80924de0fdfafa044a22120041942338");
  th_sigv4_result_free(&res);

  /* Headers the SDKs leave unsigned change nothing. */
  static const th_sigv4_header with_ua[] = {{"User-Agent", "taskhost/1.0"},
                                            {"Host", "dynamodb.eu-west-1.amazonaws.com"},
                                            {"Expect", "100-continue"},
                                            {"Content-Type", "application/x-amz-json-1.0"},
                                            {"X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe"},
                                            {"X-Amz-Target", "DynamoDB_20120810.PutItem"}};
  req.headers = with_ua;
  req.nheaders = 6;
  cred.session_token = NULL;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "dynamodb with user-agent");
  CHECK_STR(res.signature, "52abea05f8b41023dbcc9b37c71c7cd15095d7fdcd27a6ea32e6b122fceade07");
  th_sigv4_result_free(&res);
}

static void test_options(void) {
  th_sigv4_credentials cred = {AKID, SECRET, "TOKEN/+="};
  th_sigv4_result res;

  /* SIGN_BODY: x-amz-content-sha256 added and signed (AWS suite:
   * post-x-www-form-urlencoded). */
  static const th_sigv4_header form[] = {
      {"Content-Type", "application/x-www-form-urlencoded"},
      {"Host", "example.amazonaws.com"},
      {"Content-Length", "13"}};
  th_sigv4_request req = {.method = "POST", .path = "/", .headers = form, .nheaders = 3,
                          .payload = "Param1=value1", .payload_len = 13};
  th_sigv4_credentials plain = {AKID, SECRET, NULL};
  th_sigv4_params p = suite_params(TH_SIGV4_SIGN_BODY);
  CHECK(th_sigv4_sign(&req, &plain, &p, &res, NULL) == TH_OK, "sign body");
  CHECK_STR(res.signature, "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b");
  CHECK_STR(find(res.headers, res.nheaders, "x-amz-content-sha256"),
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  th_sigv4_result_free(&res);

  /* A given payload hash replaces hashing (and ends the canonical request). */
  req.payload_hash = "UNSIGNED-PAYLOAD";
  p = suite_params(0);
  CHECK(th_sigv4_sign(&req, &plain, &p, &res, NULL) == TH_OK, "payload hash");
  size_t n = strlen(res.canonical_request);
  CHECK(n > 16 && strcmp(res.canonical_request + n - 17, "\nUNSIGNED-PAYLOAD") == 0,
        "canonical request ends with the given hash: %s", res.canonical_request);
  th_sigv4_result_free(&res);

  /* OMIT_TOKEN: the token is added but not signed (post-sts-header-after). */
  th_sigv4_request post = {.method = "POST", .path = "/", .headers = host_only, .nheaders = 1};
  p = suite_params(TH_SIGV4_OMIT_TOKEN);
  CHECK(th_sigv4_sign(&post, &cred, &p, &res, NULL) == TH_OK, "omit token");
  CHECK_STR(res.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
  CHECK_STR(find(res.headers, res.nheaders, "X-Amz-Security-Token"), "TOKEN/+=");
  CHECK(strstr(res.canonical_request, "token") == NULL, "token not in canonical request");
  th_sigv4_result_free(&res);

  /* Without OMIT_TOKEN the token header is signed. */
  p = suite_params(0);
  CHECK(th_sigv4_sign(&post, &cred, &p, &res, NULL) == TH_OK, "signed token");
  CHECK(strstr(res.canonical_request, "\nx-amz-security-token:TOKEN/+=\n") != NULL,
        "token signed: %s", res.canonical_request);
  CHECK(strstr(find(res.headers, res.nheaders, "Authorization"),
               "SignedHeaders=host;x-amz-date;x-amz-security-token,") != NULL,
        "signed headers");
  th_sigv4_result_free(&res);

  /* Presign with the token omitted: the parameter is added, encoded, after
   * signing (post-sts-header-after, query mode). */
  p = suite_params(TH_SIGV4_PRESIGN | TH_SIGV4_OMIT_TOKEN);
  CHECK(th_sigv4_sign(&post, &cred, &p, &res, NULL) == TH_OK, "presign omit token");
  CHECK_STR(res.signature, "2ce6e6d2e0cf2f9d1b55fafec88cd20574c31dc2e7631979f71ba2310083e95b");
  CHECK_STR(find(res.params, res.nparams, "X-Amz-Security-Token"), "TOKEN%2F%2B%3D");
  th_sigv4_result_free(&res);

  /* Presign with the token signed: it is part of the canonical query. */
  p = suite_params(TH_SIGV4_PRESIGN);
  CHECK(th_sigv4_sign(&post, &cred, &p, &res, NULL) == TH_OK, "presign token");
  CHECK(strstr(res.canonical_request, "&X-Amz-Security-Token=TOKEN%2F%2B%3D&") != NULL,
        "token in canonical query: %s", res.canonical_request);
  th_sigv4_result_free(&res);

  /* NO_NORMALIZE keeps dot segments (get-relative-unnormalized). */
  th_sigv4_request rel = {.method = "GET", .path = "/example/..", .headers = host_only,
                          .nheaders = 1};
  p = suite_params(TH_SIGV4_NO_NORMALIZE);
  CHECK(th_sigv4_sign(&rel, &plain, &p, &res, NULL) == TH_OK, "unnormalized");
  CHECK_STR(res.signature, "eca7ead57bb5aa5c8e28007acd4ff04e1ff9a0ff3b237ec1554a184887ff9282");
  th_sigv4_result_free(&res);
}

/* Every refusal leaves the result alone and says why. */
static void refused(const char *label, th_result want, const th_sigv4_request *req,
                    const th_sigv4_credentials *cred, const th_sigv4_params *p) {
  th_sigv4_result res;
  memset(&res, 0xA5, sizeof res);
  th_sigv4_result before = res;
  const char *why = NULL;
  th_result r = th_sigv4_sign(req, cred, p, &res, &why);
  CHECK(r == want, "%s: got %s, want %s", label, th_result_name(r), th_result_name(want));
  CHECK(memcmp(&res, &before, sizeof res) == 0, "%s: output written on failure", label);
  CHECK(why != NULL && *why, "%s: no reason given", label);
}

static void test_errors(void) {
  th_sigv4_credentials cred = {AKID, SECRET, NULL};
  th_sigv4_params p = suite_params(0);
  th_sigv4_request ok = {.method = "GET", .path = "/", .headers = host_only, .nheaders = 1};
  th_sigv4_request req;
  th_sigv4_credentials c;
  th_sigv4_params q;

  refused("no request", TH_ERR_INVALID, NULL, &cred, &p);
  refused("no credentials", TH_ERR_INVALID, &ok, NULL, &p);
  refused("no params", TH_ERR_INVALID, &ok, &cred, NULL);

  req = ok; req.method = "GE T";
  refused("method with a space", TH_ERR_INVALID, &req, &cred, &p);
  req = ok; req.method = "";
  refused("empty method", TH_ERR_INVALID, &req, &cred, &p);
  req = ok; req.method = NULL;
  refused("no method", TH_ERR_INVALID, &req, &cred, &p);
  req = ok; req.path = "noslash";
  refused("relative path", TH_ERR_INVALID, &req, &cred, &p);
  req = ok; req.query = "a=%zz";
  refused("bad escape in query", TH_ERR_INVALID, &req, &cred, &p);
  req = ok; req.nheaders = 0;
  refused("no Host", TH_ERR_INVALID, &req, &cred, &p);
  req = ok; req.payload_len = 10;
  refused("payload length without payload", TH_ERR_INVALID, &req, &cred, &p);
  req = ok; req.payload_hash = "has space";
  refused("payload hash with a space", TH_ERR_INVALID, &req, &cred, &p);

  static const th_sigv4_header bad_name[] = {{"Host", "h"}, {"Bad Name", "v"}};
  static const th_sigv4_header colon_name[] = {{"Host", "h"}, {"a:b", "v"}};
  static const th_sigv4_header empty_name[] = {{"Host", "h"}, {"", "v"}};
  static const th_sigv4_header ctl_value[] = {{"Host", "h"}, {"X", "a\x01" "b"}};
  static const th_sigv4_header null_value[] = {{"Host", "h"}, {"X", NULL}};
  static const th_sigv4_header auth[] = {{"Host", "h"}, {"Authorization", "x"}};
  static const th_sigv4_header date[] = {{"Host", "h"}, {"X-Amz-Date", "x"}};
  static const th_sigv4_header tok[] = {{"Host", "h"}, {"x-amz-security-token", "x"}};
  static const th_sigv4_header sha[] = {{"Host", "h"}, {"X-Amz-Content-Sha256", "x"}};
  const struct {
    const char *label;
    const th_sigv4_header *h;
  } bad_headers[] = {{"header name with a space", bad_name},
                     {"header name with a colon", colon_name},
                     {"empty header name", empty_name},
                     {"control character in value", ctl_value},
                     {"NULL value", null_value},
                     {"Authorization passed in", auth},
                     {"X-Amz-Date passed in", date}};
  for (size_t i = 0; i < TH_ARRAY_LEN(bad_headers); i++) {
    req = ok; req.headers = bad_headers[i].h, req.nheaders = 2;
    refused(bad_headers[i].label, TH_ERR_INVALID, &req, &cred, &p);
  }
  /* Signer-added headers are only refused when the signer adds them. */
  th_sigv4_result res;
  req = ok; req.headers = tok, req.nheaders = 2;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "token header without token");
  th_sigv4_result_free(&res);
  c = cred; c.session_token = "T";
  refused("token header with a token", TH_ERR_INVALID, &req, &c, &p);
  req = ok; req.headers = sha, req.nheaders = 2;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "sha header, body not signed");
  th_sigv4_result_free(&res);
  q = suite_params(TH_SIGV4_SIGN_BODY);
  refused("sha header with SIGN_BODY", TH_ERR_INVALID, &req, &cred, &q);

  c = cred; c.access_key_id = "";
  refused("empty access key", TH_ERR_INVALID, &ok, &c, &p);
  c = cred; c.access_key_id = "AK/ID";
  refused("access key with '/'", TH_ERR_INVALID, &ok, &c, &p);
  c = cred; c.secret_access_key = NULL;
  refused("no secret", TH_ERR_INVALID, &ok, &c, &p);
  c = cred; c.session_token = "to ken";
  refused("token with a space", TH_ERR_INVALID, &ok, &c, &p);
  c = cred; c.access_key_id = "AK,ID";
  refused("access key with ','", TH_ERR_INVALID, &ok, &c, &p);
  /* Every byte value in a token and a secret: only 0x21..0x7e is taken. */
  for (int b = 1; b < 256; b++) {
    char tok_b[] = {'T', 'O', (char)b, 'K', '\0'};
    char label[48];
    snprintf(label, sizeof label, "token holding byte 0x%02x", b);
    c = cred; c.session_token = tok_b;
    if (b >= 0x21 && b <= 0x7e) {
      CHECK(th_sigv4_sign(&ok, &c, &p, &res, NULL) == TH_OK, "%s: signed", label);
      th_sigv4_result_free(&res);
    } else {
      refused(label, TH_ERR_INVALID, &ok, &c, &p);
    }
    c = cred; c.secret_access_key = tok_b;
    snprintf(label, sizeof label, "secret holding byte 0x%02x", b);
    if (b >= 0x21 && b <= 0x7e) {
      CHECK(th_sigv4_sign(&ok, &c, &p, &res, NULL) == TH_OK, "%s: signed", label);
      th_sigv4_result_free(&res);
    } else {
      refused(label, TH_ERR_INVALID, &ok, &c, &p);
    }
  }
  /* The token at its limit is taken, one byte more refused. */
  static char long_tok[TH_SIGV4_MAX_TOKEN + 2];
  memset(long_tok, 'a', TH_SIGV4_MAX_TOKEN);
  long_tok[TH_SIGV4_MAX_TOKEN] = '\0';
  c = cred; c.session_token = long_tok;
  CHECK(th_sigv4_sign(&ok, &c, &p, &res, NULL) == TH_OK, "token of TH_SIGV4_MAX_TOKEN bytes");
  th_sigv4_result_free(&res);
  long_tok[TH_SIGV4_MAX_TOKEN] = 'a';
  long_tok[TH_SIGV4_MAX_TOKEN + 1] = '\0';
  refused("token one byte over TH_SIGV4_MAX_TOKEN", TH_ERR_INVALID, &ok, &c, &p);

  q = p; q.region = "us/east";
  refused("region with '/'", TH_ERR_INVALID, &ok, &cred, &q);
  q = p; q.region = "";
  refused("empty region", TH_ERR_INVALID, &ok, &cred, &q);
  q = p; q.service = NULL;
  refused("no service", TH_ERR_INVALID, &ok, &cred, &q);
  q = p; q.time = (th_sigv4_time){2015, 2, 29, 0, 0, 0};
  refused("February 29th of 2015", TH_ERR_INVALID, &ok, &cred, &q);
  q = p; q.time = (th_sigv4_time){1969, 12, 31, 23, 59, 59};
  refused("year 1969", TH_ERR_INVALID, &ok, &cred, &q);
  q = p; q.time = (th_sigv4_time){2015, 8, 30, 24, 0, 0};
  refused("hour 24", TH_ERR_INVALID, &ok, &cred, &q);
  q = suite_params(TH_SIGV4_PRESIGN); q.expires = 0;
  refused("expires 0", TH_ERR_INVALID, &ok, &cred, &q);
  q = suite_params(TH_SIGV4_PRESIGN); q.expires = TH_SIGV4_MAX_EXPIRES + 1;
  refused("expires past 7 days", TH_ERR_INVALID, &ok, &cred, &q);
  q = suite_params(TH_SIGV4_PRESIGN);
  req = ok; req.query = "a=1&X-Amz-Signature=abc";
  refused("presign over a signed query", TH_ERR_INVALID, &req, &cred, &q);

  /* Limits. */
  static th_sigv4_header many[TH_SIGV4_MAX_HEADERS + 1];
  for (size_t i = 0; i < TH_ARRAY_LEN(many); i++)
    many[i] = (th_sigv4_header){"Host", "h"};
  req = ok; req.headers = many, req.nheaders = TH_ARRAY_LEN(many);
  refused("too many headers", TH_ERR_TOO_LARGE, &req, &cred, &p);
  req.nheaders = TH_SIGV4_MAX_HEADERS;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "as many headers as allowed");
  th_sigv4_result_free(&res);

  char *big = malloc(TH_SIGV4_MAX_VALUE + 2);
  memset(big, 'v', TH_SIGV4_MAX_VALUE + 1);
  big[TH_SIGV4_MAX_VALUE + 1] = '\0';
  th_sigv4_header big_value[] = {{"Host", "h"}, {"X", big}};
  req = ok; req.headers = big_value, req.nheaders = 2;
  refused("header value too long", TH_ERR_TOO_LARGE, &req, &cred, &p);
  big[TH_SIGV4_MAX_VALUE] = '\0';
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "longest header value");
  th_sigv4_result_free(&res);
  free(big);

  char *long_query = malloc(TH_SIGV4_MAX_QUERY + 2);
  memset(long_query, 'q', TH_SIGV4_MAX_QUERY + 1);
  long_query[TH_SIGV4_MAX_QUERY + 1] = '\0';
  req = ok; req.query = long_query;
  refused("query too long", TH_ERR_TOO_LARGE, &req, &cred, &p);
  free(long_query);
}

static void hex32(const unsigned char *k, char out[65]) {
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", k[i]);
}

/* The signing key: the AWS documentation's example (iam, 20150830), the
 * suite's scope; a key kept in th_sigv4_key is derived once per UTC day and
 * re-derived when the day changes; th_sigv4_sign uses a given key only for
 * its own day, so a stale one cannot give a wrong signature. */
static void test_signing_key(void) {
  unsigned char k[TH_SIGV4_KEY_LEN];
  char hex[65];
  CHECK(th_sigv4_signing_key(SECRET, "20150830", "us-east-1", "iam", k) == TH_OK, "iam key");
  hex32(k, hex);
  CHECK_STR(hex, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
  CHECK(th_sigv4_signing_key(SECRET, "20150830", "us-east-1", "service", k) == TH_OK, "suite key");
  hex32(k, hex);
  CHECK_STR(hex, "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
  CHECK(th_sigv4_signing_key("", "20150830", "us-east-1", "iam", k) == TH_ERR_INVALID, "no secret");
  CHECK(th_sigv4_signing_key(SECRET, "2015083", "us-east-1", "iam", k) == TH_ERR_INVALID, "date");

  th_sigv4_key cache = {0};
  th_sigv4_time t1 = {2015, 8, 30, 23, 59, 59}, t2 = {2015, 8, 31, 0, 0, 0};
  CHECK(th_sigv4_key_update(&cache, SECRET, "us-east-1", "service", &t1) == TH_OK, "first day");
  CHECK_STR(cache.date, "20150830");
  hex32(cache.key, hex);
  CHECK_STR(hex, "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
  /* Same day: kept as is (a key planted there is not replaced). */
  th_sigv4_key planted = cache;
  planted.key[0] ^= 1;
  CHECK(th_sigv4_key_update(&planted, SECRET, "us-east-1", "service", &t1) == TH_OK, "same day");
  CHECK(planted.key[0] == (cache.key[0] ^ 1), "the key of the same day is not derived again");
  /* Midnight UTC: the next request re-derives. */
  CHECK(th_sigv4_key_update(&cache, SECRET, "us-east-1", "service", &t2) == TH_OK, "next day");
  CHECK_STR(cache.date, "20150831");
  hex32(cache.key, hex);
  CHECK_STR(hex, "4f10458981d9757195ff4a3d55278d32d3c789809c4bb9c0785443035e0c10b2");
  th_sigv4_time bad = {2015, 2, 30, 0, 0, 0};
  CHECK(th_sigv4_key_update(&cache, SECRET, "us-east-1", "service", &bad) == TH_ERR_INVALID &&
            cache.date[0] == '\0', "an invalid time empties the key");

  /* Signing with the day's key gives the suite's signature; with a key of
   * another day (or a wrong key for another day) the same signature. */
  th_sigv4_request req = {.method = "GET", .path = "/", .headers = host_only, .nheaders = 1};
  th_sigv4_credentials cred = {AKID, SECRET, NULL};
  th_sigv4_params p = suite_params(0);
  th_sigv4_result res;
  const char *want = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
  CHECK(th_sigv4_key_update(&cache, SECRET, "us-east-1", "service", &p.time) == TH_OK, "suite day");
  p.signing_key = &cache;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "with the day's key");
  CHECK_STR(res.signature, want);
  th_sigv4_result_free(&res);
  th_sigv4_key stale = {.date = "20150829"};
  memset(stale.key, 0x5a, sizeof stale.key);
  p.signing_key = &stale;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "with a stale key");
  CHECK_STR(res.signature, want);
  th_sigv4_result_free(&res);
  planted = cache;
  planted.key[0] ^= 1; /* proves the given key is what signs on its day */
  p.signing_key = &planted;
  CHECK(th_sigv4_sign(&req, &cred, &p, &res, NULL) == TH_OK, "with a planted key");
  CHECK(strcmp(res.signature, want) != 0, "the day's key is used, not derived again");
  th_sigv4_result_free(&res);
}

int main(void) {
  test_uri_encode();
  test_fold_value();
  test_normalize_path();
  test_canonical_path();
  test_canonical_query();
  test_time();
  test_vanilla();
  test_signing_key();
  test_header_order();
  test_dynamodb();
  test_options();
  test_errors();
  return CHECK_DONE();
}
