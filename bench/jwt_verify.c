/* jwt_verify — CPU per `--serve` token verification (th_jwt_verify) with the
 * keys parsed and cached, against the target of 100 µs.
 *
 *   bench-jwt-verify [--count N] [--bits B] [--keys K]
 *     N  verifications measured (default 10000), after N/10 warm-up ones
 *     B  RSA modulus size of the signing key (default 2048)
 *     K  RSA keys in the JWKS (default 2, as Cognito publishes); the token's
 *        kid is the last one
 *
 * The token is shaped like a Cognito access token (~1 KB: iss, client_id,
 * sub, scope, groups, exp, iat, jti, ...), RS256, signed at start with a key
 * made at start. The set is parsed once (th_jwks_parse); one verifier is
 * reused, as a --serve worker does. Reported, one JSON line: CPU (user+sys,
 * getrusage) and wall time (CLOCK_MONOTONIC) per verification, and, for
 * comparison, the same count of bare OpenSSL verifications of the same
 * signature (EVP_DigestVerifyInit_ex + EVP_DigestVerify): the floor no
 * verifier can go under. Every verification must succeed or the program
 * stops. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "jwt.h"

#define MAX_KEYS 16

static void die(const char *m) {
  fprintf(stderr, "bench-jwt-verify: %s\n", m);
  exit(1);
}

static char *b64url(const unsigned char *p, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (!out)
    die("out of memory");
  int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
  while (len > 0 && out[len - 1] == '=')
    len--;
  out[len] = '\0';
  for (char *c = out; *c; c++)
    *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
  return out;
}

static char *param_b64(EVP_PKEY *pk, const char *name) {
  BIGNUM *bn = NULL;
  unsigned char buf[2048];
  if (!EVP_PKEY_get_bn_param(pk, name, &bn) || BN_num_bytes(bn) > (int)sizeof buf)
    die("key parameter");
  int n = BN_bn2bin(bn, buf);
  BN_free(bn);
  return b64url(buf, (size_t)n);
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long arg_long(const char *s, long lo, long hi) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi)
    die("bad number");
  return v;
}

int main(int argc, char **argv) {
  long count = 10000, bits = 2048, nkeys = 2;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && !strcmp(argv[i], "--count"))
      count = arg_long(argv[++i], 1, 100000000);
    else if (i + 1 < argc && !strcmp(argv[i], "--bits"))
      bits = arg_long(argv[++i], TH_JWKS_MIN_BITS, TH_JWKS_MAX_BITS);
    else if (i + 1 < argc && !strcmp(argv[i], "--keys"))
      nkeys = arg_long(argv[++i], 1, MAX_KEYS);
    else
      die("usage: bench-jwt-verify [--count N] [--bits B] [--keys K]");
  }

  /* the JWKS: nkeys keys, k0..k(K-1); the token is signed by the last */
  EVP_PKEY *pk = NULL;
  size_t cap = 64 + (size_t)nkeys * 2048, used = 0;
  char *doc = malloc(cap);
  if (!doc)
    die("out of memory");
  used += (size_t)snprintf(doc + used, cap - used, "{\"keys\":[");
  for (long i = 0; i < nkeys; i++) {
    EVP_PKEY_free(pk);
    if (!(pk = EVP_RSA_gen((unsigned)bits)))
      die("RSA key generation");
    char *n = param_b64(pk, OSSL_PKEY_PARAM_RSA_N), *e = param_b64(pk, OSSL_PKEY_PARAM_RSA_E);
    used += (size_t)snprintf(doc + used, cap - used,
                             "%s{\"alg\":\"RS256\",\"e\":\"%s\",\"kid\":\"k%ld\",\"kty\":\"RSA\","
                             "\"n\":\"%s\",\"use\":\"sig\"}", i ? "," : "", e, i, n);
    free(n);
    free(e);
  }
  snprintf(doc + used, cap - used, "]}");
  char err[512];
  th_jwks *keys = NULL;
  if (th_jwks_parse(doc, strlen(doc), &keys, NULL, err, sizeof err) != TH_OK)
    die(err);

  /* a Cognito-like access token */
  char header[64], payload[1024];
  snprintf(header, sizeof header, "{\"kid\":\"k%ld\",\"alg\":\"RS256\"}", nkeys - 1);
  snprintf(payload, sizeof payload,
           "{\"sub\":\"7b1e5c4a-2f1d-4c3e-9a8b-6d5f4e3c2b1a\",\"cognito:groups\":[\"admins\",\"users\"],"
           "\"iss\":\"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI\","
           "\"version\":2,\"client_id\":\"1example23456789abcdefghij\",\"origin_jti\":"
           "\"a1b2c3d4-e5f6-4a5b-8c7d-9e0f1a2b3c4d\",\"event_id\":\"f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9\","
           "\"token_use\":\"access\",\"scope\":\"openid profile email\",\"auth_time\":1700000000,"
           "\"exp\":4102444800,\"iat\":1700000000,\"jti\":\"0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d\","
           "\"username\":\"7b1e5c4a-2f1d-4c3e-9a8b-6d5f4e3c2b1a\"}");
  char *h = b64url((const unsigned char *)header, strlen(header));
  char *p = b64url((const unsigned char *)payload, strlen(payload));
  size_t input_len = strlen(h) + 1 + strlen(p);
  char *token = malloc(input_len + 2 + 4 * 1024 / 3 + 8);
  if (!token)
    die("out of memory");
  snprintf(token, input_len + 1, "%s.%s", h, p);
  unsigned char sig[1024];
  size_t slen = sizeof sig;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk) != 1 ||
      EVP_DigestSign(ctx, sig, &slen, (const unsigned char *)token, input_len) != 1)
    die("signing");
  EVP_MD_CTX_free(ctx);
  char *s = b64url(sig, slen);
  token[input_len] = '.';
  memcpy(token + input_len + 1, s, strlen(s) + 1);
  size_t len = strlen(token);

  static const char *const auds[] = {"1example23456789abcdefghij"};
  th_jwt_policy pol = {"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI", auds, 1,
                       TH_JWT_LEEWAY_S, (double)time(NULL)};
  th_jwt_verifier *v = th_jwt_verifier_new();
  if (!v)
    die("verifier");

  double c0 = 0, w0 = 0;
  for (long i = -count / 10; i < count; i++) {
    if (i == 0) {
      c0 = cpu_s();
      w0 = wall_s();
    }
    th_jwt_claims c;
    const char *why = "";
    th_jwt_status st = th_jwt_verify(v, keys, &pol, token, len, &c, &why);
    if (st != TH_JWT_OK)
      die(why);
    th_jwt_claims_free(&c);
  }
  double cpu = cpu_s() - c0, wall = wall_s() - w0;

  /* the floor: OpenSSL alone, the same signature over the same input */
  double f0 = cpu_s();
  for (long i = 0; i < count; i++) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, NULL, pk, NULL) != 1 ||
        EVP_DigestVerify(m, sig, slen, (const unsigned char *)token, input_len) != 1)
      die("floor verification");
    EVP_MD_CTX_free(m);
  }
  double floor_cpu = cpu_s() - f0;

  printf("{\"what\":\"jwt_verify\",\"count\":%ld,\"bits\":%ld,\"keys\":%ld,\"token_bytes\":%zu,"
         "\"cpu_us_per_verify\":%.2f,\"wall_us_per_verify\":%.2f,"
         "\"openssl_floor_cpu_us\":%.2f,\"overhead_cpu_us\":%.2f}\n",
         count, bits, nkeys, len, cpu * 1e6 / (double)count, wall * 1e6 / (double)count,
         floor_cpu * 1e6 / (double)count, (cpu - floor_cpu) * 1e6 / (double)count);
  th_jwt_verifier_free(v);
  th_jwks_release(keys);
  EVP_PKEY_free(pk);
  free(doc);
  free(h);
  free(p);
  free(s);
  free(token);
  return 0;
}
