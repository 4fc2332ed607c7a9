// lenient.js IN.yaml OUT.json — the description with its REQUEST side opened up and its
// RESPONSE side untouched, for the contract test's second Prism proxy.
//
// Prism with --errors refuses a request that disagrees with the description (422) before it
// reaches the API, so the test's deliberately bad requests (unknown fields, limit=abc, a
// text/plain body, PATCH, an unknown path) would be answered by Prism, never by taskhost.
// Through this copy they reach taskhost, and taskhost's answers are still validated against
// the description's own responses, unchanged:
//   * every parameter and request body accepts anything (schema {}, not required, any media
//     type), and no operation requires security (taskhost itself answers 401);
//   * each path gets the methods it does not take (its x-taskhost-allow lists the ones it
//     takes) as operations whose only response is the description's 405
//     (x-taskhost-other-answers);
//   * the paths the test probes as unknown get GET with the description's 404 (same place).
// Valid requests go through the other proxy, on the description as it is.
'use strict';
const fs = require('fs');
const path = require('path');
const yaml = require(path.join(__dirname, 'node_modules', 'js-yaml'));

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node lenient.js IN.yaml OUT.json');
  process.exit(2);
}
const doc = yaml.load(fs.readFileSync(input, 'utf8'));
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'];
const UNKNOWN_PATHS = ['/', '/nope', '/tasks/{id}/{rest}'];

function fail(msg) {
  console.error(`lenient.js: ${msg}`);
  process.exit(1);
}

function openParameter(p) {
  const q = { ...p, required: p.in === 'path', schema: {} };
  delete q.content;
  return q;
}

function openParameters(list) {
  return (list || []).map((p) => openParameter(p.$ref ? resolve(p.$ref) : p));
}

function resolve(ref) {
  if (!ref.startsWith('#/')) fail(`only local references: ${ref}`);
  let node = doc;
  for (const part of ref.slice(2).split('/')) {
    node = node[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (node === undefined) fail(`unresolved reference ${ref}`);
  }
  return node;
}

const ANY_BODY = {
  required: false,
  content: { '*/*': { schema: {} } },
};

const answers = doc['x-taskhost-other-answers'];
if (!answers || !answers['404'] || !answers['405']) fail('no x-taskhost-other-answers 404 and 405');
doc.security = [];
for (const [route, item] of Object.entries(doc.paths)) {
  item.parameters = openParameters(item.parameters);
  for (const m of METHODS) {
    const op = item[m];
    if (!op) continue;
    op.security = [];
    op.parameters = openParameters(op.parameters);
    if (op.requestBody) op.requestBody = ANY_BODY;
  }
  const allow = item['x-taskhost-allow'];
  if (typeof allow !== 'string') fail(`${route} has no x-taskhost-allow`);
  const allowed = allow.split(',').map((s) => s.trim().toLowerCase());
  for (const m of METHODS) {
    if (allowed.includes(m)) {
      if (!item[m]) fail(`${route}: Allow lists ${m.toUpperCase()} but it is not described`);
      continue;
    }
    if (item[m]) fail(`${route}: ${m.toUpperCase()} is described but Allow does not list it`);
    item[m] = {
      operationId: `other_${m}_${route.replace(/\W+/g, '_')}`,
      security: [],
      requestBody: m === 'get' || m === 'head' ? undefined : ANY_BODY,
      responses: { 405: answers['405'] },
    };
    if (!item[m].requestBody) delete item[m].requestBody;
  }
}
for (const route of UNKNOWN_PATHS) {
  if (doc.paths[route]) fail(`${route} is described: not an unknown path`);
  const params = [...route.matchAll(/\{(\w+)\}/g)].map((x) => ({
    name: x[1], in: 'path', required: true, schema: {},
  }));
  doc.paths[route] = {
    get: { operationId: `unknown_${route.replace(/\W+/g, '_')}`, security: [], parameters: params, responses: { 404: answers['404'] } },
  };
}
fs.writeFileSync(output, JSON.stringify(doc, null, 1));
