/* cursor — opaque, tamper-evident pagination cursors.
 *
 * A cursor wraps the last key of a page (the store's `after_id`) for the client.
 * It is URL-safe base64 (no padding) of: version byte, key, and a truncated
 * HMAC-SHA256 over (store identity, owner, key) under a secret key. A cursor
 * that was altered, is garbage, or was issued for another store/table or to
 * another owner fails to open. The owner is sealed, not carried: the key is
 * the sort key (`id`) alone, and the partition it is used in is always the
 * caller's own owner, never one read from a cursor. Cursors of the earlier
 * format (version 1, bound to no owner) no longer open.
 * Pure: no clock, no environment; the secret is passed in.
 */
#ifndef TH_CURSOR_H
#define TH_CURSOR_H

#include "common.h"

/* The largest key a cursor carries: room for DynamoDB's largest composite
 * primary key, so no item a table can hold ends a page it cannot seal.
 *   key values   2048 (partition key) + 1024 (sort key) bytes: DynamoDB's
 *                limits on the UTF-8 bytes of an S key (raw bytes of a B);
 *   framing      64 bytes for each of the two attributes, for the store's
 *                own encoding of them in the key (a type tag, a length, the
 *                attribute name: the names are the store's, "user_id", "id");
 *   total        2048 + 1024 + 2 * 64 = 3200 bytes.
 * Today's key is the sort key `id` alone (at most 1024 bytes,
 * TH_STORE_MAX_ID): the partition key, the owner, is bound by the MAC.
 * Sealed: 1 + 3200 + 16 = 3217 bytes, TH_CURSOR_MAX_TEXT = 4290 characters
 * of base64 without padding: the longest cursor a client is ever given, and
 * so the least a `next` parameter must be allowed to hold (routes.lua). */
#define TH_CURSOR_MAX_KEY (2048 + 1024 + 2 * 64)
#define TH_CURSOR_MAX_TEXT ((4 * (1 + TH_CURSOR_MAX_KEY + 16) + 2) / 3)

/* Seals `key` for `owner` into *out (malloc'd, caller frees). A key longer
 * than TH_CURSOR_MAX_KEY bytes is TH_ERR_TOO_LARGE (never cut short). */
th_result th_cursor_seal(const unsigned char *secret, size_t secret_len, const char *identity,
                         const char *owner, const char *key, char **out);
/* Opens `cursor` for `owner`; on success *key_out is the key (malloc'd,
 * caller frees). TH_ERR_INVALID for anything we did not issue to this owner
 * of this store. */
th_result th_cursor_open(const unsigned char *secret, size_t secret_len, const char *identity,
                         const char *owner, const char *cursor, char **key_out);

#endif
