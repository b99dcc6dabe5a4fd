-- Validation of CrmCreateContactRequestDto bodies (POST and PATCH contacts).
--
-- Returns a table of changes { field = value | json.null } on success, or
-- nil, status, message, details where details are the per-field messages
-- (422) and status is 400 (not JSON, not an object, unknown fields) or 422
-- (a field of the wrong type).
local json = require("stackone.server.json")
local schema = require("stackone.server.schema")

local validate = {}

local null, is_array, is_object = json.null, json.is_array, json.is_object
local concat, sort, format = table.concat, table.sort, string.format

local STRING_FIELDS = { "first_name", "last_name", "company_name" }
local STRING_ARRAY_FIELDS = { "emails", "phone_numbers", "deal_ids", "account_ids" }
local CF_STRING_FIELDS = { "id", "remote_id", "name", "value_id", "remote_value_id" }

local ALLOWED = { custom_fields = true, passthrough = true }
for _, f in ipairs(STRING_FIELDS) do ALLOWED[f] = true end
for _, f in ipairs(STRING_ARRAY_FIELDS) do ALLOWED[f] = true end

local function string_array(v)
  if not is_array(v) then return false end
  for i = 1, #v do
    if type(v[i]) ~= "string" then return false end
  end
  return true
end

-- Check and normalise custom_fields: known keys only, nulls dropped.
local function custom_fields(v, errors)
  if not is_array(v) then
    errors[#errors + 1] = "custom_fields must be an array of CustomFields objects"
    return nil
  end
  local out = json.array({})
  for i = 1, #v do
    local cf = v[i]
    if not is_object(cf) then
      errors[#errors + 1] = format("custom_fields[%d] must be an object", i - 1)
    else
      local o = schema.make("CustomFields", {})
      for _, k in ipairs(CF_STRING_FIELDS) do
        local x = cf[k]
        if x ~= nil and x ~= null then
          if type(x) ~= "string" then
            errors[#errors + 1] = format("custom_fields[%d].%s must be a string", i - 1, k)
          else
            o[k] = x
          end
        end
      end
      if cf.value ~= nil and cf.value ~= null then o.value = cf.value end
      out[i] = o
    end
  end
  return out
end

--- Validate a raw request body. See the module comment for the results.
function validate.contact_body(body)
  if body == nil or body == "" then
    return nil, 400, "Request body must be a JSON object"
  end
  local v, err = json.decode(body)
  if v == nil then
    return nil, 400, "Request body is not valid JSON: " .. err
  end
  if not is_object(v) then
    return nil, 400, "Request body must be a JSON object"
  end
  local unknown = {}
  for k in pairs(v) do
    if not ALLOWED[k] then unknown[#unknown + 1] = k end
  end
  if #unknown > 0 then
    sort(unknown)
    local parts = {}
    for i, k in ipairs(unknown) do parts[i] = "property " .. k .. " should not exist" end
    return nil, 400, concat(parts, "; ")
  end
  local errors, changes = {}, {}
  for _, f in ipairs(STRING_FIELDS) do
    local x = v[f]
    if x ~= nil and x ~= null and type(x) ~= "string" then
      errors[#errors + 1] = f .. " must be a string"
    end
    changes[f] = x
  end
  for _, f in ipairs(STRING_ARRAY_FIELDS) do
    local x = v[f]
    if x ~= nil and x ~= null and not string_array(x) then
      errors[#errors + 1] = f .. " must be an array of strings"
    end
    changes[f] = x
  end
  local cf = v.custom_fields
  if cf ~= nil and cf ~= null then
    changes.custom_fields = custom_fields(cf, errors)
  else
    changes.custom_fields = cf
  end
  local pt = v.passthrough
  if pt ~= nil and pt ~= null and not is_object(pt) then
    errors[#errors + 1] = "passthrough must be an object"
  end
  changes.passthrough = pt
  if #errors > 0 then
    return nil, 422, "Validation failed: " .. concat(errors, "; "), errors
  end
  return changes
end

return validate
