/* dynamodb — the DynamoDB JSON protocol (awsJson1_0) for the five
 * operations the store needs (PutItem, GetItem, UpdateItem, DeleteItem,
 * Query, and TransactWriteItems for idempotency records), with AttributeValue marshalling, error
 * decoding and the AWS SDKs' standard retries.
 *
 * Three layers, each usable alone (the unit tests use the first two):
 *   - pure helpers: error classification, retry policy and backoff, CRC32,
 *     decimal number canonicalisation;
 *   - a codec (th_ddb_codec): request bodies from the store's AV-map JSON
 *     text, and items out of response bodies. JSON goes through lua-cjson on
 *     a private lua_State. AV numbers are JSON strings ({"N":"1.5"}), so
 *     cjson never sees them as numbers and they stay exact; every L, SS, NS
 *     and BS array is marked while the value is checked (a type-directed
 *     walk), so an empty list stays [] when re-encoded. Each AttributeValue
 *     is checked: one type key among S N B BOOL NULL L M SS NS BS with a
 *     value of the right JSON type (DynamoDB itself judges the rest, e.g.
 *     number syntax, set uniqueness, sizes). cjson cannot tell an empty {}
 *     from an empty [], so {"L":{}} reads as an empty list and {"M":[]} as
 *     an empty map.
 *   - a client (th_ddb): POST / with X-Amz-Target DynamoDB_20120810.<Op>
 *     and Content-Type application/x-amz-json-1.0, signed with SigV4
 *     (service "dynamodb"), sent over one reused th_http handle, retried as
 *     the SDKs' standard mode does, within the caller's deadline.
 *
 * Retries (th_ddb_call): throttling errors (the SDKs' list:
 * ProvisionedThroughputExceededException, ThrottlingException,
 * RequestLimitExceeded, LimitExceededException, TransactionInProgress, ...),
 * HTTP 500/502/503/504, the transient codes (RequestTimeout,
 * InternalServerError, ServiceUnavailable, ReplicatedWriteConflict, ...),
 * connection failures and per-request timeouts, and a 200 whose body fails
 * its x-amz-crc32 check. At most max_attempts attempts (AWS_MAX_ATTEMPTS,
 * default 3). Before attempt n+1 it sleeps random(0,1) * min(base * 2^(n-1),
 * 20 s), base 25 ms (DynamoDB's non-throttling base in botocore) or 1 s after
 * a throttling error, and at least the server's x-amz-retry-after (capped at
 * that delay + 5 s). A retry quota per client (500 tokens; a retry costs 5,
 * 10 after a timeout; a success refunds) stops retry storms. A retry whose
 * sleep would pass the deadline is not made: the last error is returned.
 * Each retry is logged at WARN (operation, attempt, error code; never a
 * header, a key or a token).
 *
 * Ownership: strings returned through char ** are malloc'd; the caller frees.
 * Inputs are borrowed. A codec or client is used by one thread at a time.
 */
#ifndef TH_DYNAMODB_H
#define TH_DYNAMODB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "http.h"
#include "store.h"

#define TH_DDB_DEFAULT_ATTEMPTS 3
#define TH_DDB_MAX_ATTEMPTS 20
#define TH_DDB_MAX_UPDATE_FIELDS 300 /* the update expression must stay under 4 KB */
#define TH_DDB_MAX_DEPTH 128         /* JSON nesting read from responses */

/* ------------------------------------------------------------- errors */

typedef enum th_ddb_kind {
  TH_DDB_NONE = 0,   /* no error */
  TH_DDB_CONDITION,  /* ConditionalCheckFailedException */
  TH_DDB_THROTTLING, /* retried; then TH_ERR_THROTTLED */
  TH_DDB_TRANSIENT,  /* retried; then TH_ERR_UNAVAILABLE */
  TH_DDB_INVALID,    /* the request's content was refused (Validation, Serialization) */
  TH_DDB_AUTH,       /* credentials, signature or permissions: TH_ERR_INTERNAL */
  TH_DDB_NO_TABLE,   /* ResourceNotFoundException (a deployment error): TH_ERR_INTERNAL */
  TH_DDB_BUSY,       /* TransactionConflict: not retried, TH_ERR_UNAVAILABLE */
  TH_DDB_OTHER       /* anything else: TH_ERR_INTERNAL */
} th_ddb_kind;

