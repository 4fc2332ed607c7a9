#!/usr/bin/python3
"""A stand-in for the AWS Lambda Runtime API (2018-06-01), on loopback.

It hands out a queue of invocations on GET /2018-06-01/runtime/invocation/next
and records everything the runtime sends back, one JSON object a line:

  {"kind": "next", "request_id", "index", "t", "deadline_ms", ...}
  {"kind": "response" | "error", "request_id", "index", "t", "deadline_ms",
   "headers": {lower-case name: value}, "body": text, "body_bytes", "answered"}
  {"kind": "init_error", "headers", "body", "t"}
  {"kind": "drained", "t"}           the runtime asked for one more event
  {"kind": "next_refused", "status"} a `next` answered with --on-drain status:CODE
  {"kind": "rss", "after": N, "vmrss_kb", "vmhwm_kb", "pid"}
  {"kind": "unknown" | "bad_request", ...}
Every request record also has "method", "target" (the request line's target:
an absolute URL would mean a proxy was used), "version" and "client" (the
client's port: one port for a whole run means one reused connection). "t" is
the epoch time in ms the request arrived (for a post: once its body was read).

An invocation spec (one JSON object; a line of --queue, a file in --queue-dir):
  event          any JSON value: its JSON text is the event
  event_file     path of a file sent as is
  body           a string sent as is
  generate_bytes N: a JSON event of about N bytes ({"padding": "xxx..."})
  request_id     default: a random UUID (suffixed -<k> when repeated)
  deadline_in_ms Lambda-Runtime-Deadline-Ms = now + this (default
                 --deadline-in-ms); deadline_ms sets the epoch value itself;
                 null sends no deadline header
  function_arn   default --function-arn; null: no header
  trace_id       Lambda-Runtime-Trace-Id; absent or null: no header; "auto"
                 a fresh one per event ("auto:N": padded to N characters)
  response_status  what the runtime's post for this invocation is answered
                 (default 202; answers outside 2xx leave the invocation open,
                 as the real API does, so an /error can still follow)
  delay_ms       wait this long before handing the event out
  repeat         hand this spec out N times in a row

When the queue is empty (no --queue-dir), the next `next` is recorded as
"drained" and then --on-drain decides: "hold" keeps that request open until
the server stops (SIGTERM/SIGINT or --timeout); "exit" stops the server (the
runtime sees its connection closed); "status:CODE" answers it (and every later
one) with CODE. With --queue-dir, `next` waits for spec files (*.json, taken
in name order and deleted; write them elsewhere and rename them in).

--gateway-port-file F: also a loopback "API Gateway" (an HTTP API, payload
format 2.0) on another port, written to F: each HTTP request it receives
becomes a payload-2.0 event queued here (request id "gw-<n>"), handed to
whichever runtime asks `next` first (several runtimes may poll one server,
as concurrent instances of one function), and the function's response is
the HTTP answer (statusCode, headers, multiValueHeaders, cookies, body,
isBase64Encoded, as API Gateway maps them); a post to /error answers 500
{"message":"Internal Server Error"}; no answer within --gateway-timeout-s
(default 30, API Gateway's own limit) answers 503 {"message":"Service
Unavailable"}. A `next` with nothing queued then waits instead of draining.

--rss-pid-file F --rss-at 100,1000: when `next` arrives after N events were
handed out (so the runtime is idle, waiting), records the VmRSS of the pid in
F from /proc.

Standard library only; run with /usr/bin/python3.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


def now_ms():
    return int(time.time() * 1000)


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.queue = []          # static specs still to hand out
        self.handed = 0          # events handed out
        self.open = {}           # request_id -> spec (awaiting a 2xx-accepted post)
        self.drained = False
        self.waiters = {}        # request_id -> Waiter (gateway requests awaiting their answer)
        self.gw_seq = 0
        self.rss_at = set(int(x) for x in args.rss_at.split(",") if x) if args.rss_at else set()
        self.out = open(args.record, "a", encoding="utf-8") if args.record else sys.stdout

    def record(self, obj):
        line = json.dumps(obj, separators=(",", ":"))
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()


def load_queue(args):
    specs = []
    for path in args.event or []:
        specs.append({"event_file": path})
    if args.queue:
        with open(args.queue, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    specs.append(json.loads(line))
    out = []
    for _ in range(args.repeat):
        out.extend(specs)
    expanded = []
    for spec in out:
        n = int(spec.get("repeat", 1))
        expanded.extend([spec] * n)
    return expanded


def event_bytes(spec):
    if "event_file" in spec:
        with open(spec["event_file"], "rb") as f:
            return f.read()
    if "body" in spec:
        return spec["body"].encode("utf-8")
    if "generate_bytes" in spec:
        n = int(spec["generate_bytes"])
        return b'{"padding":"' + b"x" * max(0, n - 14) + b'"}'
    return json.dumps(spec.get("event", {}), separators=(",", ":")).encode("utf-8")


def make_trace_id(length=0):
    """A fresh X-Ray trace header, padded with a Lineage part to `length`."""
    t = "Root=1-%08x-%s;Parent=%s;Sampled=1" % (int(time.time()), uuid.uuid4().hex[:24],
                                                uuid.uuid4().hex[:16])
    if length > len(t) + 9:
        t += ";Lineage=" + "a" * (length - len(t) - 9)
    return t


def read_rss(state):
    try:
        with open(state.args.rss_pid_file, encoding="ascii") as f:
            pid = int(f.read().strip())
        fields = {}
        with open("/proc/%d/status" % pid, encoding="ascii") as f:
            for line in f:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
        return {"pid": pid, "vmrss_kb": int(fields["VmRSS"].split()[0]),
                "vmhwm_kb": int(fields["VmHWM"].split()[0])}
    except (OSError, ValueError, KeyError) as e:
        return {"error": str(e)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "runtime-api-test"
    # Headers and body go out in separate writes: without TCP_NODELAY the
    # body waits for the client's delayed ACK (40 ms an answer).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *a):  # quiet: the record file says it all
        if self.server.state.args.verbose:
            sys.stderr.write("rapi: " + (fmt % a) + "\n")

    def base(self):
        return {"method": self.command, "target": self.path, "version": self.request_version,
                "client": self.client_address[1]}

    def reply(self, status, obj=None, headers=None):
        data = json.dumps(obj if obj is not None else {}).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- GET next ----
    def do_GET(self):
        st = self.server.state
        path = self.path.split("?")[0]
        if path != PREFIX + "/invocation/next":
            st.record(dict(kind="unknown", t=now_ms(), **self.base()))
            self.reply(404, {"errorMessage": "unknown path", "errorType": "NotFound"})
            return
        spec = self.take_spec()
        if spec is None:
            return  # held until the server stops: the connection just closes
        if isinstance(spec, int):
            self.reply(spec, {"errorMessage": "Container error", "errorType": "Container.Error"})
            return
        delay = spec.get("delay_ms")
        if delay:
            if st.stop.wait(delay / 1000.0):
                return
        index = spec["_index"]
        rid = spec["_request_id"]
        body = event_bytes(spec)
        headers = {"Lambda-Runtime-Aws-Request-Id": rid}
        deadline = None
        if "deadline_ms" in spec:
            deadline = spec["deadline_ms"]
        elif spec.get("deadline_in_ms", 0) is not None:
            deadline = now_ms() + int(spec.get("deadline_in_ms", st.args.deadline_in_ms))
        if deadline is not None:
            headers["Lambda-Runtime-Deadline-Ms"] = str(deadline)
        arn = spec.get("function_arn", st.args.function_arn)
        if arn is not None:
            headers["Lambda-Runtime-Invoked-Function-Arn"] = arn
        trace = spec.get("trace_id")
        if isinstance(trace, str) and trace.startswith("auto"):
            trace = make_trace_id(int(trace[5:] or 0))
        if trace is not None:
            headers["Lambda-Runtime-Trace-Id"] = trace
        spec["_deadline"] = deadline
        with st.lock:
            st.open[rid] = spec
        st.record(dict(kind="next", request_id=rid, index=index, t=now_ms(), deadline_ms=deadline,
                       event_bytes=len(body), **self.base()))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            pass  # the runtime may hang up on an event it will not read

    def take_spec(self):
        """The next spec, an int status to answer with, or None to hold."""
        st = self.server.state
        args = st.args
        with st.lock:
            handed = st.handed
        if handed in st.rss_at and args.rss_pid_file:
            st.record(dict(kind="rss", after=handed, t=now_ms(), **read_rss(st)))
        while not st.stop.is_set():
            with st.lock:
                spec = None
                if st.queue:
                    spec = dict(st.queue.pop(0))
                elif args.queue_dir:
                    names = sorted(n for n in os.listdir(args.queue_dir) if n.endswith(".json"))
                    for name in names:
                        p = os.path.join(args.queue_dir, name)
                        try:
                            with open(p, encoding="utf-8") as f:
                                spec = json.load(f)
                            os.unlink(p)
                        except (OSError, ValueError):
                            spec = None
                            continue
                        break
                if spec is not None:
                    st.handed += 1
                    spec["_index"] = st.handed
                    rid = spec.get("request_id")
                    if rid is None:
                        rid = str(uuid.uuid4())
                    elif spec.get("repeat", 1) != 1 or args.repeat != 1:
                        rid = "%s-%d" % (rid, st.handed)
                    spec["_request_id"] = rid
                    return spec
                waiting = args.queue_dir or args.gateway_port_file
                if not waiting:
                    first = not st.drained
                    st.drained = True
            if not waiting:
                if first:
                    st.record(dict(kind="drained", t=now_ms(), handed=handed, **self.base()))
                mode = args.on_drain
                if mode.startswith("status:"):
                    code = int(mode.split(":", 1)[1])
                    st.record(dict(kind="next_refused", status=code, t=now_ms(), **self.base()))
                    return code
                if mode == "exit":
                    st.stop.set()
                st.stop.wait()
                return None
            st.stop.wait(0.01)
        return None

    # ---- POST response / error / init error ----
    def do_POST(self):
        st = self.server.state
        body = self.read_body()
        t = now_ms()
        path = self.path.split("?")[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        text = body.decode("utf-8", errors="replace")
        if path == PREFIX + "/init/error":
            st.record(dict(kind="init_error", t=t, headers=headers, body=text,
                           body_bytes=len(body), **self.base()))
            self.reply(202, {"status": "OK"})
            return
        parts = path[len(PREFIX):].split("/") if path.startswith(PREFIX) else []
        # ['', 'invocation', '<id>', 'response'|'error']
        if len(parts) != 4 or parts[1] != "invocation" or parts[3] not in ("response", "error"):
            st.record(dict(kind="unknown", t=t, headers=headers, body=text[:1000], **self.base()))
            self.reply(404, {"errorMessage": "unknown path", "errorType": "NotFound"})
            return
        from urllib.parse import unquote
        rid = unquote(parts[2])
        with st.lock:
            spec = st.open.get(rid)
        if spec is None:
            st.record(dict(kind="bad_request", request_id=rid, t=t, headers=headers,
                           body=text[:1000], **self.base()))
            self.reply(400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
            return
        status = 202
        if parts[3] == "response" and spec.get("response_status"):
            status = int(spec["response_status"])
        if 200 <= status <= 299:
            with st.lock:
                st.open.pop(rid, None)
        st.record(dict(kind=parts[3], request_id=rid, index=spec["_index"], t=t,
                       deadline_ms=spec.get("_deadline"), headers=headers, body=text,
                       body_bytes=len(body), answered=status, **self.base()))
        if 200 <= status <= 299:
            with st.lock:
                waiter = st.waiters.pop(rid, None)
            if waiter is not None:
                waiter.kind = parts[3]
                waiter.body = body
                waiter.done.set()
            self.reply(status, {"status": "OK"})
        else:
            self.reply(status, {"errorMessage": "refused by the test server",
                                "errorType": "Test.Refused%d" % status})


# ---- the loopback "API Gateway" (--gateway-port-file) ----

HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}


class Waiter:
    def __init__(self):
        self.done = threading.Event()
        self.kind = None
        self.body = b""


def gateway_event(handler, body, request_id):
    """The payload-2.0 event API Gateway (HTTP API, $default route) makes of a request."""
    from urllib.parse import parse_qsl, urlsplit
    target = urlsplit(handler.path)
    headers, cookies = {}, []
    for k, v in handler.headers.items():
        k = k.lower()
        if k == "cookie":
            cookies.extend(c.strip() for c in v.split(";") if c.strip())
            continue
        headers[k] = headers[k] + "," + v if k in headers else v
    qsp = {}
    for k, v in parse_qsl(target.query, keep_blank_values=True):
        qsp[k] = qsp[k] + "," + v if k in qsp else v
    ev = {"version": "2.0", "routeKey": "$default", "rawPath": target.path,
          "rawQueryString": target.query, "headers": headers,
          "requestContext": {"accountId": "123456789012", "apiId": "loopback",
                             "domainName": headers.get("host", "127.0.0.1"),
                             "domainPrefix": "loopback", "requestId": request_id,
                             "routeKey": "$default", "stage": "$default",
                             "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                             "timeEpoch": now_ms(),
                             "http": {"method": handler.command, "path": target.path,
                                      "protocol": handler.request_version,
                                      "sourceIp": handler.client_address[0],
                                      "userAgent": headers.get("user-agent", "")}},
          "isBase64Encoded": False}
    if cookies:
        ev["cookies"] = cookies
    if qsp:
        ev["queryStringParameters"] = qsp
    if body:
        try:
            ev["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            import base64
            ev["body"] = base64.b64encode(body).decode("ascii")
            ev["isBase64Encoded"] = True
    return ev


class GatewayServer(ThreadingHTTPServer):
    request_queue_size = 128  # the listen backlog: 32 concurrent clients are not refused


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "loopback-apigw"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *a):
        if self.server.state.args.verbose:
            sys.stderr.write("apigw: " + (fmt % a) + "\n")

    read_body = Handler.read_body

    def answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        no_body = self.command == "HEAD" or status in (204, 304) or status < 200
        if not no_body or self.command == "HEAD":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not no_body:
            self.wfile.write(body)
        self.wfile.flush()

    def handle_any(self):
        st = self.server.state
        body = self.read_body()
        with st.lock:
            st.gw_seq += 1
            rid = "gw-%d" % st.gw_seq
            waiter = Waiter()
            st.waiters[rid] = waiter
            st.queue.append({"event": gateway_event(self, body, rid), "request_id": rid})
        base = [("Apigw-Requestid", rid)]
        if not waiter.done.wait(st.args.gateway_timeout_s):
            with st.lock:
                st.waiters.pop(rid, None)
            self.answer(503, base + [("Content-Type", "application/json")],
                        b'{"message":"Service Unavailable"}')
            return
        try:
            resp = json.loads(waiter.body) if waiter.kind == "response" else None
        except ValueError:
            resp = None
        if not isinstance(resp, dict) or not isinstance(resp.get("statusCode"), int):
            self.answer(500, base + [("Content-Type", "application/json")],
                        b'{"message":"Internal Server Error"}')
            return
        headers = []
        for k, v in (resp.get("headers") or {}).items():
            if k.lower() not in HOP_BY_HOP:
                headers.append((k, str(v)))
        for k, vs in (resp.get("multiValueHeaders") or {}).items():
            if k.lower() not in HOP_BY_HOP:
                headers.extend((k, str(v)) for v in vs)
        headers.extend(("Set-Cookie", c) for c in resp.get("cookies") or [])
        out = resp.get("body") or ""
        if resp.get("isBase64Encoded"):
            import base64
            out = base64.b64decode(out)
        else:
            out = out.encode("utf-8")
        self.answer(resp["statusCode"], base + headers, out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--queue", help="JSONL file of invocation specs")
    p.add_argument("--event", action="append", help="an event file (repeatable)")
    p.add_argument("--repeat", type=int, default=1, help="hand the queue out N times")
    p.add_argument("--queue-dir", help="wait for spec files here")
    p.add_argument("--record", help="JSONL output (default: stdout)")
    p.add_argument("--on-drain", default="hold", help="hold | exit | status:CODE")
    p.add_argument("--deadline-in-ms", type=int, default=60000)
    p.add_argument("--function-arn",
                   default="arn:aws:lambda:us-east-1:123456789012:function:taskhost-test")
    p.add_argument("--gateway-port-file", help="also serve a loopback API Gateway")
    p.add_argument("--gateway-timeout-s", type=float, default=30.0)
    p.add_argument("--rss-pid-file")
    p.add_argument("--rss-at", default="")
    p.add_argument("--timeout", type=float, default=900.0, help="stop after this many seconds")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    if args.on_drain not in ("hold", "exit") and not args.on_drain.startswith("status:"):
        p.error("--on-drain: hold, exit or status:CODE")

    state = State(args)
    state.queue = load_queue(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = state

    def on_signal(signum, frame):
        state.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % server.server_address[1])
        os.rename(tmp, args.port_file)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    gateway = None
    if args.gateway_port_file:
        gateway = GatewayServer(("127.0.0.1", 0), GatewayHandler)
        gateway.daemon_threads = True
        gateway.state = state
        threading.Thread(target=gateway.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        tmp = args.gateway_port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % gateway.server_address[1])
        os.rename(tmp, args.gateway_port_file)
    state.stop.wait(args.timeout)
    state.stop.set()
    server.shutdown()
    server.server_close()
    if gateway is not None:
        gateway.shutdown()
        gateway.server_close()
    if state.out is not sys.stdout:
        state.out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
