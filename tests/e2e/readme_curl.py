#!/usr/bin/env python3
"""The README's runnable examples, as a test (used by tests/e2e/test_readme_curl.sh).

A README block marked `<!-- readme-curl… -->` is a sequence of steps: a step is a run of command
lines (a blank line or a comment line ends it), followed by the `# → ` lines that show what it
prints. Usage:

  readme_curl.py script README MARKER OUTDIR   prints a bash script that runs the block MARKER
                                               ("curl" or "local"), each step's stdout in
                                               OUTDIR/<n>.out and its exit status in OUTDIR/<n>.rc
  readme_curl.py check README MARKER OUTDIR    compares each step's output with its `# → ` lines;
                                               prints one line per check, exits 1 on a mismatch

What a `# → ` line means:
  - JSON: the answer's shape. Objects have exactly these keys (any order) unless they hold `…`
    as a member (`{…,"status":"in_progress",…}`: at least these); `[…]` is any list; a string
    holding `…` is any string; numbers must be equal, except a time in epoch seconds (10 digits), which is any integer;
    other values must be equal.
  - `HTTP/1.1 204 No Content`: the status line of `curl -si`; `Name: value` lines are headers
    that must be present with that value (name without regard to case).
"""
import json
import re
import sys

ELLIPSIS = "\u2026"
ARROW = "# \u2192 "


def blocks(readme, marker):
    text = open(readme, encoding="utf-8").read()
    pat = r"<!-- readme-curl: ?%s\b[^>]*-->\n```sh\n(.*?)```" % re.escape(marker)
    if marker == "curl":  # the first marked block has the description after the colon
        pat = r"<!-- readme-curl: tests/e2e/test_readme_curl\.sh[^>]*-->\n```sh\n(.*?)```"
    found = re.findall(pat, text, re.S)
    if len(found) != 1:
        sys.exit("README: %d blocks marked readme-curl %s (expected 1)" % (len(found), marker))
    return found[0]


def steps(block):
    """[(command_lines, expected_lines)]"""
    out, cmd, exp = [], [], []
    in_heredoc = None

    def flush():
        nonlocal cmd, exp
        if cmd:
            out.append((cmd, exp))
        elif exp:
            sys.exit("README: '# →' lines without a command before them: %r" % exp)
        cmd, exp = [], []

    for line in block.split("\n"):
        if in_heredoc:
            cmd.append(line)
            if line == in_heredoc:
                in_heredoc = None
            continue
        if line.startswith(ARROW):
            exp.append(line[len(ARROW):])
            continue
        if exp or not line.strip() or line.lstrip().startswith("#"):
            flush()
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        cmd.append(line)
        m = re.search(r"<<-?'?([A-Za-z_]+)'?\s*$", line)
        if m:
            in_heredoc = m.group(1)
    flush()
    return out


def script(readme, marker, outdir):
    print("#!/usr/bin/env bash")
    for n, (cmd, _) in enumerate(steps(blocks(readme, marker))):
        print("{")
        print("\n".join(cmd))
        print("} >%s/%d.out 2>%s/%d.err" % (outdir, n, outdir, n))
        print("echo $? >%s/%d.rc" % (outdir, n))


def shape(text):
    """The JSON a `# →` line shows, with its `…` shorthands made JSON."""
    t = text.replace("[" + ELLIPSIS + "]", '["' + ELLIPSIS + '"]')
    t = t.replace("{" + ELLIPSIS + "}", '{"' + ELLIPSIS + '":"' + ELLIPSIS + '"}')
    t = t.replace("{" + ELLIPSIS + ",", '{"' + ELLIPSIS + '":"' + ELLIPSIS + '",')
    t = t.replace("," + ELLIPSIS + "}", ',"' + ELLIPSIS + '":"' + ELLIPSIS + '"}')
    t = re.sub(r':\s*' + ELLIPSIS + r'(?=[,}])', ':"' + ELLIPSIS + '"', t)
    return json.loads(t)


