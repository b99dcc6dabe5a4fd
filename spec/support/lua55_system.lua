-- What busted takes from luasystem (busted/core.lua: gettime, monotime,
-- sleep), for the Lua 5.5 that scripts/lua55.sh builds: Debian's archive
-- serves no luasystem source to build for 5.5, and LuaSocket, built for
-- it, has the same clock and sleep. Installed there as `system`.
local socket = require("socket")

return {
  gettime = socket.gettime,
  -- LuaSocket's clock is the wall clock; busted only subtracts two readings
  monotime = socket.gettime,
  sleep = socket.sleep,
}
