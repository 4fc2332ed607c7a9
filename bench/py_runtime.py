"""The comparison runtime: the same Task API as a Python 3.11 + boto3 Lambda
function, the way the project taskhost replaces was written (boto3's
resource API on one Table), run by a minimal Runtime API loop.

The loop is http.client on one kept-alive connection, with no error
reporting and no context object: it costs less than AWS's own Python
runtime (awslambdaric), so the figures measured with it flatter Python.
The handler sends the same DynamoDB requests as taskhost (auth off: every
key's user_id is "public"): PutItem with attribute_not_exists(id), GetItem
ConsistentRead, Query of the partition newest first, Limit 26,
ConsistentRead, UpdateItem SET ... attribute_exists(id) ALL_NEW, DeleteItem
attribute_exists(id) ALL_OLD; it validates the body (task, status,
priority) and answers with the same JSON shapes and CORS headers (ids are
v4: Python 3.11 has no UUIDv7).

Run by bench/rapi (it sets AWS_LAMBDA_RUNTIME_API); configuration from
TABLE_NAME, AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB and the credentials.
"""

import http.client
import json
import os
import time
import uuid
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Key
from botocore.config import Config

# ---- init (module level, as a Lambda function does it) ----
TABLE = boto3.resource(
    "dynamodb",
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"),
    config=Config(retries={"mode": "standard", "max_attempts": 3}),
).Table(os.environ["TABLE_NAME"])
OWNER = "public"  # the partition of every task with auth off, as taskhost's

STATUSES = {"new", "in_progress", "completed", "cancelled"}
PRIORITIES = {"low", "medium", "high", "urgent"}
HEADERS = {
    "Content-Type": "application/json",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Amz-Date, X-Api-Key, X-Amz-Security-Token",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "X-Content-Type-Options": "nosniff",
}


def plain(v):
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def task(item):
    """A stored item as the API answers it: plain values, without the owner."""
    return {k: plain(x) for k, x in item.items() if k != "user_id"}


def respond(status, body, extra=None):
    h = dict(HEADERS)
    if extra:
        h.update(extra)
    return {"statusCode": status, "headers": h, "body": json.dumps(body)}


def check(obj, creating):
    if not isinstance(obj, dict):
        return None, respond(400, {"message": "Request body must be a JSON object"})
    for k in obj:
        if k not in ("task", "status", "priority"):
            return None, respond(400, {"message": "Unknown field '%s'" % k, "field": k})
    out = {}
    if "task" in obj:
        t = obj["task"]
        if not isinstance(t, str) or not t.strip() or len(t.strip()) > 1000:
            return None, respond(400, {"message": "'task' must be a non-empty string", "field": "task"})
        out["task"] = t.strip()
    elif creating:
        return None, respond(400, {"message": "'task' is required", "field": "task"})
    for name, allowed, default in (("status", STATUSES, "new"), ("priority", PRIORITIES, "medium")):
        if name in obj:
            if obj[name] not in allowed:
                return None, respond(400, {"message": "'%s' is invalid" % name, "field": name})
            out[name] = obj[name]
        elif creating:
            out[name] = default
    if not out:
        return None, respond(400, {"message": "Request body has no fields to update", "field": "body"})
    return out, None


def handler(event, _context):
    method = event["requestContext"]["http"]["method"]
    path = event.get("rawPath", "/").rstrip("/") or "/"
    parts = path.split("/")
    if path == "/tasks" and method == "GET":
        res = TABLE.query(KeyConditionExpression=Key("user_id").eq(OWNER), ScanIndexForward=False,
                          Limit=26, ConsistentRead=True)
        items = [task(i) for i in res.get("Items", [])[:25]]
        nxt = items[-1]["id"] if len(res.get("Items", [])) > 25 else None
        return respond(200, {"items": items, "count": len(items), "next": nxt})
    if path == "/tasks" and method == "POST":
        fields, bad = check(json.loads(event.get("body") or "null"), True)
        if bad:
            return bad
        now = int(time.time())
        item = dict(fields, id=str(uuid.uuid4()), created_at=now, updated_at=now)
        TABLE.put_item(Item=dict(item, user_id=OWNER), ConditionExpression="attribute_not_exists(id)")
        return respond(201, {"id": item["id"], "task": item}, {"Location": "/tasks/" + item["id"]})
    if len(parts) == 3 and parts[1] == "tasks":
        tid = parts[2].lower()
        try:
            uuid.UUID(tid)
        except ValueError:
            return respond(404, {"message": "Task not found"})
        if method == "GET":
            item = TABLE.get_item(Key={"user_id": OWNER, "id": tid}, ConsistentRead=True).get("Item")
            return respond(200, task(item)) if item else respond(404, {"message": "Task not found"})
        if method == "PUT":
            fields, bad = check(json.loads(event.get("body") or "null"), False)
            if bad:
                return bad
            fields["updated_at"] = int(time.time())
            names = {"#n%d" % i: k for i, k in enumerate(fields)}
            values = {":v%d" % i: v for i, v in enumerate(fields.values())}
            try:
                res = TABLE.update_item(
                    Key={"user_id": OWNER, "id": tid},
                    UpdateExpression="SET " + ", ".join("#n%d = :v%d" % (i, i) for i in range(len(fields))),
                    ConditionExpression="attribute_exists(id)",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW")
            except TABLE.meta.client.exceptions.ConditionalCheckFailedException:
                return respond(404, {"message": "Task not found"})
            return respond(200, {"message": "Task updated successfully", "task": task(res["Attributes"])})
        if method == "DELETE":
            try:
                TABLE.delete_item(Key={"user_id": OWNER, "id": tid}, ConditionExpression="attribute_exists(id)",
                                  ReturnValues="ALL_OLD")
            except TABLE.meta.client.exceptions.ConditionalCheckFailedException:
                return respond(404, {"message": "Task not found"})
            return respond(200, {"message": "Task deleted successfully", "id": tid})
    return respond(404, {"message": "Not found"})


def main():
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    base = "/2018-06-01/runtime/invocation/"
    while True:
        conn.request("GET", base + "next")
        r = conn.getresponse()
        rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
        event = json.loads(r.read())
        out = json.dumps(handler(event, None)).encode()
        conn.request("POST", base + rid + "/response", out, {"Content-Type": "application/json"})
        conn.getresponse().read()


if __name__ == "__main__":
    main()
