#!/usr/bin/env python3
"""Turns the JSON lines bench/run.sh collected (bench/.work/results/) into
the one markdown table of bench/results.md. Standard library only."""

import json
import os
import re
import sys

RES = sys.argv[1]


def lines(name):
    path = os.path.join(RES, name)
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    sys.exit("report.py: %s: malformed line (%s): %s" % (path, e, line[:200]))
    return out


def merged(name):
    d = {}
    for o in lines(name):
        d.update(o)
    return d


machine = merged("machine.jsonl")
cold = {o["who"]: o for o in lines("cold.jsonl") if o.get("summary")}
# Several rounds of the same (who, phase): each figure is the median over them.
rounds = {}
for o in lines("warm.jsonl"):
    if "phase" in o:
        rounds.setdefault((o["who"], o["phase"]), []).append(o)


def median(xs):
    xs = sorted(xs)
    k = len(xs)
    return xs[k // 2] if k % 2 else (xs[k // 2 - 1] + xs[k // 2]) / 2


warm = {}
for key, objs in rounds.items():
    m = dict(objs[0])
    for field, v in objs[0].items():
        if isinstance(v, (int, float)) and field not in ("round", "n"):
            m[field] = median([o[field] for o in objs])
    m["errors"] = sum(o.get("errors", 0) for o in objs)
    m["rounds"] = len(objs)
    warm[key] = m
mem = {}
for o in lines("memory.jsonl"):
    if "rss_at" in o:
        mem.setdefault(o["who"], {})[o["rss_at"]] = o
    elif o.get("phase", "").startswith("mix"):
        mem.setdefault(o["who"], {})["mix"] = o
pkg = merged("package.jsonl")
pyinfo = merged("python.jsonl")
has_py = bool(pyinfo)

rows = []  # (measurement, taskhost, floor, delta, python, target, status)
MET, MISSED, NA = "met", "**missed**", ""


def f1(x):
    return "%.1f" % x


def f0(x):
    return "{:,.0f}".format(x)


def ms(x):
    return "%.1f" % x


def sms(x):  # signed
    return "%+.1f" % x


def sus(x):
    return "{:+,.0f}".format(x)


def mb_kb(kb):  # KiB -> decimal MB
    return "%.1f MB" % (kb * 1024 / 1e6)


# ---- 1 cold start
t, n, p = cold.get("taskhost"), cold.get("nullrt"), cold.get("python")
if t:
    def pair(o, a, b):
        return "%s / %s ms" % (ms(o[a]), ms(o[b])) if o else ""
    rows.append(("1 · cold start, exec → first `next` (init), median / p95 (%d starts)" % t["starts"],
                 pair(t, "init_p50_ms", "init_p95_ms"), pair(n, "init_p50_ms", "init_p95_ms"),
                 "%s ms" % sms(t["init_p50_ms"] - n["init_p50_ms"]) if n else "",
                 pair(p, "init_p50_ms", "init_p95_ms"), "≤ 10 ms",
                 MET if t["init_p50_ms"] <= 10 else MISSED))
    rows.append(("1 · cold start, exec → first response posted, median / p95",
                 pair(t, "first_p50_ms", "first_p95_ms"), pair(n, "first_p50_ms", "first_p95_ms"),
                 "%s ms" % sms(t["first_p50_ms"] - n["first_p50_ms"]) if n else "",
                 pair(p, "first_p50_ms", "first_p95_ms"), "≤ 15 ms",
                 MET if t["first_p50_ms"] <= 15 else MISSED))
    rows.append(("1 · cold start, CPU (user+sys) to the first response, median",
                 "%s ms" % ms(t["cpu_p50_ms"]), "%s ms" % ms(n["cpu_p50_ms"]) if n else "",
                 "%s ms" % sms(t["cpu_p50_ms"] - n["cpu_p50_ms"]) if n else "",
                 "%s ms" % ms(p["cpu_p50_ms"]) if p else "", "", NA))

hf_path = os.path.join(RES, "hyperfine.json")
if os.path.exists(hf_path):
    try:
        hf = json.load(open(hf_path, encoding="utf-8"))["results"][0]
        times = sorted(hf["times"])
        p95 = times[min(len(times) - 1, int(0.95 * len(times) + 0.999999) - 1)]
        rows.append(("1 · cross-check (hyperfine, %d runs): exec → exit of `bootstrap --check` (configuration, "
                     "store set-up, route scripts; no request), median / p95" % len(times),
                     "%s / %s ms" % (ms(hf["median"] * 1e3), ms(p95 * 1e3)), "", "", "", "", NA))
    except (ValueError, KeyError, IndexError):
        pass

# ---- 2 warm
OPS = [("create", "create", "put"), ("get", "get", "get"), ("list (25 items)", "list", "query"),
       ("update", "update", "update"), ("delete", "delete", "delete")]
nr = warm.get(("nullrt", "get"))
nrr = warm.get(("nullrt_raw", "get"))
if nr:
    rows.append(("2 · Runtime API round trip alone (null runtime: libcurl, no work): p50 / p99 latency; "
                 "its CPU per invocation; the test server's own CPU per invocation",
                 "", "%s / %s µs; %s µs; server %s µs" % (f1(nr["p50_us"]), f1(nr["p99_us"]), f1(nr["cpu_us"]),
                                                           f1(nr.get("server_cpu_us", 0))),
                 "", "", "", NA))
if nrr:
    rows.append(("2 · Runtime API round trip alone, hand-written HTTP/1.1 client instead of libcurl "
                 "(`bench/nullrt_raw.c`): p50 / p99 latency; its CPU per invocation",
                 "", "%s / %s µs; %s µs" % (f1(nrr["p50_us"]), f1(nrr["p99_us"]), f1(nrr["cpu_us"])),
                 "", "", "", NA))
for label, phase, fphase in OPS:
    t = warm.get(("taskhost-ddb", phase))
    f = warm.get(("floor", fphase))
    p = warm.get(("python", phase))
    if not t:
        continue
    err = " (%d errors)" % t["errors"] if t.get("errors") else ""
    rows.append(("2 · %s · dynalite · latency p50 / p99 (n=%s%s)%s"
                 % (label, f0(t["n"]), ", median of %d rounds" % t["rounds"] if t["rounds"] > 1 else "", err),
                 "%s / %s µs" % (f0(t["p50_us"]), f0(t["p99_us"])),
                 "%s / %s µs" % (f0(f["p50_us"]), f0(f["p99_us"])) if f else "",
                 "%s µs" % sus(t["p50_us"] - f["p50_us"]) if f else "",
                 "%s / %s µs" % (f0(p["p50_us"]), f0(p["p99_us"])) if p else "",
                 "p50 ≤ floor + 100 µs",
                 (MET if t["p50_us"] - f["p50_us"] <= 100 else MISSED) if f else NA))
    rows.append(("2 · %s · dynalite · CPU per request (user+sys)" % label,
                 "%s µs" % f0(t["cpu_us"]), "%s µs" % f0(f["cpu_us"]) if f else "",
                 "%s µs" % sus(t["cpu_us"] - f["cpu_us"]) if f else "",
                 "%s µs" % f0(p["cpu_us"]) if p else "", "≤ floor + 50 µs",
                 (MET if t["cpu_us"] - f["cpu_us"] <= 50 else MISSED) if f else NA))
for label, phase, _ in OPS:
    t = warm.get(("taskhost-sqlite", phase))
    n = warm.get(("nullrt", phase))
    if not t:
        continue
    err = " (%d errors)" % t["errors"] if t.get("errors") else ""
    rows.append(("2 · %s · SQLite · latency p50 / p99; CPU per request%s" % (label, err),
                 "%s / %s µs; %s µs" % (f0(t["p50_us"]), f0(t["p99_us"]), f0(t["cpu_us"])),
                 "%s / %s µs; %s µs" % (f0(n["p50_us"]), f0(n["p99_us"]), f0(n["cpu_us"])) if n else "",
                 "%s µs; %s µs" % (sus(t["p50_us"] - n["p50_us"]), sus(t["cpu_us"] - n["cpu_us"])) if n else "",
                 "", "", NA))

# ---- 3 memory
for who, store in (("taskhost-ddb", "dynalite"), ("taskhost-sqlite", "SQLite")):
    m = mem.get(who)
    if not m:
        continue
    points = sorted(k for k in m if isinstance(k, int))
    if not points:
        continue
    last = m[points[-1]]
    mid = m.get(10000) or m[points[0]]
    py_hwm = max((o["vmhwm_kb"] for (w, _), o in warm.items() if w == "python"), default=None)
    nr_hwm = max((o["vmhwm_kb"] for (w, _), o in warm.items() if w == "nullrt"), default=None)
    rows.append(("3 · peak RSS (VmHWM) after %s invocations · %s (at the end: anon %s, file-backed %s)"
                 % (f0(points[-1]), store, mb_kb(last["rss_anon_kb"]), mb_kb(last["rss_file_kb"])),
                 mb_kb(last["vmhwm_kb"]), mb_kb(nr_hwm) if nr_hwm else "",
                 ("+" if last["vmhwm_kb"] >= nr_hwm else "") + mb_kb(last["vmhwm_kb"] - nr_hwm) if nr_hwm else "",
                 mb_kb(py_hwm) if py_hwm and store == "dynalite" else "", "≤ 10 MB",
                 MET if last["vmhwm_kb"] * 1024 <= 10e6 else MISSED))
    grow = last["vmrss_kb"] - mid["vmrss_kb"]
    between = [m[k] for k in points if mid["rss_at"] < k < last["rss_at"]]
    series = " → ".join(f0(o["vmrss_kb"]) for o in [mid] + between + [last]) + " kB"
    at = " → ".join(f0(o["rss_at"]) for o in [mid] + between + [last])
    rows.append(("3 · RSS (VmRSS) at the %s invocation · %s (of it anonymous: %s → %s kB)"
                 % (at, store, f0(mid["rss_anon_kb"]), f0(last["rss_anon_kb"])),
                 "%s (%+d kB)" % (series, grow), "", "", "",
                 "no growth", MET if grow <= 0 else MISSED))

# ---- 4 wrk
wrk_path = os.path.join(RES, "wrk.txt")
if os.path.exists(wrk_path) and os.path.getsize(wrk_path) > 0:
    text = open(wrk_path, encoding="utf-8").read()
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    names = {"get": "GET /tasks/{id}", "create": "POST /tasks", "list": "GET /tasks (25 items)"}
    for block in text.split("### ")[1:]:
        head, _, body = block.partition("\n")
        kv = dict(x.split("=") for x in head.split())
        rps = re.search(r"Requests/sec:\s*([\d.]+)", body)
        lat = {q: re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % q, body, re.M) for q in ("50", "99")}
        non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", body)
        errs = re.search(r"Socket errors:.*", body)
        if not rps or not all(lat.values()):
            rows.append(("4 · --serve %s, %s worker(s)" % (names[kv["op"]], kv["workers"]),
                         "wrk failed", "", "", "", "", NA))
            continue
        l50 = float(lat["50"].group(1)) * unit[lat["50"].group(2)]
        l99 = float(lat["99"].group(1)) * unit[lat["99"].group(2)]
        note = ""
        if non2xx:
            note += " (%s non-2xx)" % non2xx.group(1)
        if errs:
            note += " (%s)" % errs.group(0)
        rows.append(("4 · --serve %s, SQLite, %s worker(s): requests/s · p50 / p99 latency%s"
                     % (names[kv["op"]], kv["workers"], note),
                     "%s req/s · %.2f / %.2f ms" % (f0(float(rps.group(1))), l50, l99), "", "", "", "", NA))

