/* precond — the header grammar of safe retries and conditional requests,
 * pure functions of their arguments (no clock, no I/O):
 *   - If-Match (RFC 9110 §13.1.1) → a th_store_match the store applies in the
 *     same conditional write as the change;
 *   - If-None-Match (§13.1.2) against an item's entity tag;
 *   - the entity tag of a task: strong, quoted, its version ("3");
 *   - Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) → the key;
 *   - the request's fingerprint: SHA-256 (OpenSSL EVP) of method, path and
 *     the raw body bytes, in hex.
 * Outputs are written on TH_OK only. Nothing here allocates.
 */
#ifndef TH_PRECOND_H
#define TH_PRECOND_H

#include <stddef.h>

#include "store.h"

/* The longest Idempotency-Key (characters between the quotes). */
#define TH_IDEM_MAX_KEY 255
/* sizeof the hex fingerprint, NUL included. */
#define TH_IDEM_FINGERPRINT_LEN 65

/* Parses an If-Match value into *m (m->active set). "*" → m->any; a list of
 * entity tags → the versions of the strong ones that name a version; weak
 * tags (W/"…") and tags that name no version are kept out, so they never
 * match (strong comparison); a value with none left matches nothing.
 * TH_ERR_INVALID: not an entity-tag list, or more than TH_STORE_MAX_MATCH
 * strong tags. */
th_result th_precond_if_match(const char *value, th_store_match *m);

/* 1 when the If-None-Match value matches the item of version `version`
 * (weak comparison, as §13.1.2 asks; "*" matches any item), else 0 — a
 * malformed value included (the request is then answered as without it). */
int th_precond_none_match(const char *value, long long version);

/* Writes the entity tag of version `version` ("\"<version>\"") into out. */
void th_precond_etag(long long version, char *out, size_t outlen);

/* The key of an Idempotency-Key value: a structured-field string ("abc",
 * RFC 8941 §3.3.3: the quotes are not part of the key; the escapes \" and
 * \\ are refused) or, as a convenience, a bare token of the same characters.
 * 1..TH_IDEM_MAX_KEY visible ASCII characters (0x21..0x7e), none of them
 * '"' or '\\'. TH_ERR_INVALID otherwise; out must hold TH_IDEM_MAX_KEY + 1. */
th_result th_idem_parse_key(const char *value, char *out);

/* Hex SHA-256 of method, NUL, path, NUL, body (out: TH_IDEM_FINGERPRINT_LEN
 * bytes). TH_ERR_INTERNAL if OpenSSL fails. */
th_result th_idem_fingerprint(const char *method, const char *path, const char *body,
                              size_t body_len, char *out);

#endif
