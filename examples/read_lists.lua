-- Reads the CRM lists and the items of each.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local connect = require("connect") -- (it puts the in-tree stackone on the path)
local stackone = require("stackone")

connect.run(function(client)
  for list in client.crm.lists.each() do
    local full = stackone.assert(client.crm.lists.get(list.id))
    local kind = type(full.type) == "table" and full.type.value or full.type
    print(("%s  %-25s %-10s %d items"):format(full.id, full.name or "", tostring(kind), #(full.items or {})))
  end
end)
