-- Starts a Redis server (Debian's redis-server) on a loopback port for a
-- spec, with nothing saved to disk, and stops it by PID.
local fx = require("support.fixtures")
local process = require("support.process")
local redis_client = require("support.redis_client")

local M = {}

local Redis = {}
Redis.__index = Redis

local function answers(port)
  local conn = redis_client.connect("127.0.0.1", port)
  if conn then conn:quit() end
  return conn ~= nil
end

--- M.start(port?) -> redis: redis.port, redis.pid
function M.start(port)
  port = port or fx.closed_port()
  local server = process.start{ what = "redis-server", ready = function() return answers(port) end,
    command = ("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --dir /tmp"):format(port) }
  return setmetatable({ process = server, pid = server.pid, port = port }, Redis)
end

--- kills it (SIGKILL with kill = true: no goodbye to its clients), and
-- waits until it is gone
function Redis:stop(kill)
  if self.process then
    self.process:stop(kill and "KILL" or "TERM")
    self.process, self.pid = nil, nil
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
