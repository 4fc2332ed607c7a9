/* store — the storage contract every backend implements (sqlite, dynamodb).
 *
 * Items travel as DynamoDB AttributeValue maps serialised as JSON text, e.g.
 *   {"id":{"S":"6f1c..."},"created_at":{"N":"1703001234"},"done":{"BOOL":false}}
 * This is exactly DynamoDB's wire form, so numbers stay exact decimal strings
 * and both backends hold the same data.
 *
 * Keys: every item belongs to an owner. Its key is (owner, id): the owner is
 * the partition (DynamoDB attribute `user_id`), the string attribute `id` the
 * sort key, 1..TH_STORE_MAX_ID bytes without NUL (any other id is
 * TH_ERR_INVALID). Every operation acts only inside s->owner, which the
 * caller (the host, per request) sets; an operation with an empty s->owner
 * is a programming error: TH_ERR_INTERNAL, with a detail, never a default.
 * The same id under two owners is two items. Items handed in and out never
 * hold `user_id`: the backend writes and strips it, and an item or fields
 * that name it are TH_ERR_INVALID — no caller can forge the key.
 *
 * Every operation is atomic. A failed condition is a normal result, not an
 * error: create → TH_ERR_EXISTS, get/update/remove → TH_ERR_NOT_FOUND.
 * Failures: TH_ERR_THROTTLED / TH_ERR_UNAVAILABLE (the route answers 503),
 * TH_ERR_INVALID (400), anything else (500). On any result other than TH_OK the
 * output pointers are left untouched, and s->error holds a one-line detail for
 * the operator's log (never for the client).
 *
 * Versions (ETag / If-Match): each item has a version the backend keeps
 * beside it, never in the item: create writes 1, every update adds 1; an
 * item written before versions existed counts as 1. An item or fields that
 * name the attribute `version` are TH_ERR_INVALID, as for `user_id`. get, create and update
 * leave the version of the item they handed back (or wrote) in s->version.
 * With s->match.active (the host sets it per request from If-Match), update
 * and remove act only when the item exists and its version is one of
 * s->match.versions (or, with s->match.any, whatever it is), checked in the
 * same statement or conditional request as the write; otherwise they change
 * nothing and return TH_ERR_PRECONDITION (a missing item included, as RFC
 * 9110 §13.1.1 says).
 *
 * Idempotency records (optional ops, NULL when a backend has none): one per
 * (owner, key), beside the owner's items but never one of them (never listed,
 * counted or reachable by id). idem_begin claims the key for this request or
 * says what an earlier request with it left; idem_commit writes the task the
 * request deferred (th_store_idem.pending_*) and completes the record with
 * the response, in one transaction; idem_release drops a claim that wrote
 * nothing. See th_store_idem.
 *
 * Ownership: strings returned through `char **` are malloc'd; the caller frees.
 * A th_store is used by one thread at a time (one per worker).
 */
#ifndef TH_STORE_H
#define TH_STORE_H

#include <stdatomic.h>

#include "common.h"

/* DynamoDB's limit on a sort key (the UTF-8 bytes of an S value), and `id`
 * is the table's sort key: any item the table can hold is one the store can
 * read, list and page past (a cursor holds TH_CURSOR_MAX_KEY). */
#define TH_STORE_MAX_ID 1024
/* The longest owner (UTF-8 bytes, no NUL): within DynamoDB's 2048-byte
 * partition key, and far above any JWT `sub` (Cognito's is a 36-byte UUID). */
#define TH_STORE_MAX_OWNER 1024
/* The owner of every item when auth is off. */
#define TH_STORE_PUBLIC_OWNER "public"
/* The attribute that holds the owner in DynamoDB; reserved in items. */
#define TH_STORE_OWNER_ATTR "user_id"

typedef struct th_store th_store;
struct lua_State;

/* What one request's store operations cost (the metrics of metrics.h): the
 * operations the route made (counted by the store module, lua_store.c) and
 * those the host makes around it for an Idempotency-Key (claim, commit,
 * release: host.c), and their total time; the retries the backend made inside them (DynamoDB:
 * attempts after the first; SQLite: waits for a lock held by another
 * connection) and the attempts answered with a throttling error (DynamoDB
 * only). */
