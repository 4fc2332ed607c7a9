-- Route tests: calls routes.handle directly, inside the host's sandbox, with a
-- real (temporary SQLite) store. Run by tests/lua/run.sh under CTest.

local T = require("testlib")
local json = require("json")
local real_store = require("store")
local routes = require("routes")

local eq, ok, has = T.eq, T.ok, T.has

-- A store that forwards to the real one, counts calls, and can be told to fail.
local spy = { calls = 0, fail = nil }
for _, op in ipairs({ "create", "get", "update", "delete", "scan" }) do
  spy[op] = function(...)
    spy.calls = spy.calls + 1
    if spy.fail then
      return nil, spy.fail
    end
    return real_store[op](...)
  end
end
routes.store = spy

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-7%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local ABSENT_ID = "00000000-0000-4000-8000-000000000000"

local seq = 0
-- A request as the host builds it. opts: body (a table is JSON-encoded),
-- headers, query, raw_path. A JSON body gets Content-Type application/json
-- unless headers are given.
local function request(method, path, opts)
  opts = opts or {}
  seq = seq + 1
  local body, headers = opts.body, opts.headers
  if type(body) == "table" then
    body = json.encode(body)
  end
  if headers == nil then
    headers = body and { ["content-type"] = "application/json" } or {}
  end
  local multi = {}
  for k, v in pairs(opts.query or {}) do
    multi[k] = { v }
  end
  return {
    method = method,
    path = path,
    raw_path = opts.raw_path or path,
    path_params = {},
    query = opts.query or {},
    multi_query = multi,
    headers = headers,
    body = body,
    request_id = "test-" .. seq,
    source_ip = "127.0.0.1",
    claims = nil,
    version = "2.0",
    stage = "$default",
  }
end

local function call(method, path, opts)
  local resp = routes.handle(request(method, path, opts))
  ok(type(resp) == "table", "response is a table")
  ok(math.type(resp.status) == "integer", "status is an integer")
  return resp
end

-- Header lookup ignoring case.
local function header(resp, name)
  for k, v in pairs(resp.headers or {}) do
    if k:lower() == name:lower() then
      return v
    end
  end
  return nil
end

local function expect(resp, status, what)
  if resp.status ~= status then
    local body = type(resp.body) == "table" and json.encode(resp.body) or tostring(resp.body)
    error(string.format("%s: expected status %d, got %d %s", what or "response", status, resp.status, body), 2)
  end
  return resp.body
end

-- A 400 whose field is `field` and whose message names it.
local function expect_field_error(resp, field, what)
  if resp.status ~= 400 then
    error(string.format("%s: expected 400, got %d %s", what, resp.status, json.encode(resp.body)), 2)
  end
  eq(type(resp.body), "table", what .. ": body type")
  eq(resp.body.field, field, what .. ": field")
  has(resp.body.message, field, what .. ": message")
end

local function clear_store()
  for _ = 1, 100 do
    local items = assert(real_store.scan(1000, nil))
    if #items == 0 then
      return
    end
    for _, item in ipairs(items) do
      assert(real_store.delete(item.id))
    end
  end
  error("store did not empty")
end

local function create(fields)
  local resp = call("POST", "/tasks", { body = fields })
  expect(resp, 201, "create")
  return resp.body.task
end

local function store_count()
  local n, cursor = 0, nil
  repeat
    local items
    items, cursor = assert(real_store.scan(1000, cursor))
    n = n + #items
  until cursor == nil
  return n
end

---------------------------------------------------------------------------

