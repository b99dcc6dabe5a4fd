-- Retries, Retry-After, backoff and the rate limiter: never lose or
-- duplicate a contact. Every count is what the local server received.
local harness = require("support.harness")
local fx = require("support.fixtures")

local CONTACTS = "/unified/crm/contacts"

-- one local server for every group; each test starts from a reset one
describe("reliability", function()
  local server

  harness.serve({}, function(s) server = s end)

  describe("retries", function()
    local client, sleeps

    -- a sleep function that really sleeps: each wait asks it once
    local function sleeper(s)
      sleeps[#sleeps + 1] = s
      require("socket").sleep(s)
    end

    before_each(function()
      sleeps = {}
      client = fx.client(server, { sleep = sleeper })
    end)
    after_each(function()
      client:close()
    end)


    local function envelope(status, message)
      return { statusCode = status, message = message, timestamp = "2024-01-01T00:00:00.000Z" }
    end

    it("retries 429 on POST, honouring Retry-After in seconds", function()
      server:script(CONTACTS, { { status = 429, headers = { ["Retry-After"] = "1" },
        json = envelope(429, "Too many requests") }, { pass = true } })
      local contact, res = client.crm.contacts.create(fx.contact())
      assert.is_string(contact.id)
      assert.equal(2, res.attempts)
      assert.equal(1, #sleeps)
      assert.near(1, sleeps[1], 0.01)
      assert.equal(2, #server:requests("POST"))
    end)

    it("honours Retry-After as an HTTP-date", function()
      local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2)
      server:script(CONTACTS, { { status = 429, headers = { ["Retry-After"] = when }, json = envelope(429, "x") },
        { pass = true } })
      local contact = client.crm.contacts.create(fx.contact())
      assert.is_string(contact.id)
      assert.equal(1, #sleeps)
      assert.is_true(sleeps[1] >= 0.9 and sleeps[1] <= 2.1, tostring(sleeps[1]))
    end)

    it("fails at once when Retry-After asks for longer than max_delay", function()
      server:script(CONTACTS, { { status = 429, headers = { ["Retry-After"] = "3600" }, json = envelope(429, "x") } })
      local contact, err = client.crm.contacts.create(fx.contact())
      assert.is_nil(contact)
      assert.equal(429, err.status)
      assert.equal(3600, err.retry_after)
      assert.equal(1, err.attempts)
      assert.is_false(err.maybe_applied)
      assert.same({}, sleeps)
    end)

    for _, status in ipairs{ 408, 500, 502, 503, 504 } do
      it("retries GET on " .. status, function()
        local created = assert(client.crm.contacts.create{ first_name = "A" })
        server:script(CONTACTS .. "/" .. created.id, { { status = status, json = envelope(status, "x") },
          { pass = true } })
        local got, res = client.crm.contacts.get(created.id)
        assert.equal("A", got.first_name)
        assert.equal(2, res.attempts)
        assert.equal(2, #server:requests("GET"))
      end)

      it("does not retry POST on " .. status .. ": the outcome is unknown", function()
        server:script(CONTACTS, { { status = status, json = envelope(status, "x") }, { pass = true } })
        local contact, err = client.crm.contacts.create(fx.contact())
        assert.is_nil(contact)
        assert.equal(status, err.status)
        assert.is_true(err.maybe_applied)
        assert.equal(1, err.attempts)
        assert.equal(1, #server:requests("POST"))
      end)
    end

    it("retries PATCH on 503 with the same body", function()
      local created = assert(client.crm.contacts.create{ first_name = "A" })
      server:script(CONTACTS .. "/" .. created.id, { { status = 503, json = envelope(503, "x") }, { pass = true } },
        "PATCH")
      local updated, res = client.crm.contacts.update(created.id, { last_name = "B" })
      assert.equal("B", updated.last_name)
      assert.equal(2, res.attempts)
      local patches = {}
      for _, r in ipairs(server:requests()) do
        if r.method == "PATCH" then patches[#patches + 1] = r.body end
      end
      assert.equal(2, #patches)
      assert.equal(patches[1], patches[2])
    end)

    it("does not retry a POST whose connection dropped mid-response", function()
      server:script(CONTACTS, { { status = 200, json = { data = { id = "x" } }, close = "mid_body" } })
      local contact, err = client.crm.contacts.create(fx.contact())
      assert.is_nil(contact)
      assert.equal("network", err.kind)
      assert.is_true(err.maybe_applied)
      assert.equal(1, #server:requests("POST"))
    end)

    it("retries a GET whose connection dropped, before or mid-response", function()
      server:script("/unified/crm/accounts", { { close = "before" }, { status = 200, json = { data = {} },
        close = "mid_body" }, { pass = true } })
      local page, res = client.crm.accounts.list()
      assert.is_table(page.data)
      assert.equal(3, res.attempts)
    end)

    it("does not retry a POST that timed out after sending", function()
      server:script(CONTACTS, { { delay = 2, status = 200, json = { data = { id = "late" } } } })
      local contact, err = client.crm.contacts.create(fx.contact(), { timeout = 0.3 })
      assert.is_nil(contact)
      assert.equal("timeout", err.kind)
      assert.is_true(err.maybe_applied)
      assert.equal(1, err.attempts)
    end)

    it("retries a POST that may have been applied when the caller opts in", function()
      server:script(CONTACTS, { { status = 500, json = envelope(500, "x") }, { pass = true } })
      local contact, res = client.crm.contacts.create(fx.contact(), { retry = { maybe_applied = true } })
      assert.is_string(contact.id)
      assert.equal(2, res.attempts)
    end)

    it("retries a POST that never reached the server, with capped exponential backoff", function()
      local c = fx.client(server, { base_url = "http://127.0.0.1:" .. fx.closed_port(), sleep = sleeper,
        retry = { max_attempts = 5, base_delay = 0.1, factor = 2, max_delay = 0.3 } })
      local contact, err = c.crm.contacts.create(fx.contact())
      c:close()
      assert.is_nil(contact)
      assert.equal("COULDNT_CONNECT", err.code)
      assert.is_false(err.maybe_applied)
      assert.equal(0, err.attempts) -- five tries (four waits), no request sent
      assert.equal(4, #sleeps)
      for i, s in ipairs(sleeps) do
        assert.is_true(s >= 0 and s <= math.min(0.3, 0.1 * 2 ^ (i - 1)), ("sleep %d was %g"):format(i, s))
      end
    end)

    it("stops when the waits would pass max_wait", function()
      local steps = {}
      for i = 1, 4 do steps[i] = { status = 503, headers = { ["Retry-After"] = "1" }, json = envelope(503, "x") } end
      server:script("/unified/crm/accounts", steps)
      local page, err = client.crm.accounts.list(nil, { retry = { max_wait = 1.5 } })
      assert.is_nil(page)
      assert.equal(2, err.attempts)
      assert.equal(1, #sleeps)
      assert.near(1, sleeps[1], 0.01)
      server:reset() -- drops the steps still queued
    end)

    it("retry = false makes one attempt; max_attempts bounds them", function()
      server:script("/unified/crm/accounts", { { status = 503, json = envelope(503, "x") }, { pass = true } })
      local _, err = client.crm.accounts.list(nil, { retry = false })
      assert.equal(1, err.attempts)
      server:reset()
      local steps = {}
      for i = 1, 3 do steps[i] = { status = 502, json = envelope(502, "x") } end
      server:script("/unified/crm/accounts", steps)
      _, err = client.crm.accounts.list(nil, { retry = { max_attempts = 3 } })
      assert.equal(3, err.attempts)
      assert.equal(3, #server:requests("GET"))
    end)

    it("never retries 4xx other than 408 and 429", function()
      server:script("/unified/crm/accounts", { { status = 400, json = envelope(400, "bad") }, { pass = true } })
      local _, err = client.crm.accounts.list()
      assert.equal(400, err.status)
      assert.equal(1, err.attempts)
      assert.is_false(err.maybe_applied)
    end)

    it("an error raised by the sleep function reaches the caller, and the client still works", function()
      local c = fx.client(server, { sleep = function() error("host cancelled") end })
      server:script(CONTACTS, { { status = 429, headers = { ["Retry-After"] = "1" }, json = envelope(429, "x") } })
      local ok, msg = pcall(c.crm.contacts.create, fx.contact())
      assert.is_false(ok)
      assert.matches("host cancelled", msg)
      assert.is_string(assert(c.crm.contacts.create(fx.contact())).id)
      c:close()
    end)

    it("rejects unknown retry options", function()
      assert.has_error(function() fx.client(server, { retry = { max_attempt = 2 } }) end)
      assert.has_error(function() client.crm.accounts.list(nil, { retry = { max_attempts = 0 } }) end)
    end)
  end)

  describe("rate limiter", function()
    it("paces requests on the server's clock, shared by clients of one key", function()
      local limit = { requests = 4, per = 1 }
      local a = fx.client(server, { rate_limit = limit })
      local b = fx.client(server, { rate_limit = limit })
      server:reset()
      for i = 1, 6 do
        assert((i % 2 == 0 and a or b).crm.accounts.list())
      end
      a:close()
      b:close()
      local reqs = server:requests()
      assert.equal(6, #reqs)
      -- a burst of 4, then one every 0.25 s: the sixth comes about 0.5 s in
      local span = reqs[6].time - reqs[1].time
      assert.is_true(span >= 0.35 and span < 3, "span " .. span)
      assert.is_true(reqs[4].time - reqs[1].time < 0.3)
    end)

    it("can be turned off", function()
      local c = fx.client(server, { rate_limit = false })
      server:reset()
      for _ = 1, 5 do assert(c.crm.accounts.list()) end
      c:close()
      assert.equal(5, #server:requests())
    end)

    it("lets the sleep function yield, so calls in coroutines share a client", function()
      local yields = 0
      local c = fx.client(server, { rate_limit = { requests = 1, per = 0.05 },
        sleep = function(s) yields = yields + 1; coroutine.yield(s) end })
      server:reset()
      local names = {}
      local cos = {}
      for i = 1, 2 do
        cos[i] = coroutine.create(function()
          for j = 1, 3 do
            local contact = assert(c.crm.contacts.create{ first_name = ("co%d-%d"):format(i, j) })
            names[#names + 1] = contact.first_name
          end
        end)
      end
      repeat -- a tiny scheduler: resume each coroutine in turn, wait what it asked
        local alive = false
        for _, co in ipairs(cos) do
          if coroutine.status(co) ~= "dead" then
            alive = true
            local ok, wait = coroutine.resume(co)
            assert(ok, wait)
            if wait then require("socket").sleep(wait) end
          end
        end
      until not alive
      c:close()
      assert.is_true(yields >= 4, "yields " .. yields)
      assert.equal(6, #names)
      assert.equal(6, #server:requests())
      assert.is_nil(table.concat(names, " "):find("co1%-1 co1%-2 co1%-3 co2")) -- interleaved
    end)

    it("a call whose client is closed while its sleep function yields ends with kind closed", function()
      local c = fx.client(server, { rate_limit = { requests = 1, per = 20 }, sleep = function() coroutine.yield() end })
      assert(c.crm.accounts.list())
      local co = coroutine.create(function() return c.crm.accounts.list() end)
      assert.is_true(coroutine.resume(co)) -- waits for the limiter: yields
      c:close()
      local ok, page, err = coroutine.resume(co)
      assert.is_true(ok)
      assert.is_nil(page)
      assert.equal("closed", err.kind)
      assert.is_false(err.maybe_applied) -- never sent
      assert.equal(1, #server:requests())
    end)

    it("a sleep function that returns at once is asked a bounded number of times; the wait still lasts", function()
      local calls = 0
      local c = fx.client(server, { rate_limit = { requests = 1, per = 0.5 },
        sleep = function() calls = calls + 1 end })
      local t0 = require("socket").gettime()
      assert(c.crm.accounts.list())
      assert(c.crm.accounts.list())
      c:close()
      local reqs = server:requests()
      assert.is_true(calls >= 1 and calls <= fx.EARLY_SLEEPS, "calls " .. calls)
      assert.is_true(require("socket").gettime() - t0 >= 0.5)
      assert.is_true(reqs[2].time - reqs[1].time >= 0.5, "gap " .. (reqs[2].time - reqs[1].time))
    end)
  end)

  describe("debug output", function()
    it("shows each attempt's headers with Authorization redacted", function()
      local lines = {}
      local c = fx.client(server, { debug = function(text) lines[#lines + 1] = text end })
      assert(c.crm.contacts.create(fx.contact()))
      c:close()
      assert.equal(1, #lines)
      assert.matches("> POST /unified/crm/contacts HTTP/1.1", lines[1], 1, true)
      assert.matches("> Authorization: [REDACTED]", lines[1], 1, true)
      assert.matches("< HTTP/1.1 200", lines[1], 1, true)
      assert.is_nil(lines[1]:find(fx.API_KEY, 1, true))
      assert.is_nil(lines[1]:find(require("mime").b64(fx.API_KEY .. ":"), 1, true))
    end)

    it("an error raised by the debug function never hides the outcome", function()
      local c = fx.client(server, { debug = function() error("debug broke") end })
      local contact, res = c.crm.contacts.create(fx.contact())
      assert.is_string(contact.id) -- created: the caller must know
      assert.matches("debug broke", res.debug_error)
      local _, err = c.crm.contacts.get("missing")
      assert.equal(404, err.status)
      assert.matches("debug broke", err.debug_error)
      c:close()
    end)

    it("the debug function may use the client itself", function()
      local c, inside
      local nested = {}
      c = fx.client(server, { debug = function()
        -- the nested call's own trace comes here too: once is enough
        if inside then return end
        inside = true
        nested[#nested + 1] = assert(c.crm.lists.list())
      end })
      local page = assert(c.crm.accounts.list())
      c:close()
      assert.equal(1, #nested)
      assert.matches("^3f1e2c4a", page.data[1].id) -- accounts, not the nested call's lists
      assert.matches("^7a9c3d2e", nested[1].data[1].id)
    end)

    it("create_many hands each transfer's trace to the debug function", function()
      local traces = 0
      local c = fx.client(server, { debug = function(text)
        traces = traces + 1
        assert(text:find("Authorization: [REDACTED]", 1, true))
        if traces == 2 then error("second trace") end
      end })
      local _, summary = c.crm.contacts.create_many{ { first_name = "A" }, { first_name = "B" }, { first_name = "C" } }
      c:close()
      assert.equal(3, traces)
      assert.equal(3, summary.ok)
      assert.matches("second trace", summary.debug_error)
    end)
  end)

  describe("limits", function()
    it("a response over max_response_bytes fails with kind too_large, not retried", function()
      local c = fx.client(server, { max_response_bytes = 4096 })
      server:script("/unified/crm/accounts", { { huge = 100000 } })
      local page, err = c.crm.accounts.list()
      c:close()
      assert.is_nil(page)
      assert.equal("too_large", err.kind)
      assert.equal("TOO_LARGE", err.code)
      assert.equal(1, err.attempts)
    end)

    it("a connection that never comes up times out, and a POST is retried: it was never sent", function()
      local socket = require("socket")
      local listener = socket.tcp()
      assert(listener:bind("127.0.0.1", 0))
      assert(listener:listen(0)) -- never accepts: once the queue is full, connects hang
      local _, port = listener:getsockname()
      local fillers = {}
      for i = 1, 4 do
        fillers[i] = socket.tcp()
        fillers[i]:settimeout(0)
        fillers[i]:connect("127.0.0.1", port)
      end
      socket.sleep(0.05)
      local sleeps = {}
      local c = fx.client(server, { base_url = "http://127.0.0.1:" .. port, connect_timeout = 0.2,
        retry = { max_attempts = 2 }, sleep = function(s) sleeps[#sleeps + 1] = s; socket.sleep(s) end })
      local contact, err = c.crm.contacts.create(fx.contact())
      c:close()
      for _, f in ipairs(fillers) do f:close() end
      listener:close()
      assert.is_nil(contact)
      assert.equal("timeout", err.kind)
      assert.equal("OPERATION_TIMEDOUT", err.code)
      assert.is_false(err.maybe_applied)
      assert.equal(0, err.attempts) -- two tries (one wait), no request sent
      assert.equal(1, #sleeps)
    end)

    it("a response that stalls mid-body times out", function()
      local c = fx.client(server, { timeout = 0.5, retry = false })
      server:script("/unified/crm/accounts", { { status = 200, json = { data = { { id = "x" } } }, body_delay = 3 } })
      local page, err = c.crm.accounts.list()
      c:close()
      assert.is_nil(page)
      assert.equal("timeout", err.kind)
    end)

    it("a truncated body is a network error", function()
      local c = fx.client(server, { retry = false })
      server:script("/unified/crm/accounts", { { status = 200, json = { data = { { id = "x" } } }, truncate = 5 } })
      local _, err = c.crm.accounts.list()
      c:close()
      assert.equal("network", err.kind)
      assert.equal("PARTIAL_FILE", err.code)
    end)
  end)
end)
