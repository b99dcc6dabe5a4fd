-- The one description of the API (src/ops.c, seen as stackone.operations)
-- against the vendored OpenAPI specs, the CRM's and the platform's:
-- operations, parameters with their types and styles, body fields with
-- their types and values, responses, the account header. Any drift between
-- the two fails here.
local stackone = require("stackone")
local core = require("stackone.core")
local cjson = require("cjson")

local SPEC_FILES = {
  crm = "spec/data/stackone-crm.openapi.json",
  platform = "spec/data/stackone-platform.openapi.json",
}

local function read_spec(api)
  return cjson.decode((assert(require("support.shell").read(SPEC_FILES[api]))))
end

local function names(list, key)
  local out = {}
  for _, item in ipairs(list) do out[#out + 1] = item[key or "name"] end
  table.sort(out)
  return out
end

local function sorted(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  table.sort(out)
  return out
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function ref_name(schema)
  return schema and schema["$ref"] and schema["$ref"]:match("([^/]+)$")
end

local function by_name(list)
  local out = {}
  for _, item in ipairs(list) do out[item.name] = item end
  return out
end

-- the spec's operations: { [operationId] = { method, path, operation } }
local function spec_operations(spec)
  local out = {}
  for path, methods in pairs(spec.paths) do
    for method, operation in pairs(methods) do
      if type(operation) == "table" and operation.operationId then
        out[operation.operationId] = { method = method:upper(), path = path, operation = operation }
      end
    end
  end
  return out
end

-- where the description knowingly departs from a spec, and why
local DEPARTURES = {
  ["stackone_list_logs filter style"] = {
    spec = "form", ours = "deepObject",
    why = "the platform spec gives the filter object no style (form would put its keys at the top of the "
      .. "query); StackOne's API reads filter[key], as the issue and the CRM's filter say",
  },
}

-- the spec's value, or the one a known departure gives instead
local function expected(where, what, spec_value)
  local d = DEPARTURES[where .. " " .. what]
  if d then
    assert.equal(d.spec, spec_value, where .. ": the departure is stale (" .. d.why .. ")")
    return d.ours
  end
  return spec_value
end

-- the strings of a spec enum, nulls left out, sorted
local function enum_values(schema)
  if not schema or not schema.enum then return nil end
  local out = {}
  for _, v in ipairs(schema.enum) do
    if type(v) == "string" then out[#out + 1] = v end
  end
  table.sort(out)
  return out
end

local function sorted_or_nil(list)
  return list and sorted(list) or nil
end

-- a body field or entry field against its spec property
local function same_field(field, property, where)
  assert.equal(property.type, field.type, where)
  if property.type == "array" then
    local items = property.items
    assert.equal(ref_name(items) or items.type, field.items, where .. " items")
    assert.same(enum_values(items), sorted_or_nil(field.values), where .. " values")
  else
    assert.same(enum_values(property), sorted_or_nil(field.values), where .. " values")
  end
end

-- the operations of one api
local function of_api(api)
  local out = {}
  for _, op in ipairs(stackone.operations) do
    if op.api == api then out[#out + 1] = op end
  end
  return out
end

for api in pairs(SPEC_FILES) do
  describe("the description of the " .. api .. " API", function()
    local spec = read_spec(api)
    local operations = spec_operations(spec)
    local schemas = spec.components.schemas
    local ops = of_api(api)

    it("has the spec's operations, each with its method, path and response", function()
      assert.same(keys(operations), names(ops, "operation_id"))
      for _, op in ipairs(ops) do
        local s = operations[op.operation_id]
        assert.equal(s.method, op.method, op.operation_id)
        assert.equal(s.path, op.path, op.operation_id)
        local ok = s.operation.responses["200"] or s.operation.responses["201"]
        local schema = ok.content["application/json"].schema
        if op.reply == "array" then -- a bare array of records: a page numbered by `page`
          assert.equal("array", schema.type, op.operation_id)
          assert.equal(ref_name(schema.items), op.returns, op.operation_id)
          assert.is_true(op.page, op.operation_id)
          local page = false
          for _, p in ipairs(op.parameters) do page = page or p.name == "page" end
          assert.is_true(page, op.operation_id)
        else
          assert.equal(ref_name(schema), op.returns, op.operation_id)
          local returned = schemas[op.returns]
          -- a record in `data`, or the record itself
          assert.equal(returned.properties.data ~= nil, op.reply == "data", op.operation_id)
          -- a page is what has data and a next cursor
          assert.equal(returned.properties.next ~= nil, op.page, op.operation_id)
        end
      end
    end)

    it("has each operation's parameters, types, styles and values", function()
      for _, op in ipairs(ops) do
        local s = operations[op.operation_id].operation
        local query, path, header = {}, {}, {}
        for _, p in ipairs(s.parameters or {}) do
          if p["in"] == "query" then query[#query + 1] = p end
          if p["in"] == "path" then path[#path + 1] = p.name end
          if p["in"] == "header" then header[#header + 1] = p.name end
        end
        assert.same(names(query), names(op.parameters), op.operation_id)
        assert.same(names(op.parameters), sorted(op.query), op.operation_id) -- the names alone, as before
        local ours = by_name(op.parameters)
        for _, p in ipairs(query) do
          local where = op.operation_id .. " " .. p.name
          local mine = ours[p.name]
          assert.equal(p.schema.type, mine.type, where)
          assert.equal(p.schema.format, mine.format, where)
          assert.equal(expected(where, "style", p.style or "form"), mine.style, where)
          assert.same(enum_values(p.schema), sorted_or_nil(mine.values), where)
          if p.schema.maximum then assert.equal(p.schema.maximum, mine.maximum, where) end
          if p.schema.type == "array" then
            assert.equal(p.schema.items.type, mine.items, where)
            assert.is_not_false(p.explode, where) -- form, exploded: the key repeats
          end
          if p.schema.properties then -- a deepObject with named keys
            assert.same(keys(p.schema.properties), names(mine.keys), where)
            for _, k in ipairs(mine.keys) do
              local property = p.schema.properties[k.name]
              assert.equal(property.type, k.type, where .. "." .. k.name)
              assert.equal(property.format, k.format, where .. "." .. k.name)
              assert.same(enum_values(property), sorted_or_nil(k.values), where .. "." .. k.name)
            end
          else
            assert.is_nil(mine.keys, where)
          end
        end
        -- the id in the path is the call's id argument; the account id
        -- header is the account_id option, sent exactly where the spec has it
        assert.same(path, op.path:find("{id}", 1, true) and { "id" } or {}, op.operation_id)
        assert.equal(#path > 0, op.args[1] == "id", op.operation_id)
        assert.same(op.account and { "x-account-id" } or {}, header, op.operation_id)
        -- a call takes a query where the spec has query parameters
        local takes_query = false
        for _, a in ipairs(op.args) do takes_query = takes_query or a == "query" end
        assert.equal(#query > 0, takes_query, op.operation_id)
      end
    end)

    it("has each body's fields, their types and values", function()
      for _, op in ipairs(ops) do
        local body = operations[op.operation_id].operation.requestBody
        assert.equal(body ~= nil, op.body ~= nil, op.operation_id)
        if body then
          local schema_name = ref_name(body.content["application/json"].schema)
          assert.equal(schema_name, op.body_schema, op.operation_id)
          local properties = schemas[schema_name].properties
          assert.same(keys(properties), names(op.body), op.operation_id)
          local required = {}
          for _, field in ipairs(op.body) do
            if field.required then required[#required + 1] = field.name end
          end
          assert.same(sorted(schemas[schema_name].required or {}), sorted(required), op.operation_id .. " required")
          for _, field in ipairs(op.body) do
            same_field(field, properties[field.name], op.operation_id .. " " .. field.name)
          end
          local has_fields = false
          for _, a in ipairs(op.args) do has_fields = has_fields or a == "fields" end
          assert.is_true(has_fields, op.operation_id)
        end
      end
    end)

    if api ~= "crm" then return end

    it("has the fields of a custom_fields entry, nested in the body's row", function()
      local properties = schemas.CustomFields.properties
      assert.same(keys(properties), names(core.custom_field_fields))
      for _, field in ipairs(core.custom_field_fields) do
        if properties[field.name].type then
          same_field(field, properties[field.name], "CustomFields " .. field.name)
        else -- value: oneOf many types
          assert.is_nil(field.type)
          assert.is_table(properties[field.name].oneOf)
        end
      end
      for _, op in ipairs(ops) do
        for _, f in ipairs(op.body or {}) do
          if f.name == "custom_fields" then assert.same(core.custom_field_fields, f.fields) end
        end
      end
    end)

    it("names the definitions behind custom fields by name, and the bulk forms", function()
      for _, op in ipairs(ops) do
        if op.custom_fields then
          local list = operations[op.custom_fields]
          assert.is_table(list, op.operation_id)
          assert.equal("GET", list.method)
          -- the definitions of this operation's records
          local records = op.path:gsub("/{id}$", ""):match("[^/]+$")
          assert.equal("/unified/crm/custom_field_definitions/" .. records, list.path)
          local has_custom_fields = false
          for _, f in ipairs(op.body) do has_custom_fields = has_custom_fields or f.name == "custom_fields" end
          assert.is_true(has_custom_fields, op.operation_id)
        end
        if op.bulk then assert.is_table(op.body, op.operation_id) end
      end
    end)
  end)
end

it("every operation belongs to one of the vendored specs", function()
  for _, op in ipairs(stackone.operations) do
    assert.is_string(SPEC_FILES[op.api], op.operation_id)
  end
end)
