--- stackone.limit.redis(conn, opts): a shared rate budget in Redis, for
-- processes on any number of machines. Each decision is one script run
-- inside Redis (atomic, on Redis's clock): the rule of
-- stackone.limit.window on a sorted set of places scored by when they
-- free, and a key for the shared pause. Keys expire when the budget is
-- idle.
--
-- conn: a Redis client object with eval and evalsha (Debian's lua-redis,
-- OpenResty's lua-resty-redis, or an adapter), or a function that returns
-- one (or nil, err): called at the first decision, after any error, and in
-- a process forked from the one that connected, so no two processes share
-- a connection. opts.prefix: the keys' prefix (default "stackone:budget:").
local core = require("stackone.core")
local compat = require("stackone.compat")

local pid = core.limit.pid

local redis = {}

-- KEYS: the places (a sorted set: id -> when it frees), the pause (when
-- it ends). ARGV: requests, per, hold, pause, #take, #sent, #unsent, then
-- the ids to take, id and seconds ago for each sent, the ids unsent.
-- Returns { granted, wait } (wait as a string: Redis makes numbers
-- integers).
local SCRIPT = [[
local places, pause_key = KEYS[1], KEYS[2]
local requests, per, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local pause = tonumber(ARGV[4])
local ntake, nsent, nunsent = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local a = 8
local take = {}
for i = 1, ntake do take[i] = ARGV[a]; a = a + 1 end
for _ = 1, nsent do
  redis.call('ZADD', places, 'XX', now - tonumber(ARGV[a + 1]) + per, ARGV[a])
  a = a + 2
end
for _ = 1, nunsent do redis.call('ZREM', places, ARGV[a]); a = a + 1 end
local paused = tonumber(redis.call('GET', pause_key) or '0')
if pause > 0 and now + pause > paused then
  paused = now + pause
  redis.call('SET', pause_key, string.format('%.6f', paused), 'PX', math.ceil(pause * 1000))
end
redis.call('ZREMRANGEBYSCORE', places, '-inf', now)
local granted, wait = 0, 0
if paused > now then
  wait = paused - now
else
  granted = math.max(0, math.min(ntake, requests - redis.call('ZCARD', places)))
  for i = 1, granted do redis.call('ZADD', places, now + per + hold, take[i]) end
  if granted < ntake then
    local first = redis.call('ZRANGE', places, 0, 0, 'WITHSCORES')
    wait = (tonumber(first[2]) or now + per + hold) - now
    if wait > per then wait = math.max(per / requests, 0.01) end
  end
end
if redis.call('EXISTS', places) == 1 then
  redis.call('PEXPIRE', places, math.ceil((per + hold) * 1000) + 1000)
end
return { granted, string.format('%.6f', wait) }
]]

local Store = {}
Store.__index = Store
Store.__name = "stackone.limit.redis"

-- conn[method](conn, ...) -> reply | nil, err, whether the client returns
-- errors (lua-resty-redis) or raises them (lua-redis)
local function call(conn, method, ...)
  local reply, err
  local args = compat.pack(...)
  local ok, raised = compat.pcall(function()
    reply, err = conn[method](conn, compat.unpack(args, 1, args.n))
  end)
  if not ok then return nil, tostring(raised) end
  if reply == nil then return nil, tostring(err or "no reply") end
  return reply
end

local function connection(self)
  if self.conn and self.pid == pid() then return self.conn end
  if not self.connect then
    return nil, "the Redis connection was made in another process (a fork): give "
      .. "stackone.limit.redis a function that connects"
  end
  local conn, err = self.connect()
  if not conn then return nil, "cannot connect to Redis: " .. tostring(err) end
  self.conn, self.pid, self.sha = conn, pid(), nil
  return conn
end

-- closes a connection we made: lua-resty-redis has close; lua-redis has
-- none (its `shutdown` is Redis's SHUTDOWN command!), so its socket
local function close(conn)
  pcall(function()
    if type(conn.close) == "function" then conn:close()
    elseif type(conn.network) == "table" and conn.network.socket then conn.network.socket:close() end
  end)
end

-- a connection that failed is not used again (a reply may be pending on
-- it); one the user gave stays theirs
local function drop(self, err)
  if self.connect and self.conn then
    close(self.conn)
    self.conn = nil
  end
  return nil, err
end

function Store:update(name, change)
  local conn, err = connection(self)
  if not conn then return nil, err end
  local args = { self.prefix .. "{" .. name .. "}:places", self.prefix .. "{" .. name .. "}:pause",
    change.requests, change.per, change.hold, change.pause or 0, #change.take, 0, #change.unsent }
  for _, id in ipairs(change.take) do args[#args + 1] = id end
  local nsent = 0
  for id, ago in pairs(change.sent) do
    args[#args + 1] = id
    args[#args + 1] = ("%.6f"):format(ago)
    nsent = nsent + 1
  end
  args[8] = nsent
  for _, id in ipairs(change.unsent) do args[#args + 1] = id end
  for i = 3, 9 do args[i] = tostring(args[i]) end
  local reply
  if not self.sha then -- Redis names the script itself: no SHA-1 here
    self.sha, err = call(conn, "eval", "return redis.sha1hex(ARGV[1])", 0, SCRIPT)
    if not self.sha then return drop(self, err) end
  end
  reply, err = call(conn, "evalsha", self.sha, 2, compat.unpack(args))
  if not reply and err:find("NOSCRIPT", 1, true) then
    reply, err = call(conn, "eval", SCRIPT, 2, compat.unpack(args))
  end
  if not reply then return drop(self, err) end
  if type(reply) ~= "table" then return drop(self, "a wrong reply from the script") end
  return tonumber(reply[1]), tonumber(reply[2])
end

function redis.new(conn, opts)
  local kind = type(conn)
  if kind ~= "function" and kind ~= "table" and kind ~= "userdata" then
    error("stackone.limit.redis: a Redis client object or a function that connects expected, got " .. kind, 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("stackone.limit.redis: table of options expected, got " .. type(opts), 3)
  end
  local prefix = opts and opts.prefix or "stackone:budget:"
  if type(prefix) ~= "string" then error("stackone.limit.redis: opts.prefix must be a string", 3) end
  return setmetatable({
    conn = kind ~= "function" and conn or nil,
    connect = kind == "function" and conn or nil,
    pid = pid(), prefix = prefix,
  }, Store)
end

return redis
