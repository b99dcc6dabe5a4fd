-- StackOne's platform API: linked accounts, connect sessions and the
-- request logs of what this server really served.
--
--   platform.new() -> service
--   service:handle(req) -> response (see reply.lua), or nil: not its path
--   service:log(req, status, started, finished, account_id)
--   service:reset()
--
-- req carries method, path (raw, without query), query (decoded map),
-- query_list ({ {name, value}, ... }: repeated keys kept), headers and
-- body. Authentication is checked by the caller; none of these paths takes
-- x-account-id.
local json = require("stackone.server.json")
local http = require("stackone.server.http")
local reply = require("stackone.server.reply")
local isotime = require("stackone.server.isotime")
local ids = require("stackone.server.ids")
local paging = require("stackone.server.paging")

local platform = {}
platform.__index = platform

local find, sub, format = string.find, string.sub, string.format
local null, array, order_mt = json.null, json.array, json.order_mt

local ACCOUNT_MT = order_mt({ "id", "provider", "provider_name", "status", "status_reasons", "origin_owner_id",
  "origin_owner_name", "origin_username", "credentials", "setup_information", "label", "created_at",
  "updated_at", "type" })
local SESSION_MT = order_mt({ "id", "organization_id", "project_id", "categories", "provider", "origin_owner_id",
  "origin_owner_name", "origin_username", "account_id", "label", "created_at", "metadata", "type", "token",
  "auth_link_url" })
local LOG_MT = order_mt({ "request_id", "event_datetime", "start_time", "end_time", "account_id", "project_id",
  "http_method", "path", "url", "status", "duration", "success", "provider", "service", "resource" })
local PAGE_MT = order_mt({ "next", "data" })
local RESULT_MT = order_mt({ "data" })

local PROVIDERS = { "hubspot", "salesforce", "pipedrive" }
local PROVIDER_NAMES = { hubspot = "HubSpot", salesforce = "Salesforce", pipedrive = "Pipedrive" }
local PROJECT = "local-project"

--- the seeded linked accounts: 12 active ones over three providers, then
-- one of each other status the tests use
local function seed_accounts()
  local statuses = { "inactive", "error" }
  local out = {}
  for i = 1, 14 do
    local provider = PROVIDERS[(i - 1) % 3 + 1]
    local ts = format("2024-07-%02dT09:00:00.000Z", i)
    out[i] = setmetatable({
      id = format("linked-%02d", i), provider = provider, provider_name = PROVIDER_NAMES[provider],
      status = i <= 12 and "active" or statuses[i - 12],
      origin_owner_id = format("customer-%02d", i), origin_owner_name = format("Customer %d", i),
      created_at = ts, updated_at = ts, type = "production",
    }, ACCOUNT_MT)
  end
  return out
end

function platform.new()
  local self = setmetatable({}, platform)
  self:reset()
  return self
end

function platform:reset()
  self.accounts = seed_accounts()
  self.sessions = {} -- by token
  self.session_count = 0
  self.logs = {}     -- oldest first
end

local function bad_request(message)
  return reply.error(400, message, { data = reply.unified_error(400, message) })
end

local function find_account(self, id)
  for i, a in ipairs(self.accounts) do
    if a.id == id then return a, i end
  end
end

