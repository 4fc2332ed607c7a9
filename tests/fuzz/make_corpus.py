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
print("corpus written to", OUT)
