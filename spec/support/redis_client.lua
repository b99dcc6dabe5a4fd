-- The Redis client the specs give stackone.limit.redis: Debian's lua-redis
-- (packaged for 5.1 to 5.3; pure Lua on LuaSocket, so 5.4 and 5.5 load the
-- 5.3 copy), with a timeout so that a Redis that went away fails fast.
local M = {}

local function load_redis()
  local ok, redis = pcall(require, "redis")
  if ok then return redis end
  package.path = package.path .. ";/usr/share/lua/5.3/?.lua"
  return require("redis")
end

--- a connection to Redis on 127.0.0.1:port, or nil, err
function M.connect(host, port)
  local redis = load_redis()
  local ok, conn = pcall(redis.connect, { host = host, port = port, timeout = 2 })
  if not ok then return nil, conn end
  return conn
end

return M
