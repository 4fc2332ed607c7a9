/* store_dynamodb — see store_dynamodb.h. Every operation is one DynamoDB
 * request (retried by th_ddb_call), except:
 *   - idempotency records (dynamodb.h): a claim that meets a record reads
 *     it (consistent GetItem) to tell replay, mismatch and in-flight apart;
 *     a commit is one TransactWriteItems (the task and the completed
 *     record), and one cancelled after a lost answer reads the record to
 *     tell whether the transaction had landed;
 *   - a create whose retry meets ConditionalCheckFailed after an earlier
 *     attempt may have landed: a consistent GetItem decides whether the item
 *     there is ours (same content: success) or someone else's (EXISTS);
 *   - scan, a Query of the owner's partition, which asks for one item more
 *     than it needs and repeats the request while DynamoDB returns short
 *     pages, so a page is full whenever items remain and last_id is NULL
 *     exactly when none do.
 * Every key is (s->owner, id): see store.h. Versions (store.h) are the
 * attribute TH_DDB_VERSION_ATTR, maintained and conditioned on by the
 * request bodies (dynamodb.h); the Lua operations take it out of the item
 * they push and leave it in s->version (the text ones do not report it).
 */
#include "store_dynamodb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "dynamodb.h"
#include "log.h"

#define MAX_PAGE_BYTES (64u << 20) /* one scan page's JSON text */
#define MAX_QUERY_REQUESTS 10000   /* a page that has not ended by then never will */

typedef struct dd_store {
  th_store base; /* first: a th_store * is a dd_store * */
  th_ddb *d;
  char *table;
} dd_store;

/* The contract wants a one-line detail on every non-OK result. */
static th_result fail(dd_store *q, th_result r, const char *fmt, ...) {
  char msg[sizeof q->base.error - 16];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(q->base.error, sizeof q->base.error, "dynamodb %s", msg);
  for (char *p = q->base.error; *p; p++)
    if ((unsigned char)*p < 0x20)
      *p = ' ';
  return r;
}

/* No operation runs without an owner (store.h). */
static th_result check_id(dd_store *q, const char *what, const char *id) {
  if (!q->base.owner[0])
    return fail(q, TH_ERR_INTERNAL, "%s: no owner bound to the store", what);
  if (!id || !id[0] || strlen(id) > TH_STORE_MAX_ID)
    return fail(q, TH_ERR_INVALID, "%s: id must be 1..%d bytes", what, TH_STORE_MAX_ID);
  return TH_OK;
}

/* An id in the idempotency records' range (dynamodb.h) is never a task's:
 * reading, changing or removing it finds nothing, creating it is refused. */
static int is_record_id(const char *id) {
  return id && strncmp(id, TH_DDB_IDEM_BOUND, sizeof TH_DDB_IDEM_BOUND - 1) == 0;
}

static th_result check_task_id(dd_store *q, const char *what, const char *id, th_result absent) {
  th_result r = check_id(q, what, id);
  if (r == TH_OK && is_record_id(id))
    r = fail(q, absent, "%s: the id is in the idempotency records' range", what);
  return r;
}

/* Sends one operation. A failed condition is returned as TH_ERR_EXISTS with
 * no detail written (each caller words it); anything else failing writes
 * the detail. */
static th_result call(dd_store *q, const char *op, const char *body, th_ddb_outcome *o) {
  th_result r = th_ddb_call(q->d, op, body, q->base.deadline_ms, q->base.stop, o);
  if (q->base.stats) { /* the request's metrics (store.h) */
    q->base.stats->retries += (unsigned)(o->attempts > 1 ? o->attempts - 1 : 0);
    q->base.stats->throttles += (unsigned)o->throttled;
  }
  if (r != TH_OK && o->error.kind != TH_DDB_CONDITION)
    fail(q, r, "%s", o->detail);
  return r;
}

/* Where an item read goes: text (*item, NULL when absent), or, with L, a
 * table pushed on L (nothing pushed when absent). *found says which. */
