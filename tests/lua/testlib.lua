-- testlib — a tiny test runner for scripts run with `taskhost --lua-test`.
-- T.test(name, fn) runs fn protected and counts it; the assertions raise.
-- T.finish() prints "N passed, N failed" and raises when anything failed.

local T = { passed = 0, failed = 0 }

local function show(v)
  if type(v) == "string" then
    if #v > 200 then
      v = v:sub(1, 200) .. "..."
    end
    return string.format("%q", v)
  end
  return tostring(v)
end
T.show = show

function T.test(name, fn)
  local ok, err = pcall(fn)
  if ok then
    T.passed = T.passed + 1
  else
    T.failed = T.failed + 1
    print("FAIL " .. name .. ": " .. tostring(err))
  end
end

function T.eq(actual, expected, what)
  if actual ~= expected then
    error(string.format("%s: expected %s, got %s", what or "value", show(expected), show(actual)), 2)
  end
end

function T.ok(cond, what)
  if not cond then
    error((what or "assertion") .. " failed", 2)
  end
  return cond
end

-- s contains part (plain text).
function T.has(s, part, what)
  if type(s) ~= "string" or not s:find(part, 1, true) then
    error(string.format("%s: expected %s to contain %s", what or "text", show(s), show(part)), 2)
  end
end

function T.finish()
  print(string.format("%d passed, %d failed", T.passed, T.failed))
  if T.failed > 0 then
    error(string.format("%d test(s) failed", T.failed), 0)
  end
end

return T
