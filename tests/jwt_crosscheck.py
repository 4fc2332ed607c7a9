#!/usr/bin/python3
"""Cross-check th_jwt_verify against an independent implementation: PyJWT.

Usage: /usr/bin/python3 tests/jwt_crosscheck.py PATH_TO_jwt-check

Needs Debian's python3-jwt and python3-cryptography (scripts/deps.sh --test),
hence /usr/bin/python3. Fresh keys every run (RSA 2048 twice, P-256, an HMAC
secret), so nothing can go stale. The JWKS is written by PyJWT's own
RSAAlgorithm/ECAlgorithm/HMACAlgorithm.to_jwk; every token is signed by
PyJWT (jwt.encode), apart from the two that PyJWT refuses to make (the
HS256 token keyed with the RSA public key's PEM, made with hmac here, and a
hand-edited header). Each token has the status the C verifier must give:

* the valid ones must also pass PyJWT's own jwt.decode with the same
  issuer, audiences and leeway (so both implementations agree they are
  valid), and the C side must return the same sub;
* the hostile ones must get exactly the expected status name.

Prints one line per mismatch, then "N passed, N failed"; exits 1 on any
mismatch.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time

try:
    import jwt
    from jwt.algorithms import ECAlgorithm, HMACAlgorithm, RSAAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
except ImportError as e:
    print(f"cannot import PyJWT/cryptography ({e}): apt-get install python3-jwt python3-cryptography")
    sys.exit(1)

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST"
AUDS = ["web-client", "mobile-client"]
LEEWAY = 60


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    tool = sys.argv[1]
    now = int(time.time())
    k1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    k2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    eck = ec.generate_private_key(ec.SECP256R1())
    secret = os.urandom(32)

    def jwk(text, **extra):  # PyJWT 2.6's to_jwk returns JSON text
        d = json.loads(text)
        d.update(extra)
        return d

    keys = [
        jwk(RSAAlgorithm.to_jwk(k1.public_key()), kid="k1", use="sig", alg="RS256"),
        jwk(RSAAlgorithm.to_jwk(k2.public_key()), kid="k2"),
        jwk(ECAlgorithm.to_jwk(eck.public_key()), kid="ec1", use="sig", alg="ES256"),
        jwk(HMACAlgorithm.to_jwk(secret), kid="oct1"),
        jwk(RSAAlgorithm.to_jwk(stranger.public_key()), kid="enc1", use="enc"),
    ]

    base = {"iss": ISSUER, "aud": "web-client", "sub": "user-1", "exp": now + 3600, "iat": now - 10}

    def claims(**kw):
        c = dict(base)
        for k, v in kw.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def rs(payload, key=k1, kid="k1", alg="RS256", **headers):
        h = {"kid": kid}
        h.update(headers)
        return jwt.encode(payload, key, algorithm=alg, headers=h)

    pem = k1.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_head = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    hs_body = b64(json.dumps(base).encode())
    hs_pem = f"{hs_head}.{hs_body}." + b64(hmac.new(pem, f"{hs_head}.{hs_body}".encode(),
                                                    hashlib.sha256).digest())
    good = rs(base)
    h, p, s = good.split(".")
    crit = b64(json.dumps({"alg": "RS256", "kid": "k1", "crit": ["exp"]}).encode())

    # (name, token, expected status, expected sub for "ok")
    cases = [
        ("valid", good, "ok", "user-1"),
        ("valid, second key, aud list", rs(claims(aud=["x", "mobile-client"]), key=k2, kid="k2"),
         "ok", "user-1"),
        ("valid, Cognito access token (client_id)",
         rs(claims(aud=None, client_id="mobile-client", token_use="access",
                   scope="aws.cognito.signin.user.admin", username="alice")), "ok", "user-1"),
        ("valid, typ at+jwt", rs(base, typ="at+jwt"), "ok", "user-1"),
        ("valid, unicode sub (escaped by PyJWT)", rs(claims(sub="j\u00fcrgen-\u2713")), "ok",
         "j\u00fcrgen-\u2713"),
        ("valid, exp a fraction", rs(claims(exp=now + 10.5)), "ok", "user-1"),
        ("valid, nbf now", rs(claims(nbf=now)), "ok", "user-1"),
        ("valid, exp within leeway", rs(claims(exp=now - 30)), "ok", "user-1"),
        ("valid, nested claims", rs(claims(groups=["a", "b"], ctx={"a": {"b": [1, 2.5, None]}})),
         "ok", "user-1"),
        ("alg none", jwt.encode(base, None, algorithm="none", headers={"kid": "k1"}), "bad_alg", None),
        ("HS256 (PyJWT, a secret)", jwt.encode(base, secret, algorithm="HS256",
                                               headers={"kid": "oct1"}), "bad_alg", None),
        ("HS256 keyed with the RSA public key PEM", hs_pem, "bad_alg", None),
        ("ES256 (EC key in the set)", rs(base, key=eck, kid="ec1", alg="ES256"), "bad_alg", None),
        ("PS256 with k1", rs(base, alg="PS256"), "bad_alg", None),
        ("RS384 with k1", rs(base, alg="RS384"), "bad_alg", None),
        ("RS512 with k1", rs(base, alg="RS512"), "bad_alg", None),
        ("crit", f"{crit}.{p}.{s}", "bad_header", None),
        ("kid unknown", rs(base, kid="k9"), "unknown_kid", None),
        ("kid of the EC key", rs(base, kid="ec1"), "unknown_kid", None),
        ("kid of the oct key", rs(base, kid="oct1"), "unknown_kid", None),
        ("kid of an encryption key", rs(base, key=stranger, kid="enc1"), "unknown_kid", None),
        ("signed by a stranger as k1", rs(base, key=stranger), "bad_signature", None),
        ("signed by k2 as k1", rs(base, key=k2), "bad_signature", None),
        ("payload of another token", f"{h}.{rs(claims(sub='admin')).split('.')[1]}.{s}",
         "bad_signature", None),
        ("padded segments", f"{h}==.{p}.{s}", "malformed", None),
        ("standard base64 signature",
         f"{h}.{p}." + base64.b64encode(base64.urlsafe_b64decode(s + "==")).decode().rstrip("="),
         "malformed" if ("-" in s or "_" in s) else "ok", "user-1"),
        ("expired", rs(claims(exp=now - 3600)), "expired", None),
        ("expired beyond leeway", rs(claims(exp=now - LEEWAY - 1)), "expired", None),
        ("nbf future", rs(claims(nbf=now + 3600)), "not_yet_valid", None),
        ("iat future", rs(claims(iat=now + 3600)), "not_yet_valid", None),
        ("exp missing", rs(claims(exp=None)), "bad_claim", None),
        ("exp a string", rs(claims(exp=str(now + 3600))), "bad_claim", None),
        ("exp 1e300", rs(claims(exp=1e300)), "bad_claim", None),
        ("iss wrong", rs(claims(iss=ISSUER + "x")), "bad_issuer", None),
        ("iss missing", rs(claims(iss=None)), "bad_issuer", None),
        ("aud wrong", rs(claims(aud="other-client")), "bad_audience", None),
        ("aud empty list", rs(claims(aud=[])), "bad_audience", None),
        ("no aud, client_id wrong", rs(claims(aud=None, client_id="other")), "bad_audience", None),
        ("sub missing", rs(claims(sub=None)), "no_sub", None),
        ("sub empty", rs(claims(sub="")), "no_sub", None),
        ("sub a number", rs(claims(sub=42)), "no_sub", None),
        ("huge", rs(claims(pad="x" * 20000)), "too_large", None),
    ]

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "jwks.json")
        with open(path, "w") as f:
            json.dump({"keys": keys}, f)
        out = subprocess.run([tool, path, ISSUER, ",".join(AUDS), str(now), str(LEEWAY)],
                             input="".join(t + "\n" for _, t, _, _ in cases), capture_output=True,
                             text=True, timeout=120)
    if out.returncode != 0:
        print(f"jwt-check failed ({out.returncode}): {out.stderr.strip()}")
        return 1
    lines = out.stdout.splitlines()
    passed = failed = 0

    def check(ok, msg):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("MISMATCH", msg)

    check(lines and lines[0] == "keys 2", f"usable keys: {lines[:1]}")
    lines = lines[1:]
    check(len(lines) == len(cases), f"{len(lines)} answers for {len(cases)} tokens")
    for (name, token, want, sub), got in zip(cases, lines):
        status, _, got_sub = got.partition(" ")
        check(status == want, f"{name}: C says {got!r}, want {want!r}")
        if want == "ok":
            check(got_sub == sub, f"{name}: sub {got_sub!r}, want {sub!r}")
            key = {"k1": k1, "k2": k2}[jwt.get_unverified_header(token)["kid"]].public_key()
            try:
                dec = jwt.decode(token, key, algorithms=["RS256"], issuer=ISSUER,
                                 audience=AUDS if "aud" in jwt.decode(
                                     token, options={"verify_signature": False}) else None,
                                 leeway=LEEWAY, options={"require": ["exp", "iss", "sub"]})
                check(dec["sub"] == sub, f"{name}: PyJWT reads sub {dec['sub']!r}")
            except jwt.PyJWTError as e:
                check(False, f"{name}: PyJWT refuses a token C accepts: {e}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
