// A small evaluator of Terraform expressions, for check.js: it decides what an attribute is
// worth under given variable values (var.auth = "cognito", "jwt" or "none", say), so the
// checks judge what Terraform would deploy in each mode rather than the spelling of an
// expression.
//
//   const ev = new Evaluator({ locals, vars, countOf });
//   ev.attr(body.count)         -> 1
//   ev.attr(body.issuer)        -> { tmpl: ["https://", { ref: "aws_cognito_user_pool.users[0].endpoint" }] }
//
// Input is what @cdktf/hcl2json gives: an attribute is a JSON value whose strings are HCL
// templates ("${expr}", "text ${expr} text"). Supported: literals (strings with
// interpolation, numbers, bool, null, lists, objects), references (var., local., resources,
// data., module.; [n], [*] and .attr traversals), ! - * / % + < <= > >= == != && || ?:, and the
// functions one(), length(), contains(), alltrue(), anytrue(), tostring(), and jsonencode()
// (which gives its argument's value: the checks read the structure, not the text). Anything else
// (another function, a for expression, a heredoc) raises Unsupported; comparing something
// only known at apply time raises Undecidable. References that are not var./local. stay
// symbolic: { ref: "aws_x.y[0].id" }. A reference to instance [n] of a resource whose count
// (countOf) is n or less in this evaluation raises Missing, as Terraform would fail the plan.
"use strict";

class EvalError extends Error {}
class Unsupported extends EvalError {}
class Undecidable extends EvalError {}
class Missing extends EvalError {}

const isSym = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && (v.ref !== undefined || v.tmpl !== undefined);

// Template parts joined: adjacent strings merged; a template of one string is that string.
function tmpl(parts) {
  const out = [];
  for (const p of parts) {
    if (p && p.tmpl) out.push(...p.tmpl);
    else if (typeof p === "string" && typeof out[out.length - 1] === "string") out[out.length - 1] += p;
    else out.push(p);
  }
  const cleaned = out.filter((p) => p !== "");
  if (cleaned.length === 0) return "";
  if (cleaned.length === 1 && typeof cleaned[0] === "string") return cleaned[0];
  return { tmpl: cleaned };
}

// Deep equality of evaluated values (symbolic ones compare by their text).
function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// Renders a value for messages.
function show(v) {
  if (v && v.ref !== undefined) return v.ref;
  if (v && v.tmpl) return '"' + v.tmpl.map((p) => (typeof p === "string" ? p : "${" + show(p) + "}")).join("") + '"';
  if (Array.isArray(v)) return "[" + v.map(show).join(", ") + "]";
  return JSON.stringify(v);
}

