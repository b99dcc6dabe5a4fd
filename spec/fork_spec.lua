-- A client used in a process made by fork() never shares a connection
-- with its parent: the child starts with fresh connections and writes
-- nothing into the inherited ones; a call in flight at the fork belongs
-- to the parent; the rate limiter and the custom field definitions follow
-- the rules the README gives. Every count is what the servers received.
local cjson = require("cjson")
local socket = require("socket")
local stackone = require("stackone")
local harness = require("support.harness")
local h2 = require("support.h2")
local fx = require("support.fixtures")

local CONTACTS = "/unified/crm/contacts"
local CA = "spec/data/tls/cert.pem"
-- under valgrind (STACKONE_SLOW) the counts are checked, the clock is not
local SLOW = os.getenv("STACKONE_SLOW") ~= nil

-- fork(2) and friends for this Lua: a test-only C module, built here
local lua_name = fx.LUA:match("[^/]+$")
assert(os.execute(("make -s --no-print-directory spec-helpers LUA=%s SPEC_BUILD=%s >/dev/null")
  :format(lua_name, fx.BUILD)), "could not build spec/support/fork.c")
local process = require("support.fork")

-- In the child: runs fn, writes what it returns (or its error) as JSON
-- to `out`, and ends the process at once (no lua_close: the client is
-- never closed unless fn closes it, and busted never goes on here).
local function finish_child(out, fn)
  local ok, result = pcall(fn)
  local f = io.open(out, "w")
  if f then
    f:write(cjson.encode(ok and { result = result } or { error = tostring(result) }))
    f:close()
  end
  process.exit(0)
end

--- runs fn in a child process; returns the child { pid, out }
local function spawn(fn)
  local out = os.tmpname()
  local pid = process.fork()
  if pid == 0 then finish_child(out, fn) end
  return { pid = pid, out = out }
end

--- waits for the child (killed after `seconds`) -> what fn returned
local function join(child, seconds)
  local code = process.wait(child.pid, seconds or 30)
  local text = require("support.shell").read(child.out)
  os.remove(child.out)
  assert.equal(0, code, "the child ended with code " .. code)
  local report = assert(cjson.decode(text or "null"), "the child wrote nothing")
  assert.is_nil(report.error, report.error)
  return report.result
end

local function records(who, n)
  local out = {}
  for i = 1, n do out[i] = { first_name = who, last_name = tostring(i) } end
  return out
end