/* The error code of a response: the X-Amzn-Errortype header, else the body's
 * "code", else its "__type"; cut at the first ':' and after the last '#'.
 * The message: the body's "message", else "Message". */
/* TransactionCanceledException: the body's CancellationReasons, one Code
 * per action of the transaction in order ("None", "ConditionalCheckFailed",
 * "TransactionConflict", ...); the kind is TH_DDB_CONDITION when one of them
 * is ConditionalCheckFailed, TH_DDB_BUSY otherwise (a conflict, throttling
 * of one item: not retried; the caller answers 503). */
#define TH_DDB_MAX_REASONS 8
typedef struct th_ddb_error {
  th_ddb_kind kind;
  long status;        /* HTTP status; 0 when no response arrived */
  char code[128];     /* "ProvisionedThroughputExceededException", or "" */
  char message[256];  /* one line, control characters blanked, or "" */
  int n_reasons;      /* TransactionCanceledException: reasons[0..n_reasons) */
  char reasons[TH_DDB_MAX_REASONS][40];
} th_ddb_error;

/* Classifies an error response (or a status alone, code ""). Pure. */
th_ddb_kind th_ddb_classify(long status, const char *code);
/* The store result for a kind; TH_DDB_CONDITION gives TH_ERR_EXISTS (update
 * and remove read it as TH_ERR_NOT_FOUND). Pure. */
th_result th_ddb_kind_result(th_ddb_kind kind);
/* Whether the SDKs retry this kind (throttling or transient). Pure. */
int th_ddb_retryable(th_ddb_kind kind);
/* The short name of a kind ("throttling", ...). */
const char *th_ddb_kind_name(th_ddb_kind kind);

/* ------------------------------------------------------------- retries */

typedef struct th_ddb_retry {
  int max_attempts;        /* 1..TH_DDB_MAX_ATTEMPTS */
  double base_ms;          /* 25 */
  double throttle_base_ms; /* 1000 */
  double max_backoff_ms;   /* 20000 */
} th_ddb_retry;

/* The standard policy with max_attempts attempts (0: the default). */
th_ddb_retry th_ddb_retry_standard(int max_attempts);

/* The sleep before the next attempt, after attempt `attempt` (1-based)
 * failed: r01 * min(base * 2^(attempt-1), max_backoff), base chosen by
 * `throttling`; with retry_after_ms >= 0 (x-amz-retry-after), at least
 * min(retry_after_ms, that + 5000). r01 is a random number in [0, 1). Pure. */
double th_ddb_backoff_ms(const th_ddb_retry *p, int attempt, int throttling, double r01,
                         long retry_after_ms);

/* --------------------------------------------------------- pure helpers */

/* CRC-32 (IEEE 802.3, as zlib and x-amz-crc32). */
uint32_t th_ddb_crc32(const void *p, size_t n);

/* Appends the canonical form of a DynamoDB number ("-0012.50e1" → "-125",
 * "0.0" → "0", "1e-3" → "1e-3") so that two N strings hold the same value
 * exactly when their canonical forms are equal. TH_ERR_INVALID when `n` is
 * not a decimal number. */
th_result th_ddb_number_canon(const char *n, th_buf *out);

/* --------------------------------------------------------------- codec */

typedef struct th_ddb_codec th_ddb_codec;

th_ddb_codec *th_ddb_codec_new(void); /* NULL when out of memory */
void th_ddb_codec_free(th_ddb_codec *c);

