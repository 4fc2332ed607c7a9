"""moto_serial.py HOST PORT — moto's server (the app moto_server runs), serving one
request at a time.

moto_server serves each request in a thread of its own, and moto's DynamoDB backend takes no
lock between a ConditionExpression's check and the write: two concurrent conditional writes to
one item can both succeed there (seen: 32 concurrent PUTs with one If-Match, two of them 200),
which DynamoDB never allows (a conditional write is atomic per item). Serving the requests one
after another gives that atomicity back, so the concurrency tests judge taskhost, not moto.
The clients stay concurrent (their requests queue in the listen backlog); HTTP/1.0 answers
(werkzeug's choice for a single-threaded server) close each connection.
"""
import sys

from werkzeug.serving import WSGIRequestHandler, run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # one line per request is most of the log
        pass


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=QuietHandler)
