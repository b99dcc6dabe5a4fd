-- The issue's example contact (the same data as contact() in
-- spec/support/fixtures.lua, which bench/run.lua checks), as plain data so
-- that the hand-written LuaSocket client can load it without the SDK.
return {
  first_name = "Steve", last_name = "Wozniak", company_name = "Apple Inc.",
  emails = { "steve@apple.com" }, phone_numbers = { "123-456-7890" },
  deal_ids = { "deal-001", "deal-002" }, account_ids = { "account-123", "account-456" },
  custom_fields = { { id = "8187e5da-dc77-475e-9949-af0f1fa4e4e3", name = "Training Completion Status",
                      value = "Completed", value_id = "value_456" } },
  passthrough = { other_known_names = "John Doe" },
}
