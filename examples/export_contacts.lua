-- Every active linked account's contacts updated since a date, written to
-- one JSON Lines file (one contact a line, with its account), four
-- accounts at a time, with progress: the platform's linked accounts and
-- client:for_each_account.
--
--   lua5.4 examples/export_contacts.lua [since] [out.jsonl]
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local connect = require("connect") -- (it puts the in-tree stackone on the path)
local stackone = require("stackone")
local cjson = require("cjson")

connect.run(function(client, server)
  local since = arg[1] or "2024-01-01T00:00:00Z"
  local path = arg[2] or "contacts.jsonl"

  if server.local_server then -- give a few of the local server's accounts contacts
    for i = 1, 3 do
      local view = client:with_account(("linked-%02d"):format(i))
      for j = 1, i do stackone.assert(view.crm.contacts.create{ first_name = ("Contact %d.%d"):format(i, j) }) end
    end
  end

  local out = assert(io.open(path, "w"))
  local results, summary = client:for_each_account({ status = "active" }, function(account, view)
    -- (the iterator called by hand: Lua 5.1's generic for cannot yield, and calls here do)
    local n, next_contact = 0, view.crm.contacts.each{ filter = { updated_after = since }, page_size = 100 }
    while true do
      local contact = next_contact()
      if not contact then return n end
      out:write(cjson.encode{ account_id = account.id, provider = account.provider, contact = contact }, "\n")
      n = n + 1
    end
  end, {
    concurrency = 4,
    on_progress = function(done, total, failed)
      io.stderr:write(("\r%d/%d accounts, %d failed"):format(done, total, failed))
    end,
  })
  io.stderr:write("\n")
  out:close()
  if not results then error(summary) end
  local contacts = 0
  for _, r in ipairs(results) do
    if r.err then
      print(("%s (%s): %s"):format(r.account.id, r.account.provider, tostring(r.err)))
    else
      contacts = contacts + r.value
    end
  end
  print(("wrote %d contacts of %d accounts to %s in %.2f s"):format(contacts, summary.ok, path, summary.elapsed))
end)
