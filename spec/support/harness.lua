-- The servers a describe block needs, and a client on them: one call
-- registers busted's setup (start), before_each (reset) and teardown
-- (close the client, stop the server by PID) for the enclosing block.
--
--   local server, client
--   harness.serve({ args = fx.SERVER_ARGS .. " --latency 0.2", client = { timeout = 3 } },
--     function(s, c) server, client = s, c end)
--
-- opts (all optional):
--   args          the local server's arguments (default fx.SERVER_ARGS)
--   start         function() -> server, instead of the local server (e.g. h2.start)
--   reset         false: no server:reset() before each test (default: reset when it has one)
--   client        a table: fx.client(server, client); a function(server) -> client
--   fresh_client  true: a new client before each test (the last one closed), not one for the block
-- use(server, client) is called once the server runs, and again with each new client.
local busted = require("busted")
local fx = require("support.fixtures")
local server_support = require("support.server")

local M = {}

local function make_client(server, how)
  if type(how) == "function" then return how(server) end
  return fx.client(server, how)
end

function M.serve(opts, use)
  opts = opts or {}
  local server, client
  busted.setup(function()
    server = opts.start and opts.start() or server_support.start{ args = opts.args or fx.SERVER_ARGS }
    if opts.client and not opts.fresh_client then client = make_client(server, opts.client) end
    use(server, client)
  end)
  busted.before_each(function()
    -- the last test's client goes before the reset, so no connection of it outlives the reset
    if opts.fresh_client and client then client:close() end
    if opts.reset ~= false and server.reset then server:reset() end
    if opts.client and opts.fresh_client then
      client = make_client(server, opts.client)
      use(server, client)
    end
  end)
  busted.teardown(function()
    if client then client:close() end
    if server then server:stop() end
  end)
end

return M
