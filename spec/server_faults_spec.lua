-- The test servers' network faults, checked on the wire without the SDK:
-- the Lua server with raw LuaSocket clients (close = "reset", raw,
-- refuse_for, --idle-timeout, --rate-limit), the HTTPS / HTTP/2 server with
-- the curl command line (journal, refuse, goaway, reset).
local socket = require("socket")
local cjson = require("cjson")
local server_support = require("support.server")
local h2 = require("support.h2")
local harness = require("support.harness")

local request_bytes, read_response = server_support.request_bytes, server_support.read_response

local CONTACTS = "/unified/crm/contacts"

-- waits until sock is readable (data, FIN or RST), at most `timeout` s
local function wait_readable(sock, timeout)
  local r = socket.select({ sock }, nil, timeout or 3)
  return #r > 0
end

describe("the Lua server's faults", function()
  local server

  harness.serve({ args = "" }, function(s) server = s end)

  it('close = "reset": the whole request is read and journaled, then RST and no byte', function()
    server:script(CONTACTS, { { close = "reset" } })
    local sock = assert(server:connect())
    local body = '{"first_name":"A"}'
    assert(sock:send(request_bytes("POST", CONTACTS, { body = body })))
    assert.is_true(wait_readable(sock))
    -- the pending error is ECONNRESET (LuaSocket names it "closed")
    assert.is_not_nil(sock:getoption("error"))
    local data, _, partial = sock:receive("*a")
    assert.equal("", data or partial)
    assert.is_nil(sock:send("x")) -- the connection is gone, not half-closed
    sock:close()
    local records = server:requests()
    assert.equal(1, #records)
    assert.equal(body, records[1].body)
  end)

  it('close = "before" is a FIN, unlike "reset"', function()
    server:script(CONTACTS, { { close = "before" } })
    local sock = assert(server:connect())
    assert(sock:send(request_bytes("GET", CONTACTS)))
    assert.is_true(wait_readable(sock))
    assert.is_nil(sock:getoption("error"))
    local data, _, partial = sock:receive("*a")
    assert.equal("", data or partial)
    assert.equal(1, sock:send("x")) -- half-closed: the server still reads
    sock:close()
  end)

  it("raw sends exactly its bytes, then FIN", function()
    server:script(CONTACTS, { { raw = "HTTP/1.1 2" } })
    local sock = assert(server:connect())
    assert(sock:send(request_bytes("GET", CONTACTS)))
    local data, err = sock:receive("*a") -- until the server closes
    assert.is_nil(err)
    assert.equal("HTTP/1.1 2", data)
    sock:close()
    assert.equal(1, #server:requests())
  end)

  it("raw cannot be combined with a response (400)", function()
    for _, step in ipairs({ { raw = "x", status = 200 }, { raw = "x", json = {} }, { raw = "x", body = "" },
                            { raw = "x", headers = { A = "b" } }, { raw = 1 } }) do
      local ok, err = pcall(server.script, server, CONTACTS, { step })
      assert.is_false(ok)
      assert.matches("400", err)
    end
    assert.same({}, server:pending())
  end)

  it("refuse_for: connect() is refused for that long, then the same port accepts again", function()
    -- a keep-alive connection opened before goes on working meanwhile
    local old = assert(server:connect())
    server:script(CONTACTS, { { close = "before", refuse_for = 0.6 } })
    local sock = assert(server:connect())
    assert(sock:send(request_bytes("GET", CONTACTS)))
    local data, _, partial = sock:receive("*a")
    assert.equal("", data or partial)
    sock:close()
    local t0 = socket.gettime()
    local none, err = server:connect()
    assert.is_nil(none)
    assert.equal("connection refused", err)

    assert(old:send(request_bytes("GET", CONTACTS)))
    assert.equal(200, (read_response(old)))

    while not server:accepts() and socket.gettime() - t0 < 3 do socket.sleep(0.05) end
    local waited = socket.gettime() - t0
    assert.is_true(waited > 0.45 and waited < 1.5, "accepting again after " .. waited .. " s")
    assert.equal(2, #server:requests()) -- and the control interface answers again
    assert(old:send(request_bytes("GET", CONTACTS)))
    assert.equal(200, (read_response(old)))
    old:close()
  end)

  it("refuse_for also works after a normal answer", function()
    server:script(CONTACTS, { { pass = true, refuse_for = 0.3 } })
    local sock = assert(server:connect())
    assert(sock:send(request_bytes("GET", CONTACTS)))
    assert.equal(200, (read_response(sock)))
    assert.is_false(server:accepts())
    sock:close()
    socket.sleep(0.4)
    assert.is_true(server:accepts())
  end)
end)

describe("the Lua server's --idle-timeout", function()
  local server

  harness.serve({ args = "--idle-timeout 0.3", reset = false }, function(s) server = s end)

  it("closes a keep-alive connection idle for that long, with FIN", function()
    local sock = assert(server:connect())
    assert(sock:send(request_bytes("GET", CONTACTS)))
    assert.equal(200, (read_response(sock)))
    local t0 = socket.gettime()
    assert.is_true(wait_readable(sock, 2))
    local waited = socket.gettime() - t0
    assert.is_nil(sock:getoption("error"))
    local data, _, partial = sock:receive("*a")
    assert.equal("", data or partial)
    assert.equal(1, sock:send("x")) -- a FIN, not a reset
    assert.is_true(waited > 0.25 and waited < 0.8, "closed after " .. waited .. " s")
    sock:close()
  end)

  it("does not close a connection waiting for a slow answer", function()
    server:script(CONTACTS, { { delay = 0.5, status = 200, json = { ok = true } } })
    local sock = assert(server:connect())
    assert(sock:send(request_bytes("GET", CONTACTS)))
    local status, _, body = read_response(sock)
    assert.equal(200, status)
    assert.equal('{"ok":true}', body)
    sock:close()
  end)
end)

describe("the Lua server's --rate-limit", function()
  local server

  -- the reset before each test also empties the window
  harness.serve({ args = "--rate-limit 3/0.5" }, function(s) server = s end)

  it("answers 429 to the (N+1)th request within T, does not count it, and journals rate_limited", function()
    local sock = assert(server:connect())
    local statuses = {}
    for i = 1, 4 do
      assert(sock:send(request_bytes("GET", CONTACTS)))
      local status, headers, body = read_response(sock)
      statuses[i] = status
      if i == 4 then
        assert.equal("0", headers["retry-after"])
        local e = cjson.decode(body)
        assert.equal(429, e.statusCode)
        assert.equal("Too many requests", e.message)
        assert.is_string(e.timestamp)
      end
    end
    assert.same({ 200, 200, 200, 429 }, statuses)
    local records = server:requests()
    assert.equal(4, #records)
    for i = 1, 3 do assert.is_nil(records[i].rate_limited) end
    assert.is_true(records[4].rate_limited)

    -- scripted steps come first: a step answers even with a full window
    server:script(CONTACTS, { { status = 201, body = "" } })
    assert(sock:send(request_bytes("GET", CONTACTS)))
    assert.equal(201, (read_response(sock)))

    -- the 429s were not counted: once the 3 accepted ones are older than T
    socket.sleep(0.55)
    for _ = 1, 3 do
      assert(sock:send(request_bytes("GET", CONTACTS)))
      assert.equal(200, (read_response(sock)))
    end
    sock:close()
  end)
end)

describe("the HTTPS / HTTP/2 test server", function()
  local server

  harness.serve({ start = h2.start }, function(s) server = s end)

  local function post(args)
    return server:curl(CONTACTS, (args or "--http2") .. " -X POST -H 'content-type: application/json'"
      .. " -d '{\"first_name\":\"A\"}'")
  end

  it("journals /unified/ requests over both protocols, never /__control/", function()
    local r = post()
    assert.equal(0, r.code)
    local created = cjson.decode(r.body).data
    assert.same({ id = created.id, first_name = "A" }, created)
    r = server:curl("/unified/crm/accounts", "--http1.1")
    assert.same({ data = { { id = "a1", http = "1.1" } }, next = cjson.null }, cjson.decode(r.body))
    local records = server:requests()
    assert.equal(2, #records)
    local a, b = records[1], records[2]
    assert.same({ "POST", CONTACTS, "2.0", 1, '{"first_name":"A"}', "answered" },
      { a.method, a.path, a.http, a.stream_id, a.body, a.outcome })
    assert.same({ "GET", "/unified/crm/accounts", "1.1", cjson.null, "", "answered" },
      { b.method, b.path, b.http, b.stream_id, b.body, b.outcome })
    assert.is_true(a.connection ~= b.connection)
  end)

  it("refuse: RST_STREAM REFUSED_STREAM before reading the body; curl retries on a new connection", function()
    server:script(CONTACTS, { { refuse = true } }, "POST")
    local r = post()
    assert.equal(0, r.code)
    assert.matches("REFUSED_STREAM", r.trace)
    local records = server:requests()
    assert.equal(2, #records)
    assert.equal("refused", records[1].outcome)
    assert.equal(cjson.null, records[1].body)
    assert.equal("answered", records[2].outcome)
    assert.is_true(records[1].connection ~= records[2].connection)
  end)

  it("goaway: GOAWAY with a last-stream-id below the stream", function()
    server:script(CONTACTS, { { goaway = true } })
    local r = post()
    assert.matches("GOAWAY, error=0, last_stream=0", r.trace, 1, true)
    assert.same({ "goaway" }, { server:requests()[1].outcome })
  end)

  it("reset: the body is read and journaled, then RST_STREAM INTERNAL_ERROR", function()
    server:script(CONTACTS, { { reset = true } })
    local r = post()
    assert.is_true(r.code ~= 0)
    assert.matches("INTERNAL_ERROR", r.trace)
    local records = server:requests()
    assert.equal(1, #records)
    assert.equal("reset", records[1].outcome)
    assert.equal('{"first_name":"A"}', records[1].body)
  end)

  it("refuses a bad step", function()
    assert.has_error(function() server:script(CONTACTS, { { refuse = true, status = 200 } }) end)
    assert.same({}, server:pending())
  end)
end)
