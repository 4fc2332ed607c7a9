#!/usr/bin/python3
"""Cross-check th_sigv4_sign against botocore, request for request.

Usage: /usr/bin/python3 tests/botocore_crosscheck.py PATH_TO_sigv4-sign

Needs Debian's botocore (apt-get install python3-botocore), hence
/usr/bin/python3. Generates a fixed (seeded) set of requests -- every
method, paths with spaces, UTF-8, reserved and pre-encoded characters, dot
segments and repeated slashes, repeated and unsorted query keys, keys
without values, pre-encoded and oddly encoded query text, header values
with inner/outer whitespace, tabs and folded lines, repeated headers,
headers botocore leaves unsigned, empty, binary and 1 MiB bodies, with and
without a session token, DynamoDB-style JSON requests, several services,
regions and signing times -- and signs each one twice:

* with botocore.auth.SigV4Auth on a botocore.awsrequest.AWSRequest, the
  clock pinned by replacing what botocore.auth reads the time from: its
  `datetime` module (botocore 1.29 calls datetime.datetime.utcnow(); the
  stand-in also answers now(tz)) and, in newer botocore, its
  get_current_datetime();
* with sigv4-sign (our C signer), fed the same request as a JSON line.

Header mode must give identical Authorization, X-Amz-Date and
X-Amz-Security-Token headers and nothing else. A presigned subset is checked
the same way against botocore.auth.SigV4QueryAuth (its X-Amz-* query
parameters). The query goes to botocore as decoded (key, value) pairs
(botocore's own serialisers hand it over that way) and to sigv4-sign as
raw text, encoded in varied ways, which the C side must decode and
re-encode to the same canonical form. Paths are given to both exactly as
they appear in the request target.

Prints one line per mismatch, then "N passed, N failed"; exits 1 on any
mismatch (or when fewer than 200 requests ran), 1 when
botocore cannot be imported.
"""

import base64
import contextlib
import datetime
import json
import random
import re
import subprocess
import sys
import types
from unittest import mock
from urllib.parse import quote, urlsplit

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
except ImportError:
    print("botocore not available: install python3-botocore (scripts/deps.sh --test)")
    sys.exit(1)

SEED = 20150830
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
SERVICES = ["dynamodb", "execute-api", "lambda", "sqs", "sts", "logs", "kinesis",
            "ssm", "secretsmanager", "events"]
REGIONS = ["us-east-1", "eu-west-1", "eu-central-2", "ap-southeast-2", "us-gov-west-1",
           "cn-north-1", "me-central-1", "sa-east-1"]
DDB_OPS = ["PutItem", "GetItem", "UpdateItem", "DeleteItem", "Scan", "Query",
           "DescribeTable"]

# Raw path segments. '?' and '#' cannot appear raw in a path, so they come
# pre-encoded; everything else that is legal in a request target appears raw.
SEGMENTS = [
    "a", "example", "Tables", "my-table", "a b", "two  spaces", "ሴ", "日本語",
    "émoji😀", "café", "!*'();:@&=+$,", "[brackets]", "%3F%23", "a%20b", "100%",
    "-._~", "a;b=c", "~user", "file.txt", "a+b", "a,b", "$dollar", "@at", "x=y&z",
    ".", "..", "", "2015-03-31", "functions", "UPPER", "%E1%88%B4", "%2F", "tab%09",
]
FIXED_PATHS = [
    "/", "", "/example space/", "/ሴ", "/a/./b/../c", "//double//slashes//", "/trailing/",
    "/..", "/../a", "/./", "/a/b/../../..", "/!*'();:@&=+$,/", "/[x]/[y]", "/%3F/%23",
    "/already%20encoded/%E1%88%B4", "/100%", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "abcdefghijklmnopqrstuvwxyz", "/2015-03-31/functions/my-fn/invocations", "/a+b/c,d",
    "/tasks/7f8e9d1c-0000-4000-8000-000000000000", "/caf\u00e9/\u00fcber/", "/.../....",
]
KEYS = [
    "Param1", "param1", "Param2", "a", "A", "a-b", "a.b", "a_b", "a~b", "Z", "z", "1",
    "_", "key with space", "ሴ", "x=y", "amp&key", "plus+key", "slash/key", "%percent",
    "ExclusiveStartKey", "Limit", "empty", "Action", "Version", "filter[name]", "café",
    "semi;colon", "",
]
VALUES = [
    "", "value1", "value2", "a b", "a+b", "a=b", "100%", "ሴ/日本", "~-._",
    "!*'();:@&=+$,/?#[]", "café", "Value With Caps", "0", "-1", "2015-08-30T12:36:00Z",
    "{\"id\":{\"S\":\"x\"}}", "tab\tin", "quote\"s", "back\\slash", "x" * 300,
]
HEADER_VALUES = [
    "value1", "  leading", "trailing  ", "  both  ", "inner   spaces   here",
    "\ttabs\t\tand  spaces\t", "", "   ", "a,b,c", "\"a   b   c\"", "line1\r\n  line2",
    "line1\n\tline2\n   line3", "café ☕", "UPPER lower", "x" * 2000, "=;:,/?@&+$",
]


