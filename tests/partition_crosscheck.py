#!/usr/bin/python3
"""Cross-check taskhost's default DynamoDB endpoints against botocore.

Usage: /usr/bin/python3 tests/partition_crosscheck.py PATH_TO_partition-print [PYTHON...]

runtime/partition.c holds a table of the AWS partitions (region pattern,
listed regions, DNS suffix) taken from botocore's data/partitions.json. This
test reads that JSON file at test time, from every botocore it can import,
so the table cannot drift from the data silently:

* the regions: every region the installed data lists (partitions.json and
  endpoints.json, and DynamoDB's own entries there), names made up from each
  partition's regionRegex that no SDK lists yet ("us-iso-west-9"), and names
  that miss every pattern ("eusc-fr-east-1", "cn-north-x", "US-EAST-1", ...);
* for each, the URL botocore itself sends a DynamoDB request to (ListTables
  on create_client('dynamodb', region_name=R), caught at before-send: the
  endpoint rule set's answer; the client's meta.endpoint_url comes from the
  older endpoints.json resolver and differs for the "aws-iso-global" kind of
  names, which partitions.json lists under their partition), and the
  partition the data's rules give (the first partition that lists R or whose
  regionRegex matches it, else the first partition, "aws");
* partition-print (runtime/config.c + runtime/partition.c) must give the same
  endpoint and the same partition id.

Skipped, and counted: names botocore refuses as regions; DynamoDB's
service-specific names in endpoints.json ("local" for DynamoDB Local and the
deprecated "*-fips" names), which taskhost does not map (use
AWS_ENDPOINT_URL_DYNAMODB); and, for an older botocore, regions of a partition
that data does not have yet (Debian 12's botocore 1.29.27 predates aws-iso-e,
aws-iso-f and aws-eusc: it sends eusc-de-east-1 to amazonaws.com). A region
of a partition the data has but our table lacks is a failure.

The interpreters: /usr/bin/python3 (Debian's python3-botocore, installed by
scripts/deps.sh --test; required) and `python3` on PATH, plus any given,
when they import a botocore of another version (optional: skipped when they
cannot import botocore). Prints one line per mismatch, then
"N passed, N failed"; exits 1 on any mismatch, or when the required botocore
cannot be imported, or fewer than 50 regions were compared.
"""

import json
import os
import re
import shutil
import subprocess
import sys

REQUIRED = "/usr/bin/python3"
MIN_COMPARED = 50

# Names of partitions an older botocore may not have, and names that match no
# partition's pattern, whatever the data.
EXTRA = ["eusc-de-east-1", "eu-isoe-west-1", "us-isof-south-1", "us-isob-west-1", "xx-foo-1", "cn-north-x", "cn-north-1a", "eusc-fr-east-1", "us-iso-east",
            "us-isoe-east-1", "US-EAST-1", "US-ISO-EAST-1", "aws-iso-global-1", "a",
            "us-iso-east-1a", "mars-central-1", "eu-isoe", "us-gov"]