typedef struct dest {
  lua_State *L;
  char **item;
  int found;
} dest;

/* The version attribute of the AV map on top of d->L, taken out of it into
 * s->version (absent: 1, an item written before versions). */
static void take_version(dd_store *q, lua_State *L) {
  long long v = 1;
  int top = lua_gettop(L);
  if (lua_getfield(L, top, TH_DDB_VERSION_ATTR) == LUA_TTABLE &&
      lua_getfield(L, -1, "N") == LUA_TSTRING) {
    char *end = NULL;
    long long n = strtoll(lua_tostring(L, -1), &end, 10);
    if (end && !*end && n > 0)
      v = n;
  }
  lua_settop(L, top);
  lua_pushnil(L);
  lua_setfield(L, -2, TH_DDB_VERSION_ATTR);
  q->base.version = v;
}

/* Reads one item's AV map from a response member into d. */
static th_result read_item(dd_store *q, const char *op, const th_ddb_outcome *o,
                           const char *member, dest *d) {
  char why[256];
  th_result r;
  if (d->L) {
    r = th_ddb_push_item(d->L, o->body, o->len, member, why, sizeof why);
    if (r == TH_OK && !(d->found = !lua_isnil(d->L, -1)))
      lua_pop(d->L, 1);
    else if (r == TH_OK)
      take_version(q, d->L);
  } else {
    r = th_ddb_parse_item(th_ddb_get_codec(q->d), o->body, o->len, member, d->item, why,
                          sizeof why);
    d->found = r == TH_OK && *d->item;
  }
  if (r != TH_OK)
    return fail(q, r, "%s: unexpected response: %s", op, why);
  return TH_OK;
}

/* A consistent GetItem: TH_OK with the item in d (found 0 when absent). */
static th_result fetch(dd_store *q, const char *id, dest *d) {
  char why[256], *body = NULL;
  th_ddb_outcome o;
  th_result r = th_ddb_body_get(th_ddb_get_codec(q->d), q->table, q->base.owner, id, &body, why,
                                sizeof why);
  if (r != TH_OK)
    return fail(q, r, "GetItem: %s", why);
  r = call(q, "GetItem", body, &o);
  if (r == TH_OK)
    r = read_item(q, "GetItem", &o, "Item", d);
  th_ddb_outcome_free(&o);
  free(body);
  return r;
}

static th_result dd_create(th_store *s, const char *id, const char *item) {
  dd_store *q = (dd_store *)s;
  char why[256], *body = NULL, *stored = NULL;
  th_ddb_outcome o = {0};
  th_result r;
  if ((r = check_task_id(q, "create", id, TH_ERR_INVALID)) != TH_OK)
    return r;
  if ((r = th_ddb_body_put(th_ddb_get_codec(q->d), q->table, q->base.owner, id, item, &body,
                            why, sizeof why)) != TH_OK)
    return fail(q, r, "create: %s", why);
  r = call(q, "PutItem", body, &o);
  if (r == TH_OK) {
    /* A 200 that is not a JSON object did not come from DynamoDB (a proxy,
     * a captive portal): the item may not be there. */
    char *attrs = NULL;
    dest d = {.item = &attrs};
    r = read_item(q, "PutItem", &o, "Attributes", &d);
    free(attrs);
    if (r == TH_OK)
      s->version = 1;
    goto out;
  }
  if (o.error.kind != TH_DDB_CONDITION)
    goto out;
  if (!o.maybe_applied) {
    r = fail(q, TH_ERR_EXISTS, "PutItem: an item with that id exists");
    goto out;
  }
  /* An earlier attempt may have written the item before its answer was
   * lost: if what is there now is what we sent, this create succeeded. */
  dest sd = {.item = &stored};
  if ((r = fetch(q, id, &sd)) != TH_OK)
    goto out;
  int same = stored ? th_ddb_items_equal(th_ddb_get_codec(q->d), stored, item) : 0;
  if (same == 1) {
    th_log_field f[] = {TH_LOG_STR("op", "PutItem"), TH_LOG_NUM("attempts", o.attempts)};
    th_log(TH_LOG_INFO, NULL, "dynamodb: create had landed on an earlier attempt", f,
           (int)TH_ARRAY_LEN(f));
    s->version = 1;
    r = TH_OK;
  } else {
    r = fail(q, TH_ERR_EXISTS, "PutItem: an item with that id exists (and differs from ours)");
  }
out:
  free(stored);
  free(body);
  th_ddb_outcome_free(&o);
  return r;
}