-- what one process got back: its own records, the other's, failures
local function tally(who, list)
  local t = { own = 0, other = 0, failed = 0, errors = {} }
  for i, r in ipairs(list) do
    if not r.record then
      t.failed = t.failed + 1
      t.errors[#t.errors + 1] = tostring(r.err)
    elseif r.record.first_name == who and r.record.last_name == tostring(i) then
      t.own = t.own + 1
    else
      t.other = t.other + 1
    end
  end
  t.errors = table.concat(t.errors, "; ", 1, math.min(#t.errors, 3))
  return t
end

local function assert_own(n, t)
  assert.same({ own = n, other = 0, failed = 0, errors = "" }, t)
end

local function posts(journal)
  local out = {}
  for _, r in ipairs(journal) do
    if r.method == "POST" then out[#out + 1] = r end
  end
  return out
end

-- the server received each record of both processes exactly once, and
-- no connection carried requests of both
local function assert_journal(journal, each)
  local seen, by_connection = {}, {}
  local list = posts(journal)
  for _, r in ipairs(list) do
    local body = cjson.decode(r.body)
    local key = body.first_name .. "/" .. body.last_name
    assert.is_nil(seen[key], key .. " arrived twice")
    seen[key] = true
    local whose = by_connection[r.connection]
    assert.is_true(whose == nil or whose == body.first_name,
      "connection " .. r.connection .. " carried requests of both processes")
    by_connection[r.connection] = body.first_name
  end
  assert.equal(2 * each, #list)
  return by_connection
end

describe("fork", function()
  local server

  harness.serve({}, function(s) server = s end)

  describe("a client used before the fork (a kept-alive connection)", function()
    local client

    before_each(function()
      client = fx.client(server, { timeout = 15 }) -- a defect fails, not hangs
      assert(client.crm.contacts.list()) -- the connection both processes inherit
      server:clear_requests()
    end)
    after_each(function()
      client:close()
    end)

    it("create_many at concurrency 8 in both at once: each its own 50 records, 100 POSTs", function()
      local child = spawn(function()
        return tally("child", client.crm.contacts.create_many(records("child", 50), { concurrency = 8 }))
      end)
      local mine = tally("parent", client.crm.contacts.create_many(records("parent", 50), { concurrency = 8 }))
      local theirs = join(child)
      assert_own(50, mine)
      assert_own(50, theirs)
      assert_journal(server:requests(), 50)
    end)

    it("50 single creates one after another in both at once: each its own record, 100 POSTs", function()
      local function singles(who)
        local out = {}
        for i = 1, 50 do
          local record, err = client.crm.contacts.create(records(who, i)[i])
          out[i] = { record = record, err = err }
        end
        return tally(who, out)
      end
      local child = spawn(function() return singles("child") end)
      local mine = singles("parent")
      local theirs = join(child)
      assert_own(50, mine)
      assert_own(50, theirs)
      assert_journal(server:requests(), 50)
    end)

    for _, ending in ipairs({ "exits without closing the client", "closes the client" }) do
      it("the child " .. ending .. ": its request goes on a connection of its own, the parent's lives on", function()
        assert(client.crm.contacts.create{ first_name = "parent", last_name = "0" })
        local before = posts(server:requests())[1].connection
        local child = spawn(function()
          local ok = client.crm.contacts.create{ first_name = "child", last_name = "1" } ~= nil
          if ending == "closes the client" then client:close() end
          return ok
        end)
        assert.is_true(join(child))
        assert(client.crm.contacts.create{ first_name = "parent", last_name = "1" })
        local list = posts(server:requests())
        assert.equal(3, #list)
        assert.equal("child", cjson.decode(list[2].body).first_name)
        assert.are_not.equal(before, list[2].connection)
        assert.equal(before, list[3].connection) -- untouched by the child
      end)
    end

    -- a child that used the client forks in turn: the grandchild notices
    -- its fork as the child noticed the first (engine.c's fork watch)
    it("a grandchild, forked after the child used the client, gets a connection of its own", function()
      local child = spawn(function()
        assert(client.crm.contacts.create{ first_name = "child", last_name = "1" })
        local grandchild = spawn(function()
          return client.crm.contacts.create{ first_name = "grandchild", last_name = "1" } ~= nil
        end)
        assert(process.wait(grandchild.pid, 30) == 0, "the grandchild failed")
        local report = cjson.decode(require("support.shell").read(grandchild.out))
        os.remove(grandchild.out)
        assert(report.result == true, tostring(report.error))
        return client.crm.contacts.create{ first_name = "child", last_name = "2" } ~= nil
      end)
      assert.is_true(join(child))
      local list = posts(server:requests())
      local by_name = {}
      for _, post in ipairs(list) do
        local fields = cjson.decode(post.body)
        by_name[fields.first_name .. fields.last_name] = post.connection
      end
      assert.equal(3, #list)
      assert.equal(by_name.child1, by_name.child2) -- the child's connection lives on
      assert.are_not.equal(by_name.child1, by_name.grandchild1)
    end)
  end)

  it("a bulk call in flight at the fork is the parent's: in the child it ends with kind 'forked'", function()
    local client = fx.client(server, { timeout = 10 })
    -- of the first two records, one is answered at once, the other a
    -- second later; the fork comes when the first is done
    server:script(CONTACTS, { { pass = true }, { pass = true, delay = 1 } }, "POST")
    local out, pid = os.tmpname(), nil
    local results = client.crm.contacts.create_many(records("parent", 3), { concurrency = 2,
      on_progress = function(done) if done == 1 and not pid then pid = process.fork() end end })
    if pid == 0 then
      finish_child(out, function()
        local t = { kinds = {}, maybe = {} }
        for i, r in ipairs(results) do
          t.kinds[i] = r.record and "ok" or r.err.kind .. "/" .. r.err.code
          t.maybe[i] = r.err and r.err.maybe_applied or false
        end
        -- the client goes on in the child, on a connection of its own
        local record = client.crm.contacts.create{ first_name = "child", last_name = "1" }
        t.own = record and record.first_name
        return t
      end)
    end
    assert_own(3, tally("parent", results))
    local theirs = join({ pid = pid, out = out })
    table.sort(theirs.kinds)
    assert.same({ "forked/FORKED", "forked/FORKED", "ok" }, theirs.kinds)
    table.sort(theirs.maybe, function(a, b) return not a and b end)
    assert.same({ false, false, true }, theirs.maybe) -- the record on the wire may be applied (by the parent)
    assert.equal("child", theirs.own)
    assert.equal(4, #posts(server:requests())) -- the parent's 3 and the child's own one, none twice
    client:close()
  end)

  fx.needs("luv", it, pending)("the rate limiter: a place the parent's unsent request holds counts as a send "
    .. "in the child", function()
    local uv = require("luv")
    local limit = { requests = 1, per = 1 }
    local looped = fx.client(server, { loop = stackone.loop.luv(uv), rate_limit = limit })
    local blocking = fx.client(server, { rate_limit = limit }) -- the same limiter
    finally(function() looped:close(); blocking:close() end)
    local record
    coroutine.wrap(function() record = looped.crm.contacts.create{ first_name = "parent", last_name = "1" } end)()
    -- the loop has not run: the parent's request holds the one place, unsent
    local child = spawn(function()
      local start = socket.gettime()
      local created = blocking.crm.contacts.create{ first_name = "child", last_name = "1" }
      return { own = created and created.first_name, waited = socket.gettime() - start }
    end)
    uv.run()
    local theirs = join(child, 20)
    assert.equal("parent", record and record.first_name)
    assert.equal("child", theirs.own)
    assert.is_true(theirs.waited > 0.9 and (SLOW or theirs.waited < 5), "waited " .. theirs.waited)
    assert.equal(2, #posts(server:requests()))
  end)

  fx.needs("luv", it, pending)("a loop client with a request on the wire: the child closing it leaves the "
    .. "parent's loop alone", function()
    local uv = require("luv")
    local looped = fx.client(server, { loop = stackone.loop.luv(uv), timeout = 5 })
    finally(function() looped:close() end)
    server:script(CONTACTS, { { pass = true, delay = 1 } }, "POST")
    local record, err
    coroutine.wrap(function() record, err = looped.crm.contacts.create{ first_name = "parent", last_name = "1" } end)()
    -- the loop runs until the request waits on the server, and a few turns
    -- more: libuv registers the socket's new watch with epoll on its next turn
    local ticker, turns = uv.new_timer(), 0
    ticker:start(20, 20, function()
      if turns > 0 or #posts(server:requests()) == 1 then turns = turns + 1 end
      if turns == 3 then uv.stop() end
    end)
    uv.run()
    ticker:stop()
    ticker:close()
    local child = spawn(function() looped:close(); return true end)
    assert.is_true(join(child))
    uv.run()
    assert.equal("parent", record and record.first_name, tostring(err))
    assert.equal(1, #posts(server:requests()))
  end)

  it("custom field definitions read before the fork are the child's too: it asks for none", function()
    local client = fx.client(server)
    local fields = { custom_fields = { ["Employee Count"] = 12, ["Favourite Colour"] = "red" } }
    assert(client.crm.contacts.create(fields))
    server:clear_requests()
    local child = spawn(function()
      return client.crm.contacts.create(fields) ~= nil
    end)
    assert.is_true(join(child))
    local journal = server:requests()
    assert.equal(1, #journal)
    assert.equal("POST", journal[1].method)
    assert.equal(2, #cjson.decode(journal[1].body).custom_fields)
    client:close()
  end)

  describe("over HTTPS and HTTP/2", function()
    local tls

    harness.serve({ start = h2.start, reset = false }, function(s) tls = s end)

    for _, ending in ipairs({ "exits without closing the client", "closes the client" }) do
      it("the child " .. ending .. ": nothing reaches the parent's TLS connection, which lives on", function()
        tls:clear()
        local client = assert(stackone.new{ api_key = fx.API_KEY, account_id = fx.ACCOUNT, base_url = tls.url,
          ca_file = CA, timeout = 15 })
        assert(client.crm.contacts.create{ first_name = "parent", last_name = "0" })
        local child = spawn(function()
          local mine = client.crm.contacts.create_many(records("child", 10), { concurrency = 4 })
          if ending == "closes the client" then client:close() end
          return tally("child", mine)
        end)
        local mine = tally("parent", client.crm.contacts.create_many(records("parent", 10), { concurrency = 4 }))
        local theirs = join(child)
        assert_own(10, mine)
        assert_own(10, theirs)
        local journal = posts(tls:requests())
        assert.equal("2.0", journal[1].http)
        local first = journal[1].connection
        table.remove(journal, 1)
        local by_connection = assert_journal(journal, 10)
        assert.is_true(by_connection[first] == nil or by_connection[first] == "parent")
        -- the parent's first connection still carries its requests
        assert(client.crm.contacts.create{ first_name = "parent", last_name = "11" })
        local last = posts(tls:requests())
        assert.equal(first, last[#last].connection)
        client:close()
      end)
    end
  end)
end)
