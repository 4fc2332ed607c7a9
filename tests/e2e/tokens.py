#!/usr/bin/python3
"""tokens.py DIR ISSUER AUDIENCE — keys and tokens for tests/e2e/test_serve_auth.sh.

Needs Debian's python3-jwt and python3-cryptography (scripts/deps.sh --test),
hence /usr/bin/python3. Fresh keys every run. Writes into DIR:

  jwks.json           the key set taskhost starts with: the RSA key "k1", and keys it
                      must skip without failing: an EC P-256 key, an HMAC (oct) key, an
                      RSA encryption key ("use": "enc"), an RSA key for RS384, a
                      1024-bit RSA key, an RSA key without kid
  jwks-rotated.json   jwks.json plus the RSA key "k3" (a rotation)
  jwks-rotated2.json  jwks-rotated.json plus the RSA key "k4"
  tokens.json         {"valid": {name: token}, "hostile": {name: token},
                       "not_bearer": {name: Authorization header value},
                       "users": {"alice": token, "bob": token},
                       "rotated": {"k3": token, "k4": token},
                       "sub": {name: the sub of the valid tokens}}

Every token is signed by PyJWT (jwt.encode) except those PyJWT refuses to make
(alg none, HS256 keyed with the RSA public key, hand-edited segments), made
here with base64/hmac. Valid tokens expire in an hour.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, RSAAlgorithm


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def jwk(alg_cls, key, **extra):
    d = json.loads(alg_cls.to_jwk(key))
    d.update(extra)
    return {k: v for k, v in d.items() if v is not None}


def main():
    out, issuer, audience = sys.argv[1], sys.argv[2], sys.argv[3]
    now = int(time.time())
    k1, k2, k3, k4 = rsa_key(), rsa_key(), rsa_key(), rsa_key()
    small = rsa_key(1024)
    eck = ec.generate_private_key(ec.SECP256R1())
    secret = os.urandom(32)

    base_keys = [
        jwk(RSAAlgorithm, k1.public_key(), kid="k1", use="sig", alg="RS256"),
        jwk(ECAlgorithm, eck.public_key(), kid="ec1", use="sig", alg="ES256"),
        jwk(HMACAlgorithm, secret, kid="oct1"),
        jwk(RSAAlgorithm, k2.public_key(), kid="k2enc", use="enc"),
        jwk(RSAAlgorithm, k2.public_key(), kid="k2rs384", alg="RS384"),
        jwk(RSAAlgorithm, small.public_key(), kid="small"),
        jwk(RSAAlgorithm, k2.public_key()),
    ]
    k3_jwk = jwk(RSAAlgorithm, k3.public_key(), kid="k3")
    k4_jwk = jwk(RSAAlgorithm, k4.public_key(), kid="k4")
    for name, keys in (("jwks.json", base_keys), ("jwks-rotated.json", base_keys + [k3_jwk]),
                       ("jwks-rotated2.json", base_keys + [k3_jwk, k4_jwk])):
        with open(os.path.join(out, name), "w") as f:
            json.dump({"keys": keys}, f)

    sub = "5c1b7f0e-2d4a-4e8b-9f3c-6a7d8e9f0a1b"

    def claims(**over):
        c = {"sub": sub, "iss": issuer, "client_id": audience, "token_use": "access",
             "scope": "aws.cognito.signin.user.admin", "iat": now - 10, "exp": now + 3600,
             "cognito:groups": ["admins", "users"], "username": sub}
        for k, v in over.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def rs(c, key=k1, kid="k1", alg="RS256", headers=None):
        h = {"kid": kid} if kid is not None else {}
        h.update(headers or {})
        return jwt.encode(c, key, algorithm=alg, headers=h)

    def raw(header, payload, sign=None):
        """Segments by hand; sign(signing_input) → signature bytes, or none."""
        h = header if isinstance(header, str) else b64(json.dumps(header))
        p = payload if isinstance(payload, str) else b64(json.dumps(payload))
        si = f"{h}.{p}"
        return f"{si}.{b64(sign(si.encode())) if sign else ''}"

    def rsa_sign(key):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        return lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA256())

    good = rs(claims())
    gh, gp, gs = good.split(".")
    pem = k1.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    n_bytes = k1.public_key().public_numbers().n.to_bytes(256, "big")

    def flip(s, i):
        c = s[i]
        return s[:i] + ("A" if c != "A" else "B") + s[i + 1:]

    valid = {
        "access token (client_id)": good,
        "ID token (aud a string)": rs(claims(client_id=None, token_use="id", aud=audience)),
        "aud a list holding ours": rs(claims(client_id=None, aud=["someone-else", audience])),
        "nbf in the past": rs(claims(nbf=now - 60)),
        "expired 30 s ago, within the 60 s leeway": rs(claims(exp=now - 30)),
        "nbf 30 s ahead, within the leeway": rs(claims(nbf=now + 30)),
        "typ at+jwt": rs(claims(), headers={"typ": "at+jwt"}),
        "a fractional exp": rs(claims(exp=now + 3600.5)),
    }
    hostile = {
        "alg none, no signature": raw({"alg": "none", "kid": "k1"}, claims()),
        "alg none with the real signature": f"{b64(json.dumps({'alg': 'none', 'kid': 'k1'}))}.{gp}.{gs}",
        "alg None": raw({"alg": "None", "kid": "k1"}, claims()),
        "HS256 keyed with the RSA public key (PEM)": raw(
            {"alg": "HS256", "kid": "k1"}, claims(),
            lambda m: hmac.new(pem, m, hashlib.sha256).digest()),
        "HS256 keyed with the RSA modulus": raw(
            {"alg": "HS256", "kid": "k1"}, claims(),
            lambda m: hmac.new(n_bytes, m, hashlib.sha256).digest()),
        "HS256 with the JWKS oct key": jwt.encode(claims(), secret, algorithm="HS256",
                                                  headers={"kid": "oct1"}),
        "ES256 with the JWKS EC key": jwt.encode(claims(), eck, algorithm="ES256",
                                                 headers={"kid": "ec1"}),
        "ES256 claiming kid k1": jwt.encode(claims(), eck, algorithm="ES256", headers={"kid": "k1"}),
        "PS256 with the right key": rs(claims(), alg="PS256"),
        "RS384 with the right key": rs(claims(), alg="RS384"),
        "RS512 with the right key": rs(claims(), alg="RS512"),
        "alg rs256 (lower case)": raw({"alg": "rs256", "kid": "k1"}, claims(), rsa_sign(k1)),
        "alg missing": raw({"kid": "k1"}, claims(), rsa_sign(k1)),
        "expired an hour ago": rs(claims(exp=now - 3600)),
        "expired 2 minutes ago (past the leeway)": rs(claims(exp=now - 120)),
        "exp 0": rs(claims(exp=0)),
        "not valid for an hour (nbf)": rs(claims(nbf=now + 3600)),
        "issued in an hour (iat)": rs(claims(iat=now + 3600)),
        "wrong issuer": rs(claims(iss="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_OTHER")),
        "issuer with a trailing slash": rs(claims(iss=issuer + "/")),
        "issuer missing": rs(claims(iss=None)),
        "issuer a list": rs(claims(iss=[issuer])),
        "wrong audience (aud)": rs(claims(client_id=None, aud="another-client")),
        "aud a list without ours": rs(claims(client_id=None, aud=["a", "b"])),
        "aud an empty list": rs(claims(client_id=None, aud=[])),
        "aud a number": rs(claims(client_id=None, aud=42)),
        "wrong aud beside the right client_id": rs(claims(aud="another-client")),
        "wrong client_id": rs(claims(client_id="another-client")),
        "no aud and no client_id": rs(claims(client_id=None)),
        "unknown kid (a key not in the set)": rs(claims(), key=k2, kid="k2"),
        "kid k1, signed by another key": rs(claims(), key=k2),
        "the 1024-bit key of the set (skipped)": rs(claims(), key=small, kid="small"),
        "the encryption key of the set (skipped)": rs(claims(), key=k2, kid="k2enc"),
        "no kid": rs(claims(), kid=None),
        "kid a number": raw({"alg": "RS256", "kid": 1}, claims(), rsa_sign(k1)),
        "jku to another key set": rs(claims(), key=k2, kid="evil",
                                     headers={"jku": "http://127.0.0.1:9/evil.json"}),
        "an embedded jwk": rs(claims(), key=k2, headers={
            "jwk": jwk(RSAAlgorithm, k2.public_key(), kid="k1")}),
        "payload changed (sub)": f"{gh}.{b64(json.dumps(claims(sub='someone-else')))}.{gs}",
        "payload changed (one character)": f"{gh}.{flip(gp, 10)}.{gs}",
        "signature changed (one character)": f"{gh}.{gp}.{flip(gs, 20)}",
        "signature cut short": f"{gh}.{gp}.{gs[:-4]}",
        "signature empty": f"{gh}.{gp}.",
        "header changed (one character)": f"{flip(gh, 5)}.{gp}.{gs}",
        "one segment": gh,
        "two segments": f"{gh}.{gp}",
        "four segments": f"{good}.{gs}",
        "five segments (JWE shape)": f"{gh}.{gp}.{gs}.{gs}.{gs}",
        "empty segments": "..",
        "base64 padding": f"{gh}=.{gp}.{gs}",
        "standard base64 alphabet": f"{gh}.{gp}.{gs.replace('-', '+').replace('_', '/')}+/",
        "huge (20 KB)": rs(claims(pad="x" * 20000)),
        "header not JSON": raw(b64("not json"), claims(), rsa_sign(k1)),
        "header a JSON array": raw(b64('["RS256"]'), claims(), rsa_sign(k1)),
        "payload a JSON array": raw({"alg": "RS256", "kid": "k1"}, b64("[1,2]"), rsa_sign(k1)),
        "payload not JSON": raw({"alg": "RS256", "kid": "k1"}, b64("sub=alice"), rsa_sign(k1)),
        "payload nested 40 deep": raw({"alg": "RS256", "kid": "k1"},
                                      b64(json.dumps(claims())[:-1] + ', "x": ' + "[" * 40 +
                                          "]" * 40 + "}"), rsa_sign(k1)),
        "crit header": rs(claims(), headers={"crit": ["exp"]}),
        "crit empty": rs(claims(), headers={"crit": []}),
        "typ JWE": rs(claims(), headers={"typ": "JWE"}),
        "sub a number": rs(claims(sub=12345)),
        "sub a list": rs(claims(sub=[sub])),
        "sub empty": rs(claims(sub="")),
        "sub missing": rs(claims(sub=None)),
        "sub with a control character": rs(claims(sub="alice\u0001")),
        "sub with a C1 control character": rs(claims(sub="alice\u0085")),
        "sub of 300 bytes": rs(claims(sub="s" * 300)),
        "exp missing": rs(claims(exp=None)),
        "exp a string": rs(claims(exp=str(now + 3600))),
        "exp null": raw({"alg": "RS256", "kid": "k1"}, {**claims(), "exp": None}, rsa_sign(k1)),
        "exp 1e300": raw({"alg": "RS256", "kid": "k1"},
                         b64(json.dumps(claims(exp=None))[:-1] + ', "exp": 1e300}'), rsa_sign(k1)),
        "nbf a string": rs(claims(nbf="0")),
        "not a JWT": "not-a-jwt",
        "a JWT with a NUL byte escaped in the header": raw(
            b64('{"alg":"RS256\\u0000","kid":"k1"}'), claims(), rsa_sign(k1)),
    }
    not_bearer = {
        "no Authorization header": None,
        "Basic credentials": "Basic dXNlcjpwYXNz",
        "Bearer and nothing": "Bearer",
        "Bearer and spaces": "Bearer    ",
        "a token with a space in it": f"Bearer {gh}.{gp} {gs}",
        "two tokens": f"Bearer {good} {good}",
    }
    users = {
        "alice": rs(claims(sub="alice-" + sub)),
        "bob": rs(claims(sub="bob-" + sub, **{"cognito:groups": ["users"]})),
    }
    rotated = {"k3": rs(claims(), key=k3, kid="k3"), "k4": rs(claims(), key=k4, kid="k4")}
    with open(os.path.join(out, "tokens.json"), "w") as f:
        json.dump({"valid": valid, "hostile": hostile, "not_bearer": not_bearer, "users": users,
                   "rotated": rotated, "sub": sub}, f)


if __name__ == "__main__":
    main()
