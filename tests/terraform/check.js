#!/usr/bin/env node
// Terraform consistency checks, without a Terraform binary.
//
//   node check.js [REPO_ROOT]      (check.sh runs it; REPO_ROOT defaults to ../..)
//
// Every .tf file under REPO_ROOT/terraform is converted to JSON with @cdktf/hcl2json (the
// HCL parser Terraform uses, compiled to WebAssembly); a file that does not parse fails.
// Then each check below prints one line, "ok - …" or "FAIL - …: why", and the run ends
// with "N passed, N failed" (exit 1 when anything failed).
//
// The checks tie the configuration to the code it deploys: the handler and runtime to the
// package scripts/package.sh writes, TABLE_NAME to the table resource, the IAM DynamoDB
// actions to the operations runtime/dynamodb.c sends, CORS at both layers to one variable.
// A policy must be an aws_iam_policy_document data source (so it can be read here); a
// jsonencode() policy or a managed policy attachment fails the IAM checks.
"use strict";

const fs = require("fs");
const path = require("path");
const { parse } = require("@cdktf/hcl2json");

// TF_CHECK_PARSE_CACHE=DIR keeps each file's parse under the SHA-256 of its name and text:
// the mutation test runs this script ~180 times over trees that differ in one file each, and
// the parser (Go compiled to WebAssembly) is most of a run. A parse error is never cached.
async function parseCached(file) {
  const text = fs.readFileSync(file, "utf8");
  const dir = process.env.TF_CHECK_PARSE_CACHE;
  if (!dir) return parse(path.basename(file), text);
  const key = require("crypto").createHash("sha256")
    .update(path.basename(file)).update("\0").update(text).digest("hex");
  const cached = path.join(dir, key + ".json");
  if (fs.existsSync(cached)) return JSON.parse(fs.readFileSync(cached, "utf8"));
  const json = await parse(path.basename(file), text);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(cached + ".tmp" + process.pid, JSON.stringify(json));
  fs.renameSync(cached + ".tmp" + process.pid, cached);
  return json;
}
const { Evaluator, EvalError, show, same } = require("./hcl_eval");

const ROOT = path.resolve(process.argv[2] || path.join(__dirname, "..", ".."));
const TF = path.join(ROOT, "terraform");
const DDB_SOURCE = "runtime/dynamodb.c";
const PACKAGE_SCRIPT = "scripts/package.sh";
const DEPLOYER_POLICY = "terraform/deployer-policy.json";
const AUTH_MODES = ["cognito", "jwt", "none"];
const API_TYPES = ["http", "rest"];

// Every operation of the DynamoDB_20120810 JSON API (botocore's dynamodb service model).
const DYNAMODB_OPERATIONS = new Set(
  ("BatchExecuteStatement BatchGetItem BatchWriteItem CreateBackup CreateGlobalTable CreateTable " +
    "DeleteBackup DeleteItem DeleteResourcePolicy DeleteTable DescribeBackup " +
    "DescribeContinuousBackups DescribeContributorInsights DescribeEndpoints DescribeExport " +
    "DescribeGlobalTable DescribeGlobalTableSettings DescribeImport " +
    "DescribeKinesisStreamingDestination DescribeLimits DescribeTable " +
    "DescribeTableReplicaAutoScaling DescribeTimeToLive DisableKinesisStreamingDestination " +
    "EnableKinesisStreamingDestination ExecuteStatement ExecuteTransaction " +
    "ExportTableToPointInTime GetItem GetResourcePolicy ImportTable ListBackups " +
    "ListContributorInsights ListExports ListGlobalTables ListImports ListTables " +
    "ListTagsOfResource PutItem PutResourcePolicy Query RestoreTableFromBackup " +
    "RestoreTableToPointInTime Scan TagResource TransactGetItems TransactWriteItems " +
    "UntagResource UpdateContinuousBackups UpdateContributorInsights UpdateGlobalTable " +
    "UpdateGlobalTableSettings UpdateItem UpdateKinesisStreamingDestination UpdateTable " +
    "UpdateTableReplicaAutoScaling UpdateTimeToLive").split(" ")
);
// A TransactWriteItems action object → the IAM action that authorises it.
const TRANSACT_ACTIONS = { Put: "PutItem", Update: "UpdateItem", Delete: "DeleteItem",
  ConditionCheck: "ConditionCheckItem" };
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
  1827, 2192, 2557, 2922, 3288, 3653];

let passed = 0;
let failed = 0;
function report(name, problem) {
  if (problem) {
    failed++;
    console.log(`FAIL - ${name}: ${problem}`);
  } else {
    passed++;
    console.log(`ok - ${name}`);
  }
}
// Runs fn, which returns null/undefined when fine or a string saying what is wrong; an
// exception (a missing block, say) is a failure too, never a crash of the whole run.
// Returning { note } passes and appends the note to the line.
function check(name, fn) {
  let problem;
  try {
    problem = fn();
  } catch (e) {
    problem = e instanceof CheckError ? e.message : `check crashed: ${e.stack || e}`;
  }
  if (problem && typeof problem === "object") report(`${name} (${problem.note})`, null);
  else report(name, problem || null);
}
const checkAt = check;
class CheckError extends Error {}
function need(cond, message) {
  if (!cond) throw new CheckError(message);
}

// ------------------------------------------------------------------ reading the files

function tfFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue; // .terraform/, editor files
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tfFiles(p));
    else if (entry.isFile() && entry.name.endsWith(".tf")) out.push(p);
  }
  return out.sort();
}

// One Terraform module = one directory. Its parsed files merged: kind -> type -> name -> [body]
// for resource/data, kind -> name -> [body] for variable/output/module, lists for the rest.
function emptyModule(dir) {
  return { dir, resource: {}, data: {}, variable: {}, output: {}, module: {}, locals: [],
    terraform: [], provider: {} };
}
function mergeInto(mod, json) {
  for (const [kind, value] of Object.entries(json)) {
    if (kind === "resource" || kind === "data") {
      for (const [type, byName] of Object.entries(value)) {
        mod[kind][type] = mod[kind][type] || {};
        for (const [name, bodies] of Object.entries(byName)) {
          mod[kind][type][name] = (mod[kind][type][name] || []).concat(bodies);
        }
      }
    } else if (kind === "variable" || kind === "output" || kind === "module" || kind === "provider") {
      for (const [name, bodies] of Object.entries(value)) {
        mod[kind][name] = (mod[kind][name] || []).concat(bodies);
      }
    } else if (kind === "locals" || kind === "terraform") {
      mod[kind] = mod[kind].concat(value);
    } else {
      mod[kind] = value;
    }
  }
}

// "${expr}" -> "expr"; anything else -> null.
function expr(v) {
  if (typeof v !== "string") return null;
  const m = /^\$\{([\s\S]*)\}$/.exec(v);
  return m ? m[1].trim() : null;
}
function first(body, key) {
  const v = body && body[key];
  return Array.isArray(v) ? v[0] : v;
}
function blocks(body, key) {
  const v = body && body[key];
  return Array.isArray(v) ? v : v ? [v] : [];
}
function all(mod, kind, type) {
  const out = [];
  for (const [name, bodies] of Object.entries(mod[kind][type] || {})) {
    for (const body of bodies) out.push({ name, body, mod });
  }
  return out;
}
function everywhere(modules, kind, type) {
  return modules.flatMap((m) => all(m, kind, type));
}
function varDefault(mod, name) {
  const bodies = mod.variable[name];
  return bodies && bodies[0] ? bodies[0].default : undefined;
}
function rel(p) {
  return path.relative(ROOT, p) || ".";
}

// The module call(s) in other modules whose source is this module's directory.
function callersOf(modules, mod) {
  const out = [];
  for (const parent of modules) {
    for (const [name, bodies] of Object.entries(parent.module)) {
      for (const body of bodies) {
        if (typeof body.source === "string" && path.resolve(parent.dir, body.source) === mod.dir) {
          out.push({ parent, name, body });
        }
      }
    }
  }
  return out;
}

// Follows an expression through module variables up to the root: "var.table.name" inside a
// module called with table = aws_dynamodb_table.tasks becomes "aws_dynamodb_table.tasks.name".
// Returns [{ mod, expr }] (one per caller; a module called twice yields two).
function resolve(modules, mod, e) {
  const m = /^var\.([A-Za-z0-9_-]+)((?:\.[A-Za-z0-9_-]+)*)$/.exec(e);
  if (!m) return [{ mod, expr: e }];
  const callers = callersOf(modules, mod);
  if (callers.length === 0) return [{ mod, expr: e }]; // a root variable
  return callers.flatMap(({ parent, body }) => {
    const arg = body[m[1]];
    const inner = expr(arg);
    if (inner === null) return [{ mod: parent, expr: JSON.stringify(arg) }];
    return resolve(modules, parent, inner + m[2]);
  });
}

// IAM statements of an aws_iam_policy_document body: static ones and dynamic ones (with the
// for_each that guards them).
function statementsOf(doc) {
  const out = [];
  for (const s of blocks(doc.body, "statement")) out.push({ doc, s, guard: null });
  for (const dyn of blocks(doc.body, "dynamic")) {
    for (const d of blocks(dyn, "statement")) {
      for (const s of blocks(d, "content")) out.push({ doc, s, guard: d.for_each });
    }
  }
  return out;
}
function list(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

// String literals of a C file (comments removed, adjacent literals joined).
function cStringLiterals(text) {
  const out = [];
  let i = 0;
  let pending = null; // literal being joined with the next adjacent one
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === "/" && text[i + 1] === "/") {
      while (i < n && text[i] !== "\n") i++;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let s = "";
      while (j < n && text[j] !== c) {
        if (text[j] === "\\") {
          s += text[j + 1];
          j += 2;
        } else {
          s += text[j++];
        }
      }
      if (c === '"') pending = (pending === null ? "" : pending) + s;
      i = j + 1;
      continue;
    } else if (/\s/.test(c)) {
      i++;
      continue;
    } else {
      i++;
    }
    if (pending !== null) {
      out.push(pending);
      pending = null;
    }
  }
  if (pending !== null) out.push(pending);
  return out;
}

