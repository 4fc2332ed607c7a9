#!/usr/bin/env python3
"""helpers.py — byte-exact helpers for tests/badinput/run.sh (bash cannot hold
NUL bytes or invalid UTF-8 in variables, and jq rewrites invalid UTF-8).

  helpers.py event v1|v2 METHOD PATH_FILE QUERY_FILE HEADERS_FILE BODY_FILE|- [b64]
      prints an API Gateway proxy event (payload 1.0 or 2.0) for the request.
      Every input is read from a file as raw bytes; strings go into the JSON
      with only '"', '\\' and control bytes escaped, so invalid UTF-8 and NUL
      (as \\u0000) reach taskhost exactly as given. HEADERS_FILE: one
      "Name: value" per line. "b64": the body is sent base64-encoded with
      isBase64Encoded true (the body file then holds the raw bytes), or
      "b64raw": isBase64Encoded true with the body as given (not base64).
  helpers.py cursor SECRET IDENTITY OWNER KEY
      prints a cursor sealed as runtime/cursor.c does (for forged cursors):
      version 2, the MAC over identity, owner and key.
  helpers.py tamper CURSOR
      prints the cursor with its middle character changed.
"""
import base64, hashlib, hmac, sys


def jstr(b: bytes) -> bytes:
    out = bytearray(b'"')
    for c in b:
        if c == 0x22:
            out += b'\\"'
        elif c == 0x5C:
            out += b'\\\\'
        elif c < 0x20:
            out += b'\\u%04x' % c
        else:
            out.append(c)
    out += b'"'
    return bytes(out)


def obj(pairs) -> bytes:
    return b"{" + b",".join(jstr(k) + b":" + v for k, v in pairs) + b"}"


def split_query(q: bytes):
    out = []
    for piece in q.split(b"&"):
        if not piece:
            continue
        k, eq, v = piece.partition(b"=")
        out.append((k, v))
    return out


def joined(hdrs):
    """HTTP APIs join repeated headers with commas (names compared without case)."""
    out, index = [], {}
    for k, v in hdrs:
        key = k.lower()
        if key in index:
            i = index[key]
            out[i] = (out[i][0], out[i][1] + b"," + v)
        else:
            index[key] = len(out)
            out.append((k, v))
    return out


def event(version, method, path, query, headers, body, mode):
    hdrs = []
    for line in headers.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line:
            continue
        k, _, v = line.partition(b":")
        hdrs.append((k.strip(), v.lstrip(b" ")))
    m = method.encode()
    b64 = mode in ("b64", "b64raw")
    if body is not None and mode == "b64":
        body = base64.b64encode(body)
    qs = split_query(query)
    if version == "v2":
        parts = [(b"version", b'"2.0"'), (b"routeKey", b'"$default"'),
                 (b"rawPath", jstr(path)), (b"rawQueryString", jstr(query)),
                 (b"headers", obj([(k, jstr(v)) for k, v in joined(hdrs)]))]
        if qs:
            single = {}
            for k, v in qs:
                single[k] = single[k] + b"," + v if k in single else v
            parts.append((b"queryStringParameters", obj([(k, jstr(v)) for k, v in single.items()])))
        ctx = obj([(b"accountId", b'"123456789012"'), (b"apiId", b'"badinput"'),
                   (b"requestId", b'"badinput"'), (b"stage", b'"$default"'),
                   (b"http", obj([(b"method", jstr(m)), (b"path", jstr(path)),
                                  (b"protocol", b'"HTTP/1.1"'), (b"sourceIp", b'"192.0.2.1"')]))])
        parts.append((b"requestContext", ctx))
    else:
        multi = {}
        for k, v in qs:
            multi.setdefault(k, []).append(v)
        mh = {}
        for k, v in hdrs:
            mh.setdefault(k, []).append(v)
        parts = [(b"resource", b'"/{proxy+}"'), (b"path", jstr(path)), (b"httpMethod", jstr(m)),
                 (b"headers", obj([(k, jstr(v[-1])) for k, v in mh.items()])),
                 (b"multiValueHeaders",
                  obj([(k, b"[" + b",".join(jstr(x) for x in v) + b"]") for k, v in mh.items()])),
                 (b"queryStringParameters",
                  obj([(k, jstr(v[-1])) for k, v in multi.items()]) if multi else b"null"),
                 (b"multiValueQueryStringParameters",
                  obj([(k, b"[" + b",".join(jstr(x) for x in v) + b"]") for k, v in multi.items()])
                  if multi else b"null"),
                 (b"pathParameters", b"null"), (b"stageVariables", b"null"),
                 (b"requestContext", obj([(b"accountId", b'"123456789012"'), (b"apiId", b'"badinput"'),
                                          (b"stage", b'"test"'), (b"requestId", b'"badinput"'),
                                          (b"httpMethod", jstr(m)), (b"resourcePath", b'"/{proxy+}"'),
                                          (b"path", jstr(path)),
                                          (b"identity", obj([(b"sourceIp", b'"192.0.2.1"')]))]))]
    if body is not None:
        parts.append((b"body", jstr(body)))
    elif version == "v1":
        parts.append((b"body", b"null"))
    parts.append((b"isBase64Encoded", b"true" if b64 else b"false"))
    return obj(parts)


def read(p):
    with open(p, "rb") as f:
        return f.read()


def main(argv):
    if len(argv) >= 8 and argv[1] == "event":
        body = None if argv[7] == "-" else read(argv[7])
        mode = argv[8] if len(argv) > 8 else ""
        sys.stdout.buffer.write(event(argv[2], argv[3], read(argv[4]), read(argv[5]),
                                      read(argv[6]), body, mode))
        return 0
    if len(argv) == 6 and argv[1] == "cursor":
        key = argv[5].encode()
        msg = argv[3].encode() + b"\x00" + argv[4].encode() + b"\x00" + key
        raw = b"\x02" + key + hmac.new(argv[2].encode(), msg, hashlib.sha256).digest()[:16]
        print(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
        return 0
    if len(argv) == 3 and argv[1] == "tamper":
        c = argv[2]
        i = len(c) // 2
        print(c[:i] + ("B" if c[i] != "B" else "C") + c[i + 1:])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
