#!/usr/bin/env python3
"""make_corpus.py — (re)writes the seed corpora in tests/fuzz/corpus/<target>/
from the test fixtures (tests/fixtures/...) plus hand-made inputs in each
target's input layout (see the comment at the top of each fuzz_*.c).
Deterministic: file names are the SHA-1 of the content, as libFuzzer names
them. Run it after changing a target's input layout; the fuzzers add their
own finds to the corpora they are given only in long runs (run.sh --long)."""
import base64, glob, hashlib, hmac, json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")
OUT = os.path.join(HERE, "corpus")

def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

def cursor(secret, identity, key, owner=b"public"):
    # runtime/cursor.c, version 2: the MAC binds the owner too ("public": auth off).
    mac = hmac.new(secret, identity + b"\x00" + owner + b"\x00" + key, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(b"\x02" + key + mac).rstrip(b"=")

KNOWN = [b"11111111-1111-4111-8111-111111111111", b"22222222-2222-4222-a222-222222222222",
         b"33333333-3333-4333-b333-333333333333"]

# ---- event: API Gateway events, and HTTP requests for the --serve bridge ----
for f in sorted(glob.glob(os.path.join(FIX, "apigw-events", "*.json"))):
    write("event", open(f, "rb").read())
write("event", open(os.path.join(FIX, "apigw-events", "responses", "apigw-response.json"), "rb").read())
write("event", json.dumps({"statusCode": 200, "headers": {"a": "b", "n": 1}, "body": "aGk=",
                           "isBase64Encoded": True}))
write("event", b"GET\n/tasks\nlimit=5&next=abc&limit=6\ncookie: a=1; b=2\nX-Multi: 1\nx-multi: 2\n\n")
write("event", b"POST\n/dev/tasks/\n\ncontent-type: application/json\n\n{\"task\":\"x\"}")
write("event", json.dumps({"version": "2.0", "rawPath": "/tasks", "rawQueryString": "a=%zz&b=+&c",
                           "cookies": ["a=1"], "headers": {"X-A": "1"},
                           "requestContext": {"http": {"method": "get"}, "stage": "$default"},
                           "body": "e30=", "isBase64Encoded": True}))
write("event", json.dumps({"httpMethod": "PUT", "path": "/dev/tasks/x", "resource": "/{proxy+}",
                           "multiValueHeaders": {"A": ["1", "2"]}, "headers": {"A": "3"},
                           "multiValueQueryStringParameters": {"q": ["1", 2, True, None]},
                           "requestContext": {"stage": "dev", "path": "/dev/tasks/x",
                                              "authorizer": {"claims": {"sub": "u"}}},
                           "body": "!!", "isBase64Encoded": True}))

# ---- host: flags, path 0xFF query 0xFF content-type 0xFF method 0xFF body ----
def host(flags, path=b"", query=b"", ctype=b"", method=b"", body=None):
    s = bytes([flags]) + path + b"\xff" + query + b"\xff" + ctype + b"\xff" + method
    if body is not None:
        s += b"\xff" + body
    return s

GET, POST, PUT, DELETE, OPTIONS, PATCH, HEAD, OTHER = range(8)
V1, B64, KNOWN_ID, NO_CT, STAGE = 0x08, 0x10, 0x20, 0x40, 0x80
c0 = cursor(b"taskhost-default-cursor-secret", b"sqlite:fuzz", KNOWN[0])
c1 = cursor(b"taskhost-default-cursor-secret", b"sqlite:fuzz", KNOWN[1])
for seed in [
    host(POST, b"/tasks", body=b'{"task":"Write documentation","priority":"high"}'),
    host(POST | V1 | STAGE, b"/tasks/", body=b'{"task":" x ","status":"in_progress","priority":"urgent"}'),
    host(POST, b"/tasks", body=b'{"task":"a","priorty":"low","id":"x"}'),
    host(POST, b"/tasks", body=b'[]'),
    host(POST, b"/tasks", ctype=b"text/plain; charset=utf-8", body=b'{"task":"x"}'),
    host(POST | B64, b"/tasks", body=base64.b64encode(b'{"task":"b64"}')),
    host(POST | NO_CT, b"/tasks", body=b'{"task":"\\u00e9\\ud83d\\ude00"}'),
    host(GET, b"/tasks", b"limit=2"),
    host(GET | V1, b"/tasks", b"limit=1&next=" + c0),
    host(GET, b"/tasks", b"next=" + c1 + b"&limit=100"),
    host(GET, b"/tasks", b"limit=-1"),
    host(GET, b"/tasks", b"limit=99999999999999999999&limit=1e2"),
    host(GET | KNOWN_ID),
    host(GET | KNOWN_ID | V1 | STAGE, b"/"),
    host(GET, b"/tasks/" + KNOWN[2].upper()),
    host(GET, b"/tasks/..%2F..%2Fetc"),
    host(PUT | KNOWN_ID, body=b'{"status":"completed"}'),
    host(PUT | KNOWN_ID | V1, body=b'{"task":"new text","priority":"low"}'),
    host(PUT | KNOWN_ID, body=b'{}'),
    host(PUT | KNOWN_ID, body=b'{"task":null}'),
    host(DELETE | KNOWN_ID),
    host(DELETE, b"/tasks/00000000-0000-4000-8000-000000000000"),
    host(OPTIONS, b"/tasks"),
    host(PATCH, b"/tasks"),
    host(HEAD | KNOWN_ID),
    host(OTHER, b"/tasks", method=b"propfind"),
    # extra headers: lines after the Content-Type in its field (fuzz_host.c)
    host(POST, b"/tasks", ctype=b'\nIdempotency-Key: "fuzz-1"', body=b'{"task":"keyed"}'),
    host(POST | V1, b"/tasks", ctype=b'application/json\nidempotency-key: fuzz-1', body=b'{"task":"keyed"}'),
    host(POST, b"/tasks", ctype=b'\nIdempotency-Key: "fuzz-1"', body=b'{"task":"other body"}'),
    host(POST, b"/tasks", ctype=b'\nIdempotency-Key: "fuzz-2"', body=b'{"task":""}'),
    host(POST, b"/tasks", ctype=b'\nIdempotency-Key: ""', body=b'{"task":"x"}'),
    host(POST, b"/tasks", ctype=b'\nIdempotency-Key: "a\\"b"', body=b'{"task":"x"}'),
    host(POST, b"/tasks", ctype=b'\nIdempotency-Key: "' + b"k" * 256 + b'"', body=b'{"task":"x"}'),
    host(PUT | KNOWN_ID, ctype=b'\nIf-Match: "1"', body=b'{"status":"completed"}'),
    host(PUT | KNOWN_ID, ctype=b'\nIf-Match: "5", "1"', body=b'{"priority":"low"}'),
    host(PUT | KNOWN_ID, ctype=b'\nIf-Match: W/"1"', body=b'{"priority":"low"}'),
    host(PUT | KNOWN_ID | V1, ctype=b'\nIf-Match: *', body=b'{"priority":"low"}'),
    host(PUT | KNOWN_ID, ctype=b'\nIf-Match: not-a-tag', body=b'{"priority":"low"}'),
    host(DELETE | KNOWN_ID, ctype=b'\nIf-Match: "2"'),
    host(DELETE, b"/tasks/00000000-0000-4000-8000-000000000000", ctype=b'\nIf-Match: *'),
    host(GET | KNOWN_ID, ctype=b'\nIf-None-Match: "1"'),
    host(GET | KNOWN_ID, ctype=b'\nIf-None-Match: W/"1", "7"'),
    host(GET | KNOWN_ID, ctype=b'\nIf-None-Match: *\nIf-Match: "1"\nIdempotency-Key: "x"'),
]:
    write("host", seed)

# ---- cursor: real cursors (fuzz_cursor's secret and identity) and junk ----
for key in KNOWN + [b"", b"a", b"x" * 1024, "é/ü".encode()]:
    write("cursor", cursor(b"taskhost-fuzz-secret", b"sqlite:/tmp/fuzz/a.db", key))
write("cursor", cursor(b"taskhost-fuzz-secret", b"sqlite:/tmp/fuzz/b.db", KNOWN[0]))  # other table
write("cursor", cursor(b"taskhost-fuzz-secret", b"sqlite:/tmp/fuzz/a.db", KNOWN[0], b"other"))  # other owner
write("cursor", b"AQ")
write("cursor", b"not a cursor ==")

# ---- dynamodb: status byte, take byte, body ----
def ddb(status_idx, take, body, errortype=None):
    b = bytes([status_idx | (0x80 if errortype is not None else 0), take])
    if errortype is not None:
        b += errortype.encode() + b"\n"
    return b + (body if isinstance(body, bytes) else body.encode())

for f in sorted(glob.glob(os.path.join(FIX, "dynamodb", "devguide", "*.response.json"))):
    write("dynamodb", ddb(0, 5, open(f, "rb").read()))
ex = json.load(open(os.path.join(FIX, "dynamodb", "attributevalue",
                                 "service-2-attributevalue-doc-examples.json")))
item = {"id": {"S": KNOWN[0].decode()}}
for i, e in enumerate(ex["examples"]):
    item["a%d" % i] = e["example"]
write("dynamodb", ddb(0, 3, json.dumps({"Item": item})))
write("dynamodb", ddb(0, 3, json.dumps({"Attributes": item})))
write("dynamodb", ddb(0, 2, json.dumps({"Items": [item, {"id": {"S": "b"}, "n": {"N": "-0012.50e1"}},
                                                  {"id": {"S": "c"}, "l": {"L": []}, "m": {"M": {}}}],
                                        "Count": 3, "LastEvaluatedKey": {"id": {"S": "c"}}})))
write("dynamodb", ddb(0, 1, json.dumps({"Items": [], "Count": 0})))
stream = json.load(open(os.path.join(FIX, "dynamodb", "attributevalue", "dynamodb-stream-event.json")))
for r in stream.get("Records", []):
    img = r.get("dynamodb", {}).get("NewImage")
    if img:
        write("dynamodb", ddb(0, 1, json.dumps({"Item": img})))
errs = json.load(open(os.path.join(FIX, "dynamodb", "devguide", "errors-table.json")))["errors"]
for i, e in enumerate(e for e in errs if e.get("exception")):
    st = {400: 1, 403: 2, 404: 3, 413: 4, 429: 5, 500: 6, 502: 7, 503: 8, 504: 9}.get(e.get("http_status"), 1)
    body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#" + e["exception"],
                       "message": e.get("documented_message") or ""})
    write("dynamodb", ddb(st, 0, body))
