/* cursor — see cursor.h. Layout before encoding:
 *   0x02 | key bytes | first 16 bytes of
 *                      HMAC-SHA256(secret, identity 0x00 owner 0x00 key)
 * None of the three holds a NUL, so the 0x00 separators keep (identity,
 * owner, key) unambiguous. Encoding is OpenSSL's base64 mapped to the
 * URL-safe alphabet with padding stripped.
 */
#include "cursor.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

#define VERSION 0x02 /* 0x01: bound to (identity, key) only */
#define MAC_LEN 16
#define MAX_RAW (1 + TH_CURSOR_MAX_KEY + MAC_LEN)
#define MAX_TEXT TH_CURSOR_MAX_TEXT /* the encoding of MAX_RAW bytes */

/* MAC over (identity, 0x00, owner, 0x00, key): binds the cursor to one
 * store and one owner. */
static th_result mac(const unsigned char *secret, size_t secret_len, const char *identity,
                     const char *owner, const unsigned char *key, size_t key_len,
                     unsigned char out[MAC_LEN]) {
  size_t id_len = strlen(identity), owner_len = strlen(owner);
  size_t n = id_len + 1 + owner_len + 1 + key_len;
  unsigned char md[TH_SIGV4_KEY_LEN];
  th_result r = TH_ERR_NOMEM;
  unsigned char *msg = malloc(n);
  if (!msg)
    return r;
  memcpy(msg, identity, id_len);
  msg[id_len] = 0x00;
  memcpy(msg + id_len + 1, owner, owner_len);
  msg[id_len + 1 + owner_len] = 0x00;
  if (key_len)
    memcpy(msg + id_len + 1 + owner_len + 1, key, key_len);
  /* sigv4's HMAC-SHA256: OpenSSL's one-shot HMAC() costs ~20 K instructions
   * a call in provider look-ups, on every list page. */
  if ((r = th_sigv4_hmac_sha256(secret, secret_len, msg, n, md)) == TH_OK)
    memcpy(out, md, MAC_LEN);
  OPENSSL_cleanse(md, sizeof md);
  free(msg);
  return r;
}

/* Base64 (OpenSSL) → URL-safe alphabet, no padding. out has room for
 * 4 * ceil(n / 3) + 1 bytes. */
static void encode(const unsigned char *in, size_t n, char *out) {
  int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
  while (len > 0 && out[len - 1] == '=')
    len--;
  out[len] = '\0';
  for (char *p = out; *p; p++)
    *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

/* The inverse of encode, and only of it: a text that is not exactly what
 * encode would produce for the decoded bytes (stray characters, '=' or
 * nonzero spare bits) is refused, so no two texts open to the same cursor.
 * Returns the byte count, or -1. */
static int decode(const char *text, size_t n, unsigned char *out, size_t out_size) {
  char b64[MAX_TEXT + 4], again[MAX_TEXT + 4];
  size_t pad = (4 - n % 4) % 4;
  if (n == 0 || n > MAX_TEXT || n % 4 == 1 || (n + pad) / 4 * 3 > out_size)
    return -1;
  for (size_t i = 0; i < n; i++) {
    char c = text[i];
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
    else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
      return -1;
    b64[i] = c;
  }
  memset(b64 + n, '=', pad);
  b64[n + pad] = '\0';
  int len = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)(n + pad));
  if (len < 0)
    return -1;
  len -= (int)pad; /* EVP_DecodeBlock counts padding as zero bytes */
  encode(out, (size_t)len, again);
  return strcmp(again, text) == 0 ? len : -1;
}

th_result th_cursor_seal(const unsigned char *secret, size_t secret_len, const char *identity,
                         const char *owner, const char *key, char **out) {
  unsigned char raw[MAX_RAW];
  size_t key_len;
  char *text;
  if (!secret || !secret_len || secret_len > INT_MAX || !identity || !owner || !key)
    return TH_ERR_INVALID;
  if ((key_len = strlen(key)) > TH_CURSOR_MAX_KEY)
    return TH_ERR_TOO_LARGE;
  raw[0] = VERSION;
  memcpy(raw + 1, key, key_len);
  th_result r = mac(secret, secret_len, identity, owner, raw + 1, key_len, raw + 1 + key_len);
  if (r != TH_OK)
    return r;
  size_t n = 1 + key_len + MAC_LEN;
  if (!(text = malloc(4 * ((n + 2) / 3) + 1)))
    return TH_ERR_NOMEM;
  encode(raw, n, text);
  *out = text;
  return TH_OK;
}

th_result th_cursor_open(const unsigned char *secret, size_t secret_len, const char *identity,
                         const char *owner, const char *cursor, char **key_out) {
  unsigned char raw[MAX_RAW + 2], want[MAC_LEN]; /* + 2: decoded padding */
  if (!secret || !secret_len || secret_len > INT_MAX || !identity || !owner || !cursor)
    return TH_ERR_INVALID;
  int n = decode(cursor, strnlen(cursor, MAX_TEXT + 1), raw, sizeof raw);
  if (n < 1 + MAC_LEN || raw[0] != VERSION)
    return TH_ERR_INVALID;
  size_t key_len = (size_t)n - 1 - MAC_LEN;
  if (key_len > TH_CURSOR_MAX_KEY || memchr(raw + 1, 0, key_len))
    return TH_ERR_INVALID;
  th_result r = mac(secret, secret_len, identity, owner, raw + 1, key_len, want);
  if (r != TH_OK)
    return r;
  if (CRYPTO_memcmp(want, raw + 1 + key_len, MAC_LEN) != 0)
    return TH_ERR_INVALID;
  char *key = malloc(key_len + 1);
  if (!key)
    return TH_ERR_NOMEM;
  memcpy(key, raw + 1, key_len);
  key[key_len] = '\0';
  *key_out = key;
  return TH_OK;
}
