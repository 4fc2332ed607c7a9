/* cursor: round trips, and everything we did not issue is refused — every
 * single-character change, truncation, extension, another secret, identity
 * or owner, garbage, and forgeries that carry a valid MAC but break the
 * layout (or carry the MAC of the earlier format, bound to no owner). */
#include "check.h"
#include "cursor.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef";
#define SECRET_LEN (sizeof secret - 1)
static const char identity[] = "sqlite:/var/lib/taskhost/tasks.db";
static const char owner[] = "4f1c2a9e-3b7d-4e0a-9c51-2d8f0e4b7a13";
static const char alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static char untouched[] = "untouched";

static int url_safe(const char *s) {
  return s && s[strspn(s, alphabet)] == '\0';
}

/* Opens `text` for `who` expecting INVALID with the output left alone. */
static int refused_for(const unsigned char *sec, size_t sec_len, const char *ident,
                       const char *who, const char *text) {
  char *key = untouched;
  th_result r = th_cursor_open(sec, sec_len, ident, who, text, &key);
  if (key != untouched)
    free(key);
  return r == TH_ERR_INVALID && key == untouched;
}

static int refused(const unsigned char *sec, size_t sec_len, const char *ident, const char *text) {
  return refused_for(sec, sec_len, ident, owner, text);
}

/* Builds a cursor from raw parts with a genuine MAC (OpenSSL, as cursor.c
 * does) so that layout checks are tested apart from the MAC check. The MAC
 * covers (identity, owner, key), or, with `who` NULL, (identity, key): the
 * earlier format's. */
static char *forge(unsigned char version, const char *who, const unsigned char *key,
                   size_t key_len, size_t mac_len) {
  unsigned char msg[TH_CURSOR_MAX_KEY + 512], raw[TH_CURSOR_MAX_KEY + 512], md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  size_t n = strlen(identity) + 1;
  memcpy(msg, identity, n);
  if (who) {
    memcpy(msg + n, who, strlen(who) + 1);
    n += strlen(who) + 1;
  }
  memcpy(msg + n, key, key_len);
  HMAC(EVP_sha256(), secret, SECRET_LEN, msg, n + key_len, md, &md_len);
  raw[0] = version;
  memcpy(raw + 1, key, key_len);
  memcpy(raw + 1 + key_len, md, mac_len);
  char *out = malloc(4 * (1 + key_len + mac_len) / 3 + 8);
  int len = EVP_EncodeBlock((unsigned char *)out, raw, (int)(1 + key_len + mac_len));
  while (len > 0 && out[len - 1] == '=')
    out[--len] = '\0';
  for (char *p = out; *p; p++)
    *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
  return out;
}