# TransactionCanceledException with CancellationReasons (moto 5.2.1's answer, AWS's shape)
for reasons in (["None", "ConditionalCheckFailed"], ["TransactionConflict", "None"]):
    write("dynamodb", ddb(1, 0, json.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "CancellationReasons": [{"Code": c} for c in reasons],
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons"}),
        "TransactionCanceledException"))
    if i % 3 == 0:
        write("dynamodb", ddb(st, 0, '{"code":"x","Message":"m"}', e["exception"] + ":http://internal"))
for f in sorted(glob.glob(os.path.join(FIX, "dynamodb", "errors", "*.error-body.json"))):
    write("dynamodb", ddb(1, 0, open(f, "rb").read()))

# ---- sigv4: the AWS suite's requests, in the target's line format ----
for d in sorted(glob.glob(os.path.join(FIX, "sigv4", "*", ""))):
    req = os.path.join(d, "request.txt")
    if not os.path.exists(req):
        continue
    raw = open(req, "rb").read()
    head, _, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    method, target, _ = lines[0].split(b" ", 2)
    path, _, query = target.partition(b"?")
    hdrs = []
    for l in lines[1:]:
        if l[:1] in (b" ", b"\t") and hdrs:
            hdrs[-1] += b" " + l  # folded line: joined
        else:
            hdrs.append(l)
    ctx = json.load(open(os.path.join(d, "context.json")))
    flags = 0x20 if ctx.get("credentials", {}).get("session_token") else 0
    for extra in (0, 0x04, 0x10):
        write("sigv4", bytes([flags | extra]) + b"\n".join([method, path, query] + hdrs) + b"\n\n" + body)
