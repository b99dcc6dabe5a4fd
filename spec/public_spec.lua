-- Errors are about the user's code: every programmer mistake raises a
-- message that names the public function the user called and points at
-- the user's line, whichever layer found it (the C checks, the Lua layer,
-- each, custom fields by name), on every Lua. Nothing is sent.
local stackone = require("stackone")
local harness = require("support.harness")
local fx = require("support.fixtures")

describe("programmer errors", function()
  local server, client

  harness.serve({ client = {} }, function(s, c) server, client = s, c end)

  -- fn's error must point at a line of fn itself (the user's code, not
  -- the SDK's) and read `expected` after the location
  local function raises(expected, fn)
    local ok, msg = pcall(fn)
    assert.is_false(ok, expected)
    assert.equal("string", type(msg), expected)
    local info = debug.getinfo(fn, "S")
    local file, line, text = msg:match("^(.-):(%d+): (.*)$")
    assert.matches("spec/public_spec%.lua$", file or "", 1, false)
    assert.is_true(tonumber(line) >= info.linedefined and tonumber(line) <= info.lastlinedefined, msg)
    assert.equal(expected, text)
  end

  local CONTACTS, ACCOUNTS = "crm.contacts.", "crm.accounts."

  it("found by the C checks name the operation, dot or colon", function()
    local c = client.crm.contacts
    raises("bad argument #1 to 'crm.contacts.create' (table of fields expected, got number)",
      function() c.create(5) end)
    raises("bad argument #1 to 'crm.contacts.create' (table of fields expected, got number)",
      function() c:create(5) end)
    raises(CONTACTS .. "create: unknown option 'timout' (did you mean 'timeout'?)",
      function() c.create({}, { timout = 1 }) end)
    raises("bad argument #1 to 'crm.contacts.get' (string id expected, got nil)", function() c.get() end)
    raises("bad argument #2 to 'crm.contacts.update' (table of fields expected, got string)",
      function() c:update("x", "y") end)
    raises("bad argument #2 to 'crm.accounts.list' (table of options expected, got string)",
      function() client.crm.accounts.list(nil, "x") end)
    raises("crm.lists.get: retry.max_attempts must be a whole number from 1 to 100",
      function() client.crm.lists.get("l", nil, { retry = { max_attempts = 0 } }) end)
    raises("crm.lists.get: unknown retry option 'max_attempt' (did you mean 'max_attempts'?)",
      function() client.crm.lists.get("l", nil, { retry = { max_attempt = 1 } }) end)
    raises(CONTACTS .. "list: option 'timeout' must be a positive number of seconds",
      function() c.list(nil, { timeout = -1 }) end)
    raises(CONTACTS .. "get: option 'account_id' must be a string, got number",
      function() c.get("x", nil, { account_id = 1 }) end)
    assert.equal(0, #server:requests())
  end)

  it("found by the Lua layer name its function: each, _many, refresh", function()
    local a = client.crm.accounts
    raises(ACCOUNTS .. "each: unknown option 'timout' (did you mean 'timeout'?)",
      function() for _ in a.each(nil, { timout = 1 }) do end end)
    raises(ACCOUNTS .. "each: unknown option 'timout' (did you mean 'timeout'?)",
      function() for _ in a:each(nil, { timout = 1 }) do end end)
    raises("bad argument #1 to 'crm.accounts.each' (table of query parameters expected, got string)",
      function() for _ in a.each("x") do end end)
    raises(ACCOUNTS .. "each: it must be called: for record in crm.accounts.each{ ... } do",
      function() for _ in a.each do end end) -- luacheck: ignore 512
    raises("bad argument #1 to 'crm.contacts.create_many' (table expected, got nil)",
      function() client.crm.contacts.create_many() end)
    raises(CONTACTS .. "update_many: option 'concurrency' must be a whole number from 1 to 64",
      function() client.crm.contacts:update_many({}, { concurrency = 0 }) end)
    raises(CONTACTS .. "create_many: option 'on_progress' must be a function",
      function() client.crm.contacts.create_many({}, { on_progress = 1 }) end)
    raises(CONTACTS .. "create_many: unknown option 'concurency' (did you mean 'concurrency'?)",
      function() client.crm.contacts.create_many({}, { concurency = 1 }) end)
    local defs = client.crm.contact_custom_field_definitions
    raises("crm.contact_custom_field_definitions.refresh: unknown option 'timout' (did you mean 'timeout'?)",
      function() defs.refresh{ timout = 1 } end)
    raises("bad argument #1 to 'crm.contact_custom_field_definitions.refresh' (table of options expected, got string)",
      function() defs.refresh("x") end)
    assert.equal(0, #server:requests())
  end)

  it("with custom fields by name, before the definitions are fetched", function()
    local named = { first_name = "Ada", custom_fields = { ["Favourite Colour"] = "red" } }
    raises(CONTACTS .. "create: unknown option 'timout' (did you mean 'timeout'?)",
      function() client.crm.contacts.create(named, { timout = 1 }) end)
    raises(CONTACTS .. "update: unknown option 'retyr' (did you mean 'retry'?)",
      function() client.crm.contacts:update("c1", named, { retyr = false }) end)
    raises(CONTACTS .. "create_many: unknown option 'timout' (did you mean 'timeout'?)",
      function() client.crm.contacts.create_many({ named }, { timout = 1 }) end)
    assert.equal(0, #server:requests())
    -- and the same call without the mistake goes through
    assert(client.crm.contacts.create(named, { timeout = 5 }))
  end)

  it("of the client: stackone.new, closed clients, unknown operations and groups", function()
    raises("stackone.new: unknown option 'api_kye' (did you mean 'api_key'?)",
      function() stackone.new{ api_kye = "k" } end)
    raises("stackone.new: rate_limit.requests must be a whole number from 1 to 1000000",
      function() stackone.new{ api_key = "k", rate_limit = { requests = 0.5 } } end)
    raises("bad argument #1 to 'stackone.new' (table expected, got nil)", function() stackone.new() end)
    raises("bad argument #1 to 'stackone.array' (table expected, got string)", function() stackone.array("x") end)
    raises("bad argument #1 to 'stackone.loop.luv' (the luv module expected (require('luv') or vim.uv), got nil)",
      function() stackone.loop.luv() end)
    raises("crm.contacts has no operation 'delete' (it has: create, create_many, each, get, list, update, update_many)",
      function() return client.crm.contacts.delete end)
    raises("crm has no group 'deals' (it has: accounts, contact_custom_field_definitions, contacts, lists)",
      function() return client.crm.deals end)
    local c = fx.client(server)
    local contacts = c.crm.contacts
    c:close()
    raises(CONTACTS .. "create: attempt to use a closed stackone client",
      function() contacts.create{ first_name = "A" } end)
    raises(ACCOUNTS .. "each: attempt to use a closed stackone client",
      function() for _ in c.crm.accounts.each() do end end)
    local anonymous = assert(stackone.new{ api_key = fx.API_KEY, base_url = server.url })
    raises(CONTACTS .. "create: no account id (pass account_id to stackone.new or in the call's options, "
      .. "or set STACKONE_ACCOUNT_ID)",
      function() anonymous.crm.contacts.create{} end)
    anonymous:close()
    assert.equal(0, #server:requests())
  end)

  -- the core handle's own methods (_start, _io_*, ...) are the Lua
  -- layer's: nothing the user can reach leads to them
  describe("the client object", function()
    local PRIVATE = { "_start", "_call", "_start_many", "_check", "_check_many", "_io_changes", "_io_action",
      "_io_done", "_io_gather", "_on_close", "_target" }

    -- the names of t's members (and its groups', and theirs) that start with one _
    local function private_names(t, path, found)
      found, path = found or {}, path or "client"
      for k, v in pairs(t) do
        local name = path .. "." .. tostring(k)
        if type(k) == "string" and k:match("^_[^_]") then found[#found + 1] = name end
        if type(v) == "table" and #path < 40 then private_names(v, name, found) end
      end
      return found
    end

    -- t[key], or nil when reading it raises (an account view's unknown member)
    local function read(t, key)
      local ok, v = pcall(function() return t[key] end)
      if ok then return v end
    end

    it("shows no private member on the client or an account view", function()
      local view = client:with_account("acc-other")
      for _, t in ipairs({ client, view }) do
        assert.same({}, private_names(t))
        for _, name in ipairs(PRIVATE) do
          assert.is_nil(read(t, name), name)
        end
      end
      assert.equal("locked", getmetatable(client))
      assert.same({}, private_names(getmetatable(view), "getmetatable(view)"))
      assert.equal("function", type(client.close))
      assert.equal("function", type(client.crm.contacts.create))
    end)

    it("calls through crm, and an account view keeps working after its client is dropped", function()
      assert(client.crm.contacts.create{ first_name = "A" })
      local view = fx.client(server):with_account("acc-kept")
      for _ = 1, 3 do collectgarbage() end
      assert(view.crm.contacts.create{ first_name = "B" })
      assert.equal("acc-kept", server:requests()[2].headers["x-account-id"])
    end)
  end)
end)
