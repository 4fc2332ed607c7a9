-- Routes that stay inside one C call, where the count hook cannot run: only
-- the watchdog (runtime/watchdog.c, Lambda and --local) stops them. Shared
-- by test_lambda.sh and test_hostile_routes.sh, which copy this file into
-- their routes folder.
local M = {}

-- a backtracking Lua pattern: O(n^6) steps on 3000 bytes
function M.pattern()
  return { status = 200, body = { at = string.rep("a", 3000):find("(.-)(.-)(.-)(.-)(.-)(.-)b") } }
end

-- a plain search: O(n * m) byte comparisons
function M.search()
  local s = string.rep("a", 24 * 1024 * 1024)
  return { status = 200, body = { at = s:find(string.rep("a", 12 * 1024 * 1024) .. "b", 1, true) } }
end

return M
