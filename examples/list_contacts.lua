-- Lists contacts updated after a date: one page with `list`, then every
-- contact of every page with `each`.
--
--   lua5.4 examples/list_contacts.lua [2024-01-01T00:00:00Z]
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local connect = require("connect") -- (it puts the in-tree stackone on the path)
local stackone = require("stackone")

connect.run(function(client, server)
  local since = arg[1] or "2024-01-01T00:00:00Z"

  if server.local_server then -- give the empty local server something to list
    for i = 1, 7 do stackone.assert(client.crm.contacts.create{ first_name = "Contact " .. i }) end
  end

  local query = { filter = { updated_after = since }, page_size = 3, fields = { "id", "first_name", "updated_at" } }

  local page = stackone.assert(client.crm.contacts.list(query))
  print(("first page: %d contacts, next cursor: %s"):format(#page.data, page.next or "none"))

  local n = 0
  for contact in client.crm.contacts.each(query) do
    n = n + 1
    print(("%3d  %-38s %-12s %s"):format(n, contact.id, contact.first_name or "", contact.updated_at or ""))
  end
  print(("%d contacts updated after %s"):format(n, since))
end)
