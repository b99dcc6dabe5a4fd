-- Case 1, the hand-written baseline: what a Lua scripter writes today with
-- LuaSocket's http.request and lua-cjson. http.request sends
-- "Connection: close", so every request opens a new TCP connection.
--   lua5.4 bench/luasocket_create.lua BASE_URL API_KEY ACCOUNT_ID N WARMUP
-- Prints "RESULT n=N cpu_us=<os.clock() over the N>".
local http = require("socket.http")
local ltn12 = require("ltn12")
local mime = require("mime")
local cjson = require("cjson")

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local fields = dofile(dir .. "/contact.lua")
local base_url, api_key, account = arg[1], arg[2], arg[3]
local n, warmup = math.tointeger(tonumber(arg[4])), math.tointeger(tonumber(arg[5]))

local auth = "Basic " .. mime.b64(api_key .. ":")

local function create_contact(contact)
  local body = cjson.encode(contact)
  local chunks = {}
  local ok, status = http.request{
    url = base_url .. "/unified/crm/contacts",
    method = "POST",
    headers = {
      ["authorization"] = auth,
      ["x-account-id"] = account,
      ["accept"] = "application/json",
      ["content-type"] = "application/json",
      ["content-length"] = tostring(#body),
    },
    source = ltn12.source.string(body),
    sink = ltn12.sink.table(chunks),
  }
  if not ok then error("request failed: " .. tostring(status)) end
  local reply = cjson.decode(table.concat(chunks))
  if status ~= 200 then error("HTTP " .. status .. ": " .. tostring(reply.message)) end
  return reply.data
end

dofile(dir .. "/timed.lua")(create_contact, fields, n, warmup)
