-- Case 5, this SDK in loop mode: N crm.contacts.create calls made from
-- CONCURRENCY coroutines on a luv loop, all on ONE client made with
-- loop = stackone.loop.luv(uv); coroutine k makes its share (N split as
-- evenly as it goes) one create after the other, and yields to the loop
-- while each request is on the network.
--   lua5.4 bench/sdk_luv_create.lua BASE_URL API_KEY ACCOUNT_ID N CONCURRENCY
-- Prints "RESULT n=N wall_us=... cpu_us=... rounds=..." (wall: uv.hrtime()
-- from before the first coroutine starts to the end of the last create;
-- cpu_us: os.clock() over the same span; rounds: the largest share), or
-- "SKIP <why>" when the SDK or luv has no loop mode.
local stackone = require("stackone")

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local fields = dofile(dir .. "/contact.lua")
local base_url, api_key, account = arg[1], arg[2], arg[3]
local n, concurrency = math.tointeger(tonumber(arg[4])), math.tointeger(tonumber(arg[5]))
assert(n and n >= 0 and concurrency and concurrency >= 1,
  "usage: lua5.4 bench/sdk_luv_create.lua BASE_URL API_KEY ACCOUNT_ID N CONCURRENCY")

local has_luv, uv = pcall(require, "luv")
if not has_luv then
  print("SKIP luv is not installed")
  return
end
if type(stackone.loop) ~= "table" or type(stackone.loop.luv) ~= "function" then
  print("SKIP stackone.loop.luv is not in the SDK yet")
  return
end

local client = assert(stackone.new{ api_key = api_key, account_id = account, base_url = base_url,
  rate_limit = false, -- measure the SDK, not its default pacing (1000 requests/min)
  loop = stackone.loop.luv(uv) })
local create = client.crm.contacts.create

local created, failures, finished = 0, {}, 0
local t0, c0, wall, cpu

-- coroutine k's share: the first n % concurrency coroutines make one more
local function share(k)
  return n // concurrency + (k <= n % concurrency and 1 or 0)
end

local function worker(k)
  for _ = 1, share(k) do
    local ok, contact, err = pcall(create, fields)
    if ok and type(contact) == "table" and contact.id then
      created = created + 1
    else
      failures[#failures + 1] = tostring(ok and err or contact)
    end
  end
  finished = finished + 1
  if finished == concurrency then
    wall, cpu = (uv.hrtime() - t0) / 1e3, (os.clock() - c0) * 1e6
    client:close() -- the loop has nothing left to watch: uv.run returns
  end
end

t0, c0 = uv.hrtime(), os.clock()
for k = 1, concurrency do
  coroutine.wrap(worker)(k)
end
uv.run()

if finished ~= concurrency then
  error(string.format("the loop ended with %d of %d coroutines unfinished", concurrency - finished, concurrency))
end
if created ~= n then
  error(string.format("created %d of %d contacts; first error: %s", created, n, tostring(failures[1])))
end
print(string.format("RESULT n=%d wall_us=%d cpu_us=%d rounds=%d", n, math.floor(wall + 0.5),
  math.floor(cpu + 0.5), share(1)))
