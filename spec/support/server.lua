-- Starts the local StackOne-compatible server (server/stackone_server.lua)
-- in its own process, talks to its /__control/ interface, and stops it by
-- PID. Also raw-socket helpers for tests that look at the wire.
local http = require("socket.http")
local ltn12 = require("ltn12")
local socket = require("socket")
local mime = require("mime")
local cjson = require("cjson")

local M = {}

local process = require("support.process")

local Server = {}
Server.__index = Server

local function launch(args)
  return process.start{ command = "lua5.4 server/stackone_server.lua " .. (args or ""),
    what = "the local server", port_line = true }
end

--- M.start{ args = "--page-size-cap 2" } -> server
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({}, Server)
  self:restart(opts)
  return self
end

--- stops it (if it runs) and starts it anew with opts.args, in this same
-- object: server.port and server.url change
function Server:restart(opts)
  self:stop()
  self.process = launch((opts or {}).args)
  self.pid, self.port = self.process.pid, self.process.port
  self.url = "http://127.0.0.1:" .. self.port
end

function Server:stop()
  if self.process then
    self.process:stop()
    self.process, self.pid = nil, nil
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

--- every /unified/ request the server received, oldest first; only those
-- with this method (and path, without the query), when given
function Server:requests(method, path)
  local all = request(self, "GET", "/__control/requests")
  if not method then return all end
  local out = {}
  for _, r in ipairs(all) do
    if r.method == method and (not path or r.path == path) then out[#out + 1] = r end
  end
  return out
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

--- drops the pending scripted steps
function Server:clear_script()
  request(self, "DELETE", "/__control/script")
end

--- the pending steps, { {method =, path =, step =}, ... } in queue order
function Server:pending()
  return (request(self, "GET", "/__control/script"))
end

--- a raw LuaSocket TCP connection to the server (timeout in seconds,
-- default 5), or nil, err ("connection refused" while it refuses)
function Server:connect(timeout)
  local sock = socket.tcp4()
  sock:settimeout(timeout or 5)
  local ok, err = sock:connect("127.0.0.1", self.port)
  if not ok then
    sock:close()
    return nil, err
  end
  return sock
end

--- whether a TCP connect succeeds now (the probe connection is closed at once)
function Server:accepts()
  local sock = self:connect(1)
  if sock then sock:close() end
  return sock ~= nil
end

--- the bytes of an HTTP/1.1 request. opts: api_key (default "test-key";
-- false: no Authorization), account (default "acc-1"; false: none),
-- body (a string; sent as application/json), headers ({name = value})
function M.request_bytes(method, path, opts)
  opts = opts or {}
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1" }
  if opts.api_key ~= false then
    lines[#lines + 1] = "Authorization: Basic " .. mime.b64((opts.api_key or "test-key") .. ":")
  end
  if opts.account ~= false then lines[#lines + 1] = "x-account-id: " .. (opts.account or "acc-1") end
  if opts.body then
    lines[#lines + 1] = "Content-Type: application/json"
    lines[#lines + 1] = "Content-Length: " .. #opts.body
  end
  for name, value in pairs(opts.headers or {}) do lines[#lines + 1] = name .. ": " .. value end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (opts.body or "")
end

--- reads one response with a Content-Length body (or none) from a raw
-- connection: status, headers (lower-case names), body; or nil, err,
-- bytes received so far
function M.read_response(sock)
  local got = {}
  local line, err, partial = sock:receive("*l")
  if not line then return nil, err, partial end
  got[1] = line
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "bad status line", line end
  local headers = {}
  while true do
    line, err, partial = sock:receive("*l")
    if not line then return nil, err, table.concat(got, "\r\n") .. "\r\n" .. partial end
    got[#got + 1] = line
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  local body = ""
  local len = tonumber(headers["content-length"] or "0")
  if len > 0 then
    body, err, partial = sock:receive(len)
    if not body then return nil, err, table.concat(got, "\r\n") .. "\r\n" .. partial end
  end
  return status, headers, body
end

return M
