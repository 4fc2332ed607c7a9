/* jwt-check — verifies tokens with th_jwt_verify, one per line on stdin,
 * and prints one line per token: the status name, then a space and the sub
 * when it is "ok". Used by tests/jwt_crosscheck.py to check the verifier
 * against tokens PyJWT signs.
 *
 *   jwt-check JWKS_FILE ISSUER AUDIENCES NOW LEEWAY
 *     AUDIENCES  comma-separated;  NOW  seconds since the epoch
 * The first output line is "keys N" (the usable keys of the JWKS).
 * Exit status: 0 when every line was read, 1 on bad usage, a JWKS that does
 * not load or an I/O error.
 */
#include "jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_AUDIENCES 16

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: jwt-check JWKS_FILE ISSUER AUDIENCES NOW LEEWAY\n");
    return 1;
  }
  char err[512];
  th_jwks *keys = NULL;
  if (th_jwks_load_file(argv[1], &keys, NULL, err, sizeof err) != TH_OK) {
    fprintf(stderr, "jwt-check: %s\n", err);
    return 1;
  }
  const char *auds[MAX_AUDIENCES];
  size_t naud = 0;
  for (char *p = argv[3], *comma; p && naud < MAX_AUDIENCES; p = comma ? comma + 1 : NULL) {
    comma = strchr(p, ',');
    if (comma)
      *comma = '\0';
    auds[naud++] = p;
  }
  th_jwt_policy pol = {argv[2], auds, naud, (int)strtol(argv[5], NULL, 10),
                       strtod(argv[4], NULL)};
  th_jwt_verifier *v = th_jwt_verifier_new();
  char *line = malloc(TH_JWT_MAX_TOKEN * 2 + 2);
  if (!v || !line) {
    fprintf(stderr, "jwt-check: out of memory\n");
    return 1;
  }
  printf("keys %zu\n", th_jwks_count(keys));
  while (fgets(line, TH_JWT_MAX_TOKEN * 2 + 2, stdin)) {
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n')
      line[--n] = '\0';
    th_jwt_claims c;
    const char *why = NULL;
    th_jwt_status st = th_jwt_verify(v, keys, &pol, line, n, &c, &why);
    if (st == TH_JWT_OK) {
      printf("ok %s\n", c.sub);
      th_jwt_claims_free(&c);
    } else {
      printf("%s\n", th_jwt_status_name(st));
    }
  }
  int rc = ferror(stdin) ? 1 : 0;
  free(line);
  th_jwt_verifier_free(v);
  th_jwks_release(keys);
  return rc;
}
