-- concurrency.lua — the wrk script of test_serve_concurrency.sh.
--
-- Run with one connection per thread (wrk -tN -cN): on a connection wrk calls
-- request() only once the previous response is complete (no pipelining with a
-- request() function), so in each thread the requests and responses strictly
-- alternate and a response always answers the op generated last.
--
-- Each thread mixes:
--   POST   /tasks       a task text unique to the thread and its counter
--   PUT    /tasks/{id}  a unique task/status/priority; first the pre-created ids
--                       this thread owns for updates (each updated once), then
--                       tasks this thread created and saw acknowledged
--   DELETE /tasks/{id}  first the pre-created ids this thread owns for deletes
--                       (each deleted once, disjoint from the updated ones), then
--                       tasks this thread created (deleted ids are never reused)
-- Every op is logged to $CONC_DIR/t<N>.log, one line when it is generated and
-- one when its response arrives, so the checker can replay each thread:
--   S <seq> C - <text>      |  S <seq> U <id> <text> <status> <priority>
--   S <seq> D <id> -        |  A <seq> <http status> <response body>
-- (fields are tab-separated). An op with an S line and no A line was in flight
-- when wrk stopped: either outcome is allowed.
--
-- Environment: CONC_DIR (required) holds pool.ids, the pre-created ids, one a
-- line; done() writes $CONC_DIR/summary.txt (wrk's counters, key=value).

local dir = assert(os.getenv("CONC_DIR"), "CONC_DIR must be set")

-- ---- main state: hand each thread its share of the pool ----------------------

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- ---- thread state -------------------------------------------------------------

local tid, log
local seq = 0
local upd_pool, del_pool = {}, {}  -- pre-created ids this thread owns
local own = {}                     -- acknowledged creates of this thread, still present
local pending = nil                -- the op whose response is awaited
local STATUSES = { "new", "in_progress", "completed", "cancelled" }
local PRIORITIES = { "low", "medium", "high", "urgent" }
local JSON_HDR = { ["Content-Type"] = "application/json" }

function init(args)
  tid = wrk.thread:get("tid")
  local nthreads = tonumber(os.getenv("CONC_THREADS"))
  -- Pool line i (1-based) goes to thread ((i-1) % nthreads) + 1; within a
  -- thread, its k-th id is for updates (k%3==1), deletes (k%3==2) or left
  -- untouched (k%3==0).
  local i, k = 0, 0
  for id in io.lines(dir .. "/pool.ids") do
    i = i + 1
    if (i - 1) % nthreads + 1 == tid then
      k = k + 1
      if k % 3 == 1 then
        table.insert(upd_pool, id)
      elseif k % 3 == 2 then
        table.insert(del_pool, id)
      end
    end
  end
  math.randomseed(tid * 7919)
  log = assert(io.open(string.format("%s/t%d.log", dir, tid), "w"))
  -- wrk never closes the threads' Lua states: no buffered line may be lost.
  log:setvbuf("line")
end

local function new_op()
  seq = seq + 1
  local r = math.random(100)
  local op = { seq = seq }
  if r <= 30 and (#upd_pool > 0 or #own > 0) then
    op.kind = "U"
    if #upd_pool > 0 then
      op.id = table.remove(upd_pool)
    else
      op.id = own[math.random(#own)]
    end
    op.text = string.format("upd t%d n%d", tid, seq)
    op.status = STATUSES[math.random(#STATUSES)]
    op.priority = PRIORITIES[math.random(#PRIORITIES)]
    op.req = wrk.format("PUT", "/tasks/" .. op.id, JSON_HDR,
      string.format('{"task":"%s","status":"%s","priority":"%s"}', op.text, op.status, op.priority))
    log:write(string.format("S\t%d\tU\t%s\t%s\t%s\t%s\n", seq, op.id, op.text, op.status, op.priority))
  elseif r <= 55 and (#del_pool > 0 or #own > 0) then
    op.kind = "D"
    if #del_pool > 0 then
      op.id = table.remove(del_pool)
    else
      local j = math.random(#own)
      op.id = own[j]
      own[j] = own[#own]
      own[#own] = nil
    end
    op.req = wrk.format("DELETE", "/tasks/" .. op.id)
    log:write(string.format("S\t%d\tD\t%s\t-\n", seq, op.id))
  else
    op.kind = "C"
    op.text = string.format("new t%d n%d", tid, seq)
    op.req = wrk.format("POST", "/tasks", JSON_HDR, string.format('{"task":"%s"}', op.text))
    log:write(string.format("S\t%d\tC\t-\t%s\n", seq, op.text))
  end
  return op
end

function request()
  -- wrk also calls request() once before the run to inspect the request
  -- (never sent): an op still unanswered is the same op again, so that probe
  -- costs nothing. (A reconnect would re-send it too, but wrk counts every
  -- dropped connection as a socket error, which fails the test anyway.)
  if not pending then
    pending = new_op()
  end
  return pending.req
end

function response(status, headers, body)
  local op = pending
  pending = nil
  if not op then
    return
  end
  log:write(string.format("A\t%d\t%d\t%s\n", op.seq, status, (body or ""):gsub("[\r\n]", " ")))
  if op.kind == "C" and status == 201 then
    local id = body:match('"id":"([0-9a-f-]+)"') -- the task's id and its copy in .task are equal
    if id then
      table.insert(own, id)
    end
  end
end

function done(summary, latency, requests)
  local f = assert(io.open(dir .. "/summary.txt", "w"))
  local e = summary.errors
  f:write(string.format("requests=%d\nduration_us=%d\nbytes=%d\n", summary.requests,
    summary.duration, summary.bytes))
  f:write(string.format("connect=%d\nread=%d\nwrite=%d\nstatus=%d\ntimeout=%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  f:write(string.format("latency_p50_us=%d\nlatency_p99_us=%d\nlatency_max_us=%d\n",
    latency:percentile(50), latency:percentile(99), latency.max))
  f:close()
end
