-- Starts a Redis server (Debian's redis-server) on a loopback port for a
-- spec, with nothing saved to disk, and stops it by PID.
local socket = require("socket")
local fx = require("support.fixtures")
local redis_client = require("support.redis_client")

local M = {}

local Redis = {}
Redis.__index = Redis

--- M.start(port?) -> redis: redis.port, redis.pid
function M.start(port)
  port = port or fx.closed_port()
  local log = os.tmpname()
  local p = assert(io.popen(("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no "
    .. "--dir /tmp > %s 2>&1 & echo $!"):format(port, log)))
  local pid = assert(tonumber(p:read("*l")), "could not start redis-server")
  p:close()
  local self = setmetatable({ pid = pid, port = port, log = log }, Redis)
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local conn = redis_client.connect("127.0.0.1", port)
    if conn then
      conn:quit()
      return self
    end
    socket.sleep(0.02)
  end
  self:stop()
  error("redis-server did not start: " .. (require("support.shell").read(log) or ""))
end

--- kills it (SIGKILL with kill = true: no goodbye to its clients)
function Redis:stop(kill)
  if self.pid then
    os.execute(("kill %s %d 2>/dev/null; while kill -0 %d 2>/dev/null; do sleep 0.01; done")
      :format(kill and "-9" or "", self.pid, self.pid))
    self.pid = nil
    os.remove(self.log)
  end
end

--- a connection (lua-redis)
function Redis:client()
  return assert(redis_client.connect("127.0.0.1", self.port))
end

--- every key with its value as text: { [key] = text }
function Redis:dump()
  local conn = self:client()
  local out = {}
  for _, key in ipairs(conn:keys("*")) do
    local kind = conn:type(key)
    kind = type(kind) == "table" and kind.ok or kind
    if kind == "zset" then
      local parts = {}
      for _, pair in ipairs(conn:zrange(key, 0, -1, "withscores")) do
        parts[#parts + 1] = tostring(pair[1]) .. "=" .. tostring(pair[2])
      end
      out[key] = table.concat(parts, " ")
    else
      out[key] = tostring(conn:get(key))
    end
  end
  conn:quit()
  return out
end

return M
