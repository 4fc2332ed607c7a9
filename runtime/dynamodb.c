/* dynamodb — see dynamodb.h.
 *
 * The codec runs every JSON step inside one lua_pcall on its private state:
 * cjson raises on malformed text, and so do our checks (with the reason as
 * the error message), so a failure anywhere unwinds to one place. Results
 * stay on the Lua stack until the protected call has returned and are only
 * then copied out, so nothing malloc'd can leak past a raised error.
 *
 * Request bodies are assembled as text from pieces that cjson encodes one at
 * a time (the table name, the id, each item or attribute value), so a body
 * nests no deeper than the item it carries. */
#include "dynamodb.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "lua_modules.h"
#include "sigv4.h"
#include "store.h"

#define TARGET_PREFIX "DynamoDB_20120810."
#define OWNER_ATTR TH_STORE_OWNER_ATTR /* the partition key, "user_id" */
#define VERSION_ATTR TH_DDB_VERSION_ATTR
#define CONTENT_TYPE "application/x-amz-json-1.0"
#define AV_MAX_DEPTH 100          /* AttributeValue nesting we walk */
#define DOC_JMAX (2 * AV_MAX_DEPTH + 1) /* request documents: AV_MAX_DEPTH alone */
/* Response items: as deep as th_json_encode writes (its 64 levels, the item
 * itself being level 1; an empty L or set costs no level, being written as
 * [] text). The text read path re-encodes each item, so deeper ones (written
 * by another client) fail there; the decode-once path refuses the very same
 * items, with the same message. */
#define ITEM_JMAX 64
#define MAX_EXPONENT 100000       /* |exponent| accepted by th_ddb_number_canon */
#define QUOTA_MAX 500             /* retry quota tokens (the SDKs' value) */
#define QUOTA_RETRY_COST 5
#define QUOTA_TIMEOUT_COST 10
#define QUOTA_SUCCESS_REFUND 1
#define RETRY_AFTER_EXTRA_MS 5000 /* x-amz-retry-after may add at most this */
#define MIN_SECRET_TO_SCRUB 8     /* shorter "secrets" are test dummies */
#define STOP_CHECK_MS 50.0        /* a retry's sleep looks at the stop flag this often */

/* ================================================================ errors */

static const char *const throttling_codes[] = {
  /* botocore's standard-mode list (retries/standard.py) */
  "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
  "TooManyRequestsException", "ProvisionedThroughputExceededException",
  "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
  "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
  "EC2ThrottledException",
  /* listed with "OK to retry" in the DynamoDB developer guide's error table */
  "ProvisionedThroughputExceeded",
};
static const char *const transient_codes[] = {
  "RequestTimeout", "RequestTimeoutException", "InternalServerError", "InternalFailure",
  "ServiceUnavailable", "ServiceUnavailableException",
  "ReplicatedWriteConflictException", /* modelled retryable in service-2.json */
};
static const char *const invalid_codes[] = {
  "ValidationException", "SerializationException",
};
static const char *const auth_codes[] = {
  "AccessDeniedException", "AccessDenied", "UnrecognizedClientException",
  "InvalidSignatureException", "IncompleteSignatureException", "SignatureDoesNotMatch",
  "MissingAuthenticationTokenException", "MissingAuthenticationToken",
  "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "NotAuthorized",
};
/* Their messages may quote the canonical request: never copied. */
static const char *const signature_codes[] = {
  "InvalidSignatureException", "IncompleteSignatureException", "SignatureDoesNotMatch",
};

static int in_list(const char *code, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(code, list[i]) == 0)
      return 1;
  return 0;
}
#define IN(code, list) in_list((code), (list), TH_ARRAY_LEN(list))

th_ddb_kind th_ddb_classify(long status, const char *code) {
  if (!code)
    code = "";
  if (status >= 200 && status < 300 && !*code)
    return TH_DDB_NONE;
  if (strcmp(code, "ConditionalCheckFailedException") == 0)
    return TH_DDB_CONDITION;
  if (IN(code, throttling_codes))
    return TH_DDB_THROTTLING;
  if (IN(code, transient_codes))
    return TH_DDB_TRANSIENT;
  /* The SDKs retry these statuses whatever the code says. */
  if (status == 500 || status == 502 || status == 503 || status == 504)
    return TH_DDB_TRANSIENT;
  if (status == 429)
    return TH_DDB_THROTTLING;
  if (IN(code, invalid_codes) || status == 413)
    return TH_DDB_INVALID;
  if (IN(code, auth_codes) || status == 401 || status == 403)
    return TH_DDB_AUTH;
  if (strcmp(code, "ResourceNotFoundException") == 0)
    return TH_DDB_NO_TABLE;
  if (strcmp(code, "TransactionConflictException") == 0)
    return TH_DDB_BUSY;
  if (status >= 500)
    return TH_DDB_TRANSIENT;
  return TH_DDB_OTHER;
}

th_result th_ddb_kind_result(th_ddb_kind kind) {
  switch (kind) {
  case TH_DDB_NONE: return TH_OK;
  case TH_DDB_CONDITION: return TH_ERR_EXISTS;
  case TH_DDB_THROTTLING: return TH_ERR_THROTTLED;
  case TH_DDB_TRANSIENT:
  case TH_DDB_BUSY: return TH_ERR_UNAVAILABLE;
  case TH_DDB_INVALID: return TH_ERR_INVALID;
  case TH_DDB_AUTH:
  case TH_DDB_NO_TABLE:
  case TH_DDB_OTHER: return TH_ERR_INTERNAL;
  }
  return TH_ERR_INTERNAL;
}

int th_ddb_retryable(th_ddb_kind kind) {
  return kind == TH_DDB_THROTTLING || kind == TH_DDB_TRANSIENT;
}

const char *th_ddb_kind_name(th_ddb_kind kind) {
  switch (kind) {
  case TH_DDB_NONE: return "none";
  case TH_DDB_CONDITION: return "condition";
  case TH_DDB_THROTTLING: return "throttling";
  case TH_DDB_TRANSIENT: return "transient";
  case TH_DDB_INVALID: return "invalid";
  case TH_DDB_AUTH: return "auth";
  case TH_DDB_NO_TABLE: return "no_table";
  case TH_DDB_BUSY: return "busy";
  case TH_DDB_OTHER: return "other";
  }
  return "other";
}

/* =============================================================== retries */

th_ddb_retry th_ddb_retry_standard(int max_attempts) {
  th_ddb_retry p = {TH_DDB_DEFAULT_ATTEMPTS, 25, 1000, 20000};
  if (max_attempts > 0)
    p.max_attempts = max_attempts > TH_DDB_MAX_ATTEMPTS ? TH_DDB_MAX_ATTEMPTS : max_attempts;
  return p;
}

double th_ddb_backoff_ms(const th_ddb_retry *p, int attempt, int throttling, double r01,
                         long retry_after_ms) {
  double base = throttling ? p->throttle_base_ms : p->base_ms;
  double cap = base * ldexp(1.0, attempt < 1 ? 0 : attempt > 60 ? 60 : attempt - 1);
  if (cap > p->max_backoff_ms)
    cap = p->max_backoff_ms;
  if (!(r01 >= 0))
    r01 = 0;
  if (r01 >= 1)
    r01 = nextafter(1.0, 0.0);
  double t = r01 * cap;
  if (retry_after_ms >= 0) {
    double ra = (double)retry_after_ms;
    if (ra > t + RETRY_AFTER_EXTRA_MS)
      ra = t + RETRY_AFTER_EXTRA_MS;
    if (ra > t)
      t = ra;
  }
  return t;
}

/* ========================================================== pure helpers */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

