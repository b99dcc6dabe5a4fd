--- The model both outputs are rendered from: the module's description
-- (stackone.operations, core.options, core.custom_field_fields), the
-- vendored spec and describe/known.lua, checked against each other. Every
-- name the exports give must be described (by known.lua or the spec), and
-- every entry of known.lua must still be exported: model() raises naming
-- what is missing.
local known = require("describe.known")

local M = {}

local function fail(fmt, ...)
  error("scripts/describe: " .. fmt:format(...), 0)
end

function M.sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out, function(a, b) return tostring(a) < tostring(b) end)
  return out
end
local sorted_keys = M.sorted_keys

--- "contact_custom_field_definitions" -> "ContactCustomFieldDefinitions"
function M.pascal(s)
  return (s:gsub("^%l", string.upper):gsub("_(%w)", string.upper))
end
local pascal = M.pascal

--- one line of text: whitespace runs become one space
function M.line(s)
  if type(s) ~= "string" then return nil end
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local function is_null(v) return type(v) == "userdata" or v == nil end

--- whether two decoded JSON values are equal
function M.same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not M.same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- the set of `names` must be the set of keys of `described`
local function same_names(what, names, described)
  local seen = {}
  for _, name in ipairs(names) do
    seen[name] = true
    if described[name] == nil then
      fail("%s '%s' is exported but not described: add it to scripts/describe/known.lua", what, tostring(name))
    end
  end
  for _, name in ipairs(sorted_keys(described)) do
    if not seen[name] then
      fail("%s '%s' is described in scripts/describe/known.lua but no longer exported", what, name)
    end
  end
end

local function field_map(list)
  local out = {}
  for _, e in ipairs(list) do out[e.name] = e end
  return out
end

-- the keys a table of the description has must be described fields
local function check_keys(what, t, fields)
  for _, k in ipairs(sorted_keys(t)) do
    if not fields[k] then
      fail("%s has a key '%s' that is not described: add it to scripts/describe/known.lua", what, tostring(k))
    end
  end
end