-- the values of a query key, repeated (k=a&k=b) or one
local function values(req, name)
  local out = {}
  for _, kv in ipairs(req.query_list) do
    if kv[1] == name then out[#out + 1] = kv[2] end
  end
  return out
end

-- a whole number >= 1 from the query, its default when absent
local function whole(v, default)
  if v == nil or v == "" then return default end
  if not find(v, "^%d+$") or #v > 6 or tonumber(v) < 1 then return nil end
  return tonumber(v)
end

local function set_of(list)
  if #list == 0 then return nil end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- GET /accounts: numbered pages of a bare array, filters repeating keys
local function list_accounts(self, req)
  local page, size = whole(req.query.page, 1), whole(req.query.page_size, 25)
  if not page or not size then return bad_request("page and page_size must be whole numbers from 1") end
  local providers, statuses = set_of(values(req, "providers")), set_of(values(req, "status"))
  local ids_wanted, owners = set_of(values(req, "account_ids")), set_of(values(req, "origin_owner_ids"))
  local provider, owner = req.query.provider, req.query.origin_owner_id
  local selected = {}
  for _, a in ipairs(self.accounts) do
    if (not providers or providers[a.provider]) and (not statuses or statuses[a.status])
      and (not ids_wanted or ids_wanted[a.id]) and (not owners or owners[a.origin_owner_id])
      and (not provider or provider == a.provider) and (not owner or owner == a.origin_owner_id) then
      selected[#selected + 1] = a
    end
  end
  local out = array({})
  for i = (page - 1) * size + 1, math.min(page * size, #selected) do out[#out + 1] = selected[i] end
  return reply.json(200, out)
end

local PATCHABLE = { provider = "string", origin_owner_id = "string", origin_owner_name = "string",
  origin_username = "string", credentials = "table", setup_information = "table", secrets = "table",
  authentication_config_key = "string", environment = "string", label = "table", metadata = "table",
  type = "string", integration_id = "string" }
local STORED = { provider = true, origin_owner_id = true, origin_owner_name = true, origin_username = true,
  credentials = true, setup_information = true, label = true, type = true }

-- a JSON object body, or nil and the 400 to answer
local function object_body(req)
  local ct = req.headers["content-type"]
  if not ct or not find(ct:lower(), "^application/json") then
    return nil, bad_request("Content-Type must be application/json")
  end
  local ok, body = pcall(json.decode, req.body or "")
  if not ok or not json.is_object(body) then return nil, bad_request("The body must be a JSON object") end
  return body
end

local function update_account(account, req)
  local body, err = object_body(req)
  if not body then return err end
  for k, v in pairs(body) do
    local want = PATCHABLE[k]
    if not want then return bad_request(format("property %s should not exist", k)) end
    if v ~= null and type(v) ~= want then return bad_request(format("%s must be a %s", k, want)) end
  end
  for k, v in pairs(body) do
    if STORED[k] then account[k] = v ~= null and v or nil end
  end
  account.updated_at = isotime.now()
  return reply.json(200, account)
end

local CATEGORIES = { ats = true, hris = true, ["hris-legacy"] = true, crm = true, iam = true, marketing = true,
  lms = true, stackone = true, documents = true, ticketing = true, screening = true, messaging = true,
  accounting = true, scheduling = true }

local function base_url(req)
  return "http://" .. (req.headers.host or "127.0.0.1")
end

local function new_session(self, req, body)
  self.session_count = self.session_count + 1
  local token = ids.uuid()
  local s = setmetatable({
    id = self.session_count, organization_id = 1, project_id = PROJECT,
    categories = body.categories or null, provider = body.provider or null,
    origin_owner_id = body.origin_owner_id, origin_owner_name = body.origin_owner_name,
    origin_username = body.origin_username or null, account_id = body.account_id or null,
    label = body.label or null, created_at = isotime.now(), metadata = body.metadata or null,
    type = body.type or "production", token = token,
    auth_link_url = base_url(req) .. "/connect/" .. token,
  }, SESSION_MT)
  self.sessions[token] = s
  return s
end

local function create_session(self, req)
  local body, err = object_body(req)
  if not body then return err end
  for _, k in ipairs({ "origin_owner_id", "origin_owner_name" }) do
    if type(body[k]) ~= "string" then return bad_request(k .. " must be a string") end
  end
  if body.categories ~= nil and body.categories ~= null then
    if not json.is_array(body.categories) then return bad_request("categories must be an array") end
    for _, c in ipairs(body.categories) do
      if not CATEGORIES[c] then return bad_request("categories holds an unknown category: " .. tostring(c)) end
    end
  end
  return reply.json(201, new_session(self, req, body))
end

-- the session's public form: without its token and link
local function session_view(s)
  local out = setmetatable({}, SESSION_MT)
  for k, v in pairs(s) do
    if k ~= "token" and k ~= "auth_link_url" then out[k] = v end
  end
  return out
end

local function authenticate_session(self, req)
  local body, err = object_body(req)
  if not body then return err end
  if type(body.token) ~= "string" then return bad_request("token must be a string") end
  local s = self.sessions[body.token]
  if not s then return reply.error(404, "Connect session not found") end
  return reply.json(201, session_view(s))
end

--- GET /connect/<token>: the page a customer opens; it links an account
-- (the session's provider, or the first) and says which
function platform:connect(token)
  local s = self.sessions[token]
  if not s then return reply.error(404, "Unknown connect session") end
  if s.account_id == null then
    local provider = s.provider ~= null and s.provider or PROVIDERS[1]
    local ts = isotime.now()
    local a = setmetatable({
      id = "linked-" .. ids.uuid(), provider = provider, provider_name = PROVIDER_NAMES[provider] or provider,
      status = "active", origin_owner_id = s.origin_owner_id, origin_owner_name = s.origin_owner_name,
      origin_username = s.origin_username ~= null and s.origin_username or nil,
      label = s.label ~= null and s.label or nil, created_at = ts, updated_at = ts, type = s.type,
    }, ACCOUNT_MT)
    self.accounts[#self.accounts + 1] = a
    s.account_id = a.id
  end
  return reply.json(200, { linked = true, account_id = s.account_id })
end

-- GET /requests/logs: cursor pages, newest first unless asked otherwise
local function list_logs(self, req)
  local q = req.query
  local size = whole(q.page_size, 25)
  if not size or size > 100 then return bad_request("page_size must be a whole number from 1 to 100") end
  local direction = q["filter[order_direction]"] or q.order_direction or "desc"
  local wanted_accounts, methods = nil, nil
  if q["filter[account_ids]"] then
    wanted_accounts = {}
    for id in q["filter[account_ids]"]:gmatch("[^,]+") do wanted_accounts[id] = true end
  end
  if q["filter[http_methods]"] then
    methods = {}
    for m in q["filter[http_methods]"]:gmatch("[^,]+") do methods[m:upper()] = true end
  end
  local success = q["filter[success]"] and paging.bool(q["filter[success]"])
  local selected = {}
  for _, log in ipairs(self.logs) do
    if (not wanted_accounts or wanted_accounts[log.account_id]) and (not methods or methods[log.http_method])
      and (success == nil or log.success == success) then
      selected[#selected + 1] = log
    end
  end
  if direction == "desc" then
    local n = #selected
    for i = 1, math.floor(n / 2) do selected[i], selected[n + 1 - i] = selected[n + 1 - i], selected[i] end
  end
  local start = 1
  if q.next and q.next ~= "" then
    start = paging.decode_cursor(q.next, "logs")
    if not start or start > #selected + 1 then return bad_request("Invalid cursor in next") end
  end
  local data = array({})
  for i = start, math.min(start + size - 1, #selected) do data[#data + 1] = selected[i] end
  local more = start + size <= #selected
  return reply.json(200, setmetatable({ next = more and paging.encode_cursor("logs", start + size) or null,
    data = data }, PAGE_MT))
end

local function get_log(self, id)
  for _, log in ipairs(self.logs) do
    if log.request_id == id then return reply.json(200, setmetatable({ data = log }, RESULT_MT)) end
  end
  return reply.error(404, format("Log %s not found", id))
end

local function method_not_allowed(method, allow)
  return reply.error(405, format("Method %s not allowed here", method), { headers = { { "Allow", allow } } })
end

--- whether path is one of the platform's
function platform.owns(path)
  return path == "/accounts" or sub(path, 1, 10) == "/accounts/" or path == "/connect_sessions"
    or path == "/connect_sessions/authenticate" or path == "/requests/logs" or sub(path, 1, 15) == "/requests/logs/"
end

--- Route and answer a platform request.
function platform:handle(req)
  local path, method = req.path, req.method
  if path == "/accounts" then
    if method == "GET" then return list_accounts(self, req) end
    return method_not_allowed(method, "GET")
  elseif sub(path, 1, 10) == "/accounts/" then
    local account = find_account(self, http.unescape(sub(path, 11)))
    if not account then return reply.error(404, "Account not found") end
    if method == "GET" then return reply.json(200, account) end
    if method == "PATCH" then return update_account(account, req) end
    if method == "DELETE" then
      local _, i = find_account(self, account.id)
      table.remove(self.accounts, i)
      return reply.json(200, account)
    end
    return method_not_allowed(method, "GET, PATCH, DELETE")
  elseif path == "/connect_sessions" then
    if method == "POST" then return create_session(self, req) end
    return method_not_allowed(method, "POST")
  elseif path == "/connect_sessions/authenticate" then
    if method == "POST" then return authenticate_session(self, req) end
    return method_not_allowed(method, "POST")
  elseif path == "/requests/logs" then
    if method == "GET" then return list_logs(self, req) end
    return method_not_allowed(method, "GET")
  end
  if method == "GET" then return get_log(self, http.unescape(sub(path, 16))) end
  return method_not_allowed(method, "GET")
end

--- Keep a log of a /unified/ request served (status: what was answered).
function platform:log(req, status, started, finished, account_id)
  local resource = req.path:match("^/unified/crm/([^/]+)")
  self.logs[#self.logs + 1] = setmetatable({
    request_id = ids.uuid(), event_datetime = isotime.now(),
    start_time = isotime.format_ms(math.floor(started * 1000)),
    end_time = isotime.format_ms(math.floor(finished * 1000)),
    account_id = account_id or null, project_id = PROJECT, http_method = req.method, path = req.path,
    url = req.target, status = status, duration = math.floor((finished - started) * 1000 + 0.5),
    success = status < 400, provider = null, service = "crm", resource = resource or null,
  }, LOG_MT)
end

return platform
