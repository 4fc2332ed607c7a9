#!/usr/bin/env python3
"""log_lines.py — helpers for tests/e2e/test_log_lines.sh and tests/badinput/run.sh.

  log_lines.py check [--text] [--forged] [--cli FILE]... FILE...
      Every line of every FILE (taskhost's stderr) must decode as strict UTF-8
      and, in the JSON format, parse as a JSON object with the core fields:
      "timestamp" (RFC 3339, UTC, milliseconds), "level" (TRACE..FATAL),
      "message" (a string) and "requestId" (a string, when present). --text:
      the Text format instead: "<timestamp> <LEVEL> <requestId or -> ...".
      --forged: the route scripts tried to forge the core fields (see
      test_log_lines.sh): no core field may hold a forged value
      (requestId "forged-id", level "FATAL", message "forged", timestamp
      "forged-ts"). A FILE given with --cli is the stderr of a `taskhost
      --local` run that exited 2 (the input is not an event): it must hold
      exactly one line, "taskhost: ...", strict UTF-8 without control
      characters. Prints a JSON summary on stdout (lines, records, counts
      used by the callers to show the checks are not vacuous) and every
      failure on stderr; exit status 1 when anything failed.
  log_lines.py events EVENT_CORPUS HOST_CORPUS OUT_DIR [EVERY]
      Writes the inputs of the fuzz targets `event` and `host` as API
      Gateway events into OUT_DIR: ev.<name>.json (the event corpus, as is)
      and host.<name>.json (a host input turned into a payload 1.0 or 2.0
      event exactly as tests/fuzz/fuzz_host.c does); lambda.jsonl (one
      Runtime API test server spec per event) and local.txt (one in EVERY
      of each kind, chosen by a hash of the name, and every host input whose
      path is not UTF-8, for --local; default 8).
  log_lines.py http PORT EVENT_CORPUS HOST_CORPUS
      Sends every input of both corpora that makes an HTTP request to
      taskhost --serve on 127.0.0.1:PORT over raw sockets: a host input as
      fuzz_host.c reads it (method, path, query, Content-Type, body), an
      event input as fuzz_event.c's --serve bridge does (method \\n path \\n
      query \\n headers \\n\\n body). Bytes a request line or header cannot
      carry are percent-escaped (the path's bytes 0x80..0xFF among them, so
      invalid UTF-8 reaches taskhost decoded) or dropped. Prints a JSON
      summary (requests sent, answered, statuses).
"""
import hashlib
import json
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "badinput"))
from helpers import jstr  # noqa: E402  (byte-exact JSON strings, invalid UTF-8 kept)

LEVELS = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TEXT_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) \S+ ")
FORGED = {"requestId": "forged-id", "level": "FATAL", "message": "forged", "timestamp": "forged-ts"}


# ---- check -------------------------------------------------------------------

def check(argv):
    text = forged = False
    cli, files = set(), []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--text":
            text = True
        elif a == "--forged":
            forged = True
        elif a == "--cli":
            i += 1
            cli.add(argv[i])
            files.append(argv[i])
        else:
            files.append(a)
        i += 1
    s = {"files": 0, "lines": 0, "records": 0, "cli_lines": 0, "failures": 0,
         "replacement_in_path": 0, "path_bytes": 0, "forged_nested": 0, "nonfinite": 0,
         "request_records": 0}

    def fail(f, n, why, raw):
        s["failures"] += 1
        if s["failures"] <= 20:
            sys.stderr.write("FAIL: %s:%d: %s: %r\n" % (f, n, why, raw[:300]))

    for f in files:
        s["files"] += 1
        with open(f, "rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        elif data:
            fail(f, len(lines), "the last line has no newline", lines[-1])
        if f in cli:
            if len(lines) != 1 or not lines[0].startswith(b"taskhost: "):
                fail(f, 1, "not one 'taskhost: ' line", data)
                continue
            try:
                line = lines[0].decode("utf-8", "strict")
            except UnicodeDecodeError as e:
                fail(f, 1, "not UTF-8 (%s)" % e, lines[0])
                continue
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in line):
                fail(f, 1, "a control character", lines[0])
            s["lines"] += 1
            s["cli_lines"] += 1
            continue
        for n, raw in enumerate(lines, 1):
            s["lines"] += 1
            try:
                line = raw.decode("utf-8", "strict")
            except UnicodeDecodeError as e:
                fail(f, n, "not UTF-8 (%s)" % e, raw)
                continue
            if text:
                if not TEXT_RE.match(line):
                    fail(f, n, "not a Text record", raw)
                elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in line):
                    fail(f, n, "a control character", raw)
                else:
                    s["records"] += 1
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                fail(f, n, "not JSON (%s)" % e, raw)
                continue
            if not isinstance(rec, dict):
                fail(f, n, "not a JSON object", raw)
                continue
            why = None
            if not isinstance(rec.get("timestamp"), str) or not TS_RE.match(rec["timestamp"]):
                why = "timestamp"
            elif rec.get("level") not in LEVELS:
                why = "level"
            elif not isinstance(rec.get("message"), str):
                why = "message"
            elif "requestId" in rec and not isinstance(rec["requestId"], str):
                why = "requestId"
            elif "fields" in rec and not isinstance(rec["fields"], dict):
                why = "fields is not an object"
            elif forged and any(rec.get(k) == v for k, v in FORGED.items()):
                why = "a forged core field"
            if why:
                fail(f, n, why, raw)
                continue
            s["records"] += 1
            fields = rec.get("fields", {})
            if fields.get("requestId") == "forged-id" and fields.get("level") == "FATAL":
                s["forged_nested"] += 1
            if any(v in ("inf", "-inf", "nan") for v in fields.values()):
                s["nonfinite"] += 1
            if rec["message"] == "request" and "path" in rec:
                s["request_records"] += 1
                if "\ufffd" in rec["path"]:
                    s["replacement_in_path"] += 1
                if "pathBytes" in rec:
                    s["path_bytes"] += 1
                    # cut at 256 bytes: at most 256 characters (an ill-formed
                    # byte is one U+FFFD of three), fewer than pathBytes
                    if len(rec["path"]) > 256 or rec["pathBytes"] <= len(rec["path"]):
                        fail(f, n, "pathBytes and the cut path disagree", raw)
    print(json.dumps(s))
    return 1 if s["failures"] else 0


