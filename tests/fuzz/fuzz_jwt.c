/* libFuzzer target: the JWT verifier (th_jwt_verify, th_jwt_bearer) and the
 * JWKS reader (th_jwks_parse).
 *
 * At start the harness makes an RSA 2048 key, kid "k1", and a set holding
 * it (through th_jwks_parse, from its n and e). Input layout: byte 0 picks
 * the mode (its value mod 3), the rest is:
 *   0  a token (or an Authorization value: th_jwt_bearer first), verified as
 *      is against that set. Nothing the fuzzer writes is signed by the key,
 *      which is new every run: the verdict must never be "ok".
 *   1  "HEADER \0 PAYLOAD" (without a NUL byte: the whole rest is the payload
 *      under {"alg":"RS256","kid":"k1"}): the harness base64url-encodes both
 *      and signs them with the key, so the mutator reaches what lies behind
 *      the signature (header checks, the payload's JSON and every claim).
 *      An accepted token must give a non-empty sub of at most
 *      TH_JWT_MAX_SUB bytes without control characters and the payload
 *      itself as claims; the same token must fail with one signature
 *      character changed (bad_signature), with another issuer
 *      (bad_issuer) and, with no audience matching, bad_audience.
 *   2  a JWKS document: a set th_jwks_parse accepts has 1..TH_JWKS_MAX_KEYS
 *      keys, and never verifies a token the harness signed (its key is not
 *      in it).
 * Every mode: a status with a name and a reason, and the output left alone
 * unless the status is "ok". Policy: issuer "https://issuer.example",
 * audiences "aud-1" and "client-2", now 1700000000, leeway 60.
 * Seeds: corpus/jwt (make_corpus.py): tokens of every shape, RFC 7515's
 * A.2 example, header/payload pairs for mode 1, JWKS documents. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

#define ISSUER "https://issuer.example"
#define DEFAULT_HEADER "{\"alg\":\"RS256\",\"kid\":\"k1\"}"

static const char *const AUDS[] = {"aud-1", "client-2"};
static const char *const NO_AUDS[] = {"nobody"};
static const th_jwt_policy POLICY = {ISSUER, AUDS, 2, 60, 1700000000.0};
static EVP_PKEY *key;
static th_jwks *keys;
static char *signed_by_key; /* a valid token of the key (mode 2) */
static th_jwt_verifier *ver;

static void fail(const char *what) {
  fprintf(stderr, "fuzz_jwt: %s\n", what);
  abort();
}

static char *b64url(const unsigned char *p, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (!out)
    fail("out of memory");
  int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
  while (len > 0 && out[len - 1] == '=')
    len--;
  out[len] = '\0';
  for (char *c = out; *c; c++)
    *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
  return out;
}

static char *bn_b64(const char *name) {
  BIGNUM *bn = NULL;
  unsigned char buf[512];
  if (!EVP_PKEY_get_bn_param(key, name, &bn))
    fail("key parameter");
  int n = BN_bn2bin(bn, buf);
  BN_free(bn);
  return b64url(buf, (size_t)n);
}

/* Verifies and checks what holds for every verdict. */
static th_jwt_status verify(const th_jwks *set, const th_jwt_policy *pol, const char *token,
                            size_t len, th_jwt_claims *out) {
  const char *why = NULL;
  th_jwt_claims c = {(char *)"untouched", NULL, 7, 0};
  th_jwt_status st = th_jwt_verify(ver, set, pol, token, len, &c, &why);
  const char *name = th_jwt_status_name(st);
  if (st < TH_JWT_OK || st > TH_JWT_INTERNAL || !why || !*why ||
      (st != TH_JWT_INTERNAL && !strcmp(name, "internal")))
    fail("status without a name or a reason");
  if (st == TH_JWT_INTERNAL)
    fail("internal error on a token (never the token's fault)");
  if (st != TH_JWT_OK) {
    if (strcmp(c.sub, "untouched") != 0 || c.json || c.json_len != 7)
      fail("output written on failure");
    return st;
  }
  size_t n = c.sub ? strlen(c.sub) : 0;
  if (n == 0 || n > TH_JWT_MAX_SUB || !c.json)
    fail("accepted without a proper sub or claims");
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)c.sub[i] < 0x20 || c.sub[i] == 0x7f)
      fail("sub with a control character");
  if (out)
    *out = c;
  else
    th_jwt_claims_free(&c);
  return st;
}