/* An If-Match that names no version can never hold: no request needed. */
static th_result never_matches(dd_store *q, const char *op) {
  const th_store_match *m = &q->base.match;
  if (m->active && !m->any && m->n == 0)
    return fail(q, TH_ERR_PRECONDITION, "%s: If-Match names no version", op);
  return TH_OK;
}

static th_result get_to(th_store *s, const char *id, dest *d) {
  dd_store *q = (dd_store *)s;
  th_result r;
  if ((r = check_task_id(q, "get", id, TH_ERR_NOT_FOUND)) != TH_OK ||
      (r = fetch(q, id, d)) != TH_OK)
    return r;
  if (!d->found)
    return fail(q, TH_ERR_NOT_FOUND, "GetItem: no item with that id");
  return TH_OK;
}

static th_result dd_get(th_store *s, const char *id, char **item_out) {
  char *item = NULL;
  dest d = {.item = &item};
  th_result r = get_to(s, id, &d);
  if (r == TH_OK)
    *item_out = item;
  return r;
}

static th_result dd_get_lua(th_store *s, const char *id, lua_State *L) {
  dest d = {.L = L};
  return get_to(s, id, &d);
}

static th_result update_to(th_store *s, const char *id, const char *fields, dest *d) {
  dd_store *q = (dd_store *)s;
  char why[256], *body = NULL;
  th_ddb_outcome o = {0};
  th_result r;
  if ((r = check_task_id(q, "update", id, q->base.match.active ? TH_ERR_PRECONDITION
                                                                  : TH_ERR_NOT_FOUND)) != TH_OK ||
      (r = never_matches(q, "UpdateItem")) != TH_OK)
    return r;
  r = th_ddb_body_update_if(th_ddb_get_codec(q->d), q->table, q->base.owner, id, fields,
                            &q->base.match, &body, why, sizeof why);
  if (r != TH_OK)
    return fail(q, r, "update: %s", why);
  if (!body) /* nothing to set: the item as it is */
    return get_to(s, id, d);
  r = call(q, "UpdateItem", body, &o);
  if (r != TH_OK) {
    if (o.error.kind == TH_DDB_CONDITION)
      r = q->base.match.active
              ? fail(q, TH_ERR_PRECONDITION, "UpdateItem: If-Match condition failed")
              : fail(q, TH_ERR_NOT_FOUND, "UpdateItem: no item with that id");
    goto out;
  }
  if ((r = read_item(q, "UpdateItem", &o, "Attributes", d)) != TH_OK)
    goto out;
  if (!d->found)
    r = fail(q, TH_ERR_INTERNAL, "UpdateItem: the response holds no Attributes");
out:
  free(body);
  th_ddb_outcome_free(&o);
  return r;
}

static th_result dd_update(th_store *s, const char *id, const char *fields, char **item_out) {
  char *item = NULL;
  dest d = {.item = &item};
  th_result r = update_to(s, id, fields, &d);
  if (r == TH_OK)
    *item_out = item;
  return r;
}

static th_result dd_update_lua(th_store *s, const char *id, const char *fields, lua_State *L) {
  dest d = {.L = L};
  return update_to(s, id, fields, &d);
}

