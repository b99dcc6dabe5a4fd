-- HTTPS with a real TLS peer (Node's http2 module, with a test
-- certificate): verification on by default, ca_file, insecure, HTTP/2, and
-- the debug trace never showing the key, whatever the protocol; and TLS the
-- cheap way: HTTP/2 bulk on one connection, TLS sessions resumed, the CA
-- file read once per client.
local stackone = require("stackone")
local mime = require("mime")
local fx = require("support.fixtures")
local h2 = require("support.h2")
local harness = require("support.harness")
local shell = require("support.shell")
local socket = require("socket")

local CA = "spec/data/tls/cert.pem"

describe("TLS", function()
  local url

  harness.serve({ start = h2.start, reset = false }, function(s) url = s.url end)

  it("verifies the peer by default: an unknown certificate is a tls error, not retried", function()
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url })
    local page, err = c.crm.accounts.list()
    c:close()
    assert.is_nil(page)
    assert.equal("tls", err.kind)
    assert.equal("PEER_FAILED_VERIFICATION", err.code)
    assert.equal(0, err.attempts) -- no request went out
  end)

  it("trusts a ca_file, and talks HTTP/2 when the server offers it", function()
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url, ca_file = CA })
    local page, res = c.crm.accounts.list()
    c:close()
    assert(page, tostring(res))
    assert.equal("2.0", page.data[1].http)
    assert.equal(200, res.status)
  end)

  it("a ca_file adds to the system's trust: a server signed by neither fails verification", function()
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url,
      ca_file = "spec/data/tls/other_cert.pem" })
    local page, err = c.crm.accounts.list()
    c:close()
    assert.is_nil(page)
    assert.equal("tls", err.kind)
    assert.equal("PEER_FAILED_VERIFICATION", err.code)
  end)

  it("a ca_file that is missing, or holds no certificate, fails each call as it always did", function()
    for _, file in ipairs{ "spec/data/tls/missing.pem", "spec/data/tls/README.md" } do
      local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url, ca_file = file })
      local page, err = c.crm.accounts.list()
      c:close()
      assert.is_nil(page)
      assert.equal("tls", err.kind)
      assert.equal("SSL_CACERT_BADFILE", err.code)
      assert.matches(file, err.message, 1, true)
      assert.equal(0, err.attempts)
    end
  end)

  it("insecure = true skips verification", function()
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url, insecure = true })
    assert(c.crm.accounts.list())
    c:close()
  end)

  it("the debug trace over HTTP/2 never shows the key", function()
    local traces = {}
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url, ca_file = CA,
      debug = function(text) traces[#traces + 1] = text end })
    assert(c.crm.contacts.create{ first_name = "A" })
    assert(c.crm.accounts.list())
    c:close()
    assert.equal(2, #traces)
    for _, text in ipairs(traces) do
      assert.is_nil(text:find(fx.API_KEY, 1, true))
      assert.is_nil(text:find(mime.b64(fx.API_KEY .. ":"), 1, true))
      assert.matches("REDACTED", text)
    end
    assert.matches("HTTP/2", traces[2])
  end)
end)

describe("TLS connections of one client", function()
  local server, narrow, http1 -- narrow: one stream per connection; http1: no h2

  setup(function()
    server = h2.start()
    narrow = h2.start{ max_streams = 1 }
    http1 = h2.start{ http1_only = true }
  end)
  teardown(function()
    for _, s in ipairs{ server, narrow, http1 } do s:stop() end
  end)
  before_each(function()
    for _, s in ipairs{ server, narrow, http1 } do s:clear() s:clear_script() end
  end)

  local function new_client(base_url)
    return assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = base_url, ca_file = CA })
  end

  -- the narrow server holds both creates a while: each needs its own
  -- connection, opened while the first one is still up
  local function hold_two_creates()
    narrow:script("/unified/crm/contacts", { { delay = 0.2, pass = true }, { delay = 0.2, pass = true } }, "POST")
  end

  local function connections(list)
    local seen, n = {}, 0
    for _, r in ipairs(list) do
      if not seen[r.connection] then n = n + 1 end
      seen[r.connection] = true
    end
    return n
  end

  it("bulk over HTTP/2 multiplexes on one connection when the server allows the streams", function()
    local c = new_client(server.url)
    local records = {}
    for i = 1, 50 do records[i] = { first_name = "M" .. i } end
    local _, summary = c.crm.contacts.create_many(records, { concurrency = 16 })
    c:close()
    assert.equal(50, summary.ok)
    local list = server:requests()
    assert.equal(50, #list)
    for _, r in ipairs(list) do assert.equal("2.0", r.http) end
    assert.equal(1, connections(list))
  end)

  it("bulk over HTTP/1.1 TLS still opens a connection per transfer in flight, resuming the session", function()
    local c = new_client(http1.url)
    assert(c.crm.accounts.list())
    local steps, records = {}, {}
    for i = 1, 8 do
      steps[i] = { delay = 0.3, pass = true }
      records[i] = { first_name = "H" .. i }
    end
    http1:script("/unified/crm/contacts", steps, "POST")
    local t0 = socket.gettime()
    local _, summary = c.crm.contacts.create_many(records, { concurrency = 4 })
    local elapsed = socket.gettime() - t0
    c:close()
    assert.equal(8, summary.ok)
    local list = http1:requests()
    assert.equal(9, #list)
    assert.equal("1.1", list[2].http)
    assert.equal(4, connections(list))
    -- each later connection resumes the first one's session; under
    -- valgrind (STACKONE_SLOW) a connection may start before the first
    -- one's ticket is read, so there at least one must
    local later, resumed = 0, 0
    for i = 2, #list do
      if list[i].connection ~= list[1].connection then
        later = later + 1
        resumed = resumed + (list[i].resumed and 1 or 0)
      end
    end
    if os.getenv("STACKONE_SLOW") then
      assert.is_true(resumed >= 1, ("%d of %d resumed"):format(resumed, later))
    else
      assert.equal(later, resumed)
    end
    assert.is_true(elapsed < 8 * 0.3, "the creates went one at a time")
  end)

  it("a second connection resumes the first one's TLS session", function()
    local c = new_client(narrow.url)
    assert(c.crm.accounts.list())
    hold_two_creates()
    local _, summary = c.crm.contacts.create_many({ { first_name = "A" }, { first_name = "B" } }, { concurrency = 2 })
    c:close()
    assert.equal(2, summary.ok)
    local list = narrow:requests()
    assert.equal(3, #list)
    assert.is_true(connections(list) >= 2)
    local resumed = 0
    for _, r in ipairs(list) do
      if r.connection ~= list[1].connection then
        assert.is_true(r.resumed)
        resumed = resumed + 1
      end
    end
    assert.is_false(list[1].resumed)
    assert.is_true(resumed >= 1)
  end)

  -- libcurl's built-in CA file, when it has one that can be read
  local function builtin_bundle()
    local p = assert(io.popen("curl-config --ca 2>/dev/null"))
    local bundle = (p:read("*a") or ""):match("^%s*(.-)%s*$")
    p:close()
    if bundle ~= "" and shell.read(bundle) then return bundle end
  end

  -- runs `script` in a child Lua under strace (arg[1] the server's URL,
  -- arg[2] the build, then `...`): what it printed, and the files it
  -- opened as strace's text
  local function traced(script, url, ...)
    local trace, file = os.tmpname(), os.tmpname()
    shell.write(file, [[
      package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
      package.cpath = arg[2] .. "/?.so;" .. package.cpath
    ]] .. script)
    local args = { url, fx.BUILD, ... }
    for i, a in ipairs(args) do args[i] = h2.quote(a) end
    local run = assert(io.popen(("strace -f -e trace=openat -o %s %s %s %s 2>&1"):format(trace, fx.LUA, file,
      table.concat(args, " "))))
    local out = run:read("*a")
    run:close()
    local text = shell.read(trace) or ""
    os.remove(trace)
    os.remove(file)
    return out, text
  end

  -- how many times the trace opens the file at `path` (a Lua pattern)
  local function opens(text, pattern)
    local _, n = text:gsub('"' .. pattern .. '"', "")
    return n
  end

  local function literal(path) return (path:gsub("%p", "%%%0")) end

  it("a second connection does not read the system's CA file again", function()
    -- libcurl's built-in bundle does not know the test certificate: each
    -- connection fails verification, after loading the bundle (or not)
    local bundle = builtin_bundle()
    if not bundle then
      pending("libcurl has no built-in CA file here")
      return
    end
    local out, text = traced([[
      local stackone = require("stackone")
      local c = assert(stackone.new{ api_key = "k", account_id = "a", base_url = arg[1] })
      for _ = 1, 2 do
        local page, err = c.crm.accounts.list()
        assert(not page and err.code == "PEER_FAILED_VERIFICATION", tostring(err))
      end
      c:close()
    ]], server.url)
    assert.equal("", out)
    assert.equal(1, opens(text, literal(bundle)))
  end)

  -- this process's descriptors that are the clients' CA bundles: { [path] = its text }
  local function bundles()
    local pid = assert(shell.read("/proc/self/stat")):match("^%d+")
    local p = assert(io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null"))
    local found = {}
    for fd in p:read("*a"):gmatch("(%d+) %-> /memfd:stackone%-ca") do
      local path = "/proc/" .. pid .. "/fd/" .. fd
      found[path] = shell.read(path)
    end
    p:close()
    return found
  end

  local function count(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
  end

  -- the PEM blocks of a text, in order
  local function blocks(text)
    local out = {}
    for b in text:gmatch("%-%-%-%-%-BEGIN .-%-%-%-%-%-END .-%-%-%-%-%-") do out[#out + 1] = b end
    return out
  end

  it("with a ca_file, an https client's bundle is libcurl's built-in one and then the ca_file, until it closes",
    function()
    local bundle = builtin_bundle()
    if not bundle then
      pending("libcurl has no built-in CA file here")
      return
    end
    local system, mine = shell.read(bundle), shell.read(CA)
    -- a whole system bundle as the ca_file: its certificates are not
    -- repeated from the built-in one
    local superset = os.tmpname()
    shell.write(superset, system .. mine)
    local before = count(bundles())
    local c = new_client(server.url)
    local whole = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", ca_file = superset,
      base_url = server.url })
    local plain = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", ca_file = CA,
      base_url = "http://127.0.0.1:1" })
    local insecure = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", ca_file = CA,
      base_url = server.url, insecure = true })
    local found = bundles()
    os.remove(superset)
    assert.equal(before + 2, count(found)) -- the https clients' alone
    -- the first client's bundle is `deduped`, the second's `joined`: the
    -- same text when the system's bundle is its blocks alone (Debian's)
    local deduped, joined = table.concat(blocks(system), "\n") .. "\n" .. mine, system .. mine
    local n = { deduped = 0, joined = 0 }
    for _, text in pairs(found) do
      if text == deduped then n.deduped = n.deduped + 1 end
      if text == joined then n.joined = n.joined + 1 end
    end
    local both = deduped == joined and 2 or 1
    assert.same({ deduped = both, joined = both }, n)
    assert(c.crm.accounts.list())
    assert(whole.crm.accounts.list())
    c:close()
    c:close()
    whole:close()
    plain:close()
    insecure:close()
    assert.equal(before, count(bundles()))
  end)

  -- a ca_file joins libcurl's built-in bundle in one in-memory file of
  -- the client's, /proc/self/fd/N, read by libcurl once per client: with
  -- the built-in bundle and the ca_file each read once, when it is made
  for _, mode in ipairs{ "blocking calls", "a luv loop" } do
    local test = mode == "a luv loop" and fx.needs("luv", it, pending) or it
    test("with a ca_file, a client's connections read the CA files once, in " .. mode, function()
      local bundle = builtin_bundle()
      if not bundle then
        pending("libcurl has no built-in CA file here")
        return
      end
      hold_two_creates()
      local out, text = traced([[
        local stackone = require("stackone")
        local uv = arg[4] == "a luv loop" and require("luv")
        local c = assert(stackone.new{ api_key = "k", account_id = "a", base_url = arg[1], ca_file = arg[3],
          loop = uv and stackone.loop.luv(uv) or nil })
        local done = false
        local function work()
          assert(c.crm.accounts.list())
          local _, summary = c.crm.contacts.create_many({ { first_name = "A" }, { first_name = "B" } },
            { concurrency = 2 })
          assert(summary.ok == 2, "the creates failed")
          done = true
        end
        if uv then
          coroutine.wrap(work)()
          uv.run()
        else
          work()
        end
        assert(done, "the calls did not finish")
        c:close()
      ]], narrow.url, CA, mode)
      assert.equal("", out)
      assert.is_true(connections(narrow:requests()) >= 2)
      assert.equal(1, opens(text, literal(CA)))
      assert.equal(1, opens(text, literal(bundle)))
      assert.equal(1, opens(text, "/proc/self/fd/%d+"))
    end)
  end
end)