--- the LuaCATS type of a spec schema; enum_alias(schema) names an alias
-- for a property with `enum`
function M.spec_type(s, enum_alias)
  if type(s) ~= "table" then return "any" end
  if s["$ref"] then return "stackone." .. s["$ref"]:match("([^/]+)$") end
  if s.allOf and #s.allOf == 1 then return M.spec_type(s.allOf[1]) end
  if s.enum and enum_alias then return enum_alias end
  local alts = s.oneOf or s.anyOf
  if alts then
    local out, seen = {}, {}
    for _, a in ipairs(alts) do
      local t = M.spec_type(a)
      if not seen[t] then seen[t] = true; out[#out + 1] = t end
    end
    return table.concat(out, "|")
  end
  local t = s.type
  if t == "string" or t == "number" or t == "integer" or t == "boolean" then return t end
  if t == "array" then
    local items = type(s.items) == "table" and next(s.items) ~= nil and M.spec_type(s.items) or "any"
    if items:find("|", 1, true) then items = "(" .. items .. ")" end
    return items .. "[]"
  end
  if t == "object" then return "table<string, any>" end
  return "any"
end

local function ref_of(s)
  s = type(s) == "table" and (s["$ref"] and s or (s.allOf and s.allOf[1])) or nil
  return s and s["$ref"] and s["$ref"]:match("([^/]+)$")
end

-- the spec's operations by operationId
local function spec_operations(spec)
  local out = {}
  for _, path in ipairs(sorted_keys(spec.paths)) do
    for _, method in ipairs(sorted_keys(spec.paths[path])) do
      local o = spec.paths[path][method]
      if type(o) == "table" and o.operationId then out[o.operationId] = o end
    end
  end
  return out
end

--- the properties of a spec schema, sorted by name: { name, schema, type,
-- doc, opt, example, enum } (enum: the values, for an alias)
function M.properties(spec, schema_name)
  local s = spec.components.schemas[schema_name]
  if not s then fail("the spec has no schema '%s'", schema_name) end
  local required = {}
  for _, r in ipairs(s.required or {}) do required[r] = true end
  local out = {}
  for _, name in ipairs(sorted_keys(s.properties or {})) do
    local p = s.properties[name]
    local alias, enum
    if p.enum then
      alias = "stackone." .. schema_name .. pascal(name)
      enum = {}
      for _, v in ipairs(p.enum) do if not is_null(v) then enum[#enum + 1] = v end end
    end
    local doc = M.line(p.description) or ""
    if p.format then doc = doc .. (doc ~= "" and " " or "") .. "(" .. p.format .. ")" end
    if p.deprecated then doc = "Deprecated. " .. doc end
    out[#out + 1] = { name = name, schema = p, type = M.spec_type(p, alias), doc = doc, example = p.example,
      opt = not required[name] or p.nullable == true, alias = alias, enum = enum,
      open = p["x-speakeasy-unknown-values"] == "allow" }
  end
  return out
end

-- a default as the docs write it
local function default_text(v)
  if type(v) == "string" then return "`" .. v .. "`" end
  if type(v) ~= "number" or v ~= math.floor(v) then return tostring(v) end
  if v >= 1048576 and v % 1048576 == 0 then return ("%d MiB"):format(math.floor(v / 1048576)) end
  return ("%d"):format(v)
end

-- an option's doc with its range and default, from its row
local function option_doc(row)
  local extra = {}
  if row.min then extra[#extra + 1] = row.must end
  if row.default ~= nil and row.type ~= "policy" then extra[#extra + 1] = "default " .. default_text(row.default) end
  if #extra == 0 then return row.doc end
  return row.doc .. " (" .. table.concat(extra, "; ") .. ")"
end

-- the options tables as the types and the reference show them: known's
-- class and title, each option's type and doc from its row (src/options.c)
local function option_tables(options, rows)
  same_names("options table", sorted_keys(options), known.options)
  local out = {}
  for _, which in ipairs(sorted_keys(options)) do
    local by_name = {}
    for _, row in ipairs(rows[which]) do
      by_name[row.name] = { name = row.name, type = row.lua_type, doc = option_doc(row) }
    end
    same_names(which .. " option", options[which], by_name)
    local k = known.options[which]
    out[which] = { class = k.class, title = k.title, parent = k.parent, fields = by_name }
  end
  return out
end

local function check_module(module)
  same_names("module member stackone.", sorted_keys(module), known.module)
  same_names("stackone.loop member", sorted_keys(module.loop), known.loop)
  same_names("stackone.limit member", sorted_keys(module.limit), known.limit)
end

-- the spec's query parameter of an operation, by name
local function spec_parameter(so, name, public)
  for _, p in ipairs(so.parameters or {}) do
    if p["in"] == "query" and p.name == name then return p end
  end
  fail("query parameter '%s' of %s is not in the spec's %s", name, public, so.operationId)
end

local function view(op, spec, so, description)
  local public = op.public_name
  local v = { op = op, spec = so, public = public }
  check_keys(public, op, description["stackone.Operation"])
  for _, a in ipairs(op.args) do
    if not known.args[a] then fail("argument '%s' of %s is not described in known.args", a, public) end
  end
  v.api_spec, v.fn = spec, "client." .. op.group_name
  local returns = spec.components.schemas[op.returns]
  if not returns then fail("%s returns '%s', which the spec does not have", public, op.returns) end
  local record
  if op.reply == "data" then
    local data = returns.properties and returns.properties.data
    record = ref_of(op.page and data and data.items or data)
    if not record then fail("the spec's %s has no data of a schema", op.returns) end
  else -- the record itself, or a bare array of them
    record = op.returns
  end
  v.record_schema, v.record = record, "stackone." .. record
  if op.page then
    v.page = "stackone." .. op.returns:gsub("Paginated$", "") .. "Page"
    v.iterator = v.record .. "Iterator"
    v.numbered = op.reply == "array"
  end
  -- the CRM's type names came first: the others' carry their API's name
  local stem = "stackone." .. (op.api == "crm" and "" or pascal(op.api)) .. pascal(op.group) .. pascal(op.name)
  -- query parameters, with the spec's words
  v.params = {}
  for _, p in ipairs(op.parameters) do
    check_keys(public .. " parameter " .. p.name, p, description["stackone.OperationParameter"])
    local sp = spec_parameter(so, p.name, public)
    local entry = { p = p, doc = M.line(sp.description) or "", example = sp.schema and sp.schema.example,
      deprecated = sp.deprecated, type = p.accepts, opt = not sp.required }
    if not known.styles[p.style] then fail("style '%s' of %s is not described", tostring(p.style), public) end
    if p.minimum and p.maximum then
      entry.doc = entry.doc .. (" (%d to %d)"):format(p.minimum, p.maximum)
    end
    if p.keys then
      entry.type = stem .. pascal(p.name)
      entry.keys = {}
      local props = sp.schema and sp.schema.properties or {}
      for _, key in ipairs(p.keys) do
        local s = props[key.name]
        if not s then fail("key '%s' of %s's %s is not in the spec", key.name, public, p.name) end
        entry.keys[#entry.keys + 1] = { name = key.name, type = key.accepts, doc = M.line(s.description) or "",
          example = s.example, opt = true, p = key }
      end
    elseif not p.accepts then
      fail("parameter '%s' of %s has no accepts", p.name, public)
    end
    v.params[#v.params + 1] = entry
  end
  if #v.params > 0 then v.query = stem .. "Query" end
  -- the body, with the spec's words
  if op.body then
    v.body = "stackone." .. op.body_schema
    local props = {}
    for _, p in ipairs(M.properties(spec, op.body_schema)) do props[p.name] = p end
    v.fields = {}
    for _, fld in ipairs(op.body) do
      check_keys(public .. " body field " .. fld.name, fld, description["stackone.OperationField"])
      local p = props[fld.name]
      if not p then
        fail("body field '%s' of %s is not in the spec's %s: add it there too", fld.name, public, op.body_schema)
      end
      v.fields[#v.fields + 1] = { f = fld, name = fld.name, type = fld.accepts, spec_type = p.type, doc = p.doc,
        example = p.example, opt = p.opt, values = fld.values, json_type = p.schema.type }
    end
  end
  if op.bulk then
    check_keys(public .. " bulk", op.bulk, description["stackone.OperationBulk"])
    v.bulk_result = "stackone." .. record .. "BulkResult"
    if op.bulk.fields or op.bulk.id then
      v.item = stem .. "Item"
      v.item_fields = {}
      for _, role in ipairs({ "id", "fields" }) do
        if op.bulk[role] then
          v.item_fields[#v.item_fields + 1] = { name = op.bulk[role], type = known.bulk_roles[role].type,
            doc = known.bulk_roles[role].doc }
        end
      end
    end
  end
  -- the statuses the spec lists, but 2xx
  v.statuses = {}
  for _, code in ipairs(sorted_keys(so.responses or {})) do
    if not tostring(code):match("^2") then
      local r = so.responses[code]
      local schema = r.content and r.content["application/json"] and ref_of(r.content["application/json"].schema)
      v.statuses[#v.statuses + 1] = { code = tonumber(code), doc = M.line(r.description) or "", schema = schema }
    end
  end
  return v
end

--- the model: { ops, groups, schemas, error_bodies, known, ... }
-- input: { operations, options, custom_field_fields, module, spec,
-- platform_spec }: spec is the CRM's
function M.model(input)
  local spec = input.spec
  local specs = { crm = input.spec, platform = input.platform_spec }
  local options = option_tables(input.options, input.option_rows)
  check_module(input.module)
  local description = {}
  for _, d in ipairs(known.description) do description[d.class] = field_map(d.fields) end
  local so_by_id = {}
  for api, s in pairs(specs) do so_by_id[api] = spec_operations(s) end
  local m = { known = known, spec = spec, specs = specs, ops = {}, groups = {}, input = input, options = options }
  local group_of, skip = {}, {}
  for _, op in ipairs(input.operations) do
    local so = so_by_id[op.api] and so_by_id[op.api][op.operation_id]
    if not so then fail("operation %s is not in the %s spec", tostring(op.operation_id), tostring(op.api)) end
    local v = view(op, specs[op.api], so, description)
    m.ops[#m.ops + 1] = v
    if op.reply ~= "bare" and op.reply ~= "array" then skip[op.returns] = true end
    if op.body_schema then skip[op.body_schema] = true end
    local g = group_of[op.group_name]
    if not g then
      g = { name = op.group, namespace = op.namespace, public = op.group_name, class = "stackone." .. op.group_name,
        var = op.group_name:gsub("%.", "_"), ops = {} }
      group_of[op.group_name], m.groups[#m.groups + 1] = g, g
    end
    g.ops[#g.ops + 1] = v
  end
  -- a custom_fields entry as one sends it, with the spec's words
  local props = {}
  for _, p in ipairs(M.properties(spec, "CustomFields")) do props[p.name] = p end
  m.custom_field_fields = {}
  for _, fld in ipairs(input.custom_field_fields) do
    local p = props[fld.name]
    if not p then fail("custom field entry key '%s' is not in the spec's CustomFields", fld.name) end
    m.custom_field_fields[#m.custom_field_fields + 1] = { name = fld.name, type = fld.accepts, doc = p.doc,
      example = p.example, opt = true }
  end
  -- the record types: every schema of the specs but the envelopes and
  -- bodies; a name both specs have must mean the same schema
  m.schemas, m.schema_spec = {}, {}
  for _, api in ipairs(sorted_keys(specs)) do
    for _, name in ipairs(sorted_keys(specs[api].components.schemas)) do
      local here = specs[api].components.schemas[name]
      local first = m.schema_spec[name]
      if first and not M.same(first.components.schemas[name], here) then
        fail("the specs disagree on the schema '%s'", name)
      end
      if not skip[name] and not first then m.schemas[#m.schemas + 1] = name end
      m.schema_spec[name] = first or specs[api]
    end
  end
  table.sort(m.schemas)
  -- the error bodies: the schemas of every non-2xx answer
  local bodies = {}
  for _, v in ipairs(m.ops) do
    for _, st in ipairs(v.statuses) do if st.schema then bodies[st.schema] = true end end
  end
  m.error_bodies = sorted_keys(bodies)
  return m
end

--- a type of known.lua with its placeholders filled for operation view v
function M.fill(type_text, v)
  return (type_text:gsub("{(%a+)}", function(k)
    local out = ({ body = v.body, query = v.query, record = v.record, page = v.page, item = v.item or v.body,
      result = v.bulk_result, iterator = v.iterator })[k]
    if not out then fail("no {%s} for %s", k, v.public) end
    return out
  end))
end

return M
