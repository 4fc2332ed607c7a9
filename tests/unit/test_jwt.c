/* jwt: the token verifier and the JWKS key sets.
 *
 * Keys and tokens are made here, at test time, with OpenSSL's C API (RSA
 * 2048 keys, EVP_DigestSign; the JWKS built from their n and e), so no
 * fixture can go stale; tests/jwt_crosscheck.py checks the verifier against
 * tokens PyJWT signs. Covered: valid tokens of every accepted shape, the
 * hostile-token matrix (each with the status it must get and the output left
 * alone), every one-character change and every truncation of a valid token,
 * JWKS parsing and its skip reasons and limits, the file and URL loaders (a
 * libmicrohttpd server on 127.0.0.1), the refetch rule, the cache's swap,
 * and threads verifying while the set is swapped. */
#include "check.h"
#include "jwt.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define NOW 1700000000.0
#define ISSUER "https://issuer.example/pool"
#define HDR "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"
/* exp an hour after NOW, iat a bit before */
#define CLAIMS "\"iss\":\"" ISSUER "\",\"sub\":\"user-1\",\"exp\":1700003600,\"iat\":1699999000"
#define PAY "{\"aud\":\"aud-1\"," CLAIMS "}"

static const char *const AUDS[] = {"aud-1", "client-2"};
static const th_jwt_policy POLICY = {ISSUER, AUDS, 2, TH_JWT_LEEWAY_S, NOW};

static EVP_PKEY *k1, *k2, *other, *weak, *ec;
static th_jwks *keys;
static th_jwt_verifier *ver;

/* ------------------------------------------------------------- helpers */

static char *b64url(const unsigned char *p, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
  while (len > 0 && out[len - 1] == '=')
    len--;
  out[len] = '\0';
  for (char *c = out; *c; c++)
    *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
  return out;
}

static char *b64url_str(const char *s) { return b64url((const unsigned char *)s, strlen(s)); }

static char *cat3(const char *a, const char *sep, const char *b) {
  size_t na = strlen(a), ns = strlen(sep), nb = strlen(b);
  char *s = malloc(na + ns + nb + 1);
  memcpy(s, a, na);
  memcpy(s + na, sep, ns);
  memcpy(s + na + ns, b, nb + 1);
  return s;
}

static char *bn_b64(EVP_PKEY *pk, const char *name) {
  BIGNUM *bn = NULL;
  EVP_PKEY_get_bn_param(pk, name, &bn);
  unsigned char buf[1024];
  int n = BN_bn2bin(bn, buf);
  BN_free(bn);
  return b64url(buf, (size_t)n);
}

/* {"kty":"RSA","kid":KID,"n":..,"e":.. EXTRA} */
static char *jwk(EVP_PKEY *pk, const char *kid, const char *extra) {
  char *n = bn_b64(pk, OSSL_PKEY_PARAM_RSA_N), *e = bn_b64(pk, OSSL_PKEY_PARAM_RSA_E);
  size_t len = strlen(n) + strlen(kid) + strlen(extra) + 64;
  char *s = malloc(len);
  snprintf(s, len, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}", kid, n, e, extra);
  free(n);
  free(e);
  return s;
}

typedef enum signer { RS256, K2, OTHER_RSA, PS256, HS256_PEM, ES256, NO_SIG } signer;

static char *signature(signer s, const char *input) {
  unsigned char sig[1024];
  size_t n = sizeof sig;
  if (s == NO_SIG)
    return strdup("");
  if (s == HS256_PEM) { /* the classic confusion: the public key's PEM as the HMAC secret */
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k1);
    char *pem;
    long pem_len = BIO_get_mem_data(b, &pem);
    unsigned int md_len = 0;
    HMAC(EVP_sha256(), pem, (int)pem_len, (const unsigned char *)input, strlen(input), sig, &md_len);
    BIO_free(b);
    return b64url(sig, md_len);
  }
  EVP_PKEY *pk = s == K2 ? k2 : s == OTHER_RSA ? other : s == ES256 ? ec : k1;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pc = NULL;
  EVP_DigestSignInit(c, &pc, EVP_sha256(), NULL, pk);
  if (s == PS256) {
    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 32);
  }
  EVP_DigestSign(c, sig, &n, (const unsigned char *)input, strlen(input));
  EVP_MD_CTX_free(c);
  if (s == ES256) { /* DER → the JOSE form r || s */
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
    unsigned char raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
    ECDSA_SIG_free(es);
    return b64url(raw, 64);
  }
  return b64url(sig, n);
}

/* header.payload.signature; caller frees */
static char *make_token_with(signer s, const char *header, const char *payload) {
  char *h = b64url_str(header), *p = b64url_str(payload);
  char *input = cat3(h, ".", p);
  char *sig = signature(s, input);
  char *t = cat3(input, ".", sig);
  free(h);
  free(p);
  free(input);
  free(sig);
  return t;
}

static char *make_token(const char *header, const char *payload) {
  return make_token_with(RS256, header, payload);
}

static th_jwt_status verify_pol(const th_jwt_policy *pol, const char *token, size_t len,
                                th_jwt_claims *out, const char **why) {
  return th_jwt_verify(ver, keys, pol, token, len, out, why);
}

/* Verifies expecting `want`; on failure the output must be left alone. */
static void expect(const char *name, const char *token, size_t len, th_jwt_status want,
                   const th_jwt_policy *pol) {
  th_jwt_claims out = {(char *)"untouched", NULL, 7, 0};
  const char *why = NULL;
  th_jwt_status got = verify_pol(pol ? pol : &POLICY, token, len, &out, &why);
  CHECK(got == want, "%s: got %s (%s), want %s", name, th_jwt_status_name(got), why ? why : "-",
        th_jwt_status_name(want));
  CHECK(why && *why, "%s: no reason", name);
  if (got == TH_JWT_OK)
    th_jwt_claims_free(&out);
  else
    CHECK(out.sub && !strcmp(out.sub, "untouched") && out.json == NULL && out.json_len == 7,
          "%s: output written on failure", name);
}

/* ---------------------------------------------------------- valid tokens */

