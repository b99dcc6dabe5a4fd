-- Account views and fan-out against the local server: client:with_account,
-- client:run_all and client:for_each_account, blocking and under luv. The
-- server answers every CRM request 0.2 s late, so overlapping calls show
-- in the wall time.
local stackone = require("stackone")
local harness = require("support.harness")
local fx = require("support.fixtures")
local socket = require("socket")

local LATENCY = 0.2

describe("account views and fan-out", function()
  local server, client

  harness.serve({ args = fx.SERVER_ARGS .. " --latency " .. LATENCY, fresh_client = true,
    client = function(s) return assert(stackone.new{ api_key = fx.API_KEY, base_url = s.url }) end },
    function(s, c) server, client = s, c end)

  local function crm_requests()
    local out = {}
    for _, r in ipairs(server:requests()) do
      if r.path:find("^/unified/") then out[#out + 1] = r end
    end
    return out
  end

  -- the work of one account: a contact named after it, then a page of
  -- its companies (two calls one after the other: 2 x LATENCY)
  local function work(account, view)
    local contact = assert(view.crm.contacts.create{ first_name = account.id })
    assert(view.crm.accounts.list{ page_size = 2 })
    if account.id == "linked-05" then error("no luck in " .. account.id, 0) end
    return contact.first_name
  end

  -- what the results and the server say of a run of `work` over the 12
  -- active accounts
  local function check_run(results, summary, elapsed)
    assert.equal(12, #results)
    assert.equal(11, summary.ok)
    assert.equal(1, summary.failed)
    for i, r in ipairs(results) do
      assert.equal(("linked-%02d"):format(i), r.account.id)
      if r.account.id == "linked-05" then
        assert.equal("no luck in linked-05", r.err)
        assert.is_nil(r.value)
      else
        assert.equal(r.account.id, r.value)
        assert.is_nil(r.err)
      end
    end
    -- 12 accounts, 4 at a time, 2 calls each: 3 x 2 x LATENCY at best
    local ideal = 12 / 4 * 2 * LATENCY
    assert.is_true(elapsed >= ideal * 0.95, "elapsed " .. elapsed)
    if not os.getenv("STACKONE_SLOW") then -- (under valgrind the counts are checked, not the clock)
      assert.is_true(elapsed <= ideal * 1.3, ("elapsed %.3f s, ideal %.3f s"):format(elapsed, ideal))
    end
    -- every CRM request carried its own account's id: each contact was
    -- created under the account it is named after
    local per_account = {}
    local requests = crm_requests()
    assert.equal(24, #requests)
    for _, r in ipairs(requests) do
      local id = r.headers["x-account-id"]
      assert.is_string(id)
      per_account[id] = (per_account[id] or 0) + 1
      if r.method == "POST" then assert.equal('{"first_name":"' .. id .. '"}', r.body) end
    end
    for i = 1, 12 do assert.equal(2, per_account[("linked-%02d"):format(i)]) end
  end

  it("for_each_account: 12 accounts at concurrency 4 overlap, one error reported, each its own account", function()
    local progress = {}
    local started = socket.gettime()
    local results, summary = client:for_each_account({ status = "active" }, work, {
      on_progress = function(done, total, failed) progress[#progress + 1] = { done, total, failed } end,
    })
    local elapsed = socket.gettime() - started
    check_run(results, summary, elapsed)
    assert.equal(12, #progress)
    assert.same({ 12, 12, 1 }, progress[12])
    assert.is_true(summary.elapsed > 0 and summary.elapsed <= elapsed)
  end)

  fx.needs("luv", it, pending)("for_each_account under luv: the same, yielding to the loop", function()
    local uv = require("luv")
    local looped = assert(stackone.new{ api_key = fx.API_KEY, base_url = server.url, loop = stackone.loop.luv(uv) })
    local results, summary, elapsed
    coroutine.wrap(function()
      local started = socket.gettime()
      results, summary = looped:for_each_account({ status = "active" }, work)
      elapsed = socket.gettime() - started
    end)()
    uv.run()
    looped:close()
    check_run(results, summary, elapsed)
  end)

  it("concurrency 1 runs one account at a time", function()
    local live, most = 0, 0
    local results = client:for_each_account({ providers = "hubspot", status = "active" }, function(_, view)
      live = live + 1
      most = math.max(most, live)
      assert(view.crm.lists.list())
      live = live - 1
    end, { concurrency = 1 })
    assert.equal(4, #results)
    assert.equal(1, most)
  end)

  it("a listing that fails is nil, err; nothing else is sent", function()
    server:script("/accounts", { { status = 403, json = { statusCode = 403, message = "no", timestamp = "x" } } })
    local results, err = client:for_each_account(nil, function() error("not called") end)
    assert.is_nil(results)
    assert.equal(403, err.status)
    assert.same({}, crm_requests())
  end)

  it("run_all: any functions at once, results in order, a nil, err return is an error", function()
    local view = client:with_account("linked-02")
    local started = socket.gettime()
    local results, summary = client:run_all({
      function() return assert(view.crm.lists.list()).data[1].name end,
      function() return nil, "declined" end,
      function() return assert(client.crm.contacts.list(nil, { account_id = "linked-03" })) and "ok" end,
      function() return 42 end,
    })
    local elapsed = socket.gettime() - started
    assert.equal("Newsletter subscribers", results[1].value)
    assert.equal("declined", results[2].err)
    assert.equal("ok", results[3].value)
    assert.equal(42, results[4].value)
    assert.equal(3, summary.ok)
    assert.equal(1, summary.failed)
    if not os.getenv("STACKONE_SLOW") then
      assert.is_true(elapsed < 2 * LATENCY, "elapsed " .. elapsed) -- the two requests overlapped
    end
  end)

  it("with_account: its CRM calls send the account, the call's own account_id wins, the platform's send none",
    function()
      local view = client:with_account("linked-07")
      assert.equal("linked-07", view.account_id)
      assert.equal(view, client:with_account("linked-07"))
      assert(view.crm.contacts.create{ first_name = "Ada" })
      assert(view.crm.contacts:list{ page_size = 1 })
      assert(view.crm.contacts.list({ page_size = 1 }, { account_id = "linked-08" }))
      local n = 0
      for _ in view.crm.lists.each{ page_size = 1 } do n = n + 1 end
      assert.equal(3, n)
      assert(view.accounts.get("linked-07"))
      local sent = {}
      for _, r in ipairs(server:requests()) do sent[#sent + 1] = r.headers["x-account-id"] or "none" end
      assert.same({ "linked-07", "linked-07", "linked-08", "linked-07", "linked-07", "linked-07", "none" }, sent)
      -- the client itself still has no account
      assert.has_error(function() client.crm.contacts.list() end)
    end)

  it("with_account: custom field definitions by name are read once per account, shared with the client", function()
    local a, b = client:with_account("linked-01"), client:with_account("linked-02")
    local function definition_reads()
      local n = 0
      for _, r in ipairs(server:requests()) do
        if r.path:find("custom_field_definitions", 1, true) then n = n + 1 end
      end
      return n
    end
    for _ = 1, 2 do
      assert(a.crm.contacts.create{ custom_fields = { ["Favourite Colour"] = "blue" } })
      assert(b.crm.contacts.create{ custom_fields = { ["Favourite Colour"] = "red" } })
    end
    assert.equal(2, definition_reads())
    assert(client.crm.contacts.create({ custom_fields = { ["Favourite Colour"] = "green" } },
      { account_id = "linked-01" }))
    assert.equal(2, definition_reads()) -- the client's cache is the views'
  end)

  it("programmer errors raise at the caller's line", function()
    local line = debug.getinfo(1, "l").currentline
    local ok, err = pcall(function() client:for_each_account(nil, "work") end) -- line + 1
    assert.is_false(ok)
    assert.matches(":" .. (line + 1) .. ": bad argument #2 to 'client.for_each_account' %(function expected, got "
      .. "string%)", err)
    assert.has_error(function() client:for_each_account(nil, work, { concurrency = 0 }) end,
      "client.for_each_account: concurrency must be a whole number from 1 to 64")
    assert.has_error(function() client:run_all({ 1 }) end,
      "client.run_all: fns[1] is a number, not a function")
    assert.has_error(function() client.with_account("linked-01") end,
      "client.with_account: call it with a colon, on the client or an account view")
    assert.has_error(function() client:with_account(7) end,
      "bad argument #1 to 'client.with_account' (string id expected, got number)")
    local view = client:with_account("linked-01")
    assert.has_error(function() return view.close end,
      "an account view has no 'close' (close or configure the client itself)")
    assert.has_error(function() view.crm.contacts.list(nil, { timout = 1 }) end,
      "crm.contacts.list: unknown option 'timout' (did you mean 'timeout'?)")
  end)
end)