def rand_text(rng, alphabet, lo, hi):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def credentials(rng, with_token):
    access = "AKIA" + rand_text(rng, UPPER_ALNUM, 16, 16)
    secret = rand_text(rng, B64, 40, 40)
    token = None
    if with_token:
        token = rand_text(rng, B64, 100, 900) + rng.choice(["", "=", "=="])
    return access, secret, token


def rand_path(rng):
    if rng.random() < 0.3:
        return rng.choice(FIXED_PATHS)
    segs = [rng.choice(SEGMENTS) for _ in range(rng.randint(1, 5))]
    path = "/" + "/".join(segs)
    if rng.random() < 0.3:
        path += "/"
    return path


def encode_piece(rng, text, is_key):
    """Some raw-query spelling of `text` that decodes back to it."""
    style = rng.choice(["canonical", "raw", "lower", "all", "mixed"])
    forbidden = set("&%#") | ({"="} if is_key else set())
    if style == "raw" and not (set(text) & forbidden):
        return text
    if style == "lower":
        return re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                      quote(text, safe=""))
    if style == "all":
        return "".join("%%%02X" % b for b in text.encode("utf-8"))
    if style == "mixed":
        out = []
        for ch in text:
            if ch not in forbidden and rng.random() < 0.5:
                out.append(ch)
            else:
                out.append("".join("%%%02X" % b for b in ch.encode("utf-8")))
        return "".join(out)
    return quote(text, safe="-_.~")


def rand_query(rng, unique_keys=False):
    """[(key, value)] decoded, and a raw query string for the same."""
    pairs = []
    if rng.random() < 0.2:
        return pairs, rng.choice(["", None])
    for _ in range(rng.randint(1, 6)):
        if pairs and not unique_keys and rng.random() < 0.3:
            key = rng.choice(pairs)[0]          # a repeated key
        else:
            key = rng.choice(KEYS)
            if unique_keys and any(k == key for k, _ in pairs):
                continue
        pairs.append((key, rng.choice(VALUES)))
    raw = []
    for key, value in pairs:
        piece = encode_piece(rng, key, True)
        if value == "" and key != "" and rng.random() < 0.5:
            raw.append(piece)                   # a key without '='
        else:
            raw.append(piece + "=" + encode_piece(rng, value, False))
    if rng.random() < 0.1:
        raw.insert(rng.randint(0, len(raw)), "")  # an empty piece: "a=1&&b=2"
    return pairs, "&".join(raw)


def rand_headers(rng, host, body):
    host_name = rng.choice(["Host", "host", "HOST"])
    extra = []
    for _ in range(rng.randint(0, 6)):
        name = rng.choice(["My-Header1", "my-header1", "X-Custom", "X-Empty", "Accept",
                           "Cache-Control", "X-Amz-Meta-Note", "X-Amz-Target",
                           "Content-Type", "User-Agent", "X-Amzn-Trace-Id", "Expect",
                           "If-Match", "X-Forwarded-For", "x_underscore"])
        extra.append((name, rng.choice(HEADER_VALUES)))
    if body and rng.random() < 0.5:
        extra.append(("Content-Length", str(len(body))))
    pos = rng.randint(0, len(extra))
    return extra[:pos] + [(host_name, host)] + extra[pos:]


def rand_time(rng):
    fixed = [
        datetime.datetime(2015, 8, 30, 12, 36, 0),
        datetime.datetime(2024, 2, 29, 23, 59, 59),
        datetime.datetime(2000, 1, 1, 0, 0, 0),
        datetime.datetime(1999, 12, 31, 23, 59, 59),
        datetime.datetime(2038, 1, 19, 3, 14, 8),
        datetime.datetime(2100, 3, 1, 0, 0, 1),
    ]
    if rng.random() < 0.3:
        return rng.choice(fixed)
    epoch = rng.randint(946684800, 2145916800)
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=epoch)


