-- Case 2, this SDK: crm.contacts.create_many of N contacts at a given
-- concurrency, timed by the wall clock around the one call.
--   lua5.4 bench/sdk_create_many.lua BASE_URL API_KEY ACCOUNT_ID N CONCURRENCY [JOURNAL]
-- With JOURNAL (a file that does not exist yet), the batch keeps a journal
-- there (case 6: what the journal costs).
-- Prints "RESULT n=N wall_us=... cpu_us=..." (cpu_us: os.clock() over the
-- call), or "SKIP <why>" when the SDK has no create_many.
local stackone = require("stackone")
local gettime = require("socket.core").gettime

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local fields = dofile(dir .. "/contact.lua")
local base_url, api_key, account = arg[1], arg[2], arg[3]
local n, concurrency = math.tointeger(tonumber(arg[4])), math.tointeger(tonumber(arg[5]))
local journal = arg[6]

local client <close> = assert(stackone.new{ api_key = api_key, account_id = account, base_url = base_url,
  rate_limit = false }) -- measure the SDK, not its default pacing (1000 requests/min)
local create_many = client.crm.contacts.create_many
if create_many == nil then
  print("SKIP crm.contacts.create_many is not in the SDK yet")
  return
end

local list = {}
for i = 1, n do list[i] = fields end

-- results[i] = { record = contact } or { err = error }; summary = { ok, failed, ... }
-- (README.md, "Bulk: create_many and update_many")
local c0, t0 = os.clock(), gettime()
local results, summary = create_many(list, { concurrency = concurrency, journal = journal })
local wall, cpu = gettime() - t0, os.clock() - c0
if not results then error(tostring(summary)) end

local ok, first_err = 0, nil
for i = 1, n do
  local r = results[i]
  if type(r) == "table" and type(r.record) == "table" and r.record.id then
    ok = ok + 1
  elseif first_err == nil then
    first_err = type(r) == "table" and r.err or r
  end
end
if ok ~= n then
  error(string.format("create_many created %d of %d contacts; first error: %s", ok, n, tostring(first_err)))
end
print(string.format("RESULT n=%d wall_us=%d cpu_us=%d", n, math.floor(wall * 1e6 + 0.5),
  math.floor(cpu * 1e6 + 0.5)))
