-- The platform API (linked accounts, connect sessions, request logs)
-- against the local server: every operation, numbered and cursor pages
-- with short pages, the wire (repeated keys, ids percent-encoded, no
-- x-account-id), the checks before sending, every documented status, and
-- a POST or DELETE never resent when the server may have acted on it.
local stackone = require("stackone")
local harness = require("support.harness")
local fx = require("support.fixtures")

local STATUSES = { 400, 401, 403, 404, 408, 409, 422, 429, 500, 501, 502 }

describe("platform API", function()
  local server, client

  -- no account id at all: the platform's calls need none
  harness.serve({ fresh_client = true, client = function(s)
    return assert(stackone.new{ api_key = fx.API_KEY, base_url = s.url, retry = { base_delay = 0.01 } })
  end }, function(s, c) server, client = s, c end)

  local function requests()
    local out = {}
    for _, r in ipairs(server:requests()) do out[#out + 1] = r end
    return out
  end

  local function targets()
    local out = {}
    for _, r in ipairs(requests()) do out[#out + 1] = r.method .. " " .. r.target end
    return out
  end

  local function envelope(status)
    return { statusCode = status, message = "scripted " .. status, timestamp = "2024-01-01T00:00:00.000Z" }
  end

  it("has its groups beside client.crm, which keeps the CRM's companies", function()
    for _, name in ipairs{ "list", "each", "get", "update", "delete" } do
      assert.is_function(client.accounts[name], name)
    end
    assert.is_function(client.connect_sessions.create)
    assert.is_function(client.connect_sessions.authenticate)
    assert.is_function(client.request_logs.list)
    assert.is_function(client.request_logs.each)
    assert.is_function(client.request_logs.get)
    assert.is_function(client.crm.accounts.list)
    assert.has_error(function() return client.accounts.lst end, "accounts has no operation 'lst' (it has: delete, "
      .. "each, get, list, update)")
    local n = 0
    for _, op in ipairs(stackone.operations) do
      if op.api == "platform" then
        n = n + 1
        assert.is_nil(op.namespace)
        assert.is_false(op.account)
        assert.is_function(client[op.group][op.name], op.operation_id)
      end
    end
    assert.equal(8, n)
  end)

  it("accounts.list: a page of the bare array, filters repeating their key, next while a page is full", function()
    local page, res = client.accounts.list{ page_size = 5, status = "active", providers = { "hubspot", "salesforce" } }
    assert.equal(200, res.status)
    assert.equal(5, #page.data)
    assert.equal(2, page.next)
    for _, a in ipairs(page.data) do
      assert.equal("active", a.status)
      assert.is_truthy(a.provider == "hubspot" or a.provider == "salesforce")
    end
    -- 8 hubspot or salesforce accounts are active: the second page is short and the last
    page = assert(client.accounts.list{ page = page.next, page_size = 5, status = "active",
      providers = { "hubspot", "salesforce" } })
    assert.equal(3, #page.data)
    assert.is_nil(page.next)
    -- the colon form numbers its pages too
    page = assert(client.accounts:list{ page_size = 2 })
    assert.equal(2, page.next)
    assert.same({
      "GET /accounts?page_size=5&providers=hubspot&providers=salesforce&status=active",
      "GET /accounts?page=2&page_size=5&providers=hubspot&providers=salesforce&status=active",
      "GET /accounts?page_size=2",
    }, targets())
    for _, r in ipairs(requests()) do
      assert.is_nil(r.headers["x-account-id"])
    end
  end)

  it("accounts.each walks numbered pages, a short last page ending it, the same filters on each", function()
    local ids = {}
    for account in client.accounts.each{ page_size = 5, status = { "active", "error" } } do
      ids[#ids + 1] = account.id
    end
    assert.equal(13, #ids) -- 12 active, one in error: pages of 5, 5, 3
    assert.same({
      "GET /accounts?page_size=5&status=active&status=error",
      "GET /accounts?page=2&page_size=5&status=active&status=error",
      "GET /accounts?page=3&page_size=5&status=active&status=error",
    }, targets())
    -- an exact multiple: one more page, empty
    server:clear_requests()
    local n = 0
    for _ in client.accounts.each{ page_size = 4, status = "active" } do n = n + 1 end
    assert.equal(12, n)
    assert.equal(4, #targets())
  end)

  it("accounts.get, update and delete: ids percent-encoded, nested objects in the body", function()
    local account = assert(client.accounts.get("linked-03"))
    assert.equal("pipedrive", account.provider)
    local updated, res = client.accounts.update("linked-03", { label = { team = "sales" }, metadata = { plan = "pro",
      seats = { 1, 2 } }, origin_username = "ada", type = "test" })
    assert.equal(200, res.status)
    assert.equal("ada", updated.origin_username)
    assert.same({ team = "sales" }, updated.label)
    local deleted = assert(client.accounts.delete("linked-14"))
    assert.equal("linked-14", deleted.id)
    local gone, err = client.accounts.get("linked-14")
    assert.is_nil(gone)
    assert.equal(404, err.status)
    local _, nope = client.accounts.get("a/b?c")
    assert.equal(404, nope.status)
    local t = targets()
    assert.equal("PATCH /accounts/linked-03", t[2])
    assert.equal("DELETE /accounts/linked-14", t[3])
    assert.equal("GET /accounts/a%2Fb%3Fc", t[5])
    local patch = requests()[2]
    assert.truthy(patch.body:find('"metadata":{', 1, true))
    assert.truthy(patch.body:find('"seats":[1,2]', 1, true))
  end)

  it("connect_sessions.create answers 201 with a link that links a new account when opened", function()
    local session, res = client.connect_sessions.create{ origin_owner_id = "customer-99",
      origin_owner_name = "Customer 99", provider = "salesforce", categories = { "crm" }, expires_in = 600,
      multiple = false, metadata = { source = "spec" } }
    assert.equal(201, res.status)
    assert.equal(1, res.attempts)
    assert.matches("^" .. server.url:gsub("%p", "%%%0") .. "/connect/", session.auth_link_url)
    local authenticated, res2 = client.connect_sessions.authenticate{ token = session.token }
    assert.equal(201, res2.status)
    assert.equal("customer-99", authenticated.origin_owner_id)
    -- the customer opens the link: a linked account appears
    local http = require("socket.http")
    local body, status = http.request(session.auth_link_url)
    assert.equal(200, status, body)
    local found
    for account in client.accounts.each{ providers = "salesforce" } do
      if account.origin_owner_id == "customer-99" then found = account end
    end
    assert.is_table(found)
    assert.equal("active", found.status)
  end)

  it("request_logs: what the server served, cursor pages with short pages, get by id", function()
    for i = 1, 3 do assert(client.crm.contacts.list(nil, { account_id = "linked-0" .. i })) end
    assert(client.crm.accounts.list(nil, { account_id = "linked-01" }))
    local seen, pages = {}, 0
    local page = assert(client.request_logs.list{ page_size = 2, order_direction = "asc" })
    assert.is_string(page.next)
    for log in client.request_logs.each{ page_size = 3 } do seen[#seen + 1] = log end
    assert.equal(4, #seen)
    assert.equal("/unified/crm/accounts", seen[1].path) -- newest first
    for _, t in ipairs(targets()) do
      if t:find("^GET /requests/logs%?page_size=3") then pages = pages + 1 end
    end
    assert.equal(2, pages) -- 3, then a short page of 1
    local mine = assert(client.request_logs.list{ filter = { account_ids = { "linked-01" }, http_methods = "GET",
      success = true } })
    assert.equal(2, #mine.data)
    local one, res = client.request_logs.get(mine.data[1].request_id, { include = "step_logs" })
    assert.equal(200, res.status)
    assert.equal("linked-01", one.account_id)
    local t = targets()
    assert.truthy(t[#t - 1]:find("filter%[account_ids%]=linked%-01", 1) or
      t[#t - 1]:find("filter%%5Baccount_ids%%5D=linked%-01"), t[#t - 1])
    assert.truthy(t[#t]:find("?include=step_logs", 1, true))
  end)

  it("checks before sending: unknown fields with did you mean, values, types; nothing is sent", function()
    local cases = {
      { client.connect_sessions.create, { origin_owner_id = "o", origin_owner_name = "O", categries = {} },
        "field 'categries' is not a known field %(did you mean 'categories'%?%)" },
      { client.connect_sessions.create, { origin_owner_id = "o", origin_owner_name = "O", categories = { "crn" } },
        "field 'categories%[1%]' is not one of the values the API takes %(did you mean 'crm'%?%)" },
      { client.connect_sessions.create, { origin_owner_id = "o", origin_owner_name = "O", expires_in = "10" },
        "field 'expires_in' must be a number" },
      { client.connect_sessions.create, { origin_owner_id = "o", origin_owner_name = "O", multiple = 1 },
        "field 'multiple' must be true or false" },
      { client.connect_sessions.create, { origin_owner_id = "o", origin_owner_name = "O", metadata = { 1, 2 } },
        "field 'metadata' must be a table of named values" },
      { client.connect_sessions.authenticate, { tokn = "x" }, "did you mean 'token'" },
      { client.connect_sessions.authenticate, {}, "field 'token' is required" },
      { client.connect_sessions.create, { origin_owner_id = "o", categories = { "crm" } },
        "field 'origin_owner_name' is required" },
      { client.accounts.list, { page = 0 }, "query 'page' must be a whole number from 1" },
      { client.accounts.list, { providers = { "a", 1 } }, "query 'providers' must be a string or an array of strings" },
      { client.accounts.list, { statuss = "active" }, "did you mean 'status'" },
      { client.request_logs.list, { page_size = 101 }, "query 'page_size' must be a whole number from 1 to 100" },
      { client.request_logs.list, { order_by = "provder" }, "did you mean 'provider'" },
      { client.request_logs.list, { filter = { sucess = true } }, "did you mean 'success'" },
      { client.request_logs.list, { filter = { success = "yes" } }, "query 'filter%[success%]' must be true or false" },
    }
    for _, c in ipairs(cases) do
      local value, err = c[1](c[2])
      assert.is_nil(value)
      assert.equal("invalid", err.kind)
      assert.matches(c[3], err.message)
    end
    local _, err = client.accounts.update("linked-01", { lable = {} })
    assert.matches("did you mean 'label'", err.message)
    _, err = client.accounts.update("linked-01", { type = "tset" })
    assert.matches("did you mean 'test'", err.message)
    assert.same({}, targets())
  end)

  it("programmer errors raise at the caller's line: an account id does not apply, a wrong argument", function()
    assert.has_error(function() client.accounts.get("linked-01", { account_id = "x" }) end,
      "accounts.get: option 'account_id' does not apply: the platform API takes no x-account-id")
    assert.has_error(function() client.accounts.delete(1) end,
      "bad argument #1 to 'accounts.delete' (string id expected, got number)")
    assert.has_error(function() client.connect_sessions.create("x") end,
      "bad argument #1 to 'connect_sessions.create' (table of fields expected, got string)")
    -- a CRM call on the same client still needs one
    assert.has_error(function() client.crm.contacts.list() end)
  end)

  for _, status in ipairs(STATUSES) do
    it("every operation gives a scripted " .. status .. " as nil, err with the status and body", function()
      local calls = {
        { "/accounts", "GET", function() return client.accounts.list() end },
        { "/accounts/linked-01", "GET", function() return client.accounts.get("linked-01") end },
        { "/accounts/linked-01", "PATCH", function() return client.accounts.update("linked-01", { label = {} }) end },
        { "/accounts/linked-01", "DELETE", function() return client.accounts.delete("linked-01") end },
        { "/connect_sessions", "POST", function()
          return client.connect_sessions.create{ origin_owner_id = "o", origin_owner_name = "O" } end },
        { "/connect_sessions/authenticate", "POST", function()
          return client.connect_sessions.authenticate{ token = "t" } end },
        { "/requests/logs", "GET", function() return client.request_logs.list() end },
        { "/requests/logs/r-1", "GET", function() return client.request_logs.get("r-1") end },
      }
      for _, c in ipairs(calls) do
        local steps = {}
        for i = 1, 4 do steps[i] = { status = status, json = envelope(status) } end
        server:script(c[1], steps, c[2])
        local value, err = c[3]()
        assert.is_nil(value, c[2] .. " " .. c[1])
        assert.equal(status, err.status, c[2] .. " " .. c[1])
        assert.equal("http", err.kind)
        assert.equal("scripted " .. status, err.message)
        assert.equal(status, err.body.statusCode)
        -- 429 always retried; 408, 500 and 502 but for POST and DELETE
        local again = status == 429 or ((status == 408 or status >= 500 and status ~= 501)
          and c[2] ~= "POST" and c[2] ~= "DELETE")
        assert.equal(again and 4 or 1, err.attempts, c[2] .. " " .. c[1] .. " " .. status)
        server:clear_script()
      end
    end)
  end

  for _, c in ipairs{
    { "DELETE", "/accounts/linked-02", function(cl) return cl.accounts.delete("linked-02") end },
    { "POST", "/connect_sessions", function(cl)
      return cl.connect_sessions.create{ origin_owner_id = "o", origin_owner_name = "O" } end },
  } do
    it("a " .. c[1] .. " whose connection drops after the server read it is sent once, maybe_applied", function()
      for _, drop in ipairs{ { close = "before" }, { close = "mid_body", status = 200, json = {} } } do
        server:clear_requests()
        server:script(c[2], { drop, { pass = true } }, c[1])
        local value, err = c[3](client)
        assert.is_nil(value)
        assert.equal("network", err.kind)
        assert.is_true(err.maybe_applied)
        assert.equal(1, err.attempts)
        assert.same({ c[1] .. " " .. c[2] }, targets())
        server:clear_script()
      end
      -- a GET of the same path is retried
      server:clear_requests()
      server:script("/accounts/linked-03", { { close = "before" }, { pass = true } }, "GET")
      local account, res = client.accounts.get("linked-03")
      assert.equal("linked-03", account.id)
      assert.equal(2, res.attempts)
    end)
  end

  it("docs/platform.md's examples run as written, each printing what it says", function()
    local doc = assert(require("support.shell").read("docs/platform.md"))
    local printed
    local env = setmetatable({ client = client, stackone = stackone, print = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      printed[#printed + 1] = table.concat(parts, "\t")
    end }, { __index = _G })
    local outputs = {}
    for block in doc:gmatch("```lua\n(.-)```") do
      local chunk
      if rawget(_G, "setfenv") then -- 5.1 and LuaJIT
        chunk = assert(rawget(_G, "loadstring")(block, "=docs/platform.md"))
        rawget(_G, "setfenv")(chunk, env)
      else
        chunk = assert(load(block, "=docs/platform.md", "t", env))
      end
      printed = {}
      local ok, err = pcall(chunk)
      assert(ok, tostring(err) .. "\n" .. block)
      outputs[#outputs + 1] = table.concat(printed, "\n")
    end
    assert.equal(5, #outputs)
    assert.equal("5\t2\n12 active linked accounts\npipedrive\tactive", outputs[1])
    assert.matches("^http://127%.0%.0%.1:%d+/connect/", outputs[2])
    assert.matches("^GET\t/unified/crm/contacts\t200", outputs[3])
    assert.equal("Ada", outputs[4])
    assert.equal("12\t0\tlinked-01\t0", outputs[5])
  end)

  fx.needs("luv", it, pending)("calls yield to a loop: the platform's under luv", function()
    local uv = require("luv")
    local looped = assert(stackone.new{ api_key = fx.API_KEY, base_url = server.url, loop = stackone.loop.luv(uv) })
    local got = {}
    for i, id in ipairs{ "linked-01", "linked-02" } do
      coroutine.wrap(function()
        got[i] = assert(looped.accounts.get(id)).id
      end)()
    end
    local page
    coroutine.wrap(function() page = assert(looped.accounts.list{ page_size = 3 }) end)()
    uv.run()
    looped:close()
    assert.same({ "linked-01", "linked-02" }, got)
    assert.equal(2, page.next)
  end)
end)
