-- Starts the HTTPS / HTTP/2 test server (spec/support/h2_server.js, Node)
-- in its own process, stops it by PID, and talks to its /__control/
-- interface with the curl command line (LuaSocket has no TLS).
--
--   local h2 = require("support.h2")
--   local server = h2.start()          -- server.url = "https://127.0.0.1:<port>"
--   server:script("/unified/crm/contacts", { { refuse = true } }, "POST")
--   local r = server:curl("/unified/crm/contacts", "--http2 -X POST -d '{}'")
--   server:requests()                  -- the journal
--   server:stop()
--
-- JSON null (a refused stream's body, an HTTP/1.1 stream_id) decodes to
-- cjson.null.
local cjson = require("cjson")
local process = require("support.process")

local M = {}

local H2 = {}
H2.__index = H2

local read_file = require("support.shell").read

M.quote = require("support.shell").quote

--- M.start(opts?) -> server { pid, port, url }. Errors when it does not
-- start. opts.max_streams: the streams one connection may carry at once;
-- opts.http1_only: ALPN offers HTTP/1.1 alone.
function M.start(opts)
  local env = (opts and opts.max_streams and ("H2_MAX_STREAMS=%d "):format(opts.max_streams) or "")
    .. (opts and opts.http1_only and "H2_HTTP1_ONLY=1 " or "")
  local node = process.start{ command = env .. "node spec/support/h2_server.js", what = "the HTTPS test server",
    port_line = true }
  return setmetatable({ process = node, pid = node.pid, port = node.port, url = "https://127.0.0.1:" .. node.port },
    H2)
end

function H2:stop()
  if self.process then
    self.process:stop()
    self.process, self.pid = nil, nil
  end
end

--- what the server wrote to stdout and stderr so far (its PORT line, and
-- any error it logged)
function H2:log()
  return self.process and self.process:output() or ""
end

--- Runs `curl -sSk -v <args> <url .. path>` (args: a string for sh, put in
-- as it is). Returns { body = stdout, trace = stderr (the -v output),
-- code = curl's exit code }.
function H2:curl(path, args)
  local body_file, trace_file = os.tmpname(), os.tmpname()
  local cmd = ("curl -sSk -v %s %s > %s 2> %s"):format(args or "", M.quote(self.url .. path), body_file, trace_file)
  local _, code = require("support.shell").run(cmd)
  local r = { body = read_file(body_file) or "", trace = read_file(trace_file) or "", code = code }
  os.remove(body_file)
  os.remove(trace_file)
  return r
end

-- a control request: decoded JSON (or the raw text) and the HTTP status
local function control(self, method, path, body)
  local args = "-X " .. method .. " -w '\\n%{http_code}'"
  local data_file
  if body then
    data_file = os.tmpname()
    local f = assert(io.open(data_file, "wb"))
    f:write(body)
    f:close()
    args = args .. " -H 'content-type: application/json' --data-binary @" .. M.quote(data_file)
  end
  local r = self:curl(path, args)
  if data_file then os.remove(data_file) end
  assert(r.code == 0, "curl failed on " .. path .. ": " .. r.trace)
  local text, status = r.body:match("^(.*)\n(%d+)$")
  status = tonumber(status)
  if text ~= "" and status == 200 then return cjson.decode(text), status end
  return text, status
end

--- the journal: every /unified/ request, oldest first, each
-- { method, path, http, stream_id, connection, resumed, body, outcome }
function H2:requests()
  local list, status = control(self, "GET", "/__control/requests")
  assert(status == 200, "reading the journal failed: " .. tostring(status))
  return list
end

--- clears the journal
function H2:clear()
  local _, status = control(self, "DELETE", "/__control/requests")
  assert(status == 204, "clearing the journal failed: " .. tostring(status))
end

--- queues steps for the next requests to path (and method, if given)
function H2:script(path, responses, method)
  local _, status = control(self, "POST", "/__control/script",
    cjson.encode{ path = path, method = method, responses = responses })
  assert(status == 204, "scripting the HTTPS test server failed: " .. tostring(status))
end

--- drops the pending steps
function H2:clear_script()
  local _, status = control(self, "DELETE", "/__control/script")
  assert(status == 204, "dropping the steps failed: " .. tostring(status))
end

--- drops the pending steps, then clears the journal
function H2:reset()
  self:clear_script()
  self:clear()
end

--- the pending steps, { {method, path, step}, ... }
function H2:pending()
  return (control(self, "GET", "/__control/script"))
end

return M
