-- Case 8, this SDK: crm.contacts.create_many of N contacts at a given
-- concurrency over HTTPS (HTTP/2), trusting CA_FILE, timed by the wall
-- clock around the one call.
--   lua5.4 bench/sdk_tls_many.lua BASE_URL API_KEY ACCOUNT_ID N CONCURRENCY CA_FILE
-- Prints "RESULT n=N wall_us=... cpu_us=..." (cpu_us: os.clock() over the
-- call, client creation included: the CA file is read on first use).
local stackone = require("stackone")
local gettime = require("socket.core").gettime

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local fields = dofile(dir .. "/contact.lua")
local base_url, api_key, account = arg[1], arg[2], arg[3]
local n, concurrency = math.tointeger(tonumber(arg[4])), math.tointeger(tonumber(arg[5]))
local ca_file = arg[6]

local list = {}
for i = 1, n do list[i] = fields end

local c0, t0 = os.clock(), gettime()
local client <close> = assert(stackone.new{ api_key = api_key, account_id = account, base_url = base_url,
  ca_file = ca_file, rate_limit = false })
local results, summary = client.crm.contacts.create_many(list, { concurrency = concurrency })
local wall, cpu = gettime() - t0, os.clock() - c0
if not results then error(tostring(summary)) end
if summary.ok ~= n then
  local first_err
  for i = 1, n do
    if results[i].err then first_err = results[i].err break end
  end
  error(string.format("create_many created %d of %d contacts; first error: %s", summary.ok, n,
    tostring(first_err)))
end
print(string.format("RESULT n=%d wall_us=%d cpu_us=%d", n, math.floor(wall * 1e6 + 0.5),
  math.floor(cpu * 1e6 + 0.5)))
