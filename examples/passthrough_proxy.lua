-- Sends provider-specific data: `passthrough` in a body goes to the CRM
-- provider as is; `proxy` query parameters are passed through on reads.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
require("connect").run(function(client)
  local contact, err = client.crm.contacts.create{
    first_name = "Grace", last_name = "Hopper",
    passthrough = { other_known_names = "Amazing Grace", hs_lead_status = "NEW", tags = { "navy", "cobol" } },
  }
  if not contact then error(tostring(err)) end
  print("created " .. contact.id)

  local got, res = client.crm.contacts.get(contact.id, {
    proxy = { properties = { "hs_lead_status", "lifecyclestage" }, archived = false },
    raw = true,
  })
  if not got then error(tostring(res)) end
  print(("read back %s %s; the provider calls behind it:"):format(got.first_name, got.last_name))
  for _, call in ipairs(res.raw or {}) do print("  " .. call.method .. " " .. call.url) end
end)
