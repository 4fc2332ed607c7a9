-- The sandbox and the native modules as a route script sees them.
local T = require "testlib"
local json = require "json"
local store = require "store"
local uuid = require "uuid"
local clock = require "clock"

T.test("only the allowed libraries are open", function()
  for _, name in ipairs({"io", "os", "debug", "package", "coroutine", "load", "loadfile",
                         "dofile", "loadstring", "collectgarbage", "module", "cjson"}) do
    T.eq(rawget(_G, name), nil, name)
  end
  T.eq(string.dump, nil, "string.dump")
  for _, name in ipairs({"string", "table", "math", "utf8", "pairs", "pcall", "error"}) do
    T.ok(rawget(_G, name) ~= nil, name .. " is available")
  end
end)

T.test("xpcall and setmetatable keep their meaning, without __gc", function()
  local ok, msg = xpcall(function(a) error("boom " .. a, 0) end, function(e) return "handled: " .. e end, "x")
  T.eq(ok, false, "xpcall reports the error")
  T.eq(msg, "handled: boom x", "through the handler")
  local ok2, a, b = xpcall(function(x, y) return x + y, "two" end, print, 1, 2)
  T.eq(ok2, true, "xpcall success")
  T.eq(a, 3, "first result")
  T.eq(b, "two", "second result")
  local t = setmetatable({}, {__index = function() return 7 end})
  T.eq(t.anything, 7, "setmetatable works")
  T.ok(not pcall(setmetatable, {}, {__gc = function() end}), "__gc is refused")
end)

T.test("the shared string metatable is hidden", function()
  T.eq(getmetatable(""), "protected", "getmetatable('')")
  T.ok(not pcall(setmetatable, "", {}), "setmetatable on a string fails")
end)

T.test("require reaches only native modules and lua/ text scripts", function()
  for _, name in ipairs({"os", "io", "debug", "../lua/routes", "/etc/passwd", "a/b", "..x",
                         "x..y", "", string.rep("a", 100), "routes\0x"}) do
    local ok, err = pcall(require, name)
    T.ok(not ok, "require(" .. T.show(name) .. ") fails")
    T.ok(type(err) == "string", "with a message")
  end
  T.eq(type(require("routes").handle), "function", "routes.handle")
  T.eq(require("json"), json, "modules are cached")
end)

T.test("json: encode/decode, null, empty arrays", function()
  T.eq(json.encode({items = json.array({}), n = 3}):find('"items":[]', 1, true) ~= nil, true,
       "empty marked array encodes as []")
  T.eq(json.encode(json.array()), "[]", "top-level empty array")
  T.eq(json.encode({}), "{}", "unmarked empty table is an object")
  T.eq(json.encode({a = json.null}), '{"a":null}', "null")
  local v, err = json.decode("{bad")
  T.eq(v, nil, "malformed JSON gives nil")
  T.ok(type(err) == "string", "and a message")
  T.eq(json.decode('{"a":[1,2]}').a[2], 2, "decode")
  T.eq(json.decode("null"), json.null, "null decodes to json.null")
  local deep = string.rep("[", 200) .. string.rep("]", 200)
  T.eq(json.decode(deep), nil, "nesting deeper than the limit is refused")
  T.ok(not pcall(json.encode, {f = print}), "functions cannot be encoded")
  T.ok(not pcall(json.array, setmetatable({}, {})), "a table with a metatable cannot be marked")
end)

T.test("uuid and clock", function()
  local a, b = uuid.v4(), uuid.v4()
  T.ok(a:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"),
       "v4 format: " .. a)
  T.ok(a ~= b, "unique")
  -- v7: version 7, variant 10, the first 48 bits the Unix time in ms, and
  -- each id above the one made before it (monotonic within the process).
  local prev = uuid.v7()
  T.ok(prev:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-7%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"),
       "v7 format: " .. prev)
  local ms = tonumber(prev:sub(1, 8) .. prev:sub(10, 13), 16)
  T.ok(math.abs(ms - clock.now() * 1000) < 5000, "v7 timestamp is now in ms: " .. prev)
  for _ = 1, 5000 do -- more than one millisecond's counter can hold
    local id = uuid.v7()
    if not (id > prev) then
      T.ok(false, "v7 ids increase: " .. prev .. " then " .. id)
      break
    end
    prev = id
  end
  local now = clock.now()
  T.eq(math.type(now), "integer", "clock.now is an integer")
  T.ok(now > 1700000000, "epoch seconds")
end)

