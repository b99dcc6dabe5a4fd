-- Request dispatch: control interface, journal, scripted steps, StackOne
-- authentication and the x-account-id header, then the CRM service; the
-- platform API (linked accounts, connect sessions, request logs) beside it.
-- Every request is answered with a list of output actions (see faults.lua).
local mime = require("mime")
local http = require("stackone.server.http")
local reply = require("stackone.server.reply")
local crm = require("stackone.server.crm")
local platform = require("stackone.server.platform")
local control = require("stackone.server.control")
local faults = require("stackone.server.faults")

local app = {}
app.__index = app

local sub, match, lower = string.sub, string.match, string.lower

--- opts: api_keys (list), page_cap, seed_contacts, stats ({connections, open}),
-- latency (seconds to wait before answering each /unified/ request),
-- rate_limit ({n, t}: at most n /unified/ requests in any t seconds, or nil).
function app.new(opts)
  local self = setmetatable({}, app)
  self.latency = opts.latency or 0
  if opts.rate_limit then
    -- arrival times of the accepted requests still in the window, oldest
    -- first: window[head..tail]
    self.limit = { n = opts.rate_limit.n, t = opts.rate_limit.t, window = {}, head = 1, tail = 0 }
  end
  self.crm = crm.new({ page_cap = opts.page_cap, seed_contacts = opts.seed_contacts })
  self.platform = platform.new()
  self.control = control.new(opts.stats, function()
    self.crm:reset()
    self.platform:reset()
    if self.limit then self.limit.window, self.limit.head, self.limit.tail = {}, 1, 0 end
  end)
  self.credentials, self.encoded = {}, {}
  for _, key in ipairs(opts.api_keys) do
    self.credentials[key .. ":"] = true
    self.encoded[(mime.b64(key .. ":"))] = true
  end
  return self
end

-- Authorization: Basic base64(KEY .. ":") for one of the configured keys.
function app:authorized(value)
  if not value then return false end
  local scheme, token = match(value, "^(%S+)%s+(%S+)%s*$")
  if not scheme or lower(scheme) ~= "basic" then return false end
  if self.encoded[token] then return true end
  local decoded = mime.unb64(token)
  return decoded ~= nil and self.credentials[decoded] == true
end

-- Sliding window on arrival times: true when the request may go on (it
-- is then counted), false when n requests were accepted in the last t s.
function app:admit(time)
  local l = self.limit
  local w, head = l.window, l.head
  while head <= l.tail and w[head] <= time - l.t do
    w[head] = nil; head = head + 1
  end
  l.head = head
  if l.tail - head + 1 >= l.n then return false end
  l.tail = l.tail + 1
  w[l.tail] = time
  return true
end

function app:unified(req)
  if not self:authorized(req.headers["authorization"]) then
    return reply.error(401, "Unauthorized")
  end
  local account = req.headers["x-account-id"]
  account = account and match(account, "^%s*(.-)%s*$")
  if not account or account == "" then
    local msg = "Missing x-account-id header"
    return reply.error(400, msg, { data = reply.unified_error(400, msg) })
  end
  req.query = http.parse_query(req.raw_query)
  return self.crm:handle(req, account)
end

function app:platform_api(req)
  if not self:authorized(req.headers["authorization"]) then
    return reply.error(401, "Unauthorized")
  end
  req.query, req.query_list = http.parse_query(req.raw_query)
  return self.platform:handle(req)
end

local function respond(self, req, conn_id, time)
  local path, raw_query = http.split_target(req.target)
  req.path, req.raw_query = path, raw_query
  local res, wait, step
  if sub(path, 1, 11) == "/__control/" then
    res = self.control:handle(req, path)
  elseif sub(path, 1, 9) == "/connect/" and req.method == "GET" then
    res = self.platform:connect(http.unescape(sub(path, 10)))
  elseif platform.owns(path) then
    self.control:record(req, conn_id, time)
    step = self.control:take_step(req.method, path)
    if step and not step.pass then return faults.actions(step, req) end
    res = self:platform_api(req)
    wait = step and step.delay
  else
    local unified = sub(path, 1, 9) == "/unified/"
    local record = unified and self.control:record(req, conn_id, time)
    step = self.control:take_step(req.method, path)
    if step and not step.pass then return faults.actions(step, req) end
    if unified then
      if self.limit and not self:admit(time) then
        record.rate_limited = true
        res = reply.error(429, "Too many requests", { headers = { { "Retry-After", "0" } } })
      else
        res = self:unified(req)
        -- the request took effect; the step's own answer replaces the
        -- normal one (a create whose answer is a 500, or is lost)
        if step and faults.answers(step) then return faults.actions(step, req) end
      end
      -- what StackOne's request logs would show of it
      self.platform:log(req, res.status, time, time + self.latency, req.headers["x-account-id"])
      -- --latency, and a step's delay with pass = true
      wait = (step and step.delay or 0) + self.latency
    else
      res = reply.error(404, "Cannot " .. req.method .. " " .. path)
    end
  end
  local close = http.wants_close(req)
  local out = {
    { k = "data", s = http.response(res, close, req.method == "HEAD"), i = 1 },
    { k = "end", close = close },
  }
  if wait and wait > 0 then table.insert(out, 1, { k = "wait", dur = wait }) end
  if step and step.refuse_for then faults.add_refuse(out, step.refuse_for) end
  return out
end

local function traceback(err)
  return debug.traceback(tostring(err), 2)
end

--- Answer a complete request: a list of output actions. A Lua error
-- becomes a 500 error envelope (and a traceback on stderr).
function app:respond(req, conn_id, time)
  -- (5.1's xpcall passes no arguments)
  local ok, actions = xpcall(function() return respond(self, req, conn_id, time) end, traceback)
  if ok then return actions end
  io.stderr:write("stackone_server: error handling ", tostring(req.method), " ",
    tostring(req.target), ": ", actions, "\n")
  local close = http.wants_close(req)
  return {
    { k = "data", s = http.response(reply.error(500, "Internal server error"), close), i = 1 },
    { k = "end", close = close },
  }
end

--- Answer a malformed request (status, message from the parser) and close.
function app.malformed(status, message)
  return {
    { k = "data", s = http.response(reply.error(status, message), true), i = 1 },
    { k = "end", close = true },
  }
end

return app