/* Request bodies (JSON text, caller frees). The table's key is partition
 * "user_id" (TH_STORE_OWNER_ATTR) = `owner`, sort "id" = `id`: every Key is
 * {"user_id":{"S":owner},"id":{"S":id}}. `item` must be an AV map holding
 * exactly "id":{"S":id}; `fields` an AV map without "id"; neither may hold
 * "user_id" (the owner is the caller's, never the content's). TH_ERR_INVALID
 * when the text breaks the rules, with the reason in `why`. */
/* PutItem of the item with "user_id":{"S":owner} added, ConditionExpression
 * attribute_not_exists(id): the condition is evaluated on the item with the
 * same whole key, so an id taken under another owner does not fail it. */
th_result th_ddb_body_put(th_ddb_codec *c, const char *table, const char *owner, const char *id,
                          const char *item, char **body, char *why, size_t whylen);
/* GetItem, ConsistentRead. */
th_result th_ddb_body_get(th_ddb_codec *c, const char *table, const char *owner, const char *id,
                          char **body, char *why, size_t whylen);
/* DeleteItem, attribute_exists(id), ReturnValues ALL_OLD. */
th_result th_ddb_body_delete(th_ddb_codec *c, const char *table, const char *owner,
                             const char *id, char **body, char *why, size_t whylen);
/* UpdateItem: SET #n0 = :v0, ... (a placeholder for every name and value),
 * attribute_exists(id) (so an absent item is never created), ReturnValues
 * ALL_NEW. Each attribute is replaced whole. Empty `fields` ({}) give TH_OK
 * with *body = NULL: nothing to send. More than TH_DDB_MAX_UPDATE_FIELDS
 * fields: TH_ERR_INVALID. */
th_result th_ddb_body_update(th_ddb_codec *c, const char *table, const char *owner,
                             const char *id, const char *fields, char **body, char *why,
                             size_t whylen);
/* Versions (store.h): an item's version is the N attribute "version"
 * (TH_DDB_VERSION_ATTR). PutItem writes 1; UpdateItem adds
 * `#ver = if_not_exists(#ver, 1) + 1` to its SET. The *_if forms take an
 * If-Match condition (NULL or inactive: none; any: exists): the
 * ConditionExpression becomes attribute_exists(id) AND (version IN (:m0, …)
 * [OR attribute_not_exists(version) when 1 is listed: an item written
 * before versions is version 1]). A match with no versions (never true) is
 * the caller's to refuse without a request. Items read back (parse_item,
 * parse_scan, push_scan) never hold it; push_item keeps it for the store to
 * take out. */
#define TH_DDB_VERSION_ATTR "version"
th_result th_ddb_body_update_if(th_ddb_codec *c, const char *table, const char *owner,
                                const char *id, const char *fields, const th_store_match *match,
                                char **body, char *why, size_t whylen);
th_result th_ddb_body_delete_if(th_ddb_codec *c, const char *table, const char *owner,
                                const char *id, const th_store_match *match, char **body,
                                char *why, size_t whylen);
/* Query of the owner's partition (KeyConditionExpression user_id = :u AND
 * id < TH_DDB_IDEM_BOUND: never an idempotency record),
 * newest first (ScanIndexForward false: descending id), ConsistentRead,
 * Limit, and ExclusiveStartKey {"user_id":owner, "id":after_id} when
 * after_id is not NULL. */
th_result th_ddb_body_query(th_ddb_codec *c, const char *table, const char *owner, int limit,
                            const char *after_id, char **body, char *why, size_t whylen);

/* Idempotency records (store.h) on DynamoDB. A record is an item of the
 * owner's partition whose id is TH_DDB_IDEM_PREFIX followed by the key:
 * U+10FFFF (UTF-8 F4 8F BF BF), the highest code point, so every record id
 * sorts above every string that does not start with it. The Query above
 * bounds its KeyCondition with `id < TH_DDB_IDEM_PREFIX`, so a list never
 * reads a record, and the store refuses that prefix as a task id.
 * Attributes: status (S IN_PROGRESS | COMPLETED), fingerprint (S), token
 * (S, the claim), expires_at (N epoch s: the table's TTL attribute),
 * locked_until_ms (N epoch ms), response (S, the stored answer's JSON text,
 * once COMPLETED). */
