--- Drives a call's job (the C core's job.c) to its end. The C side never
-- yields: job:step() says what to wait for, and the waiting happens here,
-- in Lua, so that a call may yield from its coroutine on every Lua
-- version. Two drivers: blocking (with an optional sleep function) and a
-- host loop (see stackone.loop).
local engine = {}

local compat = require("stackone.compat")

local protected, in_coroutine = compat.pcall, compat.in_coroutine
engine.in_coroutine = in_coroutine

-- a host callback raised `cause`: the call stops, keeping what it knows
local function interrupt(job, cause)
  local err = job:interrupt(cause)
  err.message = err.message .. " (" .. tostring(cause) .. ")"
  error(err, 0)
end

-- the call's results; the shared budget (if the call used one) marks
-- them when its store failed meanwhile
local function finish(job, budget)
  local value, more = job:result()
  if budget then budget:finish(job, more) end
  return value, more
end
engine.finish = finish

--- the blocking driver, from what the job's last step said: returns what
-- the call returns. "limit": the job has business with the client's
-- shared rate budget (stackone.limit)
local function go_on(job, what, seconds, sleep)
  local budget
  while what ~= "done" do
    if what == "limit" then
      budget = seconds
      budget:serve(job)
    else
      local ok, err = protected(sleep, seconds)
      if not ok then interrupt(job, err) end
    end
    what, seconds, sleep = job:step()
  end
  return finish(job, budget)
end
engine.go_on = go_on

--- the blocking driver: returns what the call returns
function engine.run(job)
  return go_on(job, job:step())
end

-- libcurl's CURL_POLL_* values as the events a loop watches
local EVENTS = { [1] = "r", [2] = "w", [3] = "rw", [4] = false }


-- the adapters that serve a client, so that one is not given to two
local serving = setmetatable({}, { __mode = "k" })

--- the driver of a client whose option `loop` is a host loop adapter.
-- handle: the core client; adapter: see stackone.loop. Returns a function
-- run(job) and a function to call when the client closes.
--
-- The adapter keeps the driver's callbacks in the loop (a luv handle's
-- callback lives in the registry), so they hold the client weakly: a
-- dropped client is collected, and its close lets go of the loop.
function engine.loop_driver(handle, adapter)
  local client = setmetatable({ handle }, { __mode = "v" })
  local waiting = {}   -- job -> the coroutine waiting in it
  local watched = {}   -- fd -> events, as the adapter was told
  local closed = false
  local on_ready, on_timeout
  serving[adapter] = true
  -- one descriptor for all of libcurl's sockets, where the platform has it
  if adapter.one_descriptor then handle:_io_gather() end

  -- what libcurl asked to watch, handed to the adapter in order
  local function sync(h)
    local changes, timer = h:_io_changes()
    for i = 1, #changes, 2 do
      local fd, events = changes[i], EVENTS[changes[i + 1]]
      watched[fd] = events or nil
      adapter:io(fd, events or nil, on_ready)
    end
    if timer ~= nil then adapter:timer(timer or nil, on_timeout) end
    h:_io_done() -- the loop let go: libcurl's closed sockets close now
  end

  -- resumes the calls that have something to do; collected first, since
  -- a resumed call may start or finish others
  local function wake()
    local ready = {}
    for job, co in pairs(waiting) do
      if job:ready() then ready[#ready + 1] = job; ready[job] = co end
    end
    for _, job in ipairs(ready) do
      if waiting[job] then
        waiting[job] = nil
        adapter:wake(ready[job])
      end
    end
  end

  local broken -- what the adapter raised inside the loop, if it did

  -- the adapter lets go of every watcher and of libcurl's timer, and
  -- every waiting call wakes to find its outcome; each adapter call is
  -- guarded, so that one that fails (or meets a loop Lua already closed)
  -- keeps none of the others from happening
  local function let_go()
    for fd in pairs(watched) do pcall(adapter.io, adapter, fd, nil, on_ready) end
    watched = {}
    pcall(adapter.timer, adapter, nil, on_timeout)
    local cos = {}
    for job, co in pairs(waiting) do cos[#cos + 1] = co; waiting[job] = nil end
    for _, co in ipairs(cos) do pcall(adapter.wake, adapter, co) end
  end

  local function step(h, fd, readable, writable)
    local finished = h:_io_action(fd, readable, writable)
    sync(h)
    return finished
  end

  -- from the loop: an error here must not reach the loop's own handler
  -- (luv's ends the process), so it stops the waiting calls instead
  local function act(fd, readable, writable)
    local h = client[1]
    if closed or broken or not h then return end
    local ok, finished = pcall(step, h, fd, readable, writable)
    if not ok then
      broken = finished
      let_go() -- every waiting call wakes to be interrupted
    elseif finished > 0 then
      wake()
    end
  end
  on_ready = act
  on_timeout = function() act(nil) end

  local function run(job)
    local co = compat.running() -- the coroutine the loop resumes
    local budget
    while true do
      local what, seconds = job:step()
      if broken then interrupt(job, broken) end
      if not closed then sync(handle) end
      if what == "done" then return finish(job, budget) end
      if what == "limit" then -- the store's client may yield to the loop
        budget = seconds
        budget:serve(job)
      else
        waiting[job] = co
        local ok, err = protected(adapter.wait, adapter, co, seconds)
        waiting[job] = nil
        if not ok then interrupt(job, err) end
        if broken then interrupt(job, broken) end
      end
    end
  end

  -- the client closed (also from its __gc, when dropped or as Lua
  -- closes): the adapter lets go of everything, its own handles too, and
  -- the waiting calls find their outcome (kind "closed")
  local function on_close()
    closed = true
    serving[adapter] = nil
    if adapter.close then pcall(adapter.close, adapter) end
    let_go()
  end

  return run, on_close
end

--- whether adapter already serves an open client
function engine.serving(adapter)
  return serving[adapter] == true
end

return engine
