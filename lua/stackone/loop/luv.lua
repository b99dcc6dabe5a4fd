--- The engine on a luv loop (also Neovim's vim.uv): libcurl's sockets as
-- poll handles, its timer as a uv timer, and a waiting call as a
-- coroutine resumed from a uv callback.
return function(uv) -- stackone.loop.luv checked it
  local adapter = {}
  local polls = {}  -- fd -> poll handle
  local timer       -- libcurl's one timer
  local waits = {}  -- coroutine -> its timer

  local function ms(seconds)
    return math.ceil(seconds * 1000)
  end

  function adapter.io(_, fd, events, on_ready)
    local p = polls[fd]
    if not events then
      if p then
        polls[fd] = nil
        p:stop()
        p:close()
      end
      return
    end
    if not p then
      p = uv.new_socket_poll(fd)
      polls[fd] = p
    end
    p:start(events, function(err, ready)
      if err then return on_ready(fd, true, true) end -- libcurl finds the error
      on_ready(fd, ready:find("r", 1, true) ~= nil, ready:find("w", 1, true) ~= nil)
    end)
  end

  function adapter.timer(_, seconds, on_timeout)
    timer = timer or uv.new_timer()
    timer:stop()
    if seconds then timer:start(ms(seconds), 0, on_timeout) end
  end

  local function resume(co)
    local t = waits[co]
    waits[co] = nil
    t:stop()
    t:close()
    local ok, err = coroutine.resume(co)
    if not ok then error(err, 0) end -- the caller's own coroutine failed
  end

  function adapter.wait(_, co, seconds)
    local t = uv.new_timer()
    waits[co] = t
    if seconds then t:start(ms(seconds), 0, function() resume(co) end) end
    coroutine.yield()
  end

  function adapter.wake(_, co)
    local t = waits[co]
    if not t then return end
    t:stop()
    t:start(0, 0, function() resume(co) end) -- later, from the loop
  end

  return adapter
end