static th_result remove_to(th_store *s, const char *id, dest *d) {
  dd_store *q = (dd_store *)s;
  char why[256], *body = NULL;
  th_ddb_outcome o = {0};
  th_result r;
  if ((r = check_task_id(q, "remove", id, q->base.match.active ? TH_ERR_PRECONDITION
                                                                  : TH_ERR_NOT_FOUND)) != TH_OK ||
      (r = never_matches(q, "DeleteItem")) != TH_OK)
    return r;
  if ((r = th_ddb_body_delete_if(th_ddb_get_codec(q->d), q->table, q->base.owner, id,
                                  &q->base.match, &body, why, sizeof why)) != TH_OK)
    return fail(q, r, "remove: %s", why);
  r = call(q, "DeleteItem", body, &o);
  if (r != TH_OK) {
    /* After a lost answer the item may be gone because of us, and its old
     * content is lost with the answer: say so rather than "not found". */
    if (o.error.kind == TH_DDB_CONDITION)
      r = o.maybe_applied
              ? fail(q, TH_ERR_UNAVAILABLE, "DeleteItem: an earlier attempt may have removed "
                                            "the item, but its answer was lost")
              : q->base.match.active
                  ? fail(q, TH_ERR_PRECONDITION, "DeleteItem: If-Match condition failed")
                  : fail(q, TH_ERR_NOT_FOUND, "DeleteItem: no item with that id");
    goto out;
  }
  if ((r = read_item(q, "DeleteItem", &o, "Attributes", d)) != TH_OK)
    goto out;
  if (!d->found)
    r = fail(q, TH_ERR_NOT_FOUND, "DeleteItem: no item with that id");
out:
  free(body);
  th_ddb_outcome_free(&o);
  return r;
}

static th_result dd_remove(th_store *s, const char *id, char **old_out) {
  char *item = NULL;
  dest d = {.item = &item};
  th_result r = remove_to(s, id, &d);
  if (r == TH_OK)
    *old_out = item;
  return r;
}

static th_result dd_remove_lua(th_store *s, const char *id, lua_State *L) {
  dest d = {.L = L};
  return remove_to(s, id, &d);
}

/* With L, the items go to the table on top of L (items_out unused). */
static th_result scan_to(th_store *s, int limit, const char *after_id, lua_State *L,
                         char **items_out, char **last_id_out) {
  dd_store *q = (dd_store *)s;
  th_ddb_codec *c = th_ddb_get_codec(q->d);
  char why[256], *start = NULL, *kept = NULL, *body = NULL;
  th_ddb_page page = {0};
  th_ddb_outcome o = {0};
  th_buf out;
  size_t collected = 0;
  int more = 0;
  th_result r;
  th_buf_init(&out, MAX_PAGE_BYTES);
  if (!q->base.owner[0])
    return fail(q, TH_ERR_INTERNAL, "scan: no owner bound to the store");
  if (limit < 1 || limit > 1000)
    return fail(q, TH_ERR_INVALID, "scan: limit must be 1..1000");
  if (after_id && (r = check_task_id(q, "scan", after_id, TH_ERR_INVALID)) != TH_OK)
    return r;
  if (after_id && !(start = strdup(after_id))) {
    r = fail(q, TH_ERR_NOMEM, "scan: out of memory");
    goto out;
  }
  if ((r = th_buf_append_str(&out, "[")) != TH_OK) {
    r = fail(q, r, "scan: out of memory");
    goto out;
  }
  for (int requests = 0;; requests++) {
    size_t remaining = (size_t)limit - collected;
    if (requests >= MAX_QUERY_REQUESTS) {
      r = fail(q, TH_ERR_INTERNAL, "Query: no full page after %d requests", requests);
      goto out;
    }
    /* One more than needed: its presence says whether anything follows. */
    if ((r = th_ddb_body_query(c, q->table, q->base.owner, (int)remaining + 1, start, &body, why,
                               sizeof why)) != TH_OK) {
      r = fail(q, r, "Query: %s", why);
      goto out;
    }
    if ((r = call(q, "Query", body, &o)) != TH_OK)
      goto out;
    r = L ? th_ddb_push_scan(L, o.body, o.len, remaining, &page, why, sizeof why)
          : th_ddb_parse_scan(c, o.body, o.len, remaining, &page, why, sizeof why);
    if (r != TH_OK) {
      r = fail(q, r, "Query: unexpected response: %s", why);
      goto out;
    }
    free(body);
    body = NULL;
    th_ddb_outcome_free(&o);
    if (page.count) {
      if (!L && ((collected && (r = th_buf_append_str(&out, ",")) != TH_OK) ||
                 (r = th_buf_append_str(&out, page.items)) != TH_OK)) {
        r = fail(q, r, "Query: page too large");
        goto out;
      }
      collected += page.count;
      free(kept);
      kept = page.last_id;
      page.last_id = NULL;
    }
    if (page.more) {
      more = 1;
      break;
    }
    if (!page.lek_id)
      break;
    if (start && strcmp(page.lek_id, start) == 0 && page.count == 0) {
      r = fail(q, TH_ERR_INTERNAL, "Query: LastEvaluatedKey did not advance");
      goto out;
    }
    free(start);
    start = page.lek_id;
    page.lek_id = NULL;
    th_ddb_page_free(&page);
  }
  if ((r = th_buf_append_str(&out, "]")) != TH_OK) {
    r = fail(q, r, "Query: page too large");
    goto out;
  }
  if (!L)
    *items_out = th_buf_steal(&out, NULL);
  *last_id_out = more ? kept : NULL;
  if (more)
    kept = NULL;
  r = TH_OK;
out:
  th_ddb_page_free(&page);
  th_ddb_outcome_free(&o);
  th_buf_free(&out);
  free(body);
  free(start);
  free(kept);
  return r;
}