uint32_t th_ddb_crc32(const void *p, size_t n) {
  const unsigned char *s = p;
  uint32_t c = 0xFFFFFFFFu;
  pthread_once(&crc_once, crc_init);
  for (size_t i = 0; i < n; i++)
    c = crc_table[(c ^ s[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }

th_result th_ddb_number_canon(const char *n, th_buf *out) {
  th_result r = TH_ERR_INVALID;
  th_buf digits;
  const char *p = n;
  int neg = 0;
  long exp = 0, frac = 0;
  th_buf_init(&digits, 1u << 20);
  if (!p)
    goto out;
  if (*p == '+' || *p == '-')
    neg = *p++ == '-';
  int seen = 0;
  for (; is_digit(*p); p++, seen++)
    if (th_buf_append(&digits, p, 1) != TH_OK)
      goto out;
  if (*p == '.') {
    for (p++; is_digit(*p); p++, seen++, frac++)
      if (th_buf_append(&digits, p, 1) != TH_OK)
        goto out;
  }
  if (!seen)
    goto out;
  if (*p == 'e' || *p == 'E') {
    int eneg = 0;
    p++;
    if (*p == '+' || *p == '-')
      eneg = *p++ == '-';
    if (!is_digit(*p))
      goto out;
    for (; is_digit(*p); p++) {
      exp = exp * 10 + (*p - '0');
      if (exp > MAX_EXPONENT)
        goto out;
    }
    if (eneg)
      exp = -exp;
  }
  if (*p)
    goto out;
  /* value = digits × 10^(exp - frac); strip zeros at both ends. */
  const char *d = digits.data;
  size_t len = digits.len;
  while (len && *d == '0') {
    d++;
    len--;
  }
  exp -= frac;
  while (len && d[len - 1] == '0') {
    len--;
    exp++;
  }
  char tail[32];
  if (!len) {
    r = th_buf_append_str(out, "0");
    goto out;
  }
  snprintf(tail, sizeof tail, "e%ld", exp);
  if ((r = th_buf_append_str(out, neg ? "-" : "")) != TH_OK ||
      (r = th_buf_append(out, d, len)) != TH_OK || (exp && (r = th_buf_append_str(out, tail)) != TH_OK))
    goto out;
  r = TH_OK;
out:
  th_buf_free(&digits);
  return r;
}

/* Blanks control characters so a message stays on one line. */
static void one_line(char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = ' ';
}

/* Formats into a fixed field; a long line is cut at the end. */
static void put_line(char *dst, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
}

/* Copies at most cap-1 bytes of src. */
static void copy_cut(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* ================================================================= codec */

struct th_ddb_codec {
  lua_State *L;
};

/* Raises a Lua error with a formatted message (the codec's "why"). */
static int fail_with(lua_State *L, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lua_pushstring(L, msg);
  return lua_error(L);
}

static int codec_setup(lua_State *L) {
  th_json_setup(L);
  /* Responses wrap items one or two levels deeper than the items themselves:
   * let our private instance read deeper than the scripts' 64. */
  if (lua_getfield(L, LUA_REGISTRYINDEX, "th.cjson") == LUA_TTABLE &&
      lua_getfield(L, -1, "decode_max_depth") == LUA_TFUNCTION) {
    lua_pushinteger(L, TH_DDB_MAX_DEPTH);
    lua_call(L, 1, 0);
  }
  return 0;
}

th_ddb_codec *th_ddb_codec_new(void) {
  th_ddb_codec *c = calloc(1, sizeof *c);
  if (!c || !(c->L = luaL_newstate()))
    goto fail;
  lua_pushcfunction(c->L, codec_setup);
  if (lua_pcall(c->L, 0, 0, 0) != LUA_OK)
    goto fail;
  lua_settop(c->L, 0);
  return c;
fail:
  th_ddb_codec_free(c);
  return NULL;
}

void th_ddb_codec_free(th_ddb_codec *c) {
  if (!c)
    return;
  if (c->L)
    lua_close(c->L);
  free(c);
}

/* Arguments and scalar results of one codec job. */
typedef struct job {
  const char *table, *owner, *id, *text, *member;
  size_t len;
  int limit;
  size_t take;
  int deep;     /* decode with th_json_decode_deep (a caller's state) */
  int dest;     /* push_scan: the caller's table the items are appended to */
  const th_store_match *match; /* update/delete: an If-Match condition, or NULL */
  const char *rec;              /* idempotency: the record's id */
  const th_store_idem *idem;    /* idempotency: the request */
  const char *response;         /* idem commit: the stored answer */
  th_ddb_idem_record *found;    /* parse_idem: out */
  /* results */
  size_t count;
  int more, equal;
} job;

/* Runs fn(job) protected. On success the results fn returned are left on
 * the stack (the caller copies them, then clears the stack); on failure the
 * stack is cleared, `why` receives the message and `fail` (or NOMEM) is
 * returned. */
static th_result run_on(lua_State *L, lua_CFunction fn, job *j, int nargs_extra, int nresults,
                        th_result fail, char *why, size_t whylen) {
  int base = lua_gettop(L) - nargs_extra;
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, j);
  for (int i = 0; i < nargs_extra; i++) /* the extra arguments go after j */
    lua_pushvalue(L, base + 1 + i);
  int st = lua_pcall(L, 1 + nargs_extra, nresults, 0);
  if (st == LUA_OK)
    return TH_OK;
  if (why && whylen) {
    const char *msg = lua_tostring(L, -1);
    copy_cut(why, whylen, st == LUA_ERRMEM ? "out of memory" : msg ? msg : "error");
    one_line(why);
  }
  lua_settop(L, base + nargs_extra);
  return st == LUA_ERRMEM ? TH_ERR_NOMEM : fail;
}

static th_result run(th_ddb_codec *c, lua_CFunction fn, job *j, th_result fail, char *why,
                     size_t whylen) {
  lua_settop(c->L, 0);
  th_result r = run_on(c->L, fn, j, 0, LUA_MULTRET, fail, why, whylen);
  if (r != TH_OK)
    lua_settop(c->L, 0);
  return r;
}

/* Copies the string at idx (NULL when nil); TH_ERR_NOMEM on failure. */
static th_result take_string(lua_State *L, int idx, char **out) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  *out = NULL;
  if (!s)
    return TH_OK;
  char *p = malloc(n + 1);
  if (!p)
    return TH_ERR_NOMEM;
  memcpy(p, s, n + 1);
  *out = p;
  return TH_OK;
}

static int decode_raw(lua_State *L) {
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  th_json_decode(L, s, n);
  return 1;
}

static int decode_raw_deep(lua_State *L) {
  size_t n;
  const char *s = lua_tolstring(L, 1, &n);
  th_json_decode_deep(L, s, n);
  return 1;
}

/* Pushes the value decoded from text; raises "<what> is not valid JSON: ..".
 * `deep`: on a caller's state, through its deep cjson instance (the codec's
 * own state reads TH_DDB_MAX_DEPTH levels with its main one). */
static void decode_as(lua_State *L, const char *text, size_t len, const char *what, int deep) {
  if (!text)
    fail_with(L, "%s is missing", what);
  lua_pushcfunction(L, deep ? decode_raw_deep : decode_raw);
  lua_pushlstring(L, text, len);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    if (lua_type(L, -1) != LUA_TSTRING)
      lua_error(L); /* out of memory: pass it on */
    fail_with(L, "%s is not valid JSON: %s", what, lua_tostring(L, -1));
  }
}

static void decode(lua_State *L, const char *text, size_t len, const char *what) {
  decode_as(L, text, len, what, 0);
}

/* cjson reads [] and {} alike: whether the text itself is an object. */
static int opens_object(const char *text, size_t len) {
  size_t i = 0;
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
    i++;
  return i < len && text[i] == '{';
}

/* Whether the table at idx holds exactly the keys 1..#t. */
static int is_sequence(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
      lua_pop(L, 1);
      return 0;
    }
    count++;
  }
  return count == n;
}

static void check_map(lua_State *L, int idx, int depth, int jmax, const char *attr, int plain);

static int is_empty(lua_State *L, int idx) {
  lua_pushnil(L);
  if (!lua_next(L, idx))
    return 1;
  lua_pop(L, 2);
  return 0;
}

/* The number of an N text (integer when it is one and fits), or raises as
 * th_av_push_plain_item does. */
static void push_number(lua_State *L, int idx, const char *attr) {
  const char *s = lua_tostring(L, idx);
  if (lua_stringtonumber(L, s) == 0)
    fail_with(L, "attribute '%.60s': stored number '%.60s' is not a number", attr, s);
}

/* Checks the AttributeValue at idx (see dynamodb.h) and marks its arrays.
 * `attr` names the top-level attribute, for the message. `depth` counts
 * AttributeValue levels (a top-level attribute is 1): in its item's JSON the
 * value's object sits at level 2 * depth and its L/M/set payload one below;
 * `jmax` caps those JSON levels (DOC_JMAX: no cap beyond AV_MAX_DEPTH).
 * plain: in the same walk, pushes the plain value th_av_push_plain_item
 * gives of it (an L, M or set payload converted in place and pushed: the
 * AttributeValue is spent). */
