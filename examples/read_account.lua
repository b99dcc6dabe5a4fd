-- Reads the CRM accounts: the first page, then one account in full.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local connect = require("connect") -- (it puts the in-tree stackone on the path)
local stackone = require("stackone")

connect.run(function(client)
  local page = stackone.assert(client.crm.accounts.list{ page_size = 10, fields = { "id", "name" } })
  for _, account in ipairs(page.data) do print(account.id, account.name) end

  local first = page.data[1]
  if first then
    local account, res = client.crm.accounts.get(first.id)
    if not account then error(tostring(res)) end
    print(("\n%s (%s)"):format(account.name, account.id))
    for _, key in ipairs{ "owner_id", "industries", "annual_revenue", "website", "created_at" } do
      local value = account[key]
      if type(value) == "table" then value = table.concat(value, ", ") end
      if value ~= nil then print(("  %-15s %s"):format(key, tostring(value))) end
    end
    for _, address in ipairs(account.addresses or {}) do
      print(("  address         %s, %s"):format(address.street_1 or "", address.city or ""))
    end
  end
end)