class Parser {
  constructor(src) {
    this.s = src;
    this.i = 0;
  }
  fail(msg) {
    throw new Unsupported(`${msg} at ${JSON.stringify(this.s.slice(this.i, this.i + 30))} in ${JSON.stringify(this.s)}`);
  }
  ws() {
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === " " || c === "\t" || c === "\n" || c === "\r") this.i++;
      else if (c === "#" || (c === "/" && this.s[this.i + 1] === "/")) {
        while (this.i < this.s.length && this.s[this.i] !== "\n") this.i++;
      } else if (c === "/" && this.s[this.i + 1] === "*") {
        const e = this.s.indexOf("*/", this.i + 2);
        this.i = e < 0 ? this.s.length : e + 2;
      } else break;
    }
  }
  peek(tok) {
    this.ws();
    return this.s.startsWith(tok, this.i);
  }
  eat(tok) {
    if (this.peek(tok)) {
      this.i += tok.length;
      return true;
    }
    return false;
  }
  expect(tok) {
    if (!this.eat(tok)) this.fail(`expected '${tok}'`);
  }

  // expr := or ("?" expr ":" expr)?
  expr() {
    const c = this.or();
    if (this.eat("?")) {
      const a = this.expr();
      this.expect(":");
      const b = this.expr();
      return { k: "cond", c, a, b };
    }
    return c;
  }
  binary(next, ops) {
    let left = next();
    for (;;) {
      this.ws();
      // ops lists "<=" before "<", so the longer operator wins.
      const op = ops.find((o) => this.s.startsWith(o, this.i));
      if (!op) return left;
      this.i += op.length;
      left = { k: "bin", op, l: left, r: next() };
    }
  }
  or() { return this.binary(() => this.and(), ["||"]); }
  and() { return this.binary(() => this.eq(), ["&&"]); }
  eq() { return this.binary(() => this.cmp(), ["==", "!="]); }
  cmp() { return this.binary(() => this.add(), ["<=", ">=", "<", ">"]); }
  add() { return this.binary(() => this.mul(), ["+", "-"]); }
  mul() { return this.binary(() => this.unary(), ["*", "/", "%"]); }
  unary() {
    if (this.eat("!")) return { k: "not", e: this.unary() };
    if (this.peek("-") && !/[0-9]/.test(this.s[this.i + 1] || "")) {
      this.i++;
      return { k: "neg", e: this.unary() };
    }
    return this.postfix(this.primary());
  }
  postfix(node) {
    for (;;) {
      if (this.peek("[*]")) {
        this.i += 3;
        node = { k: "splat", e: node };
      } else if (this.peek(".*")) {
        this.i += 2;
        node = { k: "splat", e: node };
      } else if (this.peek("[")) {
        this.i++;
        const idx = this.expr();
        this.expect("]");
        node = { k: "index", e: node, idx };
      } else if (this.peek(".") && /[A-Za-z_]/.test(this.s[this.i + 1] || "")) {
        this.i++;
        node = { k: "attr", e: node, name: this.ident() };
      } else return node;
    }
  }
  ident() {
    this.ws();
    const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(this.s.slice(this.i));
    if (!m) this.fail("expected a name");
    this.i += m[0].length;
    return m[0];
  }
  primary() {
    this.ws();
    const c = this.s[this.i];
    if (c === "(") {
      this.i++;
      const e = this.expr();
      this.expect(")");
      return e;
    }
    if (c === '"') {
      this.i++;
      return this.template('"');
    }
    if (c === "[") {
      this.i++;
      if (this.peek("for ")) this.fail("for expressions are not supported");
      const items = [];
      while (!this.eat("]")) {
        items.push(this.expr());
        if (!this.eat(",")) {
          this.expect("]");
          break;
        }
      }
      return { k: "list", items };
    }
    if (c === "{") {
      this.i++;
      if (this.peek("for ")) this.fail("for expressions are not supported");
      const entries = [];
      while (!this.eat("}")) {
        const key = this.peek('"') ? (this.i++, this.template('"')) : { k: "lit", v: this.ident() };
        if (!this.eat("=")) this.expect(":");
        entries.push([key, this.expr()]);
        this.eat(",");
      }
      return { k: "obj", entries };
    }
    if (c === "<" && this.s[this.i + 1] === "<") this.fail("heredocs are not supported");
    const num = /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.s.slice(this.i));
    if (num) {
      this.i += num[0].length;
      return { k: "lit", v: Number(num[0]) };
    }
    const name = this.ident();
    if (name === "true") return { k: "lit", v: true };
    if (name === "false") return { k: "lit", v: false };
    if (name === "null") return { k: "lit", v: null };
    if (this.peek("(")) {
      this.i++;
      const args = [];
      while (!this.eat(")")) {
        args.push(this.expr());
        if (this.eat("...")) this.fail("argument expansion is not supported");
        if (!this.eat(",")) {
          this.expect(")");
          break;
        }
      }
      return { k: "call", name, args };
    }
    return { k: "name", name };
  }
  // The rest of a template up to the closing `end` (a quote, or the end of input for a bare
  // attribute string): literal text and ${...} interpolations; $${ and %%{ are escapes.
  template(end) {
    const parts = [];
    let text = "";
    for (;;) {
      if (this.i >= this.s.length) {
        if (end === null) break;
        this.fail("unterminated string");
      }
      const c = this.s[this.i];
      if (end !== null && c === end) {
        this.i++;
        break;
      }
      if (c === "\\" && end !== null) {
        const n = this.s[this.i + 1];
        const map = { n: "\n", t: "\t", r: "\r", '"': '"', "\\": "\\" };
        if (!(n in map)) this.fail("unsupported escape");
        text += map[n];
        this.i += 2;
      } else if (this.s.startsWith("$${", this.i) || this.s.startsWith("%%{", this.i)) {
        text += this.s[this.i] + "{";
        this.i += 3;
      } else if (this.s.startsWith("%{", this.i)) {
        this.fail("template directives are not supported");
      } else if (this.s.startsWith("${", this.i)) {
        if (text) parts.push({ k: "lit", v: text });
        text = "";
        this.i += 2;
        this.eat("~");
        parts.push(this.expr());
        this.eat("~");
        this.expect("}");
      } else {
        text += c;
        this.i++;
      }
    }
    if (text) parts.push({ k: "lit", v: text });
    return { k: "tmpl", parts };
  }
}

