#!/usr/bin/python3
"""A stand-in for an API Gateway REST API (Lambda proxy, payload 1.0) in front of the
Lambda Runtime API (2018-06-01), on loopback: HTTP clients (scripts/smoke.sh, curl) on one
port, the taskhost runtime (AWS_LAMBDA_RUNTIME_API) on another.

Each client request becomes a REST API proxy event, built as API Gateway builds them for the
two resources terraform/rest.tf makes ("/" and "/{proxy+}", method ANY):

  --mode stage    the execute-api URL: the client's path starts with /<stage>; `path` is the
                  rest ("/tasks/7"), requestContext.path the whole ("/api/tasks/7");
  --mode domain   a custom domain whose base path <base> maps to the stage: `path` and
                  requestContext.path are both the client's path ("/v1/tasks/7");
  a path outside the stage or the base path: 403 {"message":"Forbidden"}, as API Gateway.

resource is "/" for the root (no pathParameters) and "/{proxy+}" otherwise (pathParameters
{"proxy": "tasks/7"}); headers and query parameters in both the single and the multi-value
form; a body that is not UTF-8 is sent base64 (isBase64Encoded). With --api-key, every method
but OPTIONS needs that x-api-key (403 {"message":"Forbidden"} otherwise), as a method with
api_key_required. The function's proxy response becomes the HTTP answer (multiValueHeaders
included; a base64 body decoded); an invocation answered on /error, or none within 30 s, is
502 {"message":"Internal server error"}.

  rest_gateway.py --mode stage|domain [--stage api] [--base-path v1] [--api-key KEY]
                  --ports-file FILE

FILE gets "RUNTIME_PORT CLIENT_PORT" once both listen. Every event handed out is appended,
one JSON line, to FILE.events. Standard library only; run with /usr/bin/python3.
"""
import argparse
import base64
import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

RUNTIME_PREFIX = "/2018-06-01/runtime/invocation/"

args = None
pending = queue.Queue()  # (request_id, event) for the runtime's next
results = {}  # request_id -> (kind, body)
results_cv = threading.Condition()
events_log = None
log_lock = threading.Lock()


def forbidden():
    return 403, {"Content-Type": ["application/json"]}, b'{"message":"Forbidden"}'


def build_event(method, target, headers, body, request_id):
    """The REST API proxy event for one client request, or None when the path is outside the
    stage (or base path)."""
    split = urlsplit(target)
    client_path = split.path or "/"
    prefix = "/" + (args.stage if args.mode == "stage" else args.base_path)
    if client_path != prefix and not client_path.startswith(prefix + "/"):
        return None
    rest = client_path[len(prefix):] or "/"
    path = rest if args.mode == "stage" else client_path
    if rest == "/":
        resource, params = "/", None
    else:
        resource, params = "/{proxy+}", {"proxy": rest[1:]}
    single, multi = {}, {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    q_single, q_multi = {}, {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        q_single[name] = value
        q_multi.setdefault(name, []).append(value)
    b64 = False
    text = None
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, b64 = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": q_single or None,
        "multiValueQueryStringParameters": q_multi or None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "restgw",
            "resourceId": "r00t" if resource == "/" else "pr0xy",
            "resourcePath": resource,
            "httpMethod": method,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "path": client_path,
            "stage": args.stage,
            "protocol": "HTTP/1.1",
            "domainName": "api.example.com" if args.mode == "domain" else "restgw.execute-api.eu-west-1.amazonaws.com",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": single.get("User-Agent"),
                         "apiKey": single.get("x-api-key"), "apiKeyId": "k3y" if args.api_key else None},
            "requestTimeEpoch": int(time.time() * 1000),
        },
        "body": text,
        "isBase64Encoded": b64,
    }


def invoke(event, request_id):
    """Hands the event to the runtime and waits for its answer: (status, headers, body)."""
    pending.put((request_id, event))
    deadline = time.time() + 30
    with results_cv:
        while request_id not in results:
            left = deadline - time.time()
            if left <= 0:
                return 502, {"Content-Type": ["application/json"]}, b'{"message":"Internal server error"}'
            results_cv.wait(left)
        kind, raw = results.pop(request_id)
    try:
        resp = json.loads(raw) if kind == "response" else None
        status = int(resp["statusCode"])
    except (ValueError, TypeError, KeyError):
        return 502, {"Content-Type": ["application/json"]}, b'{"message":"Internal server error"}'
    out = {}
    for name, value in (resp.get("headers") or {}).items():
        out[name] = [str(value)]
    for name, values in (resp.get("multiValueHeaders") or {}).items():
        out[name] = [str(v) for v in values]
    body = resp.get("body") or ""
    data = base64.b64decode(body) if resp.get("isBase64Encoded") else body.encode("utf-8")
    return status, out, data


class Client(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        request_id = str(uuid.uuid4())
        if args.api_key and self.command != "OPTIONS" and self.headers.get("x-api-key") != args.api_key:
            status, headers, data = forbidden()
        else:
            event = build_event(self.command, self.path, list(self.headers.items()), body, request_id)
            if event is None:
                status, headers, data = forbidden()
            else:
                with log_lock:
                    events_log.write(json.dumps(event) + "\n")
                    events_log.flush()
                status, headers, data = invoke(event, request_id)
        self.send_response(status)
        for name, values in headers.items():
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            for v in values:
                self.send_header(name, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = handle_any


class Runtime(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, data, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != RUNTIME_PREFIX + "next":
            return self.reply(404, b'{"errorMessage":"not found"}')
        request_id, event = pending.get()
        self.reply(200, json.dumps(event).encode("utf-8"), [
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000)),
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:taskhost"),
        ])

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        rest = self.path[len(RUNTIME_PREFIX):] if self.path.startswith(RUNTIME_PREFIX) else ""
        request_id, _, kind = rest.rpartition("/")
        if kind not in ("response", "error") or not request_id:
            return self.reply(202, b"{}")  # init errors and the like: accepted, not served
        with results_cv:
            results[request_id] = (kind, raw)
            results_cv.notify_all()
        self.reply(202, b'{"status":"OK"}')


def main():
    global args, events_log
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["stage", "domain"], required=True)
    p.add_argument("--stage", default="api")
    p.add_argument("--base-path", default="v1")
    p.add_argument("--api-key")
    p.add_argument("--ports-file", required=True)
    args = p.parse_args()
    events_log = open(args.ports_file + ".events", "a")
    runtime = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    client = ThreadingHTTPServer(("127.0.0.1", 0), Client)
    runtime.daemon_threads = client.daemon_threads = True
    threading.Thread(target=runtime.serve_forever, daemon=True).start()
    with open(args.ports_file + ".tmp", "w") as f:
        f.write(f"{runtime.server_address[1]} {client.server_address[1]}\n")
    import os
    os.replace(args.ports_file + ".tmp", args.ports_file)
    client.serve_forever()


if __name__ == "__main__":
    main()
