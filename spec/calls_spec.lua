-- How the public functions are called: dot and colon alike for every
-- operation, an uncalled `each` in a generic for, and a server whose
-- cursor repeats.
local stackone = require("stackone")
local harness = require("support.harness")
local fx = require("support.fixtures")

describe("calls", function()
  local server, client

  harness.serve({ client = {} }, function(s, c) server, client = s, c end)

  -- the arguments of each operation, after the group (the same for both
  -- forms: a delete is of an account neither finds)
  local PLATFORM = {
    stackone_update_account = { "linked-01", { label = { by = "colon" } } },
    stackone_get_account = { "linked-01" },
    stackone_delete_account = { "no-such-account" },
    stackone_create_connect_session = { { origin_owner_id = "o-1", origin_owner_name = "Owner" } },
    stackone_authenticate_connect_session = { { token = "no-such-token" } },
  }
  local function args_for(op, id)
    if PLATFORM[op.operation_id] then return PLATFORM[op.operation_id] end
    if op.kind == "create" then return { { first_name = "Colon" } } end
    if op.kind == "update" then return { id, { last_name = "Colon" } } end
    if op.kind == "get" then return { op.group == "contacts" and id or "x" } end
    return { { page_size = 1 } }
  end

  -- client.crm.contacts, client.accounts, ...
  local function group_of(op)
    local group = client
    for part in op.group_name:gmatch("[^.]+") do group = group[part] end
    return group
  end

  -- a blocking call's job is kept by the client for the next call to use
  -- again (job.c): it must not keep the last call's values alive with it
  it("a finished call keeps nothing of its values alive", function()
    local function made_and_dropped()
      local contact, response = client.crm.contacts.create{ first_name = "Kept" }
      assert.equal("Kept", contact.first_name)
      return setmetatable({ contact, response }, { __mode = "v" })
    end
    local weak = made_and_dropped()
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
    assert.is_nil(weak[2])
    -- and the next call gets its own values
    local again = client.crm.contacts.create{ first_name = "Again" }
    assert.equal("Again", again.first_name)
  end)

  -- the header lines of a call without headers or account_id of its own
  -- are built once per client (with and without a body); each call's own
  -- still win, before and after
  it("a call's own headers and account id win over the client's kept lines", function()
    local c = fx.client(server, { headers = { ["X-Team"] = "client" } })
    local function sent(call)
      server:reset()
      assert(call())
      local r = server:requests()[1]
      return r.headers
    end
    for _ = 1, 2 do
      local h = sent(function() return c.crm.contacts.create{ first_name = "A" } end)
      assert.equal(fx.ACCOUNT, h["x-account-id"])
      assert.equal("client", h["x-team"])
      assert.equal("application/json", h["content-type"])
      h = sent(function() return c.crm.contacts.create({ first_name = "B" },
        { account_id = "acc-own", headers = { ["X-Team"] = "call", ["Content-Type"] = "application/json; x=1" } }) end)
      assert.equal("acc-own", h["x-account-id"])
      assert.equal("call", h["x-team"])
      assert.equal("application/json; x=1", h["content-type"])
      h = sent(function() return c.crm.contacts.list{ page_size = 1 } end)
      assert.equal(fx.ACCOUNT, h["x-account-id"])
      assert.is_nil(h["content-type"])
      h = sent(function() return c.accounts.list() end)
      assert.is_nil(h["x-account-id"])
      assert.equal("client", h["x-team"])
      h = sent(function() return c.crm.contacts.list({ page_size = 1 }, { account_id = "acc-two" }) end)
      assert.equal("acc-two", h["x-account-id"])
    end
    c:close()
  end)

  it("group:op(...) works like group.op(...) for every operation", function()
    local id = assert(client.crm.contacts.create{ first_name = "Base" }).id
    for _, op in ipairs(stackone.operations) do
      local group = group_of(op)
      local args = args_for(op, id)
      local dot_value, dot_second = group[op.name](args[1], args[2])
      local colon_value, colon_second = group[op.name](group, args[1], args[2]) -- group:op(...)
      assert.equal(type(dot_value), type(colon_value), op.operation_id)
      assert.equal(dot_second.status, colon_second.status, op.operation_id)
    end
    local results = client.crm.contacts:create_many({ { first_name = "M" } }, { concurrency = 1 })
    assert.equal("M", results[1].record.first_name)
    local n = 0
    for _ in client.crm.lists:each{ page_size = 1 } do n = n + 1 end
    assert.is_true(n > 0)
  end)

  it("a colon call's errors name the function and point at the caller", function()
    local ok, msg = pcall(function() client.crm.contacts:create({}, { timout = 1 }) end)
    assert.is_false(ok)
    assert.matches("calls_spec.lua:%d+: crm.contacts.create: unknown option 'timout'", msg)
  end)

  it("stackone.assert gives a call's results, or raises its error object itself, on every Lua", function()
    local contact, response = stackone.assert(client.crm.contacts.create{ first_name = "Asserted" })
    assert.equal("Asserted", contact.first_name)
    assert.equal(200, response.status)
    local ok, err = pcall(function() stackone.assert(client.crm.contacts.get("no-such-contact")) end)
    assert.is_false(ok)
    assert.is_true(stackone.is_error(err))
    assert.equal(404, err.status)
    ok, err = pcall(stackone.assert, false)
    assert.is_false(ok)
    assert.matches("assertion failed!", err, 1, true)
  end)

  it("an uncalled each in a generic for raises a clear error", function()
    local ok, msg = pcall(function()
      for _ in client.crm.accounts.each do end -- luacheck: ignore 512
    end)
    assert.is_false(ok)
    assert.matches("calls_spec.lua:%d+: crm.accounts.each: it must be called", msg)
  end)

  it("each stops with an error object when the server repeats the cursor", function()
    local page = { data = { { id = "a1" } }, next = "same-cursor" }
    server:script("/unified/crm/accounts", { { json = page }, { json = page }, { json = page } }, "GET")
    local seen = 0
    local ok, err = pcall(function()
      for _ in client.crm.accounts.each() do seen = seen + 1 end
    end)
    assert.is_false(ok)
    assert.is_true(stackone.is_error(err))
    assert.matches("cursor of the previous page", err.message)
    assert.equal(2, seen) -- both pages that came were read
    assert.equal(2, #server:requests())
  end)

  -- a page whose cursor leads back to any earlier page (A -> B -> A ...)
  -- would loop for ever; a libcurl that drops a page's query string reads
  -- the first page again and hands out its records twice
  local function page(id, next_cursor) return { json = { data = { { id = id } }, next = next_cursor } } end
  local chains = {
    { "a cycle back to the first cursor", { page("p1", "A"), page("p2", "B"), page("p3", "A") }, 3, 1 },
    { "a cycle back to a middle cursor", { page("p1", "A"), page("p2", "B"), page("p3", "C"), page("p4", "B") },
      4, 2 },
    { "the first page again (its query string lost)", { page("p1", "A"), page("p2", "B"), page("p1", "A") }, 3, 1 },
  }
  for _, case in ipairs(chains) do
    it("each stops with an error object when the cursor chain repeats: " .. case[1], function()
      server:script("/unified/crm/accounts", case[2], "GET")
      local ids = {}
      local ok, err = pcall(function()
        for account in client.crm.accounts.each() do ids[#ids + 1] = account.id end
      end)
      assert.is_false(ok)
      assert.is_true(stackone.is_error(err))
      assert.equal("invalid", err.kind)
      assert.matches("cursor", err.message)
      assert.equal(case[4], err.first_page) -- the page that first gave the cursor
      assert.equal(case[3], #ids) -- every page that came was read, none twice
      assert.equal(case[3], #server:requests())
    end)
  end

  it("each remembers the cursor it was started from", function()
    server:script("/unified/crm/accounts", { page("p1", "B"), page("p2", "start") }, "GET")
    local n = 0
    local ok, err = pcall(function()
      for _ in client.crm.accounts.each{ next = "start" } do n = n + 1 end
    end)
    assert.is_false(ok)
    assert.equal("invalid", err.kind)
    assert.matches("cursor", err.message)
    assert.equal(2, n)
    assert.equal(2, #server:requests())
  end)

  -- compression costs libcurl work on every request: it is asked for only
  -- where answers can be large (pages), counted on the server
  it("asks for compression on a list, not on a create or a get", function()
    local contact = assert(client.crm.contacts.create{ first_name = "Plain" })
    assert(client.crm.contacts.get(contact.id))
    assert(client.crm.contacts.list{ page_size = 1 })
    local asked = {}
    for _, r in ipairs(server:requests()) do
      asked[#asked + 1] = r.method .. " " .. tostring(r.headers["accept-encoding"] ~= nil)
    end
    assert.same({ "POST false", "GET false", "GET true" }, asked)
  end)
end)
