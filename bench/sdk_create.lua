-- Case 1, this SDK: WARMUP then N sequential crm.contacts.create of the
-- issue's contact on one client (one keep-alive connection).
--   lua5.4 bench/sdk_create.lua BASE_URL API_KEY ACCOUNT_ID N WARMUP
--   luajit bench/sdk_create.lua ...   (the same script: Lua 5.1 syntax only)
-- Prints "RESULT n=N cpu_us=<os.clock() over the N>".
local stackone = require("stackone")

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local fields = dofile(dir .. "/contact.lua")
local base_url, api_key, account = arg[1], arg[2], arg[3]
local n, warmup = tonumber(arg[4]), tonumber(arg[5])

local client = assert(stackone.new{ api_key = api_key, account_id = account, base_url = base_url,
  rate_limit = false }) -- measure the SDK, not its default pacing (1000 requests/min)
local create = client.crm.contacts.create

dofile(dir .. "/timed.lua")(create, fields, n, warmup)
client:close()
