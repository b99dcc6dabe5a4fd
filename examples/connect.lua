-- Shared by the examples: a client for StackOne when STACKONE_API_KEY and
-- STACKONE_ACCOUNT_ID are set (STACKONE_BASE_URL may point elsewhere),
-- otherwise for the bundled local server, started here and stopped when
-- the returned guard is closed. It runs on every Lua from 5.1, so the
-- examples use no `<close>` (Lua 5.4 only):
--
--   package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
--   require("connect").run(function(client, server) ... end)
--
-- run() closes the client and stops the server however the function ends;
-- an error it raises is printed and the script exits with 1 (server.
-- local_server says whether the local server is in use). By hand:
--
--   local client, server = require("connect")(opts)
--   ... client:close(); server:close()   -- (on 5.4 `server <close>` works too)
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
  if script then -- a checkout: the server runs on the Lua running this
    script:close()
    local i = 0
    while arg and arg[i - 1] do i = i - 1 end
    local lua = arg and i < 0 and arg[i] or "lua5.4"
    server = "'" .. lua:gsub("'", "'\\''") .. "' '" .. server:gsub("'", "'\\''") .. "'"
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
  local stopped = false
  local function stop()
    if not stopped then os.execute("kill " .. pid .. " 2>/dev/null") end
    stopped = true
  end
  local guard = setmetatable({ local_server = true, close = stop }, { __close = stop })
  return "http://127.0.0.1:" .. port, guard
end

local function nothing() end

local function connect(opts)
  opts = opts or {}
  local guard = setmetatable({ close = nothing }, { __close = nothing })
  local real = os.getenv("STACKONE_API_KEY") and os.getenv("STACKONE_ACCOUNT_ID")
  if not real and not os.getenv("STACKONE_BASE_URL") then
    local url
    url, guard = start_local_server()
    opts.api_key, opts.account_id, opts.base_url = "example-key", "acc-example", url
    io.stderr:write("(using the bundled local server at ", url, ")\n")
  else
    opts.base_url = opts.base_url or os.getenv("STACKONE_BASE_URL")
  end
  local client, err = stackone.new(opts)
  if not client then
    guard:close()
    error(err, 2)
  end
  return client, guard
end

-- runs main(client, server) on a client from connect(opts) and closes
-- both however it ends; an error is printed (with the script's name) and
-- the process exits with 1
local function run(main, opts)
  local client, server = connect(opts)
  local ok, err = pcall(main, client, server)
  client:close()
  server:close()
  if not ok then
    io.stderr:write((arg and arg[0] or "example"):match("[^/\\]*$"), ": ", tostring(err), "\n")
    os.exit(1)
  end
end

return setmetatable({ connect = connect, run = run }, {
  __call = function(_, opts) return connect(opts) end,
})