// The DynamoDB operations the runtime sends: literals "DynamoDB_20120810.<Op>" and literals
// that are exactly an operation name ("PutItem"), in runtime/dynamodb.c (the client, which
// must exist) and every other runtime/*dynamodb*.c (store_dynamodb.c names the operations it
// calls). Comments are skipped.
function runtimeOperations() {
  const main = path.join(ROOT, DDB_SOURCE);
  need(fs.existsSync(main), `${DDB_SOURCE} not found, so the DynamoDB operations the runtime ` +
    `sends cannot be derived (the DynamoDB client lands there; until it does this check fails)`);
  const files = [main].concat(fs.readdirSync(path.join(ROOT, "runtime"))
    .filter((f) => /dynamodb.*\.c$/.test(f) && f !== "dynamodb.c")
    .map((f) => path.join(ROOT, "runtime", f)));
  const ops = new Set();
  const contained = new Set(); // the actions of the runtime's TransactWriteItems bodies
  for (const f of files) {
    for (const lit of cStringLiterals(fs.readFileSync(f, "utf8"))) {
      const target = /^DynamoDB_20120810\.([A-Za-z]+)$/.exec(lit);
      if (target) ops.add(target[1]);
      else if (DYNAMODB_OPERATIONS.has(lit)) ops.add(lit);
      for (const m of lit.matchAll(/"(Put|Update|Delete|ConditionCheck)":\{"TableName"/g))
        contained.add(TRANSACT_ACTIONS[m[1]]);
    }
  }
  // There is no dynamodb:TransactWriteItems action: IAM authorises each action the
  // transaction holds as its own operation (AWS Developer Guide, "Using IAM with DynamoDB
  // transactions": Put/Update/Delete by PutItem/UpdateItem/DeleteItem, ConditionCheck by
  // dynamodb:ConditionCheckItem).
  const actions = new Set(ops);
  if (actions.delete("TransactWriteItems")) {
    need(contained.size > 0, "TransactWriteItems is sent but no transaction action " +
      '("Put":{"TableName" ...) was found in the sources');
    for (const a of contained) actions.add(a);
  }
  need(ops.size > 0, `no DynamoDB operation name found in ${files.map(rel).join(", ")} ` +
    `(expected literals such as "PutItem" or "DynamoDB_20120810.PutItem")`);
  return { ops, actions, files: files.map(rel) };
}

// The count of a resource of the root module ("type.name") under evaluator ev; undefined for
// for_each or an unknown address.
function countOfIn(root, ev, addr) {
  const m = /^(data\.)?([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(addr);
  if (!m) return undefined;
  const bodies = (root[m[1] ? "data" : "resource"][m[2]] || {})[m[3]];
  if (!bodies || bodies[0].for_each !== undefined) return undefined;
  if (bodies[0].count === undefined) return 1;
  const n = ev.attr(bodies[0].count);
  need(typeof n === "number", `${addr}: count is ${show(n)}, not a number known at plan time`);
  return n;
}

function setDiff(a, b) {
  return [...a].filter((x) => !b.has(x)).sort();
}

// ------------------------------------------------------------------ auth (var.auth)
//
// The authorizer, the Cognito user pool and app client, the preflight route and the
// function's TASKHOST_AUTH, judged by evaluating the root module's expressions (hcl_eval.js)
// in each mode of var.auth: what Terraform would create, not how the expression is spelled.

// Every glob of a policy (IAM's * and ?) matched against a concrete action or ARN.
function globMatch(glob, text) {
  const re = "^" + String(glob).split("").map((c) => (c === "*" ? ".*" : c === "?" ? "." :
    c.replace(/[.+^${}()|[\]\\]/g, "\\$&"))).join("") + "$";
  return new RegExp(re, "i").test(text);
}

function authChecks(modules, root, fn, apis) {
  const locals = Object.assign({}, ...root.locals);
  // auth = "jwt" needs an issuer and an audience (a precondition says so): give it some.
  const JWT_VARS = { jwt_issuer: "https://issuer.example/", jwt_audience: ["aud-1"] };
  function evaluator(mode, extra) {
    // The HTTP API's authorizer and routes: api_type "http" (restChecks judges "rest").
    const vars = Object.assign({ auth: mode, deletion_protection: true, api_type: "http" },
      mode === "jwt" ? JWT_VARS : {}, extra || {});
    const ev = new Evaluator({ locals, vars, countOf: (addr) => countIn(ev, addr) });
    return ev;
  }
  // The count of a resource of the root module ("type.name"); undefined for for_each or an
  // unknown address.
  function countIn(ev, addr) {
    const m = /^(data\.)?([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(addr);
    if (!m) return undefined;
    const bodies = (root[m[1] ? "data" : "resource"][m[2]] || {})[m[3]];
    if (!bodies || bodies[0].for_each !== undefined) return undefined;
    if (bodies[0].count === undefined) return 1;
    const n = ev.attr(bodies[0].count);
    need(typeof n === "number", `${addr}: count is ${show(n)}, not a number known at plan time`);
    return n;
  }
  // Runs f(mode, ev) for each mode; an evaluation problem fails the check, naming the mode.
  function perMode(f, modes = AUTH_MODES) {
    for (const mode of modes) {
      try {
        f(mode, evaluator(mode));
      } catch (e) {
        if (e instanceof EvalError || e instanceof CheckError) {
          throw new CheckError(`auth = "${mode}": ${e.message}`);
        }
        throw e;
      }
    }
  }
  // The one resource of a type, in the root module (where var.auth and the locals are).
  function one(type) {
    const here = all(root, "resource", type);
    const elsewhere = everywhere(modules, "resource", type).length - here.length;
    need(elsewhere === 0, `${type} outside the root module (the checks evaluate the root's expressions)`);
    need(here.length === 1, `expected one ${type} in the root module, found ${here.length}`);
    return here[0];
  }
  const count = (ev, r) => (r.body.count === undefined ? 1 : ev.attr(r.body.count));

  check("auth: var.auth is \"cognito\" (the default), \"jwt\" or \"none\", and nothing else", () => {
    const b = (root.variable.auth || [])[0];
    need(b, "no variable \"auth\"");
    need(b.default === "cognito", `the default is ${JSON.stringify(b.default)}`);
    need(b.type === "${string}", `the type is ${b.type}`);
    const conds = blocks(b, "validation").map((v) => v.condition);
    need(conds.length > 0, "it has no validation");
    for (const value of [...AUTH_MODES, "Cognito", "oidc", ""]) {
      const accepted = conds.every((c) => evaluator(value).attr(c) === true);
      need(accepted === AUTH_MODES.includes(value),
        `its validation ${accepted ? "accepts" : "refuses"} ${JSON.stringify(value)}`);
    }
  });

  check("auth: \"jwt\" without jwt_issuer or jwt_audience (a list of strings) is refused at plan time", () => {
    const iss = (root.variable.jwt_issuer || [])[0];
    const aud = (root.variable.jwt_audience || [])[0];
    need(iss && aud, "variables jwt_issuer and jwt_audience are needed");
    need(iss.type === "${string}", `jwt_issuer's type is ${iss.type}`);
    need(aud.type === "${list(string)}", `jwt_audience's type is ${aud.type}`);
    // What Terraform evaluates at plan time: every variable's validations, the preconditions of
    // the resources that exist in that mode, and the outputs' preconditions.
    function refused(vars) {
      const ev = evaluator(vars.auth, vars);
      const conds = [];
      for (const [, bodies] of Object.entries(root.variable)) {
        for (const v of blocks(bodies[0], "validation")) conds.push(v.condition);
      }
      for (const [type, byName] of Object.entries(root.resource)) {
        for (const [name, bodies] of Object.entries(byName)) {
          const pre = blocks(first(bodies[0], "lifecycle"), "precondition");
          if (pre.length && countIn(ev, `${type}.${name}`) > 0) pre.forEach((p) => conds.push(p.condition));
        }
      }
      for (const [, bodies] of Object.entries(root.output)) {
        blocks(bodies[0], "precondition").forEach((p) => conds.push(p.condition));
      }
      return conds.some((c) => {
        try {
          return ev.attr(c) === false;
        } catch (e) {
          if (e instanceof EvalError) return false; // known only at apply time
          throw e;
        }
      });
    }
    const ok = "https://issuer.example/";
    const cases = [
      [{ auth: "jwt", jwt_issuer: null, jwt_audience: [] }, true],
      [{ auth: "jwt", jwt_issuer: ok, jwt_audience: [] }, true],
      [{ auth: "jwt", jwt_issuer: null, jwt_audience: ["aud-1"] }, true],
      [{ auth: "jwt", jwt_issuer: ok, jwt_audience: ["aud-1"] }, false],
      [{ auth: "cognito", jwt_issuer: null, jwt_audience: [] }, false],
      [{ auth: "none", jwt_issuer: null, jwt_audience: [] }, false],
    ];
    for (const [vars, want] of cases) {
      need(refused(vars) === want, `${JSON.stringify(vars)} is ${want ? "accepted" : "refused"}`);
    }
  });

  check("variables: a validation refers to its own variable only (another one needs Terraform 1.9; 1.5 is allowed)", () => {
    const bad = [];
    for (const m of modules) {
      for (const [name, bodies] of Object.entries(m.variable)) {
        for (const v of blocks(bodies[0], "validation")) {
          for (const r of String(v.condition).matchAll(/\bvar\.([A-Za-z0-9_-]+)/g)) {
            if (r[1] !== name) bad.push(`${rel(m.dir)}: ${name} refers to var.${r[1]}`);
          }
        }
      }
    }
    need(bad.length === 0, bad.join("; "));
  });

  check("cognito: the user pool and its app client exist exactly when auth = \"cognito\"", () => {
    const pool = one("aws_cognito_user_pool");
    const client = one("aws_cognito_user_pool_client");
    perMode((mode, ev) => {
      const want = mode === "cognito" ? 1 : 0;
      need(count(ev, pool) === want, `aws_cognito_user_pool.${pool.name} has count ${show(count(ev, pool))}`);
      need(count(ev, client) === want, `aws_cognito_user_pool_client.${client.name} has count ${show(count(ev, client))}`);
      if (mode === "cognito") {
        need(same(ev.attr(client.body.user_pool_id), { ref: `aws_cognito_user_pool.${pool.name}[0].id` }),
          `the client's user_pool_id is ${show(ev.attr(client.body.user_pool_id))}, not the pool's id`);
      }
    });
  });

  check("cognito: users sign in with their email, verified by Cognito; a password policy of 8 characters or more", () => {
    const pool = one("aws_cognito_user_pool");
    perMode((mode, ev) => {
      const b = pool.body;
      need(same(ev.attr(b.username_attributes), ["email"]),
        `username_attributes is ${show(ev.attr(b.username_attributes))}, not ["email"]`);
      need(b.alias_attributes === undefined, "alias_attributes is set (the email is the user name)");
      const verified = ev.attr(b.auto_verified_attributes);
      need(Array.isArray(verified) && verified.includes("email"),
        `auto_verified_attributes is ${show(verified)}, without "email"`);
      const p = first(b, "password_policy");
      need(p, "no password_policy block");
      const len = ev.attr(p.minimum_length);
      need(typeof len === "number" && len >= 8, `the password policy's minimum_length is ${show(len)}`);
    }, ["cognito"]);
  });

  check("cognito: the pool's deletion protection follows var.deletion_protection, and teardown.sh and deploy.sh know the pool", () => {
    const pool = one("aws_cognito_user_pool");
    for (const [dp, want] of [[true, "ACTIVE"], [false, "INACTIVE"]]) {
      const v = evaluator("cognito", { deletion_protection: dp }).attr(pool.body.deletion_protection);
      need(v === want, `with deletion_protection = ${dp} the pool's deletion_protection is ${show(v)}, not ${want}`);
    }
    const addr = `aws_cognito_user_pool.${pool.name}`;
    const teardown = path.join(ROOT, "scripts/teardown.sh");
    need(fs.existsSync(teardown), "scripts/teardown.sh not found");
    const t = fs.readFileSync(teardown, "utf8").split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
    need(t.includes(`-target=${addr}`), `teardown.sh's protection step does not -target=${addr}, so destroy would fail on the pool's deletion protection`);
    need(t.includes(`"${addr}[0]"`), `teardown.sh's plan check does not allow the in-place update of ${addr}[0]`);
    const deploy = path.join(ROOT, "scripts/deploy.sh");
    need(fs.existsSync(deploy), "scripts/deploy.sh not found");
    const d = fs.readFileSync(deploy, "utf8");
    const dangers = /plan_dangers\(\)\s*\{[\s\S]*?\n\}/.exec(d);
    need(dangers && dangers[0].includes(`"${addr}[0]"`),
      `deploy.sh's plan_dangers does not name ${addr}[0]: a plan deleting every account would be applied without asking`);
  });

  check("cognito: the app client has no secret, exactly USER_PASSWORD_AUTH, USER_SRP_AUTH and REFRESH_TOKEN_AUTH, and stated token validities", () => {
    const client = one("aws_cognito_user_pool_client");
    perMode((mode, ev) => {
      const b = client.body;
      const secret = ev.attr(b.generate_secret);
      need(secret === undefined || secret === false, `generate_secret is ${show(secret)}`);
      const flows = ev.attr(b.explicit_auth_flows);
      const want = ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"];
      need(Array.isArray(flows) && same([...new Set(flows)].sort(), want),
        `explicit_auth_flows is ${show(flows)}, not exactly ${want.join(", ")}`);
      for (const k of ["access_token_validity", "id_token_validity", "refresh_token_validity"]) {
        need(typeof ev.attr(b[k]) === "number", `${k} is ${show(ev.attr(b[k]))}, not a stated number`);
      }
      const units = first(b, "token_validity_units");
      need(units && units.access_token && units.id_token && units.refresh_token,
        `token_validity_units ${JSON.stringify(units)} does not name the unit of all three`);
    }, ["cognito"]);
  });

  check("authorizer: a JWT authorizer on the Authorization header, exactly when auth is not \"none\"", () => {
    const a = one("aws_apigatewayv2_authorizer");
    need(apis.length === 1, `expected one aws_apigatewayv2_api, found ${apis.length}`);
    perMode((mode, ev) => {
      const n = count(ev, a);
      need(n === (mode === "none" ? 0 : 1), `aws_apigatewayv2_authorizer.${a.name} has count ${show(n)}`);
      if (!n) return;
      need(ev.attr(a.body.authorizer_type) === "JWT", `authorizer_type is ${show(ev.attr(a.body.authorizer_type))}`);
      need(same(ev.attr(a.body.identity_sources), ["$request.header.Authorization"]),
        `identity_sources is ${show(ev.attr(a.body.identity_sources))}`);
      need(same(ev.attr(a.body.api_id), { ref: `aws_apigatewayv2_api.${apis[0].name}[0].id` }),
        `api_id is ${show(ev.attr(a.body.api_id))}`);
    });
  });

  // The pool's issuer: https:// + its endpoint attribute, or spelled out from region and id.
  function isPoolIssuer(v, pool) {
    const viaEndpoint = { tmpl: ["https://", { ref: `aws_cognito_user_pool.${pool}[0].endpoint` }] };
    if (same(v, viaEndpoint)) return true;
    const t = v && v.tmpl;
    return Boolean(t && t.length === 4 && t[0] === "https://cognito-idp." &&
      t[1].ref && /^(data\.aws_region\.[A-Za-z0-9_-]+\.(name|region|id)|var\.region)$/.test(t[1].ref) &&
      t[2] === ".amazonaws.com/" && same(t[3], { ref: `aws_cognito_user_pool.${pool}[0].id` }));
  }

  check("authorizer: issuer is the pool's https://cognito-idp.<region>.amazonaws.com/<pool id> (cognito), var.jwt_issuer (jwt)", () => {
    const a = one("aws_apigatewayv2_authorizer");
    const pool = one("aws_cognito_user_pool");
    perMode((mode, ev) => {
      const issuer = ev.attr(first(a.body, "jwt_configuration").issuer);
      if (mode === "cognito") need(isPoolIssuer(issuer, pool.name), `the issuer is ${show(issuer)}`);
      else need(same(issuer, JWT_VARS.jwt_issuer), `the issuer is ${show(issuer)}, not var.jwt_issuer`);
    }, ["cognito", "jwt"]);
  });

  check("authorizer: audience is [the app client's id] (cognito), var.jwt_audience (jwt)", () => {
    const a = one("aws_apigatewayv2_authorizer");
    const client = one("aws_cognito_user_pool_client");
    perMode((mode, ev) => {
      const aud = ev.attr(first(a.body, "jwt_configuration").audience);
      const want = mode === "cognito" ? [{ ref: `aws_cognito_user_pool_client.${client.name}[0].id` }] : JWT_VARS.jwt_audience;
      need(same(aud, want), `the audience is ${show(aud)}, not ${mode === "cognito" ? show(want) : "var.jwt_audience"}`);
    }, ["cognito", "jwt"]);
  });

  const routes = () => {
    const here = all(root, "resource", "aws_apigatewayv2_route");
    need(everywhere(modules, "resource", "aws_apigatewayv2_route").length === here.length,
      "aws_apigatewayv2_route outside the root module");
    need(here.length >= 1, "no aws_apigatewayv2_route");
    return here;
  };
  check("routes: every route needs the authorizer when auth is not \"none\", the OPTIONS preflight route aside", () => {
    const a = one("aws_apigatewayv2_authorizer");
    perMode((mode, ev) => {
      for (const r of routes()) {
        if (count(ev, r) === 0) continue;
        const key = ev.attr(r.body.route_key);
        const type = r.body.authorization_type === undefined ? "NONE" : ev.attr(r.body.authorization_type);
        const id = r.body.authorizer_id === undefined ? null : ev.attr(r.body.authorizer_id);
        const open = `route ${show(key)} (aws_apigatewayv2_route.${r.name})`;
        if (typeof key === "string" && key.startsWith("OPTIONS ")) {
          need(type === "NONE" && id === null, `${open} has authorization ${show(type)}: a preflight carries no token`);
        } else if (mode === "none") {
          need(type === "NONE" && id === null, `${open} has authorization ${show(type)} ${show(id)} without an authorizer`);
        } else {
          need(type === "JWT", `${open} has authorization_type ${show(type)}: anyone may call it`);
          need(same(id, { ref: `aws_apigatewayv2_authorizer.${a.name}[0].id` }),
            `${open} has authorizer_id ${show(id)}, not the JWT authorizer's id`);
        }
      }
    });
  });

  check("routes: CORS preflights need no token (OPTIONS /{proxy+} without authorization beside an authorized $default)", () => {
    need(apis.length === 1, `expected one aws_apigatewayv2_api, found ${apis.length}`);
    const cors = first(apis[0].body, "cors_configuration");
    need(cors, "no cors_configuration: API Gateway would not answer preflights or add CORS headers");
    const headers = list(cors.allow_headers).map((h) => String(h).toLowerCase());
    need(headers.includes("authorization") || headers.includes("*"),
      "cors_configuration.allow_headers lacks authorization: a browser may not send the token");
    perMode((mode, ev) => {
      const live = routes().filter((r) => count(ev, r) > 0).map((r) => ({ r,
        key: ev.attr(r.body.route_key),
        type: r.body.authorization_type === undefined ? "NONE" : ev.attr(r.body.authorization_type) }));
      const catchAll = live.filter(({ key, type }) => type !== "NONE" &&
        (key === "$default" || (typeof key === "string" && key.startsWith("ANY "))));
      if (catchAll.length === 0) return;
      const pre = live.find(({ key, type }) => key === "OPTIONS /{proxy+}" && type === "NONE");
      need(pre, `route ${show(catchAll[0].key)} needs a token and catches OPTIONS too, and there is no ` +
        "OPTIONS /{proxy+} route without authorization: every preflight would be a 401");
      need(/^integrations\/\$\{aws_apigatewayv2_integration\.[A-Za-z0-9_-]+(\[0\])?\.id\}$/.test(pre.r.body.target || ""),
        `the OPTIONS /{proxy+} route's target is ${JSON.stringify(pre.r.body.target)}: nothing would answer it`);
    }, ["cognito", "jwt"]);
  });

  check("lambda: TASKHOST_AUTH is \"jwt\" exactly when the authorizer is on, \"none\" otherwise", () => {
    need(fn, "no aws_lambda_function");
    // Where the CORS origin is looked for too: the function's own map, or a module call's.
    const places = [];
    const own = first(first(fn.body, "environment"), "variables");
    if (own && typeof own === "object" && "TASKHOST_AUTH" in own) places.push({ mod: fn.mod, v: own.TASKHOST_AUTH });
    for (const c of callersOf(modules, fn.mod)) {
      if (c.body.environment && typeof c.body.environment === "object" && "TASKHOST_AUTH" in c.body.environment) {
        places.push({ mod: c.parent, v: c.body.environment.TASKHOST_AUTH });
      }
    }
    let assigned = 0;
    const walk = (v) => {
      if (typeof v === "string") assigned += (v.match(/\bTASKHOST_AUTH"?\s*=[^=]/g) || []).length;
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        for (const [k, x] of Object.entries(v)) {
          if (k === "TASKHOST_AUTH") assigned++;
          walk(x);
        }
      }
    };
    modules.forEach((m) => walk([m.resource, m.module, m.locals]));
    need(places.length === 1 && assigned === 1,
      `TASKHOST_AUTH is set ${assigned} time(s), ${places.length} in the function's environment map (once expected)`);
    need(places[0].mod === root, "TASKHOST_AUTH is not set in the root module (where var.auth is)");
    perMode((mode, ev) => {
      const v = ev.attr(places[0].v);
      const want = mode === "none" ? "none" : "jwt";
      need(v === want, `TASKHOST_AUTH is ${show(v)}, not "${want}"`);
    });
  });

  check("outputs: cognito_user_pool_id, cognito_client_id, cognito_issuer (the authorizer's issuer), null unless auth = \"cognito\"", () => {
    const pool = one("aws_cognito_user_pool");
    const client = one("aws_cognito_user_pool_client");
    const a = one("aws_apigatewayv2_authorizer");
    for (const o of ["cognito_user_pool_id", "cognito_client_id", "cognito_issuer", "region"]) {
      need(root.output[o], `no output ${o} (scripts/token.sh reads it)`);
    }
    perMode((mode, ev) => {
      const val = (o) => ev.attr(root.output[o][0].value);
      if (mode !== "cognito") {
        for (const o of ["cognito_user_pool_id", "cognito_client_id", "cognito_issuer"]) {
          need(val(o) === null, `output ${o} is ${show(val(o))}, not null`);
        }
        return;
      }
      need(same(val("cognito_user_pool_id"), { ref: `aws_cognito_user_pool.${pool.name}[0].id` }),
        `cognito_user_pool_id is ${show(val("cognito_user_pool_id"))}`);
      need(same(val("cognito_client_id"), { ref: `aws_cognito_user_pool_client.${client.name}[0].id` }),
        `cognito_client_id is ${show(val("cognito_client_id"))}`);
      const issuer = ev.attr(first(a.body, "jwt_configuration").issuer);
      need(same(val("cognito_issuer"), issuer), `cognito_issuer is ${show(val("cognito_issuer"))}, not the authorizer's ${show(issuer)}`);
    });
  });

  check(`deployer policy: ${DEPLOYER_POLICY} allows what the user pool, its client and the authorizer need`, () => {
    const file = path.join(ROOT, DEPLOYER_POLICY);
    need(fs.existsSync(file), `${DEPLOYER_POLICY} not found`);
    let doc;
    try {
      doc = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (e) {
      throw new CheckError(`${DEPLOYER_POLICY} is not JSON: ${e.message}`);
    }
    const allows = list(doc.Statement).filter((s) => s.Effect === "Allow" && !s.Condition);
    const allowed = (action, arn) => allows.some((s) => list(s.Action).some((a) => globMatch(a, action)) &&
      list(s.Resource).some((r) => globMatch(r, arn)));
    const pool = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC123";
    const wanted = [["cognito-idp:CreateUserPool", "*"]].concat(
      ["DescribeUserPool", "UpdateUserPool", "DeleteUserPool", "GetUserPoolMfaConfig", "CreateUserPoolClient",
        "DescribeUserPoolClient", "UpdateUserPoolClient", "DeleteUserPoolClient"].map((a) => [`cognito-idp:${a}`, pool]),
      ["GET", "POST", "PATCH", "DELETE"].flatMap((m) => [
        [`apigateway:${m}`, "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5/authorizers/xyz123"],
        [`apigateway:${m}`, "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5/routes/r4nd0m"]]));
    const missing = wanted.filter(([a, r]) => !allowed(a, r)).map(([a, r]) => `${a} on ${r}`);
    need(missing.length === 0, `not allowed: ${missing.join("; ")}`);
  });
}

// ------------------------------------------------------------ REST API (var.api_type, rest.tf)
//
// api_type = "rest": a REST API (root and {proxy+}, ANY and OPTIONS, Lambda proxy), a Cognito
// user-pool authorizer, usage plans and API keys (var.api_clients), an AWS WAF web ACL
// (var.waf, var.waf_mode, var.waf_rate_limit). Judged by evaluating the root module's
// expressions with each variable value that matters (hcl_eval.js), as authChecks does;
// for_each maps and `each.value.method` are evaluated per method.

function restChecks(modules, root) {
  const locals = Object.assign({}, ...root.locals);
  const defaults = {};
  for (const [name, bodies] of Object.entries(root.variable)) defaults[name] = bodies[0].default === undefined ? null : bodies[0].default;
  const JWT_VARS = { jwt_issuer: "https://issuer.example/", jwt_audience: ["aud-1"] };
  const CLIENTS = { "partner-a": { quota_limit: 1000, quota_period: "MONTH", rate_limit: 5, burst_limit: 10 } };
  function evaluator(extra) {
    const vars = Object.assign({}, defaults, extra.auth === "jwt" ? JWT_VARS : {}, extra);
    const ev = new Evaluator({ locals, vars, countOf: (addr) => countOfIn(root, ev, addr) });
    return ev;
  }
  const label = (extra) => Object.entries(extra).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ");
  // Runs f(ev) under each variable set; an evaluation problem fails the check, naming the set.
  function under(sets, f) {
    for (const extra of sets) {
      try {
        f(evaluator(extra), extra);
      } catch (e) {
        if (e instanceof EvalError || e instanceof CheckError) throw new CheckError(`${label(extra)}: ${e.message}`);
        throw e;
      }
    }
  }
  function one(type) {
    const here = all(root, "resource", type);
    need(here.length === 1, `expected one ${type} in the root module, found ${here.length}`);
    return here[0];
  }
  // How many instances a resource has: its count, or the size of its for_each.
  function instances(ev, r) {
    if (r.body.for_each !== undefined) {
      const v = ev.attr(r.body.for_each);
      need(v !== null && typeof v === "object" && !isSymbolic(v), `${r.name}: for_each is ${show(v)}, not known at plan time`);
      return Array.isArray(v) ? v.length : Object.keys(v).length;
    }
    return r.body.count === undefined ? 1 : ev.attr(r.body.count);
  }
  const isSymbolic = (v) => v && (v.ref !== undefined || v.tmpl !== undefined);
  // An attribute of a for_each resource with each.value.<k> / each.key replaced by literals.
  function perEach(ev, value, each) {
    if (typeof value !== "string") return ev.attr(value);
    let s = value;
    for (const [k, v] of Object.entries(each.value || {})) s = s.split(`each.value.${k}`).join(JSON.stringify(v));
    if (each.key !== undefined) s = s.split("each.key").join(JSON.stringify(each.key));
    return ev.attr(s);
  }
  // Preconditions of the root module: { where, body, owner } (owner null for an output).
  const preconditions = [];
  for (const [type, byName] of Object.entries(root.resource)) {
    for (const [name, bodies] of Object.entries(byName)) {
      for (const lc of blocks(bodies[0], "lifecycle")) {
        for (const p of blocks(lc, "precondition")) preconditions.push({ where: `${type}.${name}`, body: p, owner: { name, body: bodies[0] } });
      }
    }
  }
  for (const [name, bodies] of Object.entries(root.output)) {
    for (const p of blocks(bodies[0], "precondition")) preconditions.push({ where: `output.${name}`, body: p, owner: null });
  }
  // The preconditions that fail the plan under ev: those of an existing owner whose condition is false.
  function refusals(ev) {
    return preconditions.filter((p) => (p.owner === null || instances(ev, p.owner) > 0) && ev.attr(p.body.condition) === false);
  }

  check("api_type: \"http\" (the default) or \"rest\", and nothing else", () => {
    const v = (root.variable.api_type || [])[0];
    need(v, "no variable \"api_type\"");
    need(v.default === "http", `the default is ${JSON.stringify(v.default)}`);
    const cond = first(v, "validation") && first(v, "validation").condition;
    for (const [val, want] of [["http", true], ["rest", true], ["websocket", false]]) {
      const got = new Evaluator({ locals, vars: { api_type: val }, countOf: () => undefined }).attr(cond);
      need(got === want, `the validation ${want ? "refuses" : "accepts"} ${JSON.stringify(val)}`);
    }
  });

  check("api_type: the HTTP API exists exactly with \"http\", the REST API, its stage, deployment and permission exactly with \"rest\"", () => {
    under([{ api_type: "http" }, { api_type: "rest" }], (ev, x) => {
      const http = x.api_type === "http";
      for (const t of ["aws_apigatewayv2_api", "aws_apigatewayv2_stage", "aws_apigatewayv2_integration"]) {
        need(instances(ev, one(t)) === (http ? 1 : 0), `${t}: ${instances(ev, one(t))} instances`);
      }
      for (const t of ["aws_api_gateway_rest_api", "aws_api_gateway_resource", "aws_api_gateway_deployment", "aws_api_gateway_stage", "aws_api_gateway_method_settings"]) {
        need(instances(ev, one(t)) === (http ? 0 : 1), `${t}: ${instances(ev, one(t))} instances`);
      }
      const perms = all(root, "resource", "aws_lambda_permission").filter((p) => instances(ev, p) > 0);
      need(perms.length === 1, `${perms.length} Lambda permissions exist`);
      need(new RegExp(`^\\$\\{${http ? "aws_apigatewayv2_api" : "aws_api_gateway_rest_api"}\\.`).test(perms[0].body.source_arn),
        `the permission's source_arn ${perms[0].body.source_arn} is not this API's`);
    });
  });

  check("rest: auth = \"jwt\" refused at plan time (REST APIs have no JWT authorizer); cognito and none planned", () => {
    under([{ api_type: "rest", auth: "jwt" }], (ev) => {
      const r = refusals(ev);
      need(r.length >= 1, "no precondition fails the plan");
      need(r.some((p) => /JWT/.test(String(p.body.error_message))), `the refusal does not say why: ${r.map((p) => p.body.error_message).join(" | ")}`);
    });
    under([{ api_type: "rest", auth: "cognito" }, { api_type: "rest", auth: "none" }, { api_type: "http", auth: "jwt" }], (ev) => {
      const r = refusals(ev);
      need(r.length === 0, `refused by ${r.map((p) => p.where).join(", ")}`);
    });
  });

  check("http: waf = true and api_clients refused at plan time (HTTP APIs have neither); rest takes both", () => {
    for (const x of [{ api_type: "http", waf: true }, { api_type: "http", api_clients: CLIENTS }]) {
      under([x], (ev) => need(refusals(ev).length >= 1, "planned"));
    }
    under([{ api_type: "rest", waf: true, api_clients: CLIENTS }, { api_type: "http" }], (ev) => {
      const r = refusals(ev);
      need(r.length === 0, `refused by ${r.map((p) => p.where).join(", ")}`);
    });
  });

  check("rest: the root and {proxy+}, each with ANY and OPTIONS, each a Lambda proxy integration (POST to the function's invoke_arn)", () => {
    const res = one("aws_api_gateway_resource").body;
    need(res.path_part === "{proxy+}", `path_part ${JSON.stringify(res.path_part)}`);
    need(/\.root_resource_id\}$/.test(res.parent_id || ""), `parent_id ${res.parent_id} is not the root`);
    const m = one("aws_api_gateway_method");
    const i = one("aws_api_gateway_integration");
    under([{ api_type: "rest", name: "probe-name" }], (ev) => {
      const methods = ev.attr(m.body.for_each);
      const pairs = Object.values(methods).map((x) => `${x.resource} ${x.method}`).sort();
      need(same(pairs, ["proxy ANY", "proxy OPTIONS", "root ANY", "root OPTIONS"]), `methods ${show(pairs)}`);
      need(same(ev.attr(i.body.for_each), methods), "the integrations are not one per method");
      const rr = ev.attr(locals.rest_resources);
      need(rr && isSymbolic(rr.root) && /root_resource_id$/.test(rr.root.ref) && isSymbolic(rr.proxy) && /^aws_api_gateway_resource\./.test(rr.proxy.ref),
        `local.rest_resources is ${show(rr)}`);
      need(expr(m.body.resource_id) === "local.rest_resources[each.value.resource]", `resource_id ${m.body.resource_id}`);
      need(i.body.type === "AWS_PROXY" && i.body.integration_http_method === "POST", `type ${i.body.type}, method ${i.body.integration_http_method}`);
      // The function's invoke URI, spelt out (see the next check): .../functions/<the function's ARN>/invocations.
      const uri = ev.attr(i.body.uri);
      const text = show(uri);
      need(/^"arn:\$\{data\.aws_partition\.current\.partition\}:apigateway:\$\{data\.aws_region\.current\.name\}:lambda:path\/2015-03-31\/functions\/arn:\$\{data\.aws_partition\.current\.partition\}:lambda:\$\{data\.aws_region\.current\.name\}:\$\{data\.aws_caller_identity\.current\.account_id\}:function:probe-name\/invocations"$/.test(text) ||
        expr(i.body.uri) === "module.lambda.invoke_arn", `uri ${text}`);
      const fnMod = modules.find((x) => x !== root && x.resource.aws_lambda_function);
      const fnBody = fnMod && Object.values(fnMod.resource.aws_lambda_function)[0][0];
      const call = fnMod && callersOf(modules, fnMod)[0];
      need(fnBody && expr(fnBody.function_name) === "var.name" && call && expr(call.body.name) === "var.name",
        "the function is not named var.name, which the integration's URI spells out");
    });
  });

  check("rest: ANY needs the Cognito authorizer (auth = cognito, access tokens) and the API key (with api_clients); OPTIONS neither", () => {
    const m = one("aws_api_gateway_method");
    const a = one("aws_api_gateway_authorizer");
    for (const auth of ["cognito", "none"]) {
      for (const clients of [{}, CLIENTS]) {
        under([{ api_type: "rest", auth, api_clients: clients }], (ev) => {
          const cognito = auth === "cognito";
          const keys = Object.keys(clients).length > 0;
          need(instances(ev, a) === (cognito ? 1 : 0), `${instances(ev, a)} authorizers`);
          for (const method of ["ANY", "OPTIONS"]) {
            const each = { value: { method } };
            const guarded = method !== "OPTIONS";
            const authz = perEach(ev, m.body.authorization, each);
            need(authz === (guarded && cognito ? "COGNITO_USER_POOLS" : "NONE"), `${method}: authorization ${show(authz)}`);
            const id = perEach(ev, m.body.authorizer_id, each);
            need(guarded && cognito ? isSymbolic(id) && id.ref === `aws_api_gateway_authorizer.${a.name}[0].id` : id === null || id === undefined,
              `${method}: authorizer_id ${show(id)}`);
            const scopes = perEach(ev, m.body.authorization_scopes, each);
            need(guarded && cognito ? same(scopes, ["aws.cognito.signin.user.admin"]) : scopes === null || scopes === undefined,
              `${method}: authorization_scopes ${show(scopes)} (a Cognito authorizer takes access tokens only with a scope)`);
            const key = perEach(ev, m.body.api_key_required, each);
            need(key === (guarded && keys), `${method}: api_key_required ${show(key)}`);
          }
        });
      }
    }
    need(a.body.type === "COGNITO_USER_POOLS", `authorizer type ${a.body.type}`);
    need(a.body.identity_source === "method.request.header.Authorization", `identity_source ${a.body.identity_source}`);
    need(same(a.body.provider_arns, ["${aws_cognito_user_pool.users[0].arn}"]), `provider_arns ${show(a.body.provider_arns)}`);
  });

  check("rest: one API key, usage plan and plan key per api_clients entry (none for http); the plan on this stage with the client's quota and throttle", () => {
    const key = one("aws_api_gateway_api_key");
    const plan = one("aws_api_gateway_usage_plan");
    const pk = one("aws_api_gateway_usage_plan_key");
    under([{ api_type: "rest", api_clients: CLIENTS }, { api_type: "rest", api_clients: {} }, { api_type: "http", api_clients: CLIENTS }], (ev, x) => {
      const want = x.api_type === "rest" ? Object.keys(x.api_clients).length : 0;
      for (const r of [key, plan, pk]) need(instances(ev, r) === want, `${r.name}: ${instances(ev, r)} instances, want ${want}`);
    });
    const st = first(plan.body, "api_stages");
    need(/^\$\{aws_api_gateway_rest_api\.[A-Za-z0-9_-]+\[0\]\.id\}$/.test(st && st.api_id) && /^\$\{aws_api_gateway_stage\.[A-Za-z0-9_-]+\[0\]\.stage_name\}$/.test(st && st.stage),
      `api_stages ${show(st)}`);
    need(pk.body.key_type === "API_KEY" && expr(pk.body.key_id) === `aws_api_gateway_api_key.${key.name}[each.key].id` &&
      expr(pk.body.usage_plan_id) === `aws_api_gateway_usage_plan.${plan.name}[each.key].id`, "the plan key does not join each client's key to its plan");
    const dyn = first(plan.body, "dynamic") || {};
    const q = first(first(first(dyn, "quota_settings"), "content"), "limit");
    const t = first(first(dyn, "throttle_settings"), "content") || {};
    need(expr(q) === "quota_settings.value.quota_limit", `quota limit ${show(q)}`);
    need(/throttle_settings\.value\.rate_limit/.test(t.rate_limit || "") && /throttle_settings\.value\.burst_limit/.test(t.burst_limit || ""), `throttle ${show(t)}`);
  });

  // Terraform makes every resource a create_before_destroy resource depends on
  // create_before_destroy too, in every stack (the REST deployment's count does not matter).
  // The table and the function's role must not be among them: replaced under the same name
  // (a key change), they must be deleted first.
  check("rest: no create_before_destroy resource depends on the table, the function or its role (they would be created before the old one is deleted)", () => {
    const refsOf = (v) => [...JSON.stringify(v).matchAll(/\b(module\.[A-Za-z0-9_-]+|local\.[A-Za-z0-9_]+|(?:data\.)?aws_[a-z0-9_]+\.[A-Za-z0-9_-]+)/g)].map((m) => m[1]);
    const bodyOf = (addr) => {
      if (addr.startsWith("local.")) return locals[addr.slice(6)];
      const m = /^(data\.)?(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)$/.exec(addr);
      return m ? ((root[m[1] ? "data" : "resource"][m[2]] || {})[m[3]] || [])[0] : undefined;
    };
    const bad = [];
    for (const [type, byName] of Object.entries(root.resource)) {
      for (const [name, bodies] of Object.entries(byName)) {
        if (!blocks(bodies[0], "lifecycle").some((l) => l.create_before_destroy === true)) continue;
        const seen = new Set();
        const todo = refsOf(bodies[0]);
        while (todo.length) {
          const a = todo.pop();
          if (seen.has(a)) continue;
          seen.add(a);
          const b = bodyOf(a);
          if (b !== undefined) todo.push(...refsOf(b));
        }
        const hit = [...seen].filter((a) => /^module\./.test(a) || a === "aws_dynamodb_table.tasks");
        if (hit.length) bad.push(`${type}.${name} depends on ${hit.join(", ")}`);
      }
    }
    need(bad.length === 0, bad.join("; "));
  });

  check("outputs: api_key_ids names each client's key id, never its value", () => {
    const o = (root.output.api_key_ids || [])[0];
    need(o, "no output api_key_ids");
    const v = String(o.value);
    need(/aws_api_gateway_api_key\.[A-Za-z0-9_-]+ : k => key\.id \}/.test(v) || /=> *[a-z]+\.id *\}/.test(v), `api_key_ids is ${v}`);
    const leaks = Object.entries(root.output).filter(([, b]) => /aws_api_gateway_api_key[^}]*\.value\b|\bkey\.value\b/.test(String(b[0].value))).map(([n]) => n);
    need(leaks.length === 0, `outputs with a key's value: ${leaks.join(", ")}`);
  });

  check("waf: a regional web ACL on the REST stage, on by default for rest, off with waf = false and for http; logging to aws-waf-logs-*", () => {
    const acl = one("aws_wafv2_web_acl");
    const assoc = one("aws_wafv2_web_acl_association");
    const logc = one("aws_wafv2_web_acl_logging_configuration");
    under([{ api_type: "rest" }, { api_type: "rest", waf: true }, { api_type: "rest", waf: false }, { api_type: "http" }], (ev, x) => {
      const want = x.api_type === "rest" && x.waf !== false ? 1 : 0;
      for (const r of [acl, assoc, logc]) need(instances(ev, r) === want, `${r.name}: ${instances(ev, r)} instances, want ${want}`);
    });
    need(acl.body.scope === "REGIONAL", `scope ${acl.body.scope}`);
    need(first(acl.body, "default_action") && first(acl.body, "default_action").allow, "the default action is not allow");
    need(/^\$\{aws_api_gateway_stage\.[A-Za-z0-9_-]+\[0\]\.arn\}$/.test(assoc.body.resource_arn), `association resource_arn ${assoc.body.resource_arn}`);
    need(expr(assoc.body.web_acl_arn) === `aws_wafv2_web_acl.${acl.name}[0].arn`, `association web_acl_arn ${assoc.body.web_acl_arn}`);
    const dest = list(logc.body.log_destination_configs).map(expr);
    const m = dest.length === 1 && /^aws_cloudwatch_log_group\.([A-Za-z0-9_-]+)\[0\]\.arn$/.exec(dest[0]);
    need(m, `log_destination_configs ${show(logc.body.log_destination_configs)}`);
    const g = (root.resource.aws_cloudwatch_log_group || {})[m[1]];
    need(g && /^aws-waf-logs-/.test(g[0].name), `the WAF log group is named ${g && g[0].name} (WAF takes aws-waf-logs-* only)`);
    const redacted = blocks(logc.body, "redacted_fields").flatMap((r) => blocks(r, "single_header")).map((h) => String(h.name).toLowerCase());
    need(redacted.includes("authorization") && redacted.includes("x-api-key"), `redacted headers ${show(redacted)}: the token and the key must not be logged`);
  });

  check("waf: AWS's common and known-bad-inputs rule groups and a rate limit per client IP (var.waf_rate_limit); waf_mode count counts, block blocks", () => {
    const acl = one("aws_wafv2_web_acl");
    const dyn = blocks(first(acl.body, "dynamic"), "rule")[0];
    need(dyn, "no dynamic rule block (the managed rule groups)");
    const content = first(dyn, "content");
    const mg = first(first(content, "statement"), "managed_rule_group_statement");
    need(mg && mg.vendor_name === "AWS" && expr(mg.name) === "rule.key", `managed_rule_group_statement ${show(mg)}`);
    const rate = blocks(acl.body, "rule").find((r) => first(first(r, "statement"), "rate_based_statement"));
    need(rate, "no rate-based rule");
    const rb = first(first(rate, "statement"), "rate_based_statement");
    need(expr(rb.limit) === "var.waf_rate_limit" && rb.aggregate_key_type === "IP", `rate_based_statement ${show(rb)}`);
    for (const mode of ["count", "block"]) {
      under([{ api_type: "rest", waf_mode: mode }], (ev) => {
        const groups = Object.keys(ev.attr(dyn.for_each) || {});
        for (const g of ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"]) need(groups.includes(g), `no ${g} (groups: ${groups.join(", ")})`);
        const active = (block) => Object.entries(first(block, "dynamic") || {}).filter(([, d]) => (ev.attr((Array.isArray(d) ? d[0] : d).for_each) || []).length > 0).map(([k]) => k);
        const ov = active(first(content, "override_action"));
        need(same(ov, [mode === "count" ? "count" : "none"]), `the managed groups' override_action is ${show(ov)}`);
        const act = active(first(rate, "action"));
        need(same(act, [mode]), `the rate rule's action is ${show(act)}`);
      });
    }
  });

  check("rest: stage JSON access log to the access log group, throttling from var.throttling_*, and every API Gateway error carries the CORS origin", () => {
    const st = one("aws_api_gateway_stage").body;
    const a = first(st, "access_log_settings");
    need(a && /^\$\{aws_cloudwatch_log_group\.access\.arn\}$/.test(a.destination_arn), `access_log_settings ${show(a)}`);
    const f = String(a.format || "");
    const lacking = ["$context.requestId", "$context.identity.sourceIp", "$context.httpMethod", "$context.status",
      "$context.identity.apiKeyId", "$context.wafResponseCode"].filter((x) => !f.includes(`"${x}"`));
    need(/^\$\{jsonencode\(/.test(f) && lacking.length === 0, `format lacks ${lacking.join(", ")}`);
    const ms = first(one("aws_api_gateway_method_settings").body, "settings");
    need(ms && expr(ms.throttling_rate_limit) === "var.throttling_rate_limit" && expr(ms.throttling_burst_limit) === "var.throttling_burst_limit",
      `method settings ${show(ms)}`);
    need(one("aws_api_gateway_method_settings").body.method_path === "*/*", "method_path is not */* (every method)");
    const gr = one("aws_api_gateway_gateway_response");
    under([{ api_type: "rest" }], (ev) => {
      const types = Object.keys(ev.attr(gr.body.for_each) || {}).sort();
      need(same(types, ["DEFAULT_4XX", "DEFAULT_5XX"]), `gateway responses ${show(types)}`);
    });
    const p = gr.body.response_parameters || {};
    need(p["gatewayresponse.header.Access-Control-Allow-Origin"] === "'${var.cors_origin}'", `Access-Control-Allow-Origin ${show(p["gatewayresponse.header.Access-Control-Allow-Origin"])}`);
  });

  check("cors: x-api-key is an allowed header at both layers (HTTP API cors_configuration, the function's Access-Control-Allow-Headers)", () => {
    const cors = first(one("aws_apigatewayv2_api").body, "cors_configuration");
    need(list(cors && cors.allow_headers).map((h) => String(h).toLowerCase()).includes("x-api-key"), "allow_headers lacks x-api-key");
    const host = fs.readFileSync(path.join(ROOT, "runtime/host.c"), "utf8").replace(/"\s*\n\s*"/g, "");
    const m = /"Access-Control-Allow-Headers",\s*"([^"]*)"/.exec(host);
    need(m && m[1].split(",").map((h) => h.trim().toLowerCase()).includes("x-api-key"), "runtime/host.c's Access-Control-Allow-Headers lacks X-Api-Key");
  });

  check("rest: API Gateway's logging role is assumed by apigateway.amazonaws.com only, may write logs only, and exists only with rest and manage_apigateway_account", () => {
    const acct = one("aws_api_gateway_account");
    const roleName = (/^aws_iam_role\.([A-Za-z0-9_-]+)\[0\]\.arn$/.exec(expr(acct.body.cloudwatch_role_arn) || "") || [])[1];
    need(roleName, `cloudwatch_role_arn ${acct.body.cloudwatch_role_arn}`);
    const role = root.resource.aws_iam_role[roleName][0];
    const trust = (/^data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\[0\]\.json$/.exec(expr(role.assume_role_policy) || "") || [])[1];
    need(trust, "assume_role_policy is not a data.aws_iam_policy_document");
    for (const s of blocks(root.data.aws_iam_policy_document[trust][0], "statement")) {
      need(same(list(s.actions), ["sts:AssumeRole"]), `trust actions ${show(s.actions)}`);
      for (const p of blocks(s, "principals")) need(p.type === "Service" && same(list(p.identifiers), ["apigateway.amazonaws.com"]), `principal ${show(p)}`);
    }
    const pol = all(root, "resource", "aws_iam_role_policy").filter((r) => new RegExp(`^aws_iam_role\\.${roleName}\\[0\\]\\.id$`).test(expr(r.body.role) || ""));
    need(pol.length === 1, `${pol.length} inline policies on the role`);
    const doc = (/^data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\[0\]\.json$/.exec(expr(pol[0].body.policy) || "") || [])[1];
    need(doc, "the inline policy is not a data.aws_iam_policy_document");
    for (const s of blocks(root.data.aws_iam_policy_document[doc][0], "statement")) {
      need(list(s.actions).every((a) => /^logs:[A-Za-z]+$/.test(a)), `actions ${show(s.actions)}`);
      need(list(s.resources).every((r) => /:log-group:\*$/.test(r)), `resources ${show(s.resources)}`);
    }
    under([{ api_type: "rest" }, { api_type: "rest", manage_apigateway_account: false }, { api_type: "http" }], (ev, x) => {
      const want = x.api_type === "rest" && x.manage_apigateway_account !== false ? 1 : 0;
      need(instances(ev, acct) === want, `aws_api_gateway_account: ${instances(ev, acct)} instances, want ${want}`);
      need(instances(ev, { name: roleName, body: role }) === want, `the role: ${instances(ev, { name: roleName, body: role })} instances, want ${want}`);
    });
  });

  check(`deployer policy: ${DEPLOYER_POLICY} allows what the REST API, its keys and plans, the logging role and the web ACL need`, () => {
    const doc = JSON.parse(fs.readFileSync(path.join(ROOT, DEPLOYER_POLICY), "utf8"));
    const statements = list(doc.Statement).filter((s) => s.Effect === "Allow");
    const allowedIn = (sts, action, arn) => sts.some((s) => list(s.Action).some((a) => globMatch(a, action)) &&
      list(s.Resource).some((r) => globMatch(r, arn)));
    const plain = statements.filter((s) => !s.Condition);
    const api = "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5";
    const stage = `${api}/stages/api`;
    const acl = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/taskhost/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9";
    const managed = "arn:aws:wafv2:eu-west-1:123456789012:regional/managedruleset/AWS/AWSManagedRulesCommonRuleSet";
    const wafLogs = "arn:aws:logs:eu-west-1:123456789012:log-group:aws-waf-logs-taskhost";
    const wanted = [["apigateway:POST", "arn:aws:apigateway:eu-west-1::/restapis"],
      ["apigateway:POST", "arn:aws:apigateway:eu-west-1::/usageplans"],
      ["apigateway:POST", "arn:aws:apigateway:eu-west-1::/apikeys"],
      ["apigateway:PATCH", "arn:aws:apigateway:eu-west-1::/account"],
      ["apigateway:GET", "arn:aws:apigateway:eu-west-1::/account"],
      ["apigateway:SetWebACL", stage]].concat(
      ["GET", "POST", "PUT", "PATCH", "DELETE"].flatMap((m) => [
        [`apigateway:${m}`, `${api}/resources/r0ot/methods/ANY`],
        [`apigateway:${m}`, `${api}/authorizers/xyz123`],
        [`apigateway:${m}`, `${api}/deployments/d3pl0y`],
        [`apigateway:${m}`, stage],
        [`apigateway:${m}`, `${api}/gatewayresponses/DEFAULT_4XX`],
        [`apigateway:${m}`, "arn:aws:apigateway:eu-west-1::/usageplans/p1an/keys/k3y"],
        [`apigateway:${m}`, "arn:aws:apigateway:eu-west-1::/apikeys/k3y"]]),
      ["CreateWebACL", "GetWebACL", "UpdateWebACL", "DeleteWebACL", "ListTagsForResource", "TagResource",
        "AssociateWebACL", "DisassociateWebACL", "GetWebACLForResource", "PutLoggingConfiguration",
        "GetLoggingConfiguration", "DeleteLoggingConfiguration"].map((a) => [`wafv2:${a}`, acl]),
      ["CreateWebACL", "UpdateWebACL"].map((a) => [`wafv2:${a}`, managed]),
      ["CreateLogGroup", "DeleteLogGroup", "PutRetentionPolicy", "ListTagsForResource", "TagResource"].map((a) => [`logs:${a}`, wafLogs]),
      ["CreateRole", "GetRole", "DeleteRole", "PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy"].map((a) =>
        [`iam:${a}`, "arn:aws:iam::123456789012:role/taskhost-apigw-logs-eu-west-1"]));
    const missing = wanted.filter(([a, r]) => !allowedIn(plain, a, r)).map(([a, r]) => `${a} on ${r}`);
    // The account setting passes the logging role to API Gateway, and to API Gateway only.
    const passToApiGateway = statements.filter((s) => s.Condition && s.Condition.StringEquals &&
      s.Condition.StringEquals["iam:PassedToService"] === "apigateway.amazonaws.com");
    if (!allowedIn(passToApiGateway, "iam:PassRole", "arn:aws:iam::123456789012:role/taskhost-apigw-logs-eu-west-1"))
      missing.push("iam:PassRole of the logging role, conditioned on iam:PassedToService apigateway.amazonaws.com");
    if (plain.some((s) => list(s.Action).some((a) => globMatch(a, "iam:PassRole"))))
      missing.push("(iam:PassRole is also allowed without a iam:PassedToService condition)");
    need(missing.length === 0, `not allowed: ${missing.join("; ")}`);
  });
}

// ------------------------------------------------------------------ monitoring (monitoring.tf)
//
// Every alarm and every dashboard widget must name a metric its service really publishes:
// the namespace, the metric name, a dimension set the service publishes it under (each value
// the right resource's name or id), and a statistic that means something for it. The table
// below is the AWS documentation's ("Lambda function metrics", "Monitor HTTP API metrics",
// "DynamoDB metrics and dimensions"); the runtime's own EMF metrics come from
// runtime/metrics.c itself. Alarms and the dashboard are judged by evaluating the root
// module's expressions (hcl_eval.js) with every variable at its default.

const SUM_STATS = ["Sum", "Average", "SampleCount", "Minimum", "Maximum"];
const TIME_STATS = ["Average", "Minimum", "Maximum", "SampleCount", "p50", "p90", "p95", "p99", "p99.9"];
const PCT = /^(p|tm|tc|ts|wm)\d{1,2}(\.\d+)?$/;
// namespace -> metric -> { dims: [[dimension names, sorted]], stats }
const PUBLISHED = {
  "AWS/Lambda": Object.fromEntries([
    ...["Invocations", "Errors", "Throttles"].map((m) => [m, { stats: ["Sum", "Average", "SampleCount"] }]),
    ["Duration", { stats: TIME_STATS }],
    ["ConcurrentExecutions", { stats: ["Maximum", "Average"] }],
  ].map(([m, v]) => [m, Object.assign({ dims: [["FunctionName"], ["ExecutedVersion", "FunctionName"], ["FunctionName", "Resource"]] }, v)])),
  // HTTP APIs (by ApiId) and REST APIs (by ApiName; 4XXError/5XXError instead of 4xx/5xx).
  "AWS/ApiGateway": (() => {
    const httpDims = [["ApiId"], ["ApiId", "Stage"], ["ApiId", "Route", "Stage"]];
    const restDims = [["ApiName"], ["ApiName", "Stage"], ["ApiName", "Method", "Resource", "Stage"]];
    const counted = ["Sum", "Average", "SampleCount"];
    return {
      Count: { dims: httpDims.concat(restDims), stats: counted },
      "4xx": { dims: httpDims, stats: counted },
      "5xx": { dims: httpDims, stats: counted },
      DataProcessed: { dims: httpDims, stats: counted },
      "4XXError": { dims: restDims, stats: counted },
      "5XXError": { dims: restDims, stats: counted },
      Latency: { dims: httpDims.concat(restDims), stats: TIME_STATS },
      IntegrationLatency: { dims: httpDims.concat(restDims), stats: TIME_STATS },
    };
  })(),
  "AWS/DynamoDB": {
    ConsumedReadCapacityUnits: { dims: [["TableName"], ["GlobalSecondaryIndexName", "TableName"]], stats: SUM_STATS },
    ConsumedWriteCapacityUnits: { dims: [["TableName"], ["GlobalSecondaryIndexName", "TableName"]], stats: SUM_STATS },
    ReadThrottleEvents: { dims: [["TableName"], ["GlobalSecondaryIndexName", "TableName"]], stats: ["Sum", "SampleCount"] },
    WriteThrottleEvents: { dims: [["TableName"], ["GlobalSecondaryIndexName", "TableName"]], stats: ["Sum", "SampleCount"] },
    ThrottledRequests: { dims: [["Operation", "TableName"]], stats: ["Sum", "SampleCount"] },
    SuccessfulRequestLatency: { dims: [["Operation", "TableName"]], stats: TIME_STATS },
    SystemErrors: { dims: [["Operation", "TableName"]], stats: ["Sum", "SampleCount"] },
  },
};
const RUNTIME_METRICS = "runtime/metrics.c";
const ROUTES_LUA = "lua/routes.lua";
const OPERATIONS_DOC = "docs/operations.md";
const FIXED_OPERATIONS = ["Preflight", "MethodNotAllowed", "Unmatched"];

// The runtime's EMF metrics: the table `metrics[]` of runtime/metrics.c, rows
// {"Name", "Unit", per_operation}. Every metric is published by [Service]; per_operation ones
// by [Operation, Service] too.
function runtimeMetrics() {
  const file = path.join(ROOT, RUNTIME_METRICS);
  need(fs.existsSync(file), `${RUNTIME_METRICS} not found (the runtime's EMF metrics are read from it)`);
  const text = fs.readFileSync(file, "utf8");
  const table = /static const metric metrics\[\] = \{([\s\S]*?)\n\};/.exec(text);
  need(table, `no "static const metric metrics[] = {...};" table in ${RUNTIME_METRICS}`);
  const out = {};
  for (const m of table[1].matchAll(/\{\s*"([^"]+)"\s*,\s*"([^"]+)"\s*,\s*([01])\s*\}/g)) {
    out[m[1]] = {
      dims: m[3] === "1" ? [["Service"], ["Operation", "Service"]] : [["Service"]],
      stats: m[2] === "Milliseconds" ? TIME_STATS : ["Sum", "Average", "SampleCount", "Maximum"],
    };
  }
  need(Object.keys(out).length > 0, `no metric rows in ${RUNTIME_METRICS}'s table`);
  return out;
}

// The Operation dimension's values: the route names lua/routes.lua gives (names = { GET =
// "ListTasks", ... }) and the runtime's fixed ones.
function routeOperations() {
  const file = path.join(ROOT, ROUTES_LUA);
  need(fs.existsSync(file), `${ROUTES_LUA} not found (the Operation values are read from it)`);
  const ops = new Set(FIXED_OPERATIONS);
  for (const names of fs.readFileSync(file, "utf8").matchAll(/names\s*=\s*\{([^}]*)\}/g)) {
    for (const m of names[1].matchAll(/=\s*"([A-Za-z0-9]+)"/g)) ops.add(m[1]);
  }
  return ops;
}

// Run once per var.api_type (every other variable at its default): the API's metrics are an
// HTTP API's (by ApiId) or a REST API's (by ApiName), and a reference to the other type's
// resources is a plan failure (their count is 0).
function monitoringChecks(modules, root, fn, apiType) {
  const check = (name, f) => checkAt(`${name} [api_type = ${apiType}]`, f);
  const locals = Object.assign({}, ...root.locals);
  const defaults = {};
  for (const [name, bodies] of Object.entries(root.variable)) defaults[name] = bodies[0].default === undefined ? null : bodies[0].default;
  defaults.api_type = apiType;
  const ev = new Evaluator({ locals, vars: defaults, countOf: (addr) => countOfIn(root, ev, addr) });
  const alarms = all(root, "resource", "aws_cloudwatch_metric_alarm");
  const topics = all(root, "resource", "aws_sns_topic");
  const isRef = (v, re) => v && typeof v.ref === "string" && re.test(v.ref);
  const defined = (type, name) => Boolean((root.resource[type] || {})[name]);
  // v is <type>.<name>[0].<attr> (or without [0]) of a resource of the root module.
  const refTo = (v, type, attr) => {
    const m = isRef(v, /./) && new RegExp(`^${type}\\.([A-Za-z0-9_-]+)(\\[0\\])?\\.${attr}$`).exec(v.ref);
    return Boolean(m && defined(type, m[1]));
  };
  const api5xx = apiType === "rest" ? "5XXError" : "5xx";
  const api4xx = apiType === "rest" ? "4XXError" : "4xx";

  // The function's name as the modules give it: module.<m>.function_name, where module m is
  // the function's module and its output function_name is the function's own.
  function isFunctionName(v) {
    const m = isRef(v, /^module\.[A-Za-z0-9_-]+\.function_name$/) && /^module\.([A-Za-z0-9_-]+)\./.exec(v.ref);
    if (m) {
      const call = callersOf(modules, fn.mod).find((c) => c.parent === root && c.name === m[1]);
      const out = fn.mod.output.function_name;
      return Boolean(call && out && expr(out[0].value) === `aws_lambda_function.${fn.name}.function_name`);
    }
    const r = isRef(v, /^aws_lambda_function\.([A-Za-z0-9_-]+)\.function_name$/);
    return Boolean(r && fn.mod === root);
  }
  // The namespace the runtime writes to: var.metrics_namespace, which the function gets as
  // TASKHOST_METRICS_NAMESPACE.
  function emfNamespace(v) {
    return isRef(v, /^var\.metrics_namespace$/) || v === defaults.metrics_namespace;
  }
  let emf = null;
  let ops = null;
  // Problems with one metric reference (namespace, name, dims {name: evaluated value}, stat).
  function metricProblems(where, ns, name, dims, stat) {
    const bad = [];
    let table;
    if (emfNamespace(ns)) {
      emf = emf || runtimeMetrics();
      table = emf;
    } else if (typeof ns === "string" && PUBLISHED[ns]) {
      table = PUBLISHED[ns];
    } else {
      return [`${where}: namespace ${show(ns)} is not one of ${Object.keys(PUBLISHED).join(", ")} or var.metrics_namespace`];
    }
    const spec = table[name];
    if (!spec) return [`${where}: ${show(ns)} publishes no metric ${show(name)}`];
    const keys = Object.keys(dims || {}).sort();
    if (!spec.dims.some((d) => JSON.stringify(d) === JSON.stringify(keys))) {
      bad.push(`${where}: ${name} is not published by dimensions [${keys.join(", ")}] (only ${spec.dims.map((d) => `[${d.join(", ")}]`).join(", ")})`);
    }
    for (const [k, v] of Object.entries(dims || {})) {
      let ok;
      if (k === "FunctionName" || k === "Service") ok = isFunctionName(v);
      else if (k === "ApiId") ok = apiType === "http" && refTo(v, "aws_apigatewayv2_api", "id");
      else if (k === "ApiName") ok = apiType === "rest" && refTo(v, "aws_api_gateway_rest_api", "name");
      else if (k === "Stage") ok = apiType === "http" ? refTo(v, "aws_apigatewayv2_stage", "name") : refTo(v, "aws_api_gateway_stage", "stage_name");
      else if (k === "TableName") ok = isRef(v, /^aws_dynamodb_table\.([A-Za-z0-9_-]+)\.name$/) && defined("aws_dynamodb_table", v.ref.split(".")[1]);
      else if (k === "Operation" && ns === "AWS/DynamoDB") ok = typeof v === "string" && runtimeOperations().ops.has(v);
      else if (k === "Operation") ok = typeof v === "string" && (ops = ops || routeOperations()).has(v);
      else ok = false;
      if (!ok) bad.push(`${where}: dimension ${k} = ${show(v)} is not ${k === "Operation" ? "an operation the runtime names" : `the ${k} of this stack's resource`}`);
    }
    if (stat !== undefined && !(spec.stats.includes(stat) || (PCT.test(String(stat)) && spec.stats === TIME_STATS))) {
      bad.push(`${where}: statistic ${show(stat)} is not a meaningful one for ${name} (${spec.stats.join(", ")}${spec.stats === TIME_STATS ? ", percentiles" : ""})`);
    }
    return bad;
  }

  // Each alarm's metric references: [{ where, ns, name, dims, stat }], evaluated.
  function alarmMetrics(a) {
    const b = a.body;
    const refs = [];
    if (b.metric_name !== undefined) {
      const stat = b.extended_statistic !== undefined ? ev.attr(b.extended_statistic) : ev.attr(b.statistic);
      refs.push({ where: `alarm ${a.name}`, ns: ev.attr(b.namespace), name: ev.attr(b.metric_name),
        dims: ev.attr(b.dimensions) || {}, stat });
    }
    for (const q of blocks(b, "metric_query")) {
      for (const m of blocks(q, "metric")) {
        refs.push({ where: `alarm ${a.name} (query ${q.id})`, ns: ev.attr(m.namespace), name: ev.attr(m.metric_name),
          dims: ev.attr(m.dimensions) || {}, stat: ev.attr(m.stat) });
      }
    }
    return refs;
  }

  check("monitoring: an SNS topic for the alarms, and an e-mail subscription exactly when var.alarm_email is set", () => {
    need(topics.length === 1, `expected one aws_sns_topic in the root module, found ${topics.length}`);
    const v = (root.variable.alarm_email || [])[0];
    need(v && v.default === null && v.type === "${string}", "variable alarm_email (string, default null) is missing");
    const subs = all(root, "resource", "aws_sns_topic_subscription");
    need(subs.length === 1, `expected one aws_sns_topic_subscription, found ${subs.length}`);
    const s = subs[0].body;
    need(expr(s.topic_arn) === `aws_sns_topic.${topics[0].name}.arn`, `the subscription's topic is ${JSON.stringify(s.topic_arn)}`);
    need(s.protocol === "email" && expr(s.endpoint) === "var.alarm_email", "the subscription is not protocol email to var.alarm_email");
    for (const [mail, want] of [[null, 0], ["ops@example.com", 1]]) {
      const n = new Evaluator({ locals, vars: Object.assign({}, defaults, { alarm_email: mail }), countOf: () => undefined }).attr(s.count);
      need(n === want, `with alarm_email = ${JSON.stringify(mail)} the subscription's count is ${show(n)}, not ${want}`);
    }
  });

  check("monitoring: every alarm's metric is one its service publishes (namespace, name, dimensions and their values, statistic)", () => {
    need(alarms.length > 0, "no aws_cloudwatch_metric_alarm");
    const bad = [];
    for (const a of alarms) {
      const refs = alarmMetrics(a);
      if (refs.length === 0) bad.push(`alarm ${a.name}: no metric_name and no metric_query metric`);
      for (const r of refs) bad.push(...metricProblems(r.where, r.ns, r.name, r.dims, r.stat));
      const qs = blocks(a.body, "metric_query");
      if (qs.length) {
        const ids = new Set(qs.map((q) => q.id));
        if (qs.filter((q) => q.return_data === true).length !== 1) bad.push(`alarm ${a.name}: not exactly one metric_query with return_data = true`);
        for (const q of qs.filter((x) => x.expression !== undefined)) {
          for (const id of String(q.expression).match(/\b[a-z][A-Za-z0-9_]*\b/g) || []) {
            if (!ids.has(id)) bad.push(`alarm ${a.name}: expression ${JSON.stringify(q.expression)} names ${id}, no query of this alarm`);
          }
        }
      }
    }
    need(bad.length === 0, bad.join("; "));
  });

  check("monitoring: the function's TASKHOST_METRICS_NAMESPACE is var.metrics_namespace, the namespace the EMF alarms and widgets read", () => {
    need(root.variable.metrics_namespace, "no variable metrics_namespace");
    const envs = callersOf(modules, fn.mod).map((c) => c.body.environment)
      .concat([first(first(fn.body, "environment"), "variables")]);
    const found = envs.some((e) => e && typeof e === "object" && e.TASKHOST_METRICS_NAMESPACE === "${var.metrics_namespace}");
    need(found, "TASKHOST_METRICS_NAMESPACE = var.metrics_namespace is not in the function's environment");
  });

  check("monitoring: every alarm notifies the topic on ALARM and OK, and chooses treat_missing_data", () => {
    const bad = [];
    const topicArn = `aws_sns_topic.${topics[0] && topics[0].name}.arn`;
    for (const a of alarms) {
      for (const k of ["alarm_actions", "ok_actions"]) {
        const v = ev.attr(a.body[k]);
        if (!Array.isArray(v) || !v.some((x) => isRef(x, new RegExp(`^${topicArn.replace(/\./g, "\\.")}$`)))) bad.push(`${a.name}: ${k} lacks ${topicArn}`);
      }
      const t = a.body.treat_missing_data;
      if (!["missing", "ignore", "breaching", "notBreaching"].includes(t)) bad.push(`${a.name}: treat_missing_data ${JSON.stringify(t)} (set it on purpose)`);
      if (!["GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"].includes(a.body.comparison_operator)) {
        bad.push(`${a.name}: comparison_operator ${JSON.stringify(a.body.comparison_operator)}`);
      }
    }
    need(bad.length === 0, bad.join("; "));
  });

  check("monitoring: the alarms the runbook describes exist, each named in docs/operations.md", () => {
    const wanted = [
      ["Lambda errors", (r) => r.ns === "AWS/Lambda" && r.name === "Errors"],
      ["Lambda throttles", (r) => r.ns === "AWS/Lambda" && r.name === "Throttles"],
      ["Lambda duration near the timeout", (r) => r.ns === "AWS/Lambda" && r.name === "Duration"],
      [`API ${api5xx}`, (r) => r.ns === "AWS/ApiGateway" && r.name === api5xx],
      ["DynamoDB throttles", (r) => r.ns === "AWS/DynamoDB" && /Throttle/.test(r.name)],
      ["runtime 5xx (EMF)", (r) => emfNamespace(r.ns) && r.name === "5xx"],
      ["runtime store retries (EMF)", (r) => emfNamespace(r.ns) && r.name === "StoreRetries"],
    ];
    const refs = alarms.map((a) => ({ a, refs: alarmMetrics(a) }));
    const missing = wanted.filter(([, f]) => !refs.some((x) => x.refs.some(f))).map(([n]) => n);
    need(missing.length === 0, `no alarm on: ${missing.join(", ")}`);
    const doc = path.join(ROOT, OPERATIONS_DOC);
    need(fs.existsSync(doc), `${OPERATIONS_DOC} not found (each alarm's runbook)`);
    const text = fs.readFileSync(doc, "utf8");
    const undocumented = alarms.map((a) => ev.attr(a.body.alarm_name)).map((n) => (typeof n === "string" ? n : show(n)))
      .filter((n) => !text.includes(n.replace(/^taskhost-/, "<name>-")) && !text.includes(n));
    need(undocumented.length === 0, `not in ${OPERATIONS_DOC}: ${undocumented.join(", ")}`);
  });

  check("monitoring: the duration alarm fires before the function's timeout", () => {
    const d = alarms.filter((a) => alarmMetrics(a).some((r) => r.ns === "AWS/Lambda" && r.name === "Duration"));
    need(d.length >= 1, "no alarm on AWS/Lambda Duration");
    for (const a of d) {
      const t = ev.attr(a.body.threshold);
      const limit = defaults.timeout * 1000;
      need(typeof t === "number" && t < limit && t >= limit / 2,
        `${a.name}: threshold ${show(t)} ms is not within [50%, 100%) of the timeout (${limit} ms with timeout = ${defaults.timeout})`);
      need(/^GreaterThan/.test(a.body.comparison_operator), `${a.name}: comparison ${a.body.comparison_operator}`);
    }
  });

  // The dashboard's widgets, evaluated.
  const dashboards = all(root, "resource", "aws_cloudwatch_dashboard");
  function widgets() {
    need(dashboards.length === 1, `expected one aws_cloudwatch_dashboard, found ${dashboards.length}`);
    const body = ev.attr(dashboards[0].body.dashboard_body);
    need(body && Array.isArray(body.widgets) && body.widgets.length > 0,
      `dashboard_body is ${typeof body === "string" ? "a string" : show(body)}: expected jsonencode({ widgets = [...] })`);
    return body.widgets;
  }
  // Every metric row of the metric widgets: { where, ns, name, dims, stat }.
  function widgetMetrics() {
    const out = [];
    widgets().forEach((w, i) => {
      if (w.type !== "metric") return;
      const p = w.properties || {};
      const title = `widget ${i} (${p.title || "untitled"})`;
      need(p.region !== undefined, `${title}: no region`);
      need(Array.isArray(p.metrics) && p.metrics.length > 0, `${title}: no metrics`);
      for (const row of p.metrics) {
        need(Array.isArray(row) && row.length >= 2, `${title}: metric row ${show(row)}`);
        const opts = row.length % 2 === 1 && row[row.length - 1] && typeof row[row.length - 1] === "object" && !row[row.length - 1].ref
          ? row[row.length - 1] : {};
        const parts = opts === row[row.length - 1] ? row.slice(0, -1) : row;
        if (opts.expression !== undefined) continue; // metric math: rows it uses are checked themselves
        need(parts.length % 2 === 0, `${title}: metric row ${show(row)} is not [namespace, name, dim, value, ...]`);
        need(!parts.includes("."), `${title}: the "." shorthand in ${show(row)} (write every row out in full)`);
        const dims = {};
        for (let k = 2; k < parts.length; k += 2) dims[parts[k]] = parts[k + 1];
        out.push({ where: `${title}`, ns: parts[0], name: parts[1], dims, stat: opts.stat !== undefined ? opts.stat : p.stat });
      }
    });
    return out;
  }

  check("monitoring: every dashboard metric is one its service publishes (namespace, name, dimensions and their values, statistic)", () => {
    const rows = widgetMetrics();
    const bad = [];
    for (const r of rows) {
      if (r.stat === undefined) bad.push(`${r.where}: ${r.name} has no stat`);
      bad.push(...metricProblems(r.where, r.ns, r.name, r.dims, r.stat));
    }
    need(bad.length === 0, bad.join("; "));
    return { note: `${rows.length} metrics in ${widgets().length} widgets` };
  });

  check("monitoring: the dashboard shows requests, 4xx/5xx, latency p50/p99 at the API and in the function, cold starts, concurrency, DynamoDB capacity and throttles", () => {
    const rows = widgetMetrics();
    const has = (f) => rows.some(f);
    const wanted = [
      ["API requests (Count)", (r) => r.ns === "AWS/ApiGateway" && r.name === "Count"],
      [`API ${api4xx}`, (r) => r.ns === "AWS/ApiGateway" && r.name === api4xx],
      [`API ${api5xx}`, (r) => r.ns === "AWS/ApiGateway" && r.name === api5xx],
      ["API latency p50", (r) => r.ns === "AWS/ApiGateway" && r.name === "Latency" && r.stat === "p50"],
      ["API latency p99", (r) => r.ns === "AWS/ApiGateway" && r.name === "Latency" && r.stat === "p99"],
      ["function latency p50", (r) => ((emfNamespace(r.ns) && r.name === "Latency") || (r.ns === "AWS/Lambda" && r.name === "Duration")) && r.stat === "p50"],
      ["function latency p99", (r) => ((emfNamespace(r.ns) && r.name === "Latency") || (r.ns === "AWS/Lambda" && r.name === "Duration")) && r.stat === "p99"],
      ["cold starts", (r) => emfNamespace(r.ns) && r.name === "ColdStart"],
      ["Lambda concurrency", (r) => r.ns === "AWS/Lambda" && r.name === "ConcurrentExecutions"],
      ["DynamoDB consumed read capacity", (r) => r.ns === "AWS/DynamoDB" && r.name === "ConsumedReadCapacityUnits"],
      ["DynamoDB consumed write capacity", (r) => r.ns === "AWS/DynamoDB" && r.name === "ConsumedWriteCapacityUnits"],
      ["DynamoDB throttles", (r) => r.ns === "AWS/DynamoDB" && /Throttle/.test(r.name)],
    ];
    const missing = wanted.filter(([, f]) => !has(f)).map(([n]) => n);
    need(missing.length === 0, `the dashboard lacks: ${missing.join(", ")}`);
  });

  check("outputs: dashboard_url opens this stack's dashboard", () => {
    const o = (root.output.dashboard_url || [])[0];
    need(o, "no output dashboard_url");
    need(dashboards.length === 1, `expected one aws_cloudwatch_dashboard, found ${dashboards.length}`);
    const v = String(o.value);
    need(v.includes(`\${aws_cloudwatch_dashboard.${dashboards[0].name}.dashboard_name}`) && /#dashboards:name=/.test(v) && /^https:\/\//.test(v),
      `dashboard_url is ${v}`);
  });

  check(`deployer policy: ${DEPLOYER_POLICY} allows what the alarm topic, the alarms and the dashboard need`, () => {
    const doc = JSON.parse(fs.readFileSync(path.join(ROOT, DEPLOYER_POLICY), "utf8"));
    const allows = list(doc.Statement).filter((s) => s.Effect === "Allow" && !s.Condition);
    const allowed = (action, arn) => allows.some((s) => list(s.Action).some((a) => globMatch(a, action)) &&
      list(s.Resource).some((r) => globMatch(r, arn)));
    const topic = "arn:aws:sns:eu-west-1:123456789012:taskhost-alarms";
    const alarm = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:taskhost-lambda-errors";
    const board = "arn:aws:cloudwatch::123456789012:dashboard/taskhost";
    const wanted = ["CreateTopic", "DeleteTopic", "GetTopicAttributes", "SetTopicAttributes", "ListTagsForResource",
      "TagResource", "Subscribe"].map((a) => [`sns:${a}`, topic]).concat(
      ["GetSubscriptionAttributes", "Unsubscribe"].map((a) => [`sns:${a}`, `${topic}:0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9`]),
      ["PutMetricAlarm", "DeleteAlarms", "DescribeAlarms", "ListTagsForResource", "TagResource"].map((a) => [`cloudwatch:${a}`, alarm]),
      ["PutDashboard", "GetDashboard", "DeleteDashboards"].map((a) => [`cloudwatch:${a}`, board]));
    const missing = wanted.filter(([a, r]) => !allowed(a, r)).map(([a, r]) => `${a} on ${r}`);
    need(missing.length === 0, `not allowed: ${missing.join("; ")}`);
  });
}

// ------------------------------------------------------------------------------ main

async function main() {
  if (!fs.existsSync(TF)) {
    report("terraform/ exists", `${rel(TF)} not found`);
    return;
  }
  const files = tfFiles(TF);
  const modulesByDir = new Map();
  const parsed = [];
  let parseFailures = 0;
  if (files.length === 0) report("terraform/ has .tf files", "none found");
  for (const f of files) {
    let json;
    try {
      json = await parseCached(f);
    } catch (e) {
      report(`parse ${rel(f)}`, String(e.message || e).replace(/\s+/g, " "));
      parseFailures++;
      continue;
    }
    report(`parse ${rel(f)}`, null);
    parsed.push(json);
    const dir = path.dirname(f);
    if (!modulesByDir.has(dir)) modulesByDir.set(dir, emptyModule(dir));
    mergeInto(modulesByDir.get(dir), json);
  }
  const modules = [...modulesByDir.values()];
  const root = modulesByDir.get(TF) || emptyModule(TF);

  // ---------------------------------------------------------------- versions
  check("versions: terraform >= 1.5 and the aws provider pinned to ~> 5.x", () => {
    const tf = root.terraform[0] || {};
    need(/^>=\s*1\.(5|[6-9]|\d\d)/.test(tf.required_version || ""),
      `required_version is ${JSON.stringify(tf.required_version)}`);
    const aws = (first(tf, "required_providers") || {}).aws || {};
    need(aws.source === "hashicorp/aws", `aws provider source is ${JSON.stringify(aws.source)}`);
    need(/^~>\s*5\.\d+/.test(aws.version || ""), `aws provider version is ${JSON.stringify(aws.version)}`);
  });

  // ---------------------------------------------------------------- the function
  const functions = everywhere(modules, "resource", "aws_lambda_function");
  const fn = functions[0];
  const fnNeeded = () => need(functions.length === 1,
    `expected exactly one aws_lambda_function, found ${functions.length}`);

  check("lambda: runtime is provided.al2023", () => {
    fnNeeded();
    need(fn.body.runtime === "provided.al2023", `runtime is ${JSON.stringify(fn.body.runtime)}`);
  });

  check(`lambda: handler is "bootstrap", the binary's name at the root of the zip ${PACKAGE_SCRIPT} writes`, () => {
    fnNeeded();
    need(fn.body.handler === "bootstrap", `handler is ${JSON.stringify(fn.body.handler)}`);
    const script = path.join(ROOT, PACKAGE_SCRIPT);
    need(fs.existsSync(script), `${PACKAGE_SCRIPT} not found (it writes the zip; until it lands ` +
      `the handler cannot be checked against it)`);
    // package.sh stages the zip's root in a directory and writes the binary as
    // "$stage/bootstrap": a file named like the handler, directly under a staging variable.
    const text = fs.readFileSync(script, "utf8").split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
    need(new RegExp(`\\$\\{?[A-Za-z_][A-Za-z0-9_]*\\}?/${fn.body.handler}\\b`).test(text),
      `${PACKAGE_SCRIPT} writes no file named "${fn.body.handler}" at its staging root ` +
      `(expected e.g. "$stage/bootstrap"), and provided.al2023 runs only that name`);
  });

  check(`lambda: package_path defaults to the zip ${PACKAGE_SCRIPT} writes for var.architecture`, () => {
    fnNeeded();
    const v = varDefault(root, "package_path");
    need(v === null, `root variable package_path defaults to ${JSON.stringify(v)}, not null ` +
      "(null: the zip of var.architecture)");
    const locals = Object.assign({}, ...root.locals);
    const m = /"([^"]*\/)?(taskhost-lambda-\$\{var\.architecture\}\.zip)"/.exec(String(locals.package_file || ""));
    need(m, `local.package_file is ${JSON.stringify(locals.package_file)}: no ` +
      '"../dist/taskhost-lambda-${var.architecture}.zip" default');
    need(/coalesce\(\s*var\.package_path\s*,/.test(String(locals.package_file)),
      "local.package_file does not take var.package_path first");
    need(path.resolve(TF, m[1] || ".") === path.join(ROOT, "dist"),
      `default ${m[1] || ""}${m[2]} is not dist/ seen from terraform/`);
    need(/\bpackage_file\b/.test(String(locals.package_path || "")),
      "local.package_path is not made from local.package_file");
    const script = path.join(ROOT, PACKAGE_SCRIPT);
    need(fs.existsSync(script), `${PACKAGE_SCRIPT} not found`);
    const text = fs.readFileSync(script, "utf8");
    need(text.includes("dist/taskhost-lambda-$arch.zip"),
      `${PACKAGE_SCRIPT} does not write dist/taskhost-lambda-$arch.zip`);
  });

  check("lambda: architectures = [var.architecture] (arm64 | x86_64), default = package.sh's --arch default", () => {
    fnNeeded();
    need(JSON.stringify(fn.body.architectures) === '["${var.architecture}"]',
      `architectures is ${JSON.stringify(fn.body.architectures)}, not [var.architecture]`);
    const vars = [fn.mod, root].map((m) => (m.variable.architecture || [])[0]);
    vars.forEach((body, i) => {
      const where = i === 0 ? rel(fn.mod.dir) : "terraform/";
      need(body, `${where}: no variable "architecture"`);
      const cond = String((first(body, "validation") || {}).condition || "");
      need(/"arm64"/.test(cond) && /"x86_64"/.test(cond) && /var\.architecture/.test(cond),
        `${where}: variable "architecture" has no validation naming "arm64" and "x86_64"`);
    });
    const dflt = varDefault(root, "architecture");
    need(dflt === "arm64", `root variable architecture defaults to ${JSON.stringify(dflt)}, not "arm64"`);
    if (fn.mod !== root) {
      const callers = callersOf(modules, fn.mod);
      need(callers.length > 0, `nothing calls ${rel(fn.mod.dir)}`);
      for (const c of callers) {
        need(c.body.architecture === "${var.architecture}",
          `module "${c.name}" gets architecture = ${JSON.stringify(c.body.architecture)}, not var.architecture`);
      }
    }
    const script = path.join(ROOT, PACKAGE_SCRIPT);
    need(fs.existsSync(script), `${PACKAGE_SCRIPT} not found`);
    const m = /^arch=([A-Za-z0-9_]+)$/m.exec(fs.readFileSync(script, "utf8"));
    need(m && m[1] === dflt, `${PACKAGE_SCRIPT}'s default --arch is ${m ? m[1] : "not set (arch=...)"}, ` +
      `Terraform's is ${dflt}: a plain package.sh + deploy would ship the wrong one`);
  });

  check("lambda: source_code_hash = filebase64sha256(filename)", () => {
    fnNeeded();
    const file = expr(fn.body.filename);
    need(file, `filename is ${JSON.stringify(fn.body.filename)}`);
    const hash = expr(fn.body.source_code_hash);
    need(hash, "source_code_hash is missing");
    need(hash.replace(/\s+/g, "") === `filebase64sha256(${file})`.replace(/\s+/g, ""),
      `source_code_hash is ${JSON.stringify(fn.body.source_code_hash)}`);
  });

  // TABLE_NAME: the function's environment, followed through module variables to the root.
  let tableResource = null;
  check("lambda: TABLE_NAME is the aws_dynamodb_table resource's name (no literal, set once)", () => {
    fnNeeded();
    const vars = first(fn.body, "environment") ? first(first(fn.body, "environment"), "variables") : undefined;
    need(vars !== undefined, "the function has no environment variables");
    let e;
    if (typeof vars === "object" && vars !== null) {
      need("TABLE_NAME" in vars, "no TABLE_NAME in the environment");
      e = expr(vars.TABLE_NAME);
      need(e, `TABLE_NAME is the literal ${JSON.stringify(vars.TABLE_NAME)}`);
    } else {
      const m = /\bTABLE_NAME\s*=\s*([A-Za-z0-9_.-]+)\s*[,}\n]/.exec(String(vars));
      need(m, `no TABLE_NAME = <reference> in ${JSON.stringify(vars)}`);
      e = m[1];
      // In merge(a, b, {TABLE_NAME = …}) the last argument wins: TABLE_NAME must be in it.
      const inner = expr(vars) || "";
      if (/^merge\(/.test(inner)) {
        const lastObj = inner.lastIndexOf("{");
        need(lastObj >= 0 && inner.indexOf("TABLE_NAME", lastObj) > lastObj,
          "TABLE_NAME is not in merge()'s last argument, so another map could override it");
      }
    }
    const targets = resolve(modules, fn.mod, e);
    for (const t of targets) {
      const m = /^aws_dynamodb_table\.([A-Za-z0-9_-]+)\.name$/.exec(t.expr);
      need(m, `TABLE_NAME = ${e} resolves to ${t.expr} in ${rel(t.mod.dir)}, not aws_dynamodb_table.<x>.name`);
      need(all(t.mod, "resource", "aws_dynamodb_table").some((r) => r.name === m[1]),
        `aws_dynamodb_table.${m[1]} is not defined in ${rel(t.mod.dir)}`);
      tableResource = { mod: t.mod, name: m[1] };
    }
    let count = 0;
    const walk = (v) => {
      if (typeof v === "string") count += (v.match(/\bTABLE_NAME"?\s*=[^=]/g) || []).length;
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        for (const [k, x] of Object.entries(v)) {
          if (k === "TABLE_NAME") count++;
          walk(x);
        }
      }
    };
    parsed.forEach(walk);
    need(count === 1, `TABLE_NAME is assigned ${count} times in terraform/ (once expected)`);
  });

  check("lambda: TASKHOST_STORE is \"dynamodb\" (no silent SQLite fallback without TABLE_NAME)", () => {
    fnNeeded();
    const vars = first(first(fn.body, "environment"), "variables");
    const v = typeof vars === "object" && vars !== null ? vars.TASKHOST_STORE
      : (/\bTASKHOST_STORE\s*=\s*"([^"]*)"/.exec(String(vars)) || [])[1];
    need(v === "dynamodb", `TASKHOST_STORE is ${JSON.stringify(v)}`);
  });

  // ---------------------------------------------------------------- the table
  const tables = everywhere(modules, "resource", "aws_dynamodb_table");
  const table = () => {
    need(tables.length === 1, `expected exactly one aws_dynamodb_table, found ${tables.length}`);
    return tables[0].body;
  };
  check("dynamodb: billing_mode is PAY_PER_REQUEST", () => {
    const t = table();
    need(t.billing_mode === "PAY_PER_REQUEST", `billing_mode is ${JSON.stringify(t.billing_mode)}`);
  });
  check("dynamodb: partition key user_id (S), sort key id (S): each owner's tasks in one partition", () => {
    const t = table();
    need(t.hash_key === "user_id", `hash_key is ${JSON.stringify(t.hash_key)}`);
    need(t.range_key === "id", `range_key is ${JSON.stringify(t.range_key)}`);
    const attrs = blocks(t, "attribute").map((a) => `${a.name} ${a.type}`).sort();
    need(JSON.stringify(attrs) === '["id S","user_id S"]',
      `attributes are ${JSON.stringify(attrs)} (exactly user_id S and id S: DynamoDB refuses an attribute that is no key)`);
  });
  check("dynamodb: the table is not named <name>-tasks, the name of the table keyed id alone that an upgrade keeps", () => {
    const n = String(table().name);
    need(!/^\$\{var\.name\}-tasks$/.test(n) && n !== "taskhost-tasks",
      `the table is named ${JSON.stringify(n)}: creating it beside the old one (README "Upgrading") would fail`);
  });
  check("dynamodb: point-in-time recovery enabled", () => {
    const p = first(table(), "point_in_time_recovery");
    need(p && p.enabled === true, `point_in_time_recovery is ${JSON.stringify(p)}`);
  });
  check("dynamodb: TTL on expires_at (idempotency records; the runtime also checks the time)", () => {
    const t = first(table(), "ttl");
    need(t && t.enabled === true && t.attribute_name === "expires_at",
      `ttl is ${JSON.stringify(t)}`);
  });
  check("dynamodb: server-side encryption enabled", () => {
    const s = first(table(), "server_side_encryption");
    need(s && s.enabled === true, `server_side_encryption is ${JSON.stringify(s)}`);
  });
  check("dynamodb: deletion_protection_enabled = var.deletion_protection (default true)", () => {
    const t = table();
    need(expr(t.deletion_protection_enabled) === "var.deletion_protection",
      `deletion_protection_enabled is ${JSON.stringify(t.deletion_protection_enabled)}`);
    const v = varDefault(root, "deletion_protection");
    need(v === true, `variable deletion_protection defaults to ${JSON.stringify(v)}`);
  });

  // ---------------------------------------------------------------- IAM
  // The REST API's logging role (rest.tf: the role aws_api_gateway_account names, its trust
  // policy and its inline policy) is judged by restChecks; the IAM checks below are about the
  // function's role and see every other document and role.
  const docOf = (e) => (/^data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)(\[0\])?\.json$/.exec(e || "") || [])[1];
  const apigwRoles = new Set(everywhere(modules, "resource", "aws_api_gateway_account")
    .map((a) => (/^aws_iam_role\.([A-Za-z0-9_-]+)(\[0\])?\.arn$/.exec(expr(a.body.cloudwatch_role_arn) || "") || [])[1])
    .filter(Boolean));
  const apigwDocs = new Set();
  for (const r of all(root, "resource", "aws_iam_role")) {
    if (apigwRoles.has(r.name)) apigwDocs.add(docOf(expr(r.body.assume_role_policy)));
  }
  for (const r of all(root, "resource", "aws_iam_role_policy")) {
    const role = (/^aws_iam_role\.([A-Za-z0-9_-]+)(\[0\])?\.id$/.exec(expr(r.body.role) || "") || [])[1];
    if (apigwRoles.has(role)) apigwDocs.add(docOf(expr(r.body.policy)));
  }
  const fnRoles = (rs) => rs.filter((r) => !(r.mod === root && apigwRoles.has(r.name)));
  const docs = everywhere(modules, "data", "aws_iam_policy_document").filter((d) => !(d.mod === root && apigwDocs.has(d.name)));
  const statements = docs.flatMap(statementsOf);

  check("iam: DynamoDB actions are exactly the operations runtime/*dynamodb*.c sends", () => {
    const { ops, actions, files: sources } = runtimeOperations();
    const wanted = new Set([...actions].map((o) => `dynamodb:${o}`));
    const granted = new Set(statements.flatMap(({ s }) => list(s.actions))
      .filter((a) => typeof a === "string" && /^dynamodb:/i.test(a)));
    const missing = setDiff(wanted, granted);
    const extra = setDiff(granted, wanted);
    need(missing.length + extra.length === 0,
      (missing.length ? `the runtime sends but the role may not: ${missing.join(", ")}` : "") +
      (missing.length && extra.length ? "; " : "") +
      (extra.length ? `the role may but the runtime never sends: ${extra.join(", ")}` : ""));
    return { note: `${[...ops].sort().join(", ")} from ${sources.join(", ")}` };
  });

  check("iam: the DynamoDB statements' only resource is the table's ARN", () => {
    const ddb = statements.filter(({ s }) => list(s.actions).some((a) => /^dynamodb:/i.test(a)));
    need(ddb.length > 0, "no statement grants a dynamodb: action");
    for (const { doc, s } of ddb) {
      const res = list(s.resources);
      need(res.length === 1, `${doc.name}: resources are ${JSON.stringify(res)}`);
      const e = expr(res[0]);
      need(e, `${doc.name}: resource is the literal ${JSON.stringify(res[0])}`);
      for (const t of resolve(modules, doc.mod, e)) {
        const m = /^aws_dynamodb_table\.([A-Za-z0-9_-]+)\.arn$/.exec(t.expr);
        need(m, `${doc.name}: resource ${e} resolves to ${t.expr}, not aws_dynamodb_table.<x>.arn`);
        need(!tableResource || tableResource.name === m[1],
          `the policy names aws_dynamodb_table.${m[1]} but TABLE_NAME is aws_dynamodb_table.${tableResource && tableResource.name}`);
      }
    }
  });

  check("iam: no \"*\" in any action or resource (X-Ray's statement aside)", () => {
    need(statements.length > 0, "no aws_iam_policy_document statement found");
    const bad = [];
    for (const { doc, s } of statements) {
      const actions = list(s.actions);
      if (s.not_actions || s.not_resources) bad.push(`${doc.name}: not_actions/not_resources`);
      const xray = actions.length > 0 && actions.every((a) => /^xray:[A-Za-z]+$/.test(a));
      for (const a of actions) if (String(a).includes("*")) bad.push(`${doc.name}: action ${a}`);
      for (const r of list(s.resources)) {
        if (!String(r).includes("*")) continue;
        if (xray) continue; // X-Ray's write actions have no resource-level permissions
        // The log streams of one log group: "${aws_cloudwatch_log_group.x.arn}:*".
        if (/^\$\{aws_cloudwatch_log_group\.[A-Za-z0-9_-]+\.arn\}:\*$/.test(r)) continue;
        bad.push(`${doc.name}: resource ${r}`);
      }
    }
    need(bad.length === 0, bad.join("; "));
  });

  check("iam: X-Ray's statement exists only when var.enable_tracing", () => {
    for (const { doc, s, guard } of statements) {
      if (!list(s.actions).some((a) => /^xray:/.test(a))) continue;
      need(guard && /var\.enable_tracing/.test(String(guard)),
        `${doc.name}: the xray statement is not a dynamic block guarded by var.enable_tracing`);
    }
  });

  check("iam: log writes are CreateLogStream + PutLogEvents on the function's own log group", () => {
    fnNeeded();
    const logs = statements.filter(({ s }) => list(s.actions).some((a) => /^logs:/i.test(a)));
    need(logs.length === 1, `expected one statement with logs: actions, found ${logs.length}`);
    const { s } = logs[0];
    const acts = list(s.actions).slice().sort();
    need(JSON.stringify(acts) === '["logs:CreateLogStream","logs:PutLogEvents"]',
      `actions are ${JSON.stringify(acts)}`);
    const res = list(s.resources);
    const m = res.length === 1 && /^\$\{aws_cloudwatch_log_group\.([A-Za-z0-9_-]+)\.arn\}:\*$/.exec(res[0]);
    need(m, `resources are ${JSON.stringify(res)}`);
    const group = all(fn.mod, "resource", "aws_cloudwatch_log_group").find((g) => g.name === m[1]);
    need(group, `aws_cloudwatch_log_group.${m[1]} is not in the function's module`);
    const fname = expr(fn.body.function_name);
    need(group.body.name === `/aws/lambda/\${${fname}}`,
      `the log group is ${JSON.stringify(group.body.name)}, not /aws/lambda/<function_name>`);
  });

  check("iam: policies are aws_iam_policy_document data sources; no managed policy attachments", () => {
    const bad = [];
    for (const type of ["aws_iam_role_policy_attachment", "aws_iam_policy_attachment",
      "aws_iam_role_policies_exclusive", "aws_iam_role_policy_attachments_exclusive"]) {
      for (const r of everywhere(modules, "resource", type)) bad.push(`${type}.${r.name}`);
    }
    for (const r of everywhere(modules, "resource", "aws_iam_role")) {
      if (r.body.managed_policy_arns !== undefined) bad.push(`aws_iam_role.${r.name}.managed_policy_arns`);
      if (r.body.inline_policy !== undefined) bad.push(`aws_iam_role.${r.name}.inline_policy`);
      if (!docOf(expr(r.body.assume_role_policy))) {
        bad.push(`aws_iam_role.${r.name}.assume_role_policy`);
      }
    }
    for (const type of ["aws_iam_role_policy", "aws_iam_policy"]) {
      for (const r of everywhere(modules, "resource", type)) {
        if (!docOf(expr(r.body.policy))) {
          bad.push(`${type}.${r.name}.policy is not a data.aws_iam_policy_document`);
        }
      }
    }
    need(bad.length === 0, bad.join("; "));
  });

  check("iam: the role is assumed by lambda.amazonaws.com only", () => {
    const roles = fnRoles(everywhere(modules, "resource", "aws_iam_role"));
    need(roles.length === 1, `expected one aws_iam_role (the REST API's logging role aside), found ${roles.length}`);
    const docName = /^data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json$/.exec(expr(roles[0].body.assume_role_policy) || "");
    need(docName, "assume_role_policy is not a data.aws_iam_policy_document");
    const doc = all(roles[0].mod, "data", "aws_iam_policy_document").find((d) => d.name === docName[1]);
    need(doc, `data.aws_iam_policy_document.${docName[1]} not found`);
    for (const { s } of statementsOf(doc)) {
      need(JSON.stringify(list(s.actions)) === '["sts:AssumeRole"]', `actions ${JSON.stringify(s.actions)}`);
      for (const p of blocks(s, "principals")) {
        need(p.type === "Service" && JSON.stringify(list(p.identifiers)) === '["lambda.amazonaws.com"]',
          `principal ${JSON.stringify(p)}`);
      }
    }
    const fnRole = expr(fn && fn.body.role);
    need(fnRole === `aws_iam_role.${roles[0].name}.arn`, `the function's role is ${JSON.stringify(fn && fn.body.role)}`);
  });

  // ---------------------------------------------------------------- logs
  check("logs: every log group has a retention CloudWatch accepts", () => {
    const groups = everywhere(modules, "resource", "aws_cloudwatch_log_group");
    need(groups.length >= 2, `expected the function's and the access log's groups, found ${groups.length}`);
    for (const g of groups) {
      const r = g.body.retention_in_days;
      need(r !== undefined, `aws_cloudwatch_log_group.${g.name} has no retention_in_days`);
      const e = expr(r);
      if (e === null) {
        need(RETENTION_DAYS.includes(r), `aws_cloudwatch_log_group.${g.name} retention ${r}`);
        continue;
      }
      for (const t of resolve(modules, g.mod, e)) {
        const v = /^var\.([A-Za-z0-9_-]+)$/.exec(t.expr);
        need(v, `aws_cloudwatch_log_group.${g.name} retention is ${t.expr}`);
        const d = varDefault(t.mod, v[1]);
        need(RETENTION_DAYS.includes(d), `variable ${v[1]} defaults to ${JSON.stringify(d)}, not an allowed retention`);
        need((t.mod.variable[v[1]] || [{}])[0].validation,
          `variable ${v[1]} has no validation of the allowed retention values`);
      }
    }
  });

  check("lambda: JSON logs into the Terraform-created log group, created first (depends_on)", () => {
    fnNeeded();
    const lc = first(fn.body, "logging_config");
    need(lc, "no logging_config block");
    need(lc.log_format === "JSON", `log_format is ${JSON.stringify(lc.log_format)}`);
    const m = /^aws_cloudwatch_log_group\.([A-Za-z0-9_-]+)\.name$/.exec(expr(lc.log_group) || "");
    need(m, `log_group is ${JSON.stringify(lc.log_group)}`);
    const deps = list(fn.body.depends_on).map((d) => expr(d) || d);
    need(deps.includes(`aws_cloudwatch_log_group.${m[1]}`),
      `depends_on ${JSON.stringify(deps)} lacks aws_cloudwatch_log_group.${m[1]}`);
  });

  // ---------------------------------------------------------------- API Gateway
  const integrations = everywhere(modules, "resource", "aws_apigatewayv2_integration");
  check("api: integration is AWS_PROXY, POST, payload_format_version \"2.0\" set explicitly", () => {
    need(integrations.length >= 1, "no aws_apigatewayv2_integration");
    for (const { name, body } of integrations) {
      need(body.integration_type === "AWS_PROXY", `${name}: integration_type ${JSON.stringify(body.integration_type)}`);
      need(body.integration_method === "POST", `${name}: integration_method ${JSON.stringify(body.integration_method)}`);
      need(body.payload_format_version === "2.0",
        `${name}: payload_format_version ${JSON.stringify(body.payload_format_version)}`);
      need(/\.(invoke_arn|function_arn|arn)$/.test(expr(body.integration_uri) || ""),
        `${name}: integration_uri ${JSON.stringify(body.integration_uri)}`);
    }
  });

  const apis = everywhere(modules, "resource", "aws_apigatewayv2_api");
  check("api: HTTP API with CORS from var.cors_origin, the same value as TASKHOST_CORS_ORIGIN", () => {
    need(apis.length === 1, `expected one aws_apigatewayv2_api, found ${apis.length}`);
    const api = apis[0].body;
    need(api.protocol_type === "HTTP", `protocol_type ${JSON.stringify(api.protocol_type)}`);
    const cors = first(api, "cors_configuration");
    need(cors, "no cors_configuration");
    need(JSON.stringify(cors.allow_origins) === '["${var.cors_origin}"]',
      `allow_origins ${JSON.stringify(cors.allow_origins)}`);
    const methods = new Set(list(cors.allow_methods));
    const missing = ["GET", "POST", "PUT", "DELETE", "OPTIONS"].filter((x) => !methods.has(x) && !methods.has("*"));
    need(missing.length === 0, `allow_methods lacks ${missing.join(", ")}`);
    const headers = new Set(list(cors.allow_headers).map((h) => h.toLowerCase()));
    need(headers.has("content-type"), "allow_headers lacks content-type");
    need(cors.max_age !== undefined, "no max_age");
    // The function's TASKHOST_CORS_ORIGIN, in its environment or in a module call's.
    fnNeeded();
    const envs = [first(first(fn.body, "environment"), "variables")]
      .concat(callersOf(modules, fn.mod).map((c) => c.body.environment));
    let found = null;
    for (const env of envs) {
      if (env && typeof env === "object" && "TASKHOST_CORS_ORIGIN" in env) found = env.TASKHOST_CORS_ORIGIN;
      else if (typeof env === "string") {
        const m = /\bTASKHOST_CORS_ORIGIN\s*=\s*([A-Za-z0-9_.-]+)/.exec(env);
        if (m) found = "${" + m[1] + "}";
      }
    }
    need(found === "${var.cors_origin}", `TASKHOST_CORS_ORIGIN is ${JSON.stringify(found)}, not var.cors_origin`);
  });

  // With a cors_configuration, API Gateway replaces the function's CORS headers with its own:
  // without expose_headers a browser's script cannot read Location, ETag, WWW-Authenticate or
  // Retry-After. The function sends its own list (for --serve and callers without this layer):
  // the two must name the same headers.
  check("api: browsers may read Location and ETag (cors_configuration.expose_headers)", () => {
    need(apis.length === 1, `expected one aws_apigatewayv2_api, found ${apis.length}`);
    const cors = first(apis[0].body, "cors_configuration");
    need(cors, "no cors_configuration");
    const exposed = new Set(list(cors.expose_headers).map((h) => String(h).toLowerCase()));
    const lacking = ["location", "etag", "www-authenticate", "retry-after"]
      .filter((h) => !exposed.has(h) && !exposed.has("*"));
    need(lacking.length === 0, `expose_headers lacks ${lacking.join(", ")}`);
    const host = fs.readFileSync(path.join(ROOT, "runtime/host.c"), "utf8").replace(/"\s*\n\s*"/g, "");
    const m = /"Access-Control-Expose-Headers",\s*"([^"]*)"/.exec(host);
    need(m, "runtime/host.c sets no Access-Control-Expose-Headers");
    const sent = new Set(m[1].split(",").map((h) => h.trim().toLowerCase()).filter(Boolean));
    const onlyHere = [...exposed].filter((h) => !sent.has(h));
    const onlyThere = [...sent].filter((h) => !exposed.has(h));
    need(onlyHere.length === 0 && onlyThere.length === 0,
      `expose_headers and the function's Access-Control-Expose-Headers differ: only in Terraform ` +
      `[${onlyHere.join(", ")}], only in runtime/host.c [${onlyThere.join(", ")}]`);
  });

  check("api: routes reach the integration", () => {
    const routes = everywhere(modules, "resource", "aws_apigatewayv2_route");
    need(routes.length >= 1, "no aws_apigatewayv2_route");
    for (const { name, body } of routes) {
      need(/^integrations\/\$\{aws_apigatewayv2_integration\.[A-Za-z0-9_-]+(\[0\])?\.id\}$/.test(body.target || ""),
        `${name}: target ${JSON.stringify(body.target)}`);
    }
  });

  const stages = everywhere(modules, "resource", "aws_apigatewayv2_stage");
  check("api: stage auto-deploys with throttling set", () => {
    need(stages.length === 1, `expected one aws_apigatewayv2_stage, found ${stages.length}`);
    const st = stages[0].body;
    need(st.auto_deploy === true, `auto_deploy ${JSON.stringify(st.auto_deploy)}`);
    const d = first(st, "default_route_settings");
    need(d && d.throttling_burst_limit !== undefined && d.throttling_rate_limit !== undefined,
      `default_route_settings ${JSON.stringify(d)} lacks throttling_burst_limit/throttling_rate_limit`);
  });

  check("api: JSON access logs to a Terraform-created log group", () => {
    need(stages.length === 1, `expected one aws_apigatewayv2_stage, found ${stages.length}`);
    const a = first(stages[0].body, "access_log_settings");
    need(a, "no access_log_settings");
    const m = /^aws_cloudwatch_log_group\.([A-Za-z0-9_-]+)\.arn$/.exec(expr(a.destination_arn) || "");
    need(m && all(stages[0].mod, "resource", "aws_cloudwatch_log_group").some((g) => g.name === m[1]),
      `destination_arn ${JSON.stringify(a.destination_arn)} is not a log group of this module`);
    const f = String(a.format || "");
    need(/^\$\{jsonencode\(/.test(f), "format is not jsonencode({...})");
    const fields = ["$context.requestId", "$context.identity.sourceIp", "$context.requestTime",
      "$context.httpMethod", "$context.routeKey", "$context.status", "$context.protocol",
      "$context.responseLength", "$context.integrationErrorMessage"];
    const lacking = fields.filter((x) => !f.includes(`"${x}"`));
    need(lacking.length === 0, `format lacks ${lacking.join(", ")}`);
  });

  check("api: Lambda permission for apigateway.amazonaws.com, scoped to this API", () => {
    const perms = everywhere(modules, "resource", "aws_lambda_permission");
    need(perms.length >= 1, "no aws_lambda_permission");
    for (const { name, body } of perms) {
      need(body.principal === "apigateway.amazonaws.com", `${name}: principal ${JSON.stringify(body.principal)}`);
      need(body.action === "lambda:InvokeFunction", `${name}: action ${JSON.stringify(body.action)}`);
      need(/^\$\{(aws_apigatewayv2_api|aws_api_gateway_rest_api)\.[A-Za-z0-9_-]+(\[0\])?\.execution_arn\}\/./.test(body.source_arn || ""),
        `${name}: source_arn ${JSON.stringify(body.source_arn)} is not under the API's execution_arn`);
    }
  });

  authChecks(modules, root, fn, apis);
  restChecks(modules, root);
  if (fn) for (const t of API_TYPES) monitoringChecks(modules, root, fn, t);
  else report("monitoring", "no aws_lambda_function: the alarms cannot be checked");

  // ---------------------------------------------------------------- variables and outputs
  check("variables: every variable has a description and a type", () => {
    const bad = [];
    for (const m of modules) {
      for (const [name, bodies] of Object.entries(m.variable)) {
        for (const b of bodies) {
          if (typeof b.description !== "string" || b.description.trim() === "") bad.push(`${rel(m.dir)}: ${name} (description)`);
          if (b.type === undefined) bad.push(`${rel(m.dir)}: ${name} (type)`);
        }
      }
    }
    need(bad.length === 0, `missing: ${bad.join(", ")}`);
  });

  check("outputs: api_endpoint (the stage URL), table_name, function_name, log_group", () => {
    const wanted = ["api_endpoint", "table_name", "function_name", "log_group"];
    const missing = wanted.filter((o) => !root.output[o]);
    need(missing.length === 0, `missing ${missing.join(", ")}`);
    const v = String(root.output.api_endpoint[0].value);
    need(/aws_apigatewayv2_stage\.[A-Za-z0-9_-]+(\[0\])?\.invoke_url/.test(v) &&
      /aws_api_gateway_stage\.[A-Za-z0-9_-]+(\[0\])?\.invoke_url/.test(v), `api_endpoint is ${v} (the HTTP and the REST stage's invoke_url)`);
    const undocumented = Object.entries(root.output).filter(([, b]) => !b[0].description).map(([n]) => n);
    need(undocumented.length === 0, `outputs without a description: ${undocumented.join(", ")}`);
  });

  if (parseFailures) console.log(`(${parseFailures} file(s) did not parse; the checks above saw the others only)`);
}

main()
  .catch((e) => report("run", String(e.stack || e)))
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  });
