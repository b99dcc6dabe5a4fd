-- Case 1, lua-http (Debian lua-http, on cqueues) with a kept connection:
-- one HTTP/1.1 connection made once, a new stream on it per create, the
-- body encoded and the answer decoded by lua-cjson.
--   luajit bench/lua_http_create.lua BASE_URL API_KEY ACCOUNT_ID N WARMUP
-- Prints "RESULT n=N cpu_us=<os.clock() over the N>", or "SKIP <why>" when
-- lua-http is not installed for this Lua.
local ok_http, http_client = pcall(require, "http.client")
local ok_headers, http_headers = pcall(require, "http.headers")
if not (ok_http and ok_headers) then
  print("SKIP lua-http is not installed for " .. _VERSION .. " (Debian: apt-get install lua-http)")
  return
end
local cjson = require("cjson")
local mime = require("mime")

local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local fields = dofile(dir .. "/contact.lua")
local base_url, api_key, account = arg[1], arg[2], arg[3]
local n, warmup = tonumber(arg[4]), tonumber(arg[5])
local host, port = base_url:match("^http://([^:/]+):(%d+)")
local auth = "Basic " .. mime.b64(api_key .. ":")

local conn = assert(http_client.connect{ host = host, port = tonumber(port), tls = false, version = 1.1 })

local function create(contact)
  local body = cjson.encode(contact)
  local headers = http_headers.new()
  headers:append(":method", "POST")
  headers:append(":scheme", "http")
  headers:append(":authority", host .. ":" .. port)
  headers:append(":path", "/unified/crm/contacts")
  headers:append("authorization", auth)
  headers:append("x-account-id", account)
  headers:append("accept", "application/json")
  headers:append("content-type", "application/json")
  headers:append("content-length", tostring(#body))
  local stream = assert(conn:new_stream())
  assert(stream:write_headers(headers, false))
  assert(stream:write_chunk(body, true))
  local got = assert(stream:get_headers())
  local text = assert(stream:get_body_as_string())
  local reply = cjson.decode(text)
  if got:get(":status") ~= "200" then error("HTTP " .. got:get(":status")) end
  return reply.data
end

dofile(dir .. "/timed.lua")(create, fields, n, warmup)
conn:close()