static void test_key(const char *name, const char *key) {
  char *c1 = NULL, *c2 = NULL, *back = NULL;
  CHECK(th_cursor_seal(secret, SECRET_LEN, identity, owner, key, &c1) == TH_OK, "%s: seal", name);
  if (!c1)
    return;
  CHECK(url_safe(c1), "%s: not URL-safe: %s", name, c1);
  /* 1 version byte + key + 16 MAC bytes, base64 without padding. */
  CHECK(strlen(c1) == (4 * (1 + strlen(key) + 16) + 2) / 3 && strlen(c1) <= TH_CURSOR_MAX_TEXT,
        "%s: cursor of %zu characters", name, strlen(c1));
  CHECK(th_cursor_seal(secret, SECRET_LEN, identity, owner, key, &c2) == TH_OK && c2 &&
            !strcmp(c1, c2),
        "%s: sealing is not deterministic", name);
  CHECK(th_cursor_open(secret, SECRET_LEN, identity, owner, c1, &back) == TH_OK, "%s: open", name);
  CHECK_STR(back, key);
  free(back);

  static const unsigned char other_secret[] = "0123456789abcdef0123456789abcdeF";
  CHECK(refused(other_secret, SECRET_LEN, identity, c1), "%s: opened with another secret", name);
  CHECK(refused(secret, SECRET_LEN - 1, identity, c1), "%s: opened with a shorter secret", name);
  CHECK(refused(secret, SECRET_LEN, "sqlite:/var/lib/taskhost/other.db", c1),
        "%s: opened for another identity", name);
  CHECK(refused(secret, SECRET_LEN, "dynamodb:Tasks", c1), "%s: opened for another backend", name);
  /* Another owner: a prefix, an extension, a case change, the empty one,
   * and one whose bytes run on into the identity's place. */
  static const char *const others[] = {"4f1c2a9e-3b7d-4e0a-9c51-2d8f0e4b7a1",
                                        "4f1c2a9e-3b7d-4e0a-9c51-2d8f0e4b7a134",
                                        "4F1C2A9E-3B7D-4E0A-9C51-2D8F0E4B7A13", "", "public"};
  for (size_t i = 0; i < TH_ARRAY_LEN(others); i++)
    CHECK(refused_for(secret, SECRET_LEN, identity, others[i], c1),
          "%s: opened for another owner '%s'", name, others[i]);
  CHECK(refused_for(secret, SECRET_LEN, owner, identity, c1),
        "%s: opened with identity and owner swapped", name);

  /* Every single-character change; all 63 alternatives for short cursors. */
  size_t len = strlen(c1);
  char *t = malloc(len + 8);
  int step = len > 200 ? 21 : 1, bad = 0, tried = 0;
  for (size_t i = 0; i < len; i++) {
    for (size_t a = (size_t)(i % (size_t)step); a < 64; a += (size_t)step) {
      if (alphabet[a] == c1[i])
        continue;
      memcpy(t, c1, len + 1);
      t[i] = alphabet[a];
      tried++;
      if (!refused(secret, SECRET_LEN, identity, t) && !bad++)
        CHECK(0, "%s: tampered cursor opened: %s", name, t);
    }
  }
  CHECK(bad == 0, "%s: %d of %d tampered cursors opened", name, bad, tried);

  /* Every truncation, and extensions by 1..4 characters. */
  bad = 0;
  for (size_t n = 0; n < len; n++) {
    memcpy(t, c1, n);
    t[n] = '\0';
    bad += !refused(secret, SECRET_LEN, identity, t);
  }
  CHECK(bad == 0, "%s: %d truncations opened", name, bad);
  static const char *tails[] = {"A", "AA", "AAA", "AAAA", "=", "==", "_"};
  for (size_t i = 0; i < TH_ARRAY_LEN(tails); i++) {
    snprintf(t, len + 8, "%s%s", c1, tails[i]);
    CHECK(refused(secret, SECRET_LEN, identity, t), "%s: extension '%s' opened", name, tails[i]);
  }

  /* The standard base64 alphabet is not ours. */
  memcpy(t, c1, len + 1);
  int changed = 0;
  for (char *p = t; *p; p++)
    if (*p == '-' || *p == '_')
      *p = *p == '-' ? '+' : '/', changed = 1;
  if (changed)
    CHECK(refused(secret, SECRET_LEN, identity, t), "%s: standard base64 form opened: %s", name, t);
  free(t);
  free(c1);
  free(c2);
}

