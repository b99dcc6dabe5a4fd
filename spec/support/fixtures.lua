-- Shared test data: the API key the local server accepts, the issue's
-- example contact, and a client factory.
local stackone = require("stackone")

local M = {}

-- a key that must never show up in any output
M.API_KEY = "sk_test_SECRET_d41d8cd98f00b204"
M.ACCOUNT = "acc-123"
M.SERVER_ARGS = "--api-key " .. M.API_KEY

-- the interpreter running the suite (busted --lua=X runs X), and the
-- build of the module for it (spec/helper.lua), for child processes
local i = 0
while arg and arg[i - 1] do i = i - 1 end
M.LUA = arg and i < 0 and arg[i] or "lua5.4"
M.BUILD = os.getenv("STACKONE_BUILD") or "./build"

function M.contact()
  return {
    first_name = "Steve", last_name = "Wozniak", company_name = "Apple Inc.",
    emails = { "steve@apple.com" }, phone_numbers = { "123-456-7890" },
    deal_ids = { "deal-001", "deal-002" }, account_ids = { "account-123", "account-456" },
    custom_fields = { { id = "8187e5da-dc77-475e-9949-af0f1fa4e4e3", name = "Training Completion Status",
                        value = "Completed", value_id = "value_456" } },
    passthrough = { other_known_names = "John Doe" },
  }
end

function M.client(server, extra)
  local opts = { api_key = M.API_KEY, account_id = M.ACCOUNT, base_url = server.url }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(stackone.new(opts))
end

-- How often a sleep function that returns at once may be asked during one
-- wait: the job stops asking once it comes back within 1 ms three times.
-- Under valgrind (STACKONE_SLOW) a round trip through the driver can take
-- longer, and each such one is asked again: still a handful, where a job
-- that spun would ask thousands of times.
M.EARLY_SLEEPS = os.getenv("STACKONE_SLOW") and 40 or 4

--- whether x is an integer: a Lua integer on 5.3+, an integral number
-- before (5.1, LuaJIT and 5.2 have only doubles)
function M.is_integer(x)
  if math.type then return math.type(x) == "integer" end
  return type(x) == "number" and x == math.floor(x)
end

--- busted's `it`, or, for a test that needs a module the Lua 5.5 of
-- scripts/lua55.sh lacks (luv: Debian's archive serves no source to build
-- it from), `pending` there and only there; everywhere else a missing
-- module fails the test. (busted's functions are the spec file's, not
-- this module's: the spec passes them.)
function M.needs(module, it, pending)
  if _VERSION == "Lua 5.5" and not pcall(require, module) then
    return function(name) pending(name .. " (no " .. module .. " built for Lua 5.5: scripts/lua55.sh)") end
  end
  return it
end

--- a loopback port nothing listens on
function M.closed_port()
  local socket = require("socket")
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

return M