// Parses an attribute string as Terraform does: a template; "${x}" alone is x itself.
function parseTemplate(src) {
  const p = new Parser(src);
  const t = p.template(null);
  if (t.parts.length === 1 && t.parts[0].k !== "lit") return t.parts[0];
  return t;
}

// A traversal (a.b[0].c, a.b[*].c) as text, when it is one.
function traversalText(node) {
  switch (node.k) {
    case "name": return node.name;
    case "attr": {
      const base = traversalText(node.e);
      return base === null ? null : `${base}.${node.name}`;
    }
    case "index": {
      const base = traversalText(node.e);
      if (base === null || node.idx.k !== "lit") return null;
      return `${base}[${JSON.stringify(node.idx.v)}]`;
    }
    case "splat": {
      const base = traversalText(node.e);
      return base === null ? null : `${base}[*]`;
    }
    default: return null;
  }
}

class Evaluator {
  // locals: { name: attribute value (hcl2json) }; vars: { name: value } (others stay
  // symbolic); countOf(address "type.name") -> the resource's count here, or undefined.
  constructor({ locals = {}, vars = {}, countOf = () => undefined } = {}) {
    this.locals = locals;
    this.vars = vars;
    this.countOf = countOf;
    this.stack = [];
  }

  // The value of an attribute as hcl2json gives it.
  attr(v) {
    if (typeof v === "string") return this.eval(parseTemplate(v));
    if (Array.isArray(v)) return v.map((x) => this.attr(x));
    if (v && typeof v === "object") {
      const o = {};
      for (const [k, x] of Object.entries(v)) o[k] = this.attr(x);
      return o;
    }
    return v;
  }

  bool(v, what) {
    if (typeof v === "boolean") return v;
    if (isSym(v)) throw new Undecidable(`${what} depends on ${show(v)}, not known before apply`);
    throw new EvalError(`${what} is ${show(v)}, not a bool`);
  }

