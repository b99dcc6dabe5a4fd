-- Field lists of the spec's schemas, in the spec's property order, and the
-- metatables that make records encode in that order.
local json = require("stackone.server.json")

local schema = {}

schema.fields = {
  Contact = { "id", "remote_id", "unified_custom_fields", "first_name", "last_name", "company_name",
    "emails", "phone_numbers", "deal_ids", "remote_deal_ids", "account_ids", "remote_account_ids",
    "custom_fields", "created_at", "updated_at" },
  Account = { "id", "remote_id", "unified_custom_fields", "owner_id", "remote_owner_id", "name",
    "description", "industries", "annual_revenue", "website", "addresses", "phone_numbers",
    "created_at", "updated_at" },
  List = { "id", "remote_id", "unified_custom_fields", "name", "items", "created_at", "updated_at", "type" },
  CustomFieldDefinition = { "id", "remote_id", "name", "description", "type", "options" },
  AccountAddress = { "street_1", "street_2", "city", "state", "zip_code", "country", "location_type" },
  Enum = { "value", "source_value" },
  CustomFields = { "id", "remote_id", "name", "value", "value_id", "remote_value_id" },
  CustomFieldOption = { "id", "value" },
  ListItem = { "id", "remote_id" },
  RawResponse = { "method", "url", "body", "response" },
  Paginated = { "next", "data", "raw" },
  Result = { "data", "raw" },
}

schema.mt = {}
for name, keys in pairs(schema.fields) do
  schema.mt[name] = json.order_mt(keys)
end

--- Give t the key order of the named schema.
function schema.make(name, t)
  return setmetatable(t, schema.mt[name])
end

return schema
