--- Many functions at once on one client, without a host loop: each runs
-- in a coroutine of its own, and a call it makes gives way (yields) while
-- its requests are on the network, so that the calls of all of them
-- overlap on the client's engine, as create_many's records do. A client
-- with a loop runs them in the loop instead: their calls yield to it.
--
--   fanout.run_all(fns, opts, adapter) -> results, summary
--     results[i] = { value = what fns[i] returned } or { err = its error
--     (raised, or the err of a `nil, err` return) }
--     summary = { ok, failed, elapsed [, progress_error] }
--   fanout.in_scheduler() -> whether the running code is one of them
--   fanout.run_job(job) -> what the call returns (a blocking client's
--     driver, inside one of them)
local compat = require("stackone.compat")
local core = require("stackone.core")
local finish = require("stackone.engine").finish

local fanout = {}

local create, resume, yield, status = coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local pack = compat.pack

-- what a call yields to the scheduler: this marker and its job
local GIVE_WAY = {}

-- the coroutines the blocking scheduler runs
local scheduled = setmetatable({}, { __mode = "k" })

-- the longest the scheduler blocks in one go: a round ends sooner when
-- any transfer of the engine moves
local MAX_BLOCK = 1

function fanout.in_scheduler()
  return scheduled[compat.running()] == true
end

-- whether run_all has ever scheduled a function: until then no code can
-- be one of them, and a call need not ask in_scheduler (which costs more
-- than the rest of a call's Lua)
fanout.ever_scheduled = false

-- a call's job, stepped by the scheduler; "limit": its business with
-- the client's shared rate budget, done here (see engine.run)
function fanout.run_job(job)
  local budget
  while true do
    local what, shared = job:step(0)
    if what == "done" then return finish(job, budget) end
    if what == "limit" then
      budget = shared
      budget:serve(job)
    else
      yield(GIVE_WAY, job)
    end
  end
end

-- one function's outcome, from compat.pcall and its results
local function outcome(ok, err, out)
  if not ok then return { err = err } end
  if out[1] == nil and out[2] ~= nil then return { err = out[2] } end
  return { value = out[1] }
end

-- the bookkeeping both schedulers share: results, counts, on_progress
local function tally(total, on_progress)
  local t = { results = {}, ok = 0, failed = 0, started = core.now() }
  function t.finish(i, result)
    t.results[i] = result
    if result.err ~= nil then t.failed = t.failed + 1 else t.ok = t.ok + 1 end
    if on_progress and t.progress_error == nil then
      local ok, e = pcall(on_progress, t.ok + t.failed, total, t.failed)
      if not ok then t.progress_error = e end
    end
  end
  function t.summary()
    return { ok = t.ok, failed = t.failed, elapsed = core.now() - t.started, progress_error = t.progress_error }
  end
  return t
end

-- fns[i] as a coroutine body that records its outcome
local function body(fns, i, t)
  return function()
    local out
    local ok, err = compat.pcall(function() out = pack(fns[i]()) end)
    t.finish(i, outcome(ok, err, out))
  end
end

-- the blocking scheduler: steps every waiting call's job in turn without
-- waiting; when none finished, blocks on the engine (any transfer's
-- progress ends the wait) for at most the nearest wake of any of them
local function run_blocking(fns, concurrency, t)
  local waiting, index, live, next_fn = {}, {}, 0, 1
  local function go(co, ...)
    local r = pack(resume(co, ...))
    if status(co) == "dead" then
      live = live - 1
      waiting[co] = nil
    elseif r[2] == GIVE_WAY then
      waiting[co] = r[3]
    else -- it yielded outside a call of this client: it cannot go on
      live = live - 1
      waiting[co] = nil
      t.finish(index[co], { err = "it yielded outside a call of the client that runs it" })
    end
  end
  local function spawn()
    while live < concurrency and next_fn <= #fns do
      local co = create(body(fns, next_fn, t))
      index[co] = next_fn
      next_fn = next_fn + 1
      scheduled[co] = true
      fanout.ever_scheduled = true
      live = live + 1
      go(co)
    end
  end
  spawn()
  while live > 0 do
    local finished, nearest, any = false, MAX_BLOCK, nil
    local ready = {}
    for co, job in pairs(waiting) do
      local what, seconds = job:step(0)
      if what == "done" or what == "limit" then -- its coroutine goes on
        ready[#ready + 1] = co
      else
        any = job
        if seconds and seconds < nearest then nearest = seconds end
      end
    end
    for _, co in ipairs(ready) do
      finished = true
      go(co)
    end
    spawn()
    if not finished and any then any:step(nearest > 0 and nearest or 0) end
  end
end

-- in a host loop: the caller's coroutine waits in the adapter until the
-- last function ends; each function's coroutine is resumed by the loop
-- as its calls finish, and one that ends starts the next
local function run_in_loop(fns, concurrency, t, adapter)
  local caller, live, next_fn, waiting = compat.running(), 0, 1, false
  local spawn
  local function ended()
    live = live - 1
    spawn()
    if live == 0 and waiting then adapter:wake(caller) end
  end
  spawn = function()
    while live < concurrency and next_fn <= #fns do
      local run = body(fns, next_fn, t)
      next_fn = next_fn + 1
      live = live + 1
      local co = create(function() run(); ended() end)
      local ok, e = resume(co)
      if not ok then error(e, 0) end
    end
  end
  spawn()
  while live > 0 do
    waiting = true
    adapter:wait(caller, nil)
    waiting = false
  end
end

function fanout.run_all(fns, opts, adapter)
  local t = tally(#fns, opts.on_progress)
  if adapter then
    run_in_loop(fns, opts.concurrency, t, adapter)
  else
    run_blocking(fns, opts.concurrency, t)
  end
  return t.results, t.summary()
end

return fanout