static void check_av(lua_State *L, int idx, int depth, int jmax, const char *attr, int plain) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 8, "attribute nesting");
  if (depth > AV_MAX_DEPTH)
    fail_with(L, "attribute '%.60s': nested deeper than %d levels", attr, AV_MAX_DEPTH);
  if (2 * depth > jmax)
    fail_with(L, "attribute '%.60s': nested deeper than %d JSON levels", attr, jmax);
  if (lua_type(L, idx) != LUA_TTABLE)
    fail_with(L, "attribute '%.60s': value is not an AttributeValue object", attr);
  lua_pushnil(L);
  if (!lua_next(L, idx))
    fail_with(L, "attribute '%.60s': empty AttributeValue (want one of S N B BOOL NULL L M SS NS BS)", attr);
  if (lua_type(L, -2) != LUA_TSTRING)
    fail_with(L, "attribute '%.60s': value is not an AttributeValue object", attr);
  lua_pushvalue(L, -2);
  if (lua_next(L, idx))
    fail_with(L, "attribute '%.60s': an AttributeValue has exactly one type", attr);
  const char *tag = lua_tostring(L, -2);
  int v = lua_gettop(L), vt = lua_type(L, v);
  /* An empty L or set is written as [] text, not as a table: no level. */
  if (vt == LUA_TTABLE && 2 * depth + 1 > jmax && (!strcmp(tag, "M") || !is_empty(L, v)))
    fail_with(L, "attribute '%.60s': nested deeper than %d JSON levels", attr, jmax);
  if (!strcmp(tag, "S") || !strcmp(tag, "N") || !strcmp(tag, "B")) {
    if (vt != LUA_TSTRING)
      fail_with(L, "attribute '%.60s': %s takes a string", attr, tag);
    if (plain && tag[0] == 'N') {
      push_number(L, v, attr);
      lua_replace(L, v);
    }
  } else if (!strcmp(tag, "BOOL") || !strcmp(tag, "NULL")) {
    if (vt != LUA_TBOOLEAN)
      fail_with(L, "attribute '%.60s': %s takes true or false", attr, tag);
    if (plain && tag[0] == 'N') {
      th_json_push_null(L);
      lua_replace(L, v);
    }
  } else if (!strcmp(tag, "L")) {
    if (vt != LUA_TTABLE || !is_sequence(L, v))
      fail_with(L, "attribute '%.60s': L takes an array", attr);
    th_json_mark_array(L, v);
    lua_Integer n = (lua_Integer)lua_rawlen(L, v);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, v, i);
      check_av(L, -1, depth + 1, jmax, attr, plain);
      if (plain)
        lua_rawseti(L, v, i);
      lua_pop(L, 1);
    }
  } else if (!strcmp(tag, "M")) {
    if (vt != LUA_TTABLE)
      fail_with(L, "attribute '%.60s': M takes an object", attr);
    check_map(L, v, depth + 1, jmax, attr, plain);
  } else if (!strcmp(tag, "SS") || !strcmp(tag, "NS") || !strcmp(tag, "BS")) {
    if (vt != LUA_TTABLE || !is_sequence(L, v))
      fail_with(L, "attribute '%.60s': %s takes an array of strings", attr, tag);
    lua_Integer n = (lua_Integer)lua_rawlen(L, v);
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, v, i) != LUA_TSTRING)
        fail_with(L, "attribute '%.60s': %s takes an array of strings", attr, tag);
      if (plain && tag[0] == 'N') {
        push_number(L, -1, attr);
        lua_rawseti(L, v, i);
      }
      lua_pop(L, 1);
    }
    th_json_mark_array(L, v);
  } else {
    fail_with(L, "attribute '%.60s': unknown AttributeValue type '%.20s'", attr, tag);
  }
  if (plain) { /* keep the value, in the tag's place */
    lua_remove(L, v - 1);
    return;
  }
  lua_pop(L, 2);
}

/* An object of AttributeValues (an item, fields, or an M's value); plain:
 * each replaced in place by its plain value. */
static void check_map(lua_State *L, int idx, int depth, int jmax, const char *attr, int plain) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 6, "attribute nesting");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      fail_with(L, "attribute '%.60s': M takes an object", attr);
    check_av(L, -1, depth, jmax, attr, plain);
    if (plain) { /* key, av, plain: an existing field, so the walk goes on */
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, idx);
    }
    lua_pop(L, 1);
  }
}

enum { DOC_ITEM, DOC_FIELDS, DOC_ANY };

/* Pushes the checked, marked table of an item or fields document. Returns
 * the number of attributes. */
static int load_doc(lua_State *L, const char *text, size_t len, int mode, const char *id,
                    const char *what) {
  decode(L, text, len, what);
  int t = lua_gettop(L), n = 0;
  if (lua_type(L, t) != LUA_TTABLE || !opens_object(text, len))
    fail_with(L, "%s is not a JSON object", what);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      fail_with(L, "%s is not a JSON object", what);
    const char *name = lua_tostring(L, -2);
    if (mode == DOC_FIELDS && strcmp(name, "id") == 0)
      fail_with(L, "fields must not contain id");
    if (mode != DOC_ANY && strcmp(name, OWNER_ATTR) == 0)
      fail_with(L, "the attribute " OWNER_ATTR " is the store's own (the owner)");
    if (mode != DOC_ANY && strcmp(name, VERSION_ATTR) == 0)
      fail_with(L, "the attribute " VERSION_ATTR " is the store's own (the item's version)");
    check_av(L, -1, 1, DOC_JMAX, name, 0);
    lua_pop(L, 1);
    n++;
  }
  if (mode == DOC_ITEM) {
    size_t got_len = 0;
    const char *got = NULL;
    if (lua_getfield(L, t, "id") == LUA_TTABLE && lua_getfield(L, -1, "S") == LUA_TSTRING)
      got = lua_tolstring(L, -1, &got_len);
    if (!got || got_len != strlen(id) || memcmp(got, id, got_len) != 0)
      fail_with(L, "item must contain \"id\":{\"S\":<the id>}");
    lua_settop(L, t);
  }
  return n;
}

/* Adds the JSON encoding of the value at idx, which must lie below the
 * buffer's own stack slots: luaL_addvalue finds its box just under the text. */
static void add_json(luaL_Buffer *b, lua_State *L, int idx) {
  th_json_encode(L, idx);
  luaL_addvalue(b);
}

/* The same for the value on top of the stack, which is popped. */
static void add_json_top(luaL_Buffer *b, lua_State *L) {
  th_json_encode(L, -1);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

static void add_json_str(luaL_Buffer *b, lua_State *L, const char *s) {
  lua_pushstring(L, s);
  th_json_encode(L, -1);
  lua_remove(L, -2);
  luaL_addvalue(b);
}

static void add_head(luaL_Buffer *b, lua_State *L, const char *table) {
  luaL_addstring(b, "{\"TableName\":");
  add_json_str(b, L, table);
}

/* {"user_id":{"S":owner},"id":{"S":id}}: the table's whole key. */
static void add_key_value(luaL_Buffer *b, lua_State *L, const char *owner, const char *id) {
  luaL_addstring(b, "{\"" OWNER_ATTR "\":{\"S\":");
  add_json_str(b, L, owner);
  luaL_addstring(b, "},\"id\":{\"S\":");
  add_json_str(b, L, id);
  luaL_addstring(b, "}}");
}

static void add_key(luaL_Buffer *b, lua_State *L, const char *owner, const char *id) {
  luaL_addstring(b, ",\"Key\":");
  add_key_value(b, L, owner, id);
}

static int job_put(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  luaL_Buffer b;
  load_doc(L, j->text, j->len, DOC_ITEM, j->id, "item");
  int item = lua_gettop(L);
  lua_createtable(L, 0, 1); /* the owner joins the item: it is the partition key */
  lua_pushstring(L, j->owner);
  lua_setfield(L, -2, "S");
  lua_setfield(L, item, OWNER_ATTR);
  lua_createtable(L, 0, 1); /* every item starts at version 1 (store.h) */
  lua_pushliteral(L, "1");
  lua_setfield(L, -2, "N");
  lua_setfield(L, item, VERSION_ATTR);
  luaL_buffinit(L, &b);
  add_head(&b, L, j->table);
  luaL_addstring(&b, ",\"Item\":");
  add_json(&b, L, item);
  luaL_addstring(&b, ",\"ConditionExpression\":\"attribute_not_exists(#k)\","
                     "\"ExpressionAttributeNames\":{\"#k\":\"id\"}}");
  luaL_pushresult(&b);
  return 1;
}

static int job_get(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_head(&b, L, j->table);
  add_key(&b, L, j->owner, j->id);
  luaL_addstring(&b, ",\"ConsistentRead\":true}");
  luaL_pushresult(&b);
  return 1;
}

/* The ConditionExpression of an update or delete: the item exists and,
 * with an If-Match list, its version is one of the list's (an item without
 * a version is version 1). Its values are :m0.. (added by add_match_values). */
static void add_condition(luaL_Buffer *b, const th_store_match *m) {
  char ph[32];
  luaL_addstring(b, ",\"ConditionExpression\":\"attribute_exists(#k)");
  if (m && m->active && !m->any && m->n > 0) {
    int has_one = 0;
    luaL_addstring(b, " AND (#ver IN (");
    for (int i = 0; i < m->n; i++) {
      snprintf(ph, sizeof ph, "%s:m%d", i ? ", " : "", i);
      luaL_addstring(b, ph);
      has_one |= m->versions[i] == 1;
    }
    luaL_addstring(b, has_one ? ") OR attribute_not_exists(#ver))" : "))");
  }
  luaL_addstring(b, "\"");
}

static int match_list(const th_store_match *m) { return m && m->active && !m->any && m->n > 0; }

static void add_match_values(luaL_Buffer *b, const th_store_match *m, int first) {
  char ph[64];
  for (int i = 0; match_list(m) && i < m->n; i++) {
    snprintf(ph, sizeof ph, "%s\":m%d\":{\"N\":\"%lld\"}", first && i == 0 ? "" : ",", i,
             m->versions[i]);
    luaL_addstring(b, ph);
  }
}

static int job_delete(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_head(&b, L, j->table);
  add_key(&b, L, j->owner, j->id);
  add_condition(&b, j->match);
  luaL_addstring(&b, ",\"ExpressionAttributeNames\":{\"#k\":\"id\"");
  if (match_list(j->match)) {
    luaL_addstring(&b, ",\"#ver\":\"" VERSION_ATTR "\"},\"ExpressionAttributeValues\":{");
    add_match_values(&b, j->match, 1);
  }
  luaL_addstring(&b, "},\"ReturnValues\":\"ALL_OLD\"}");
  luaL_pushresult(&b);
  return 1;
}

static int job_update(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  luaL_Buffer b;
  int n = load_doc(L, j->text, j->len, DOC_FIELDS, NULL, "fields");
  int fields = lua_gettop(L);
  if (n == 0)
    return 0; /* nothing to set */
  if (n > TH_DDB_MAX_UPDATE_FIELDS)
    fail_with(L, "fields: %d attributes, at most %d can be updated at once", n,
          TH_DDB_MAX_UPDATE_FIELDS);
  /* One fixed order for the expression, the names and the values. */
  lua_createtable(L, n, 0);
  int names = lua_gettop(L), k = 0;
  lua_pushnil(L);
  while (lua_next(L, fields)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, names, ++k);
  }
  char ph[32];
  luaL_buffinit(L, &b);
  add_head(&b, L, j->table);
  add_key(&b, L, j->owner, j->id);
  luaL_addstring(&b, ",\"UpdateExpression\":\"SET ");
  for (int i = 1; i <= n; i++) {
    snprintf(ph, sizeof ph, "%s#n%d = :v%d", i > 1 ? ", " : "", i - 1, i - 1);
    luaL_addstring(&b, ph);
  }
  luaL_addstring(&b, ", #ver = if_not_exists(#ver, :one) + :one\"");
  add_condition(&b, j->match);
  luaL_addstring(&b, ",\"ExpressionAttributeNames\":{\"#k\":\"id\",\"#ver\":\"" VERSION_ATTR "\"");
  for (int i = 1; i <= n; i++) {
    snprintf(ph, sizeof ph, ",\"#n%d\":", i - 1);
    luaL_addstring(&b, ph);
    lua_rawgeti(L, names, i);
    add_json_top(&b, L);
  }
  luaL_addstring(&b, "},\"ExpressionAttributeValues\":{\":one\":{\"N\":\"1\"}");
  for (int i = 1; i <= n; i++) {
    snprintf(ph, sizeof ph, ",\":v%d\":", i - 1);
    luaL_addstring(&b, ph);
    lua_rawgeti(L, names, i);
    lua_rawget(L, fields);
    add_json_top(&b, L);
  }
  add_match_values(&b, j->match, 0);
  luaL_addstring(&b, "},\"ReturnValues\":\"ALL_NEW\"}");
  luaL_pushresult(&b);
  return 1;
}

