-- A rate budget shared by processes (rate_limit.shared, stackone.limit):
-- worker processes of the suite's own Lua create contacts on one key
-- against the local server, which enforces 20 requests a second and
-- answers 429 beyond; the budget goes through a real Redis
-- (redis-server on a loopback port) or a file of this machine. Counted
-- from the server's journal. Also: the store going away mid-run, a
-- shared Retry-After pause, the API key absent from the store, stores
-- that fail in every way, and places given back.
local socket = require("socket")
local stackone = require("stackone")
local core = require("stackone.core")
local server_support = require("support.server")
local harness = require("support.harness")
local redis_support = require("support.redis")
local fx = require("support.fixtures")
local shell = require("support.shell")

local PER_SECOND = 20

-- a fresh directory for the host store's files
local function temp_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(shell.run("mkdir -p " .. dir))
  return dir
end

-- starts n workers (spec/support/budget_worker.lua) in the background;
-- wait() -> their reports { ok =, failed =, limit_errors =,
-- debug_reports =, ids = {...}, stderr = }
local function start_workers(n, opts)
  local outs, cmds = {}, {}
  for i = 1, n do
    outs[i] = os.tmpname()
    cmds[i] = ("STACKONE_BUILD=%s STACKONE_API_KEY=%s %s spec/support/budget_worker.lua %s %s %d %s %s %s "
      .. "> %s.log 2>&1 &"):format(fx.BUILD, fx.API_KEY, fx.LUA, opts.url, opts.store, opts.count, outs[i],
      tostring(opts.redis_port or 0), opts.dir or "/tmp", outs[i])
  end
  assert(shell.run(table.concat(cmds, " ")))
  local workers = {}
  function workers.wait()
    local reports, deadline = {}, socket.gettime() + 120
    for i = 1, n do
      local text = shell.read(outs[i])
      while (not text or text == "") and socket.gettime() < deadline do
        socket.sleep(0.05)
        text = shell.read(outs[i])
      end
      local ok, failed, limit_errors, reports_seen =
        assert(text, "a worker did not finish"):match("^ok (%d+) failed (%d+) limit_errors (%d+) debug_reports (%d+)")
      local report = { ok = tonumber(ok), failed = tonumber(failed), limit_errors = tonumber(limit_errors),
        debug_reports = tonumber(reports_seen), ids = {}, sent = {}, stderr = shell.read(outs[i] .. ".log") }
      for id in text:gmatch("\nid ([^\n]+)") do report.ids[#report.ids + 1] = id end
      for t in text:gmatch("\nsent ([^\n]+)") do report.sent[#report.sent + 1] = tonumber(t) end
      reports[i] = report
      os.remove(outs[i]); os.remove(outs[i] .. ".log")
    end
    return reports
  end
  return workers
end

-- the most of the times (sorted in place) within any `per` seconds
local function most_within(times, per)
  table.sort(times)
  local most, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= per do j = j + 1 end
    if i - j + 1 > most then most = i - j + 1 end
  end
  return most
end

-- what the journal says of the creates: how many, how many answered 429,
-- the most that arrived within any `per` seconds (429s included), and the
-- rate after the first window: (count - limit) / (last - first)
local function journal_stats(server, per)
  local times, limited = {}, 0
  for _, r in ipairs(server:requests()) do
    if r.method == "POST" then
      times[#times + 1] = r.time
      if r.rate_limited then limited = limited + 1 end
    end
  end
  local most = most_within(times, per)
  local span = #times > 1 and times[#times] - times[1] or 0
  return { count = #times, limited = limited, most = most, times = times,
    rate = span > 0 and (#times - PER_SECOND) / span or 0 }
end

local function all_ids(reports)
  local seen, n = {}, 0
  for _, report in ipairs(reports) do
    for _, id in ipairs(report.ids) do
      assert.is_nil(seen[id], "contact created twice: " .. id)
      seen[id] = true
      n = n + 1
    end
  end
  return n
end

describe("a rate budget shared by processes", function()
  local server, redis, dir

  -- the reset before each test also empties the server's window
  harness.serve({ args = fx.SERVER_ARGS .. " --rate-limit " .. PER_SECOND .. "/1" }, function(s) server = s end)
  harness.serve({ start = redis_support.start }, function(r) redis = r end)
  setup(function() dir = temp_dir() end)
  teardown(function() if dir then shell.run("rm -rf " .. dir) end end)

  it("is needed: 4 processes on one key, each limited alone, get 429s", function()
    local reports = start_workers(4, { url = server.url, store = "none", count = 25 }).wait()
    local stats = journal_stats(server, 1)
    assert.is_true(stats.limited > 10, "429s: " .. stats.limited)
    for _, report in ipairs(reports) do assert.equal("", report.stderr) end
  end)

  for _, store in ipairs({ "redis", "host" }) do
    it("through " .. store .. ": 4 processes x 50 creates, no 429, no second over " .. PER_SECOND
      .. ", at least 90% of the rate, each contact created once", function()
      local reports = start_workers(4, { url = server.url, store = store, count = 50,
        redis_port = redis.port, dir = dir }).wait()
      local stats = journal_stats(server, 1)
      assert.equal(200, stats.count)
      assert.is_true(stats.limited <= 2, "429s: " .. stats.limited)
      assert.is_true(stats.most <= PER_SECOND, "most in one second: " .. stats.most)
      assert.is_true(stats.rate >= 0.9 * PER_SECOND, "rate: " .. stats.rate)
      assert.equal(200, all_ids(reports))
      local sent = {}
      for _, report in ipairs(reports) do
        assert.same({ 50, 0, 0, "" }, { report.ok, report.failed, report.limit_errors, report.stderr })
        for _, t in ipairs(report.sent) do sent[#sent + 1] = t end
      end
      -- by the clients' send times (one clock for all): no second holds more than 20
      assert.equal(200, #sent)
      local most = most_within(sent, 1)
      assert.is_true(most <= PER_SECOND, "most sent within one second: " .. most)
    end)
  end

  it("keeps no API key in Redis or in the host file: a digest names the budget", function()
    start_workers(2, { url = server.url, store = "redis", count = 3, redis_port = redis.port }).wait()
    start_workers(2, { url = server.url, store = "host", count = 3, dir = dir }).wait()
    local digest = core.limit.digest("stackone-lua budget " .. fx.API_KEY)
    local found = 0
    for key, value in pairs(redis:dump()) do
      found = found + 1
      assert.is_nil(key:find(fx.API_KEY, 1, true))
      assert.is_nil(value:find(fx.API_KEY, 1, true))
      assert.is_truthy(key:find(digest, 1, true))
    end
    assert.is_true(found >= 1)
    local p = assert(io.popen("ls " .. dir))
    local names = p:read("*a")
    p:close()
    assert.is_truthy(names:find(digest, 1, true))
    assert.is_nil(names:find(fx.API_KEY, 1, true))
    local text = assert(shell.read(dir .. "/stackone-budget-" .. digest))
    assert.is_true(#text > 0)
    assert.is_nil(text:find(fx.API_KEY, 1, true))
  end)

  it("takes stores described as data (as nginx's thread VMs get their options): redis, host", function()
    local client = fx.client(server, { rate_limit = { requests = 5, per = 1, name = "described",
      shared = { redis = { port = redis.port } } } })
    local _, res = assert(client.crm.contacts.create(fx.contact()))
    assert.is_nil(res.limit_error)
    assert.is_truthy(redis:dump()["stackone:budget:{described}:places"])
    client:close()
    client = fx.client(server, { rate_limit = { requests = 5, per = 1, name = "described",
      shared = { host = { dir = dir } } } })
    _, res = assert(client.crm.contacts.create(fx.contact()))
    assert.is_nil(res.limit_error)
    assert.is_truthy(shell.read(dir .. "/stackone-budget-described"))
    client:close()
  end)

  -- a fork needs C: LuaJIT's FFI calls it; elsewhere the case is pending
  local fork_it = rawget(_G, "jit") and it or function(name) pending(name .. " (LuaJIT only: fork through its FFI)") end
  fork_it("in a forked process, connects again (never uses the parent's connection)", function()
    local ffi = require("ffi")
    ffi.cdef("int fork(void); void _exit(int); int waitpid(int pid, int *status, int options);")
    local connects = 0
    local function change(id)
      return { requests = 100, per = 1, hold = 1, take = { id }, sent = {}, unsent = {} }
    end
    local store = stackone.limit.redis(function() connects = connects + 1; return redis:client() end)
    local plain = stackone.limit.redis(redis:client())
    assert.equal(1, (store:update("fork", change("p1"))))
    assert.equal(1, (plain:update("fork", change("p2"))))
    local pid = ffi.C.fork()
    if pid == 0 then -- the child: no busted here, only an exit status
      local ok, good = pcall(function()
        local granted = store:update("fork", change("c1"))
        local none, err = plain:update("fork", change("c2"))
        return granted == 1 and connects == 2 and none == nil and err:find("another process", 1, true) ~= nil
      end)
      ffi.C._exit(ok and good and 0 or 1)
    end
    local status = ffi.new("int[1]")
    assert.equal(pid, ffi.C.waitpid(pid, status, 0))
    assert.equal(0, status[0])
    -- the parent's connections are as they were
    assert.equal(1, (store:update("fork", change("p3"))))
    assert.equal(1, (plain:update("fork", change("p4"))))
    assert.equal(1, connects)
  end)

  it("goes on under each process's own limit while Redis is away, says so once, and shares again "
    .. "once it is back", function()
    local unlimited = server_support.start{ args = fx.SERVER_ARGS }
    local ok, err = pcall(function()
      local workers = start_workers(4, { url = unlimited.url, store = "redis", count = 75, redis_port = redis.port })
      socket.sleep(0.5)
      redis:stop(true)
      socket.sleep(0.5)
      redis = redis_support.start(redis.port)
      local reports = workers.wait()
      assert.equal(300, all_ids(reports))
      assert.equal(300, #unlimited:requests())
      for _, report in ipairs(reports) do
        assert.same({ 75, 0, 1, "" }, { report.ok, report.failed, report.debug_reports, report.stderr })
        assert.is_true(report.limit_errors >= 1)
      end
      local keys = 0
      for _ in pairs(redis:dump()) do keys = keys + 1 end
      assert.is_true(keys >= 1, "the budget is in Redis again")
    end)
    unlimited:stop()
    assert(ok, err)
  end)

  it("pauses every process when one gets a 429 with Retry-After", function()
    server:script("/unified/crm/contacts", { { status = 429, headers = { ["Retry-After"] = "2" },
      json = { statusCode = 429, message = "Too many requests" } } }, "POST")
    local reports = start_workers(3, { url = server.url, store = "redis", count = 12, redis_port = redis.port }).wait()
    local times = journal_stats(server, 1).times
    local paused = 0
    for _, t in ipairs(times) do
      if t > times[1] + 0.25 and t < times[1] + 1.9 then paused = paused + 1 end
    end
    assert.equal(0, paused)
    assert.equal(36, all_ids(reports))
  end)
end)

-- a store of the contract kept in this process (docs/limits.md), on the
-- same rule as the host store, recording what it is told
local function table_store()
  local window = require("stackone.limit.window")
  local store = { state = { places = {} }, changes = {} }
  function store:update(name, change)
    self.changes[#self.changes + 1] = { name = name, change = change }
    return window.update(self.state, core.limit.now(), change)
  end
  function store:held()
    local n = 0
    for _ in pairs(self.state.places) do n = n + 1 end
    return n
  end
  return store
end

describe("a shared rate budget in one process", function()
  local server

  harness.serve({ reset = false }, function(s) server = s end)

  it("tells the store each send and gives back a place never used", function()
    local store = table_store()
    local client = fx.client(server, { rate_limit = { requests = 5, per = 1, shared = store, name = "one" } })
    assert(client.crm.contacts.create(fx.contact()))
    assert.equal(1, store:held())
    assert.equal("one", store.changes[1].name)
    local refused = fx.client({ url = "http://127.0.0.1:" .. fx.closed_port() },
      { rate_limit = { requests = 5, per = 1, shared = store, name = "one" }, retry = false })
    assert.is_nil((refused.crm.contacts.create(fx.contact())))
    assert.equal(1, store:held()) -- the refused one's place came back
    socket.sleep(1.1)
    assert(client.crm.contacts.list())
    assert.equal(1, store:held()) -- the first one freed a second after its send
    client:close(); refused:close()
  end)

  it("waits when the store has no place, then goes", function()
    local store = table_store()
    local client = fx.client(server, { rate_limit = { requests = 2, per = 0.5, shared = store } })
    local other = fx.client(server, { rate_limit = { requests = 2, per = 0.5, shared = store } })
    local t0 = socket.gettime()
    assert(client.crm.contacts.create(fx.contact()))
    assert(other.crm.contacts.create(fx.contact()))
    assert(client.crm.contacts.create(fx.contact())) -- the third within 0.5 s waits
    assert.is_true(socket.gettime() - t0 >= 0.45)
    client:close(); other:close()
  end)

  it("in a cqueues loop: calls from coroutines share it, and a store that yields lets the loop run", function()
    local cqueues = require("cqueues")
    local cq = cqueues.new()
    local store, ticks, ticked_during = table_store(), 0, 0
    local yielding = { update = function(_, ...)
      local before = ticks
      cqueues.sleep(0.02) -- a store on the loop's own sockets waits like this
      if ticks > before then ticked_during = ticked_during + 1 end
      return store:update(...)
    end }
    local client = fx.client(server, { loop = stackone.loop.cqueues(cq),
      rate_limit = { requests = 3, per = 0.5, shared = yielding } })
    local done = 0
    for _ = 1, 6 do
      cq:wrap(function()
        assert(client.crm.contacts.create(fx.contact()))
        done = done + 1
      end)
    end
    cq:wrap(function()
      while done < 6 do ticks = ticks + 1; cqueues.sleep(0.002) end
    end)
    local t0 = socket.gettime()
    assert(cq:loop())
    assert.equal(6, done)
    assert.is_true(socket.gettime() - t0 >= 0.5) -- the last three waited for the first three's window
    assert.is_true(ticked_during >= 3, "the loop ran during " .. ticked_during .. " store calls")
    client:close()
  end)

  for _, case in ipairs({
    { "raises", function() error("store down") end, "store down" },
    { "returns nil, err", function() return nil, "no route" end, "no route" },
    { "answers nonsense", function() return "many" end, "a wrong answer" },
    { "grants more than asked", function() return 99, 0 end, "a wrong answer" },
  }) do
    it("goes on when the store " .. case[1] .. ": limit_error on the response, debug once", function()
      local lines = {}
      local client = fx.client(server, {
        rate_limit = { requests = 5, per = 1, shared = { update = function(_, ...) return case[2](...) end } },
        debug = function(line) lines[#lines + 1] = line end,
      })
      for _ = 1, 3 do
        local contact, res = client.crm.contacts.create(fx.contact())
        assert.is_truthy(contact)
        assert.is_truthy(res.limit_error:find(case[3], 1, true))
      end
      local failures = 0
      for _, line in ipairs(lines) do
        if line:find("shared rate limit store failed", 1, true) then failures = failures + 1 end
        assert.is_nil(line:find(fx.API_KEY, 1, true))
      end
      assert.equal(1, failures)
      local results, summary = client.crm.contacts.create_many({ fx.contact(), fx.contact() })
      assert.equal(2, #results)
      assert.is_truthy(summary.limit_error)
      client:close()
    end)
  end

  it("the host store starts afresh from a file of another boot (the monotonic clock started again)", function()
    local dir = temp_dir()
    local f = assert(io.open(dir .. "/stackone-budget-boot", "w"))
    f:write(("boot another-boot\nold.1 %.6f\n"):format(core.limit.now() + 3))
    f:close()
    local client = fx.client(server, { rate_limit = { requests = 1, per = 60, name = "boot",
      shared = stackone.limit.host{ dir = dir } } })
    local t0 = socket.gettime()
    local _, res = assert(client.crm.contacts.create(fx.contact()))
    assert.is_nil(res.limit_error)
    assert.is_true(socket.gettime() - t0 < 1)
    client:close()
    shell.run("rm -rf " .. dir)
  end)

  it("refuses what is not a store, at the caller's line", function()
    for _, bad in ipairs({ 42, "redis", {}, { update = 1 }, io.stdout, { ngx = 1 } }) do
      local ok, err = pcall(function()
        local client = stackone.new{ api_key = fx.API_KEY, account_id = fx.ACCOUNT, rate_limit = { shared = bad } }
        return client -- not a tail call: the error names this line
      end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("rate_limit.shared must be a store", 1, true))
      assert.is_truthy(tostring(err):find("limit_spec.lua", 1, true))
    end
    local ok, err = pcall(stackone.new, { api_key = fx.API_KEY, rate_limit = { shared = table_store(), name = "a b" } })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("rate_limit.name", 1, true))
    assert.has_error(function() stackone.limit.redis(42) end)
    assert.has_error(function() stackone.limit.host{ dir = 42 } end)
  end)
end)
