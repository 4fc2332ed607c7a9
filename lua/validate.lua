-- validate — small checks on untrusted request input. Nothing here raises on
-- bad input: each check returns the cleaned value, or nil and a message that
-- names the field. The rules themselves (allowed values, limits) are passed in
-- by routes.lua, which owns them.
--
-- Every scan over client text is linear: no pattern that can backtrack over a
-- long run of spaces or slashes (an unanchored "%s+$" is quadratic).

local json = require("json")

local V = {}

local function is_space(b)
  return b == 32 or (b ~= nil and b >= 9 and b <= 13) -- the same set as %s
end

-- Removes ASCII whitespace at both ends.
function V.trim(s)
  local i = s:find("%S")
  if not i then
    return ""
  end
  local j = #s
  while is_space(s:byte(j)) do
    j = j - 1
  end
  return s:sub(i, j)
end

-- A name safe to echo back in a message: valid UTF-8, short.
function V.display_name(s)
  if type(s) ~= "string" then
    return "?"
  end
  local n = utf8.len(s)
  if not n then
    return "(invalid UTF-8)"
  end
  if n > 64 then
    return s:sub(1, utf8.offset(s, 65) - 1) .. "..."
  end
  return s
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- The id in lower case when s is a well-formed UUID (any version, either
-- case), else nil.
function V.uuid(s)
  if type(s) ~= "string" or #s ~= 36 or not s:find(UUID) then
    return nil
  end
  return s:lower()
end

-- An integer query parameter written as plain decimal digits ("05" is 5;
-- "", " 5", "+5", "5.0", "1e2" are refused). nil when absent gives default.
function V.int_param(value, name, min, max, default)
  if value == nil then
    return default
  end
  local msg = string.format("'%s' must be an integer from %d to %d", name, min, max)
  if type(value) ~= "string" or #value == 0 or #value > 9 or not value:find("^%d+$") then
    return nil, msg
  end
  local n = math.tointeger(tonumber(value))
  if not n or n < min or n > max then
    return nil, msg
  end
  return n
end

-- The media type of a Content-Type value, lower case, without parameters;
-- nil when the header is absent or blank.
function V.media_type(content_type)
  if type(content_type) ~= "string" then
    return nil
  end
  local media = V.trim(content_type:match("^[^;]*"))
  if media == "" then
    return nil
  end
  return media:lower()
end

-- Decodes a request body that must be a JSON object. Returns the table, or
-- nil and a message about `body`. cjson 2.1.0 decodes [] and {} to the same
-- empty table, so "is an object" is read from the text's first character.
function V.json_object(body)
  if type(body) ~= "string" or not body:find("%S") then
    return nil, "Request body is required"
  end
  local ok, value, err = pcall(json.decode, body)
  if not ok or value == nil then
    return nil, "Request body is not valid JSON: " .. tostring(ok and err or value)
  end
  if type(value) ~= "table" or not body:find("^[ \t\r\n]*{") then
    return nil, "Request body must be a JSON object"
  end
  return value
end

-- A text field: a string of valid UTF-8, trimmed, 1..max characters.
-- Returns the trimmed text, or nil and a message naming the field.
function V.text(value, name, max)
  if type(value) ~= "string" then
    return nil, string.format("'%s' must be a string", name)
  end
  if not utf8.len(value) then
    return nil, string.format("'%s' must be valid UTF-8 text", name)
  end
  local text = V.trim(value)
  if text == "" then
    return nil, string.format("'%s' must not be empty", name)
  end
  if utf8.len(text) > max then
    return nil, string.format("'%s' must be at most %d characters", name, max)
  end
  return text
end

-- A string that must be one of the values listed in `allowed` (a list).
function V.one_of(value, name, allowed)
  local msg = string.format("'%s' must be one of: %s", name, table.concat(allowed, ", "))
  if type(value) ~= "string" then
    return nil, string.format("'%s' must be a string, one of: %s", name, table.concat(allowed, ", "))
  end
  for _, v in ipairs(allowed) do
    if value == v then
      return value
    end
  end
  return nil, msg
end

return V
