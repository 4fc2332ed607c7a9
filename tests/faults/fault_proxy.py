#!/usr/bin/env python3
"""fault_proxy.py — an HTTP proxy on loopback between taskhost and a DynamoDB
endpoint (dynalite in the tests) that injects faults, request by request.

  fault_proxy.py --upstream http://127.0.0.1:8000 --port-file F [--control-port-file G]
                 [--plan JSON] [--log FILE]

It listens on 127.0.0.1 (a free port, written to --port-file) for taskhost's
DynamoDB requests (HTTP/1.1, keep-alive) and, unless a fault is planned for
the request, forwards each one unchanged (headers, signature, body) to the
upstream and relays the answer unchanged. A second port (--control-port-file)
takes the plan and reports what happened:

  POST /plan   {"op": "PutItem", "faults": ["throttle", "pass", "e500"]}
               appends faults for the next requests of that operation (the
               X-Amz-Target suffix; "*" for any); each request takes the next
               one of its operation's queue, else of "*", else "pass".
  POST /reset  empties every queue and zeroes the counters
  GET  /stats  {"requests": {"PutItem": 3, ...}, "faults": {...},
                "forwarded": {"PutItem": 1}, "connections": n,
                "log": [[op, fault, ms], ...]} — ms: when the fault finished
  GET  /queued {"PutItem": [...], ...}: what is still planned

--plan (or the FAULT_PLAN environment variable) gives a starting plan: a JSON
object {"PutItem": ["throttle", ...], "*": [...]}.

Faults (those named apply-* first forward the request, so the write lands,
and only then fail the answer: "the answer was lost"):
  pass          forward and relay
  throttle      400 ProvisionedThroughputExceededException (with x-amz-crc32)
  throttle-ra:MS the same with x-amz-retry-after: MS
  e500          500 InternalServerError
  e503          503 ServiceUnavailable
  e400          400 ValidationException (not retryable)
  reset         the connection is reset (RST), no answer
  delay:MS      waits MS ms, then forwards (the write lands late) and answers
                (to a client that may have given up)
  hang:MS       waits MS ms, then resets without forwarding
  garbage       200 with a body that is not JSON (no x-amz-crc32)
  garbage-crc   200 with a body that is not JSON and a wrong x-amz-crc32
  truncate      200 announcing 300 bytes, 20 sent, then the connection closes
  apply-e500, apply-e503, apply-reset, apply-truncate, apply-badcrc
                forward (the write lands), then answer 500 / 503 / reset /
                a truncated body / the real body with a wrong x-amz-crc32
"""
import argparse, http.client, json, os, random, socket, struct, sys, threading, time, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOCK = threading.Lock()
QUEUES = {}
STATS = {"requests": {}, "faults": {}, "forwarded": {}, "connections": 0, "log": []}
T0 = time.time()
UPSTREAM = None
LOG = None

JSON_CT = "application/x-amz-json-1.0"
ERRORS = {
    "throttle": (400, "ProvisionedThroughputExceededException",
                 "The level of configured provisioned throughput for the table was exceeded."),
    "e500": (500, "InternalServerError", "Internal server error (injected)"),
    "e503": (503, "ServiceUnavailable", "Service unavailable (injected)"),
    "e400": (400, "ValidationException", "Invalid request (injected)"),
}


def log(msg):
    if LOG:
        with LOCK:
            LOG.write("%.3f %s\n" % (time.time() - T0, msg))
            LOG.flush()


def bump(table, key):
    STATS[table][key] = STATS[table].get(key, 0) + 1


def next_fault(op):
    with LOCK:
        bump("requests", op)
        for key in (op, "*"):
            q = QUEUES.get(key)
            if q:
                f = q.pop(0)
                bump("faults", f.split(":")[0])
                return f
        return "pass"