int main(void) {
  /* The bound cursor.h derives: DynamoDB's largest composite key (2048 + 1024
   * bytes of values) with 64 bytes of framing for each of its two attributes. */
  CHECK(TH_CURSOR_MAX_KEY == 3200, "TH_CURSOR_MAX_KEY is %d", TH_CURSOR_MAX_KEY);
  CHECK(TH_CURSOR_MAX_TEXT == 4290, "TH_CURSOR_MAX_TEXT is %d", TH_CURSOR_MAX_TEXT);

  static char kmax[TH_CURSOR_MAX_KEY + 1], kover[TH_CURSOR_MAX_KEY + 2], k2048[2049], all[128];
  for (int i = 0; i < TH_CURSOR_MAX_KEY; i++)
    kmax[i] = (char)(1 + i % 255); /* every non-NUL byte value */
  kmax[TH_CURSOR_MAX_KEY] = '\0';
  memset(kover, 'k', TH_CURSOR_MAX_KEY + 1);
  kover[TH_CURSOR_MAX_KEY + 1] = '\0';
  for (int i = 0; i < 2048; i += 2)
    memcpy(k2048 + i, "\xc3\xa9", 2); /* 1024 x U+00E9: DynamoDB's largest partition key */
  k2048[2048] = '\0';
  for (int i = 0; i < 95; i++)
    all[i] = (char)(32 + i);
  all[95] = '\0';

  const struct {
    const char *name, *key;
  } keys[] = {
    {"uuid", "6f1c2a9e-3b7d-4e0a-9c51-2d8f0e4b7a13"},
    {"empty", ""},
    {"one byte", "a"},
    {"2048 bytes of UTF-8", k2048},
    {"TH_CURSOR_MAX_KEY bytes", kmax},
    {"unicode", "t\xc3\xa2" "che-\xe6\x97\xa5\xe6\x9c\xac-\xf0\x9f\x8e\x89"},
    {"printable ASCII", all},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(keys); i++)
    test_key(keys[i].name, keys[i].key);

  /* The longest cursor is TH_CURSOR_MAX_TEXT characters. */
  char *out = untouched;
  CHECK(th_cursor_seal(secret, SECRET_LEN, identity, owner, kmax, &out) == TH_OK && out != untouched &&
            strlen(out) == TH_CURSOR_MAX_TEXT, "longest cursor: %zu characters",
        out != untouched ? strlen(out) : 0);
  if (out != untouched)
    free(out);

  /* Seal refuses what it cannot honour: one byte over is TOO_LARGE, not cut. */
  out = untouched;
  CHECK(th_cursor_seal(secret, SECRET_LEN, identity, owner, kover, &out) == TH_ERR_TOO_LARGE &&
            out == untouched, "seal of a TH_CURSOR_MAX_KEY + 1 byte key");
  CHECK(th_cursor_seal(secret, 0, identity, owner, "k", &out) == TH_ERR_INVALID,
        "seal with no secret");
  CHECK(th_cursor_seal(NULL, 0, identity, owner, "k", &out) == TH_ERR_INVALID,
        "seal with NULL secret");
  CHECK(th_cursor_seal(secret, SECRET_LEN, NULL, owner, "k", &out) == TH_ERR_INVALID,
        "seal, NULL identity");
  CHECK(th_cursor_seal(secret, SECRET_LEN, identity, NULL, "k", &out) == TH_ERR_INVALID,
        "seal, NULL owner");
  CHECK(th_cursor_seal(secret, SECRET_LEN, identity, owner, NULL, &out) == TH_ERR_INVALID,
        "seal, NULL key");
  CHECK(out == untouched, "seal wrote its output on failure");
  CHECK(refused(secret, SECRET_LEN, identity, NULL), "open of NULL");
  CHECK(refused_for(secret, SECRET_LEN, identity, NULL, "AQ"), "open for a NULL owner");
  CHECK(refused(secret, 0, identity, "AQ"), "open with no secret");

  /* Garbage. */
  char longest[5000];
  memset(longest, 'A', sizeof longest - 1);
  longest[sizeof longest - 1] = '\0';
  static const char *garbage[] = {
    "", "abc", "A", "AA", "AAAA", "====", "!!!", "AQ==", "AQ", "ab cd", "abc.def", "ab\ncd",
    " AQAAAAAAAAAAAAAAAAAAAAA", "AQAAAAAAAAAAAAAAAAAAAAA ", "AQAAAAAAAAAAAAAAAAAAAAAA",
    "AQ+AAAAAAAAAAAAAAAAAAAAA", "AQ/AAAAAAAAAAAAAAAAAAAAA", "%41%51", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(garbage); i++)
    CHECK(refused(secret, SECRET_LEN, identity, garbage[i]), "garbage '%s' opened", garbage[i]);
  CHECK(refused(secret, SECRET_LEN, identity, longest), "a 4999-character cursor opened");

  /* Forgeries with a valid MAC: the layout itself is checked. */
  const unsigned char nul_key[] = {'a', 0, 'b'};
  const struct {
    const char *name;
    unsigned char version;
    const char *who;
    const unsigned char *key;
    size_t key_len, mac_len;
    th_result want;
  } forged[] = {
    {"genuine", 0x02, owner, (const unsigned char *)"abc", 3, 16, TH_OK},
    {"version 3", 0x03, owner, (const unsigned char *)"abc", 3, 16, TH_ERR_INVALID},
    {"version 1 MAC'd as 2", 0x01, owner, (const unsigned char *)"abc", 3, 16, TH_ERR_INVALID},
    {"version 1 (no owner)", 0x01, NULL, (const unsigned char *)"abc", 3, 16, TH_ERR_INVALID},
    {"no owner in the MAC", 0x02, NULL, (const unsigned char *)"abc", 3, 16, TH_ERR_INVALID},
    {"version 0", 0x00, owner, (const unsigned char *)"abc", 3, 16, TH_ERR_INVALID},
    {"key with NUL", 0x02, owner, nul_key, 3, 16, TH_ERR_INVALID},
    {"MAC of 15 bytes", 0x02, owner, (const unsigned char *)"abc", 3, 15, TH_ERR_INVALID},
    {"full 32-byte MAC", 0x02, owner, (const unsigned char *)"abc", 3, 32, TH_ERR_INVALID},
    {"longest key", 0x02, owner, (const unsigned char *)kmax, TH_CURSOR_MAX_KEY, 16, TH_OK},
    {"over-long key", 0x02, owner, (const unsigned char *)kover, TH_CURSOR_MAX_KEY + 1, 16,
     TH_ERR_INVALID},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(forged); i++) {
    char *c = forge(forged[i].version, forged[i].who, forged[i].key, forged[i].key_len,
                    forged[i].mac_len);
    char *key = untouched;
    th_result r = th_cursor_open(secret, SECRET_LEN, identity, owner, c, &key);
    CHECK(r == forged[i].want, "forged %s: %s", forged[i].name, th_result_name(r));
    if (key != untouched)
      free(key);
    free(c);
  }
  return CHECK_DONE();
}