def expectations():
    """Child mode: what this interpreter's botocore says. Prints JSON lines."""
    import botocore
    import botocore.session
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **kwargs):
            yield b"{}"

    sent = {}

    def capture(request, **kwargs):  # answers in place of DynamoDB: nothing leaves the machine
        sent["url"] = request.url
        return AWSResponse(request.url, 200, {}, Raw())

    data = os.path.join(os.path.dirname(botocore.__file__), "data")
    with open(os.path.join(data, "partitions.json")) as f:
        partitions = json.load(f)["partitions"]
    with open(os.path.join(data, "endpoints.json")) as f:
        endpoints = json.load(f)["partitions"]

    listed, service_names = set(), set()
    for p in partitions:
        listed.update(p["regions"])
    for p in endpoints:
        listed.update(p.get("regions", {}))
        for name in p["services"].get("dynamodb", {}).get("endpoints", {}):
            (listed if any(name in q["regions"] for q in partitions) else service_names).add(name)
    made_up = set()
    for p in partitions:
        m = re.fullmatch(r"\^(?:\((.*)\)|(.*?))\\-\\w\+\\-\\d\+\$", p["regionRegex"])
        if not m:
            raise SystemExit(f"unexpected regionRegex form {p['regionRegex']!r} in {p['id']}")
        for prefix in (m.group(1) or m.group(2)).split("|"):
            prefix = prefix.replace("\\-", "-").replace("(", "").replace(")", "")
            made_up.update(f"{prefix}-{mid}-{n}" for mid in ("west", "zz", "north3") for n in (9, 12))
    regions = sorted(listed | made_up | set(EXTRA))

    session = botocore.session.get_session()
    print(json.dumps({"version": botocore.__version__, "data": data,
                      "partitions": [p["id"] for p in partitions]}))
    for r in regions:
        matched = next((p for p in partitions if r in p["regions"] or re.match(p["regionRegex"], r)),
                       None)
        part = matched or partitions[0]
        try:
            client = session.create_client("dynamodb", region_name=r, aws_access_key_id="AKIDEXAMPLE",
                                           aws_secret_access_key="x")
            client.meta.events.register("before-send", capture)
            sent.clear()
            client.list_tables()
            url = sent["url"].rstrip("/")
        except Exception as e:  # botocore refuses the name
            url = "refused: " + type(e).__name__
        print(json.dumps({"region": r, "partition": part["id"], "matched": matched is not None,
                          "suffix": part["outputs"]["dnsSuffix"], "botocore": url}))
    for name in sorted(service_names):
        print(json.dumps({"region": name, "service_specific": True}))


def ours(tool, regions):
    out = subprocess.run([tool], input="".join(r + "\n" for r in regions), capture_output=True,
                         text=True, check=True).stdout
    got = {}
    for line in out.splitlines():
        region, pid, endpoint = line.split("\t")
        got[region] = (pid, endpoint)
    return got


def main(argv):
    if len(argv) >= 2 and argv[1] == "--expect":
        expectations()
        return 0
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    tool = argv[1]
    candidates = [REQUIRED] + [p for p in [shutil.which("python3")] + argv[2:] if p]
    seen_data, passed, failed, compared = set(), 0, 0, 0
    for py in candidates:
        run = subprocess.run([py, os.path.abspath(__file__), "--expect"], capture_output=True,
                             text=True)
        if run.returncode != 0:
            if py == REQUIRED:
                print(f"FAIL {py}: cannot read botocore: {run.stderr.strip()[-300:]}")
                failed += 1
            else:
                print(f"note: {py} skipped (no botocore: {run.stderr.strip().splitlines()[-1:]})")
            continue
        lines = [json.loads(x) for x in run.stdout.splitlines()]
        head, rows = lines[0], lines[1:]
        if head["data"] in seen_data:
            continue
        seen_data.add(head["data"])
        service = [r["region"] for r in rows if r.get("service_specific")]
        rows = [r for r in rows if not r.get("service_specific")]
        got = ours(tool, [r["region"] for r in rows])
        refused = newer = 0
        for r in rows:
            region = r["region"]
            pid, endpoint = got.get(region, ("?", "missing from partition-print's output"))
            if r["botocore"].startswith("refused"):
                refused += 1
                continue
            want = f"https://dynamodb.{region}.{r['suffix']}"
            if r["botocore"] != want:  # our reading of botocore's rules is wrong
                print(f"FAIL botocore {head['version']}: {region}: botocore gives {r['botocore']}, "
                      f"its partition data {want}")
                failed += 1
                continue
            if not r["matched"] and pid not in head["partitions"]:
                newer += 1  # a partition this (older) data does not have yet
                continue
            compared += 1
            if endpoint == want and pid == r["partition"]:
                passed += 1
            else:
                print(f"FAIL botocore {head['version']}: {region}: taskhost {pid} {endpoint}, "
                      f"botocore {r['partition']} {want}")
                failed += 1
        print(f"botocore {head['version']} ({head['data']}): {len(rows)} regions, "
              f"{len(head['partitions'])} partitions; not compared: {refused} refused by botocore, "
              f"{newer} of partitions newer than this data, {len(service)} DynamoDB-specific "
              f"names ({', '.join(service)})")
    if compared < MIN_COMPARED:
        print(f"FAIL only {compared} regions compared (want at least {MIN_COMPARED})")
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