static th_result dd_scan(th_store *s, int limit, const char *after_id, char **items_out,
                         char **last_id_out) {
  return scan_to(s, limit, after_id, NULL, items_out, last_id_out);
}

static th_result dd_scan_lua(th_store *s, int limit, const char *after_id, lua_State *L,
                             char **last_id_out) {
  return scan_to(s, limit, after_id, L, NULL, last_id_out);
}

/* ---- idempotency records (store.h, dynamodb.h) ---- */

#define REC_ID_MAX (sizeof TH_DDB_IDEM_PREFIX + 256)

static th_result record_id(dd_store *q, const char *what, const th_store_idem *r,
                           char rec[REC_ID_MAX]) {
  if (!q->base.owner[0])
    return fail(q, TH_ERR_INTERNAL, "%s: no owner bound to the store", what);
  if (!r->key[0])
    return fail(q, TH_ERR_INTERNAL, "%s: no key", what);
  snprintf(rec, REC_ID_MAX, "%s%s", TH_DDB_IDEM_PREFIX, r->key);
  return TH_OK;
}

/* A consistent GetItem of the record. */
static th_result read_record(dd_store *q, const char *rec, th_ddb_idem_record *out) {
  char why[256], *body = NULL;
  th_ddb_outcome o = {0};
  th_result r = th_ddb_body_get(th_ddb_get_codec(q->d), q->table, q->base.owner, rec, &body, why,
                                sizeof why);
  if (r != TH_OK)
    return fail(q, r, "GetItem (idempotency record): %s", why);
  r = call(q, "GetItem", body, &o);
  if (r == TH_OK &&
      (r = th_ddb_parse_idem(th_ddb_get_codec(q->d), o.body, o.len, out, why, sizeof why)) != TH_OK)
    fail(q, r, "GetItem (idempotency record): unexpected response: %s", why);
  th_ddb_outcome_free(&o);
  free(body);
  return r;
}

/* A claim meets a record it may not replace; after a lost answer that
 * record may be our own. At most a few rounds: a record released or expired
 * between the PutItem and the read is claimed again. */
#define CLAIM_ROUNDS 3

