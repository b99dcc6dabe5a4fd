-- Peak memory of one large answer: the local server answers a list call
-- with a body of about SIZE bytes (default 50 MB, under the default 64 MiB
-- max_response_bytes); the client process's peak RSS (wait4, through
-- build/bench/rusage) is compared with a client that makes no call.
--   lua5.4 bench/peak_memory.lua [SIZE]     (after make bench-tools)
-- Prints the body size, both peaks, the difference and its ratio to the body.
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local KEY = "sk_test_SECRET_d41d8cd98f00b204"

if arg[1] == "client" then -- the measured process: client URL CALL
  local stackone = require("stackone")
  local c = assert(stackone.new{ api_key = KEY, account_id = "a", base_url = arg[2] })
  if arg[3] == "1" then assert(c.crm.accounts.list()) end
  c:close()
  return
end

local size = tonumber(arg[1]) or 50e6
local server = require("support.server").start{ args = "--api-key " .. KEY }
local item = '{"id":"%d","name":"' .. string.rep("x", 400) .. '","n":%d,"ok":true,"v":1.5}'
local body
do
  local parts = {}
  for i = 1, math.floor(size / 460) do parts[i] = item:format(i, i) end
  body = '{"data":[' .. table.concat(parts, ",") .. '],"next":null}'
end
local peak = {}
for _, call in ipairs{ "0", "1" } do
  server:script("/unified/crm/accounts", { { status = 200, body = body } }, "GET")
  local out = os.tmpname()
  assert(os.execute(("build/bench/rusage -o %s -- lua5.4 %s client %s %s"):format(out, arg[0], server.url, call)))
  local f = assert(io.open(out))
  peak[call] = tonumber(f:read("*a"):match("maxrss_kb=(%d+)"))
  f:close()
  os.remove(out)
  server:clear_script()
end
server:stop()
local extra = (peak["1"] - peak["0"]) * 1024
print(("body %.1f MiB; peak RSS %.1f MiB without the call, %.1f MiB with it: +%.1f MiB, %.2fx the body"):format(
  #body / 2^20, peak["0"] / 1024, peak["1"] / 1024, extra / 2^20, extra / #body))
