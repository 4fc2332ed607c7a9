#!/usr/bin/env python3
"""concurrency_check.py DIR BASE_URL DB_FILE — the checker of test_serve_concurrency.sh.

Replays the per-thread op logs written by concurrency.lua (DIR/t*.log) on top of
the pre-created pool (DIR/pool.jsonl, the create responses) to get the table
the acknowledged operations imply, then reads the final table twice,
independently: every page of GET /tasks from the (restarted) server at
BASE_URL, and the SQLite file DB_FILE directly. Prints one line per check,
"PASS name" or "FAIL name — detail", plus "INFO ..." lines with the numbers;
test_serve_concurrency.sh turns them into its pass/fail counts (exit 0
when the checker ran to the end, whatever it found).
"""
import glob
import json
import os
import re
import sqlite3
import sys
import urllib.error
import urllib.request

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
WANT_STATUS = {"C": 201, "U": 200, "D": 200}
NAMES = {"C": "create", "U": "update", "D": "delete"}
failed = 0


def check(name, ok, detail=""):
    global failed
    if ok:
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name} — {detail}")


def first(items, n=5):
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return "; ".join(str(x) for x in items[:n]) + more


def main():
    d, base_url, db_file = sys.argv[1:4]

    # ---- the pool --------------------------------------------------------------
    pool = {}
    with open(os.path.join(d, "pool.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            pool[r["id"]] = r["task"]

    # ---- replay each thread's log ------------------------------------------------
    state = dict(pool)          # id -> task object the acknowledged ops imply
    deleted = set()             # ids an acknowledged DELETE removed
    touched = set()             # pool ids some op was generated for
    uncertain = {}              # id -> allowed outcomes of an unanswered op (None: absent)
    maybe_texts = set()         # texts of unanswered creates: present once, or absent
    sent = {"C": 0, "U": 0, "D": 0}
    acked = {"C": 0, "U": 0, "D": 0}
    bad_status, bad_body, orphans, mid_run = [], [], [], []
    logs = sorted(glob.glob(os.path.join(d, "t*.log")))
    for path in logs:
        tname = os.path.basename(path)[:-4]
        ops = {}
        order = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if parts[0] == "S":
                    seq, kind, oid = int(parts[1]), parts[2], parts[3]
                    op = {"kind": kind, "id": oid, "acked": None}
                    if kind == "C":
                        op["text"] = parts[4]
                    elif kind == "U":
                        op["text"], op["status"], op["priority"] = parts[4:7]
                    ops[seq] = op
                    order.append(seq)
                    sent[kind] += 1
                    if oid in pool:
                        touched.add(oid)
                elif parts[0] == "A":
                    seq, status, body = int(parts[1]), int(parts[2]), parts[3]
                    if seq not in ops or ops[seq]["acked"] is not None:
                        orphans.append(f"{tname} seq {seq}")
                        continue
                    ops[seq]["acked"] = (status, body)
        for i, seq in enumerate(order):
            op = ops[seq]
            kind, oid = op["kind"], op["id"]
            where = f"{tname} #{seq} {NAMES[kind]} {oid if oid != '-' else op.get('text')}"
            if op["acked"] is None:
                if i != len(order) - 1:
                    mid_run.append(where)
                # in flight when wrk stopped: either outcome
                if kind == "C":
                    maybe_texts.add(op["text"])
                elif kind == "U":
                    uncertain[oid] = [state.get(oid), {"task": op["text"], "status": op["status"],
                                                       "priority": op["priority"]}]
                else:
                    uncertain[oid] = [state.get(oid), None]
                continue
            status, body = op["acked"]
            if status != WANT_STATUS[kind]:
                bad_status.append(f"{where} → {status} {body[:200]}")
                continue
            acked[kind] += 1
            try:
                b = json.loads(body)
            except ValueError:
                bad_body.append(f"{where}: not JSON: {body[:200]}")
                continue
            if kind == "C":
                t = b.get("task") or {}
                if not (isinstance(b.get("id"), str) and UUID_RE.match(b["id"]) and t.get("id") == b["id"]
                        and t.get("task") == op["text"] and t.get("status") == "new"
                        and t.get("priority") == "medium"):
                    bad_body.append(f"{where}: {body[:200]}")
                    continue
                if b["id"] in state or b["id"] in deleted:
                    bad_body.append(f"{where}: id {b['id']} handed out twice")
                    continue
                state[b["id"]] = t
            elif kind == "U":
                t = b.get("task") or {}
                prev = state.get(oid)
                if prev is None:
                    bad_body.append(f"{where}: acknowledged, but the id was not expected to exist")
                    continue
                if not (b.get("message") == "Task updated successfully" and t.get("id") == oid
                        and t.get("task") == op["text"] and t.get("status") == op["status"]
                        and t.get("priority") == op["priority"]
                        and t.get("created_at") == prev.get("created_at")
                        and isinstance(t.get("updated_at"), int)
                        and t["updated_at"] >= prev.get("updated_at", 0)):
                    bad_body.append(f"{where}: {body[:200]} (before: {json.dumps(prev)[:200]})")
                    continue
                state[oid] = t
            else:
                if b != {"message": "Task deleted successfully", "id": oid}:
                    bad_body.append(f"{where}: {body[:200]}")
                    continue
                if oid not in state:
                    bad_body.append(f"{where}: acknowledged, but the id was not expected to exist")
                    continue
                del state[oid]
                deleted.add(oid)
    for k in uncertain:
        state.pop(k, None)

    total_sent = sum(sent.values())
    unanswered = total_sent - sum(acked.values()) - len(bad_status) - len(bad_body)
    print(f"INFO ops sent: {total_sent} (create {sent['C']}, update {sent['U']}, delete {sent['D']})"
          f" over {len(logs)} threads")
    print(f"INFO acknowledged: create {acked['C']}, update {acked['U']}, delete {acked['D']};"
          f" in flight when wrk stopped (either outcome allowed): {len(uncertain) + len(maybe_texts)}")
    check("a log file per wrk thread", len(logs) > 0, "no t*.log")
    check("every op has the expected status (201 create, 200 update/delete)", not bad_status,
          f"{len(bad_status)}: {first(bad_status)}")
    check("every acknowledged response body matches its request", not bad_body,
          f"{len(bad_body)}: {first(bad_body)}")
    check("every response pairs with a request", not orphans, first(orphans))
    check("only the last op of a thread may be unanswered", not mid_run,
          f"{len(mid_run)}: {first(mid_run)}")
    check("at least 1000 ops acknowledged, each kind at least 100",
          sum(acked.values()) >= 1000 and min(acked.values()) >= 100, str(acked))

    # ---- the final table through the API ---------------------------------------------
    api, pages, cursor, api_ok, api_detail = {}, 0, None, True, ""
    while True:
        pages += 1
        url = f"{base_url}/tasks?limit=100" + (f"&next={cursor}" if cursor else "")
        try:
            with urllib.request.urlopen(url, timeout=20) as r:
                page = json.load(r)
        except (urllib.error.URLError, ValueError) as e:
            api_ok, api_detail = False, f"page {pages}: {e}"
            break
        for it in page["items"]:
            if it["id"] in api:
                api_ok, api_detail = False, f"id {it['id']} on two pages"
            api[it["id"]] = it
        cursor = page.get("next")
        if not cursor or pages > 10000:
            break
    check(f"GET /tasks: {pages} pages, each item once", api_ok, api_detail)

    # ---- the final table straight from the SQLite file --------------------------------
    def attr(v):
        (t, x), = v.items()
        return int(x) if t == "N" else x

    db = {}
    con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    for oid, doc in con.execute("SELECT id, doc FROM items"):
        db[oid] = {k: attr(v) for k, v in json.loads(doc).items()}
    con.close()
    diff = sorted(set(api) ^ set(db)) + sorted(k for k in set(api) & set(db) if api[k] != db[k])
    check("the API and the SQLite file hold the same table", not diff,
          f"{len(diff)} ids differ: {first(diff)}")
    print(f"INFO final table: {len(api)} tasks via the API, {len(db)} rows in the file")

    # ---- the final table against the acknowledged ops --------------------------------
    final = db
    wrong = [f"{k}: want {json.dumps(v)} got {json.dumps(final.get(k))}"
             for k, v in state.items() if final.get(k) != v]
    check("every acknowledged create and update is there with its exact content "
          f"({len(state)} tasks)", not wrong, f"{len(wrong)}: {first(wrong, 3)}")
    back = sorted(deleted & set(final))
    check(f"every acknowledged delete is gone ({len(deleted)})", not back, first(back))
    untouched = [k for k in pool if k not in touched]
    changed = [k for k in untouched if final.get(k) != pool[k]]
    check(f"untouched pool tasks unchanged ({len(untouched)})", untouched and not changed,
          f"{len(changed)}: {first(changed)}")

    def fits(alt, got):
        if alt is None or got is None:
            return alt is got
        return all(got.get(k) == v for k, v in alt.items() if k != "updated_at")

    landed_deletes = 0
    bad_unc = []
    for k, alts in uncertain.items():
        if not any(fits(a, final.get(k)) for a in alts):
            bad_unc.append(f"{k}: got {json.dumps(final.get(k))}")
        landed_deletes += alts[1] is None and final.get(k) is None
    check("each op in flight at the end had one of its two outcomes", not bad_unc, first(bad_unc))
    extra = [k for k in final if k not in state and k not in uncertain]
    phantoms = [f"{k}: {json.dumps(final[k])}" for k in extra if final[k].get("task") not in maybe_texts]
    check("no task that no acknowledged or in-flight create explains", not phantoms,
          f"{len(phantoms)}: {first(phantoms)}")
    seen, twice = set(), []
    for v in final.values():
        t = v.get("task")
        if t in seen:
            twice.append(t)
        seen.add(t)
    check("no task text twice in the table (each create landed once)", not twice,
          f"{len(twice)}: {first(twice)}")
    landed_creates = len({final[k].get("task") for k in extra} & maybe_texts)
    want = len(pool) + acked["C"] - acked["D"] + landed_creates - landed_deletes
    print(f"INFO count: pool {len(pool)} + creates {acked['C']} - deletes {acked['D']}"
          f" + in-flight creates landed {landed_creates} - in-flight deletes landed {landed_deletes}"
          f" = {want}; final {len(final)}")
    check("final count = pool + creates - deletes", len(final) == want, f"want {want}, got {len(final)}")
    # failures are the FAIL lines; a non-zero exit means the checker itself broke
    return 0


if __name__ == "__main__":
    sys.exit(main())
