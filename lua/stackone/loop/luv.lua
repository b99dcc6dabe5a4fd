--- The engine on a luv loop (also Neovim's vim.uv): libcurl's sockets as
-- poll handles, its timer as a uv timer, and a waiting call as a
-- coroutine resumed from the loop. `defer(fn)`, when given, runs fn
-- later outside any uv callback (Neovim's vim.schedule); without it a
-- call resumes inside the callback.
--
-- Two rules of luv (1.44) shape the handles' lives, both to survive the
-- process's exit:
-- - a handle closed while no uv.run follows crashes Lua's close (luv
--   frees it before the loop's own close runs its callback), so a handle
--   done with is stopped at once and closed only when the loop surely
--   runs: as one of this adapter's callbacks starts, or as a call waits;
-- - the client may close from its __gc while Lua closes, after luv has
--   finalized the handles: a finalized handle is never touched (luv would
--   dereference NULL), so each is checked first.
return function(uv, defer) -- stackone.loop checked its arguments
  -- luv 1.44 prints an error for a failed socket it polls: it is given
  -- one descriptor for all of libcurl's sockets instead, that never fails
  local adapter = { one_descriptor = true }
  local polls = {}   -- fd -> poll handle
  local timer        -- libcurl's one timer
  local waits = {}   -- coroutine -> the timer of its wait
  local spare = {}   -- stopped timers for the next waits
  local retired = {} -- stopped handles to close once the loop runs

  local function ms(seconds)
    return math.ceil(seconds * 1000)
  end

  -- false once luv has finalized the handle (is_closing then raises)
  local function usable(h)
    return h ~= nil and pcall(h.is_closing, h) and not h:is_closing()
  end

  local function close_retired()
    for i = #retired, 1, -1 do
      local h = retired[i]
      retired[i] = nil
      if usable(h) then h:close() end
    end
  end

  -- stopped now, closed later: closing a handle in the midst of the
  -- engine's reaction to a callback corrupted luv's loop (seen with the
  -- poll handle whose callback was running), so it waits for the next
  -- callback's start, or for a call's wait (the loop runs then)
  local function dispose(h)
    if not usable(h) then return end
    h:stop()
    retired[#retired + 1] = h
  end

  -- fn as a luv callback: the loop runs, so retired handles may close
  local function callback(fn)
    return function(...)
      close_retired()
      return fn(...)
    end
  end

  function adapter.io(_, fd, events, on_ready)
    local p = polls[fd]
    if not events then
      polls[fd] = nil
      dispose(p)
      return
    end
    if not p then
      local why
      p, why = uv.new_socket_poll(fd)
      if not p then error("stackone.loop.luv: cannot watch descriptor " .. fd .. ": " .. tostring(why), 0) end
      polls[fd] = p
    end
    -- an error (the socket failed) is for libcurl to find: it reads both ways
    p:start(events, callback(function(err, ready)
      if err or not ready then return on_ready(fd, true, true) end
      on_ready(fd, ready:find("r", 1, true) ~= nil, ready:find("w", 1, true) ~= nil)
    end))
  end

  local on_timer, on_timer_of -- callback(on_timeout), made once per on_timeout

  function adapter.timer(_, seconds, on_timeout)
    if not seconds then
      if usable(timer) then timer:stop() end
      return
    end
    if on_timer_of ~= on_timeout then on_timer, on_timer_of = callback(on_timeout), on_timeout end
    timer = timer or uv.new_timer()
    timer:stop()
    timer:start(ms(seconds), 0, on_timer)
  end

  local function resume(co)
    local ok, err = coroutine.resume(co)
    if not ok then error(err, 0) end -- the caller's own coroutine failed
  end

  -- a timer's callback names only its timer, never the coroutine: luv
  -- keeps a stopped timer's last callback, and a coroutine held there
  -- would hold its client
  local waiter = {}   -- timer -> the coroutine waiting on it
  local fire = {}     -- timer -> its callback

  -- the wait on t is over: exactly once, whichever of its timeout and a
  -- wake comes first; t is kept for another wait
  local function finish(t)
    local co = waiter[t]
    if not co then return end
    waiter[t], waits[co] = nil, nil
    t:stop()
    spare[#spare + 1] = t
    if defer then defer(function() resume(co) end) else resume(co) end
  end

  local function timer_for(co)
    local t = table.remove(spare)
    if not t then
      t = uv.new_timer()
      fire[t] = callback(function() finish(t) end)
    end
    waits[co], waiter[t] = t, co
    return t
  end

  function adapter.wait(_, co, seconds)
    close_retired() -- the loop will run: this call waits for it
    local t = timer_for(co)
    if seconds then t:start(ms(seconds), 0, fire[t]) end
    coroutine.yield()
  end

  function adapter.wake(_, co)
    local t = waits[co]
    if not usable(t) then return end
    t:stop()
    t:start(0, 0, fire[t]) -- later, from the loop
  end

  -- the client closed (its watchers are gone already): the adapter's own
  -- timers go too
  function adapter.close()
    dispose(timer)
    timer = nil
    for i = #spare, 1, -1 do fire[spare[i]] = nil; dispose(spare[i]); spare[i] = nil end
  end

  return adapter
end