static th_result dd_idem_begin(th_store *s, const th_store_idem *rq, th_idem_state *state,
                               char **response_out) {
  dd_store *q = (dd_store *)s;
  char rec[REC_ID_MAX], why[256], *body = NULL;
  th_ddb_idem_record found = {0};
  th_result r;
  if ((r = record_id(q, "idem_begin", rq, rec)) != TH_OK)
    return r;
  if ((r = th_ddb_body_idem_claim(th_ddb_get_codec(q->d), q->table, s->owner, rec, rq, &body, why,
                                  sizeof why)) != TH_OK)
    return fail(q, r, "idem_begin: %s", why);
  for (int round = 0; round < CLAIM_ROUNDS; round++) {
    th_ddb_outcome o = {0};
    r = call(q, "PutItem", body, &o);
    int condition = r != TH_OK && o.error.kind == TH_DDB_CONDITION;
    th_ddb_outcome_free(&o);
    if (r == TH_OK) {
      *state = TH_IDEM_NEW;
      goto out;
    }
    if (!condition)
      goto out;
    free(found.response);
    found = (th_ddb_idem_record){0};
    if ((r = read_record(q, rec, &found)) != TH_OK)
      goto out;
    if (!found.found || found.expires_at <= rq->now_ms / 1000 ||
        (!found.completed && found.locked_until_ms <= rq->now_ms))
      continue; /* gone or lapsed since: claim again */
    if (!found.completed && strcmp(found.token, rq->token) == 0) {
      *state = TH_IDEM_NEW; /* ours: an earlier attempt landed, its answer lost */
      goto out;
    }
    if (strcmp(found.fingerprint, rq->fingerprint) != 0)
      *state = TH_IDEM_MISMATCH;
    else if (!found.completed)
      *state = TH_IDEM_IN_FLIGHT;
    else if (!found.response)
      r = fail(q, TH_ERR_INTERNAL, "idem_begin: a completed record without its response");
    else {
      *state = TH_IDEM_REPLAY;
      *response_out = found.response;
      found.response = NULL;
    }
    goto out;
  }
  r = fail(q, TH_ERR_UNAVAILABLE, "idem_begin: the record changed under %d claims", CLAIM_ROUNDS);
out:
  free(found.response);
  free(body);
  return r;
}

static th_result dd_idem_commit(th_store *s, const th_store_idem *rq, const char *response) {
  dd_store *q = (dd_store *)s;
  char rec[REC_ID_MAX], why[256], *body = NULL;
  th_ddb_outcome o = {0};
  th_ddb_idem_record found = {0};
  th_result r;
  if ((r = record_id(q, "idem_commit", rq, rec)) != TH_OK)
    return r;
  if (!rq->pending_id || !rq->pending_item)
    return fail(q, TH_ERR_INTERNAL, "idem_commit: no create to commit");
  if ((r = check_task_id(q, "idem_commit", rq->pending_id, TH_ERR_INVALID)) != TH_OK)
    return r;
  if ((r = th_ddb_body_idem_commit(th_ddb_get_codec(q->d), q->table, s->owner, rec, rq, response,
                                   &body, why, sizeof why)) != TH_OK)
    return fail(q, r, "idem_commit: %s", why);
  r = call(q, "TransactWriteItems", body, &o);
  if (r == TH_OK) {
    s->version = 1;
    goto out;
  }
  if (o.error.kind != TH_DDB_CONDITION)
    goto out;
  /* Cancelled. After a lost answer (a DynamoDB without the token's
   * idempotency, or past its 10 minutes) the record says whether it was ours. */
  if (o.maybe_applied) {
    if ((r = read_record(q, rec, &found)) != TH_OK)
      goto out;
    if (found.found && found.completed && strcmp(found.token, rq->token) == 0) {
      th_log_field f[] = {TH_LOG_STR("op", "TransactWriteItems"),
                          TH_LOG_NUM("attempts", o.attempts)};
      th_log(TH_LOG_INFO, NULL, "dynamodb: transaction had landed on an earlier attempt", f,
             (int)TH_ARRAY_LEN(f));
      s->version = 1;
      r = TH_OK;
      goto out;
    }
  }
  if (o.error.n_reasons > 1 && strcmp(o.error.reasons[1], "ConditionalCheckFailed") == 0)
    r = fail(q, TH_ERR_PRECONDITION, "TransactWriteItems: the key's claim is no longer this "
                                     "request's");
  else
    r = fail(q, TH_ERR_EXISTS, "TransactWriteItems: an item with that id exists (reasons: %s%s%s)",
             o.error.n_reasons > 0 ? o.error.reasons[0] : "none",
             o.error.n_reasons > 1 ? ", " : "", o.error.n_reasons > 1 ? o.error.reasons[1] : "");
out:
  free(found.response);
  free(body);
  th_ddb_outcome_free(&o);
  return r;
}