def match(want, got, where="$"):
    """None when `got` has the shape `want`, else what differs."""
    if isinstance(want, str) and ELLIPSIS in want:
        if want == ELLIPSIS:
            return None
        return None if isinstance(got, str) else "%s: %r is not a string" % (where, got)
    if isinstance(want, list):
        if want == [ELLIPSIS]:
            return None if isinstance(got, list) else "%s: %r is not a list" % (where, got)
        if not isinstance(got, list) or len(got) != len(want):
            return "%s: %r is not a list of %d" % (where, got, len(want))
        for i, (w, g) in enumerate(zip(want, got)):
            d = match(w, g, "%s[%d]" % (where, i))
            if d:
                return d
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return "%s: %r is not an object" % (where, got)
        open_ = ELLIPSIS in want
        keys = set(want) - {ELLIPSIS}
        missing = sorted(keys - set(got))
        extra = sorted(set(got) - keys)
        if missing:
            return "%s: lacks %s" % (where, ", ".join(missing))
        if extra and not open_:
            return "%s: has %s, which the README does not show" % (where, ", ".join(extra))
        for k in sorted(keys):
            d = match(want[k], got[k], "%s.%s" % (where, k))
            if d:
                return d
        return None
    if isinstance(want, bool) or want is None:
        return None if got is want else "%s: %r, README shows %r" % (where, got, want)
    if isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return "%s: %r is not a number" % (where, got)
        if isinstance(want, int) and 10**9 <= want < 10**10:  # epoch seconds: any time
            return None if isinstance(got, int) else "%s: %r is not an integer" % (where, got)
        return None if got == want else "%s: %r, README shows %r" % (where, got, want)
    return None if got == want else "%s: %r, README shows %r" % (where, got, want)


def check(readme, marker, outdir):
    bad = checks = 0

    def report(ok, name, detail=""):
        nonlocal bad, checks
        checks += 1
        if not ok:
            bad += 1
        print("%s - %s%s" % ("ok" if ok else "FAIL", name, (": " + detail) if detail and not ok else ""))

    for n, (cmd, exp) in enumerate(steps(blocks(readme, marker))):
        name = "step %d (%s)" % (n, cmd[0].strip()[:70])
        rc = open("%s/%d.rc" % (outdir, n)).read().strip()
        out = open("%s/%d.out" % (outdir, n), encoding="utf-8", errors="replace").read()
        report(rc == "0", name + " exits 0", "" if rc == "0" else "exit " + rc)
        if not exp:
            continue
        if exp[0].startswith("HTTP/"):
            head, _, body = out.replace("\r\n", "\n").partition("\n\n")
            hl = head.split("\n")
            report(hl[0].strip() == exp[0], name + ": " + exp[0], "got " + repr(hl[0]))
            headers = {}
            for h in hl[1:]:
                k, _, v = h.partition(":")
                headers[k.strip().lower()] = v.strip()
            for e in exp[1:]:
                if e.startswith("{"):
                    try:
                        d = match(shape(e), json.loads(body))
                    except ValueError as err:
                        d = "not JSON: %r (%s)" % (body[:200], err)
                    report(d is None, name + ": body " + e[:60], d or "")
                else:
                    k, _, v = e.partition(":")
                    got = headers.get(k.strip().lower())
                    report(got == v.strip(), name + ": " + e, "got %r" % got)
        else:
            if len(exp) != 1:
                sys.exit("README: step %d shows %d lines; one JSON line expected" % (n, len(exp)))
            try:
                d = match(shape(exp[0]), json.loads(out))
            except ValueError as err:
                d = "not JSON: %r (%s)" % (out[:200], err)
            report(d is None, name + ": " + exp[0][:60], d or "")
    print("%d checks, %d failed" % (checks, bad))
    return 1 if bad or checks == 0 else 0


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("script", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "script":
        script(*sys.argv[2:])
    else:
        sys.exit(check(*sys.argv[2:]))