def record(op, fault):
    with LOCK:
        STATS["log"].append([op, fault, int((time.time() - T0) * 1000)])


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"
    sys_version = ""

    def setup(self):
        super().setup()
        self.upstream = None
        with LOCK:
            STATS["connections"] += 1

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream:
                self.upstream.close()

    def log_message(self, fmt, *args):
        log("http " + (fmt % args))

    def forward(self, body):
        """Sends the request upstream; returns (status, headers, body)."""
        for attempt in (1, 2):
            try:
                if self.upstream is None:
                    u = urlsplit(UPSTREAM)
                    self.upstream = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "keep-alive", "transfer-encoding")}
                self.upstream.request(self.command, self.path, body=body, headers=hdrs)
                r = self.upstream.getresponse()
                data = r.read()
                return r.status, r.getheaders(), data
            except (OSError, http.client.HTTPException):
                if self.upstream:
                    self.upstream.close()
                self.upstream = None
                if attempt == 2:
                    raise

    def send_raw(self, status, headers, body, length=None):
        self.send_response(status)
        for k, v in headers:
            if k.lower() in ("content-length", "connection", "transfer-encoding", "date", "server",
                             "keep-alive"):
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_error_json(self, name, retry_after=None):
        status, typ, msg = ERRORS[name]
        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#" + typ,
                           "message": msg}).encode()
        hdrs = [("Content-Type", JSON_CT), ("x-amzn-RequestId", "FAULT%08d" % random.randrange(10**8)),
                ("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))]
        if retry_after is not None:
            hdrs.append(("x-amz-retry-after", str(retry_after)))
        self.send_raw(status, hdrs, body)

    def reset(self):
        # SO_LINGER 0: close() sends RST
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def truncate(self, headers):
        self.send_raw(200, [h for h in headers if h[0].lower() != "x-amz-crc32"],
                      b'{"Attributes":{"id":{', length=300)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        op = (self.headers.get("X-Amz-Target") or "?").split(".")[-1]
        fault = next_fault(op)
        log("%s %s" % (op, fault))
        name, _, arg = fault.partition(":")
        try:
            if name == "pass":
                status, headers, data = self.forward(body)
                with LOCK:
                    bump("forwarded", op)
                self.send_raw(status, headers, data)
            elif name in ERRORS:
                self.send_error_json(name)
            elif name == "throttle-ra":
                self.send_error_json("throttle", retry_after=int(arg or 1000))
            elif name == "reset":
                self.reset()
            elif name == "hang":
                time.sleep(int(arg or 1000) / 1000.0)
                self.reset()
            elif name == "delay":
                time.sleep(int(arg or 1000) / 1000.0)
                status, headers, data = self.forward(body)
                with LOCK:
                    bump("forwarded", op)
                try:
                    self.send_raw(status, headers, data)
                except OSError:
                    self.close_connection = True
            elif name == "garbage":
                self.send_raw(200, [("Content-Type", JSON_CT)], b"<html>502 Bad Gateway</html>\x00\xff")
            elif name == "garbage-crc":
                self.send_raw(200, [("Content-Type", JSON_CT), ("x-amz-crc32", "12345")],
                              b'{"Item": {"id": {"S": tru')
            elif name == "truncate":
                self.truncate([("Content-Type", JSON_CT)])
            elif name.startswith("apply-"):
                status, headers, data = self.forward(body)
                with LOCK:
                    bump("forwarded", op)
                what = name[len("apply-"):]
                if what in ERRORS:
                    self.send_error_json(what)
                elif what == "reset":
                    self.reset()
                elif what == "truncate":
                    self.truncate(headers)
                elif what == "badcrc":
                    self.send_raw(status, [h for h in headers if h[0].lower() != "x-amz-crc32"]
                                  + [("x-amz-crc32", str((zlib.crc32(data) + 1) & 0xFFFFFFFF))], data)
                else:
                    raise ValueError("unknown fault " + fault)
            else:
                raise ValueError("unknown fault " + fault)
        except (OSError, http.client.HTTPException) as e:
            log("%s %s: %r" % (op, fault, e))
            self.close_connection = True
        finally:
            record(op, fault)


class Control(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, obj, status=200):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with LOCK:
            if self.path == "/stats":
                self.reply(STATS)
            elif self.path == "/queued":
                self.reply(QUEUES)
            else:
                self.reply({"error": "not found"}, 404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with LOCK:
            if self.path == "/plan":
                try:
                    plan = json.loads(body)
                    QUEUES.setdefault(plan.get("op", "*"), []).extend(plan["faults"])
                except (ValueError, KeyError, TypeError) as e:
                    return self.reply({"error": str(e)}, 400)
                self.reply(QUEUES)
            elif self.path == "/reset":
                QUEUES.clear()
                STATS.update({"requests": {}, "faults": {}, "forwarded": {}, "connections": 0, "log": []})
                self.reply({"ok": True})
            else:
                self.reply({"error": "not found"}, 404)


def serve(handler, port_file):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, port_file)
    return srv


def main():
    global UPSTREAM, LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--control-port-file", required=True)
    ap.add_argument("--plan", default=os.environ.get("FAULT_PLAN"))
    ap.add_argument("--log")
    a = ap.parse_args()
    UPSTREAM = a.upstream
    if a.log:
        LOG = open(a.log, "a")
    if a.plan:
        for op, faults in json.loads(a.plan).items():
            QUEUES.setdefault(op, []).extend(faults)
    control = serve(Control, a.control_port_file)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    proxy = serve(Proxy, a.port_file)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