#define TH_DDB_IDEM_PREFIX "\xF4\x8F\xBF\xBF" "idem:"
#define TH_DDB_IDEM_BOUND "\xF4\x8F\xBF\xBF"
/* PutItem of an IN_PROGRESS record for r, only when none is there, or it
 * has expired (expires_at <= now), or it is in progress past its
 * locked_until_ms (a dead request's claim: taken over). */
th_result th_ddb_body_idem_claim(th_ddb_codec *c, const char *table, const char *owner,
                                 const char *rec_id, const th_store_idem *r, char **body,
                                 char *why, size_t whylen);
/* TransactWriteItems, ClientRequestToken r->token (a retry after a lost
 * answer is then idempotent): [0] Put of r->pending_item (as th_ddb_body_put,
 * attribute_not_exists(id)); [1] Update of the record to COMPLETED with
 * `response`, only while it is IN_PROGRESS with r->token. */
th_result th_ddb_body_idem_commit(th_ddb_codec *c, const char *table, const char *owner,
                                  const char *rec_id, const th_store_idem *r,
                                  const char *response, char **body, char *why, size_t whylen);
/* DeleteItem of the record only while it is IN_PROGRESS with r->token. */
th_result th_ddb_body_idem_release(th_ddb_codec *c, const char *table, const char *owner,
                                   const char *rec_id, const th_store_idem *r, char **body,
                                   char *why, size_t whylen);
/* A record read by GetItem ("Item" of the response). */
typedef struct th_ddb_idem_record {
  int found;
  int completed;            /* status COMPLETED (else IN_PROGRESS) */
  char fingerprint[65];
  char token[40];
  long long expires_at;     /* epoch s */
  long long locked_until_ms;
  char *response;           /* malloc'd when completed, else NULL */
} th_ddb_idem_record;
/* TH_ERR_INTERNAL when the body is not a GetItem response or the record
 * lacks an attribute. */
th_result th_ddb_parse_idem(th_ddb_codec *c, const char *body, size_t len,
                            th_ddb_idem_record *out, char *why, size_t whylen);

/* Items read from responses (below) come without the "user_id" attribute:
 * it is taken out after the item is checked. */

/* The AV map under `member` ("Item", "Attributes") of a response, re-encoded;
 * *item = NULL when the member is absent. TH_ERR_INTERNAL when the body is
 * not a response of the expected shape. */
th_result th_ddb_parse_item(th_ddb_codec *c, const char *body, size_t len, const char *member,
                            char **item, char *why, size_t whylen);

/* One Query (or Scan: the same shape) response, of which the first `take`
 * items are kept. */
typedef struct th_ddb_page {
  size_t count;   /* items kept (<= take) */
  int more;       /* the response held more than `take` items */
  char *items;    /* the kept AV maps joined with ',' (no brackets); "" when none */
  char *last_id;  /* id of the last kept item, or NULL when none was kept */
  char *lek_id;   /* LastEvaluatedKey's id, or NULL when absent */
} th_ddb_page;
th_result th_ddb_parse_scan(th_ddb_codec *c, const char *body, size_t len, size_t take,
                            th_ddb_page *out, char *why, size_t whylen);
void th_ddb_page_free(th_ddb_page *p);

/* The same two without the text round trip, for a caller that would decode
 * the text at once: the response is decoded by cjson on the caller's Lua
 * state L (one set up by th_json_setup; its deep instance reads
 * TH_DDB_MAX_DEPTH levels), checked exactly as above (same results and
 * `why`), and left there as tables, as cjson decodes the text the functions
 * above return (arrays marked). Run protected: they never raise; on
 * failure L is as it was.
 * th_ddb_push_item: TH_OK pushes the AV map table, or nil when the member is
 * absent.
 * th_ddb_push_scan: the table on top of L receives the kept items after
 * its own elements (it stays on top), already turned into plain items (what
 * th_av_push_plain_item gives of each AV map) in the same walk that checks
 * them; out->items is NULL. An N that is not a number, which the text path
 * leaves to th_av_push_plain_item to raise, fails it here instead
 * (TH_ERR_INTERNAL, `why` "... is not a number"). */
