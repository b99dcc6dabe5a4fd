-- The ten CRM operations of the spec over per-account in-memory stores.
--
--   crm.new{ page_cap = n, seed_contacts = n } -> service
--   service:handle(req, account_id) -> response (see reply.lua)
--   service:reset()
--
-- req carries method, path (raw, without query), query (decoded map),
-- headers (lower-case map) and body. Authentication and x-account-id are
-- checked by the caller; routing (404/405) happens here.
local json = require("stackone.server.json")
local http = require("stackone.server.http")
local reply = require("stackone.server.reply")
local schema = require("stackone.server.schema")
local paging = require("stackone.server.paging")
local validate = require("stackone.server.validate")
local seed = require("stackone.server.seed")
local isotime = require("stackone.server.isotime")
local ids = require("stackone.server.ids")

local crm = {}
crm.__index = crm

local find, sub, lower, format = string.find, string.sub, string.lower, string.format
local null, array = json.null, json.array

local PROVIDER = "https://provider.example/crm/v3"

-- Resource kinds: name (store key and cursor tag), label, schema, provider URL.
local KINDS = {
  contacts = { name = "contacts", label = "Contact", schema = "Contact",
    url = PROVIDER .. "/objects/contacts", writable = true },
  accounts = { name = "accounts", label = "Account", schema = "Account",
    url = PROVIDER .. "/objects/companies" },
  lists = { name = "lists", label = "List", schema = "List", url = PROVIDER .. "/lists" },
  custom_field_definitions = { name = "custom_field_definitions", label = "Custom field definition",
    schema = "CustomFieldDefinition", url = PROVIDER .. "/properties/contacts" },
}

local COLLECTIONS = {
  ["/unified/crm/contacts"] = KINDS.contacts,
  ["/unified/crm/accounts"] = KINDS.accounts,
  ["/unified/crm/lists"] = KINDS.lists,
  ["/unified/crm/custom_field_definitions/contacts"] = KINDS.custom_field_definitions,
}

local PAGE_MT = schema.mt.Paginated
local RESULT_MT = schema.mt.Result
local RAW_MT = schema.mt.RawResponse

local function index(entries)
  local by_id = {}
  for _, e in ipairs(entries) do by_id[e.rec.id] = e end
  return { entries = entries, by_id = by_id }
end

local shared_collections

function crm.new(opts)
  opts = opts or {}
  if not shared_collections then
    local ro = seed.read_only()
    shared_collections = {
      accounts = index(ro.accounts),
      lists = index(ro.lists),
      custom_field_definitions = index(ro.custom_field_definitions),
    }
  end
  return setmetatable({
    stores = {},
    page_cap = opts.page_cap or 0,
    seed_contacts = opts.seed_contacts or 0,
  }, crm)
end

function crm:reset()
  self.stores = {}
end

function crm:store(account_id)
  local s = self.stores[account_id]
  if not s then
    s = {
      contacts = index(seed.contacts(self.seed_contacts)),
      accounts = shared_collections.accounts,
      lists = shared_collections.lists,
      custom_field_definitions = shared_collections.custom_field_definitions,
    }
    self.stores[account_id] = s
  end
  return s
end

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

local function bad_request(message)
  return reply.error(400, message, { data = reply.unified_error(400, message) })
end

local function raw_entry(url, response)
  return array({ setmetatable({ method = "GET", url = url, response = response }, RAW_MT) })
end

-- Common query checks for reads: raw and fields.
local function read_options(kind, q)
  local raw = paging.bool(q.raw)
  if raw == nil then return nil, bad_request("raw must be true or false") end
  return { raw = raw, project = paging.projector(q.fields, schema.fields[kind.schema]) }
end

local function not_found(kind, id)
  return reply.error(404, format("%s %s not found", kind.label, id))
end

---------------------------------------------------------------------------
-- Operations
---------------------------------------------------------------------------