write("sigv4", b"\x80POST\n/\n\nHost:dynamodb.us-east-1.amazonaws.com\nX-Amz-Target:DynamoDB_20120810.PutItem\n"
      b"Content-Type:application/x-amz-json-1.0\n\n{\"TableName\":\"tasks\"}")
write("sigv4", b"\x03GET\n/a%2Fb/../%7e c/./d//e\nb=%41&a=1&a=0&c&=x&%zz=1\nHost:s3.amazonaws.com\n\n")
# ---- jwt: mode byte (mod 3) + token | header NUL payload | JWKS document ----
def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=")

# RFC 7515 appendix A.2: the RS256 example key and its signed example (no kid).
RFC_N = (b"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0B"
         b"m4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5"
         b"rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGh"
         b"yxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ")
RFC_JWS = (b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
           b"LmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
           b"AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWz"
           b"O75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc"
           b"6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQ"
           b"Ge77Rw")
JWT_ISS = "https://issuer.example"
claims = {"iss": JWT_ISS, "aud": "aud-1", "sub": "user-1", "exp": 1700003600, "iat": 1699999000}
cognito = {"iss": JWT_ISS, "client_id": "client-2", "sub": "0b1c", "token_use": "access",
           "scope": "openid", "exp": 1700003600.5, "nbf": 1699999000, "cognito:groups": ["a"]}