static th_result dd_idem_release(th_store *s, const th_store_idem *rq) {
  dd_store *q = (dd_store *)s;
  char rec[REC_ID_MAX], why[256], *body = NULL;
  th_ddb_outcome o = {0};
  th_result r;
  if ((r = record_id(q, "idem_release", rq, rec)) != TH_OK)
    return r;
  if ((r = th_ddb_body_idem_release(th_ddb_get_codec(q->d), q->table, s->owner, rec, rq, &body,
                                    why, sizeof why)) != TH_OK)
    return fail(q, r, "idem_release: %s", why);
  r = call(q, "DeleteItem", body, &o);
  if (r != TH_OK && o.error.kind == TH_DDB_CONDITION)
    r = TH_OK; /* no longer ours (or gone): nothing to drop */
  free(body);
  th_ddb_outcome_free(&o);
  return r;
}

static void dd_close(th_store *s) {
  dd_store *q = (dd_store *)s;
  if (!q)
    return;
  th_ddb_free(q->d);
  free(q->table);
  free(q);
}

static const th_store_lua_ops dd_lua_ops = {dd_get_lua, dd_update_lua, dd_remove_lua, dd_scan_lua};
static const th_store_ops dd_ops = {dd_create, dd_get,  dd_update,  dd_remove,
                                    dd_scan,   dd_close, &dd_lua_ops, dd_idem_begin,
                                    dd_idem_commit, dd_idem_release};

th_store *th_store_dynamodb_open(const th_config *cfg, char *err, size_t errlen) {
  dd_store *q = NULL;
  if (!cfg->table_name || !cfg->aws_region || !cfg->aws_access_key_id ||
      !cfg->aws_secret_access_key || !cfg->dynamodb_endpoint) {
    snprintf(err, errlen, "dynamodb: the configuration lacks %s",
             !cfg->table_name ? "TABLE_NAME" : !cfg->aws_region ? "the region"
             : !cfg->dynamodb_endpoint ? "the endpoint" : "the credentials");
    return NULL;
  }
  if (!(q = calloc(1, sizeof *q)) || !(q->table = strdup(cfg->table_name))) {
    snprintf(err, errlen, "dynamodb: out of memory");
    goto fail;
  }
  th_ddb_config dc = {.endpoint = cfg->dynamodb_endpoint,
                      .region = cfg->aws_region,
                      .access_key_id = cfg->aws_access_key_id,
                      .secret_access_key = cfg->aws_secret_access_key,
                      .session_token = cfg->aws_session_token,
                      .max_attempts = cfg->aws_max_attempts};
  if (!(q->d = th_ddb_new(&dc, err, errlen)))
    goto fail;
  q->base.ops = &dd_ops;
  snprintf(q->base.identity, sizeof q->base.identity, "dynamodb:%s", cfg->table_name);
  return &q->base;
fail:
  dd_close(q ? &q->base : NULL);
  return NULL;
}

th_http_stats th_store_dynamodb_http_stats(th_store *s) {
  return th_ddb_http_stats(((dd_store *)s)->d);
}