local function list(self, kind, coll, q)
  local opts, err = read_options(kind, q)
  if not opts then return err end
  local size = paging.page_size(q.page_size)
  if not size then return bad_request("page_size must be an integer between 1 and 100") end
  local after, msg = paging.updated_after(q)
  if after == nil then return bad_request(msg) end
  local entries = coll.entries
  local start = 1
  local cursor = q.next
  if cursor ~= nil and cursor ~= "" then
    start = paging.decode_cursor(cursor, kind.name)
    if not start or start > #entries + 1 then return bad_request("Invalid cursor in next") end
  end
  local cap = self.page_cap
  if cap > 0 and size > cap then size = cap end
  local recs, next_index = paging.page(entries, start, size, after)
  if opts.project then
    for i = 1, #recs do recs[i] = opts.project(recs[i]) end
  end
  local env = setmetatable({
    next = next_index and paging.encode_cursor(kind.name, next_index) or null,
    data = recs,
  }, PAGE_MT)
  if opts.raw then
    local results = array({})
    for i = 1, #recs do results[i] = { id = recs[i].remote_id or recs[i].id } end
    env.raw = raw_entry(format("%s?limit=%d&offset=%d", kind.url, size, start - 1),
      { results = results, total = #entries })
  end
  return reply.json(200, env)
end

local function get(_, kind, coll, id, q)
  local opts, err = read_options(kind, q)
  if not opts then return err end
  local e = coll.by_id[id]
  if not e then return not_found(kind, id) end
  local rec = e.rec
  local env = setmetatable({ data = opts.project and opts.project(rec) or rec }, RESULT_MT)
  if opts.raw then
    env.raw = raw_entry(kind.url .. "/" .. (rec.remote_id or id), { id = rec.remote_id, source = "provider" })
  end
  return reply.json(200, env)
end

local function check_json_body(req)
  local ct = req.headers["content-type"]
  if not ct or not find(lower(ct), "^application/json") then
    return nil, bad_request("Content-Type must be application/json")
  end
  local changes, status, message, details = validate.contact_body(req.body)
  if changes then return changes end
  if status == 422 then
    local perrs = array({})
    for i, d in ipairs(details) do perrs[i] = reply.provider_error(422, KINDS.contacts.url, d) end
    return nil, reply.error(422, message, { provider_errors = perrs })
  end
  return nil, bad_request(message)
end

local function apply(rec, changes)
  for k, v in pairs(changes) do
    if k ~= "passthrough" then
      if v == null then rec[k] = nil else rec[k] = v end
    end
  end
end

local function create(_, _, coll, req)
  local changes, err = check_json_body(req)
  if not changes then return err end
  local now = isotime.now_ms()
  local ts = isotime.format_ms(now)
  local rec = schema.make("Contact", {})
  apply(rec, changes)
  rec.id, rec.remote_id, rec.created_at, rec.updated_at = ids.uuid(), ids.remote_id(), ts, ts
  local e = { rec = rec, upd = now }
  coll.entries[#coll.entries + 1] = e
  coll.by_id[rec.id] = e
  return reply.json(200, setmetatable({ data = rec }, RESULT_MT))
end

local function update(_, kind, coll, id, req)
  local e = coll.by_id[id]
  if not e then return not_found(kind, id) end
  local changes, err = check_json_body(req)
  if not changes then return err end
  local rec = e.rec
  apply(rec, changes)
  local now = isotime.now_ms()
  rec.updated_at, e.upd = isotime.format_ms(now), now
  return reply.json(200, setmetatable({ data = rec }, RESULT_MT))
end

local function method_not_allowed(method, allow)
  return reply.error(405, format("Method %s not allowed here", method),
    { headers = { { "Allow", allow } } })
end

--- Route and answer a /unified/ request.
function crm:handle(req, account_id)
  local path, method = req.path, req.method
  local kind = COLLECTIONS[path]
  local id
  if not kind then
    local slash = find(path, "/[^/]*$")
    if slash then
      kind = COLLECTIONS[sub(path, 1, slash - 1)]
      id = sub(path, slash + 1)
    end
    if not kind or id == "" then return reply.error(404, "Cannot " .. method .. " " .. path) end
    id = http.unescape(id)
  end
  local coll = self:store(account_id)[kind.name]
  if id then
    if method == "GET" then return get(self, kind, coll, id, req.query) end
    if kind.writable and method == "PATCH" then return update(self, kind, coll, id, req) end
    return method_not_allowed(method, kind.writable and "GET, PATCH" or "GET")
  end
  if method == "GET" then return list(self, kind, coll, req.query) end
  if kind.writable and method == "POST" then return create(self, kind, coll, req) end
  return method_not_allowed(method, kind.writable and "GET, POST" or "GET")
end

return crm
