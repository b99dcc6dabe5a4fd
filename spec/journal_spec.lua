-- The journal of create_many / update_many (lua/stackone/journal.lua,
-- src/journal.c): exactly once across crashes and reruns, counted on the
-- local server's own journal of what it received.
local stackone = require("stackone")
local core = require("stackone.core")
local cjson = require("cjson")
local server_support = require("support.server")
local harness = require("support.harness")
local process = require("support.process")
local fx = require("support.fixtures")
local shell = require("support.shell")
local journal_child = require("support.journal_child")

local CONTACTS = "/unified/crm/contacts"

local q = shell.quote

local write = shell.write

-- the journal's lines, decoded (a torn last one left out)
local function journal_lines(path)
  local out = {}
  for l in (shell.read(path) or ""):gmatch("([^\n]*)\n") do out[#out + 1] = cjson.decode(l) end
  return out
end

describe("journal", function()
  local server, client, dir

  harness.serve({ args = fx.SERVER_ARGS .. " --latency 0.02", client = { sleep = function() end },
    fresh_client = true }, function(s, c) server, client = s, c end)
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(shell.run("mkdir -p " .. q(dir)))
  end)
  teardown(function()
    shell.run("rm -rf " .. q(dir))
  end)

  local count = 0
  local path
  before_each(function()
    count = count + 1
    path = dir .. "/import-" .. count .. ".journal"
  end)

  -- the contacts the server holds, by e-mail address (or company), and
  -- how many in all
  local function creates()
    local by_email, total = {}, 0
    local reader = fx.client(server)
    for contact in reader.crm.contacts.each{ page_size = 100 } do
      local key = contact.emails and contact.emails[1] or contact.company_name
      by_email[key] = (by_email[key] or 0) + 1
      total = total + 1
    end
    reader:close()
    return by_email, total
  end

  -- the POST requests the server received

  -- on the server, each of the n records once
  local function assert_each_once(n)
    local by_email, total = creates()
    for i = 1, n do
      local email = ("r%d@example.com"):format(i)
      assert.equal(1, by_email[email], email .. " created " .. tostring(by_email[email]) .. " times")
    end
    assert.equal(n, total)
  end

  -- runs journal_child.lua; kill_at: results after which it kills itself
  local function child(n, kill_at, concurrency)
    local p = assert(io.popen(("LUA_PATH=%s LUA_CPATH=%s %s spec/support/journal_child.lua %s %s %s %d %d %d 2>&1; "
      .. "echo EXIT=$?"):format(q("./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;"), q(fx.BUILD .. "/?.so;;"),
      q(fx.LUA), q(server.url), q(fx.API_KEY), q(path), n, kill_at, concurrency or 4)))
    local out = p:read("*a")
    p:close()
    return out, tonumber(out:match("EXIT=(%d+)%s*$"))
  end

  it("records intents before the sends and outcomes after; a rerun sends nothing and skips all", function()
    local records = journal_child.records(6)
    local results, summary = client.crm.contacts.create_many(records, { journal = path })
    assert.equal(6, summary.ok)
    assert.equal(6, summary.sent)
    local lines = journal_lines(path)
    assert.equal(1, lines[1].journal)
    assert.equal("crm.contacts.create_many", lines[1].operation)
    assert.equal(server.url, lines[1].target)
    assert.equal(fx.ACCOUNT, lines[1].account)
    for i = 1, 6 do
      assert.equal(i, lines[1 + i].intent)
      assert.matches("^fnv1a64:%x+$", lines[1 + i].digest)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", lines[1 + i].at)
    end
    local ids = {}
    for k = 8, 13 do ids[lines[k].outcome] = lines[k].id end
    for i = 1, 6 do
      assert.equal(results[i].record.id, ids[i])
    end

    results, summary = client.crm.contacts.create_many(records, { journal = path })
    assert.same({ ok = 6, failed = 0, skipped = 6, reconciled = 0, sent = 0 }, { ok = summary.ok,
      failed = summary.failed, skipped = summary.skipped, reconciled = summary.reconciled, sent = summary.sent })
    for i = 1, 6 do
      assert.same({ record = { id = ids[i] }, skipped = true }, results[i])
    end
    assert_each_once(6)
    assert.equal(6, #server:requests("POST", CONTACTS))
  end)

  it("never holds the API key", function()
    client.crm.contacts.create_many(journal_child.records(3), { journal = path })
    local text = shell.read(path)
    assert.is_nil(text:find(fx.API_KEY, 1, true))
    assert.is_nil(text:find(require("mime").b64(fx.API_KEY .. ":"), 1, true))
    assert.is_nil(text:find("Basic", 1, true))
  end)

  for _, kill_at in ipairs({ 1, 5, 11, 19 }) do
    it("a process killed (SIGKILL) after " .. kill_at .. " results: the rerun creates only what is missing", function()
      local out, code = child(24, kill_at)
      assert.equal(137, code, out) -- 128 + SIGKILL
      assert.is_nil(out:find("DONE", 1, true))
      local _, before = creates()
      assert.is_true(before >= kill_at and before < 24, "created before the rerun: " .. before)
      out, code = child(24, 0)
      assert.equal(0, code, out)
      local ok, skipped, reconciled, sent = out:match("DONE ok=(%d+) skipped=(%d+) reconciled=(%d+) sent=(%d+)")
      assert.equal(24, tonumber(ok), out)
      assert.equal(24, tonumber(skipped) + tonumber(reconciled) + tonumber(sent))
      assert.equal(before, tonumber(skipped) + tonumber(reconciled))
      assert_each_once(24)
    end)
  end

  it("a process killed as soon as its intents are on disk: the rerun creates only what is missing", function()
    server:restart{ args = fx.SERVER_ARGS .. " --latency 0.3" }
    local child_process = process.spawn(("LUA_PATH=%s LUA_CPATH=%s %s spec/support/journal_child.lua %s %s %s 12 0 4")
      :format(q("./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;"), q(fx.BUILD .. "/?.so;;"), q(fx.LUA),
        q(server.url), q(fx.API_KEY), q(path)))
    local socket = require("socket")
    local deadline = socket.gettime() + 10
    while socket.gettime() < deadline do
      local _, intents = (shell.read(path) or ""):gsub('"intent":', "")
      if intents == 12 then break end
      socket.sleep(0.002)
    end
    child_process:stop("KILL")
    local lines = journal_lines(path)
    for _, l in ipairs(lines) do assert.is_nil(l.outcome, "an outcome came before the kill") end
    socket.sleep(0.4) -- what was sent is created
    local _, before = creates()
    local out, code = child(12, 0)
    assert.equal(0, code, out)
    assert.matches("DONE ok=12 skipped=0 reconciled=" .. before, out)
    assert_each_once(12)
    server:restart{ args = fx.SERVER_ARGS .. " --latency 0.02" }
  end)

  it("survives a crash at any byte: every cut of a journal, rerun, leaves each record created once", function()
    local fast = server_support.start{ args = fx.SERVER_ARGS } -- no latency: hundreds of reruns
    local c = fx.client(fast, { sleep = function() end, rate_limit = false }) -- hundreds of calls
    local records = journal_child.records(5)
    c.crm.contacts.create_many(records, { journal = path })
    local text = shell.read(path)
    local intents_end = select(2, text:find('{"intent":5[^\n]*\n'))
    local ok, err = pcall(function()
      for cut = 0, #text - 1 do
        -- a crash before the intents were whole came before any send
        if cut < intents_end then fast:reset() else fast:clear_requests() end
        write(path, text:sub(1, cut))
        local results, summary = c.crm.contacts.create_many(records, { journal = path })
        assert(results, tostring(summary))
        assert.equal(5, summary.ok, "cut at byte " .. cut)
        assert.equal(cut < intents_end and 5 or 0, #fast:requests("POST"), "cut at byte " .. cut)
        -- the torn part is gone: every line of the journal is whole
        local after = shell.read(path)
        for l in after:gmatch("([^\n]*)\n") do assert(pcall(cjson.decode, l), "cut " .. cut .. ": " .. l) end
        assert.equal("\n", after:sub(-1))
      end
    end)
    c:close()
    fast:stop()
    assert(ok, err)
  end)

  it("ignores a torn last line and cuts it off before writing", function()
    local records = journal_child.records(3)
    client.crm.contacts.create_many(records, { journal = path })
    local f = assert(io.open(path, "ab"))
    f:write('{"outcome":2,"res')
    f:close()
    local _, summary = client.crm.contacts.create_many(records, { journal = path })
    assert.equal(3, summary.skipped)
    local text = shell.read(path)
    assert.is_nil(text:find('"res\n', 1, true))
    assert.is_nil(text:find('{"outcome":2,"res{', 1, true))
    assert_each_once(3)
  end)

  it("a create whose answer is lost (the server commits, then drops the connection or answers 500) is "
    .. "reconciled, not sent again; one the server never received is sent", function()
    local records = journal_child.records(4)
    server:script(CONTACTS, { { pass = true, close = "before" }, { pass = true, status = 500,
      json = { statusCode = 500, message = "provider timeout" } }, { status = 503,
      json = { statusCode = 503, message = "unavailable" } } }, "POST")
    local results, summary = client.crm.contacts.create_many(records, { journal = path, concurrency = 1 })
    assert.equal(1, summary.ok)
    for i = 1, 3 do assert.is_true(results[i].err.maybe_applied, tostring(results[i].err)) end
    local lines = journal_lines(path)
    local words = {}
    for _, l in ipairs(lines) do if l.outcome then words[l.outcome] = l.result end end
    assert.same({ "maybe_applied", "maybe_applied", "maybe_applied", "created" }, words)

    results, summary = client.crm.contacts.create_many(records, { journal = path })
    assert.same({ ok = 4, skipped = 1, reconciled = 2, sent = 1 }, { ok = summary.ok, skipped = summary.skipped,
      reconciled = summary.reconciled, sent = summary.sent })
    assert.is_true(results[1].reconciled)
    assert.is_true(results[2].reconciled)
    assert.equal("r1@example.com", results[1].record.emails[1])
    assert.is_nil(results[3].reconciled)
    assert.equal("r3@example.com", results[3].record.emails[1])
    -- the lookup: contacts updated since the intents, minus the margin
    local lookups = 0
    for _, r in ipairs(server:requests()) do
      if r.method == "GET" then
        lookups = lookups + 1
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT", r.query["filter[updated_after]"])
      end
    end
    assert.equal(1, lookups)
    assert_each_once(4)
    assert.equal(5, #server:requests("POST", CONTACTS)) -- four in the first run, and the one never received
    -- and the third run knows them all
    results, summary = client.crm.contacts.create_many(records, { journal = path })
    assert.equal(4, summary.skipped)
    assert.is_true(results[1].skipped)
    assert_each_once(4)
  end)

  it("uses the caller's match; the default cannot look for a record without e-mail or name, and does not "
    .. "send it", function()
    local records = { { company_name = "Acme", phone_numbers = { "+1 555 0100" } },
      { company_name = "Acme", phone_numbers = { "+1 555 0199" } } }
    server:script(CONTACTS, { { pass = true, status = 500 }, { pass = true, status = 500 } }, "POST")
    client.crm.contacts.create_many(records, { journal = path, concurrency = 1 })
    local results, summary = client.crm.contacts.create_many(records, { journal = path })
    assert.equal(2, summary.failed)
    assert.equal("journal", results[1].err.kind)
    assert.equal("UNRECONCILED", results[1].err.code)
    assert.is_true(results[1].err.maybe_applied)
    local calls = 0
    results, summary = client.crm.contacts.create_many(records, { journal = path,
      match = function(record, candidate)
        calls = calls + 1
        return candidate.phone_numbers[1] == record.phone_numbers[1]
      end })
    assert.equal(2, summary.reconciled)
    assert.is_true(calls >= 2)
    assert.equal("+1 555 0199", results[2].record.phone_numbers[1])
    local _, total = creates()
    assert.equal(2, total)
  end)

  it("says when several contacts match a record, and does not send it", function()
    local records = journal_child.records(1)
    server:script(CONTACTS, { { pass = true, status = 500 } }, "POST")
    client.crm.contacts.create_many(records, { journal = path })
    assert(client.crm.contacts.create{ first_name = "Other", emails = { "R1@Example.com " } })
    local results, summary = client.crm.contacts.create_many(records, { journal = path })
    assert.equal(1, summary.failed)
    assert.equal("AMBIGUOUS", results[1].err.code)
    assert.equal(2, #results[1].err.candidates)
    assert.matches("2 contacts match it", tostring(results[1].err))
    local _, total = creates()
    assert.equal(2, total)
  end)

  it("refuses a journal of other records, of another operation or account, or a file that is not a journal; "
    .. "nothing is sent", function()
    client.crm.contacts.create_many(journal_child.records(3), { journal = path })
    local before = shell.read(path)
    local others = journal_child.records(3)
    others[2].first_name = "Changed"
    local results, err = client.crm.contacts.create_many(others, { journal = path })
    assert.is_nil(results)
    assert.equal("journal", err.kind)
    assert.equal("JOURNAL_MISMATCH", err.code)
    assert.matches("belongs to other records: its record 2 was applied", tostring(err))
    results, err = client.crm.contacts.create_many(journal_child.records(2), { journal = path })
    assert.is_nil(results)
    assert.matches("its record 3 was applied, and there are 2 records now", err.message)
    results, err = client.crm.contacts.update_many({ { id = "x", fields = { last_name = "Y" } } }, { journal = path })
    assert.is_nil(results)
    assert.matches("is the journal of crm.contacts.create_many, not of crm.contacts.update_many", err.message)
    assert.equal(before, shell.read(path))

    local elsewhere = fx.client(server, { account_id = "acc-other" })
    results, err = elsewhere.crm.contacts.create_many(journal_child.records(3), { journal = path })
    elsewhere:close()
    assert.is_nil(results)
    assert.matches("is the journal of records sent to http://127.0.0.1:%d+, account acc%-123, not to "
      .. "http://127.0.0.1:%d+, account acc%-other", err.message)
    results, err = client.crm.contacts.create_many(journal_child.records(3), { journal = path,
      account_id = "acc-other" })
    assert.is_nil(results)
    assert.equal("JOURNAL_MISMATCH", err.code)
    assert.equal(before, shell.read(path))

    local csv = dir .. "/contacts.csv"
    write(csv, "first_name,last_name\nAda,Lovelace\n")
    results, err = client.crm.contacts.create_many(journal_child.records(1), { journal = csv })
    assert.is_nil(results)
    assert.equal("JOURNAL_DAMAGED", err.code)
    assert.equal("first_name,last_name\nAda,Lovelace\n", shell.read(csv))
    local _, total = creates()
    assert.equal(3, total)
  end)

  it("a record that failed without being applied is sent again, and may have been edited", function()
    local records = journal_child.records(2)
    server:script(CONTACTS, { { status = 422, json = { statusCode = 422, message = "bad" } } }, "POST")
    local results = client.crm.contacts.create_many(records, { journal = path, concurrency = 1 })
    assert.equal(422, results[1].err.status)
    records[1].last_name = "Fixed"
    local _, summary = client.crm.contacts.create_many(records, { journal = path })
    assert.same({ ok = 2, skipped = 1, sent = 1 }, { ok = summary.ok, skipped = summary.skipped,
      sent = summary.sent })
  end)

  it("cannot open a journal: nil, err and nothing sent; one run at a time holds a journal", function()
    local results, err = client.crm.contacts.create_many(journal_child.records(1),
      { journal = dir .. "/no/such/dir/x.journal" })
    assert.is_nil(results)
    assert.equal("JOURNAL_OPEN", err.code)
    assert.matches("cannot open the journal .*No such file or directory", err.message)
    results, err = client.crm.contacts.create_many(journal_child.records(1), { journal = "/dev/null" })
    assert.is_nil(results)
    assert.matches("is not a regular file", err.message)
    local held = assert(core.journal_open(path))
    results, err = client.crm.contacts.create_many(journal_child.records(1), { journal = path })
    assert.is_nil(results)
    assert.matches("is in use by another run", err.message)
    held:close()
    local _, total = creates()
    assert.equal(0, total)
    assert.truthy(client.crm.contacts.create_many(journal_child.records(1), { journal = path }))
  end)

  -- a tmpfs mounted read-only needs root (CAP_SYS_ADMIN): pending elsewhere
  local can_mount = shell.run("[ \"$(id -u)\" = 0 ] && command -v mount >/dev/null")
  local on_root = can_mount and it or function(name) pending(name .. " (needs root to mount a tmpfs)") end
  on_root("a journal on a disk that became read-only: refused, nothing sent; its records are not lost", function()
    local mnt = dir .. "/ro"
    assert(shell.run("mkdir -p " .. q(mnt) .. " && mount -t tmpfs -o size=1m tmpfs " .. q(mnt)))
    local ok, err = pcall(function()
      local records = journal_child.records(3)
      local jpath = mnt .. "/import.journal"
      server:script(CONTACTS, { { pass = true, status = 500 } }, "POST")
      client.crm.contacts.create_many(records, { journal = jpath, concurrency = 1 })
      local before = shell.read(jpath)
      assert(shell.run("mount -o remount,ro " .. q(mnt)))
      local results, e = client.crm.contacts.create_many(records, { journal = jpath })
      assert.is_nil(results)
      assert.equal("JOURNAL_OPEN", e.code)
      assert.matches("Read%-only file system", e.message)
      local fresh
      fresh, e = client.crm.contacts.create_many(records, { journal = mnt .. "/new.journal" })
      assert.is_nil(fresh)
      assert.matches("Read%-only file system", e.message)
      assert.equal(before, shell.read(jpath))
      assert.equal(3, #server:requests("POST", CONTACTS)) -- the first run's only
      assert(shell.run("mount -o remount,rw " .. q(mnt)))
      local _, summary = client.crm.contacts.create_many(records, { journal = jpath })
      assert.same({ ok = 3, skipped = 2, reconciled = 1 }, { ok = summary.ok, skipped = summary.skipped,
        reconciled = summary.reconciled })
      assert_each_once(3)
    end)
    shell.run("umount " .. q(mnt))
    assert(ok, err)
  end)

  it("update_many: applied changes are skipped, one that may have been applied is sent again", function()
    local a = assert(client.crm.contacts.create{ first_name = "A" })
    local b = assert(client.crm.contacts.create{ first_name = "B" })
    local changes = { { id = a.id, fields = { last_name = "One" } }, { id = b.id, fields = { last_name = "Two" } } }
    server:script(CONTACTS .. "/" .. b.id, { { pass = true, status = 500 }, { pass = true, status = 500 },
      { pass = true, status = 500 }, { pass = true, status = 500 } }, "PATCH")
    local results = client.crm.contacts.update_many(changes, { journal = path, retry = false })
    assert.is_true(results[2].err.maybe_applied)
    local _, summary = client.crm.contacts.update_many(changes, { journal = path })
    assert.same({ ok = 2, skipped = 1, sent = 1 }, { ok = summary.ok, skipped = summary.skipped,
      sent = summary.sent })
  end)

  it("a match function that raises: the error goes on, and the journal is let go", function()
    local records = journal_child.records(1)
    server:script(CONTACTS, { { pass = true, status = 500 } }, "POST")
    client.crm.contacts.create_many(records, { journal = path })
    local ok, err = pcall(client.crm.contacts.create_many, records, { journal = path,
      match = function() error("no way to tell") end })
    assert.is_false(ok)
    assert.matches("no way to tell", tostring(err))
    local held = assert(core.journal_open(path)) -- not locked any more
    held:close()
  end)

  it("an interrupted batch: the error's results are the caller's records; the rerun sends what is missing",
    function()
    local records = journal_child.records(3)
    -- record 1 is known; record 2 gets a 429 whose wait the sleep function refuses
    local c = fx.client(server, { sleep = function() error("stop here") end })
    assert(c.crm.contacts.create_many({ records[1] }, { journal = path }))
    server:script(CONTACTS, { { status = 429, headers = { ["Retry-After"] = "1" },
      json = { statusCode = 429, message = "slow down" } } }, "POST")
    local ok, err = pcall(c.crm.contacts.create_many, records, { journal = path, concurrency = 1 })
    assert.is_false(ok)
    assert.equal("interrupted", err.kind)
    assert.equal(3, #err.results)
    assert.is_true(err.results[1].skipped)
    assert.same({ ok = 1, skipped = 1, sent = 2 }, { ok = err.summary.ok, skipped = err.summary.skipped,
      sent = err.summary.sent })
    assert.equal("interrupted", err.results[2].err.kind)
    c:close()
    local results, summary = client.crm.contacts.create_many(records, { journal = path })
    assert(results, tostring(summary))
    assert.same({ ok = 3, skipped = 1, sent = 2 }, { ok = summary.ok, skipped = summary.skipped,
      sent = summary.sent })
    assert_each_once(3)
  end)

  fx.needs("luv", it, pending)("works from a coroutine on an event loop (luv), reconciling included", function()
    local uv = require("luv")
    local c = fx.client(server, { loop = stackone.loop.luv(uv) })
    local records = journal_child.records(4)
    server:script(CONTACTS, { { pass = true, close = "before" } }, "POST")
    local got = {}
    coroutine.wrap(function()
      -- (5.1's pcall cannot be yielded across: the SDK's own can)
      local ok, err = require("stackone.compat").pcall(function()
        got[1] = select(2, c.crm.contacts.create_many(records, { journal = path, concurrency = 2 }))
        got[2] = select(2, c.crm.contacts.create_many(records, { journal = path }))
      end)
      got.err = not ok and err or nil
      c:close()
    end)()
    uv.run()
    assert.is_nil(got.err)
    assert.equal(3, got[1].ok)
    assert.same({ ok = 4, skipped = 3, reconciled = 1 }, { ok = got[2].ok, skipped = got[2].skipped,
      reconciled = got[2].reconciled })
    assert_each_once(4)
  end)

  it("raises for mistakes in its options at the caller's line", function()
    local records = journal_child.records(1)
    local ok, err = pcall(function() client.crm.contacts.create_many(records, { journal = 5 }) end)
    assert.is_false(ok)
    assert.matches("journal_spec.lua:%d+: crm.contacts.create_many: journal must be the name of a file", err)
    assert.error_matches(function() client.crm.contacts.create_many(records, { match = function() end }) end,
      "crm.contacts.create_many: match needs a journal")
    assert.error_matches(function() client.crm.contacts.create_many(records, { jornal = path }) end,
      "did you mean 'journal'")
    assert.error_matches(function()
      client.crm.contacts.create_many(records, { journal = path, reconcile_margin = -1 })
    end, "reconcile_margin must be a number of seconds >= 0")
  end)

  it("digests records the same way whatever the key order and number representation", function()
    local journal = require("stackone.journal")
    assert.equal(journal.digest{ a = 1, b = { "x", "y" } }, journal.digest{ b = { "x", "y" }, a = 1.0 })
    assert.not_equal(journal.digest{ a = 1 }, journal.digest{ a = 2 })
    assert.not_equal(journal.digest{ a = "1" }, journal.digest{ a = 1 })
    assert.equal("fnv1a64:cbf29ce484222325", core.digest(""))
    assert.equal("fnv1a64:af63dc4c8601ec8c", core.digest("a"))
    assert.equal(journal.digest{ first_name = stackone.null }, journal.digest{ first_name = stackone.null })
  end)
end)