  // A reference that is not var./local.: symbolic, after checking that the instance exists.
  ref(text) {
    const m = /^((?:data\.)?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\[([0-9]+)\]/.exec(text);
    if (m) {
      const n = this.countOf(m[1]);
      if (n !== undefined && Number(m[2]) >= n) {
        throw new Missing(`${text} does not exist here (${m[1]} has count ${n})`);
      }
    }
    return { ref: text };
  }

  eval(node) {
    switch (node.k) {
      case "lit": return node.v;
      case "tmpl": {
        const parts = node.parts.map((p) => {
          const v = this.eval(p);
          if (v === null) throw new EvalError("null interpolated into a string");
          if (typeof v === "number" || typeof v === "boolean") return String(v);
          if (Array.isArray(v) || (typeof v === "object" && !isSym(v))) {
            throw new EvalError(`${show(v)} interpolated into a string`);
          }
          return v;
        });
        return tmpl(parts);
      }
      case "list": return node.items.map((x) => this.eval(x));
      case "obj": {
        const o = {};
        for (const [k, v] of node.entries) o[String(this.eval(k))] = this.eval(v);
        return o;
      }
      case "not": return !this.bool(this.eval(node.e), "the operand of !");
      case "neg": {
        const v = this.eval(node.e);
        if (typeof v !== "number") throw new Undecidable(`-${show(v)}`);
        return -v;
      }
      case "cond": {
        const c = this.bool(this.eval(node.c), "a condition");
        return c ? this.eval(node.a) : this.eval(node.b);
      }
      case "bin": return this.binop(node);
      case "call": return this.call(node);
      case "name": case "attr": case "index": case "splat": return this.traversal(node);
      default: throw new Unsupported(`expression kind ${node.k}`);
    }
  }

  binop({ op, l, r }) {
    if (op === "||" || op === "&&") {
      const a = this.bool(this.eval(l), `the left side of ${op}`);
      if (op === "||" && a) return true;
      if (op === "&&" && !a) return false;
      return this.bool(this.eval(r), `the right side of ${op}`);
    }
    const a = this.eval(l);
    const b = this.eval(r);
    if (op === "==" || op === "!=") {
      if (isSym(a) || isSym(b)) {
        throw new Undecidable(`${show(a)} ${op} ${show(b)} is not known before apply`);
      }
      return (op === "==") === same(a, b);
    }
    if (typeof a !== "number" || typeof b !== "number") throw new Undecidable(`${show(a)} ${op} ${show(b)}`);
    switch (op) {
      case "<": return a < b;
      case "<=": return a <= b;
      case ">": return a > b;
      case ">=": return a >= b;
      case "+": return a + b;
      case "-": return a - b;
      case "*": return a * b;
      case "/": return a / b;
      case "%": return a % b;
      default: throw new Unsupported(`operator ${op}`);
    }
  }

  call({ name, args }) {
    const vals = () => args.map((a) => this.eval(a));
    switch (name) {
      case "one": {
        const [v] = vals();
        if (v && v.splat) {
          const n = this.countOf(v.splat.base);
          if (n === undefined) throw new Undecidable(`one(${v.splat.base}[*]…): no count known`);
          if (n > 1) throw new EvalError(`one() of ${v.splat.base}, which has ${n} instances`);
          return n === 0 ? null : this.ref(`${v.splat.base}[0]${v.splat.rest}`);
        }
        if (!Array.isArray(v)) throw new Undecidable(`one(${show(v)})`);
        if (v.length > 1) throw new EvalError(`one() of ${v.length} elements`);
        return v.length ? v[0] : null;
      }
      case "length": {
        const [v] = vals();
        if (Array.isArray(v) || typeof v === "string") return v.length;
        if (v && typeof v === "object" && !isSym(v)) return Object.keys(v).length;
        throw new Undecidable(`length(${show(v)})`);
      }
      case "contains": {
        const [list, x] = vals();
        if (!Array.isArray(list) || isSym(x)) throw new Undecidable(`contains(${show(list)}, ${show(x)})`);
        if (list.some(isSym)) throw new Undecidable(`contains(${show(list)}, …)`);
        return list.some((e) => same(e, x));
      }
      case "alltrue": case "anytrue": {
        const [list] = vals();
        if (!Array.isArray(list)) throw new Undecidable(`${name}(${show(list)})`);
        const bs = list.map((b) => this.bool(b, `an element of ${name}()`));
        return name === "alltrue" ? bs.every(Boolean) : bs.some(Boolean);
      }
      case "jsonencode": {
        const [v] = vals();
        return v;
      }
      case "concat": {
        const lists = vals();
        if (!lists.every(Array.isArray)) throw new Undecidable(`concat(${lists.map(show).join(", ")})`);
        return [].concat(...lists);
      }
      case "tostring": {
        const [v] = vals();
        if (typeof v === "number" || typeof v === "boolean") return String(v);
        return v;
      }
      default: throw new Unsupported(`function ${name}()`);
    }
  }

  traversal(node) {
    const text = traversalText(node);
    if (text === null) throw new Unsupported("a traversal with a computed index");
    const v = /^var\.([A-Za-z0-9_-]+)(.*)$/.exec(text);
    if (v) {
      if (!(v[1] in this.vars)) return { ref: text };
      if (v[2] !== "") throw new Unsupported(`a traversal into var.${v[1]}`);
      return this.vars[v[1]];
    }
    const l = /^local\.([A-Za-z0-9_-]+)(.*)$/.exec(text);
    if (l) {
      if (!(l[1] in this.locals)) throw new EvalError(`local.${l[1]} is not defined`);
      if (l[2] !== "") throw new Unsupported(`a traversal into local.${l[1]}`);
      if (this.stack.includes(l[1])) throw new EvalError(`local.${l[1]} refers to itself`);
      this.stack.push(l[1]);
      try {
        return this.attr(this.locals[l[1]]);
      } finally {
        this.stack.pop();
      }
    }
    // aws_x.y[*].id: kept for one(); a list whose length is the count otherwise.
    const s = /^((?:data\.)?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\[\*\](.*)$/.exec(text);
    if (s) return { ref: text, splat: { base: s[1], rest: s[2] } };
    return this.ref(text);
  }
}

module.exports = { Evaluator, EvalError, Unsupported, Undecidable, Missing, parseTemplate, show, same };
