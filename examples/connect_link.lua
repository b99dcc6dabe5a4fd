-- A link for a customer to connect their CRM: a connect session for the
-- customer (the origin owner), and the link StackOne's hub opens.
--
--   lua5.4 examples/connect_link.lua [customer-id] [customer name]
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local connect = require("connect") -- (it puts the in-tree stackone on the path)
local stackone = require("stackone")

connect.run(function(client)
  local session = stackone.assert(client.connect_sessions.create{
    origin_owner_id = arg[1] or "customer-42",
    origin_owner_name = arg[2] or "Customer 42",
    categories = { "crm" },
    expires_in = 3600,
  })
  print("send your customer to: " .. session.auth_link_url)
end)
