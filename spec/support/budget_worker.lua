-- One worker process of spec/limit_spec.lua: creates contacts one after
-- another on a client whose rate limit is shared through a store, then
-- writes what it saw to a file. Run from the repository root:
--   STACKONE_API_KEY=... <lua> spec/support/budget_worker.lua URL STORE COUNT OUT [REDIS_PORT] [HOST_DIR]
-- STORE: redis, host or none; the budget is 20 requests a second. OUT gets
-- one line: "ok N failed N limit_errors N debug_reports N", then "id <id>"
-- for each contact created and "sent <t>" for each send the store was told
-- of (t on the machine's monotonic clock, which every process shares).
local build = os.getenv("STACKONE_BUILD") or "./build"
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local url, kind, count, out, redis_port, host_dir = ...
count = tonumber(count)

local stackone = require("stackone")
local store
if kind == "redis" then
  store = stackone.limit.redis(function()
    return require("support.redis_client").connect("127.0.0.1", tonumber(redis_port))
  end)
elseif kind == "host" then
  store = stackone.limit.host{ dir = host_dir }
end
local sent = {}
if store then -- the send times the store is told, as the store would count them
  local inner, now = store, require("stackone.core").limit.now
  store = { update = function(_, name, change)
    local t = now()
    for _, ago in pairs(change.sent) do sent[#sent + 1] = t - ago end
    return inner:update(name, change)
  end }
end

local reports = 0
local client = assert(stackone.new{
  api_key = os.getenv("STACKONE_API_KEY"), account_id = "acc-budget", base_url = url,
  rate_limit = { requests = 20, per = 1, shared = store },
  retry = { max_attempts = 10, max_wait = 60 },
  debug = function(line)
    if line:find("shared rate limit store failed", 1, true) then reports = reports + 1 end
  end,
})
local ok, failed, limit_errors, ids = 0, 0, 0, {}
for i = 1, count do
  local contact, res = client.crm.contacts.create{ first_name = "W" .. i, last_name = "worker" }
  if contact then ok = ok + 1; ids[#ids + 1] = contact.id else failed = failed + 1 end
  if res and res.limit_error then limit_errors = limit_errors + 1 end
end
client:close()
local f = assert(io.open(out, "w"))
f:write(("ok %d failed %d limit_errors %d debug_reports %d\n"):format(ok, failed, limit_errors, reports))
for _, id in ipairs(ids) do f:write("id ", id, "\n") end
for _, t in ipairs(sent) do f:write(("sent %.6f\n"):format(t)) end
f:close()
