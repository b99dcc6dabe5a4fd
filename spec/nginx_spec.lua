-- stackone.nginx in a real nginx: Debian's nginx with lua-nginx-module
-- (libnginx-mod-http-lua, on OpenResty's LuaJIT) runs docs/nginx.md's
-- nginx.conf, handler, API example and commands as written (with this
-- test's paths and port, and a few test locations added), against the
-- local server with latency. nginx and the server are stopped by PID.
local cjson = require("cjson")
local socket = require("socket")
local harness = require("support.harness")
local process = require("support.process")
local fx = require("support.fixtures")
local shell = require("support.shell")

local MODULES = "/usr/lib/nginx/modules/"
local CONTACTS = "/unified/crm/contacts"
-- the server's latency for every /unified/ request; longer when the test
-- process runs under valgrind (STACKONE_SLOW), where only counts and
-- order are checked, not the clock
local SLOW = os.getenv("STACKONE_SLOW") ~= nil
local LATENCY = SLOW and 2 or 0.5
local THREADS = 4 -- docs/nginx.md's thread_pool and threads

-- the doc's code blocks: { lang =, body =, before = the paragraph above }
local function blocks(text)
  local out, last_text = {}, ""
  local pos = 1
  while true do
    local s, e, lang = text:find("\n```(%w*)\n", pos)
    if not s then break end
    local close = assert(text:find("\n```\n", e, true), "an unclosed code block in docs/nginx.md")
    local before = text:sub(pos, s):match("([^\n]*)\n*$")
    out[#out + 1] = { lang = lang, body = text:sub(e + 1, close), before = before ~= "" and before or last_text }
    last_text = before
    pos = close + 4
  end
  return out
end

local function doc()
  local text = assert(shell.read("docs/nginx.md"), "docs/nginx.md is missing")
  local d = { examples = {}, sh = {} }
  for _, b in ipairs(blocks(text)) do
    if b.lang == "nginx" then
      assert(not d.conf, "docs/nginx.md has a second nginx block: teach spec/nginx_spec.lua to use it")
      d.conf = b.body
    elseif b.lang == "lua" and b.before:find("contacts.lua", 1, true) then
      d.handler = b.body
    elseif b.lang == "lua" then
      d.examples[#d.examples + 1] = b.body
    elseif b.lang == "sh" then
      for line in b.body:gmatch("[^\n]+") do d.sh[#d.sh + 1] = line end
    else
      error("docs/nginx.md has a ```" .. b.lang .. " block: teach spec/nginx_spec.lua to run it")
    end
  end
  assert(d.conf and d.handler, "docs/nginx.md lost its nginx.conf or its handler block")
  for _, line in ipairs(d.sh) do
    assert(line:match("^make ") or line:match("^nginx ") or line:match("^curl "),
      "docs/nginx.md has a command the spec does not run: " .. line)
  end
  return d
end

local function sh_line(d, prefix)
  for _, line in ipairs(d.sh) do
    if line:sub(1, #prefix) == prefix then return line end
  end
  error("docs/nginx.md has no sh line starting with " .. prefix)
end

local quote = shell.quote

local write = shell.write

-- what the spec's own locations run (nginx_spec_app.lua in the app dir)
local TEST_APP = [=[
local cjson = require("cjson.safe")
local so = require("stackone.nginx")

local app = {}

local function client(base_url)
  return so.new{ pool = "stackone", threads = 4, client = { base_url = base_url, retry = false } }
end

local function fields(err)
  if err == nil then return nil end
  return { is_error = so.is_error(err), kind = err.kind, code = err.code, status = err.status,
    message = err.message, maybe_applied = err.maybe_applied, attempts = err.attempts, text = tostring(err) }
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

function app.refused()
  local contact, err = client("http://127.0.0.1:" .. ngx.var.arg_port).crm.contacts.create{ first_name = "Nobody" }
  reply{ contact = contact, err = fields(err) }
end

function app.bulk()
  local results, summary = client(os.getenv("STACKONE_BASE_URL")).crm.contacts.create_many{
    { first_name = "Bulk1", passthrough = { tags = so.array() } }, { frist_name = "Bulk2" } }
  reply{ first = results[1].record and results[1].record.first_name, second = fields(results[2].err),
    ok = summary.ok, failed = summary.failed }
end

function app.platform()
  local c = client(os.getenv("STACKONE_BASE_URL"))
  local page = assert(c.accounts.list{ status = "active", page_size = 5 })
  local one = assert(c.accounts:get("linked-02"))
  local companies = assert(c.crm.accounts.list(nil, { account_id = "linked-02" }))
  reply{ n = #page.data, next = page.next, provider = one.provider, companies = #companies.data }
end

function app.mistakes()
  local c = client(os.getenv("STACKONE_BASE_URL"))
  local out = {}
  local function try(key, f)
    local ok, e = pcall(f)
    out[key] = ok and "no error" or tostring(e)
  end
  try("option", function() local r = c.crm.contacts.create({ first_name = "x" }, { timout = 1 }); return r end)
  try("argument", function() local r = c.crm.contacts.create("Ada"); return r end)
  try("func", function() local r = c.crm.contacts.create({ first_name = function() end }); return r end)
  try("operation", function() local r = c.crm.contacts.delete; return r end)
  try("client_function", function()
    local r = so.new{ pool = "stackone", threads = 4, client = { debug = print } }; return r
  end)
  try("client_option", function()
    local r = so.new{ pool = "stackone", threads = 4, client = { timout = 1 } }; return r
  end)
  try("client_value", function()
    local r = so.new{ pool = "stackone", threads = 4, client = { timeout = "soon" } }.crm.contacts.get("x"); return r
  end)
  try("pool", function() local r = so.new{ pool = "nope", threads = 4 }.crm.contacts.get("x"); return r end)
  local t = {}
  t.self = t
  local _, err = c.crm.contacts.create{ first_name = "x", passthrough = t }
  out.cycle = fields(err)
  reply(out)
end

-- two calls at once on a pool of one thread whose turn comes within 0.1 s
function app.busy()
  local c = so.new{ pool = "spec_one", threads = 1, queue_timeout = 0.1,
    client = { base_url = os.getenv("STACKONE_BASE_URL") } }
  local function create(name)
    local contact, err = c.crm.contacts.create{ first_name = name }
    return { name = contact and contact.first_name, err = fields(err) }
  end
  local a = ngx.thread.spawn(create, "First")
  local b = ngx.thread.spawn(create, "Second")
  local _, first = ngx.thread.wait(a)
  local _, second = ngx.thread.wait(b)
  reply{ first = first, second = second }
end

-- a call whose light thread is killed while it is in the pool of one
-- thread: once the collector has found its coroutine, the next call runs
function app.killed()
  local c = so.new{ pool = "spec_one", threads = 1, queue_timeout = 2,
    client = { base_url = os.getenv("STACKONE_BASE_URL") } }
  local t = ngx.thread.spawn(function() local r = c.crm.contacts.create{ first_name = "Killed" }; return r end)
  ngx.sleep(0.1)
  local killed, kill_error = ngx.thread.kill(t)
  t = nil -- luacheck: ignore 311
  collectgarbage()
  collectgarbage()
  local contact, err = c.crm.contacts.create{ first_name = "After" }
  reply{ killed = killed, kill_error = kill_error, after = contact and contact.first_name, err = fields(err) }
end

-- every contact through each, three a page
function app.each()
  local c = client(os.getenv("STACKONE_BASE_URL"))
  local records = {}
  for i = 1, 7 do records[i] = { first_name = "Page" .. i } end
  local _, summary = c.crm.contacts.create_many(records)
  local names = {}
  for contact in c.crm.contacts.each{ page_size = 3 } do names[#names + 1] = contact.first_name end
  reply{ created = summary.ok, names = names }
end

-- a call where nginx does not let a request yield: its message
function app.in_set()
  local ok, e = pcall(function() local r = client("http://127.0.0.1:1").crm.contacts.get("x"); return r end)
  return ok and "no error" or e
end

return app
]=]

local function read_all(sock)
  local data, err, partial = sock:receive("*a")
  sock:close()
  return data or partial, err
end

-- an HTTP/1.0 request to nginx (so the answer ends with the connection):
-- the socket, its answer still to read
local function send(port, method, path, body)
  local sock = assert(socket.tcp())
  sock:settimeout(30)
  assert(sock:connect("127.0.0.1", port))
  local head = method .. " " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n"
  if body then head = head .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n" end
  assert(sock:send(head .. "\r\n" .. (body or "")))
  return sock
end

local function answer(sock)
  local text = assert(read_all(sock))
  local status = tonumber(text:match("^HTTP/1%.%d (%d+)"))
  return status, text:match("\r\n\r\n(.*)$") or ""
end

local function fetch(port, method, path, body)
  return answer(send(port, method, path, body))
end


describe("nginx: stackone.nginx runs calls in a thread pool", function()
  local server, nginx, port, app, d

  harness.serve({ args = fx.SERVER_ARGS .. " --latency " .. LATENCY }, function(s) server = s end)

  setup(function()
    for _, m in ipairs({ "ndk_http_module.so", "ngx_http_lua_module.so" }) do
      assert(io.open(MODULES .. m), MODULES .. m .. " is missing: nginx's Lua module is not installed "
        .. "(apt-get install nginx-light libnginx-mod-http-lua; scripts/install-deps.sh does it)"):close()
    end
    assert(shell.run("command -v nginx >/dev/null"), "nginx is not installed (apt-get install nginx-light)")
    d = doc()
    local make = sh_line(d, "make ")
    assert(shell.run(make .. " >/dev/null"), "the doc's build failed: " .. make)
    local pwd = assert(io.popen("pwd"))
    local checkout = pwd:read("*l")
    pwd:close()
    app = os.tmpname()
    os.remove(app)
    assert(shell.run("mkdir -p " .. quote(app)))
    port = fx.closed_port()

    local function paths(s)
      return (s:gsub("/opt/stackone%-lua", (checkout:gsub("%%", "%%%%"))):gsub("/opt/app", (app:gsub("%%", "%%%%"))))
    end
    -- the spec's locations, beside the doc's
    local extra = { "location = /refused { content_by_lua_block { require('nginx_spec_app').refused() } }",
      "location = /bulk { content_by_lua_block { require('nginx_spec_app').bulk() } }",
      "location = /platform { content_by_lua_block { require('nginx_spec_app').platform() } }",
      "location = /mistakes { content_by_lua_block { require('nginx_spec_app').mistakes() } }",
      "location = /busy { content_by_lua_block { require('nginx_spec_app').busy() } }",
      "location = /killed { content_by_lua_block { require('nginx_spec_app').killed() } }",
      "location = /each { content_by_lua_block { require('nginx_spec_app').each() } }",
      "location = /phase { set_by_lua_block $phase_error { return require('nginx_spec_app').in_set() } "
        .. "return 200 $phase_error; }" }
    for i, example in ipairs(d.examples) do
      write(app .. "/example_" .. i .. ".lua", example)
      extra[#extra + 1] = ("location = /example/%d { content_by_lua_file %s/example_%d.lua; }"):format(i, app, i)
    end
    local conf, found = paths(d.conf):gsub("127%.0%.0%.1:8080", "127.0.0.1:" .. port)
    assert(found == 1, "the doc's nginx.conf no longer listens on 127.0.0.1:8080")
    conf, found = conf:gsub("\n(%s*)(location = /health)", function(indent, loc)
      return "\n" .. indent .. table.concat(extra, "\n" .. indent) .. "\n" .. indent .. loc
    end)
    assert(found == 1, "the doc's nginx.conf lost its /health location")
    conf, found = conf:gsub("\nevents {}", "\nthread_pool spec_one threads=1;\n%0")
    assert(found == 1, "the doc's nginx.conf lost its events block")
    -- as root, nginx's workers would run as nobody, who may not read a
    -- checkout under /root: they run as the user running the test
    local id = assert(io.popen("id -u"))
    if id:read("*l") == "0" then conf = "user root;\n" .. conf end
    id:close()
    write(app .. "/nginx.conf", conf)
    write(app .. "/contacts.lua", d.handler)
    write(app .. "/nginx_spec_app.lua", TEST_APP)

    local command = paths(sh_line(d, "nginx "))
    nginx = process.start{ what = "nginx", interval = 0.05, log = app .. "/output",
      command = ("STACKONE_API_KEY=%s STACKONE_ACCOUNT_ID=%s STACKONE_BASE_URL=%s %s")
        :format(quote(fx.API_KEY), quote(fx.ACCOUNT), quote(server.url), command),
      ready = function() return process.accepts(port) end,
      details = function() return shell.read(app .. "/error.log") or "" end }
  end)

  teardown(function()
    -- QUIT: a graceful stop, so the workers close their thread VMs (and
    -- the clients in them) as nginx does
    if nginx then nginx:stop("QUIT") end
    if app then os.execute("rm -rf " .. quote(app)) end
  end)

  it("the worker answers another location while 20 creates wait in the pool: each contact created once, "
    .. "over at most one connection per thread", function()
    local socks = {}
    for i = 1, 20 do
      socks[i] = send(port, "POST", "/contacts", cjson.encode{ first_name = "Ada" .. i, last_name = "Lovelace" })
    end
    -- a create has reached the server: a thread waits for its answer
    local deadline = socket.gettime() + 10
    while #server:requests("POST", CONTACTS) == 0 and socket.gettime() < deadline do socket.sleep(0.01) end
    assert.is_true(#server:requests("POST", CONTACTS) >= 1)
    local t0 = socket.gettime()
    local status, body = fetch(port, "GET", "/health")
    local health_time = socket.gettime() - t0
    -- nothing of the 20 had come back when /health did, and the server
    -- had not even received them all: the creates were still in flight
    local readable = socket.select(socks, nil, 0)
    local arrived = #server:requests("POST", CONTACTS)
    assert.equal(200, status)
    assert.equal("ok\n", body)
    assert.equal(0, #readable)
    assert.is_true(arrived < 20, "all 20 creates had arrived before /health was answered")
    if not SLOW then assert.is_true(health_time < LATENCY / 2, ("/health took %.3f s"):format(health_time)) end

    local ids, names = {}, {}
    for i, sock in ipairs(socks) do
      local s, b = answer(sock)
      assert.equal(200, s, b)
      local contact = cjson.decode(b)
      assert.equal("Ada" .. i, contact.first_name)
      assert.is_nil(ids[contact.id])
      ids[contact.id] = true
    end
    local connections, count = {}, 0
    for _, r in ipairs(server:requests("POST", CONTACTS)) do
      local name = cjson.decode(r.body).first_name
      names[name] = (names[name] or 0) + 1
      if not connections[r.connection] then count = count + 1 end
      connections[r.connection] = true
    end
    for i = 1, 20 do assert.equal(1, names["Ada" .. i], "Ada" .. i .. " was not created exactly once") end
    assert.equal(20, #server:requests("POST", CONTACTS))
    -- one client per thread VM, its connection reused by every call it runs
    assert.is_true(count <= THREADS, count .. " connections for 20 creates")
  end)

  it("the doc's curl command creates a contact", function()
    local command = sh_line(d, "curl "):gsub("127%.0%.0%.1:8080", "127.0.0.1:" .. port)
    local p = assert(io.popen(command))
    local contact = cjson.decode(p:read("*a"))
    p:close()
    assert.equal("Ada", contact.first_name)
    assert.equal("Lovelace", contact.last_name)
    assert.equal(1, #server:requests("POST", CONTACTS))
  end)

  it("runs the doc's API example", function()
    for i = 1, #d.examples do
      local status, body = fetch(port, "GET", "/example/" .. i)
      assert.equal(200, status, body)
      assert.equal("Ada 1 true true INVALID\n", body)
    end
  end)

  it("an HTTP error comes back as an error object with its fields", function()
    server:script("/unified/crm/contacts", { { status = 422, json = { statusCode = 422,
      message = "Validation failed: first_name", timestamp = "2024-01-01T00:00:00Z" } } }, "POST")
    local status, body = fetch(port, "POST", "/contacts", cjson.encode{ first_name = "Ada" })
    assert.equal(422, status)
    local err = cjson.decode(body).error
    assert.same({ kind = "http", code = "HTTP_422", status = 422, message = "Validation failed: first_name",
      maybe_applied = false,
      text = "stackone: POST /unified/crm/contacts: HTTP 422 Unprocessable Entity: Validation failed: first_name" },
      err)
    server:script("/unified/crm/contacts", { { status = 500 } }, "POST")
    status, body = fetch(port, "POST", "/contacts", cjson.encode{ first_name = "Ada" })
    assert.equal(502, status)
    err = cjson.decode(body).error
    assert.equal("HTTP_500", err.code)
    assert.is_true(err.maybe_applied)
  end)

  it("the platform's calls beside the CRM's: client.accounts, numbered pages, no x-account-id", function()
    server:clear_requests()
    local status, body = fetch(port, "GET", "/platform")
    assert.equal(200, status, body)
    assert.same({ n = 5, next = 2, provider = "salesforce", companies = 5 }, cjson.decode(body))
    local sent = {}
    for _, r in ipairs(server:requests()) do sent[#sent + 1] = r.method .. " " .. r.path .. " " ..
      tostring(r.headers["x-account-id"]) end
    assert.same({ "GET /accounts nil", "GET /accounts/linked-02 nil", "GET /unified/crm/accounts linked-02" }, sent)
  end)

  it("a refused connection comes back as an error object", function()
    local status, body = fetch(port, "GET", "/refused?port=" .. fx.closed_port())
    assert.equal(200, status, body)
    local err = cjson.decode(body).err
    assert.is_true(err.is_error)
    assert.equal("network", err.kind)
    assert.equal("COULDNT_CONNECT", err.code)
    assert.is_false(err.maybe_applied)
    assert.equal(0, err.attempts) -- nothing went on the wire
    assert.matches("^stackone: POST /unified/crm/contacts: network error COULDNT_CONNECT", err.text)
  end)

  it("create_many: records and error objects come back per record; stackone.array crosses", function()
    local status, body = fetch(port, "GET", "/bulk")
    assert.equal(200, status, body)
    local out = cjson.decode(body)
    assert.equal("Bulk1", out.first)
    assert.is_true(out.second.is_error)
    assert.equal("invalid", out.second.kind)
    assert.same({ 1, 1 }, { out.ok, out.failed })
    local sent = server:requests("POST", CONTACTS)
    assert.equal(1, #sent)
    assert.matches('"tags":%[%]', sent[1].body)
  end)

  it("mistakes raise at the caller's line with the SDK's message; a cycle is an invalid error", function()
    local status, body = fetch(port, "GET", "/mistakes")
    assert.equal(200, status, body)
    local out = cjson.decode(body)
    assert.matches("nginx_spec_app%.lua:%d+: crm%.contacts%.create: unknown option 'timout' "
      .. "%(did you mean 'timeout'%?%)", out.option)
    assert.matches("nginx_spec_app%.lua:%d+: bad argument #1 to 'crm%.contacts%.create'", out.argument)
    assert.matches("nginx_spec_app%.lua:%d+: crm%.contacts%.create: argument #1%.first_name is a function", out.func)
    assert.matches("nginx_spec_app%.lua:%d+: crm%.contacts has no operation 'delete' "
      .. "%(it has: create, create_many, each", out.operation)
    assert.matches("nginx_spec_app%.lua:%d+: stackone%.nginx%.new: client%.debug is a function", out.client_function)
    assert.matches("nginx_spec_app%.lua:%d+: crm%.contacts%.get: .*thread pool nope not found", out.pool)
    assert.matches("nginx_spec_app%.lua:%d+: stackone%.nginx%.new: unknown client option 'timout' "
      .. "%(stackone%.new takes: .*timeout", out.client_option)
    -- a client option's value is checked in the thread VM, at the first call
    assert.matches("nginx_spec_app%.lua:%d+: stackone%.new: option 'timeout' must be a positive number",
      out.client_value)
    assert.equal("invalid", out.cycle.kind)
    assert.is_true(out.cycle.is_error)
    assert.equal(0, #server:requests())
  end)

  it("a call that waits longer than queue_timeout for its turn is a busy error; the other is made", function()
    local status, body = fetch(port, "GET", "/busy")
    assert.equal(200, status, body)
    local out = cjson.decode(body)
    assert.equal("First", out.first.name)
    assert.same({ is_error = true, kind = "busy", code = "QUEUE_TIMEOUT", maybe_applied = false, attempts = 0,
      message = "no room in thread pool 'spec_one' within 0.1 s (timeout)",
      text = "stackone: busy error QUEUE_TIMEOUT: no room in thread pool 'spec_one' within 0.1 s (timeout)" },
      out.second.err)
    assert.equal(1, #server:requests("POST", CONTACTS))
  end)

  it("a call killed in the pool gives its place back (the next call on a pool of one runs)", function()
    local status, body = fetch(port, "GET", "/killed")
    assert.equal(200, status, body)
    local out = cjson.decode(body)
    assert.truthy(out.killed, out.kill_error)
    assert.equal("After", out.after, body)
    local names = {}
    for _, r in ipairs(server:requests("POST", CONTACTS)) do names[#names + 1] = cjson.decode(r.body).first_name end
    assert.same({ "Killed", "After" }, names)
  end)

  it("each walks every page, one list call in the pool per page", function()
    local status, body = fetch(port, "GET", "/each")
    assert.equal(200, status, body)
    local out = cjson.decode(body)
    assert.equal(7, out.created)
    table.sort(out.names) -- the server's order is its own
    assert.same({ "Page1", "Page2", "Page3", "Page4", "Page5", "Page6", "Page7" }, out.names)
    local pages = {}
    for _, r in ipairs(server:requests()) do
      if r.method == "GET" then pages[#pages + 1] = r.query.page_size .. (r.query.next and "+next" or "") end
    end
    assert.same({ "3", "3+next", "3+next" }, pages)
  end)

  it("a call where nginx cannot yield raises, naming the phases that can", function()
    local status, body = fetch(port, "GET", "/phase")
    assert.equal(200, status, body)
    assert.matches("nginx_spec_app%.lua:%d+: crm%.contacts%.get: stackone%.nginx calls run in rewrite_by_lua%*, "
      .. "access_by_lua%* and content_by_lua%* .*, not in set", body)
  end)

  it("nginx's error log and output hold no SDK output and no API key, after a graceful stop", function()
    nginx:stop("QUIT")
    for _, file in ipairs({ "error.log", "output" }) do
      local text = shell.read(app .. "/" .. file) or ""
      assert.is_nil(text:find(fx.API_KEY, 1, true))
      assert.equal("", text, file)
    end
  end)
end)
