--- The engine on cqueues: one coroutine of the controller polls libcurl's
-- sockets and timer while any are wanted; a waiting call waits on a
-- condition variable.
local cqueues = require("cqueues")
local condition = require("cqueues.condition")

local unpack = require("stackone.compat").unpack

return function(controller)
  local adapter = {}
  local fds = {}               -- fd -> pollable { pollfd = fd, events = "r" }
  local on_ready, on_timeout   -- the engine's, from the last io/timer call
  local deadline               -- libcurl's timer, on cqueues.monotime()
  local changed = condition.new()
  local polling = false
  local waits = {}             -- coroutine -> condition

  local function poll_loop()
    while next(fds) or deadline do
      local objs = { changed }
      for _, p in pairs(fds) do objs[#objs + 1] = p end
      if deadline then objs[#objs + 1] = math.max(0, deadline - cqueues.monotime()) end
      local ready = { cqueues.poll(unpack(objs)) }
      if deadline and cqueues.monotime() >= deadline then
        deadline = nil
        on_timeout()
      end
      for _, p in ipairs(ready) do
        if type(p) == "table" and fds[p.pollfd] == p then on_ready(p.pollfd) end
      end
    end
    polling = false
  end

  local function stir()
    if not polling then
      polling = true
      local cq = controller or cqueues.running()
      cq:wrap(poll_loop)
    end
    changed:signal()
  end

  function adapter.io(_, fd, events, ready_fn)
    on_ready = ready_fn
    if events then
      fds[fd] = { pollfd = fd, events = events }
    else
      fds[fd] = nil
      cqueues.cancel(fd) -- before the engine closes it
    end
    stir()
  end

  function adapter.timer(_, seconds, timeout_fn)
    on_timeout = timeout_fn
    deadline = seconds and cqueues.monotime() + seconds or nil
    if deadline or polling then stir() end
  end

  function adapter.wait(_, co, seconds)
    local c = condition.new()
    waits[co] = c
    c:wait(seconds)
    waits[co] = nil
  end

  function adapter.wake(_, co)
    local c = waits[co]
    if c then c:signal() end
  end

  return adapter
end