# ---- the corpora as events -----------------------------------------------------

KNOWN = [b"11111111-1111-4111-8111-111111111111", b"22222222-2222-4222-a222-222222222222",
         b"33333333-3333-4333-b333-333333333333"]
METHODS = [b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"HEAD"]


def host_parts(data):
    """A host input as fuzz_host.c splits it; None when it skips it."""
    if len(data) < 1 or len(data) > 200000 or b"th-empty-array-" in data:
        return None
    flags, rest = data[0], data[1:]
    fields = []
    for _ in range(4):
        j = rest.find(b"\xff")
        fields.append(rest if j < 0 else rest[:j])
        rest = b"" if j < 0 else rest[j + 1:]
    path, query, ctype, method = fields
    has_body = len(rest) > 0 or bool(flags & 0x10)
    if flags & 7 != 7:
        method = METHODS[flags & 7]
    elif not method or b"\0" in method:
        method = b"GET"
    full = (b"/dev" if flags & 0x80 else b"") + \
        ((b"/tasks/" + KNOWN[len(path) % 3]) if flags & 0x20 else b"") + path
    return {"flags": flags, "path": path, "full": full, "query": query, "ctype": ctype,
            "method": method, "body": rest if has_body else None}


def query_object(q, multi):
    pairs = []
    for piece in q.split(b"&"):
        if not piece:
            continue
        k, eq, v = piece.partition(b"=")
        pairs.append(jstr(k) + b":" + (b"[" if multi else b"") + jstr(v if eq else b"") +
                     (b"]" if multi else b""))
    return b"{" + b",".join(pairs) + b"}"


def host_event(p):
    """The event fuzz_host.c builds (byte for byte)."""
    flags, full, query, method = p["flags"], p["full"], p["query"], p["method"]
    v1 = bool(flags & 0x08)
    stage = b"dev" if flags & 0x80 else (b"test" if v1 else b"$default")
    ev_path = full[4:] if v1 and flags & 0x80 else full
    e = bytearray()
    if not v1:
        e += b'{"version":"2.0","routeKey":"$default","rawPath":' + jstr(full)
        e += b',"rawQueryString":' + jstr(query)
        if query:
            e += b',"queryStringParameters":' + query_object(query, False)
    else:
        e += b'{"resource":"/{proxy+}","path":' + jstr(ev_path) + b',"httpMethod":' + jstr(method)
        if query:
            e += b',"queryStringParameters":' + query_object(query, False)
            e += b',"multiValueQueryStringParameters":' + query_object(query, True)
        else:
            e += b',"queryStringParameters":null,"multiValueQueryStringParameters":null'
    e += b',"headers":{"host":"fuzz.local"'
    ctype, _, extra = p["ctype"].partition(b"\n")
    if not flags & 0x40:
        e += b',"content-type":' + (jstr(ctype) if ctype else b'"application/json"')
    for line in extra.split(b"\n"):  # further lines: "Name: value" request headers
        name, colon, value = line.partition(b":")
        if colon and name:
            e += b"," + jstr(name) + b":" + jstr(value[1:] if value.startswith(b" ") else value)
    e += b'},"requestContext":{"accountId":"123456789012","apiId":"fuzz","stage":' + jstr(stage)
    e += b',"requestId":"fuzz-req"'
    if not v1:
        e += b',"http":{"method":' + jstr(method) + b',"path":' + jstr(full)
        e += b',"protocol":"HTTP/1.1","sourceIp":"192.0.2.1"}}'
    else:
        e += b',"path":' + jstr(full) + b',"identity":{"sourceIp":"192.0.2.1"}}'
    if p["body"] is not None:
        e += b',"body":' + jstr(p["body"])
    e += b',"isBase64Encoded":true}' if flags & 0x10 else b',"isBase64Encoded":false}'
    return bytes(e)