fake_sig = b64u(hashlib.sha256(b"fuzz").digest() * 8)  # 256 bytes, the length of an RS256 signature
for hdr in ({"alg": "RS256", "kid": "k1", "typ": "JWT"}, {"alg": "none"}, {"alg": "HS256", "kid": "k1"},
            {"alg": "RS256", "kid": "k1", "crit": ["exp"]}, {"alg": "RS256", "kid": "zz"}):
    for body in (claims, cognito, [1]):
        tok = b64u(json.dumps(hdr)) + b"." + b64u(json.dumps(body)) + b"." + fake_sig
        write("jwt", b"\x00" + tok)
write("jwt", b"\x00" + RFC_JWS)
write("jwt", b"\x00Bearer " + RFC_JWS)
write("jwt", b"\x00a.b.c")
write("jwt", b"\x00" + b64u('{"alg":"RS256","kid":"k1"}') + b"..")
for hdr, body in ((None, claims), (None, cognito),
                  (None, dict(claims, aud=["x", "aud-1"], nbf=1699999999.5)),
                  (None, dict(claims, exp=1e300)), (None, dict(claims, sub="")),
                  ({"alg": "RS256", "kid": "k1", "typ": "at+jwt"}, claims),
                  ({"alg": "RS256", "kid": "k1", "typ": 1}, claims)):
    text = json.dumps(body).encode()
    write("jwt", b"\x01" + (json.dumps(hdr).encode() + b"\x00" + text if hdr else text))
write("jwt", b"\x01{\"iss\":\"https://issuer.example\",\"aud\":\"aud-1\",\"sub\":\"u\",\"exp\":NaN}")
rsa_jwk = {"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": RFC_N.decode(), "e": "AQAB"}
write("jwt", b"\x02" + json.dumps({"keys": [rsa_jwk]}).encode())
write("jwt", b"\x02" + json.dumps({"keys": [
    rsa_jwk, dict(rsa_jwk, kid="k2", key_ops=["verify"]), dict(rsa_jwk, kid="enc", use="enc"),
    {"kty": "EC", "crv": "P-256", "kid": "ec1", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
    {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, dict(rsa_jwk, e="Aw"), dict(rsa_jwk, n="AA" + RFC_N.decode())]}).encode())
write("jwt", b"\x02{\"keys\":[]}")

print("corpus written to", OUT)

# ---- precond: If-Match / If-None-Match / Idempotency-Key values ----
for v in ['*', '"1"', '"1", "2"', 'W/"3"', '"12", W/"4", "x"', ' , "7" ,', '"abc"',
          '"' + "k" * 255 + '"', 'token-1', '"a b"', '"a\\b"', '""', ", ".join('"%d"' % i for i in range(1, 18))]:
    write("precond", v)

