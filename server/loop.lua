-- Single-threaded non-blocking event loop on socket.select: accepts
-- connections, reads and parses requests, and runs each connection's queue
-- of output actions (data, streamed bodies, timed pauses, end/close; see
-- faults.lua), so a stalled response never blocks another connection.
-- It also closes idle keep-alive connections (--idle-timeout) and stops
-- listening for a while when a step asks for it (refuse_for).
local socket = require("socket")
local http = require("stackone.server.http")

local loop = {}

local gettime, select = socket.gettime, socket.select
local min = math.min

local RECV_SIZE = 64 * 1024
local CHUNK = 64 * 1024
local MAX_CONNS = 900               -- select() only takes descriptors < FD_SETSIZE (1024)
local MAX_BUFFERED = 1024 * 1024    -- stop reading a busy connection past this
local LINGER = 2                    -- seconds to drain a half-closed connection
local RELISTEN_RETRY = 0.1          -- seconds between attempts to bind again

--- Serve forever. server: a listening LuaSocket master in timeout 0;
-- app: object with respond(req, conn_id, time) and malformed(status, msg);
-- stats: {connections, open}, updated here; opts (optional):
--   idle_timeout  seconds after which an idle connection is closed (nil: never)
--   relisten      function() -> a new listening master on the same address
--                 and port, or nil, err (needed for refuse_for)
function loop.run(server, app, stats, opts)
  opts = opts or {}
  local conns = {} -- socket -> connection state
  local next_id = 0
  local idle_timeout = opts.idle_timeout
  local refuse_until -- while set, `server` is nil: connect() is refused

  -- Stop accepting for dur seconds: closing the listening socket makes
  -- connect() fail with ECONNREFUSED (connections still in its backlog are
  -- reset). Accepted connections are not affected.
  local function refuse(dur)
    local till = gettime() + dur
    if not refuse_until or till > refuse_until then refuse_until = till end
    if server then
      server:close()
      server = nil
    end
  end

  local function relisten()
    local s, err = opts.relisten()
    if s then
      server, refuse_until = s, nil
    else
      io.stderr:write("stackone_server: cannot listen again: ", tostring(err), "\n")
      refuse_until = gettime() + RELISTEN_RETRY
    end
  end

  local function destroy(c, reset)
    if c.dead then return end
    c.dead = true
    -- SO_LINGER on with timeout 0: close() sends RST and drops unsent data
    if reset then c.sock:setoption("linger", { on = true, timeout = 0 }) end
    c.sock:close()
    conns[c.sock] = nil
    stats.open = stats.open - 1
  end

  -- Graceful close: send FIN, then discard input until the peer closes
  -- (closing with unread input would reset the connection and could
  -- destroy the response still in flight).
  local function close_gracefully(c)
    if c.peer_closed then return destroy(c) end
    c.sock:shutdown("send")
    c.lingering, c.want_write, c.idle_at = true, false, nil
    c.out, c.oh, c.ot = {}, 1, 0
    c.deadline = gettime() + LINGER
  end

  local function push(c, actions)
    local out, ot = c.out, c.ot
    for i = 1, #actions do
      ot = ot + 1; out[ot] = actions[i]
    end
    c.ot = ot
  end

  -- Run queued actions. Returns "idle", "blocked", "waiting", "close",
  -- "reset" or "dead".
  local function write(c)
    c.want_write = false
    local out, sock = c.out, c.sock
    while c.oh <= c.ot do
      local a = out[c.oh]
      local k = a.k
      if k == "stream" and not a.s and a.pos > a.last then
        out[c.oh] = nil; c.oh = c.oh + 1 -- a stream sent to its end
      elseif k == "data" or k == "stream" then
        if k == "stream" and not a.s then
          local j = min(a.pos + CHUNK - 1, a.last)
          a.s, a.i = a.src.piece(a.pos, j), 1
          a.pos = j + 1
        end
        local s = a.s
        if a.i <= #s then
          local last, err, partial = sock:send(s, a.i)
          if not last then
            if err ~= "timeout" then return "dead" end
            a.i = partial + 1
            c.want_write = true
            return "blocked"
          end
        end
        if k == "data" then
          out[c.oh] = nil; c.oh = c.oh + 1
        else
          a.s = nil
        end
      elseif k == "wait" then
        local now = gettime()
        if not a.at then a.at = now + a.dur end
        if now < a.at then
          c.deadline = a.at
          return "waiting"
        end
        c.deadline = nil
        out[c.oh] = nil; c.oh = c.oh + 1
      elseif k == "refuse" then
        out[c.oh] = nil; c.oh = c.oh + 1
        refuse(a.dur)
      else -- "end"
        out[c.oh] = nil; c.oh = c.oh + 1
        if a.reset then return "reset" end
        if a.close then return "close" end
      end
    end
    c.oh, c.ot = 1, 0
    return "idle"
  end

  -- Write what can be written, then parse and answer buffered requests.
  local function run(c)
    while true do
      local st = write(c)
      if st == "dead" then return destroy(c) end
      if st == "reset" then return destroy(c, true) end
      if st == "close" then return close_gracefully(c) end
      if st == "waiting" then
        -- the client went away while its response is stalled: drop it
        if c.peer_closed then destroy(c) end
        return
      end
      if st == "blocked" then return end
      local req, status, message = c.parser:take()
      if req then
        push(c, app:respond(req, c.id, gettime()))
      elseif req == false then
        push(c, app.malformed(status, message))
      elseif c.parser.want_continue then
        c.parser.want_continue = false
        push(c, { { k = "data", s = "HTTP/1.1 100 Continue\r\n\r\n", i = 1 } })
      else
        if c.peer_closed then destroy(c) end
        return
      end
    end
  end

  -- Idle: no request being read, nothing being written, nothing pending.
  local function is_idle(c)
    return c.oh > c.ot and not c.want_write and c.parser.state == "head" and c.parser:buffered() == 0
  end

  local function process(c)
    if c.dead or c.lingering then return end
    run(c)
    if idle_timeout and not c.dead and not c.lingering then
      if not is_idle(c) then
        c.idle_at = nil
      elseif not c.idle_at then
        c.idle_at = gettime() + idle_timeout
      end
    end
  end

  local function read(c)
    if c.dead then return end
    local data, err, partial = c.sock:receive(RECV_SIZE)
    if c.lingering then
      if err and err ~= "timeout" then destroy(c) end
      return
    end
    local chunk = data or partial
    if chunk and chunk ~= "" then
      c.parser:feed(chunk)
      c.idle_at = nil
    end
    if err == "closed" then
      c.peer_closed = true
    elseif err and err ~= "timeout" then
      return destroy(c)
    end
    process(c)
  end

  local function safely(fn, c)
    local ok, err = pcall(fn, c)
    if not ok then
      io.stderr:write("stackone_server: connection ", tostring(c.id), ": ", tostring(err), "\n")
      pcall(destroy, c)
    end
  end

  local function accept_all()
    -- server becomes nil when a request on a new connection asks for refuse_for
    while server and stats.open < MAX_CONNS do
      local sock = server:accept()
      if not sock then return end
      sock:settimeout(0)
      sock:setoption("tcp-nodelay", true)
      next_id = next_id + 1
      stats.connections, stats.open = stats.connections + 1, stats.open + 1
      local c = { id = next_id, sock = sock, parser = http.new_parser(), out = {}, oh = 1, ot = 0 }
      conns[sock] = c
      safely(read, c) -- the request is often there already
    end
  end

  local function turn()
    local recvt, sendt, nr, ns = {}, {}, 0, 0
    if server and stats.open < MAX_CONNS then nr = 1; recvt[1] = server end
    local now = gettime()
    local timeout = refuse_until and refuse_until - now
    for sock, c in pairs(conns) do
      if c.lingering or (not c.peer_closed and c.parser:buffered() < MAX_BUFFERED) then
        nr = nr + 1; recvt[nr] = sock
      end
      if c.want_write then ns = ns + 1; sendt[ns] = sock end
      local d = c.deadline
      if c.idle_at and (not d or c.idle_at < d) then d = c.idle_at end
      if d then
        d = d - now
        if not timeout or d < timeout then timeout = d end
      end
    end
    if timeout and timeout < 0 then timeout = 0 end
    local readable, writable = select(recvt, sendt, timeout)
    for _, sock in ipairs(readable) do
      if server and sock == server then
        accept_all()
      else
        local c = conns[sock]
        if c then safely(read, c) end
      end
    end
    for _, sock in ipairs(writable) do
      local c = conns[sock]
      if c then safely(process, c) end
    end
    if timeout then
      now = gettime()
      for _, c in pairs(conns) do
        if c.deadline and c.deadline <= now then
          if c.lingering then
            destroy(c)
          else
            c.deadline = nil
            safely(process, c)
          end
        end
        if c.idle_at and c.idle_at <= now and not c.dead and not c.lingering then
          c.idle_at = nil
          if is_idle(c) then safely(close_gracefully, c) end
        end
      end
      if refuse_until and refuse_until <= gettime() then relisten() end
    end
  end

  while true do
    local ok, err = pcall(turn)
    if not ok then
      io.stderr:write("stackone_server: event loop: ", tostring(err), "\n")
      socket.sleep(0.01)
    end
  end
end

return loop
