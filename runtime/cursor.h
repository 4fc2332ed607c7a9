/* cursor — opaque, tamper-evident pagination cursors.
 *
 * A cursor wraps the last key of a page (the store's `after_id`) for the client.
 * It is URL-safe base64 (no padding) of: version byte, key, and a truncated
 * HMAC-SHA256 over (store identity, key) under a secret key. A cursor that was
 * altered, is garbage, or was issued for another store/table fails to open.
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
 * Today's key is the `id` alone (at most 2048 bytes, TH_STORE_MAX_ID).
 * Sealed: 1 + 3200 + 16 = 3217 bytes, TH_CURSOR_MAX_TEXT = 4290 characters
 * of base64 without padding: the longest cursor a client is ever given, and
 * so the least a `next` parameter must be allowed to hold (routes.lua). */
#define TH_CURSOR_MAX_KEY (2048 + 1024 + 2 * 64)
#define TH_CURSOR_MAX_TEXT ((4 * (1 + TH_CURSOR_MAX_KEY + 16) + 2) / 3)

/* Seals `key` into *out (malloc'd, caller frees). A key longer than
 * TH_CURSOR_MAX_KEY bytes is TH_ERR_TOO_LARGE (never cut short). */
th_result th_cursor_seal(const unsigned char *secret, size_t secret_len, const char *identity,
                         const char *key, char **out);
/* Opens `cursor`; on success *key_out is the key (malloc'd, caller frees).
 * TH_ERR_INVALID for anything we did not issue. */
th_result th_cursor_open(const unsigned char *secret, size_t secret_len, const char *identity,
                         const char *cursor, char **key_out);

#endif
