-- Case 1, the fair floor: the least any Lua binding must do for a create.
-- bench/floor.c (one reused libcurl easy handle) POSTs the caller's table
-- encoded by lua-cjson and the answer is decoded into Lua tables; nothing is
-- checked beyond the status.
--   lua5.4 bench/floor_create.lua BASE_URL API_KEY ACCOUNT_ID N WARMUP [USER_AGENT]
--   (LUA_CPATH must find build/bench/<lua>/floor.so; Lua 5.1 syntax only)
-- Prints "RESULT n=N cpu_us=<os.clock() over the N>".
local floor = require("floor")
local cjson = require("cjson")
local mime = require("mime")

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local fields = dofile(dir .. "/contact.lua")
local base_url, api_key, account = arg[1], arg[2], arg[3]
local n, warmup = tonumber(arg[4]), tonumber(arg[5])

local conn = floor.open(base_url .. "/unified/crm/contacts", "Basic " .. mime.b64(api_key .. ":"), account, arg[6])

local function create(contact)
  local status, text = conn:post(cjson.encode(contact))
  if not status then error(text) end
  local reply = cjson.decode(text)
  if status ~= 200 then error("HTTP " .. status) end
  return reply.data
end

dofile(dir .. "/timed.lua")(create, fields, n, warmup)
conn:close()
