-- Sets custom fields by name: the client looks the names (and the
-- options of list fields) up in the account's definitions, once.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local connect = require("connect") -- (it puts the in-tree stackone on the path)
local stackone = require("stackone")

connect.run(function(client)
  print("contact custom fields of this account:")
  for definition in client.crm.contact_custom_field_definitions.each() do
    local options = {}
    for _, o in ipairs(definition.options or {}) do options[#options + 1] = o.value end
    print(("  %-28s %s"):format(definition.name, #options > 0 and table.concat(options, " | ") or ""))
  end

  local contact, err = client.crm.contacts.create{
    first_name = "Ada", last_name = "Lovelace",
    custom_fields = { ["Training Completion Status"] = "Completed", ["Favourite Colour"] = "green" },
  }
  if not contact then error(tostring(err)) end
  print(("\ncreated %s with Training Completion Status = %s"):format(contact.id,
    tostring(stackone.custom_field(contact, "Training Completion Status"))))

  -- a name or option that does not exist is refused before anything is sent
  local _, refused = client.crm.contacts.update(contact.id,
    { custom_fields = { ["Training Completion Status"] = "Done" } })
  print("refused: " .. tostring(refused))
end)
