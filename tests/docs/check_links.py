#!/usr/bin/env python3
"""Every relative link in README.md, docs/*.md and terraform/README.md reaches a file of the
repository, and every #anchor a heading of that file (GitHub's anchor rules). CTest: docs.links.
Usage: check_links.py REPO_ROOT"""
import glob
import os
import re
import sys

root = sys.argv[1]
pages = ["README.md", "terraform/README.md"] + sorted(
    os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "docs", "*.md")))


def anchors(path):
    out, in_code = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"^#{1,6} (.*)", line)
        if m:
            a = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            n = 0
            while (a if n == 0 else "%s-%d" % (a, n)) in out:
                n += 1
            out.add(a if n == 0 else "%s-%d" % (a, n))
    return out


bad = checked = 0
for page in pages:
    text = open(os.path.join(root, page), encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links in code blocks are not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        checked += 1
        file, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(root, os.path.dirname(page), file)) if file \
            else os.path.join(root, page)
        if not os.path.exists(dest):
            print("FAIL - %s: %s: no such file" % (page, target))
            bad += 1
        elif anchor and (not dest.endswith(".md") or anchor not in anchors(dest)):
            print("FAIL - %s: %s: no heading with that anchor" % (page, target))
            bad += 1
print("%d links checked, %d broken" % (checked, bad))
sys.exit(1 if bad or checked < 20 else 0)
