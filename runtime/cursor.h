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

#define TH_CURSOR_MAX_KEY 1024

/* Seals `key` into *out (malloc'd, caller frees). */
th_result th_cursor_seal(const unsigned char *secret, size_t secret_len, const char *identity,
                         const char *key, char **out);
/* Opens `cursor`; on success *key_out is the key (malloc'd, caller frees).
 * TH_ERR_INVALID for anything we did not issue. */
th_result th_cursor_open(const unsigned char *secret, size_t secret_len, const char *identity,
                         const char *cursor, char **key_out);

#endif