typedef struct th_store_stats {
  unsigned calls;
  unsigned retries;
  unsigned throttles;
  double latency_ms;
} th_store_stats;

/* An If-Match condition (precond.h parses the header into it). */
#define TH_STORE_MAX_MATCH 16
typedef struct th_store_match {
  int active;    /* 0: no condition */
  int any;       /* "*": the item exists */
  int n;         /* versions[0..n): one must be the item's (n == 0, !any: never) */
  long long versions[TH_STORE_MAX_MATCH];
} th_store_match;

/* What idem_begin found for the key. */
typedef enum th_idem_state {
  TH_IDEM_NEW,       /* claimed: in progress for this request */
  TH_IDEM_REPLAY,    /* completed with this fingerprint: *response_out holds the answer */
  TH_IDEM_MISMATCH,  /* the key was used with another request (fingerprint) */
  TH_IDEM_IN_FLIGHT  /* in progress for another request still within its deadline */
} th_idem_state;

/* One keyed request. Times are wall-clock (epoch): a record outlives the
 * process that wrote it. */
typedef struct th_store_idem {
  char key[256];           /* the Idempotency-Key, 1..255 visible ASCII */
  char fingerprint[65];    /* hex SHA-256 of the request (precond.h) */
  char token[40];          /* this request's claim (its request id, cut) */
  long long now_ms;        /* epoch ms, when the request began */
  long long expires_at;    /* epoch s: after it the record is as if absent */
  long long locked_until_ms; /* epoch ms: the claim's deadline; after it, another
                                request with the key may take it over */
  /* The create the route asked for while the key was claimed: held here
   * (malloc'd, owned by this struct) and written by idem_commit. */
  char *pending_id;
  char *pending_item;
} th_store_idem;

/* Optional, for a backend that decodes JSON responses anyway (dynamodb): the
 * read results of get, update, remove and scan handed over decoded on the
 * caller's Lua state (set up by th_json_setup) instead of as text, so they
 * are not encoded only to be decoded again. Same arguments, results, checks,
 * s->error and failure rules as the text operations; never raise. On TH_OK:
 * get/update/remove push the AV map table (what decoding *_out would give,
 * arrays marked); scan appends the page's items to the table on top of L
 * (which stays there), each already the plain item th_av_push_plain_item
 * makes of its AV map (lua_modules.h), and sets *last_id_out. On failure L
 * is as it was, except that scan's table may hold part of the page. */
typedef struct th_store_lua_ops {
  th_result (*get)(th_store *s, const char *id, struct lua_State *L);
  th_result (*update)(th_store *s, const char *id, const char *fields, struct lua_State *L);
  th_result (*remove)(th_store *s, const char *id, struct lua_State *L);
  th_result (*scan)(th_store *s, int limit, const char *after_id, struct lua_State *L,
                    char **last_id_out);
} th_store_lua_ops;

typedef struct th_store_ops {
  /* item: AV map JSON that contains "id":{"S":id}. Creates only if absent. */
  th_result (*create)(th_store *s, const char *id, const char *item);
  /* *item_out: AV map JSON of the item. */
  th_result (*get)(th_store *s, const char *id, char **item_out);
  /* fields: AV map JSON of the attributes to set (never "id"); the other
   * attributes are kept. Only if the item exists. *item_out: the new item. */
  th_result (*update)(th_store *s, const char *id, const char *fields, char **item_out);
  /* Deletes only if present. *old_out: the item as it was. */
  th_result (*remove)(th_store *s, const char *id, char **old_out);
  /* One page of at most `limit` (1..1000) of the owner's items, newest
   * first: in descending byte order of id (UUIDv7 ids sort by creation
   * time; other ids, such as v4, sort among them by their bytes), starting
   * after the id `after_id` (NULL: from the newest). *items_out: JSON array
   * of AV maps. *last_id_out: the id to pass as after_id for the next page,
   * or NULL when no items remain after this page. Paging through visits
   * every item that exists throughout exactly once; an item created during
   * the paging with an id above the page's (a new UUIDv7) lands before the
   * position reached, so later pages do not return it. */
  th_result (*scan)(th_store *s, int limit, const char *after_id, char **items_out,
                    char **last_id_out);
  void (*close)(th_store *s); /* frees s */
  const th_store_lua_ops *lua; /* optional (NULL): see th_store_lua_ops */
  /* Optional (all NULL or none). Atomic each. idem_begin: *response_out
   * (malloc'd) only for TH_IDEM_REPLAY. idem_commit: TH_ERR_EXISTS when the
   * pending id is taken, TH_ERR_PRECONDITION when the claim is no longer
   * this request's (taken over after its deadline); neither writes
   * anything. idem_release: deletes the record only while it is this
   * request's claim (TH_OK also when it no longer is). */
  th_result (*idem_begin)(th_store *s, const th_store_idem *r, th_idem_state *state,
                          char **response_out);
  th_result (*idem_commit)(th_store *s, const th_store_idem *r, const char *response);
  th_result (*idem_release)(th_store *s, const th_store_idem *r);
} th_store_ops;

