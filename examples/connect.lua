-- Shared by the examples: a client for StackOne when STACKONE_API_KEY and
-- STACKONE_ACCOUNT_ID are set (STACKONE_BASE_URL may point elsewhere),
-- otherwise for the bundled local server, started here and stopped when
-- the returned guard is closed.
--
--   package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
--   local client, guard <close> = require("connect")()
--
-- Run from a checkout, it also makes the in-tree build of the Lua running
-- it loadable: build/ for 5.4 (`make`), build/<lua>/ for the others (`make
-- LUA=lua5.1`, `make LUA=luajit`...). Installed by the rock (`luarocks show
-- stackone` says where), the examples use the installed module and start
-- the installed `stackone-server`.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local lua_name = rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")
package.path = ("%s/../lua/?.lua;%s/../lua/?/init.lua;"):format(here, here) .. package.path
package.cpath = ("%s/../build%s/?.so;"):format(here, lua_name == "lua5.4" and "" or "/" .. lua_name) .. package.cpath

local stackone = require("stackone")

local function start_local_server()
  local out = os.tmpname()
  local server = here .. "/../server/stackone_server.lua"
  local script = io.open(server)
  if script then
    script:close()
    server = "lua5.4 " .. server
  else
    server = "stackone-server" -- the rock's command
  end
  local p = assert(io.popen(("%s --api-key example-key > %s 2>&1 & echo $!"):format(server, out)))
  local pid = tonumber(p:read("*l"))
  p:close()
  local port
  for _ = 1, 200 do
    local f = io.open(out)
    port = f and f:read("*a"):match("PORT (%d+)")
    if f then f:close() end
    if port then break end
    os.execute("sleep 0.02")
  end
  os.remove(out)
  assert(port, "the local server did not start")
  local guard = setmetatable({ local_server = true },
    { __close = function() os.execute("kill " .. pid .. " 2>/dev/null") end })
  return "http://127.0.0.1:" .. port, guard
end

return function(opts)
  opts = opts or {}
  local guard = setmetatable({}, { __close = function() end })
  local real = os.getenv("STACKONE_API_KEY") and os.getenv("STACKONE_ACCOUNT_ID")
  if not real and not os.getenv("STACKONE_BASE_URL") then
    local url
    url, guard = start_local_server()
    opts.api_key, opts.account_id, opts.base_url = "example-key", "acc-example", url
    io.stderr:write("(using the bundled local server at ", url, ")\n")
  else
    opts.base_url = opts.base_url or os.getenv("STACKONE_BASE_URL")
  end
  return assert(stackone.new(opts)), guard
end
