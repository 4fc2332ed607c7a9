#!/usr/bin/python3
"""policy.py DIR — what the schema cannot say about taskhost's workflows in DIR (ci.yml,
deploy.yml): one line per broken rule on stdout, exit 1 if any.

  ci.yml      runs .ci/run, on push and on pull_request
  deploy.yml  AWS credentials only through OIDC (aws-actions/configure-aws-credentials with
              role-to-assume, permission id-token: write) and no access key anywhere;
              terraform plan only for pull requests; the deploy job only on main, behind the
              `production` environment, then scripts/smoke.sh; never --allow-replace
"""
import sys

import yaml

problems = []


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    # YAML 1.1 reads the key `on` as True.
    if isinstance(doc, dict) and True in doc and "on" not in doc:
        doc["on"] = doc.pop(True)
    return doc


def triggers(doc):
    on = doc.get("on")
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return set(on)
    return set(on or {})


def steps(job):
    return job.get("steps") or []


def runs(job):
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def uses(job, action):
    return [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]


d = sys.argv[1]
ci = load(d + "/ci.yml")
if not {"push", "pull_request"} <= triggers(ci):
    problems.append("ci.yml: must run on push and pull_request (has: %s)" % sorted(triggers(ci)))
if not any(".ci/run" in runs(j).split() for j in (ci.get("jobs") or {}).values()):
    problems.append("ci.yml: no job runs .ci/run")

dep = load(d + "/deploy.yml")
text = open(d + "/deploy.yml", encoding="utf-8").read()
for key in ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    if key in text:
        problems.append("deploy.yml: mentions %s: AWS credentials must come from OIDC (role-to-assume), never keys" % key)
if any("--allow-replace" in runs(j) for j in (dep.get("jobs") or {}).values()):
    problems.append("deploy.yml: --allow-replace would let CI destroy the table, the pool or the role")
if (dep.get("permissions") or {}).get("id-token") != "write":
    problems.append("deploy.yml: permissions.id-token must be write (the OIDC token)")
jobs = dep.get("jobs") or {}
if not {"push", "pull_request"} <= triggers(dep):
    problems.append("deploy.yml: must run on pull_request (plan) and push (deploy)")
plans = [n for n, j in jobs.items() if "terraform" in runs(j) and " plan" in runs(j)]
deploys = [n for n, j in jobs.items() if "scripts/deploy.sh" in runs(j)]
for name, job in jobs.items():
    creds = uses(job, "aws-actions/configure-aws-credentials")
    if ("scripts/deploy.sh" in runs(job) or "terraform" in runs(job)) and not creds:
        problems.append("deploy.yml: job %s uses AWS without configure-aws-credentials" % name)
    for s in creds:
        w = s.get("with") or {}
        if not w.get("role-to-assume"):
            problems.append("deploy.yml: job %s: configure-aws-credentials without role-to-assume" % name)
if not plans:
    problems.append("deploy.yml: no job runs terraform plan")
for name in plans:
    if "pull_request" not in str(jobs[name].get("if", "")):
        problems.append("deploy.yml: the plan job %s must run for pull requests only" % name)
if not deploys:
    problems.append("deploy.yml: no job runs scripts/deploy.sh")
for name in deploys:
    job = jobs[name]
    env = job.get("environment")
    env = env.get("name") if isinstance(env, dict) else env
    if env != "production":
        problems.append("deploy.yml: the deploy job %s must run in the production environment (approval)" % name)
    cond = str(job.get("if", ""))
    if "refs/heads/main" not in cond:
        problems.append("deploy.yml: the deploy job %s must be limited to main (if: github.ref == 'refs/heads/main')" % name)
    r = runs(job)
    if "scripts/smoke.sh" not in r or r.index("scripts/smoke.sh") < r.index("scripts/deploy.sh"):
        problems.append("deploy.yml: the deploy job %s must run scripts/smoke.sh after scripts/deploy.sh" % name)

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