T.test("store keeps values and exact integers", function()
  local id = uuid.v4()
  local item = {id = id, big = 9007199254740993, neg = -5, f = 0.5, s = "é\"\\\n", yes = true,
                list = {1, "two", false}, empty = json.array(), map = {a = {b = "c"}}, nul = json.null}
  T.eq(store.create(item), true, "create")
  T.eq(store.create(item), false, "create again → false")
  local got = store.get(id)
  T.eq(got.big, 9007199254740993, "2^53+1 exact")
  T.eq(math.type(got.big), "integer", "integer stays an integer")
  T.eq(got.neg, -5, "negative")
  T.eq(got.f, 0.5, "float")
  T.eq(got.s, "é\"\\\n", "string")
  T.eq(got.yes, true, "bool")
  T.eq(got.list[2], "two", "list")
  T.eq(got.list[3], false, "false in list")
  T.eq(got.map.a.b, "c", "map")
  T.eq(got.nul, json.null, "null")
  T.eq(json.encode(got.empty), "[]", "empty list comes back as an array")
  local upd = store.update(id, {s = "new", big = 1})
  T.eq(upd.s, "new", "update returns the new item")
  T.eq(upd.yes, true, "other fields kept")
  T.eq(store.update(uuid.v4(), {s = "x"}), nil, "update of a missing item → nil")
  T.ok(not pcall(store.update, id, {id = "other"}), "update cannot change the id")
  T.ok(not pcall(store.update, id, {}), "update needs fields")
  T.ok(not pcall(store.create, {id = 5}), "id must be a string")
  T.ok(not pcall(store.create, {id = "x", f = print}), "functions cannot be stored")
  T.ok(not pcall(store.create, {id = "x", n = 0/0}), "NaN cannot be stored")
  T.ok(not pcall(store.create, {id = "x", t = {1, 2, k = 3}}), "mixed tables cannot be stored")
  -- The owner's attribute is the store's: a script cannot write it, so it
  -- cannot forge the key, and it never reads it back.
  T.eq(got.user_id, nil, "an item holds no user_id")
  local res, err = store.create({id = uuid.v4(), user_id = "someone"})
  T.eq(res, nil, "create with user_id refused")
  T.eq(type(err) == "table" and err.kind, "invalid", "create with user_id: invalid")
  res, err = store.update(id, {user_id = "someone"})
  T.eq(res, nil, "update of user_id refused")
  T.eq(type(err) == "table" and err.kind, "invalid", "update of user_id: invalid")
  T.eq(store.get(id).s, "new", "item unchanged")
  local old = store.delete(id)
  T.eq(old.s, "new", "delete returns the old item")
  T.eq(store.delete(id), nil, "second delete → nil")
  T.eq(store.get(id), nil, "gone")
end)

T.test("store keeps floats at and past the edges of the 64-bit range", function()
  -- runtime/attrval.c writes whole floats in range as integers, the rest as %.17g
  local id = uuid.v4()
  local item = {id = id, a = 1e300, b = -1e300, c = 2 ^ 63, d = -(2 ^ 63), e = 9.21e18,
                f = 2.0 ^ 53, g = -0.0, h = 1.5}
  T.eq(store.create(item), true, "create")
  local got = store.get(id)
  for _, k in ipairs({"a", "b", "c", "d", "e", "f", "g", "h"}) do
    T.eq(got[k], item[k], k .. " read back equal")
  end
  T.ok(not pcall(store.create, {id = uuid.v4(), n = math.huge}), "inf cannot be stored")
  T.ok(not pcall(store.create, {id = uuid.v4(), n = -math.huge}), "-inf cannot be stored")
end)

T.test("store.scan pages with opaque cursors", function()
  local mine = {}
  for i = 1, 7 do
    local id = uuid.v4()
    mine[id] = true
    store.create({id = id, n = i})
  end
  local seen, cursor, pages = {}, nil, 0
  repeat
    local items, nxt = store.scan(3, cursor)
    T.ok(items, "scan page")
    T.ok(#items <= 3, "page within the limit")
    for _, it in ipairs(items) do
      T.ok(not seen[it.id], "no repeats")
      seen[it.id] = true
    end
    cursor, pages = nxt, pages + 1
  until not cursor
  for id in pairs(mine) do T.ok(seen[id], "every item seen") end
  local items, err = store.scan(3, "garbage")
  T.eq(items, nil, "a garbage cursor is refused")
  T.eq(err.kind, "invalid", "as invalid")
  T.ok(not pcall(store.scan, 0), "limit 0 is misuse")
  T.ok(not pcall(store.scan, 1001), "limit 1001 is misuse")
end)

T.finish()
