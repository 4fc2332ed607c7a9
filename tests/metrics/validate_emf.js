#!/usr/bin/env node
// validate_emf.js SCHEMA FILE — every line of FILE must be one EMF document:
// valid against SCHEMA (the EMF specification's JSON schema, see SOURCE.md)
// with ajv, and within the specification's rules the schema does not state:
// the line is JSON and nothing else, at most 256 KB; each directive has at
// most 100 metrics and each dimension set at most 30 keys (the schema's 9 is
// stricter and applies too); every metric name is a root member holding a
// number or an array of at most 100 numbers; every dimension key is a root
// member holding a string; _aws holds no members the specification does not
// define. Prints {"lines": N, "invalid": N} and, on stderr, each failure with
// its line number; exits 1 when any line fails.
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv = require(path.join(__dirname, 'node_modules', 'ajv'));

const [schemaFile, file] = process.argv.slice(2);
if (!schemaFile || !file) {
  console.error('usage: validate_emf.js SCHEMA FILE');
  process.exit(2);
}
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));

function specErrors(doc, raw) {
  const errs = [];
  if (Buffer.byteLength(raw, 'utf8') > 256 * 1024) errs.push('line over 256 KB');
  const aws = doc._aws || {};
  for (const k of Object.keys(aws))
    if (k !== 'Timestamp' && k !== 'CloudWatchMetrics') errs.push(`_aws has unknown member ${k}`);
  for (const [i, d] of (aws.CloudWatchMetrics || []).entries()) {
    if ((d.Metrics || []).length > 100) errs.push(`directive ${i}: more than 100 metrics`);
    for (const k of Object.keys(d))
      if (!['Namespace', 'Dimensions', 'Metrics'].includes(k)) errs.push(`directive ${i}: unknown member ${k}`);
    for (const set of d.Dimensions || []) {
      if (set.length > 30) errs.push(`directive ${i}: a dimension set of more than 30 keys`);
      for (const key of set)
        if (typeof doc[key] !== 'string') errs.push(`dimension ${key}: no string member on the root`);
    }
    for (const m of d.Metrics || []) {
      const v = doc[m.Name];
      const ok = (typeof v === 'number' && Number.isFinite(v)) ||
        (Array.isArray(v) && v.length <= 100 && v.every((x) => typeof x === 'number'));
      if (!ok) errs.push(`metric ${m.Name}: no number (or array of at most 100 numbers) on the root`);
    }
  }
  return errs;
}

const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
let invalid = 0;
lines.forEach((raw, n) => {
  let doc;
  let errs = [];
  try {
    doc = JSON.parse(raw);
  } catch (e) {
    errs.push(`not JSON: ${e.message}`);
  }
  if (doc !== undefined) {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) errs.push('not a JSON object');
    else if (!validate(doc)) errs = errs.concat(validate.errors.map((e) => `${e.instancePath} ${e.message}`));
    else errs = errs.concat(specErrors(doc, raw));
  }
  if (errs.length) {
    invalid++;
    console.error(`line ${n + 1}: ${errs.join('; ')}`);
  }
});
console.log(JSON.stringify({ lines: lines.length, invalid }));
process.exit(invalid ? 1 : 0);
