-- Starts the local StackOne-compatible server (server/stackone_server.lua)
-- in its own process, talks to its /__control/ interface, and stops it by
-- PID.
local http = require("socket.http")
local ltn12 = require("ltn12")
local socket = require("socket")
local cjson = require("cjson")

local M = {}

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local Server = {}
Server.__index = Server

--- M.start{ args = "--page-size-cap 2" } -> server
function M.start(opts)
  opts = opts or {}
  os.execute("mkdir -p build")
  local out = os.tmpname()
  local cmd = string.format("lua5.4 server/stackone_server.lua %s > %s 2>%s.err & echo $!",
    opts.args or "", out, out)
  local p = assert(io.popen(cmd))
  local pid = assert(tonumber(p:read("l")), "could not start the local server")
  p:close()
  local port
  local deadline = socket.gettime() + 10
  while not port and socket.gettime() < deadline do
    local text = read_file(out)
    port = text and tonumber(text:match("PORT (%d+)"))
    if not port then socket.sleep(0.02) end
  end
  if not port then
    os.execute("kill " .. pid .. " 2>/dev/null")
    error("the local server did not report its port: " .. (read_file(out .. ".err") or ""))
  end
  return setmetatable({ pid = pid, port = port, out = out,
    url = "http://127.0.0.1:" .. port }, Server)
end

function Server:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
    os.remove(self.out)
    os.remove(self.out .. ".err")
  end
end

local function request(self, method, path, body)
  local chunks = {}
  local source = body and ltn12.source.string(body) or nil
  local ok, status = http.request{
    url = self.url .. path, method = method, source = source,
    headers = body and { ["content-type"] = "application/json", ["content-length"] = #body } or nil,
    sink = ltn12.sink.table(chunks),
  }
  assert(ok, status)
  local text = table.concat(chunks)
  if text ~= "" and status == 200 then
    return cjson.decode(text), status
  end
  return text, status
end

--- every /unified/ request the server received, oldest first
function Server:requests()
  return (request(self, "GET", "/__control/requests"))
end

function Server:clear_requests()
  request(self, "DELETE", "/__control/requests")
end

--- { connections = accepted so far, open = open now }
function Server:stats()
  return (request(self, "GET", "/__control/stats"))
end

--- queues scripted responses for the next matching requests
function Server:script(path, responses, method)
  local _, status = request(self, "POST", "/__control/script",
    cjson.encode{ path = path, method = method, responses = responses })
  assert(status == 204, "scripting the server failed: " .. tostring(status))
end

function Server:reset()
  request(self, "POST", "/__control/reset")
end

return M
