#!/usr/bin/python3
"""jwt_check.py JWKS_URL ISSUER [AUDIENCE] < TOKEN — verifies a JWT the way a resource server
does, with PyJWT (Debian's python3-jwt + python3-cryptography), independently of taskhost:

  * the keys come from JWKS_URL (fetched over loopback, no proxy); the token's header names
    one of them by `kid`, and the signature is RS256 by that key;
  * `iss` is ISSUER; `exp` is in the future; `iat`, `sub` and `token_use` are present;
  * with AUDIENCE, `aud` must be it (an ID token); without, the token must have no `aud`
    (an access token: Cognito names the client in `client_id` instead).

Prints {"header": ..., "claims": ...} as JSON and exits 0 when it holds; prints
"invalid: REASON" and exits 1 when it does not; exits 2 on a usage or fetch error.
"""
import json
import sys
import urllib.request

import jwt


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    jwks_url, issuer = sys.argv[1], sys.argv[2]
    audience = sys.argv[3] if len(sys.argv) == 4 else None
    token = sys.stdin.read().strip()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(jwks_url, timeout=30) as resp:
            jwks = json.load(resp)
    except (OSError, ValueError) as e:
        print(f"cannot fetch the JWKS at {jwks_url}: {e}", file=sys.stderr)
        return 2
    try:
        header = jwt.get_unverified_header(token)
        keys = {k.get("kid"): k for k in jwks.get("keys", [])}
        if header.get("kid") not in keys:
            raise jwt.InvalidTokenError(f"kid {header.get('kid')!r} is not in the JWKS")
        key = jwt.PyJWK(keys[header["kid"]]).key
        claims = jwt.decode(
            token, key, algorithms=["RS256"], issuer=issuer, audience=audience,
            options={"require": ["exp", "iat", "iss", "sub", "token_use"]})
        if audience is None and "aud" in claims:
            raise jwt.InvalidTokenError("an access token must have no aud")
    except jwt.PyJWTError as e:
        print(f"invalid: {type(e).__name__}: {e}")
        return 1
    print(json.dumps({"header": header, "claims": claims}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