static int job_query(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  luaL_Buffer b;
  char lim[96];
  luaL_buffinit(L, &b);
  add_head(&b, L, j->table);
  luaL_addstring(&b, ",\"KeyConditionExpression\":\"#u = :u AND #k < :r\","
                     "\"ExpressionAttributeNames\":{\"#u\":\"" OWNER_ATTR "\",\"#k\":\"id\"},"
                     "\"ExpressionAttributeValues\":{\":r\":{\"S\":");
  add_json_str(&b, L, TH_DDB_IDEM_BOUND);
  luaL_addstring(&b, "},\":u\":{\"S\":");
  add_json_str(&b, L, j->owner);
  snprintf(lim, sizeof lim, "}},\"ScanIndexForward\":false,\"Limit\":%d,\"ConsistentRead\":true",
           j->limit);
  luaL_addstring(&b, lim);
  if (j->id) {
    luaL_addstring(&b, ",\"ExclusiveStartKey\":");
    add_key_value(&b, L, j->owner, j->id);
  }
  luaL_addstring(&b, "}");
  luaL_pushresult(&b);
  return 1;
}

/* Runs a body job and hands its string out. */
static th_result body_job(th_ddb_codec *c, lua_CFunction fn, job *j, char **body, char *why,
                          size_t whylen) {
  char *out = NULL;
  th_result r = run(c, fn, j, TH_ERR_INVALID, why, whylen);
  if (r != TH_OK)
    return r;
  r = lua_gettop(c->L) >= 1 ? take_string(c->L, 1, &out) : TH_OK;
  lua_settop(c->L, 0);
  if (r == TH_OK)
    *body = out;
  else if (why && whylen)
    copy_cut(why, whylen, "out of memory");
  return r;
}

static th_result need(const void *p, char *why, size_t whylen, const char *what) {
  if (p)
    return TH_OK;
  if (why && whylen)
    snprintf(why, whylen, "%s is missing", what);
  return TH_ERR_INVALID;
}

th_result th_ddb_body_put(th_ddb_codec *c, const char *table, const char *owner, const char *id,
                          const char *item, char **body, char *why, size_t whylen) {
  job j = {.table = table, .owner = owner, .id = id, .text = item, .len = item ? strlen(item) : 0};
  th_result r;
  if ((r = need(table, why, whylen, "table")) || (r = need(owner, why, whylen, "owner")) ||
      (r = need(id, why, whylen, "id")) || (r = need(item, why, whylen, "item")))
    return r;
  return body_job(c, job_put, &j, body, why, whylen);
}

th_result th_ddb_body_get(th_ddb_codec *c, const char *table, const char *owner, const char *id,
                          char **body, char *why, size_t whylen) {
  job j = {.table = table, .owner = owner, .id = id};
  th_result r;
  if ((r = need(table, why, whylen, "table")) || (r = need(owner, why, whylen, "owner")) ||
      (r = need(id, why, whylen, "id")))
    return r;
  return body_job(c, job_get, &j, body, why, whylen);
}

th_result th_ddb_body_delete(th_ddb_codec *c, const char *table, const char *owner,
                             const char *id, char **body, char *why, size_t whylen) {
  return th_ddb_body_delete_if(c, table, owner, id, NULL, body, why, whylen);
}

th_result th_ddb_body_delete_if(th_ddb_codec *c, const char *table, const char *owner,
                                const char *id, const th_store_match *match, char **body,
                                char *why, size_t whylen) {
  job j = {.table = table, .owner = owner, .id = id, .match = match};
  th_result r;
  if ((r = need(table, why, whylen, "table")) || (r = need(owner, why, whylen, "owner")) ||
      (r = need(id, why, whylen, "id")))
    return r;
  return body_job(c, job_delete, &j, body, why, whylen);
}

th_result th_ddb_body_update(th_ddb_codec *c, const char *table, const char *owner,
                             const char *id, const char *fields, char **body, char *why,
                             size_t whylen) {
  return th_ddb_body_update_if(c, table, owner, id, fields, NULL, body, why, whylen);
}

th_result th_ddb_body_update_if(th_ddb_codec *c, const char *table, const char *owner,
                                const char *id, const char *fields, const th_store_match *match,
                                char **body, char *why, size_t whylen) {
  job j = {.table = table, .owner = owner, .id = id, .text = fields,
           .len = fields ? strlen(fields) : 0, .match = match};
  th_result r;
  if ((r = need(table, why, whylen, "table")) || (r = need(owner, why, whylen, "owner")) ||
      (r = need(id, why, whylen, "id")) || (r = need(fields, why, whylen, "fields")))
    return r;
  return body_job(c, job_update, &j, body, why, whylen);
}

th_result th_ddb_body_query(th_ddb_codec *c, const char *table, const char *owner, int limit,
                            const char *after_id, char **body, char *why, size_t whylen) {
  job j = {.table = table, .owner = owner, .id = after_id, .limit = limit};
  th_result r;
  if ((r = need(table, why, whylen, "table")) || (r = need(owner, why, whylen, "owner")))
    return r;
  if (limit < 1) {
    if (why && whylen)
      snprintf(why, whylen, "query limit must be at least 1");
    return TH_ERR_INVALID;
  }
  return body_job(c, job_query, &j, body, why, whylen);
}

/* ------------------------------------------------ idempotency records */

static int load_response(lua_State *L, job *j);

#define IDEM_NAMES                                                                            \
  "\"ExpressionAttributeNames\":{\"#k\":\"id\",\"#st\":\"status\",\"#e\":\"expires_at\","     \
  "\"#l\":\"locked_until_ms\""

static void add_num(luaL_Buffer *b, const char *name, long long v) {
  char t[96];
  snprintf(t, sizeof t, "\"%s\":{\"N\":\"%lld\"}", name, v);
  luaL_addstring(b, t);
}

static void add_str_attr(luaL_Buffer *b, lua_State *L, const char *name, const char *v) {
  luaL_addstring(b, "\"");
  luaL_addstring(b, name);
  luaL_addstring(b, "\":{\"S\":");
  add_json_str(b, L, v);
  luaL_addstring(b, "}");
}

static int job_idem_claim(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  const th_store_idem *r = j->idem;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_head(&b, L, j->table);
  luaL_addstring(&b, ",\"Item\":{");
  add_str_attr(&b, L, OWNER_ATTR, j->owner);
  luaL_addstring(&b, ",");
  add_str_attr(&b, L, "id", j->rec);
  luaL_addstring(&b, ",\"status\":{\"S\":\"IN_PROGRESS\"},");
  add_str_attr(&b, L, "fingerprint", r->fingerprint);
  luaL_addstring(&b, ",");
  add_str_attr(&b, L, "token", r->token);
  luaL_addstring(&b, ",");
  add_num(&b, "expires_at", r->expires_at);
  luaL_addstring(&b, ",");
  add_num(&b, "locked_until_ms", r->locked_until_ms);
  luaL_addstring(&b, "},\"ConditionExpression\":\"attribute_not_exists(#k) OR #e <= :now"
                     " OR (#st = :ip AND #l <= :nowms)\"," IDEM_NAMES "},"
                     "\"ExpressionAttributeValues\":{\":ip\":{\"S\":\"IN_PROGRESS\"},");
  add_num(&b, ":now", r->now_ms / 1000);
  luaL_addstring(&b, ",");
  add_num(&b, ":nowms", r->now_ms);
  luaL_addstring(&b, "}}");
  luaL_pushresult(&b);
  return 1;
}

/* The condition "this request's claim, still in progress", its names and
 * values (after ExpressionAttributeValues' opening brace). */
