-- fault.lua — installed as routes.lua in the contract test's copy of the route scripts, next
-- to the real routes.lua renamed routes_real.lua. Without an X-Test-Fault header it is the
-- real routes.lua. With one, the request runs against a store whose every call fails with
-- that kind ("throttled", "unavailable", "internal", "invalid": the store's error kinds), or
-- with "raise" the route raises; so the contract test can hold the 5xx (and the store's 400)
-- answers against openapi.yaml. With "hold" the request logs "contract: holding" (WARN) and
-- waits — polling the store, at most 20 s — until the caller has a task whose text is the
-- X-Test-Release header, then runs the real route: so a keyed POST can be kept in flight
-- for as long as the test needs to send the same key again (409), without timing.
-- Test-only: never part of lua/.

local M = require("routes_real")
local clock = require("clock")
local log = require("log")
local real_store = M.store
local real_handle = M.handle

local KINDS = { throttled = true, unavailable = true, internal = true, invalid = true }

local function failing_store(kind)
  return setmetatable({}, {
    __index = function()
      return function()
        return nil, { kind = kind, message = "injected by the contract test" }
      end
    end,
  })
end

local HOLD_MS = 20000

-- Waits until the caller has a task whose text is `release` (among the newest 10), or
-- HOLD_MS have passed.
local function hold(release)
  log.warn("contract: holding", { release = release })
  local deadline = clock.now_ms() + HOLD_MS
  while clock.now_ms() < deadline do
    local items = real_store.scan(10, nil)
    for _, item in ipairs(items or {}) do
      if item.task == release then
        return
      end
    end
  end
end

function M.handle(req)
  local fault = type(req.headers) == "table" and req.headers["x-test-fault"] or nil
  if fault == "raise" then
    error("injected by the contract test")
  end
  if fault == "hold" then
    hold(req.headers["x-test-release"])
    return real_handle(req)
  end
  if not KINDS[fault] then
    return real_handle(req)
  end
  M.store = failing_store(fault)
  local ok, res = pcall(real_handle, req)
  M.store = real_store
  if not ok then
    error(res, 0)
  end
  return res
end

return M