struct th_store {
  const th_store_ops *ops;
  /* Names the data set ("sqlite:/abs/path.db", "dynamodb:Table"); cursors are
   * bound to it so a cursor from another table is rejected. */
  char identity[512];
  /* The owner every operation acts inside (see Keys above). The host sets it
   * per request, as it sets deadline_ms (th_store_set_owner), and empties it
   * after; cursors are bound to it too. */
  char owner[TH_STORE_MAX_OWNER + 1];
  char error[512]; /* detail of the last failure, for the log */
  /* th_now_ms() time by which each operation must have ended (the host sets
   * it per request, a little before the route's own deadline: see host.c);
   * 0 = only the backend's own timeouts. A backend gives up with
   * TH_ERR_TIMEOUT rather than pass it: a wait for a lock ends, a request in
   * flight is cut (a write cut short may or may not have been applied). */
  double deadline_ms;
  /* NULL, or a flag raised by the store's owner (--serve: "stop now", on a
   * second SIGINT/SIGTERM). Once it reads non-zero, an operation stops
   * waiting — for a lock, for an answer (within 50 ms, see http.h), for a
   * retry — as it would at its deadline, with TH_ERR_TIMEOUT. */
  const atomic_int *stop;
  /* NULL, or where the request's store costs are added up (the host sets it
   * per request, as it sets deadline_ms). */
  th_store_stats *stats;

  /* Per request, set and cleared by the host (see Versions above). */
  th_store_match match;
  long long version;        /* out: see Versions; 0 when none */
  int match_failed;         /* out: an update or remove met TH_ERR_PRECONDITION
                               (lua_store.c sets it; the host answers 412) */
  /* Non-NULL while a request holds an idempotency claim: the store module
   * (lua_store.c) defers a create into it instead of writing. */
  th_store_idem *idem;
};

/* Binds s to `owner` (NULL: TH_STORE_PUBLIC_OWNER, auth off). TH_ERR_INVALID,
 * and s->owner emptied (so every operation fails), for an empty owner or one
 * longer than TH_STORE_MAX_OWNER bytes. */
th_result th_store_set_owner(th_store *s, const char *owner);

/* The request's store costs (th_store_stats): th_store_call_start is when an
 * operation starts (0 when s->stats is NULL: nobody counts); after it,
 * whatever its outcome, th_store_count_call adds one call and its time to
 * s->stats. Used for the route's operations (lua_store.c) and for those the
 * host makes itself around the route (an Idempotency-Key's claim, commit and
 * release, host.c). */
double th_store_call_start(const th_store *s);
void th_store_count_call(th_store *s, double t0);

/* Opens the SQLite backend on the file at `path` (created if absent; WAL).
 * A file of the earlier id-keyed schema is migrated in place at open, in one
 * transaction: its items go to the owner TH_STORE_PUBLIC_OWNER.
 * On failure returns NULL and writes a one-line reason into err. */
th_store *th_store_sqlite_open(const char *path, char *err, size_t errlen);

#endif
