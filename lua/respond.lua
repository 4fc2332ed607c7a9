-- respond — the response tables routes.handle returns. The host encodes a
-- table body as JSON and adds Content-Type, CORS and nosniff headers itself.

local log = require("log")

local R = {}

function R.json(status, body, headers)
  return { status = status, headers = headers or {}, body = body }
end

-- A client error: {"message": ..., "field": ...}; field only when one is at fault.
function R.error(status, message, field, headers)
  return R.json(status, { message = message, field = field }, headers)
end

function R.not_found(message)
  return R.error(404, message or "Not found")
end

-- Maps a store failure (err = {kind=, message=}) to a response. The detail
-- stays in the log: 5xx bodies never carry it.
function R.store_error(err, op)
  local kind = type(err) == "table" and err.kind or "internal"
  local detail = type(err) == "table" and err.message or tostring(err)
  if kind == "throttled" or kind == "unavailable" then
    log.warn("store unavailable", { op = op, kind = kind, error = detail })
    return R.error(503, "Service temporarily unavailable", nil, { ["Retry-After"] = "1" })
  end
  if kind == "precondition" then -- an If-Match that did not hold (the host ensures this too)
    return R.error(412, "Precondition failed")
  end
  if kind == "invalid" then
    log.warn("store rejected request", { op = op, kind = kind, error = detail })
    return R.error(400, "Invalid request")
  end
  log.error("store failed", { op = op, kind = kind, error = detail })
  return R.error(500, "Internal server error")
end

return R
