-- Creates a contact in StackOne's CRM and prints it.
--
--   STACKONE_API_KEY=... STACKONE_ACCOUNT_ID=... lua5.4 examples/create_contact.lua
--
-- STACKONE_BASE_URL points it elsewhere (`make demo` sets it to the bundled
-- local server).
local stackone = require("stackone")

local client <close> = assert(stackone.new{
  api_key = os.getenv("STACKONE_API_KEY"),
  account_id = os.getenv("STACKONE_ACCOUNT_ID"),
  base_url = os.getenv("STACKONE_BASE_URL"),
})

local contact, res = client.crm.contacts.create{
  first_name = "Steve", last_name = "Wozniak", company_name = "Apple Inc.",
  emails = { "steve@apple.com" }, phone_numbers = { "123-456-7890" },
  deal_ids = { "deal-001", "deal-002" }, account_ids = { "account-123", "account-456" },
  custom_fields = { { id = "8187e5da-dc77-475e-9949-af0f1fa4e4e3", name = "Training Completion Status",
                      value = "Completed", value_id = "value_456" } },
  passthrough = { other_known_names = "John Doe" },
}
if not contact then
  io.stderr:write(tostring(res), "\n") -- res is the error object here
  return 1
end

print(("created contact %s (HTTP %d)"):format(contact.id, res.status))
for _, key in ipairs{ "first_name", "last_name", "company_name", "created_at" } do
  print(("  %-13s %s"):format(key, tostring(contact[key])))
end
print(("  %-13s %s"):format("emails", table.concat(contact.emails or {}, ", ")))
print(("  %-13s %s"):format("phone_numbers", table.concat(contact.phone_numbers or {}, ", ")))
print(("  %-13s %s"):format("deal_ids", table.concat(contact.deal_ids or {}, ", ")))
print(("  %-13s %s"):format("account_ids", table.concat(contact.account_ids or {}, ", ")))
for _, field in ipairs(contact.custom_fields or {}) do
  print(("  custom field  %s = %s"):format(field.name or field.id, tostring(field.value)))
end
