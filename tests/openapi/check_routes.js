// check_routes.js ROOT [SPEC] — openapi.yaml against the code that answers, read statically:
//   1. routes: every entry of the ROUTES table in ROOT/lua/routes.lua ({ pattern = "^...$",
//      methods = { GET = f, ... } }) is a path of the description with exactly those methods
//      (plus OPTIONS, answered for every route), and every described path is such an entry;
//      each path's x-taskhost-allow is the Allow header routes.lua builds for it.
//   2. statuses: every status the code can answer — R.error/R.json/R.not_found/
//      R.store_error in lua/routes.lua and lua/respond.lua, push_error_response,
//      push_unauthorized and a status set in place (the 304 of If-None-Match) in
//      runtime/host.c, answer_error in runtime/serve.c — is described; every described
//      status is one the code answers, except API Gateway's own (GATEWAY_ONLY), which the
//      code must never answer.
// Prints one PASS/FAIL line per check; exit 1 on any failure. Used by test_routes.sh.
'use strict';
const fs = require('fs');
const path = require('path');
const yaml = require(path.join(__dirname, 'node_modules', 'js-yaml'));

const root = process.argv[2];
const specPath = process.argv[3] || path.join(root, 'openapi.yaml');
const GATEWAY_ONLY = [429]; // API Gateway's stage throttling, never the function
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'];
const ORDER = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']; // routes.lua's METHOD_ORDER
let failures = 0;

function check(name, ok, detail) {
  if (ok) {
    console.log(`PASS: ${name}`);
  } else {
    failures += 1;
    console.log(`FAIL: ${name}${detail ? ` — ${detail}` : ''}`);
  }
}
const read = (rel) => fs.readFileSync(path.join(root, rel), 'utf8');
const spec = yaml.load(fs.readFileSync(specPath, 'utf8'));
const routesLua = read('lua/routes.lua');

// 1. routes ------------------------------------------------------------------
const table = routesLua.match(/\nlocal ROUTES = \{\n([\s\S]*?)\n\}\n/);
check('routes.lua has a ROUTES table', table, 'no "local ROUTES = { ... }" block');
const code = {};
if (table) {
  // Each top-level { ... } of the table is one route: pattern = "^...$", methods = { ... }
  // (other fields, such as the metric names, are allowed); nothing else may be there.
  const blocks = [];
  let depth = 0;
  let start = -1;
  let outside = '';
  for (let i = 0; i < table[1].length; i += 1) {
    const c = table[1][i];
    if (c === '{' && depth++ === 0) start = i;
    else if (c === '}' && --depth === 0) blocks.push(table[1].slice(start, i + 1));
    else if (depth === 0) outside += c;
  }
  check('ROUTES is a list of { ... } entries and nothing else', depth === 0 &&
    !outside.replace(/--[^\n]*/g, '').replace(/[\s,]/g, ''), `outside the entries: ${outside.trim()}`);
  for (const block of blocks) {
    const pat = block.match(/\bpattern\s*=\s*"([^"]*)"/);
    const meth = block.match(/\bmethods\s*=\s*\{([^}]*)\}/);
    check('every ROUTES entry has a pattern and methods', pat && meth, block.replace(/\s+/g, ' '));
    if (!pat || !meth) continue;
    const lua = pat[1];
    // "^/tasks/([^/]+)$" → "/tasks/{}": one capture, one path parameter, named anything.
    const route = lua.replace(/^\^/, '').replace(/\$$/, '').replace(/\(\[\^\/\]\+\)/g, '{}');
    check(`routes.lua pattern ${lua} is a plain path`, /^(\/[A-Za-z0-9_-]+|\/\{\})+$/.test(route), route);
    const methods = meth[1].split(',').map((x) => x.split('=')[0].trim()).filter(Boolean);
    code[route] = methods;
  }
  check('ROUTES has entries', blocks.length > 0, 'none found');
}
const described = {};
for (const [p, item] of Object.entries(spec.paths || {})) {
  described[p.replace(/\{[^}]+\}/g, '{}')] = { p, item };
}
for (const [route, methods] of Object.entries(code)) {
  const d = described[route];
  check(`routes.lua's ${route} is described`, d, `openapi.yaml has no path for ${route}`);
  if (!d) continue;
  const want = [...methods.map((x) => x.toLowerCase()), 'options'].sort();
  const have = METHODS.filter((x) => d.item[x]).sort();
  check(`${d.p}: the described methods are routes.lua's (+ OPTIONS)`, want.join() === have.join(),
    `routes.lua: ${want.join(', ')}; openapi.yaml: ${have.join(', ')}`);
  const allow = [...ORDER.filter((x) => methods.includes(x)), 'OPTIONS'].join(', ');
  check(`${d.p}: x-taskhost-allow is the Allow header routes.lua sends`,
    d.item['x-taskhost-allow'] === allow, `routes.lua: ${allow}; openapi.yaml: ${d.item['x-taskhost-allow']}`);
}
for (const [route, d] of Object.entries(described)) {
  check(`openapi.yaml's ${d.p} is a route of routes.lua`, code[route], 'no ROUTES entry answers it');
}

// 2. statuses -----------------------------------------------------------------
const answered = new Set();
const add = (text, re) => {
  for (const m of text.matchAll(re)) answered.add(Number(m[1]));
};
const respondLua = read('lua/respond.lua');
add(routesLua, /R\.(?:error|json)\((\d{3})/g);
add(respondLua, /R\.(?:error|json)\((\d{3})/g);
if (/R\.not_found\(/.test(routesLua)) add(respondLua, /function R\.not_found[\s\S]*?R\.error\((\d{3})/g);
if (/R\.store_error\(/.test(routesLua)) {
  const body = respondLua.match(/function R\.store_error[\s\S]*?\nend/);
  if (body) add(body[0], /R\.error\((\d{3})/g);
}
const host = read('runtime/host.c');
add(host, /push_error_response\(L, (\d{3}),/g);
if (/push_unauthorized\(L/.test(host)) answered.add(401);
// a status written into a response in place: lua_pushinteger(L, 304); lua_setfield(L, -2, "status")
add(host, /lua_pushinteger\(L, (\d{3})\);\s*lua_setfield\(L, -2, "status"\)/g);
add(read('runtime/serve.c'), /answer_error\([^;]*?, (\d{3}), "/g);
check('the code answers statuses found', answered.size >= 8, [...answered].join(', '));

const inSpec = new Set();
for (const item of Object.values(spec.paths || {})) {
  for (const m of METHODS) {
    if (item[m]) Object.keys(item[m].responses || {}).forEach((s) => inSpec.add(Number(s)));
  }
}
Object.keys(spec['x-taskhost-other-answers'] || {}).forEach((s) => inSpec.add(Number(s)));
const sorted = (s) => [...s].sort((a, b) => a - b).join(', ');
const undescribed = [...answered].filter((s) => !inSpec.has(s));
check('every status the code answers is described', undescribed.length === 0,
  `not in openapi.yaml: ${sorted(undescribed)}`);
const extra = [...inSpec].filter((s) => !answered.has(s) && !GATEWAY_ONLY.includes(s));
check('every described status is one the code answers (or API Gateway\'s)', extra.length === 0,
  `never answered: ${sorted(extra)}`);
const gateway = GATEWAY_ONLY.filter((s) => answered.has(s) || !inSpec.has(s));
check('API Gateway\'s own statuses are described and never the code\'s', gateway.length === 0,
  sorted(gateway));
console.log(`code answers: ${sorted(answered)}; described: ${sorted(inSpec)}`);
process.exit(failures ? 1 : 0);
