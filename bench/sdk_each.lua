-- Case 3, this SDK: walks the account's contacts with
-- crm.contacts.each{ page_size = P } (or, while each is missing, a loop over
-- crm.contacts.list pages) and stops after LIMIT contacts. LIMIT 0 only
-- loads the SDK and makes the client: the start-up cost to subtract.
--   lua5.4 bench/sdk_each.lua BASE_URL API_KEY ACCOUNT_ID LIMIT PAGE_SIZE
-- Prints "RESULT n=<contacts seen> cpu_us=<os.clock() over the walk> via=each|list".
local stackone = require("stackone")

local base_url, api_key, account = arg[1], arg[2], arg[3]
local limit, page_size = math.tointeger(tonumber(arg[4])), math.tointeger(tonumber(arg[5]))

local client <close> = assert(stackone.new{ api_key = api_key, account_id = account, base_url = base_url,
  rate_limit = false }) -- measure the SDK, not its default pacing (1000 requests/min)
local contacts = client.crm.contacts
local via = contacts.each == nil and "list" or "each"

local n, bytes = 0, 0
local c0 = os.clock()
if limit > 0 then
  if via == "each" then
    for contact in contacts.each{ page_size = page_size } do
      n = n + 1
      bytes = bytes + #contact.id -- touch every contact, as a user would
      if n >= limit then break end
    end
  else
    local cursor
    repeat
      local page, err = contacts.list{ page_size = page_size, next = cursor }
      if not page then error(tostring(err)) end
      for _, contact in ipairs(page.data) do
        n = n + 1
        bytes = bytes + #contact.id
        if n >= limit then break end
      end
      cursor = page.next
    until cursor == nil or n >= limit
  end
end
local cpu = os.clock() - c0
assert(n == 0 or bytes > 0)
print(string.format("RESULT n=%d cpu_us=%d via=%s", n, math.floor(cpu * 1e6 + 0.5), via))
