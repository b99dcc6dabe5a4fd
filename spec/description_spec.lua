-- The one description of the API (src/ops.c, seen as stackone.operations)
-- against the vendored OpenAPI spec: operations, parameters with their
-- types and styles, body fields with their types, responses. Any drift
-- between the two fails here.
local stackone = require("stackone")
local core = require("stackone.core")
local cjson = require("cjson")

local SPEC_FILE = "spec/data/stackone-crm.openapi.json"

local function read_spec()
  return cjson.decode((assert(require("support.shell").read(SPEC_FILE))))
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

-- a body field or entry field against its spec property
local function same_field(field, property, where)
  assert.equal(property.type, field.type, where)
  if property.type == "array" then
    local items = property.items
    assert.equal(ref_name(items) or items.type, field.items, where .. " items")
  end
end

describe("the description of the API", function()
  local spec = read_spec()
  local operations = spec_operations(spec)
  local schemas = spec.components.schemas

  it("has the spec's operations, each with its method, path and response", function()
    assert.same(keys(operations), names(stackone.operations, "operation_id"))
    for _, op in ipairs(stackone.operations) do
      local s = operations[op.operation_id]
      assert.equal(s.method, op.method, op.operation_id)
      assert.equal(s.path, op.path, op.operation_id)
      local ok = s.operation.responses["200"] or s.operation.responses["201"]
      assert.equal(ref_name(ok.content["application/json"].schema), op.returns, op.operation_id)
      -- a page is what has data and a next cursor
      local returned = schemas[op.returns]
      assert.equal(returned.properties.next ~= nil, op.page, op.operation_id)
    end
  end)

  it("has each operation's parameters, types and styles", function()
    for _, op in ipairs(stackone.operations) do
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
        assert.equal(p.style or "form", mine.style, where)
        if p.schema.properties then -- a deepObject with named keys
          assert.same(keys(p.schema.properties), names(mine.keys), where)
          for _, k in ipairs(mine.keys) do
            local property = p.schema.properties[k.name]
            assert.equal(property.type, k.type, where .. "." .. k.name)
            assert.equal(property.format, k.format, where .. "." .. k.name)
          end
        else
          assert.is_nil(mine.keys, where)
        end
      end
      -- the id in the path is the call's id argument; the account id
      -- header is the account_id option, always sent
      assert.same(path, op.path:find("{id}", 1, true) and { "id" } or {}, op.operation_id)
      assert.equal(#path > 0, op.args[1] == "id", op.operation_id)
      assert.same({ "x-account-id" }, header, op.operation_id)
    end
  end)

  it("has each body's fields and their types", function()
    for _, op in ipairs(stackone.operations) do
      local body = operations[op.operation_id].operation.requestBody
      assert.equal(body ~= nil, op.body ~= nil, op.operation_id)
      if body then
        local schema_name = ref_name(body.content["application/json"].schema)
        assert.equal(schema_name, op.body_schema, op.operation_id)
        local properties = schemas[schema_name].properties
        assert.same(keys(properties), names(op.body), op.operation_id)
        for _, field in ipairs(op.body) do
          same_field(field, properties[field.name], op.operation_id .. " " .. field.name)
        end
        local has_fields = false
        for _, a in ipairs(op.args) do has_fields = has_fields or a == "fields" end
        assert.is_true(has_fields, op.operation_id)
      end
    end
  end)

  it("has the fields of a custom_fields entry", function()
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
  end)

  it("names the definitions behind custom fields by name, and the bulk forms", function()
    for _, op in ipairs(stackone.operations) do
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