#define OURS_CONDITION "\"ConditionExpression\":\"#t = :tok AND #st = :ip\","
static void add_ours_values(luaL_Buffer *b, lua_State *L, const th_store_idem *r) {
  luaL_addstring(b, "\":ip\":{\"S\":\"IN_PROGRESS\"},\":tok\":{\"S\":");
  add_json_str(b, L, r->token);
  luaL_addstring(b, "}");
}

static int job_idem_commit(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  const th_store_idem *r = j->idem;
  luaL_Buffer b;
  load_doc(L, r->pending_item, strlen(r->pending_item), DOC_ITEM, r->pending_id, "item");
  int item = lua_gettop(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, j->owner);
  lua_setfield(L, -2, "S");
  lua_setfield(L, item, OWNER_ATTR);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "1");
  lua_setfield(L, -2, "N");
  lua_setfield(L, item, VERSION_ATTR);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "{\"TransactItems\":[{\"Put\":{\"TableName\":");
  add_json_str(&b, L, j->table);
  luaL_addstring(&b, ",\"Item\":");
  add_json(&b, L, item);
  luaL_addstring(&b, ",\"ConditionExpression\":\"attribute_not_exists(#k)\","
                     "\"ExpressionAttributeNames\":{\"#k\":\"id\"}}},{\"Update\":{\"TableName\":");
  add_json_str(&b, L, j->table);
  add_key(&b, L, j->owner, j->rec);
  luaL_addstring(&b, ",\"UpdateExpression\":\"SET #st = :done, #r = :resp, #l = :zero\","
                     OURS_CONDITION "\"ExpressionAttributeNames\":{\"#st\":\"status\","
                     "\"#t\":\"token\",\"#r\":\"response\",\"#l\":\"locked_until_ms\"},"
                     "\"ExpressionAttributeValues\":{\":done\":{\"S\":\"COMPLETED\"},"
                     "\":zero\":{\"N\":\"0\"},\":resp\":{\"S\":");
  add_json_str(&b, L, j->response);
  luaL_addstring(&b, "},");
  add_ours_values(&b, L, r);
  luaL_addstring(&b, "}}}],\"ClientRequestToken\":");
  add_json_str(&b, L, r->token);
  luaL_addstring(&b, "}");
  luaL_pushresult(&b);
  return 1;
}

static int job_idem_release(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_head(&b, L, j->table);
  add_key(&b, L, j->owner, j->rec);
  luaL_addstring(&b, "," OURS_CONDITION "\"ExpressionAttributeNames\":{\"#st\":\"status\","
                     "\"#t\":\"token\"},\"ExpressionAttributeValues\":{");
  add_ours_values(&b, L, j->idem);
  luaL_addstring(&b, "}}");
  luaL_pushresult(&b);
  return 1;
}

static th_result idem_job(th_ddb_codec *c, lua_CFunction fn, job *j, char **body, char *why,
                          size_t whylen) {
  th_result r;
  if ((r = need(j->table, why, whylen, "table")) || (r = need(j->owner, why, whylen, "owner")) ||
      (r = need(j->rec, why, whylen, "record id")) || (r = need(j->idem, why, whylen, "request")))
    return r;
  return body_job(c, fn, j, body, why, whylen);
}

th_result th_ddb_body_idem_claim(th_ddb_codec *c, const char *table, const char *owner,
                                 const char *rec_id, const th_store_idem *r, char **body,
                                 char *why, size_t whylen) {
  job j = {.table = table, .owner = owner, .rec = rec_id, .idem = r};
  return idem_job(c, job_idem_claim, &j, body, why, whylen);
}

th_result th_ddb_body_idem_commit(th_ddb_codec *c, const char *table, const char *owner,
                                  const char *rec_id, const th_store_idem *r,
                                  const char *response, char **body, char *why, size_t whylen) {
  job j = {.table = table, .owner = owner, .rec = rec_id, .idem = r, .response = response};
  th_result res;
  if ((res = need(response, why, whylen, "response")) ||
      (r && ((res = need(r->pending_id, why, whylen, "pending id")) ||
             (res = need(r->pending_item, why, whylen, "pending item")))))
    return res;
  return idem_job(c, job_idem_commit, &j, body, why, whylen);
}

th_result th_ddb_body_idem_release(th_ddb_codec *c, const char *table, const char *owner,
                                   const char *rec_id, const th_store_idem *r, char **body,
                                   char *why, size_t whylen) {
  job j = {.table = table, .owner = owner, .rec = rec_id, .idem = r};
  return idem_job(c, job_idem_release, &j, body, why, whylen);
}

/* The string (S) or number (N) attribute `name` of the map at idx. */
static const char *idem_attr(lua_State *L, int idx, const char *name, const char *type) {
  const char *v = NULL;
  if (lua_getfield(L, idx, name) == LUA_TTABLE && lua_getfield(L, -1, type) == LUA_TSTRING)
    v = lua_tostring(L, -1);
  if (!v)
    fail_with(L, "idempotency record: %s is missing or not %s", name, type);
  return v; /* stays on the stack until the job ends */
}

static long long idem_num(lua_State *L, int idx, const char *name) {
  const char *v = idem_attr(L, idx, name, "N");
  char *end = NULL;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || !end || *end)
    fail_with(L, "idempotency record: %s is not an integer", name);
  return n;
}

static int job_parse_idem(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  th_ddb_idem_record *o = j->found;
  int resp = load_response(L, j);
  if (lua_getfield(L, resp, "Item") == LUA_TNIL)
    return 0;
  int item = lua_gettop(L);
  if (lua_type(L, item) != LUA_TTABLE)
    fail_with(L, "Item is not an AttributeValue map");
  const char *st = idem_attr(L, item, "status", "S");
  if (strcmp(st, "COMPLETED") != 0 && strcmp(st, "IN_PROGRESS") != 0)
    fail_with(L, "idempotency record: unknown status");
  const char *fp = idem_attr(L, item, "fingerprint", "S");
  const char *tok = idem_attr(L, item, "token", "S");
  if (strlen(fp) >= sizeof o->fingerprint || strlen(tok) >= sizeof o->token)
    fail_with(L, "idempotency record: fingerprint or token too long");
  o->found = 1;
  o->completed = strcmp(st, "COMPLETED") == 0;
  snprintf(o->fingerprint, sizeof o->fingerprint, "%s", fp);
  snprintf(o->token, sizeof o->token, "%s", tok);
  o->expires_at = idem_num(L, item, "expires_at");
  o->locked_until_ms = idem_num(L, item, "locked_until_ms");
  if (o->completed)
    lua_pushstring(L, idem_attr(L, item, "response", "S"));
  else
    lua_pushnil(L);
  return 1;
}

th_result th_ddb_parse_idem(th_ddb_codec *c, const char *body, size_t len,
                            th_ddb_idem_record *out, char *why, size_t whylen) {
  th_ddb_idem_record rec = {0};
  job j = {.text = body, .len = len, .found = &rec};
  char *response = NULL;
  th_result r = run(c, job_parse_idem, &j, TH_ERR_INTERNAL, why, whylen);
  if (r != TH_OK)
    return r;
  r = lua_gettop(c->L) >= 1 ? take_string(c->L, lua_gettop(c->L), &response) : TH_OK;
  lua_settop(c->L, 0);
  if (r != TH_OK) {
    copy_cut(why, whylen, "out of memory");
    return r;
  }
  rec.response = response;
  *out = rec;
  return TH_OK;
}

/* ------------------------------------------------------------ responses */

/* Pushes the decoded response, which must be an object. */
static int load_response(lua_State *L, job *j) {
  decode_as(L, j->text, j->len, "response", j->deep);
  if (lua_type(L, -1) != LUA_TTABLE || !opens_object(j->text, j->len))
    fail_with(L, "response is not a JSON object");
  return lua_gettop(L);
}

/* Checks the item at idx as an AV map (and marks its arrays). With plain, the
 * item becomes, in place, the plain item: each attribute replaced by its plain
 * value in the same walk (check_av converts), with the same checks and messages. */
static void check_item(lua_State *L, int idx, const char *what, int plain) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    fail_with(L, "%s is not an AttributeValue map", what);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      fail_with(L, "%s is not an AttributeValue map", what);
    check_av(L, -1, 1, ITEM_JMAX, lua_tostring(L, -2), plain);
    if (plain) {
      lua_pushvalue(L, -3); /* key, av, plain: an existing field, so the walk goes on */
      lua_insert(L, -2);
      lua_rawset(L, idx);
    }
    lua_pop(L, 1);
  }
}

/* Takes the owner's attribute out of the item at idx (the key's partition
 * is the store's business, never an item's content), then checks the rest:
 * stripped first, it costs no check. */
static void strip_item(lua_State *L, int idx, int keep_version) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushliteral(L, OWNER_ATTR);
    lua_pushnil(L);
    lua_rawset(L, idx);
    if (!keep_version) { /* the store's own too (store.h: Versions) */
      lua_pushliteral(L, VERSION_ATTR);
      lua_pushnil(L);
      lua_rawset(L, idx);
    }
  }
}

static void check_item_owned(lua_State *L, int idx, const char *what) {
  strip_item(L, idx, 0);
  check_item(L, idx, what, 0);
}

/* check_item_owned and th_av_push_plain_item in one walk: the item at idx
 * becomes, in place, the plain item. */