# ---- 5 package
entries = []
ep = os.path.join(RES, "zip-entries.txt")
if os.path.exists(ep):
    for line in open(ep, encoding="utf-8"):
        size, csize, name = line.split()
        entries.append((int(size), int(csize), name))
GROUPS = [
    ("bootstrap", lambda n: n == "bootstrap"),
    ("OpenSSL (libssl, libcrypto)", lambda n: re.search(r"lib(ssl|crypto)\.", n)),
    ("libcurl", lambda n: "libcurl" in n),
    ("GnuTLS tree (gnutls, nettle, hogweed, gmp, p11-kit, tasn1, unistring, idn2, ffi)",
     lambda n: re.search(r"lib(gnutls|nettle|hogweed|gmp|p11-kit|tasn1|unistring|idn2|ffi)\.", n)),
    ("Kerberos/LDAP/SASL (krb5, gssapi, k5crypto, ldap, lber, sasl2, keyutils, com_err)",
     lambda n: re.search(r"lib(krb5|gssapi|k5crypto|krb5support|ldap|lber|sasl2|keyutils|com_err)", n)),
    ("other curl deps (nghttp2, ssh2, rtmp, psl, brotli, zstd, z)",
     lambda n: re.search(r"lib(nghttp2|ssh2|rtmp|psl|brotli\w*|zstd|z)\.", n)),
    ("lua/", lambda n: n.startswith("lua/")),
]
if pkg:
    breakdown = []
    used = set()
    for gname, pred in GROUPS:
        c = sum(cs for s, cs, n in entries if pred(n) and n not in used)
        for s, cs, n in entries:
            if pred(n):
                used.add(n)
        if c:
            breakdown.append("%s %.2f" % (gname, c / 1e6))
    rest = sum(cs for s, cs, n in entries if n not in used)
    if rest:
        breakdown.append("other %.2f" % (rest / 1e6))
    rows.append(("5 · package: zip size (compressed, MB, by part: %s)" % "; ".join(breakdown),
                 "%.2f MB (%s bytes)" % (pkg["zip_bytes"] / 1e6, f0(pkg["zip_bytes"])), "", "", "", "≤ 5 MB",
                 MET if pkg["zip_bytes"] <= 5e6 else MISSED))
    rows.append(("5 · package: unpacked size (%d files)" % len(entries),
                 "%.2f MB" % (pkg["unpacked_bytes"] / 1e6), "", "", "", "", NA))

