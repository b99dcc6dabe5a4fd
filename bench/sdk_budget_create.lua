-- Case 6: WARMUP then N sequential crm.contacts.create on one client whose
-- rate limit never binds (1000000 a minute), its budget kept by STORE:
-- "local" (the client's own limiter), "redis" (stackone.limit.redis on
-- Debian's lua-redis, Redis on 127.0.0.1:REDIS_PORT) or "host"
-- (stackone.limit.host in a directory of the run).
--   lua5.4 bench/sdk_budget_create.lua BASE_URL API_KEY ACCOUNT_ID N WARMUP STORE [REDIS_PORT|DIR]
-- Prints "RESULT n=N cpu_us=<os.clock() over the N> wall_us=<over the N>
-- store_calls=<calls of the store over the N>".
local stackone = require("stackone")
local socket = require("socket")

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local fields = dofile(dir .. "/contact.lua")
local base_url, api_key, account = arg[1], arg[2], arg[3]
local n, warmup, kind, where = tonumber(arg[4]), tonumber(arg[5]), arg[6], arg[7]

local calls = 0
local store
if kind == "redis" then
  local ok, redis = pcall(require, "redis")
  if not ok then -- Debian packages lua-redis for 5.1 to 5.3; it is plain Lua
    package.path = package.path .. ";/usr/share/lua/5.3/?.lua"
    ok, redis = pcall(require, "redis")
  end
  if not ok then print("SKIP lua-redis is not installed (apt-get install lua-redis)") return end
  local conn = redis.connect{ host = "127.0.0.1", port = tonumber(where), timeout = 2 }
  store = stackone.limit.redis(conn)
elseif kind == "host" then
  store = stackone.limit.host{ dir = where }
end
if store then -- counts the store's decisions (one round trip each for Redis)
  local inner = store
  store = { update = function(_, ...) calls = calls + 1; return inner:update(...) end }
end

local client = assert(stackone.new{ api_key = api_key, account_id = account, base_url = base_url,
  rate_limit = { requests = 1000000, per = 60, shared = store } })
local create = client.crm.contacts.create

for _ = 1, warmup do
  assert(create(fields))
end
calls = 0
local c0, w0 = os.clock(), socket.gettime()
for _ = 1, n do
  local contact, err = create(fields)
  if not contact then error(tostring(err)) end
  if err.limit_error then error("the store failed: " .. err.limit_error) end
end
local cpu, wall = os.clock() - c0, socket.gettime() - w0
client:close()
print(string.format("RESULT n=%d cpu_us=%d wall_us=%d store_calls=%d", n, math.floor(cpu * 1e6 + 0.5),
  math.floor(wall * 1e6 + 0.5), calls))
