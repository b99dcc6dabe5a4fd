-- Creates a contact in StackOne's CRM and prints it.
--
--   STACKONE_API_KEY=... STACKONE_ACCOUNT_ID=... lua5.4 examples/create_contact.lua
--
-- Without those variables it runs against the bundled local server.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require("connect").run(function(client)
  local contact, res = client.crm.contacts.create{
    first_name = "Steve", last_name = "Wozniak", company_name = "Apple Inc.",
    emails = { "steve@apple.com" }, phone_numbers = { "123-456-7890" },
    deal_ids = { "deal-001", "deal-002" }, account_ids = { "account-123", "account-456" },
    custom_fields = { { id = "8187e5da-dc77-475e-9949-af0f1fa4e4e3", name = "Training Completion Status",
                        value = "Completed", value_id = "value_456" } },
    passthrough = { other_known_names = "John Doe" },
  }
  if not contact then error(res, 0) end -- res is the error object here

  print(("created contact %s (HTTP %d)"):format(contact.id, res.status))
  for _, key in ipairs{ "first_name", "last_name", "company_name", "created_at" } do
    print(("  %-13s %s"):format(key, tostring(contact[key])))
  end
  for _, key in ipairs{ "emails", "phone_numbers", "deal_ids", "account_ids" } do
    print(("  %-13s %s"):format(key, table.concat(contact[key] or {}, ", ")))
  end
  for _, field in ipairs(contact.custom_fields or {}) do
    print(("  custom field  %s = %s"):format(field.name or field.id, tostring(field.value)))
  end
end)