def in_sample(name, every):
    """One file in EVERY, by a hash of its name: a file added to a corpus never moves
    the others in or out of the sample."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % every == 0


def valid_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def events(argv):
    ev_dir, host_dir, out = argv[0], argv[1], argv[2]
    every = int(argv[3]) if len(argv) > 3 else 8
    os.makedirs(out, exist_ok=True)
    specs, local, n_ev, n_host = [], [], 0, 0
    for name in sorted(os.listdir(ev_dir)):
        dst = os.path.join(out, "ev.%s.json" % name)
        with open(os.path.join(ev_dir, name), "rb") as src, open(dst, "wb") as f:
            f.write(src.read())
        specs.append({"event_file": dst, "request_id": "ev-%d-%s" % (n_ev, name[:12])})
        if in_sample(name, every):
            local.append(dst)
        n_ev += 1
    for name in sorted(os.listdir(host_dir)):
        with open(os.path.join(host_dir, name), "rb") as src:
            p = host_parts(src.read())
        if p is None:
            continue
        dst = os.path.join(out, "host.%s.json" % name)
        with open(dst, "wb") as f:
            f.write(host_event(p))
        specs.append({"event_file": dst, "request_id": "host-%d-%s" % (n_host, name[:12])})
        if in_sample(name, every) or not valid_utf8(p["full"]):
            local.append(dst)
        n_host += 1
    with open(os.path.join(out, "lambda.jsonl"), "w") as f:
        for s in specs:
            f.write(json.dumps(s) + "\n")
    with open(os.path.join(out, "local.txt"), "w") as f:
        f.write("".join(p + "\n" for p in local))
    print(json.dumps({"event": n_ev, "host": n_host, "local": len(local)}))
    return 0


# ---- the corpora as HTTP requests --------------------------------------------------

TOKEN = set(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def escape(b, keep):
    """Percent-escapes every byte outside 0x21..0x7E, and '#' and '?' unless
    keep holds them."""
    out = bytearray()
    for c in b:
        if 0x21 <= c <= 0x7E and c not in b"#?" or c in keep:
            out.append(c)
        else:
            out += b"%%%02X" % c
    return bytes(out)


def request_bytes(method, path, query, headers, body):
    if not method or any(c not in TOKEN for c in method):
        method = b"GET"
    path = escape(path, b"")
    if not path.startswith(b"/"):
        path = b"/" + path
    target = path + (b"?" + escape(query, b"?") if query else b"")
    out = bytearray(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
    for k, v in headers:
        if not k or any(c not in TOKEN for c in k) or k.lower() in (b"host", b"connection",
                                                                     b"content-length",
                                                                     b"transfer-encoding"):
            continue
        v = bytes(c for c in v if c not in b"\r\n\0")
        out += k + b": " + v.strip(b" \t") + b"\r\n"
    if body is not None:
        out += b"Content-Length: %d\r\n" % len(body)
    out += b"\r\n" + (body or b"")
    return bytes(out)


def event_http(data):
    """fuzz_event.c's --serve bridge split; None when it makes no request."""
    lines, body, p = [], b"", 0
    while p < len(data) and len(lines) < 40:
        nl = data.find(b"\n", p)
        line = data[p:nl] if nl >= 0 else data[p:]
        if not line and len(lines) >= 3:
            body = data[nl + 1:] if nl >= 0 else b""
            break
        lines.append(line)
        p = nl + 1 if nl >= 0 else len(data)
        body = data[p:]
    if len(lines) < 3 or not lines[0]:
        return None
    headers = [tuple(l.split(b":", 1)) for l in lines[3:] if b":" in l]
    return request_bytes(lines[0], lines[1], lines[2], headers, body)


def send(port, req):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(req)
        except OSError:
            pass  # answered and closed before the whole body was read
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
        except OSError:
            pass
    m = re.match(rb"HTTP/1\.[01] (\d{3})", bytes(got))
    return m.group(1).decode() if m else "none"


def http(argv):
    port, ev_dir, host_dir = int(argv[0]), argv[1], argv[2]
    sent, statuses = 0, {}
    reqs = []
    for name in sorted(os.listdir(host_dir)):
        with open(os.path.join(host_dir, name), "rb") as f:
            p = host_parts(f.read())
        if p is None:
            continue
        hdrs = [] if p["flags"] & 0x40 else [(b"Content-Type", p["ctype"] or b"application/json")]
        reqs.append(request_bytes(p["method"], p["full"], p["query"], hdrs, p["body"]))
    for name in sorted(os.listdir(ev_dir)):
        with open(os.path.join(ev_dir, name), "rb") as f:
            r = event_http(f.read())
        if r is not None:
            reqs.append(r)
    for r in reqs:
        st = send(port, r)
        sent += 1
        statuses[st] = statuses.get(st, 0) + 1
    print(json.dumps({"sent": sent, "statuses": statuses}))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "check":
        return check(argv[2:])
    if len(argv) >= 5 and argv[1] == "events":
        return events(argv[2:])
    if len(argv) == 5 and argv[1] == "http":
        return http(argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
