-- create_many / update_many on libcurl's multi interface: every record
-- created exactly once or reported, in order, with the single-call rules.
local stackone = require("stackone")
local cjson = require("cjson")
local harness = require("support.harness")
local fx = require("support.fixtures")

local CONTACTS = "/unified/crm/contacts"

describe("bulk", function()
  local server, client

  harness.serve({ client = { sleep = function() end }, fresh_client = true },
    function(s, c) server, client = s, c end)

  local function records(n)
    local out = {}
    for i = 1, n do out[i] = { first_name = "R" .. i, emails = { ("r%d@example.com"):format(i) } } end
    return out
  end

  it("creates every record once, results in the records' order", function()
    local results, summary = client.crm.contacts.create_many(records(40), { concurrency = 8 })
    assert.equal(40, #results)
    for i, r in ipairs(results) do
      assert.equal("R" .. i, r.record.first_name)
      assert.is_nil(r.err)
    end
    assert.same({ ok = 40, failed = 0, attempts = 40 }, { ok = summary.ok, failed = summary.failed,
      attempts = summary.attempts })
    assert.is_number(summary.elapsed)
    local seen, connections = {}, {}
    for _, r in ipairs(server:requests("POST")) do
      local name = cjson.decode(r.body).first_name
      assert.is_nil(seen[name], "sent twice: " .. name)
      seen[name] = true
      connections[r.connection] = true
    end
    local count = 0
    for _ in pairs(connections) do count = count + 1 end
    assert.equal(40, #server:requests("POST"))
    assert.is_true(count > 1 and count <= 8, "connections: " .. count)
  end)

  it("fails invalid records before anything is sent, and sends the rest", function()
    local recs = records(6)
    recs[2] = { frist_name = "typo" }
    recs[4] = "not a table"
    recs[5] = { custom_fields = { ["No Such Field"] = 1 } }
    local first
    local results, summary = client.crm.contacts.create_many(recs, {
      on_progress = function(done, total, failed) first = first or { done, total, failed } end })
    assert.same({ 3, 6, 3 }, first) -- reported before any transfer finished
    assert.equal("invalid", results[2].err.kind)
    assert.matches("did you mean 'first_name'", results[2].err.message)
    assert.equal("invalid", results[4].err.kind)
    assert.matches("No Such Field", results[5].err.message)
    assert.equal("R6", results[6].record.first_name)
    assert.equal(3, summary.ok)
    assert.equal(3, summary.failed)
    assert.equal(3, #server:requests("POST"))
  end)

  it("resolves custom fields by name for each record", function()
    local results = client.crm.contacts.create_many{
      { custom_fields = { ["Training Completion Status"] = "Completed" } },
      { custom_fields = { ["Favourite Colour"] = "red" } },
    }
    assert.equal("value_456", results[1].record.custom_fields[1].value_id)
    assert.equal("red", stackone.custom_field(results[2].record, "Favourite Colour"))
  end)

  it("fetches the definitions once per batch, even when that fails", function()
    server:script("/unified/crm/custom_field_definitions/contacts", { { status = 503, body = "down" } })
    local recs = {}
    for i = 1, 5 do recs[i] = { first_name = "M" .. i, custom_fields = { ["Favourite Colour"] = "red" } } end
    recs[6] = { first_name = "plain" }
    local results, summary = client.crm.contacts.create_many(recs, { retry = false })
    for i = 1, 5 do assert.equal(503, results[i].err.status) end
    assert.equal("plain", results[6].record.first_name)
    assert.equal(1, summary.ok)
    local fetches = 0
    for _, r in ipairs(server:requests()) do
      if r.path:match("custom_field_definitions") then fetches = fetches + 1 end
    end
    assert.equal(1, fetches)
  end)

  it("names itself in option errors", function()
    local ok, msg = pcall(client.crm.contacts.create_many, {}, { acount_id = "x" })
    assert.is_false(ok)
    assert.matches("crm.contacts.create_many: unknown option 'acount_id'", msg, 1, true)
  end)

  it("never retries a POST whose outcome is unknown, and reports it", function()
    server:script(CONTACTS, { { status = 500, json = { statusCode = 500, message = "boom",
      timestamp = "2024-01-01T00:00:00Z" } } })
    local results, summary = client.crm.contacts.create_many(records(5), { concurrency = 1 })
    assert.equal(500, results[1].err.status)
    assert.is_true(results[1].err.maybe_applied)
    assert.equal(4, summary.ok)
    assert.equal(5, summary.attempts)
    assert.equal(5, #server:requests("POST"))
  end)

  it("retries a 429, and pauses the whole batch for its Retry-After", function()
    server:script(CONTACTS, { { status = 429, headers = { ["Retry-After"] = "1" },
      json = { statusCode = 429, message = "slow down", timestamp = "2024-01-01T00:00:00Z" } } })
    local results, summary = client.crm.contacts.create_many(records(6), { concurrency = 1 })
    for i = 1, 6 do assert.equal("R" .. i, results[i].record.first_name) end
    assert.equal(7, summary.attempts)
    local reqs = server:requests("POST")
    assert.equal(7, #reqs)
    -- with one slot, nothing else started during the pause
    assert.is_true(reqs[2].time - reqs[1].time >= 0.9, "paused " .. (reqs[2].time - reqs[1].time))
  end)

  it("lets the sleep function yield while the batch waits, so other coroutines run", function()
    local yields = 0
    local c = fx.client(server, { rate_limit = { requests = 2, per = 0.2 },
      sleep = function(s) yields = yields + 1; coroutine.yield(s) end })
    local bulk = coroutine.create(function() return c.crm.contacts.create_many(records(8), { concurrency = 4 }) end)
    local ticks = 0
    local results, summary
    repeat
      local ok, a, b = coroutine.resume(bulk)
      assert(ok, a)
      if coroutine.status(bulk) == "dead" then
        results, summary = a, b
      else
        ticks = ticks + 1 -- another coroutine's turn, then wait what the batch asked
        require("socket").sleep(a)
      end
    until results
    c:close()
    assert.is_true(yields >= 2 and ticks == yields, yields .. " " .. ticks)
    assert.equal(8, summary.ok)
    for i = 1, 8 do assert.equal("R" .. i, results[i].record.first_name) end
    assert.equal(8, #server:requests("POST"))
  end)

  it("catches errors raised by on_progress and reports them", function()
    local results, summary = client.crm.contacts.create_many(records(4), {
      on_progress = function() error("progress bar broke") end })
    assert.equal(4, summary.ok)
    assert.equal(4, #results)
    assert.matches("progress bar broke", summary.progress_error)
  end)

  it("update_many patches each { id, fields }", function()
    local created = client.crm.contacts.create_many(records(3))
    local changes = {}
    for i, r in ipairs(created) do changes[i] = { id = r.record.id, fields = { last_name = "L" .. i } } end
    changes[4] = { id = "missing", fields = { last_name = "x" } }
    changes[5] = { fields = { last_name = "no id" } }
    local results, summary = client.crm.contacts.update_many(changes)
    for i = 1, 3 do assert.equal("L" .. i, results[i].record.last_name) end
    assert.equal(404, results[4].err.status)
    assert.equal("invalid", results[5].err.kind)
    assert.equal(3, summary.ok)
    assert.equal(2, summary.failed)
  end)

  it("an empty list does nothing", function()
    local results, summary = client.crm.contacts.create_many{}
    assert.same({}, results)
    assert.equal(0, summary.ok)
    assert.equal(0, #server:requests())
  end)

  it("raises for programmer errors", function()
    assert.has_error(function() client.crm.contacts.create_many("x") end)
    assert.has_error(function() client.crm.contacts.create_many({}, { concurrency = 0 }) end)
    assert.has_error(function() client.crm.contacts.create_many({}, { concurency = 2 }) end)
    assert.has_error(function() client.crm.contacts.create_many({}, { on_progress = 1 }) end)
  end)

  it("obeys the client's rate limiter", function()
    local c = fx.client(server, { rate_limit = { requests = 3, per = 1 } })
    local _, summary = c.crm.contacts.create_many(records(6), { concurrency = 6 })
    c:close()
    assert.equal(6, summary.ok)
    local reqs = server:requests("POST")
    table.sort(reqs, function(a, b) return a.time < b.time end)
    local span = reqs[6].time - reqs[1].time
    assert.is_true(span >= 0.6, "span " .. span) -- a burst of 3, then one every 1/3 s
  end)
end)