static void plain_item_owned(lua_State *L, int idx, const char *what) {
  strip_item(L, idx, 0);
  check_item(L, idx, what, 1);
}

/* The same, then pushes its JSON text. */
static void push_item_json(lua_State *L, int idx, const char *what) {
  check_item_owned(L, idx, what);
  th_json_encode(L, idx);
}

static int job_parse_item(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  int resp = load_response(L, j);
  if (lua_getfield(L, resp, j->member) == LUA_TNIL)
    return 0;
  push_item_json(L, -1, j->member);
  return 1;
}

/* Returns the checked item table, or nil when the member is absent. */
static int job_push_item(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  int resp = load_response(L, j);
  if (lua_getfield(L, resp, j->member) != LUA_TNIL) {
    strip_item(L, -1, 1); /* the version stays: the store reads it (th_ddb_push_item) */
    check_item(L, -1, j->member, 0);
  }
  return 1;
}

/* Pushes item.id.S of the table at idx, or raises. */
static void push_id(lua_State *L, int idx, const char *what) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE || lua_getfield(L, idx, "id") != LUA_TTABLE ||
      lua_getfield(L, -1, "S") != LUA_TSTRING)
    fail_with(L, "%s has no \"id\":{\"S\":...}", what);
  lua_remove(L, -2);
}

/* Reads a Query (or Scan) response: leaves the Items table at *items, the kept count in
 * j->count, and pushes the LastEvaluatedKey id (or nil), then the last kept
 * item's id (or nil). */
static void load_scan(lua_State *L, job *j, int *items_out) {
  int resp = load_response(L, j);
  int t = lua_getfield(L, resp, "Items"), items = lua_gettop(L);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
  } else if (t != LUA_TTABLE || !is_sequence(L, items)) {
    fail_with(L, "response Items is not an array");
  }
  size_t n = lua_rawlen(L, items), take = n < j->take ? n : j->take;
  if (lua_getfield(L, resp, "LastEvaluatedKey") == LUA_TNIL)
    lua_pushnil(L);
  else {
    push_id(L, -1, "LastEvaluatedKey");
    lua_remove(L, -2);
  }
  if (take) {
    lua_rawgeti(L, items, (lua_Integer)take);
    push_id(L, -1, "a listed item");
    lua_remove(L, -2);
  } else {
    lua_pushnil(L);
  }
  j->count = take;
  j->more = n > take;
  *items_out = items;
}

/* Returns: items text, last id (or nil), LastEvaluatedKey id (or nil). */
static int job_parse_scan(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  luaL_Buffer b;
  int items;
  load_scan(L, j, &items);
  int top = lua_gettop(L);
  luaL_buffinit(L, &b);
  for (size_t i = 1; i <= j->count; i++) {
    if (i > 1)
      luaL_addchar(&b, ',');
    lua_rawgeti(L, items, (lua_Integer)i);
    push_item_json(L, -1, "a listed item");
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_pushvalue(L, top);     /* last id */
  lua_pushvalue(L, top - 1); /* LastEvaluatedKey id */
  return 3;
}

/* Arguments: j, the destination table. Appends the checked items to it as
 * plain items; returns LastEvaluatedKey id (or nil), last id (or nil). */
static int job_push_scan(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  int items;
  load_scan(L, j, &items);
  lua_Integer at = (lua_Integer)lua_rawlen(L, 2);
  for (size_t i = 1; i <= j->count; i++) {
    lua_rawgeti(L, items, (lua_Integer)i);
    plain_item_owned(L, -1, "a listed item");
    lua_rawseti(L, 2, at + (lua_Integer)i);
  }
  return 2;
}

th_result th_ddb_parse_item(th_ddb_codec *c, const char *body, size_t len, const char *member,
                            char **item, char *why, size_t whylen) {
  job j = {.text = body, .len = len, .member = member};
  char *out = NULL;
  th_result r = run(c, job_parse_item, &j, TH_ERR_INTERNAL, why, whylen);
  if (r != TH_OK)
    return r;
  r = lua_gettop(c->L) >= 1 ? take_string(c->L, 1, &out) : TH_OK;
  lua_settop(c->L, 0);
  if (r == TH_OK)
    *item = out;
  return r;
}

th_result th_ddb_parse_scan(th_ddb_codec *c, const char *body, size_t len, size_t take,
                            th_ddb_page *out, char *why, size_t whylen) {
  job j = {.text = body, .len = len, .take = take};
  th_ddb_page p = {0};
  th_result r = run(c, job_parse_scan, &j, TH_ERR_INTERNAL, why, whylen);
  if (r != TH_OK)
    return r;
  if ((r = take_string(c->L, 1, &p.items)) == TH_OK && (r = take_string(c->L, 2, &p.last_id)) == TH_OK)
    r = take_string(c->L, 3, &p.lek_id);
  lua_settop(c->L, 0);
  if (r != TH_OK || !p.items) {
    th_ddb_page_free(&p);
    return TH_ERR_NOMEM;
  }
  p.count = j.count;
  p.more = j.more;
  *out = p;
  return TH_OK;
}

th_result th_ddb_push_item(lua_State *L, const char *body, size_t len, const char *member,
                           char *why, size_t whylen) {
  job j = {.text = body, .len = len, .member = member, .deep = 1};
  return run_on(L, job_push_item, &j, 0, 1, TH_ERR_INTERNAL, why, whylen);
}

th_result th_ddb_push_scan(lua_State *L, const char *body, size_t len, size_t take,
                           th_ddb_page *out, char *why, size_t whylen) {
  job j = {.text = body, .len = len, .take = take, .deep = 1};
  th_ddb_page p = {0};
  th_result r = run_on(L, job_push_scan, &j, 1, 2, TH_ERR_INTERNAL, why, whylen);
  if (r != TH_OK)
    return r;
  if ((r = take_string(L, -1, &p.last_id)) == TH_OK)
    r = take_string(L, -2, &p.lek_id);
  lua_pop(L, 2);
  if (r != TH_OK) {
    th_ddb_page_free(&p);
    return TH_ERR_NOMEM;
  }
  p.count = j.count;
  p.more = j.more;
  *out = p;
  return TH_OK;
}

void th_ddb_page_free(th_ddb_page *p) {
  if (!p)
    return;
  free(p->items);
  free(p->last_id);
  free(p->lek_id);
  memset(p, 0, sizeof *p);
}

/* -------------------------------------------------------------- errors */

/* Returns: code member ("code", else "__type"), message ("message", else
 * "Message"); each nil when absent. */
static int job_error(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  int resp = load_response(L, j);
  if (lua_getfield(L, resp, "code") != LUA_TSTRING) {
    lua_pop(L, 1);
    if (lua_getfield(L, resp, "__type") != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
  }
  if (lua_getfield(L, resp, "message") != LUA_TSTRING) {
    lua_pop(L, 1);
    if (lua_getfield(L, resp, "Message") != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
  }
  /* TransactionCanceledException: [{"Code":"None"},{"Code":"ConditionalCheckFailed",...}] */
  int n = 0;
  if (lua_getfield(L, resp, "CancellationReasons") == LUA_TTABLE) {
    int list = lua_gettop(L);
    for (int i = 1; i <= TH_DDB_MAX_REASONS; i++) {
      if (lua_rawgeti(L, list, i) != LUA_TTABLE) {
        lua_pop(L, 1);
        break;
      }
      if (lua_getfield(L, -1, "Code") != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
      }
      lua_remove(L, -2);
      n++;
    }
  }
  return 3 + n;
}

/* "ns#Name:http://..." → "Name". */
static void set_code(char *dst, size_t cap, const char *raw) {
  size_t n = strcspn(raw, ":");
  const char *start = raw;
  for (size_t i = 0; i < n; i++)
    if (raw[i] == '#')
      start = raw + i + 1;
  n -= (size_t)(start - raw);
  while (n && (*start == ' ' || *start == '\t')) {
    start++;
    n--;
  }
  while (n && (start[n - 1] == ' ' || start[n - 1] == '\t'))
    n--;
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, start, n);
  dst[n] = '\0';
}

void th_ddb_error_decode(th_ddb_codec *c, long status, const char *errortype, const char *body,
                         size_t len, th_ddb_error *out) {
  th_ddb_error e;
  memset(&e, 0, sizeof e);
  e.status = status;
  if (errortype && *errortype)
    set_code(e.code, sizeof e.code, errortype);
  job j = {.text = body, .len = len};
  if (body && len && run(c, job_error, &j, TH_ERR_INTERNAL, NULL, 0) == TH_OK) {
    const char *code = lua_tostring(c->L, 1), *msg = lua_tostring(c->L, 2);
    if (!e.code[0] && code)
      set_code(e.code, sizeof e.code, code);
    if (msg) {
      copy_cut(e.message, sizeof e.message, msg);
      one_line(e.message);
    }
    for (int i = 4; i <= lua_gettop(c->L) && e.n_reasons < TH_DDB_MAX_REASONS; i++) {
      copy_cut(e.reasons[e.n_reasons], sizeof e.reasons[0], lua_tostring(c->L, i));
      one_line(e.reasons[e.n_reasons++]);
    }
    lua_settop(c->L, 0);
  }
  e.kind = th_ddb_classify(status, e.code);
  if (strcmp(e.code, "TransactionCanceledException") == 0) {
    e.kind = TH_DDB_BUSY;
    for (int i = 0; i < e.n_reasons; i++)
      if (strcmp(e.reasons[i], "ConditionalCheckFailed") == 0)
        e.kind = TH_DDB_CONDITION;
  }
  *out = e;
}

/* ------------------------------------------------------------ equality */

static int eq_map(lua_State *L, int a, int b);

/* Pushes the canonical number text of the string at idx (raises on junk). */
static void push_canon(lua_State *L, int idx) {
  th_buf t;
  th_buf_init(&t, 1u << 20);
  th_result r = th_ddb_number_canon(lua_tostring(L, idx), &t);
  if (r != TH_OK) {
    th_buf_free(&t);
    fail_with(L, "not a number");
  }
  lua_pushlstring(L, t.data, t.len);
  th_buf_free(&t);
}

/* Pushes a table whose keys are the members of the set at idx. */
static void push_set(lua_State *L, int idx, int numbers) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  lua_createtable(L, 0, (int)n);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    if (numbers) {
      push_canon(L, -1);
      lua_remove(L, -2);
    }
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
  }
}

