-- The /__control/ interface (no auth): scripted faults, the request
-- journal and connection stats.
--
--   POST   /__control/script    queue steps {method?, path, responses=[step...]} -> 204
--   GET    /__control/script    pending steps, in queue order
--   DELETE /__control/script    drop pending steps -> 204
--   GET    /__control/requests  recorded /unified/ requests, in arrival order
--   DELETE /__control/requests  clear the journal -> 204
--   GET    /__control/stats     {connections, open}
--   POST   /__control/reset     clear journal, steps and all stores -> 204
local json = require("stackone.server.json")
local http = require("stackone.server.http")
local reply = require("stackone.server.reply")
local faults = require("stackone.server.faults")

local control = {}
control.__index = control

local upper, format = string.upper, string.format
local array = json.array

local RECORD_MT = json.order_mt({ "method", "target", "path", "query", "headers", "header_list",
  "body", "connection", "time", "rate_limited" })
local PENDING_MT = json.order_mt({ "method", "path", "step" })
local STATS_MT = json.order_mt({ "connections", "open" })

--- stats: table kept up to date by the loop ({connections, open});
-- on_reset: called by POST /__control/reset after the journal and steps
-- are cleared (the CRM stores are dropped there).
function control.new(stats, on_reset)
  return setmetatable({ stats = stats, on_reset = on_reset, records = {}, nrec = 0, steps = {} }, control)
end

--- Journal a request: req has method, target, path, header_list, body;
-- conn_id and time come from the loop. Returns the record (the caller may
-- set rate_limited on it).
function control:record(req, conn_id, time)
  local n = self.nrec + 1
  self.nrec = n
  local r = { req = req, connection = conn_id, time = time }
  self.records[n] = r
  return r
end

--- Consume the first pending step matching method and path, if any.
function control:take_step(method, path)
  local steps = self.steps
  for i = 1, #steps do
    local s = steps[i]
    if s.path == path and (s.method == nil or s.method == method) then
      table.remove(steps, i)
      return s.step
    end
  end
  return nil
end

local function query_object(raw)
  local _, list = http.parse_query(raw)
  local obj, seen = {}, {}
  for _, kv in ipairs(list) do
    local k, v = kv[1], kv[2]
    if seen[k] then
      local cur = obj[k]
      if not json.is_array(cur) then obj[k] = array({ cur, v }) else cur[#cur + 1] = v end
    else
      seen[k], obj[k] = true, v
    end
  end
  return obj
end

local function record_json(r)
  local req = r.req
  local hl = array({})
  for i, h in ipairs(req.header_list) do hl[i] = array({ h[1], h[2] }) end
  return setmetatable({
    method = req.method,
    target = req.target,
    path = req.path,
    query = query_object(req.raw_query),
    headers = req.headers,
    header_list = hl,
    body = req.body,
    connection = r.connection,
    time = r.time,
    rate_limited = r.rate_limited,
  }, RECORD_MT)
end

local function add_script(self, body)
  local spec, err = json.decode(body or "")
  if spec == nil then return reply.error(400, "Script is not valid JSON: " .. err) end
  if not json.is_object(spec) then return reply.error(400, "Script must be a JSON object") end
  for k in pairs(spec) do
    if k ~= "method" and k ~= "path" and k ~= "responses" then
      return reply.error(400, format("Script: unknown key %q", k))
    end
  end
  local method, path, responses = spec.method, spec.path, spec.responses
  if method == json.null then method = nil end
  if method ~= nil and (type(method) ~= "string" or method == "") then
    return reply.error(400, "Script: method must be a non-empty string")
  end
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
    return reply.error(400, "Script: path must be a string starting with /")
  end
  path = path:match("^[^?]*")
  if not json.is_array(responses) or #responses == 0 then
    return reply.error(400, "Script: responses must be a non-empty array of steps")
  end
  for i, step in ipairs(responses) do
    local msg = faults.check(step, format("responses[%d]", i - 1))
    if msg then return reply.error(400, "Script: " .. msg) end
  end
  method = method and upper(method)
  local steps = self.steps
  for _, step in ipairs(responses) do
    steps[#steps + 1] = { method = method, path = path, step = step }
  end
  return reply.empty(204)
end

local function pending(self)
  local out = array({})
  for i, s in ipairs(self.steps) do
    out[i] = setmetatable({ method = s.method, path = s.path, step = s.step }, PENDING_MT)
  end
  return reply.json(200, out)
end

local function not_allowed(method, allow)
  return reply.error(405, format("Method %s not allowed here", method), { headers = { { "Allow", allow } } })
end

--- Answer a /__control/ request (path without query).
function control:handle(req, path)
  local m = req.method
  if path == "/__control/script" then
    if m == "POST" then return add_script(self, req.body) end
    if m == "GET" then return pending(self) end
    if m == "DELETE" then self.steps = {}; return reply.empty(204) end
    return not_allowed(m, "GET, POST, DELETE")
  elseif path == "/__control/requests" then
    if m == "GET" then
      local out = array({})
      for i = 1, self.nrec do out[i] = record_json(self.records[i]) end
      return reply.json(200, out)
    end
    if m == "DELETE" then
      self.records, self.nrec = {}, 0
      return reply.empty(204)
    end
    return not_allowed(m, "GET, DELETE")
  elseif path == "/__control/stats" then
    if m == "GET" then
      return reply.json(200, setmetatable({ connections = self.stats.connections, open = self.stats.open }, STATS_MT))
    end
    return not_allowed(m, "GET")
  elseif path == "/__control/reset" then
    if m == "POST" then
      self.records, self.nrec, self.steps = {}, 0, {}
      if self.on_reset then self.on_reset() end
      return reply.empty(204)
    end
    return not_allowed(m, "POST")
  end
  return reply.error(404, "Unknown control endpoint " .. path)
end

return control