T.test("empty list encodes items as []", function()
  clear_store()
  local body = expect(call("GET", "/tasks"), 200)
  eq(body.count, 0, "count")
  eq(#body.items, 0, "items")
  eq(body.next, json.null, "next")
  local text = json.encode(body)
  has(text, '"items":[]', "encoded body")
  has(text, '"next":null', "encoded body")
end)

T.test("CRUD scenario", function()
  local resp = call("POST", "/tasks", { body = { task = "Write documentation", priority = "high" } })
  local body = expect(resp, 201, "create")
  local id = body.id
  ok(type(id) == "string" and id:find(UUID), "id is a UUID v7: " .. tostring(id))
  eq(header(resp, "Location"), "/tasks/" .. id, "Location")
  local task = body.task
  eq(task.id, id, "task.id")
  eq(task.task, "Write documentation", "task.task")
  eq(task.status, "new", "default status")
  eq(task.priority, "high", "priority")
  eq(math.type(task.created_at), "integer", "created_at type")
  eq(task.updated_at, task.created_at, "updated_at == created_at")
  local encoded = json.encode(body)
  has(encoded, '"created_at":' .. task.created_at, "created_at encodes as an integer")

  local got = expect(call("GET", "/tasks/" .. id), 200, "get")
  for _, k in ipairs({ "id", "task", "status", "priority", "created_at", "updated_at" }) do
    eq(got[k], task[k], "get " .. k)
  end
  eq(math.type(got.created_at), "integer", "stored created_at type")

  local real_clock = routes.clock
  routes.clock = { now = function() return task.created_at + 60 end }
  local upd = call("PUT", "/tasks/" .. id, { body = { status = "in_progress" } })
  routes.clock = real_clock
  local ub = expect(upd, 200, "update")
  eq(ub.message, "Task updated successfully", "update message")
  eq(ub.task.id, id, "updated id")
  eq(ub.task.status, "in_progress", "updated status")
  eq(ub.task.task, "Write documentation", "task kept")
  eq(ub.task.priority, "high", "priority kept")
  eq(ub.task.created_at, task.created_at, "created_at kept")
  eq(ub.task.updated_at, task.created_at + 60, "updated_at is clock.now()")

  got = expect(call("GET", "/tasks/" .. id), 200, "get after update")
  eq(got.status, "in_progress", "stored status")
  eq(got.updated_at, task.created_at + 60, "stored updated_at")

  ub = expect(call("PUT", "/tasks/" .. id, { body = { task = "  Edited  ", priority = "urgent",
    status = "completed" } }), 200, "update all")
  eq(ub.task.task, "Edited", "trimmed on update")
  eq(ub.task.priority, "urgent", "priority")
  eq(ub.task.status, "completed", "status")

  local del = expect(call("DELETE", "/tasks/" .. id), 200, "delete")
  eq(del.message, "Task deleted successfully", "delete message")
  eq(del.id, id, "delete id")

  for _, m in ipairs({ "GET", "DELETE" }) do
    local nf = expect(call(m, "/tasks/" .. id), 404, m .. " after delete")
    eq(nf.message, "Task not found", m .. " message")
  end
  local nf = expect(call("PUT", "/tasks/" .. id, { body = { status = "new" } }), 404, "PUT after delete")
  eq(nf.message, "Task not found", "PUT message")
  eq(real_store.get(id), nil, "gone from the store")
end)

T.test("defaults, trimming and stored text", function()
  local t = create({ task = " \t Buy milk \n " })
  eq(t.task, "Buy milk", "trimmed")
  eq(t.status, "new", "status default")
  eq(t.priority, "medium", "priority default")
  eq(real_store.get(t.id).task, "Buy milk", "stored trimmed")
  t = create({ task = "x", status = "cancelled", priority = "low" })
  eq(t.status, "cancelled", "status")
  eq(t.priority, "low", "priority")
end)

T.test("task length counts UTF-8 characters", function()
  local t = create({ task = string.rep("é", 1000) })
  eq(utf8.len(t.task), 1000, "1000 two-byte characters accepted")
  t = create({ task = string.rep("a", 1000) .. "   " })
  eq(#t.task, 1000, "limit applies after trimming")
  expect_field_error(call("POST", "/tasks", { body = { task = string.rep("é", 1001) } }), "task", "1001 chars")
  expect_field_error(call("PUT", "/tasks/" .. t.id, { body = { task = string.rep("a", 1001) } }), "task",
    "1001 chars on PUT")
end)

T.test("ids: uppercase accepted, malformed → 404 without a store call", function()
  local t = create({ task = "case" })
  eq(expect(call("GET", "/tasks/" .. t.id:upper()), 200, "uppercase id").id, t.id, "same task")
  for _, bad in ipairs({ "abc", "123", t.id .. "0", t.id:sub(2), "%00", string.rep("a", 5000),
    "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", " " .. t.id:sub(2) }) do
    for _, m in ipairs({ "GET", "PUT", "DELETE" }) do
      spy.calls = 0
      local body = expect(call(m, "/tasks/" .. bad, { body = m == "PUT" and { status = "new" } or nil }), 404,
        m .. " " .. bad:sub(1, 40))
      eq(body.message, "Task not found", "message")
      eq(spy.calls, 0, "store calls")
    end
  end
  expect(call("GET", "/tasks/" .. ABSENT_ID), 404, "absent well-formed id")
end)

T.test("body validation errors name their field", function()
  local t = create({ task = "target" })
  local item = "/tasks/" .. t.id
  local cases = {
    -- { method, path, raw body or table, field }
    { "POST", "/tasks", nil, "body" },
    { "POST", "/tasks", "", "body" },
    { "POST", "/tasks", "   ", "body" },
    { "POST", "/tasks", "{bad json", "body" },
    { "POST", "/tasks", '{"task": "x",}', "body" },
    { "POST", "/tasks", "null", "body" },
    { "POST", "/tasks", '"x"', "body" },
    { "POST", "/tasks", "[]", "body" },
    { "POST", "/tasks", '[{"task":"x"}]', "body" },
    { "POST", "/tasks", "3", "body" },
    { "POST", "/tasks", "true", "body" },
    { "POST", "/tasks", '{"task": ' .. string.rep("[", 2000) .. string.rep("]", 2000) .. "}", "body" },
    { "POST", "/tasks", '{"task": "x"} trailing', "body" },
    { "POST", "/tasks", "{}", "task" },
    { "POST", "/tasks", { status = "new" }, "task" },
    { "POST", "/tasks", '{"task": null}', "task" },
    { "POST", "/tasks", '{"task": 42}', "task" },
    { "POST", "/tasks", '{"task": true}', "task" },
    { "POST", "/tasks", '{"task": ["a"]}', "task" },
    { "POST", "/tasks", '{"task": {"a": 1}}', "task" },
    { "POST", "/tasks", '{"task": ""}', "task" },
    { "POST", "/tasks", '{"task": "  \\t\\n "}', "task" },
    { "POST", "/tasks", '{"task": "\255\254"}', "task" },
    { "POST", "/tasks", { task = "x", status = "done" }, "status" },
    { "POST", "/tasks", { task = "x", status = "NEW" }, "status" },
    { "POST", "/tasks", '{"task": "x", "status": null}', "status" },
    { "POST", "/tasks", '{"task": "x", "status": 1}', "status" },
    { "POST", "/tasks", { task = "x", priority = "critical" }, "priority" },
    { "POST", "/tasks", '{"task": "x", "priority": false}', "priority" },
    { "POST", "/tasks", { task = "x", priorty = "high" }, "priorty" },
    { "POST", "/tasks", { task = "x", id = "mine" }, "id" },
    { "POST", "/tasks", { task = "x", created_at = 1 }, "created_at" },
    { "POST", "/tasks", { task = "x", updated_at = 1 }, "updated_at" },
    { "PUT", item, nil, "body" },
    { "PUT", item, "", "body" },
    { "PUT", item, "{", "body" },
    { "PUT", item, "null", "body" },
    { "PUT", item, "[]", "body" },
    { "PUT", item, '"x"', "body" },
    { "PUT", item, "{}", "body" },
    { "PUT", item, '{"task": ""}', "task" },
    { "PUT", item, '{"task": null}', "task" },
    { "PUT", item, '{"task": 5}', "task" },
    { "PUT", item, { status = "open" }, "status" },
    { "PUT", item, { priority = "p1" }, "priority" },
    { "PUT", item, { stauts = "new" }, "stauts" },
    { "PUT", item, { id = t.id }, "id" },
    { "PUT", item, { status = "new", created_at = 5 }, "created_at" },
    { "PUT", item, { updated_at = 5 }, "updated_at" },
  }
  for i, c in ipairs(cases) do
    local what = string.format("case %d %s %s", i, c[1], type(c[3]) == "table" and json.encode(c[3]) or T.show(c[3]))
    expect_field_error(call(c[1], c[2], { body = c[3], headers = { ["content-type"] = "application/json" } }), c[4], what)
  end
  local got = real_store.get(t.id)
  eq(got.task, "target", "task unchanged by rejected updates")
  eq(got.status, "new", "status unchanged by rejected updates")
end)

T.test("unknown field message", function()
  local body = call("POST", "/tasks", { body = { task = "x", priorty = "high" } }).body
  eq(body.message, "Unknown field 'priorty'", "message")
  body = call("POST", "/tasks", { body = { task = "x", id = "x" } }).body
  eq(body.message, "'id' is read-only", "message")
  body = call("POST", "/tasks", { body = { task = "x", [string.rep("k", 500)] = 1 } }).body
  ok(#body.message < 120, "a long unknown name is shortened")
end)

T.test("Content-Type", function()
  local t = create({ task = "ct" })
  for _, ct in ipairs({ "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
    "multipart/form-data; boundary=x", "json" }) do
    local body = expect(call("POST", "/tasks", { body = { task = "x" }, headers = { ["content-type"] = ct } }),
      415, "POST " .. ct)
    eq(body.message, "Content-Type must be application/json", "415 message")
    expect(call("PUT", "/tasks/" .. t.id, { body = { status = "new" }, headers = { ["content-type"] = ct } }),
      415, "PUT " .. ct)
  end
  for _, ct in ipairs({ "application/json", "application/json; charset=utf-8", "Application/JSON",
    " application/json ;charset=UTF-8", "" }) do
    expect(call("POST", "/tasks", { body = { task = "x" }, headers = { ["content-type"] = ct } }), 201, "POST " .. ct)
  end
  expect(call("POST", "/tasks", { body = { task = "x" }, headers = {} }), 201, "no Content-Type")
  expect_field_error(call("POST", "/tasks", { headers = { ["content-type"] = "text/plain" } }), "body",
    "no body, text/plain")
  expect(call("PUT", "/tasks/" .. t.id, { body = { status = "completed" }, headers = {} }), 200, "PUT no Content-Type")
end)

T.test("not found, method not allowed, preflight", function()
  for _, p in ipairs({ "/", "/nope", "/task", "/tasks/a/b", "/taskss", "/TASKS", "" }) do
    eq(expect(call("GET", p), 404, "GET " .. p).message, "Not found", "message for " .. p)
  end
  local cases = {
    { "DELETE", "/tasks", "GET, POST, OPTIONS" },
    { "PUT", "/tasks", "GET, POST, OPTIONS" },
    { "PATCH", "/tasks", "GET, POST, OPTIONS" },
    { "HEAD", "/tasks", "GET, POST, OPTIONS" },
    { "POST", "/tasks/" .. ABSENT_ID, "GET, PUT, DELETE, OPTIONS" },
    { "PATCH", "/tasks/" .. ABSENT_ID, "GET, PUT, DELETE, OPTIONS" },
    { "HEAD", "/tasks/" .. ABSENT_ID, "GET, PUT, DELETE, OPTIONS" },
    { "BREW", "/tasks", "GET, POST, OPTIONS" },
  }
  for _, c in ipairs(cases) do
    local resp = call(c[1], c[2])
    eq(expect(resp, 405, c[1] .. " " .. c[2]).message, "Method not allowed", "405 message")
    eq(header(resp, "Allow"), c[3], "Allow for " .. c[1] .. " " .. c[2])
  end
  for _, c in ipairs({ { "/tasks", "GET, POST, OPTIONS" }, { "/tasks/" .. ABSENT_ID, "GET, PUT, DELETE, OPTIONS" },
    { "/tasks/not-a-uuid", "GET, PUT, DELETE, OPTIONS" } }) do
    spy.calls = 0
    local resp = call("OPTIONS", c[1])
    expect(resp, 204, "OPTIONS " .. c[1])
    eq(header(resp, "Allow"), c[2], "Allow")
    eq(header(resp, "Access-Control-Allow-Methods"), c[2], "Access-Control-Allow-Methods")
    ok(tonumber(header(resp, "Access-Control-Max-Age")), "Access-Control-Max-Age")
    ok(resp.body == nil or resp.body == "", "empty 204 body")
    eq(spy.calls, 0, "no store call")
  end
  expect(call("OPTIONS", "/nope"), 404, "OPTIONS unknown path")
end)

T.test("Location keeps the stage prefix", function()
  local resp = call("POST", "/tasks", { body = { task = "x" }, raw_path = "/dev/tasks/" })
  expect(resp, 201, "create")
  eq(header(resp, "Location"), "/dev/tasks/" .. resp.body.id, "Location")
end)

T.test("limit validation", function()
  for _, v in ipairs({ "0", "-1", "101", "1000", "1e2", " 5", "5 ", "", "abc", "2.5", "5.0", "+5", "0x10",
    "99999999999999999999", "1,2" }) do
    spy.calls = 0
    expect_field_error(call("GET", "/tasks", { query = { limit = v } }), "limit", "limit=" .. T.show(v))
    eq(spy.calls, 0, "no store call for limit=" .. v)
  end
  for _, v in ipairs({ "1", "100", "25", "050" }) do
    local body = expect(call("GET", "/tasks", { query = { limit = v } }), 200, "limit=" .. v)
    ok(body.count <= tonumber(v), "count within limit " .. v)
  end
end)

T.test("bad cursors → 400 naming next", function()
  local first = expect(call("GET", "/tasks", { query = { limit = "1" } }), 200, "first page")
  ok(type(first.next) == "string", "a next cursor exists")
  -- Flip a character in the middle: the last one may carry only padding bits.
  local mid = #first.next // 2
  local c = first.next:sub(mid, mid)
  local tampered = first.next:sub(1, mid - 1) .. (c == "A" and "B" or "A") .. first.next:sub(mid + 1)
  for _, c in ipairs({ "garbage", "", "null", tampered, first.next .. "x", string.rep("A", 5000), "a\0b",
    "%%%%" }) do
    expect_field_error(call("GET", "/tasks", { query = { next = c } }), "next", "next=" .. T.show(c))
  end
  expect(call("GET", "/tasks", { query = { next = first.next, limit = "1" } }), 200, "the real cursor")
end)

T.test("a next as long as the longest cursor reaches the store; one more is refused unread", function()
  -- 4290 characters: the longest cursor runtime/cursor.h can seal (TH_CURSOR_MAX_TEXT).
  for _, case in ipairs({ { 4290, 1 }, { 4291, 0 } }) do
    spy.calls = 0
    local c = string.rep("A", case[1])
    expect_field_error(call("GET", "/tasks", { query = { next = c } }), "next", #c .. " characters")
    eq(spy.calls, case[2], "store calls for a next of " .. #c .. " characters")
  end
end)

T.test("store errors map to 503/400/500 without leaking detail", function()
  local t = create({ task = "err" })
  local kinds = { throttled = 503, unavailable = 503, invalid = 400, internal = 500, weird = 500 }
  local reqs = {
    { "GET", "/tasks" }, { "POST", "/tasks", { task = "x" } }, { "GET", "/tasks/" .. t.id },
    { "PUT", "/tasks/" .. t.id, { status = "completed" } }, { "DELETE", "/tasks/" .. t.id },
  }
  for kind, status in pairs(kinds) do
    for _, r in ipairs(reqs) do
      spy.fail = { kind = kind, message = "SECRET backend detail" }
      local ok_, resp = pcall(call, r[1], r[2], { body = r[3] })
      spy.fail = nil
      ok(ok_, "handler did not raise: " .. tostring(resp))
      local what = kind .. " " .. r[1] .. " " .. r[2]
      expect(resp, status, what)
      ok(not json.encode(resp.body):find("SECRET", 1, true), what .. ": detail not leaked")
      if status == 503 then
        eq(resp.body.message, "Service temporarily unavailable", what)
        eq(header(resp, "Retry-After"), "1", what .. " Retry-After")
      elseif status == 500 then
        eq(resp.body.message, "Internal server error", what)
      end
    end
  end
  eq(real_store.get(t.id).status, "new", "nothing changed")
end)

T.test("pagination over 260 items", function()
  clear_store()
  local created = {} -- id → creation number
  for i = 1, 260 do
    local t = create({ task = "item " .. i })
    created[t.id] = i
  end
  eq(store_count(), 260, "store holds 260 items")

  local function page_through(limit)
    local seen, total, pages, cursor, prev = {}, 0, 0, nil, 261
    while true do
      pages = pages + 1
      ok(pages <= 400, "paging ends")
      local query = { next = cursor }
      if limit then
        query.limit = tostring(limit)
      end
      local body = expect(call("GET", "/tasks", { query = query }), 200, "page " .. pages)
      eq(body.count, #body.items, "count matches items")
      ok(body.count <= (limit or 25), "page within limit")
      for _, item in ipairs(body.items) do
        ok(created[item.id], "a created item")
        ok(not seen[item.id], "seen once: " .. item.id)
        ok((created[item.id] or 0) < prev, "newest first: " .. item.task .. " after item " .. prev)
        prev = created[item.id] or 0
        seen[item.id] = true
        total = total + 1
      end
      if body.next == json.null then
        break
      end
      eq(type(body.next), "string", "next is a cursor string")
      eq(body.count, limit or 25, "a page before the last is full")
      cursor = body.next
    end
    eq(total, 260, "every item once with limit " .. tostring(limit))
    local full = math.ceil(260 / (limit or 25))
    ok(pages == full or pages == full + 1, string.format("pages %d for limit %s", pages, tostring(limit)))
  end
  page_through(1)
  page_through(25)
  page_through(100)
  page_through(nil) -- the default limit, 25
end)

T.test("an encoded list body", function()
  local text = json.encode(expect(call("GET", "/tasks", { query = { limit = "2" } }), 200))
  has(text, '"items":[{', "items encode as an array of objects")
  has(text, '"count":2', "count")
end)

T.finish()