def rand_body(rng, index):
    if index % 53 == 5:                          # a few 1 MiB bodies
        return bytes(rng.getrandbits(8) for _ in range(1 << 20))
    kind = rng.choice(["empty", "empty", "json", "binary", "text"])
    if kind == "json":
        return json.dumps({"TableName": "tasks", "Key": {"id": {"S": str(index)}},
                           "Note": "café ☕"}, ensure_ascii=False).encode("utf-8")
    if kind == "binary":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
    if kind == "text":
        return ("Param1=value1&n=%d" % index).encode()
    return b""


def generate(rng, count):
    cases = []
    for i in range(count):
        method = METHODS[i % len(METHODS)]
        region = rng.choice(REGIONS)
        with_token = rng.random() < 0.5
        presign = i % 5 == 4
        if i % 4 == 0 and not presign:
            # DynamoDB JSON protocol, as the store backend sends it.
            service = "dynamodb"
            host = "dynamodb.%s.amazonaws.com" % region
            op = rng.choice(DDB_OPS)
            body = json.dumps({"TableName": "tasks",
                               "Item": {"id": {"S": "t-%d" % i},
                                        "title": {"S": "Buy milk ☕"},
                                        "n": {"N": "9007199254740993"}}},
                              separators=(",", ":"), ensure_ascii=False).encode()
            headers = [("Host", host),
                       ("Content-Type", "application/x-amz-json-1.0"),
                       ("X-Amz-Target", "DynamoDB_20120810." + op)]
            if rng.random() < 0.5:
                headers.append(("Content-Length", str(len(body))))
            rng.shuffle(headers)
            path, pairs, raw_query = "/", [], ""
            method = "POST" if i % 8 == 0 else method
        else:
            service = rng.choice(SERVICES)
            host = "%s.%s.amazonaws.com" % (service, region)
            if rng.random() < 0.2:
                host += ":%d" % rng.choice([8000, 4566, 443])
            body = b"" if presign else rand_body(rng, i)
            headers = rand_headers(rng, host, body)
            path = rand_path(rng)
            pairs, raw_query = rand_query(rng, unique_keys=presign)
        access, secret, token = credentials(rng, with_token)
        cases.append({
            "index": i, "method": method, "host": host, "path": path,
            "pairs": pairs, "raw_query": raw_query, "headers": headers, "body": body,
            "access": access, "secret": secret, "token": token, "region": region,
            "service": service, "when": rand_time(rng), "presign": presign,
            "expires": rng.choice([1, 60, 3600, 604800]),
            "time_form": rng.choice(["amz", "iso", "epoch"]),
        })
    return cases


class _Clock(datetime.datetime):
    """datetime.datetime whose utcnow()/now() return the pinned instant."""
    pinned = None

    @classmethod
    def utcnow(cls):
        return cls.pinned

    @classmethod
    def now(cls, tz=None):
        return cls.pinned if tz is None else cls.pinned.replace(tzinfo=tz)


def _pinned_now(remove_tzinfo=True):
    """Stand-in for botocore.compat.get_current_datetime (newer botocore)."""
    if remove_tzinfo:
        return _Clock.pinned
    return _Clock.pinned.replace(tzinfo=datetime.timezone.utc)


def botocore_sign(case):
    """The headers botocore adds (header mode) or its X-Amz-* parameters
    (presign), and its canonical request."""
    creds = botocore.credentials.Credentials(case["access"], case["secret"], case["token"])
    url = "https://" + case["host"] + case["path"]
    if case["presign"]:
        params = {}
        for k, v in case["pairs"]:
            params.setdefault(k, []).append(v)
        signer = botocore.auth.SigV4QueryAuth(creds, case["service"], case["region"],
                                              expires=case["expires"])
    else:
        params = list(case["pairs"])
        signer = botocore.auth.SigV4Auth(creds, case["service"], case["region"])
    req = botocore.awsrequest.AWSRequest(method=case["method"], url=url,
                                         data=case["body"], params=params)
    for name, value in case["headers"]:
        req.headers[name] = value               # appends: repeats are kept
    # Keep the canonical request botocore signs, for the mismatch hints.
    captured = []
    plain = signer.canonical_request

    def capture(request):
        captured.append(plain(request))
        return captured[-1]

    signer.canonical_request = capture
    _Clock.pinned = case["when"]
    fake = types.SimpleNamespace(datetime=_Clock, timedelta=datetime.timedelta,
                                 timezone=datetime.timezone)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(botocore.auth, "datetime", fake))
        if hasattr(botocore.auth, "get_current_datetime"):
            stack.enter_context(mock.patch.object(botocore.auth, "get_current_datetime",
                                                  _pinned_now))
        signer.add_auth(req)
    canonical = captured[-1]
    stamp = case["when"].strftime("%Y%m%dT%H%M%SZ")
    if case["presign"]:
        query = urlsplit(req.url).query
        added = {}
        for piece in query.split("&"):
            k, _, v = piece.partition("=")
            if k.startswith("X-Amz-"):
                added[k] = v
        assert added.get("X-Amz-Date") == stamp, "clock not pinned"
        return added, canonical
    added = {"X-Amz-Date": req.headers["X-Amz-Date"],
             "Authorization": req.headers["Authorization"]}
    assert added["X-Amz-Date"] == stamp, "clock not pinned"
    if case["token"]:
        added["X-Amz-Security-Token"] = req.headers["X-Amz-Security-Token"]
    return added, canonical