static char *sign(const char *header, size_t hlen, const char *payload, size_t plen) {
  char *h = b64url((const unsigned char *)header, hlen);
  char *p = b64url((const unsigned char *)payload, plen);
  size_t hn = strlen(h), pn = strlen(p);
  char *t = malloc(hn + pn + 2 + 4 * (512 + 2) / 3 + 1);
  if (!t)
    fail("out of memory");
  memcpy(t, h, hn);
  t[hn] = '.';
  memcpy(t + hn + 1, p, pn);
  t[hn + 1 + pn] = '\0';
  unsigned char sig[512];
  size_t slen = sizeof sig;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
      EVP_DigestSign(ctx, sig, &slen, (const unsigned char *)t, hn + 1 + pn) != 1)
    fail("signing");
  EVP_MD_CTX_free(ctx);
  char *s = b64url(sig, slen);
  t[hn + 1 + pn] = '.';
  memcpy(t + hn + pn + 2, s, strlen(s) + 1);
  free(h);
  free(p);
  free(s);
  return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char err[256], doc[2048];
  if (!(key = EVP_RSA_gen(2048)) || !(ver = th_jwt_verifier_new()))
    fail("setup");
  char *n = bn_b64(OSSL_PKEY_PARAM_RSA_N), *e = bn_b64(OSSL_PKEY_PARAM_RSA_E);
  snprintf(doc, sizeof doc, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"n\":\"%s\",\"e\":\"%s\"}]}",
           n, e);
  free(n);
  free(e);
  if (th_jwks_parse(doc, strlen(doc), &keys, NULL, err, sizeof err) != TH_OK)
    fail(err);
  static const char payload[] =
    "{\"iss\":\"" ISSUER "\",\"aud\":\"aud-1\",\"sub\":\"u\",\"exp\":1700003600}";
  signed_by_key = sign(DEFAULT_HEADER, strlen(DEFAULT_HEADER), payload, strlen(payload));
  th_jwt_claims c;
  if (th_jwt_verify(ver, keys, &POLICY, signed_by_key, strlen(signed_by_key), &c, NULL) != TH_JWT_OK)
    fail("the harness's own token does not verify");
  th_jwt_claims_free(&c);
  return 0;
}

static void signed_token(const char *data, size_t size) {
  const char *nul = memchr(data, '\0', size);
  const char *header = DEFAULT_HEADER, *payload = data;
  size_t hlen = strlen(DEFAULT_HEADER), plen = size;
  if (nul) {
    header = data;
    hlen = (size_t)(nul - data);
    payload = nul + 1;
    plen = size - hlen - 1;
  }
  char *t = sign(header, hlen, payload, plen);
  size_t len = strlen(t);
  th_jwt_claims c;
  if (verify(keys, &POLICY, t, len, &c) == TH_JWT_OK) {
    if (c.json_len != plen || memcmp(c.json, payload, plen) != 0)
      fail("claims are not the payload");
    th_jwt_claims_free(&c);
    char *dot = strrchr(t, '.');
    char saved = dot[5];
    dot[5] = saved == 'A' ? 'B' : 'A';
    if (verify(keys, &POLICY, t, len, NULL) != TH_JWT_BAD_SIGNATURE)
      fail("a changed signature is not bad_signature");
    dot[5] = saved;
    th_jwt_policy other = POLICY;
    other.issuer = "https://issuer.example/other";
    if (verify(keys, &other, t, len, NULL) != TH_JWT_BAD_ISSUER)
      fail("accepted for another issuer");
    other = POLICY;
    other.audiences = NO_AUDS;
    other.naudiences = 1;
    if (verify(keys, &other, t, len, NULL) != TH_JWT_BAD_AUDIENCE)
      fail("accepted for another audience");
  }
  free(t);
}

static void jwks_doc(const char *data, size_t size) {
  th_jwks *set = NULL;
  th_jwks_report rep;
  char err[512];
  th_result r = th_jwks_parse(data, size, &set, &rep, err, sizeof err);
  if (r != TH_OK) {
    if (set || !err[0])
      fail("a refused JWKS left a set or no reason");
    return;
  }
  size_t n = th_jwks_count(set);
  if (n == 0 || n > TH_JWKS_MAX_KEYS || rep.usable != n)
    fail("a JWKS set of the wrong size");
  if (verify(set, &POLICY, signed_by_key, strlen(signed_by_key), NULL) == TH_JWT_OK)
    fail("a parsed JWKS verifies a token of a key it does not hold");
  th_jwks_release(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const char *rest = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] % 3) {
  case 0: {
    char *text = malloc(n + 1);
    if (!text)
      return 0;
    memcpy(text, rest, n);
    text[n] = '\0';
    if (verify(keys, &POLICY, text, n, NULL) == TH_JWT_OK)
      fail("accepted a token the harness did not sign");
    size_t len = 0;
    const char *tok = th_jwt_bearer(text, &len);
    if (tok) {
      if (tok < text || tok + len > text + strlen(text) || len == 0 || memchr(tok, ' ', len))
        fail("th_jwt_bearer: a token outside the value, empty or with a space");
      if (verify(keys, &POLICY, tok, len, NULL) == TH_JWT_OK)
        fail("accepted a bearer token the harness did not sign");
    }
    free(text);
    break;
  }
  case 1: signed_token(rest, n); break;
  default: jwks_doc(rest, n); break;
  }
  return 0;
}