# ---- print
print("## taskhost benchmarks (%s run)" % machine.get("mode", "?"))
print()
args = machine.get("args", "--quick" if machine.get("mode") == "quick" else "")
print("Machine: %s, %s vCPUs, %s GiB, Linux %s, %s (shared: load average %s at start, %s at end). "
      "libcurl %s. Commit %s, %s. Package: %s. Command: `bench/run.sh%s`."
      % (machine.get("cpu"), machine.get("cpus"), machine.get("mem_gib"), machine.get("kernel"),
         machine.get("os"), machine.get("load_start"), machine.get("load_end"), machine.get("libcurl"),
         machine.get("commit"), machine.get("date"), machine.get("package", "?"),
         (" " + args) if args else ""))
print()
pycol = "Python %s + boto3 %s" % (pyinfo.get("version"), pyinfo.get("boto3")) if has_py else "Python + boto3 (not run)"
print("| measurement | taskhost | floor | taskhost − floor | %s | target | |" % pycol)
print("|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(x.replace("|", "\\|") for x in r) + " |")
print()
print("Floor column: cold start and SQLite rows — the null runtime (`bench/nullrt.c`: the same "
      "libcurl Runtime API loop doing no work); dynalite rows — the same DynamoDB request from a "
      "minimal libcurl client (`bench/floor.c`: one kept-alive handle, bodies by snprintf, SigV4 "
      "with the day's signing key cached, nothing parsed); memory rows — the null runtime's VmHWM. "
      "Latency: the Runtime API test server's clock, event handed out → response received "
      "(`bench/rapi.c`); the floor's own clock around its request. CPU: utime+stime of "
      "/proc/PID/stat over the measured requests (the floor: getrusage). Targets in MB are "
      "10^6 bytes. Method: bench/README.md.")