def c_input(case):
    when = case["when"]
    obj = {
        "method": case["method"], "path": case["path"],
        "headers": [[n, v] for n, v in case["headers"]],
        "body_b64": base64.b64encode(case["body"]).decode(),
        "access_key": case["access"], "secret_key": case["secret"],
        "region": case["region"], "service": case["service"],
    }
    if case["raw_query"] is not None:
        obj["query"] = case["raw_query"]
    if case["token"]:
        obj["session_token"] = case["token"]
    if case["time_form"] == "amz":
        obj["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    elif case["time_form"] == "iso":
        obj["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        obj["epoch"] = int((when - datetime.datetime(1970, 1, 1)).total_seconds())
    if case["presign"]:
        obj["presign"] = True
        obj["expires"] = case["expires"]
    return json.dumps(obj, ensure_ascii=False)


def first_difference(got, want):
    g, w = got.split("\n"), want.split("\n")
    for n, (a, b) in enumerate(zip(g, w), 1):
        if a != b:
            col = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            start = max(0, col - 30)
            return "canonical request line %d col %d: ours %r, botocore %r" % (
                n, col + 1, a[start:col + 30], b[start:col + 30])
    return "canonical requests differ in length (%d vs %d lines)" % (len(g), len(w))


def main():
    if len(sys.argv) != 2:
        print("usage: %s PATH_TO_sigv4-sign" % sys.argv[0], file=sys.stderr)
        return 2
    rng = random.Random(SEED)
    cases = generate(rng, 320)
    expected = [botocore_sign(c) for c in cases]
    stdin = "".join(c_input(c) + "\n" for c in cases).encode("utf-8")
    try:
        proc = subprocess.run([sys.argv[1]], input=stdin, capture_output=True, check=False)
    except OSError as err:
        print("cannot run %s: %s" % (sys.argv[1], err))
        return 1
    if proc.returncode != 0:
        print("sigv4-sign failed (status %d): %s" % (proc.returncode,
                                                     proc.stderr.decode(errors="replace")))
        return 1
    lines = proc.stdout.decode("utf-8").splitlines()
    if len(lines) != len(cases):
        print("sigv4-sign answered %d lines for %d requests" % (len(lines), len(cases)))
        return 1

    passed = failed = 0
    for case, (want, canonical), line in zip(cases, expected, lines):
        got_obj = json.loads(line)
        label = "#%d %s %r (%s)" % (case["index"], case["method"], case["path"],
                                     "presign" if case["presign"] else "header")
        if "error" in got_obj:
            failed += 1
            print("MISMATCH %s: sigv4-sign refused it: %s: %s" %
                  (label, got_obj["error"], got_obj.get("detail")))
            continue
        key = "params" if case["presign"] else "headers"
        got = {n: v for n, v in (got_obj.get(key) or [])}
        problems = []
        for name in sorted(set(got) | set(want)):
            if name not in got:
                problems.append("%s missing" % name)
            elif name not in want:
                problems.append("%s not added by botocore" % name)
            elif got[name] != want[name]:
                problems.append("%s differs" % name)
        if problems:
            failed += 1
            hint = ""
            if got_obj.get("canonical_request") != canonical:
                hint = "; " + first_difference(got_obj.get("canonical_request", ""), canonical)
            print("MISMATCH %s: %s%s" % (label, ", ".join(problems), hint))
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or passed + failed < 200 else 0


if __name__ == "__main__":
    sys.exit(main())