struct lua_State;
th_result th_ddb_push_item(struct lua_State *L, const char *body, size_t len, const char *member,
                           char *why, size_t whylen);
th_result th_ddb_push_scan(struct lua_State *L, const char *body, size_t len, size_t take,
                           th_ddb_page *out, char *why, size_t whylen);

/* Decodes an error response (see th_ddb_error). Never fails: what cannot be
 * read stays "". `errortype` may be NULL or "". */
void th_ddb_error_decode(th_ddb_codec *c, long status, const char *errortype, const char *body,
                         size_t len, th_ddb_error *out);

/* Whether two AV maps hold the same item as DynamoDB stores it: same
 * attributes, numbers equal by value, sets equal ignoring order. 1 equal,
 * 0 different, -1 when either text is not an AV map. */
int th_ddb_items_equal(th_ddb_codec *c, const char *a, const char *b);

/* -------------------------------------------------------------- client */

typedef struct th_ddb_config {
  const char *endpoint;          /* "https://dynamodb.eu-west-1.amazonaws.com" */
  const char *region;
  const char *access_key_id;
  const char *secret_access_key;
  const char *session_token;     /* NULL or "" without */
  int max_attempts;              /* 0: TH_DDB_DEFAULT_ATTEMPTS */
  long connect_timeout_ms;       /* 0: TH_HTTP_CONNECT_TIMEOUT_MS */
  long timeout_ms;               /* per attempt; 0: TH_HTTP_TIMEOUT_MS */
} th_ddb_config;

typedef struct th_ddb th_ddb;

/* Copies the configuration; does not connect (the first call does). NULL on
 * failure with a one-line reason (never a secret) in err. */
th_ddb *th_ddb_new(const th_ddb_config *cfg, char *err, size_t errlen);
void th_ddb_free(th_ddb *d);
th_ddb_codec *th_ddb_get_codec(th_ddb *d);
th_http_stats th_ddb_http_stats(const th_ddb *d);

typedef struct th_ddb_outcome {
  char *body;          /* TH_OK: the 200 response body (free with th_ddb_outcome_free) */
  size_t len;
  int attempts;        /* attempts made */
  int throttled;       /* of those, the ones answered with a throttling error */
  int maybe_applied;   /* an earlier attempt failed after it may have been applied
                          (5xx, broken connection, timeout, bad CRC) */
  th_ddb_error error;  /* failure: the last error (kind NONE for a transport failure) */
  char detail[512];    /* failure: one line for the log, secrets removed */
} th_ddb_outcome;

/* Sends operation `op` ("PutItem") with JSON `body`, retrying as described
 * above, ending by deadline_ms (th_now_ms() time; 0: the per-attempt
 * timeouts only), or as soon as *stop (when stop is non-NULL) reads non-zero:
 * the attempt in flight is cut, a retry's sleep ends, no retry is made.
 * TH_OK: out->body holds the response. Otherwise the error's store result
 * (th_ddb_kind_result), or TH_ERR_TIMEOUT when the deadline or stop cut an
 * attempt short (it may have been applied), or the transport's own result;
 * out->error and out->detail say why. A host name that does not resolve is
 * retried like a failed connection (the SDKs retry it too), but when it still
 * does not on the last attempt the result is TH_ERR_INTERNAL, not
 * TH_ERR_UNAVAILABLE: a wrong endpoint or region, which the detail names with
 * the host. *out is always written; free it with th_ddb_outcome_free. */
th_result th_ddb_call(th_ddb *d, const char *op, const char *body, double deadline_ms,
                      const atomic_int *stop, th_ddb_outcome *out);
void th_ddb_outcome_free(th_ddb_outcome *o);

#endif