static int same_keys(lua_State *L, int a, int b) {
  lua_pushnil(L);
  while (lua_next(L, a)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, b) == LUA_TNIL) {
      lua_pop(L, 2);
      return 0;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Two checked AttributeValues. */
static int eq_av(lua_State *L, int a, int b) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  luaL_checkstack(L, 10, "attribute nesting");
  int top = lua_gettop(L), eq = 0;
  lua_pushnil(L);
  lua_next(L, a); /* tag_a, val_a */
  lua_pushnil(L);
  lua_next(L, b); /* tag_b, val_b */
  int ta = top + 1, va = top + 2, tb = top + 3, vb = top + 4;
  const char *tag = lua_tostring(L, ta);
  if (!lua_rawequal(L, ta, tb)) {
    eq = 0;
  } else if (!strcmp(tag, "N")) {
    push_canon(L, va);
    push_canon(L, vb);
    eq = lua_rawequal(L, -1, -2);
  } else if (!strcmp(tag, "L")) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, va);
    eq = n == (lua_Integer)lua_rawlen(L, vb);
    for (lua_Integer i = 1; eq && i <= n; i++) {
      lua_rawgeti(L, va, i);
      lua_rawgeti(L, vb, i);
      eq = eq_av(L, -2, -1);
      lua_pop(L, 2);
    }
  } else if (!strcmp(tag, "M")) {
    eq = eq_map(L, va, vb);
  } else if (!strcmp(tag, "SS") || !strcmp(tag, "NS") || !strcmp(tag, "BS")) {
    int numbers = !strcmp(tag, "NS");
    push_set(L, va, numbers);
    push_set(L, vb, numbers);
    eq = same_keys(L, top + 5, top + 6) && same_keys(L, top + 6, top + 5);
  } else { /* S, B, BOOL, NULL */
    eq = lua_rawequal(L, va, vb);
  }
  lua_settop(L, top);
  return eq;
}

static int eq_map(lua_State *L, int a, int b) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (!same_keys(L, a, b) || !same_keys(L, b, a))
    return 0;
  lua_pushnil(L);
  while (lua_next(L, a)) {
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    int eq = eq_av(L, -2, -1);
    lua_pop(L, 2);
    if (!eq) {
      lua_pop(L, 1);
      return 0;
    }
  }
  return 1;
}

static int job_equal(lua_State *L) {
  job *j = lua_touserdata(L, 1);
  load_doc(L, j->text, strlen(j->text), DOC_ANY, NULL, "first item");
  load_doc(L, j->member, strlen(j->member), DOC_ANY, NULL, "second item");
  j->equal = eq_map(L, -2, -1);
  return 0;
}

int th_ddb_items_equal(th_ddb_codec *c, const char *a, const char *b) {
  job j = {.text = a, .member = b};
  if (!a || !b || run(c, job_equal, &j, TH_ERR_INVALID, NULL, 0) != TH_OK)
    return -1;
  lua_settop(c->L, 0);
  return j.equal;
}

/* ================================================================ client */

struct th_ddb {
  th_ddb_codec *codec;
  th_http *http;
  th_http_url url;
  char *url_text; /* scheme://authority/ */
  char *region, *akid, *secret, *token;
  th_ddb_retry retry;
  int quota;
  uint64_t rng;
  th_sigv4_key key; /* kSigning of the current UTC day, derived once a day */
};

static char *dup_str(const char *s) { return s ? strdup(s) : NULL; }

static void wipe_free(char *s) {
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

th_ddb *th_ddb_new(const th_ddb_config *cfg, char *err, size_t errlen) {
  th_ddb *d = calloc(1, sizeof *d);
  const char *why = NULL;
  if (!d) {
    snprintf(err, errlen, "dynamodb: out of memory");
    return NULL;
  }
  if (!cfg->endpoint || th_http_parse_url(cfg->endpoint, &d->url, &why) != TH_OK) {
    snprintf(err, errlen, "dynamodb: invalid endpoint URL: %s", why ? why : "missing");
    goto fail;
  }
  if (!cfg->region || !*cfg->region || !cfg->access_key_id || !*cfg->access_key_id ||
      !cfg->secret_access_key || !*cfg->secret_access_key) {
    snprintf(err, errlen, "dynamodb: region and credentials are required");
    goto fail;
  }
  size_t n = strlen(d->url.scheme) + strlen(d->url.authority) + 8;
  if (!(d->url_text = malloc(n)))
    goto nomem;
  snprintf(d->url_text, n, "%s://%s/", d->url.scheme, d->url.authority);
  d->region = dup_str(cfg->region);
  d->akid = dup_str(cfg->access_key_id);
  d->secret = dup_str(cfg->secret_access_key);
  d->token = cfg->session_token && *cfg->session_token ? dup_str(cfg->session_token) : NULL;
  if (!d->region || !d->akid || !d->secret || (cfg->session_token && *cfg->session_token && !d->token))
    goto nomem;
  d->retry = th_ddb_retry_standard(cfg->max_attempts);
  d->quota = QUOTA_MAX;
  if (getrandom(&d->rng, sizeof d->rng, GRND_NONBLOCK) != (ssize_t)sizeof d->rng)
    d->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)d;
  d->rng |= 1;
  if (!(d->codec = th_ddb_codec_new()))
    goto nomem;
  th_http_options ho = {.connect_timeout_ms = cfg->connect_timeout_ms, .timeout_ms = cfg->timeout_ms,
                        .user_agent = "taskhost (DynamoDB)"};
  if (!(d->http = th_http_new(&ho, err, errlen)))
    goto fail;
  return d;
nomem:
  snprintf(err, errlen, "dynamodb: out of memory");
fail:
  th_ddb_free(d);
  return NULL;
}

void th_ddb_free(th_ddb *d) {
  if (!d)
    return;
  th_http_free(d->http);
  th_ddb_codec_free(d->codec);
  explicit_bzero(&d->key, sizeof d->key);
  free(d->url_text);
  free(d->region);
  wipe_free(d->akid);
  wipe_free(d->secret);
  wipe_free(d->token);
  free(d);
}

th_ddb_codec *th_ddb_get_codec(th_ddb *d) { return d->codec; }

th_http_stats th_ddb_http_stats(const th_ddb *d) { return th_http_get_stats(d->http); }

void th_ddb_outcome_free(th_ddb_outcome *o) {
  if (!o)
    return;
  free(o->body);
  o->body = NULL;
  o->len = 0;
}

