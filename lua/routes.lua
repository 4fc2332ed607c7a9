-- routes — the Task API: POST/GET /tasks, GET/PUT/DELETE /tasks/{id}.
--
-- The host calls routes.handle(request) and sends back the table it returns
-- (see runtime/host.h). Bad client input never raises: it gets a 4xx whose
-- JSON body is {"message": ..., "field": ...} naming the field at fault.
--
-- Decisions (edit the constants below to change the rules):
--   * `task` is stored trimmed of ASCII whitespace at both ends; the length
--     limit counts UTF-8 characters of the trimmed text. Invalid UTF-8 → 400.
--   * Unknown body fields are rejected (400 "Unknown field 'x'"), so a typo
--     such as "priorty" is not silently ignored. `id`, `created_at` and
--     `updated_at` are read-only (400). JSON null is a wrong type, not "unset".
--   * New tasks get time-ordered ids (UUIDv7), so GET /tasks, which lists
--     the caller's tasks newest first, lists them in creation order, newest
--     first. Any UUID is a valid id (v4 ids of older tasks sort among them by
--     their bytes). An id that is not a well-formed UUID is 404 "Task not
--     found" without a store call. Ids are case-insensitive (looked up in
--     lower case).
--   * A POST/PUT body with a Content-Type other than application/json
--     (parameters ignored, any case) is 415; a missing or blank one is accepted.
--   * Unknown query parameters are ignored. `limit` is plain decimal digits.
--     An empty, oversized or unknown `next` is 400 naming `next`.
--   * HEAD and any other method not listed for a path is 405 with Allow (and
--     Access-Control-Allow-Methods the same: the path's methods).
--   * Location keeps the stage/base-path prefix the client used (raw_path minus
--     path), so it resolves to the new task; with none it is /tasks/<id>.

local json = require("json")
local V = require("validate")
local R = require("respond")

-- Business rules ---------------------------------------------------------
local STATUSES = { "new", "in_progress", "completed", "cancelled" }
local PRIORITIES = { "low", "medium", "high", "urgent" }
local DEFAULT_STATUS = "new"
local DEFAULT_PRIORITY = "medium"
local MAX_TASK_LENGTH = 1000 -- characters, after trimming
local DEFAULT_LIMIT = 25
local MAX_LIMIT = 100
-- The longest cursor the store can issue (TH_CURSOR_MAX_TEXT, runtime/cursor.h:
-- DynamoDB's largest composite key, sealed); longer is refused unread.
local MAX_CURSOR_LENGTH = 4290
local PREFLIGHT_MAX_AGE = "600" -- seconds a browser may cache a preflight
local READ_ONLY_FIELDS = { "id", "created_at", "updated_at" }
local EDITABLE_FIELDS = { "task", "status", "priority" }
---------------------------------------------------------------------------

local M = {}

-- The native services, reachable here so tests can substitute them.
M.store = require("store")
M.clock = require("clock")
M.uuid = require("uuid")

local KNOWN_FIELDS = {}
for _, name in ipairs(READ_ONLY_FIELDS) do
  KNOWN_FIELDS[name] = true
end
for _, name in ipairs(EDITABLE_FIELDS) do
  KNOWN_FIELDS[name] = true
end

local function strip_trailing_slashes(path)
  local j = #path
  while j > 1 and path:byte(j) == 47 do
    j = j - 1
  end
  return path:sub(1, j)
end

-- What the client's URL had before our path: "/dev" for raw_path
-- "/dev/tasks" and path "/tasks"; "" when they agree or cannot be matched.
local function base_prefix(req)
  local raw, path = req.raw_path, req.path
  if type(raw) ~= "string" or type(path) ~= "string" or path == "/" then
    return ""
  end
  raw = strip_trailing_slashes(raw)
  if #raw > #path and raw:byte(1) == 47 and raw:sub(-#path) == path then
    return raw:sub(1, #raw - #path)
  end
  return ""
end

-- Reads the body of a POST/PUT: Content-Type check, then a JSON object.
-- Returns the decoded table, or nil and the error response.
local function read_json_body(req)
  local body = req.body
  if type(body) == "string" and body ~= "" then
    local headers = type(req.headers) == "table" and req.headers or {}
    local media = V.media_type(headers["content-type"])
    if media and media ~= "application/json" then
      return nil, R.error(415, "Content-Type must be application/json")
    end
  end
  local obj, msg = V.json_object(body)
  if not obj then
    return nil, R.error(400, msg, "body")
  end
  return obj
end

-- Checks a decoded body against the field rules. creating: POST (task
-- required, defaults applied); otherwise PUT (at least one field). Returns
-- the fields to store, or nil and the error response.
local function check_fields(obj, creating)
  for _, name in ipairs(READ_ONLY_FIELDS) do
    if obj[name] ~= nil then
      return nil, R.error(400, string.format("'%s' is read-only", name), name)
    end
  end
  local unknown -- the smallest unknown name, so the answer is stable
  for key in pairs(obj) do
    if not KNOWN_FIELDS[key] and (unknown == nil or tostring(key) < unknown) then
      unknown = tostring(key)
    end
  end
  if unknown then
    local name = V.display_name(unknown)
    return nil, R.error(400, string.format("Unknown field '%s'", name), name)
  end

  local fields, msg = {}, nil
  if obj.task ~= nil then
    fields.task, msg = V.text(obj.task, "task", MAX_TASK_LENGTH)
    if not fields.task then
      return nil, R.error(400, msg, "task")
    end
  elseif creating then
    return nil, R.error(400, "'task' is required", "task")
  end
  if obj.status ~= nil then
    fields.status, msg = V.one_of(obj.status, "status", STATUSES)
    if not fields.status then
      return nil, R.error(400, msg, "status")
    end
  elseif creating then
    fields.status = DEFAULT_STATUS
  end
  if obj.priority ~= nil then
    fields.priority, msg = V.one_of(obj.priority, "priority", PRIORITIES)
    if not fields.priority then
      return nil, R.error(400, msg, "priority")
    end
  elseif creating then
    fields.priority = DEFAULT_PRIORITY
  end

  if next(fields) == nil then
    return nil, R.error(400,
      "Request body has no fields to update: give at least one of 'task', 'status', 'priority'", "body")
  end
  return fields
end

local function task_not_found()
  return R.not_found("Task not found")
end

-- Handlers ---------------------------------------------------------------

local function list_tasks(req)
  local query = type(req.query) == "table" and req.query or {}
  local limit, msg = V.int_param(query.limit, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
  if not limit then
    return R.error(400, msg, "limit")
  end
  local cursor = query.next
  if cursor ~= nil and (type(cursor) ~= "string" or cursor == "" or #cursor > MAX_CURSOR_LENGTH
      or cursor:find("\0", 1, true)) then
    return R.error(400, "'next' is not a valid pagination token", "next")
  end
  local items, next_or_err = M.store.scan(limit, cursor)
  if not items then
    if cursor ~= nil and type(next_or_err) == "table" and next_or_err.kind == "invalid" then
      return R.error(400, "'next' is not a valid pagination token", "next")
    end
    return R.store_error(next_or_err, "scan")
  end
  items = json.array(items)
  return R.json(200, { items = items, count = #items, next = next_or_err or json.null })
end

local function create_task(req)
  local obj, bad = read_json_body(req)
  if not obj then
    return bad
  end
  local fields
  fields, bad = check_fields(obj, true)
  if not fields then
    return bad
  end
  local now = M.clock.now()
  local item = {
    task = fields.task,
    status = fields.status,
    priority = fields.priority,
    created_at = now,
    updated_at = now,
  }
  -- A v7 collision is next to impossible (one process never repeats an id;
  -- two would have to draw the same random bits in the same millisecond);
  -- a fresh id is still the right answer.
  for _ = 1, 3 do
    item.id = M.uuid.v7()
    local created, err = M.store.create(item)
    if created then
      return R.json(201, { id = item.id, task = item },
        { Location = base_prefix(req) .. "/tasks/" .. item.id })
    end
    if created == nil then
      return R.store_error(err, "create")
    end
  end
  return R.store_error({ kind = "internal", message = "uuid collisions" }, "create")
end

local function get_task(req, raw_id)
  local id = V.uuid(raw_id)
  if not id then
    return task_not_found()
  end
  local item, err = M.store.get(id)
  if item == nil then
    return err and R.store_error(err, "get") or task_not_found()
  end
  return R.json(200, item)
end

local function update_task(req, raw_id)
  local id = V.uuid(raw_id)
  if not id then
    return task_not_found()
  end
  local obj, bad = read_json_body(req)
  if not obj then
    return bad
  end
  local fields
  fields, bad = check_fields(obj, false)
  if not fields then
    return bad
  end
  fields.updated_at = M.clock.now()
  local item, err = M.store.update(id, fields)
  if item == nil then
    return err and R.store_error(err, "update") or task_not_found()
  end
  return R.json(200, { message = "Task updated successfully", task = item })
end

local function delete_task(req, raw_id)
  local id = V.uuid(raw_id)
  if not id then
    return task_not_found()
  end
  local old, err = M.store.delete(id)
  if old == nil then
    return err and R.store_error(err, "delete") or task_not_found()
  end
  return R.json(200, { message = "Task deleted successfully", id = id })
end

-- Routing ----------------------------------------------------------------

-- names: each request's operation in the metrics (docs/operations.md); the
-- host reads req.operation after the route returns. A short fixed set: never
-- a value taken from the request.
local ROUTES = {
  {
    pattern = "^/tasks$",
    methods = { GET = list_tasks, POST = create_task },
    names = { GET = "ListTasks", POST = "CreateTask" },
  },
  {
    pattern = "^/tasks/([^/]+)$",
    methods = { GET = get_task, PUT = update_task, DELETE = delete_task },
    names = { GET = "GetTask", PUT = "UpdateTask", DELETE = "DeleteTask" },
  },
}

local METHOD_ORDER = { "GET", "POST", "PUT", "PATCH", "DELETE" }
for _, route in ipairs(ROUTES) do
  local allow = {}
  for _, method in ipairs(METHOD_ORDER) do
    if route.methods[method] then
      allow[#allow + 1] = method
    end
  end
  allow[#allow + 1] = "OPTIONS"
  route.allow = table.concat(allow, ", ")
end

local function preflight(route)
  return R.json(204, "", {
    Allow = route.allow,
    ["Access-Control-Allow-Methods"] = route.allow,
    ["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE,
  })
end

function M.handle(req)
  local path = type(req.path) == "string" and strip_trailing_slashes(req.path) or ""
  for _, route in ipairs(ROUTES) do
    local capture = path:match(route.pattern)
    if capture then
      local handler = route.methods[req.method]
      if handler then
        req.operation = route.names[req.method]
        return handler(req, capture)
      end
      if req.method == "OPTIONS" then
        req.operation = "Preflight"
        return preflight(route)
      end
      req.operation = "MethodNotAllowed"
      return R.error(405, "Method not allowed", nil,
        { Allow = route.allow, ["Access-Control-Allow-Methods"] = route.allow })
    end
  end
  return R.not_found()
end

return M