static void test_valid(void) {
  static const struct {
    const char *name, *header, *payload, *sub;
  } cases[] = {
    {"plain", HDR, PAY, "user-1"},
    {"no typ", "{\"alg\":\"RS256\",\"kid\":\"k1\"}", PAY, "user-1"},
    {"typ at+jwt", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}", PAY, "user-1"},
    {"typ application/at+JWT", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"application/at+JWT\"}",
     PAY, "user-1"},
    {"typ jwt", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"jwt\"}", PAY, "user-1"},
    {"ignored header members", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"jku\":\"http://evil/\","
     "\"x5u\":\"http://evil/\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AA\"},\"zip\":\"DEF\"}", PAY, "user-1"},
    {"aud list", HDR, "{\"aud\":[\"x\",\"aud-1\"]," CLAIMS "}", "user-1"},
    {"aud second audience", HDR, "{\"aud\":\"client-2\"," CLAIMS "}", "user-1"},
    {"client_id (no aud)", HDR, "{\"client_id\":\"client-2\",\"token_use\":\"access\","
     "\"scope\":\"aws.cognito.signin.user.admin\",\"cognito:groups\":[\"a\"]," CLAIMS "}", "user-1"},
    {"aud wins over client_id", HDR, "{\"aud\":\"aud-1\",\"client_id\":\"nope\"," CLAIMS "}", "user-1"},
    {"exp fraction", HDR, "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\",\"sub\":\"u\",\"exp\":1700000000.5}", "u"},
    {"exp within leeway", HDR, "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\",\"sub\":\"u\",\"exp\":1699999941}", "u"},
    {"nbf now", HDR, "{\"aud\":\"aud-1\",\"nbf\":1700000000," CLAIMS "}", "user-1"},
    {"nbf within leeway", HDR, "{\"aud\":\"aud-1\",\"nbf\":1700000060," CLAIMS "}", "user-1"},
    {"iat within leeway", HDR, "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\",\"sub\":\"u\","
     "\"exp\":1700003600,\"iat\":1700000060}", "u"},
    {"utf-8 sub", HDR, "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\",\"sub\":\"j\\u00fcrgen \xe2\x9c\x93\","
     "\"exp\":1700003600}", "j\xc3\xbcrgen \xe2\x9c\x93"},
    {"sub of 256 bytes", HDR, "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\",\"exp\":1700003600,\"sub\":\""
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
    {"duplicate sub: the last counts", HDR, "{\"sub\":\"evil\",\"aud\":\"aud-1\"," CLAIMS "}", "user-1"},
    {"nested claims", HDR, "{\"aud\":\"aud-1\",\"x\":[[[[[[[[[[{\"a\":{\"b\":null}}]]]]]]]]]]," CLAIMS "}",
     "user-1"},
    {"whitespace in JSON", "\n { \"alg\" : \"RS256\" , \"kid\" : \"k1\" } ", " {\"aud\":\"aud-1\","
     CLAIMS "}\n", "user-1"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    char *t = make_token(cases[i].header, cases[i].payload);
    th_jwt_claims out = {0};
    const char *why = NULL;
    th_jwt_status st = verify_pol(&POLICY, t, strlen(t), &out, &why);
    CHECK(st == TH_JWT_OK, "%s: %s (%s)", cases[i].name, th_jwt_status_name(st), why);
    if (st == TH_JWT_OK) {
      CHECK_STR(out.sub, cases[i].sub);
      CHECK(out.json && out.json_len == strlen(cases[i].payload) &&
            memcmp(out.json, cases[i].payload, out.json_len) == 0 && out.json[out.json_len] == 0,
            "%s: claims are not the payload", cases[i].name);
      th_jwt_claims_free(&out);
    }
    free(t);
  }
  /* the second key of the set */
  char *t2 = make_token_with(K2, "{\"alg\":\"RS256\",\"kid\":\"k2\"}", PAY);
  expect("second key", t2, strlen(t2), TH_JWT_OK, NULL);
  free(t2);
  /* exp is reported */
  char *t = make_token(HDR, PAY);
  th_jwt_claims out = {0};
  CHECK(verify_pol(&POLICY, t, strlen(t), &out, NULL) == TH_JWT_OK && out.exp == 1700003600.0,
        "exp not reported");
  th_jwt_claims_free(&out);
  /* the token may be a prefix of a longer buffer (len is what counts) */
  char *longer = cat3(t, "", " trailing");
  expect("len shorter than the buffer", longer, strlen(t), TH_JWT_OK, NULL);
  free(longer);
  free(t);
}

/* Leeway: 0 and the maximum; times at their edges. */
static void test_leeway(void) {
  th_jwt_policy p0 = POLICY, pmax = POLICY;
  p0.leeway_s = 0;
  pmax.leeway_s = TH_JWT_MAX_LEEWAY_S;
  static const struct {
    const char *name, *times;
    th_jwt_status at0, at60, at300;
  } cases[] = {
    {"exp = now", "\"exp\":1700000000", TH_JWT_EXPIRED, TH_JWT_OK, TH_JWT_OK},
    {"exp = now + 1", "\"exp\":1700000001", TH_JWT_OK, TH_JWT_OK, TH_JWT_OK},
    {"exp = now - 60", "\"exp\":1699999940", TH_JWT_EXPIRED, TH_JWT_EXPIRED, TH_JWT_OK},
    {"exp = now - 300", "\"exp\":1699999700", TH_JWT_EXPIRED, TH_JWT_EXPIRED, TH_JWT_EXPIRED},
    {"nbf = now + 1", "\"exp\":1700003600,\"nbf\":1700000001", TH_JWT_NOT_YET_VALID, TH_JWT_OK,
     TH_JWT_OK},
    {"nbf = now + 61", "\"exp\":1700003600,\"nbf\":1700000061", TH_JWT_NOT_YET_VALID,
     TH_JWT_NOT_YET_VALID, TH_JWT_OK},
    {"iat = now", "\"exp\":1700003600,\"iat\":1700000000", TH_JWT_OK, TH_JWT_OK, TH_JWT_OK},
    {"iat = now + 0.5", "\"exp\":1700003600,\"iat\":1700000000.5", TH_JWT_NOT_YET_VALID, TH_JWT_OK,
     TH_JWT_OK},
    {"iat = now + 301", "\"exp\":1700003600,\"iat\":1700000301", TH_JWT_NOT_YET_VALID,
     TH_JWT_NOT_YET_VALID, TH_JWT_NOT_YET_VALID},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    char payload[256];
    snprintf(payload, sizeof payload, "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\",\"sub\":\"u\",%s}",
             cases[i].times);
    char *t = make_token(HDR, payload);
    char name[128];
    snprintf(name, sizeof name, "%s, leeway 0", cases[i].name);
    expect(name, t, strlen(t), cases[i].at0, &p0);
    snprintf(name, sizeof name, "%s, leeway 60", cases[i].name);
    expect(name, t, strlen(t), cases[i].at60, NULL);
    snprintf(name, sizeof name, "%s, leeway 300", cases[i].name);
    expect(name, t, strlen(t), cases[i].at300, &pmax);
    free(t);
  }
}

/* ------------------------------------------------------ the hostile matrix */

typedef enum mutation {
  NONE, APPEND_SEGMENT, EMPTY_HEADER, EMPTY_PAYLOAD, DROP_SIGNATURE, PAD_HEADER, STD_ALPHABET,
  SPACE_IN_PAYLOAD, NONCANON_SIG, TAMPER_PAYLOAD, TAMPER_SIG, TRUNC_SIG, EXTEND_SIG, NUL_BYTE,
  FIVE_SEGMENTS, HUGE, SWAP_KID
} mutation;

/* Applies m to token t (freed); returns the new token, its length in *len. */
static char *mutate(char *t, mutation m, size_t *len) {
  size_t n = strlen(t);
  char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
  char *r = NULL;
  switch (m) {
  case NONE: r = t; t = NULL; break;
  case APPEND_SEGMENT: r = cat3(t, ".", "AAAA"); break;
  case EMPTY_HEADER: r = cat3("", "", d1); break;
  case EMPTY_PAYLOAD: { /* h..s */
    size_t hl = (size_t)(d1 - t) + 1;
    r = malloc(n + 1);
    memcpy(r, t, hl);
    memcpy(r + hl, d2, strlen(d2) + 1);
    break;
  }
  case DROP_SIGNATURE: d2[1] = '\0'; r = t; t = NULL; break;
  case PAD_HEADER: /* a padded header: '=' before the first dot */
    r = malloc(n + 3);
    memcpy(r, t, (size_t)(d1 - t));
    memcpy(r + (d1 - t), "==", 2);
    memcpy(r + (d1 - t) + 2, d1, strlen(d1) + 1);
    break;
  case STD_ALPHABET: /* a '-' or '_' of the signature in the standard alphabet */
    r = t;
    t = NULL;
    for (char *p = d2 + 1; *p; p++)
      if (*p == '-' || *p == '_') {
        *p = *p == '-' ? '+' : '/';
        break;
      } else if (!p[1])
        *p = '+';
    break;
  case SPACE_IN_PAYLOAD: r = t; t = NULL; d1[3] = ' '; break;
  case NONCANON_SIG: { /* 256 bytes: 342 characters, the last one's low 4 bits unused */
    r = t;
    t = NULL;
    char *last = r + strlen(r) - 1;
    static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t v = (size_t)(strchr(alphabet, *last) - alphabet);
    *last = alphabet[v | 1];
    break;
  }
  case TAMPER_PAYLOAD: r = t; t = NULL; d1[5] = d1[5] == 'A' ? 'B' : 'A'; break;
  case TAMPER_SIG: r = t; t = NULL; d2[10] = d2[10] == 'A' ? 'B' : 'A'; break;
  case TRUNC_SIG: r = t; t = NULL; r[n - 2] = '\0'; break; /* 340 characters: 255 bytes */
  case EXTEND_SIG: r = cat3(t, "", "AAAA"); break;
  case NUL_BYTE: r = t; t = NULL; d1[2] = '\0'; *len = n; return r;
  case FIVE_SEGMENTS: r = cat3(t, ".", "AAAA.AAAA"); break;
  case HUGE: { /* a valid-looking token of 16385 bytes */
    r = malloc(TH_JWT_MAX_TOKEN + 2);
    memset(r, 'A', TH_JWT_MAX_TOKEN + 1);
    memcpy(r, t, (size_t)(d2 - t));
    r[TH_JWT_MAX_TOKEN + 1] = '\0';
    break;
  }
  case SWAP_KID: { /* signed for kid k1, presented as k2 */
    char *h = b64url_str("{\"alg\":\"RS256\",\"kid\":\"k2\"}");
    r = cat3(h, "", d1);
    free(h);
    break;
  }
  }
  free(t);
  *len = strlen(r);
  return r;
}

static void test_hostile(void) {
  /* payload pieces */
#define P(x) "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\",\"sub\":\"user-1\"," x "}"
#define EXP "\"exp\":1700003600"
#define H(x) "{\"alg\":\"RS256\",\"kid\":\"k1\"," x "}"
  static const struct {
    const char *name, *header, *payload;
    signer sign;
    mutation m;
    th_jwt_status want;
  } cases[] = {
    /* shape */
    {"one segment", NULL, "abc", NO_SIG, NONE, TH_JWT_MALFORMED}, /* raw: see below */
    {"four segments", HDR, PAY, RS256, APPEND_SEGMENT, TH_JWT_MALFORMED},
    {"five segments (JWE shape)", HDR, PAY, RS256, FIVE_SEGMENTS, TH_JWT_MALFORMED},
    {"empty header segment", HDR, PAY, RS256, EMPTY_HEADER, TH_JWT_MALFORMED},
    {"empty payload segment", HDR, PAY, RS256, EMPTY_PAYLOAD, TH_JWT_MALFORMED},
    {"empty signature", HDR, PAY, RS256, DROP_SIGNATURE, TH_JWT_BAD_SIGNATURE},
    {"padding '='", HDR, PAY, RS256, PAD_HEADER, TH_JWT_MALFORMED},
    {"standard base64 alphabet", HDR, PAY, RS256, STD_ALPHABET, TH_JWT_MALFORMED},
    {"space inside", HDR, PAY, RS256, SPACE_IN_PAYLOAD, TH_JWT_MALFORMED},
    {"unused bits set", HDR, PAY, RS256, NONCANON_SIG, TH_JWT_MALFORMED},
    {"NUL byte inside", HDR, PAY, RS256, NUL_BYTE, TH_JWT_MALFORMED},
    {"huge token (> 16 KB)", HDR, PAY, RS256, HUGE, TH_JWT_TOO_LARGE},
    /* header */
    {"header not JSON", "{alg:RS256}", PAY, RS256, NONE, TH_JWT_MALFORMED},
    {"header an array", "[\"RS256\"]", PAY, RS256, NONE, TH_JWT_MALFORMED},
    {"header a string", "\"RS256\"", PAY, RS256, NONE, TH_JWT_MALFORMED},
    {"header with trailing garbage", HDR " x", PAY, RS256, NONE, TH_JWT_MALFORMED},
    {"header nested 40 deep", H("\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
     PAY, RS256, NONE, TH_JWT_MALFORMED},
    {"alg none, no signature", "{\"alg\":\"none\",\"kid\":\"k1\"}", PAY, NO_SIG, NONE, TH_JWT_BAD_ALG},
    {"alg none, RS256 signature", "{\"alg\":\"none\",\"kid\":\"k1\"}", PAY, RS256, NONE, TH_JWT_BAD_ALG},
    {"alg 'RS256 '", "{\"alg\":\"RS256 \",\"kid\":\"k1\"}", PAY, RS256, NONE, TH_JWT_BAD_ALG},
    {"alg rs256", "{\"alg\":\"rs256\",\"kid\":\"k1\"}", PAY, RS256, NONE, TH_JWT_BAD_ALG},
    {"alg missing", "{\"kid\":\"k1\"}", PAY, RS256, NONE, TH_JWT_BAD_ALG},
    {"alg an array", "{\"alg\":[\"RS256\"],\"kid\":\"k1\"}", PAY, RS256, NONE, TH_JWT_BAD_ALG},
    {"alg null", "{\"alg\":null,\"kid\":\"k1\"}", PAY, RS256, NONE, TH_JWT_BAD_ALG},
    {"alg RS256\\u0000", "{\"alg\":\"RS256\\u0000\",\"kid\":\"k1\"}", PAY, RS256, NONE, TH_JWT_BAD_ALG},
    {"HS256 keyed with the RSA public key", "{\"alg\":\"HS256\",\"kid\":\"k1\"}", PAY, HS256_PEM,
     NONE, TH_JWT_BAD_ALG},
    {"ES256 with an EC key in the set", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PAY, ES256, NONE,
     TH_JWT_BAD_ALG},
    {"PS256 with the RSA key", "{\"alg\":\"PS256\",\"kid\":\"k1\"}", PAY, PS256, NONE, TH_JWT_BAD_ALG},
    {"RS384", "{\"alg\":\"RS384\",\"kid\":\"k1\"}", PAY, RS256, NONE, TH_JWT_BAD_ALG},
    {"crit present", H("\"crit\":[\"exp\"],\"exp\":1"), PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"crit empty", H("\"crit\":[]"), PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"crit null", H("\"crit\":null"), PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"crit b64", H("\"b64\":false,\"crit\":[\"b64\"]"), PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"typ JOSE", H("\"typ\":\"JOSE\""), PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"typ a number", H("\"typ\":1"), PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"typ application/", H("\"typ\":\"application/\""), PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"kid missing", "{\"alg\":\"RS256\"}", PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"kid a number", "{\"alg\":\"RS256\",\"kid\":1}", PAY, RS256, NONE, TH_JWT_BAD_HEADER},
    {"kid unknown", "{\"alg\":\"RS256\",\"kid\":\"k9\"}", PAY, RS256, NONE, TH_JWT_UNKNOWN_KID},
    {"kid empty", "{\"alg\":\"RS256\",\"kid\":\"\"}", PAY, RS256, NONE, TH_JWT_UNKNOWN_KID},
    {"kid with a NUL", "{\"alg\":\"RS256\",\"kid\":\"k1\\u0000\"}", PAY, RS256, NONE,
     TH_JWT_UNKNOWN_KID},
    {"kid of an EC key", "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", PAY, RS256, NONE, TH_JWT_UNKNOWN_KID},
    {"kid of an oct key", "{\"alg\":\"RS256\",\"kid\":\"hmac1\"}", PAY, RS256, NONE,
     TH_JWT_UNKNOWN_KID},
    {"kid of an encryption key", "{\"alg\":\"RS256\",\"kid\":\"enc1\"}", PAY, RS256, NONE,
     TH_JWT_UNKNOWN_KID},
    {"kid of a 1024-bit key", "{\"alg\":\"RS256\",\"kid\":\"weak1\"}", PAY, RS256, NONE,
     TH_JWT_UNKNOWN_KID},
    /* signature */
    {"signed with another key", HDR, PAY, OTHER_RSA, NONE, TH_JWT_BAD_SIGNATURE},
    {"signed for k1, presented as k2", HDR, PAY, RS256, SWAP_KID, TH_JWT_BAD_SIGNATURE},
    {"tampered payload", HDR, PAY, RS256, TAMPER_PAYLOAD, TH_JWT_BAD_SIGNATURE},
    {"tampered signature", HDR, PAY, RS256, TAMPER_SIG, TH_JWT_BAD_SIGNATURE},
    {"signature too short", HDR, PAY, RS256, TRUNC_SIG, TH_JWT_BAD_SIGNATURE},
    {"signature too long", HDR, PAY, RS256, EXTEND_SIG, TH_JWT_BAD_SIGNATURE},
    /* payload (validly signed) */
    {"payload an array", HDR, "[" PAY "]", RS256, NONE, TH_JWT_MALFORMED},
    {"payload not JSON", HDR, "{sub:1}", RS256, NONE, TH_JWT_MALFORMED},
    {"payload nested 40 deep", HDR, P(EXP ",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
     RS256, NONE, TH_JWT_MALFORMED},
    {"exp NaN", HDR, P("\"exp\":NaN"), RS256, NONE, TH_JWT_MALFORMED},
    {"exp Infinity", HDR, P("\"exp\":Infinity"), RS256, NONE, TH_JWT_MALFORMED},
    {"exp hex", HDR, P("\"exp\":0x7fffffff"), RS256, NONE, TH_JWT_MALFORMED},
    {"exp missing", HDR, P("\"iat\":1699999000"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp a string", HDR, P("\"exp\":\"1700003600\""), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp null", HDR, P("\"exp\":null"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp true", HDR, P("\"exp\":true"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp 1e300", HDR, P("\"exp\":1e300"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp 1e400 (infinity)", HDR, P("\"exp\":1e400"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp -1e400", HDR, P("\"exp\":-1e400"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp negative", HDR, P("\"exp\":-1"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp past year 9999", HDR, P("\"exp\":253402300800"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"exp past", HDR, P("\"exp\":1600000000"), RS256, NONE, TH_JWT_EXPIRED},
    {"exp 0", HDR, P("\"exp\":0"), RS256, NONE, TH_JWT_EXPIRED},
    {"nbf future", HDR, P(EXP ",\"nbf\":1700001000"), RS256, NONE, TH_JWT_NOT_YET_VALID},
    {"nbf a string", HDR, P(EXP ",\"nbf\":\"0\""), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"nbf 1e300", HDR, P(EXP ",\"nbf\":1e300"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"iat future", HDR, P(EXP ",\"iat\":1700001000"), RS256, NONE, TH_JWT_NOT_YET_VALID},
    {"iat an object", HDR, P(EXP ",\"iat\":{}"), RS256, NONE, TH_JWT_BAD_CLAIM},
    {"iss wrong", HDR, "{\"aud\":\"aud-1\",\"iss\":\"https://evil.example/pool\",\"sub\":\"u\"," EXP "}",
     RS256, NONE, TH_JWT_BAD_ISSUER},
    {"iss missing", HDR, "{\"aud\":\"aud-1\",\"sub\":\"u\"," EXP "}", RS256, NONE, TH_JWT_BAD_ISSUER},
    {"iss a prefix", HDR, "{\"aud\":\"aud-1\",\"iss\":\"https://issuer.example/poo\",\"sub\":\"u\","
     EXP "}", RS256, NONE, TH_JWT_BAD_ISSUER},
    {"iss longer", HDR, "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "/\",\"sub\":\"u\"," EXP "}", RS256,
     NONE, TH_JWT_BAD_ISSUER},
    {"iss other case", HDR, "{\"aud\":\"aud-1\",\"iss\":\"https://ISSUER.example/pool\",\"sub\":\"u\","
     EXP "}", RS256, NONE, TH_JWT_BAD_ISSUER},
    {"iss with a NUL", HDR, "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\\u0000x\",\"sub\":\"u\"," EXP "}",
     RS256, NONE, TH_JWT_BAD_ISSUER},
    {"iss an array", HDR, "{\"aud\":\"aud-1\",\"iss\":[\"" ISSUER "\"],\"sub\":\"u\"," EXP "}", RS256,
     NONE, TH_JWT_BAD_ISSUER},
#define A(x) "{" x "\"iss\":\"" ISSUER "\",\"sub\":\"u\"," EXP "}"
    {"aud wrong", HDR, A("\"aud\":\"aud-2\","), RS256, NONE, TH_JWT_BAD_AUDIENCE},
    {"aud a prefix", HDR, A("\"aud\":\"aud-\","), RS256, NONE, TH_JWT_BAD_AUDIENCE},
    {"aud empty array", HDR, A("\"aud\":[],"), RS256, NONE, TH_JWT_BAD_AUDIENCE},
    {"aud empty array, good client_id", HDR, A("\"aud\":[],\"client_id\":\"client-2\","), RS256,
     NONE, TH_JWT_BAD_AUDIENCE},
    {"aud array of non-strings", HDR, A("\"aud\":[1,true],"), RS256, NONE, TH_JWT_BAD_AUDIENCE},
    {"aud array with a non-string", HDR, A("\"aud\":[\"aud-1\",1],"), RS256, NONE,
     TH_JWT_BAD_AUDIENCE},
    {"aud an object", HDR, A("\"aud\":{\"aud-1\":true},"), RS256, NONE, TH_JWT_BAD_AUDIENCE},
    {"aud null", HDR, A("\"aud\":null,\"client_id\":\"client-2\","), RS256, NONE, TH_JWT_BAD_AUDIENCE},
    {"aud a number", HDR, A("\"aud\":1,"), RS256, NONE, TH_JWT_BAD_AUDIENCE},
    {"no aud, client_id wrong", HDR, A("\"client_id\":\"client-3\","), RS256, NONE,
     TH_JWT_BAD_AUDIENCE},
    {"no aud, client_id a list", HDR, A("\"client_id\":[\"client-2\"],"), RS256, NONE,
     TH_JWT_BAD_AUDIENCE},
    {"no aud, no client_id", HDR, A(""), RS256, NONE, TH_JWT_BAD_AUDIENCE},
#define S(x) "{\"aud\":\"aud-1\",\"iss\":\"" ISSUER "\"," EXP x "}"
    {"sub missing", HDR, S(""), RS256, NONE, TH_JWT_NO_SUB},
    {"sub empty", HDR, S(",\"sub\":\"\""), RS256, NONE, TH_JWT_NO_SUB},
    {"sub a number", HDR, S(",\"sub\":12345"), RS256, NONE, TH_JWT_NO_SUB},
    {"sub an object", HDR, S(",\"sub\":{\"id\":\"u\"}"), RS256, NONE, TH_JWT_NO_SUB},
    {"sub null", HDR, S(",\"sub\":null"), RS256, NONE, TH_JWT_NO_SUB},
    {"sub with a NUL", HDR, S(",\"sub\":\"admin\\u0000x\""), RS256, NONE, TH_JWT_NO_SUB},
    {"sub with a newline", HDR, S(",\"sub\":\"a\\nb\""), RS256, NONE, TH_JWT_NO_SUB},
    {"sub not UTF-8", HDR, S(",\"sub\":\"a\xff\xfe\""), RS256, NONE, TH_JWT_NO_SUB},
    {"sub of 257 bytes", HDR, S(",\"sub\":\"0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef0123456789abcdef0123456789abcdefX\""), RS256, NONE, TH_JWT_NO_SUB},
  };
#undef P
#undef H
#undef A
#undef S
  size_t kinds = 0;
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    char *t;
    size_t len;
    if (!cases[i].header) {
      t = malloc(strlen(cases[i].payload) + 1);
      memcpy(t, cases[i].payload, strlen(cases[i].payload) + 1);
    } else {
      t = make_token_with(cases[i].sign, cases[i].header, cases[i].payload);
    }
    t = mutate(t, cases[i].m, &len);
    expect(cases[i].name, t, len, cases[i].want, NULL);
    free(t);
    kinds++;
  }
  /* short shapes */
  static const char *const shapes[] = {"", ".", "..", "...", "a", "a.b", "a.b.", ".b.c", "a..c",
                                       "eyJ9.e30.", "=.=.=", "a.b.c.d"};
  for (size_t i = 0; i < TH_ARRAY_LEN(shapes); i++)
    expect(shapes[i], shapes[i], strlen(shapes[i]), TH_JWT_MALFORMED, NULL);
  expect("{}.{}.{}", "e30.e30.e30", 11, TH_JWT_BAD_ALG, NULL);
  CHECK(kinds >= 25, "only %zu hostile kinds", kinds);
  expect("NULL token", NULL, 0, TH_JWT_MALFORMED, NULL);
}

/* Every one-character change and every truncation of a valid token fails. */
static void test_every_change(void) {
  static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
  char *t = make_token(HDR, PAY);
  size_t len = strlen(t);
  char *c = malloc(len + 1);
  int accepted = 0, tried = 0;
  th_jwt_claims out;
  for (size_t i = 0; i < len; i++)
    for (size_t a = i % 7; a < sizeof alphabet - 1; a += 7) {
      if (alphabet[a] == t[i])
        continue;
      memcpy(c, t, len + 1);
      c[i] = alphabet[a];
      tried++;
      if (verify_pol(&POLICY, c, len, &out, NULL) == TH_JWT_OK) {
        accepted++;
        th_jwt_claims_free(&out);
        fprintf(stderr, "accepted with position %zu changed to '%c'\n", i, alphabet[a]);
      }
    }
  CHECK(accepted == 0 && tried > 5000, "%d of %d changed tokens accepted", accepted, tried);
  accepted = 0;
  for (size_t n = 0; n < len; n++)
    if (verify_pol(&POLICY, t, n, &out, NULL) == TH_JWT_OK) {
      accepted++;
      th_jwt_claims_free(&out);
    }
  CHECK(accepted == 0, "%d truncations accepted", accepted);
  free(c);
  free(t);
}

static void test_policy(void) {
  char *t = make_token(HDR, PAY);
  th_jwt_policy p;
  th_jwt_claims out;
  const char *none[] = {NULL};
  const th_jwt_policy bad[] = {
    {NULL, AUDS, 2, 60, NOW}, {ISSUER, NULL, 2, 60, NOW}, {ISSUER, AUDS, 0, 60, NOW},
    {ISSUER, none, 1, 60, NOW}, {ISSUER, AUDS, 2, -1, NOW}, {ISSUER, AUDS, 2, 301, NOW},
    {ISSUER, AUDS, 2, 60, -1}, {ISSUER, AUDS, 2, 60, 1e300},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++)
    CHECK(verify_pol(&bad[i], t, strlen(t), &out, NULL) == TH_JWT_INTERNAL, "bad policy %zu", i);
  p = POLICY;
  p.now = NAN;
  CHECK(verify_pol(&p, t, strlen(t), &out, NULL) == TH_JWT_INTERNAL, "NaN now accepted");
  CHECK(th_jwt_verify(ver, NULL, &POLICY, t, strlen(t), &out, NULL) == TH_JWT_INTERNAL, "no keys");
  CHECK(th_jwt_verify(NULL, keys, &POLICY, t, strlen(t), &out, NULL) == TH_JWT_INTERNAL, "no verifier");
  /* one audience configured */
  const char *one[] = {"client-2"};
  p = POLICY;
  p.audiences = one;
  p.naudiences = 1;
  expect("aud-1 not configured", t, strlen(t), TH_JWT_BAD_AUDIENCE, &p);
  free(t);
}

static void test_names(void) {
  static const char *const names[] = {"ok", "too_large", "malformed", "bad_alg", "bad_header",
    "unknown_kid", "bad_signature", "bad_issuer", "bad_audience", "bad_claim", "expired",
    "not_yet_valid", "no_sub", "internal"};
  for (int s = TH_JWT_OK; s <= TH_JWT_INTERNAL; s++)
    CHECK_STR(th_jwt_status_name((th_jwt_status)s), names[s]);
  CHECK_STR(th_jwt_status_name((th_jwt_status)99), "internal");
}

static void test_bearer(void) {
  static const struct {
    const char *value, *token;
  } cases[] = {
    {"Bearer abc.def.ghi", "abc.def.ghi"}, {"bearer abc", "abc"}, {"BEARER   abc  ", "abc"},
    {"abc.def.ghi", "abc.def.ghi"}, {"Bearer", NULL}, {"Bearer ", NULL}, {"", NULL},
    {"   ", NULL}, {"Bearer a b", NULL}, {"Basic dXNlcjpwYXNz", NULL}, {"Bearerabc", "Bearerabc"},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
    size_t len = 0;
    const char *t = th_jwt_bearer(cases[i].value, &len);
    if (!cases[i].token)
      CHECK(t == NULL, "'%s' gave a token", cases[i].value);
    else
      CHECK(t && len == strlen(cases[i].token) && !memcmp(t, cases[i].token, len), "'%s'",
            cases[i].value);
  }
  size_t len = 0;
  CHECK(th_jwt_bearer(NULL, &len) == NULL, "NULL");
}

/* --------------------------------------------------------------- key sets */

static const char EC_JWK[] = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec1\",\"use\":\"sig\","
  "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
static const char OCT_JWK[] = "{\"kty\":\"oct\",\"kid\":\"hmac1\",\"k\":\"c2VjcmV0\"}";
static const char OKP_JWK[] = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed1\","
  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";

static char *doc_of(char **jwks, size_t n) {
  th_buf b;
  th_buf_init(&b, 1u << 24);
  th_buf_append_str(&b, "{\"keys\":[");
  for (size_t i = 0; i < n; i++) {
    if (i)
      th_buf_append_str(&b, ",");
    th_buf_append_str(&b, jwks[i]);
  }
  th_buf_append_str(&b, "]}");
  return th_buf_steal(&b, NULL);
}

/* The test set: k1 (alg, use given), k2 (bare), and keys to be skipped. */
static char *main_doc(void) {
  char *parts[] = {
    jwk(k1, "k1", ",\"alg\":\"RS256\",\"use\":\"sig\""),
    jwk(k2, "k2", ""),
    strdup(EC_JWK),
    strdup(OCT_JWK),
    strdup(OKP_JWK),
    jwk(other, "enc1", ",\"use\":\"enc\""),
    jwk(other, "ops1", ",\"key_ops\":[\"encrypt\"]"),
    jwk(other, "rs384", ",\"alg\":\"RS384\""),
    jwk(other, "", ""),
    jwk(weak, "weak1", ""),
    jwk(other, "k1", ""), /* a duplicate kid: the first stays */
    strdup("[1,2]"),
    strdup("\"a string\""),
  };
  char *d = doc_of(parts, TH_ARRAY_LEN(parts));
  for (size_t i = 0; i < TH_ARRAY_LEN(parts); i++)
    free(parts[i]);
  return d;
}

static void test_jwks_parse(void) {
  th_jwks *s = NULL;
  th_jwks_report rep;
  char err[512];
  memset(&rep, 0xff, sizeof rep);
  char *doc = main_doc();
  th_result r = th_jwks_parse(doc, strlen(doc), &s, &rep, err, sizeof err);
  CHECK(r == TH_OK, "main doc: %s", err);
  CHECK(th_jwks_count(s) == 2 && rep.usable == 2, "usable %zu", rep.usable);
  CHECK(rep.not_rsa == 4 && rep.not_sig == 2 && rep.other_alg == 1 && rep.no_kid == 1 &&
        rep.bad_key == 1 && rep.duplicate == 1, "report: not_rsa %zu not_sig %zu other_alg %zu "
        "no_kid %zu bad_key %zu duplicate %zu", rep.not_rsa, rep.not_sig, rep.other_alg,
        rep.no_kid, rep.bad_key, rep.duplicate);
  /* cjson reads [1,2] as a table: an object without kty */
  CHECK(rep.not_object == 1, "not_object %zu", rep.not_object);
  CHECK(th_jwks_has_kid(s, "k1") && th_jwks_has_kid(s, "k2") && !th_jwks_has_kid(s, "ec1") &&
        !th_jwks_has_kid(s, "weak1"), "kids");
  th_jwks_release(s);
  free(doc);

  /* member variations of one key: usable or not */
  char *n = bn_b64(k1, OSSL_PKEY_PARAM_RSA_N), *e = bn_b64(k1, OSSL_PKEY_PARAM_RSA_E);
  static const struct {
    const char *name, *fmt;
    int usable;
  } keyv[] = {
    {"plain", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"%s\",\"e\":\"%s\"}", 1},
    {"key_ops verify", "{\"kty\":\"RSA\",\"kid\":\"a\",\"key_ops\":[\"verify\"],\"n\":\"%s\",\"e\":\"%s\"}", 1},
    {"x5c ignored", "{\"kty\":\"RSA\",\"kid\":\"a\",\"x5c\":[\"MIIB\"],\"n\":\"%s\",\"e\":\"%s\"}", 1},
    {"leading zero in n", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"AA%s\",\"e\":\"%s\"}", -1},
    {"kty rsa lowercase", "{\"kty\":\"rsa\",\"kid\":\"a\",\"n\":\"%s\",\"e\":\"%s\"}", 0},
    {"use Sig", "{\"kty\":\"RSA\",\"use\":\"Sig\",\"kid\":\"a\",\"n\":\"%s\",\"e\":\"%s\"}", 0},
    {"key_ops not an array", "{\"kty\":\"RSA\",\"key_ops\":\"verify\",\"kid\":\"a\",\"n\":\"%s\",\"e\":\"%s\"}", 0},
    {"kid a number", "{\"kty\":\"RSA\",\"kid\":1,\"n\":\"%s\",\"e\":\"%s\"}", 0},
    {"n padded", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"%s=\",\"e\":\"%s\"}", 0},
    {"n in standard base64", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"+%s\",\"e\":\"%s\"}", 0},
    {"e = 3", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"%s\",\"e\":\"Aw\"%.0s}", 1},
    {"e = 2^256 + 1", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"%s\",\"e\":"
     "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB\"%.0s}", 0},
    {"e = 2^255 + 1, leading zeros", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"%s\",\"e\":"
     "\"AACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ\"%.0s}", 1},
    {"e = 1", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"%s\",\"e\":\"AQ\"%.0s}", 0},
    {"e even", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"%s\",\"e\":\"AQAA\"%.0s}", 0},
    {"e missing", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"%s\"%.0s}", 0},
    {"n a number", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":1%.0s,\"e\":\"%s\"}", 0},
    {"n empty", "{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"\"%.0s,\"e\":\"%s\"}", 0},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(keyv); i++) {
    char one[2048], d[2200];
    snprintf(one, sizeof one, keyv[i].fmt, n, e);
    snprintf(d, sizeof d, "{\"keys\":[%s]}", one);
    s = NULL;
    r = th_jwks_parse(d, strlen(d), &s, &rep, err, sizeof err);
    if (keyv[i].usable == -1) { /* a leading zero: only when n's length allows it */
      CHECK(r == TH_OK || r == TH_ERR_INVALID, "%s", keyv[i].name);
    } else {
      CHECK((r == TH_OK) == keyv[i].usable, "%s: %s (%s)", keyv[i].name, th_result_name(r), err);
    }
    th_jwks_release(s);
  }
  /* an n of more than 8192 characters (over TH_JWKS_MAX_BITS anyway) */
  {
    size_t big = 8193 + 64;
    char *d = malloc(big + 64);
    int at = snprintf(d, big, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"e\":\"AQAB\",\"n\":\"");
    memset(d + at, 'B', 8193);
    snprintf(d + at + 8193, 64, "\"}]}");
    s = NULL;
    CHECK(th_jwks_parse(d, strlen(d), &s, NULL, err, sizeof err) == TH_ERR_INVALID && !s,
          "an n of 8193 characters");
    free(d);
  }
  CHECK(th_jwks_load_url(NULL, &s, NULL, err, sizeof err) == TH_ERR_INVALID, "NULL URL");
  /* a leading zero byte, properly encoded, is accepted */
  {
    BIGNUM *bn = NULL;
    EVP_PKEY_get_bn_param(k1, OSSL_PKEY_PARAM_RSA_N, &bn);
    unsigned char buf[300] = {0};
    int nb = BN_bn2bin(bn, buf + 1);
    BN_free(bn);
    char *n0 = b64url(buf, (size_t)nb + 1), d[2200];
    snprintf(d, sizeof d, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"n\":\"%s\",\"e\":\"%s\"}]}", n0, e);
    s = NULL;
    CHECK(th_jwks_parse(d, strlen(d), &s, NULL, err, sizeof err) == TH_OK, "leading zero: %s", err);
    char *t = make_token(HDR, PAY);
    th_jwt_claims out;
    th_jwt_status st = s ? th_jwt_verify(ver, s, &POLICY, t, strlen(t), &out, NULL) : TH_JWT_INTERNAL;
    CHECK(st == TH_JWT_OK, "leading-zero key does not verify: %s", th_jwt_status_name(st));
    if (st == TH_JWT_OK)
      th_jwt_claims_free(&out);
    th_jwks_release(s);
    free(t);
    free(n0);
  }
  free(n);
  free(e);

  /* documents refused */
  static const struct {
    const char *name, *doc;
    th_result want;
  } docs[] = {
    {"not JSON", "{keys:[]}", TH_ERR_INVALID},
    {"an array", "[{\"kty\":\"RSA\"}]", TH_ERR_INVALID},
    {"empty", "", TH_ERR_INVALID},
    {"no keys", "{\"k\":[]}", TH_ERR_INVALID},
    {"keys an object", "{\"keys\":{\"a\":1}}", TH_ERR_INVALID},
    {"keys empty", "{\"keys\":[]}", TH_ERR_INVALID},
    {"only unusable keys", "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"},{\"kty\":\"EC\"}]}", TH_ERR_INVALID},
    {"NaN", "{\"keys\":[],\"x\":NaN}", TH_ERR_INVALID},
    {"deep", "{\"keys\":[],\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}", TH_ERR_INVALID},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(docs); i++) {
    s = NULL;
    err[0] = '\0';
    r = th_jwks_parse(docs[i].doc, strlen(docs[i].doc), &s, &rep, err, sizeof err);
    CHECK(r == docs[i].want && s == NULL && err[0], "%s: %s", docs[i].name, th_result_name(r));
  }
  r = th_jwks_parse("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}", 33, &s, &rep, err, sizeof err);
  CHECK(r == TH_ERR_INVALID && strstr(err, "no usable"), "zero usable: %s", err);

  /* limits: key count and size */
  char *many[TH_JWKS_MAX_KEYS + 1];
  for (size_t i = 0; i <= TH_JWKS_MAX_KEYS; i++) {
    char kid[16];
    snprintf(kid, sizeof kid, "k%zu", i);
    many[i] = jwk(k1, kid, "");
  }
  char *d64 = doc_of(many, TH_JWKS_MAX_KEYS), *d65 = doc_of(many, TH_JWKS_MAX_KEYS + 1);
  s = NULL;
  CHECK(th_jwks_parse(d64, strlen(d64), &s, &rep, err, sizeof err) == TH_OK &&
        th_jwks_count(s) == TH_JWKS_MAX_KEYS, "64 keys: %s", err);
  th_jwks_release(s);
  s = NULL;
  CHECK(th_jwks_parse(d65, strlen(d65), &s, &rep, err, sizeof err) == TH_ERR_TOO_LARGE && !s,
        "65 keys: %s", err);
  for (size_t i = 0; i <= TH_JWKS_MAX_KEYS; i++)
    free(many[i]);
  free(d64);
  free(d65);
  size_t big = TH_JWKS_MAX_BYTES + 1;
  char *huge = malloc(big + 1);
  memset(huge, ' ', big);
  memcpy(huge, "{\"keys\":[]}", 11);
  huge[big] = '\0';
  CHECK(th_jwks_parse(huge, big, &s, &rep, err, sizeof err) == TH_ERR_TOO_LARGE, "huge doc");
  CHECK(th_jwks_parse(huge, big - 1, &s, &rep, err, sizeof err) == TH_ERR_INVALID, "big doc");
  free(huge);
  CHECK(th_jwks_parse(NULL, 0, &s, &rep, err, sizeof err) == TH_ERR_INVALID, "NULL doc");
  th_jwks_release(NULL);
}

/* ------------------------------------------------------------ the loaders */

static char tmpdir[] = "/tmp/test_jwt.XXXXXX";

static char *write_file(const char *name, const char *text) {
  char *path = cat3(tmpdir, "/", name);
  FILE *f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_load_file(void) {
  th_jwks *s = NULL;
  char err[512];
  char *doc = main_doc();
  char *path = write_file("jwks.json", doc);
  CHECK(th_jwks_load_file(path, &s, NULL, err, sizeof err) == TH_OK && th_jwks_count(s) == 2,
        "file: %s", err);
  th_jwks_release(s);
  s = NULL;
  CHECK(th_jwks_load(path, &s, NULL, err, sizeof err) == TH_OK, "load(file): %s", err);
  th_jwks_release(s);
  s = NULL;
  char *missing = cat3(tmpdir, "/", "missing.json");
  CHECK(th_jwks_load_file(missing, &s, NULL, err, sizeof err) == TH_ERR_IO && !s && strstr(err, "missing.json"),
        "missing file: %s", err);
  char *bad = write_file("bad.json", "not json");
  CHECK(th_jwks_load_file(bad, &s, NULL, err, sizeof err) == TH_ERR_INVALID && !s, "bad file");
  char *big_text = malloc(TH_JWKS_MAX_BYTES + 2);
  memset(big_text, ' ', TH_JWKS_MAX_BYTES + 1);
  big_text[TH_JWKS_MAX_BYTES + 1] = '\0';
  char *big = write_file("big.json", big_text);
  CHECK(th_jwks_load_file(big, &s, NULL, err, sizeof err) == TH_ERR_TOO_LARGE && !s, "big file");
  CHECK(th_jwks_load_file(tmpdir, &s, NULL, err, sizeof err) == TH_ERR_IO && !s, "a directory: %s", err);
  unlink(path);
  unlink(bad);
  unlink(big);
  free(big_text);
  free(path);
  free(missing);
  free(bad);
  free(big);
  free(doc);
}

/* A JWKS server on 127.0.0.1: /jwks the current document, /404, /big, /bad. */
static pthread_mutex_t served_lock = PTHREAD_MUTEX_INITIALIZER;
static char *served;
static int hits;

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state) {
  int status = 200;
  char *body;
  pthread_mutex_lock(&served_lock);
  hits++;
  if (!strcmp(url, "/jwks")) {
    body = strdup(served);
  } else if (!strcmp(url, "/big")) {
    body = malloc(TH_JWKS_MAX_BYTES + 100);
    memset(body, ' ', TH_JWKS_MAX_BYTES + 99);
    body[TH_JWKS_MAX_BYTES + 99] = '\0';
  } else if (!strcmp(url, "/bad")) {
    body = strdup("<html>not json</html>");
  } else {
    status = 404;
    body = strdup("{\"message\":\"Not Found\"}");
  }
  pthread_mutex_unlock(&served_lock);
  struct MHD_Response *r =
    MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static void serve_doc(char *doc) {
  pthread_mutex_lock(&served_lock);
  free(served);
  served = doc;
  pthread_mutex_unlock(&served_lock);
}

static void test_load_url(void) {
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  serve_doc(main_doc());
  struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer,
                                          NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
  CHECK(d != NULL, "cannot start the JWKS server");
  if (!d)
    return;
  int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
  char url[128], err[512];
  th_jwks *s = NULL;
  th_jwks_report rep;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", port);
  CHECK(th_jwks_load_url(url, &s, &rep, err, sizeof err) == TH_OK && th_jwks_count(s) == 2 &&
        rep.not_rsa == 4, "url: %s", err);
  th_jwks_release(s);
  s = NULL;
  snprintf(url, sizeof url, "HTTP://127.0.0.1:%d/jwks", port);
  CHECK(th_jwks_load(url, &s, NULL, err, sizeof err) == TH_OK, "load(URL): %s", err);
  th_jwks_release(s);
  s = NULL;
  static const struct {
    const char *path;
    th_result want;
  } bad[] = {{"/404", TH_ERR_UNAVAILABLE}, {"/big", TH_ERR_TOO_LARGE}, {"/bad", TH_ERR_INVALID}};
  for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, bad[i].path);
    th_result r = th_jwks_load_url(url, &s, NULL, err, sizeof err);
    CHECK(r == bad[i].want && !s && err[0], "%s: %s (%s)", bad[i].path, th_result_name(r), err);
  }

  /* the cache on a URL: the key rotates; refetch at most once a minute */
  th_jwks_cache *c = NULL;
  snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", port);
  CHECK(th_jwks_cache_new(url, 1000.0, &c, NULL, err, sizeof err) == TH_OK, "cache: %s", err);
  if (c) {
    char *parts[] = {jwk(k2, "k2", ""), jwk(other, "k3", "")};
    serve_doc(doc_of(parts, 2));
    free(parts[0]);
    free(parts[1]);
    pthread_mutex_lock(&served_lock);
    int before = hits;
    pthread_mutex_unlock(&served_lock);
    CHECK(th_jwks_cache_refetch(c, 1000.0 + 59999, err, sizeof err) == TH_ERR_THROTTLED, "too soon");
    pthread_mutex_lock(&served_lock);
    CHECK(hits == before, "fetched while throttled");
    pthread_mutex_unlock(&served_lock);
    th_jwks *cur = th_jwks_cache_get(c);
    CHECK(th_jwks_has_kid(cur, "k1") && !th_jwks_has_kid(cur, "k3"), "set changed early");
    CHECK(th_jwks_cache_refetch(c, 1000.0 + 60000, err, sizeof err) == TH_OK, "refetch: %s", err);
    th_jwks *now = th_jwks_cache_get(c);
    CHECK(th_jwks_has_kid(now, "k3") && !th_jwks_has_kid(now, "k1"), "new set not installed");
    CHECK(th_jwks_has_kid(cur, "k1"), "the old set changed under its holder");
    th_jwks_release(cur);
    th_jwks_release(now);
    /* a failed fetch keeps the set and still counts */
    MHD_stop_daemon(d);
    d = NULL;
    CHECK(th_jwks_cache_refetch(c, 1000.0 + 120000, err, sizeof err) == TH_ERR_UNAVAILABLE,
          "refetch from a stopped server: %s", err);
    now = th_jwks_cache_get(c);
    CHECK(th_jwks_has_kid(now, "k3"), "set lost after a failed fetch");
    th_jwks_release(now);
    CHECK(th_jwks_cache_refetch(c, 1000.0 + 120001, err, sizeof err) == TH_ERR_THROTTLED,
          "a failed fetch did not count");
    th_jwks_cache_free(c);
  }
  if (d)
    MHD_stop_daemon(d);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/jwks", port);
  CHECK(th_jwks_load_url(url, &s, NULL, err, sizeof err) == TH_ERR_UNAVAILABLE && !s,
        "closed port: %s", err);
  CHECK(th_jwks_cache_new(url, 0, &c, NULL, err, sizeof err) == TH_ERR_UNAVAILABLE,
        "cache on a closed port");
  serve_doc(NULL);
}

static void test_refetch_rule(void) {
  static const struct {
    double last, now;
    int want;
  } cases[] = {
    {0, 0, 0}, {0, 59999.9, 0}, {0, 60000, 1}, {1e6, 1e6 + 60000, 1}, {1e6, 1e6 + 1, 0},
    {1e6, 1e6 - 1, 0}, {1e6, 1e9, 1},
  };
  for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++)
    CHECK(th_jwks_refetch_allowed(cases[i].last, cases[i].now) == cases[i].want,
          "last %.1f now %.1f", cases[i].last, cases[i].now);
}

/* Threads verify through the cache while another rotates the file and
 * refetches (ASan/UBSan watch the swap and the reference counts). */
typedef struct worker_arg {
  th_jwks_cache *c;
  const char *token;
  int ok, bad;
} worker_arg;

static void *worker(void *p) {
  worker_arg *a = p;
  th_jwt_verifier *v = th_jwt_verifier_new();
  for (int i = 0; i < 300; i++) {
    th_jwks *k = th_jwks_cache_get(a->c);
    th_jwt_claims out;
    th_jwt_status st = th_jwt_verify(v, k, &POLICY, a->token, strlen(a->token), &out, NULL);
    th_jwks_release(k);
    if (st == TH_JWT_OK) {
      a->ok += !strcmp(out.sub, "user-1");
      th_jwt_claims_free(&out);
    } else {
      a->bad++;
    }
  }
  th_jwt_verifier_free(v);
  return NULL;
}

static void test_cache_threads(void) {
  char err[512];
  char *parts[] = {jwk(k1, "k1", ""), jwk(k2, "k2", "")};
  char *doc = doc_of(parts, 2);
  char *path = write_file("rotating.json", doc);
  th_jwks_cache *c = NULL;
  CHECK(th_jwks_cache_new(path, 0, &c, NULL, err, sizeof err) == TH_OK, "cache: %s", err);
  if (!c)
    return;
  char *t = make_token(HDR, PAY);
  worker_arg args[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (worker_arg){c, t, 0, 0};
    pthread_create(&th[i], NULL, worker, &args[i]);
  }
  int swaps = 0;
  for (int i = 1; i <= 40; i++)
    swaps += th_jwks_cache_refetch(c, 60000.0 * i, err, sizeof err) == TH_OK;
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++)
    CHECK(args[i].ok == 300 && args[i].bad == 0, "worker %d: %d ok, %d failed", i, args[i].ok,
          args[i].bad);
  CHECK(swaps == 40, "%d of 40 refetches", swaps);
  /* unknown kid → refetch once → the rotated key verifies */
  char *parts2[] = {jwk(k2, "k2", ""), jwk(other, "k3", "")};
  char *doc2 = doc_of(parts2, 2);
  free(write_file("rotating.json", doc2));
  char *t3 = make_token_with(OTHER_RSA, "{\"alg\":\"RS256\",\"kid\":\"k3\"}", PAY);
  th_jwks *k = th_jwks_cache_get(c);
  th_jwt_claims out;
  th_jwt_status st = th_jwt_verify(ver, k, &POLICY, t3, strlen(t3), &out, NULL);
  CHECK(st == TH_JWT_UNKNOWN_KID, "k3 before refetch: %s", th_jwt_status_name(st));
  CHECK(th_jwks_cache_refetch(c, 60000.0 * 41, err, sizeof err) == TH_OK, "refetch: %s", err);
  th_jwks_release(k);
  k = th_jwks_cache_get(c);
  st = th_jwt_verify(ver, k, &POLICY, t3, strlen(t3), &out, NULL);
  CHECK(st == TH_JWT_OK, "k3 after refetch: %s", th_jwt_status_name(st));
  if (st == TH_JWT_OK)
    th_jwt_claims_free(&out);
  th_jwks_release(k);
  /* a refetch of a broken file keeps the set */
  free(write_file("rotating.json", "{\"keys\":[]}"));
  CHECK(th_jwks_cache_refetch(c, 60000.0 * 42, err, sizeof err) == TH_ERR_INVALID, "broken");
  k = th_jwks_cache_get(c);
  CHECK(th_jwks_has_kid(k, "k3"), "set lost");
  th_jwks_release(k);
  th_jwks_cache_free(c);
  unlink(path);
  free(path);
  free(doc);
  free(doc2);
  free(t);
  free(t3);
  for (int i = 0; i < 2; i++) {
    free(parts[i]);
    free(parts2[i]);
  }
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  k1 = EVP_RSA_gen(2048);
  k2 = EVP_RSA_gen(2048);
  other = EVP_RSA_gen(2048);
  weak = EVP_RSA_gen(1024);
  ec = EVP_EC_gen("P-256");
  ver = th_jwt_verifier_new();
  if (!k1 || !k2 || !other || !weak || !ec || !ver) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  char err[512], *doc = main_doc();
  if (th_jwks_parse(doc, strlen(doc), &keys, NULL, err, sizeof err) != TH_OK) {
    fprintf(stderr, "setup: %s\n", err);
    return 1;
  }
  free(doc);

  test_names();
  test_bearer();
  test_valid();
  test_leeway();
  test_hostile();
  test_every_change();
  test_policy();
  test_jwks_parse();
  test_load_file();
  test_load_url();
  test_refetch_rule();
  test_cache_threads();

  th_jwks_release(keys);
  th_jwt_verifier_free(ver);
  EVP_PKEY_free(k1);
  EVP_PKEY_free(k2);
  EVP_PKEY_free(other);
  EVP_PKEY_free(weak);
  EVP_PKEY_free(ec);
  rmdir(tmpdir);
  return CHECK_DONE();
}