/* xorshift64*: jitter only, not secrets. */
static double rand01(th_ddb *d) {
  d->rng ^= d->rng >> 12;
  d->rng ^= d->rng << 25;
  d->rng ^= d->rng >> 27;
  return (double)((d->rng * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

static int stopped(const atomic_int *stop) { return stop && atomic_load(stop); }

/* Sleeps ms (whole milliseconds are enough for a backoff; ms is at most the
 * backoff cap), in slices of at most STOP_CHECK_MS so that a raised stop flag
 * ends the sleep soon. */
static void sleep_ms(double ms, const atomic_int *stop) {
  int64_t whole, left;
  if (!(ms > 0) || !th_double_to_int64(floor(ms), &whole))
    return;
  double until = th_now_ms() + (double)whole;
  while (!stopped(stop) && th_double_to_int64(ceil(until - th_now_ms()), &left) && left > 0) {
    int64_t slice = left < STOP_CHECK_MS ? left : STOP_CHECK_MS;
    struct timespec ts = {(time_t)(slice / 1000), (long)(slice % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
      ;
  }
}

/* Replaces every occurrence of `secret` in s (in place) with "***". */
static void scrub_one(char *s, const char *secret) {
  size_t n = secret ? strlen(secret) : 0;
  char *p;
  if (n < MIN_SECRET_TO_SCRUB)
    return;
  while ((p = strstr(s, secret))) {
    memcpy(p, "***", 3);
    memmove(p + 3, p + n, strlen(p + n) + 1);
  }
}

/* A message cut short may end in the first part of a secret: drop it. */
static void scrub_tail(char *s, const char *secret) {
  size_t n = secret ? strlen(secret) : 0, len = strlen(s);
  if (n < MIN_SECRET_TO_SCRUB)
    return;
  for (size_t k = (len < n - 1 ? len : n - 1); k >= 4; k--)
    if (memcmp(s + len - k, secret, k) == 0) {
      memcpy(s + len - k, "***", 4);
      return;
    }
}

static void scrub(th_ddb *d, char *s) {
  const char *secrets[] = {d->secret, d->token, d->akid};
  for (size_t i = 0; i < TH_ARRAY_LEN(secrets); i++) {
    scrub_one(s, secrets[i]);
    scrub_tail(s, secrets[i]);
  }
  one_line(s);
}

/* Signs and sends one attempt. */
static th_result attempt(th_ddb *d, const char *op, const char *body, size_t len, double deadline,
                         const atomic_int *stop, th_http_resp *resp, char *err, size_t errlen) {
  char target[96];
  th_sigv4_result sr;
  th_sigv4_time when;
  const char *why = NULL;
  th_result r;
  memset(&sr, 0, sizeof sr);
  snprintf(target, sizeof target, TARGET_PREFIX "%s", op);
  th_sigv4_header hs[] = {
    {"Host", d->url.authority}, {"Content-Type", CONTENT_TYPE}, {"X-Amz-Target", target}};
  th_sigv4_request rq = {.method = "POST", .path = "/", .headers = hs, .nheaders = 3,
                         .payload = body, .payload_len = len};
  th_sigv4_credentials cr = {d->akid, d->secret, d->token};
  if ((r = th_sigv4_time_from_unix((int64_t)time(NULL), &when)) != TH_OK) {
    snprintf(err, errlen, "the system clock is out of range");
    return TH_ERR_INTERNAL;
  }
  /* On failure the key stays empty and th_sigv4_sign derives it itself
   * (and reports what is wrong). */
  th_sigv4_key_update(&d->key, d->secret, d->region, "dynamodb", &when);
  th_sigv4_params pr = {.region = d->region, .service = "dynamodb", .time = when,
                        .signing_key = &d->key};
  if ((r = th_sigv4_sign(&rq, &cr, &pr, &sr, &why)) != TH_OK) {
    snprintf(err, errlen, "cannot sign the request: %s", why ? why : th_result_name(r));
    return r == TH_ERR_NOMEM ? r : TH_ERR_INTERNAL;
  }
  th_http_header hh[3 + TH_SIGV4_MAX_ADDED];
  size_t nh = 0;
  for (size_t i = 0; i < 3; i++)
    hh[nh++] = (th_http_header){hs[i].name, hs[i].value};
  for (size_t i = 0; i < sr.nheaders; i++)
    hh[nh++] = (th_http_header){sr.headers[i].name, sr.headers[i].value};
  th_http_req hr = {.method = "POST", .url = d->url_text, .headers = hh, .nheaders = nh,
                        .body = body, .body_len = len, .deadline_ms = deadline, .stop = stop};
  r = th_http_send(d->http, &hr, resp, err, errlen);
  th_sigv4_result_free(&sr);
  return r;
}

/* The response's crc32 header, when present, must match its body. */
static int crc_ok(const th_http_resp *resp) {
  if (!resp->crc32[0])
    return 1;
  char *end = NULL;
  errno = 0;
  unsigned long long want = strtoull(resp->crc32, &end, 10);
  if (errno || !end || *end || want > 0xFFFFFFFFull)
    return 0;
  return th_ddb_crc32(resp->body, resp->body_len) == (uint32_t)want;
}

static long retry_after(const th_http_resp *resp) {
  char *end = NULL;
  if (!resp->retry_after[0])
    return -1;
  errno = 0;
  long v = strtol(resp->retry_after, &end, 10);
  return errno || !end || *end || v < 0 ? -1 : v;
}

th_result th_ddb_call(th_ddb *d, const char *op, const char *body, double deadline_ms,
                      const atomic_int *stop_flag, th_ddb_outcome *out) {
  th_ddb_outcome o;
  th_result r = TH_ERR_INTERNAL;
  size_t len = body ? strlen(body) : 0;
  int last_cost = 0;
  char what[300];
  /* A transaction that may have landed is resent only with its token. */
  int retry_safe = strcmp(op, "TransactWriteItems") != 0 ||
                   (body && strstr(body, "\"ClientRequestToken\":"));
  memset(&o, 0, sizeof o);
  for (int attempt_no = 1;; attempt_no++) {
    th_http_resp resp;
    char terr[256] = "";
    int timeout = 0, unresolved = 0;
    long ra = -1;
    memset(&resp, 0, sizeof resp);
    o.attempts = attempt_no;
    memset(&o.error, 0, sizeof o.error);
    r = attempt(d, op, body ? body : "", len, deadline_ms, stop_flag, &resp, terr, sizeof terr);
    if (r == TH_OK) {
      o.error.status = resp.status;
      if (resp.resent) /* libcurl sent it twice: the first may have landed */
        o.maybe_applied = 1;
      int ok2xx = resp.status >= 200 && resp.status < 300;
      if (ok2xx && crc_ok(&resp)) {
        o.body = resp.body;
        o.len = resp.body_len;
        d->quota += last_cost ? last_cost : QUOTA_SUCCESS_REFUND;
        if (d->quota > QUOTA_MAX)
          d->quota = QUOTA_MAX;
        *out = o;
        return TH_OK;
      }
      if (ok2xx) { /* damaged on the way: the SDKs retry */
        o.error.kind = TH_DDB_TRANSIENT;
        copy_cut(o.error.code, sizeof o.error.code, "Crc32Mismatch");
        copy_cut(o.error.message, sizeof o.error.message, "response body fails its x-amz-crc32 check");
      } else {
        th_ddb_error_decode(d->codec, resp.status, resp.errortype, resp.body, resp.body_len,
                            &o.error);
        if (o.error.kind == TH_DDB_NONE) /* 1xx/3xx: not an answer we can use */
          o.error.kind = TH_DDB_OTHER;
        if (IN(o.error.code, signature_codes))
          copy_cut(o.error.message, sizeof o.error.message,
                   "(message withheld: it may quote signed headers)");
        scrub(d, o.error.message);
      }
      ra = retry_after(&resp);
      snprintf(what, sizeof what, "%s (HTTP %ld%s%s)",
               o.error.code[0] ? o.error.code : th_ddb_kind_name(o.error.kind), resp.status,
               resp.request_id[0] ? ", request id " : "", resp.request_id);
      th_http_resp_free(&resp);
      r = th_ddb_kind_result(o.error.kind);
    } else {
      /* No response. Only a broken or timed-out exchange is retried. */
      scrub(d, terr);
      snprintf(what, sizeof what, "%s", terr);
      if (r == TH_ERR_UNAVAILABLE) {
        o.error.kind = TH_DDB_TRANSIENT;
        timeout = strncmp(terr, "timed out", 9) == 0; /* th_http_send's wording */
        unresolved = th_http_unresolved(d->http);
      }
    }
    th_ddb_kind kind = o.error.kind;
    if (kind == TH_DDB_THROTTLING)
      o.throttled++;
    const char *stop = NULL;
    double delay = 0;
    if (!th_ddb_retryable(kind) || r == TH_ERR_TIMEOUT)
      stop = "";
    else if (!retry_safe)
      stop = "; a transaction without ClientRequestToken is never retried";
    else if (stopped(stop_flag)) {
      stop = "; stopped before a retry";
      r = TH_ERR_TIMEOUT;
    } else if (attempt_no >= d->retry.max_attempts)
      stop = "; no attempts left";
    else {
      int cost = timeout ? QUOTA_TIMEOUT_COST : QUOTA_RETRY_COST;
      delay = th_ddb_backoff_ms(&d->retry, attempt_no, kind == TH_DDB_THROTTLING, rand01(d), ra);
      if (d->quota < cost)
        stop = "; retry quota used up";
      else if (deadline_ms > 0 && th_now_ms() + delay >= deadline_ms)
        stop = "; no time left for a retry before the deadline";
      else {
        d->quota -= cost;
        last_cost = cost;
      }
    }
    if (stop && unresolved) {
      /* Retried like any failure to connect (the SDKs do: a resolver can
       * fail for a moment), but a name that still does not resolve is a
       * wrong endpoint or region, not an outage: a 500, said as such. */
      r = TH_ERR_INTERNAL;
      put_line(o.detail, sizeof o.detail,
               "%s: the endpoint's host %s does not resolve (%s) after %d attempt%s%s; check "
               "AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL or AWS_REGION",
               op, d->url.host, what, attempt_no, attempt_no == 1 ? "" : "s", stop);
    } else if (stop) {
      put_line(o.detail, sizeof o.detail, "%s: %s after %d attempt%s%s%s%s", op, what, attempt_no,
               attempt_no == 1 ? "" : "s", stop, o.error.message[0] ? ": " : "", o.error.message);
    }
    if (stop) {
      one_line(o.detail);
      *out = o;
      return r;
    }
    if (kind == TH_DDB_TRANSIENT && !unresolved) /* unresolved: nothing was sent */
      o.maybe_applied = 1;
    th_log_field f[] = {TH_LOG_STR("op", op), TH_LOG_NUM("attempt", attempt_no),
                        TH_LOG_NUM("maxAttempts", d->retry.max_attempts),
                        TH_LOG_STR("error", what), TH_LOG_NUM("delayMs", trunc(delay))};
    th_log(TH_LOG_WARN, NULL, "dynamodb: retrying", f, (int)TH_ARRAY_LEN(f));
    sleep_ms(delay, stop_flag);
  }
}
