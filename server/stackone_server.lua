-- A local StackOne-compatible CRM API server for tests and benchmarks.
--
--   lua5.4 server/stackone_server.lua [--port N] [--host 127.0.0.1]
--       [--api-key KEY]... [--page-size-cap N] [--seed-contacts N]
--       [--latency SECONDS] [--idle-timeout SECONDS] [--rate-limit N/T]
--
-- The rock installs it as the command `stackone-server` (same options).
-- Prints exactly one line "PORT <n>" on stdout once listening; stops on
-- SIGTERM. See server/README.md for the API and the /__control/ interface.
--
-- Its modules are stackone.server.<name>. From a checkout they are the
-- files next to this one (server/<name>.lua), found first, so they win
-- over an installed copy. Installed, this file is the rock's
-- <tree>/lib/luarocks/rocks-<lua>/stackone/<version>/bin/stackone-server,
-- and its modules are in <tree>/share/lua/<lua>/stackone/server/, looked
-- for there too (LuaRocks' wrapper omits its own tree after a
-- --deps-mode=none install), then on package.path.
local script_dir = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
local module_dirs = { script_dir }
local tree, lua_version = script_dir:gsub("\\", "/"):match("^(.*)/lib/luarocks/rocks%-([%d.]+)/stackone/[^/]+/bin$")
if tree then module_dirs[2] = tree .. "/share/lua/" .. lua_version .. "/stackone/server" end
table.insert(package.searchers or rawget(package, "loaders"), 2, function(name)
  local short = name:match("^stackone%.server%.([%w_]+)$")
  if not short then return nil end
  local tried = {}
  for _, dir in ipairs(module_dirs) do
    local path = dir .. "/" .. short .. ".lua"
    local f = io.open(path, "r")
    if f then
      f:close()
      return assert(loadfile(path)), path
    end
    tried[#tried + 1] = "\n\tno file '" .. path .. "'"
  end
  return table.concat(tried)
end)

local function die(msg)
  io.stderr:write("stackone_server: ", msg, "\n")
  os.exit(2)
end

if not pcall(require, "socket") then
  die("needs LuaSocket 3 for " .. _VERSION .. " (Debian and Ubuntu: apt-get install lua-socket; " ..
    "LuaRocks: luarocks install luasocket)")
end
local socket = require("socket")
local app_mod = require("stackone.server.app")
local loop = require("stackone.server.loop")
local tointeger = require("stackone.server.compat").tointeger

local USAGE = [[
usage: stackone-server [options]   (from a checkout: lua5.4 server/stackone_server.lua)
  --port N            port to listen on (default 0: an ephemeral port)
  --host ADDR         address to bind (default 127.0.0.1)
  --api-key KEY       accepted API key; repeatable (default: test-key)
  --page-size-cap N   return at most N records per page (default 0: no cap)
  --seed-contacts N   start every account with N generated contacts (default 0)
  --latency SECONDS   wait this long before answering each /unified/ request
                      (default 0; other connections go on meanwhile)
  --idle-timeout SECONDS  close a keep-alive connection that has been idle
                      this long (default: never)
  --rate-limit N/T    answer 429 to a /unified/ request that arrives when N
                      were accepted in the last T seconds (default: off)
  --help              show this text
]]

local function parse_args(argv)
  local opts = { port = 0, host = "127.0.0.1", api_keys = {}, page_cap = 0, seed_contacts = 0, latency = 0 }
  local function seconds(name, value, positive)
    local sec = tonumber(value)
    if not sec or sec < 0 or sec ~= sec or sec == math.huge or (positive and sec == 0) then
      die("invalid value for " .. name .. ": " .. tostring(value))
    end
    return sec
  end
  local numeric = { ["--port"] = "port", ["--page-size-cap"] = "page_cap", ["--seed-contacts"] = "seed_contacts" }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    if not name then
      name = a
      if a ~= "--help" and a ~= "-h" then
        i = i + 1
        value = argv[i]
        if value == nil then die("missing value for " .. a) end
      end
    end
    if name == "--help" or name == "-h" then
      io.stdout:write(USAGE)
      os.exit(0)
    elseif numeric[name] then
      local n = tointeger(tonumber(value))
      if not n or n < 0 or (name == "--port" and n > 65535) then
        die("invalid value for " .. name .. ": " .. tostring(value))
      end
      opts[numeric[name]] = n
    elseif name == "--latency" then
      opts.latency = seconds(name, value)
    elseif name == "--idle-timeout" then
      opts.idle_timeout = seconds(name, value, true)
    elseif name == "--rate-limit" then
      local n, t = tostring(value):match("^(%d+)/([^/]+)$")
      n = tointeger(tonumber(n))
      if not n or n < 1 then die("invalid value for --rate-limit (want N/T, N >= 1): " .. tostring(value)) end
      opts.rate_limit = { n = n, t = seconds(name, t, true) }
    elseif name == "--host" then
      opts.host = value
    elseif name == "--api-key" then
      if value == "" then die("--api-key needs a non-empty key") end
      opts.api_keys[#opts.api_keys + 1] = value
    else
      die("unknown option " .. a .. "\n" .. USAGE)
    end
    i = i + 1
  end
  if #opts.api_keys == 0 then opts.api_keys[1] = "test-key" end
  return opts
end

-- A listening socket with SO_REUSEADDR (so that the same port can be bound
-- again after refuse_for while accepted connections live on), or nil, err.
local function open_listener(host, port)
  -- tcp4/tcp6, not tcp(): that one only makes its descriptor in bind(),
  -- so an option set before would be lost
  local server, err = (host:find(":", 1, true) and socket.tcp6 or socket.tcp4)()
  if not server then return nil, "socket: " .. tostring(err) end
  local ok
  ok, err = server:setoption("reuseaddr", true)
  if not ok then
    server:close()
    return nil, "SO_REUSEADDR: " .. tostring(err)
  end
  ok, err = server:bind(host, port)
  if not ok then
    server:close()
    return nil, string.format("cannot bind %s:%d: %s", host, port, tostring(err))
  end
  ok, err = server:listen(1024)
  if not ok then
    server:close()
    return nil, "listen: " .. tostring(err)
  end
  server:settimeout(0)
  return server
end

local opts = parse_args(arg or {})
local server, err = open_listener(opts.host, opts.port)
if not server then die(err) end
local _, port = server:getsockname()
port = tointeger(tonumber(port))
local stats = { connections = 0, open = 0 }
local app = app_mod.new({
  api_keys = opts.api_keys, page_cap = opts.page_cap,
  seed_contacts = opts.seed_contacts, stats = stats, latency = opts.latency,
  rate_limit = opts.rate_limit,
})

io.stdout:write("PORT ", tostring(port), "\n")
io.stdout:flush()

loop.run(server, app, stats, {
  idle_timeout = opts.idle_timeout,
  relisten = function() return open_listener(opts.host, port) end,
})
