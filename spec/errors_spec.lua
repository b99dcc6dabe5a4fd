-- Runtime failures come back as `nil, err` with stable fields; bad input
-- sends nothing; programmer errors raise.
local stackone = require("stackone")
local harness = require("support.harness")
local fx = require("support.fixtures")
local cjson = require("cjson")

-- one local server for every group; each test starts from a reset one
describe("failures", function()
  local server

  harness.serve({}, function(s) server = s end)

  describe("errors", function()
    local client
    local seen = {} -- every error text, checked for the API key at the end

    local function remember(err)
      seen[#seen + 1] = tostring(err)
      for k, v in pairs(err) do
        seen[#seen + 1] = tostring(k) .. "=" .. tostring(v)
      end
      return err
    end

    before_each(function()
      client = fx.client(server)
    end)
    after_each(function()
      client:close()
    end)

    it("401: wrong API key gives an http error with the decoded body", function()
      local c = fx.client(server, { api_key = "wrong-key" })
      local contact, err = c.crm.contacts.create(fx.contact())
      c:close()
      assert.is_nil(contact)
      remember(err)
      assert.is_true(stackone.is_error(err))
      assert.equal("http", err.kind)
      assert.equal(401, err.status)
      assert.equal("HTTP_401", err.code)
      assert.equal(401, err.body.statusCode)
      assert.is_true(fx.is_integer(err.body.statusCode))
      assert.is_string(err.body.message)
      assert.is_string(err.body.timestamp)
      assert.equal(err.body.message, err.message)
      assert.equal("POST", err.method)
      assert.equal(server.url .. "/unified/crm/contacts", err.url)
      assert.equal(1, err.attempts)
      assert.is_table(err.headers)
      assert.matches("^stackone: POST /unified/crm/contacts: HTTP 401 Unauthorized: ", tostring(err))
    end)

    it("422 keeps provider_errors", function()
      server:script("/unified/crm/contacts", { { status = 422, json = {
        statusCode = 422, message = "Validation failed: emails", timestamp = "2024-05-30T00:00:00.000Z",
        provider_errors = { { status = 400, url = "https://provider.example/contacts",
          raw = { message = "Invalid email" }, headers = { ["x-request-id"] = "r1" } } } } } })
      local contact, err = client.crm.contacts.create(fx.contact())
      assert.is_nil(contact)
      remember(err)
      assert.equal("http", err.kind)
      assert.equal(422, err.status)
      assert.equal("HTTP_422", err.code)
      assert.equal("Invalid email", err.body.provider_errors[1].raw.message)
      assert.equal(400, err.body.provider_errors[1].status)
      assert.equal("stackone: POST /unified/crm/contacts: HTTP 422 Unprocessable Entity: Validation failed: emails",
        tostring(err))
    end)

    it("connection refused is a network error that was never applied", function()
      local c = fx.client(server, { base_url = "http://127.0.0.1:" .. fx.closed_port() })
      local contact, err = c.crm.contacts.create(fx.contact())
      c:close()
      assert.is_nil(contact)
      remember(err)
      assert.equal("network", err.kind)
      assert.equal("COULDNT_CONNECT", err.code)
      assert.equal(7, err.curl_code)
      assert.is_false(err.maybe_applied)
      assert.is_nil(err.status)
      assert.is_string(err.message)
      assert.matches("^stackone: POST /unified/crm/contacts: network error COULDNT_CONNECT: ", tostring(err))
    end)

    it("a TLS handshake that fails is a tls error, and the POST was never sent", function()
      -- a peer that answers the TLS hello with plain HTTP, then hangs up
      local peer = assert(io.popen([[lua5.4 -e 'local s = require("socket")
        local srv = assert(s.bind("127.0.0.1", 0)); local _, port = srv:getsockname(); print(port); io.stdout:flush()
        local c = srv:accept(); c:send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"); c:close()']]))
      local port = peer:read("*l")
      local c = fx.client(server, { base_url = "https://127.0.0.1:" .. port, retry = false })
      local contact, err = c.crm.contacts.create(fx.contact())
      c:close()
      peer:close()
      assert.is_nil(contact)
      remember(err)
      assert.equal("tls", err.kind)
      assert.equal("SSL_CONNECT_ERROR", err.code)
      assert.is_false(err.maybe_applied)
      assert.equal(0, #server:requests())
    end)

    it("a stalled server gives a timeout error", function()
      server:script("/unified/crm/contacts", { { delay = 3, status = 200, body = '{"data":{}}' } })
      local contact, err = client.crm.contacts.create({ first_name = "A" }, { timeout = 0.3 })
      assert.is_nil(contact)
      remember(err)
      assert.equal("timeout", err.kind)
      assert.equal("OPERATION_TIMEDOUT", err.code)
      assert.equal(28, err.curl_code)
      assert.is_true(err.maybe_applied)
    end)

    it("a call's timeout is not the next call's (the handle is reused)", function()
      server:script("/unified/crm/contacts", { { delay = 0.5, status = 200, body = '{"data":{"id":"t1"}}' },
                                               { delay = 0.5, status = 200, body = '{"data":{"id":"t2"}}' } })
      local contact, err = client.crm.contacts.create({ first_name = "A" }, { timeout = 0.2 })
      assert.is_nil(contact)
      assert.equal("timeout", err.kind)
      contact = assert(client.crm.contacts.create({ first_name = "A" }))
      assert.equal("t2", contact.id)
    end)

    it("a body that is not JSON is a decode error", function()
      server:script("/unified/crm/contacts", { { status = 200, body = "<html>oops</html>",
        headers = { ["Content-Type"] = "text/html" } } })
      local contact, err = client.crm.contacts.create{ first_name = "A" }
      assert.is_nil(contact)
      remember(err)
      assert.equal("decode", err.kind)
      assert.equal(200, err.status)
      assert.equal("<html>oops</html>", err.text)
      assert.equal("text/html", err.headers["content-type"])
    end)

    it("an error status with a body that is not JSON keeps the text", function()
      server:script("/unified/crm/contacts", { { status = 502, body = "bad gateway" } })
      local _, err = client.crm.contacts.create{ first_name = "A" }
      remember(err)
      assert.equal("http", err.kind)
      assert.equal(502, err.status)
      assert.equal("bad gateway", err.text)
      assert.equal("stackone: POST /unified/crm/contacts: HTTP 502 Bad Gateway: Bad Gateway", tostring(err))
    end)

    it("redirects are not followed", function()
      server:script("/unified/crm/contacts", { { status = 302,
        headers = { Location = "http://127.0.0.2:" .. server.port .. "/steal" }, body = "" } })
      local _, err = client.crm.contacts.create{ first_name = "A" }
      remember(err)
      assert.equal("http", err.kind)
      assert.equal(302, err.status)
      assert.equal(1, #server:requests())
    end)

    it("is_error tells error objects apart", function()
      local _, err = client.crm.contacts.create{ frist_name = "A" }
      assert.is_true(stackone.is_error(err))
      assert.is_false(stackone.is_error({ kind = "http" }))
      assert.is_false(stackone.is_error("stackone: x"))
      assert.is_false(stackone.is_error(nil))
      assert.is_false(stackone.is_error(client))
    end)

    describe("bad content sends nothing", function()
      local cases = {
        { "a function", { passthrough = { f = print } }, "passthrough.f" },
        { "a sparse array", { emails = { [1] = "a", [3] = "b" } }, "emails" },
        { "mixed keys", { passthrough = { 1, x = 2 } }, "passthrough" },
        { "a cycle", (function() local t = {}; t.t = t; return { passthrough = t } end)(), "cycle" },
        { "not UTF-8", { first_name = "caf\233" }, "UTF%-8" },
        { "NaN", { passthrough = { n = 0 / 0 } }, "finite" },
        { "a number for a string field", { first_name = 42 }, "first_name" },
        { "a string for an array field", { emails = "a@b.c" }, "emails" },
        { "a misspelled field", { frist_name = "A" }, "did you mean 'first_name'" },
        { "a bad custom field entry", { custom_fields = { { nmae = "x" } } }, "did you mean 'name'" },
        { "an array passthrough", { passthrough = { "a" } }, "passthrough" },
        -- the check's one pass falls back to the full check for the message
        { "a sparse array, said so", { emails = { [1] = "a", [3] = "b" } }, "mixed or non%-consecutive keys" },
        { "a number among strings", { emails = { "a@b.c", 5 } }, "field 'emails%[2%]' must be a string" },
        { "a keyless custom field entry", { custom_fields = { { id = "x" }, { "y" } } },
          "field 'custom_fields%[2%]' must be a table with named fields %(id, remote_id, name, %.%.%.%)" },
        { "a misspelled key of a second entry", { custom_fields = { { id = "x" }, { nmae = "y" } } },
          "field 'custom_fields%[2%]%.nmae' is not a known field %(did you mean 'name'%?%)" },
      }
      for _, case in ipairs(cases) do
        it(case[1], function()
          local contact, err = client.crm.contacts.create(case[2])
          assert.is_nil(contact)
          remember(err)
          assert.equal("invalid", err.kind)
          assert.equal("INVALID", err.code)
          assert.equal(0, err.attempts)
          assert.matches(case[3], err.message)
          assert.matches("^stackone: POST /unified/crm/contacts: invalid request: ", tostring(err))
          assert.equal(0, #server:requests())
        end)
      end

      it("an account id or header value with CR/LF", function()
        local _, err = client.crm.contacts.create({ first_name = "A" }, { account_id = "acc\r\nX-Evil: 1" })
        assert.equal("invalid", remember(err).kind)
        _, err = client.crm.contacts.create({ first_name = "A" }, { headers = { ["X-A"] = "v\nX-Evil: 1" } })
        assert.equal("invalid", remember(err).kind)
        _, err = client.crm.contacts.create({ first_name = "A" }, { headers = { ["Bad Name"] = "v" } })
        assert.equal("invalid", remember(err).kind)
        _, err = client.crm.contacts.create({ first_name = "A" }, { headers = { Authorization = "Basic x" } })
        assert.equal("invalid", remember(err).kind)
        assert.equal(0, #server:requests())
      end)
    end)

    describe("programmer errors raise", function()
      it("a body that is not a table", function()
        assert.has_error(function() client.crm.contacts.create("Steve") end,
          "bad argument #1 to 'crm.contacts.create' (table of fields expected, got string)")
      end)

      it("a missing account id", function()
        local c = assert(stackone.new{ api_key = fx.API_KEY, base_url = server.url })
        local ok, msg = pcall(c.crm.contacts.create, { first_name = "A" })
        c:close()
        assert.is_false(ok)
        assert.matches("no account id", msg)
        assert.matches("STACKONE_ACCOUNT_ID", msg)
      end)

      it("an unknown per-call option", function()
        assert.has_error(function() client.crm.contacts.create({}, { timout = 1 }) end)
      end)

      it("use after close", function()
        client:close()
        local ok, msg = pcall(client.crm.contacts.create, { first_name = "A" })
        assert.is_false(ok)
        assert.matches("attempt to use a closed stackone client", msg)
      end)
    end)

    it("never shows the API key", function()
      assert.is_true(#seen > 20)
      for _, text in ipairs(seen) do
        assert.is_nil(text:find(fx.API_KEY, 1, true), text)
        assert.is_nil(text:find(require("mime").b64(fx.API_KEY .. ":"), 1, true), text)
      end
    end)
  end)

  describe("hooks and the client's life", function()
    it("a sleep function that closes the client ends the call with kind closed, not a crash", function()
      local c
      c = fx.client(server, { sleep = function() c:close() end })
      server:script("/unified/crm/accounts", { { status = 503, body = "busy" } })
      local page, err = c.crm.accounts.list()
      assert.is_nil(page)
      assert.equal("closed", err.kind)
      assert.equal(1, err.attempts)
      assert.is_true(err.maybe_applied) -- a 503 may have been processed
      assert.has_error(function() c.crm.accounts.list() end, nil) -- a new call on a closed client raises
    end)

    it("an on_progress that closes the client stops create_many, keeping what was done", function()
      local c
      c = fx.client(server)
      local results, summary = c.crm.contacts.create_many({ { first_name = "A" }, { first_name = "B" } },
        { concurrency = 1, on_progress = function() c:close() end })
      assert.equal("A", results[1].record.first_name)
      assert.equal("closed", results[2].err.kind)
      assert.is_false(results[2].err.maybe_applied)
      assert.same({ 1, 1, true }, { summary.ok, summary.failed, summary.stopped })
      assert.equal(1, #server:requests("POST"))
    end)

    it("options are read without metamethods", function()
      local opts = setmetatable({}, { __index = function(_, k)
        if k == "api_key" then return ("k"):rep(2) end
      end })
      assert.has_error(function() stackone.new(opts) end)
    end)
  end)

  describe("proxies", function()
    it("refuses a proxy with a plain-http base URL: it would see the key", function()
      local c, err = stackone.new{ api_key = "k", base_url = "http://127.0.0.1:9", proxy = "http://127.0.0.1:3128" }
      assert.is_nil(c)
      assert.equal("invalid", err.kind)
      assert.matches("clear text", err.message)
    end)

    it("ignores libcurl's proxy variables for a plain-http base URL", function()
      local dead = "http://127.0.0.1:" .. fx.closed_port()
      local p = assert(io.popen(("http_proxy=%s HTTP_PROXY=%s ALL_PROXY=%s lua5.4 -e %q 2>&1"):format(dead, dead, dead,
        'package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path; ' ..
        'package.cpath = "./build/?.so;" .. package.cpath; ' ..
        'local c = require("stackone").new{ api_key = "' .. fx.API_KEY .. '", account_id = "a", base_url = "' ..
        server.url .. '" }; local page, err = c.crm.accounts.list(); print(page and "direct" or tostring(err))')))
      local out = p:read("*a")
      p:close()
      assert.matches("direct", out)
    end)
  end)

  describe("hostile input", function()
    it("a NUL byte in an option or filter name makes it an unknown name", function()
      server:reset()
      local client = fx.client(server)
      local function raised(fn)
        local ok, msg = pcall(fn)
        assert.is_false(ok)
        return msg
      end
      assert.matches("unknown option 'timeout\\0x'", raised(function()
        stackone.new{ api_key = "k", base_url = "http://127.0.0.1:9", ["timeout\0x"] = 1 } end), 1, true)
      assert.matches("unknown option 'retry\\0'", raised(function()
        client.crm.contacts.create({}, { ["retry\0"] = false }) end), 1, true)
      assert.matches("crm.contacts.create: unknown retry option 'max_attempts\\0'", raised(function()
        client.crm.contacts.create({}, { retry = { ["max_attempts\0"] = 1 } }) end), 1, true)
      assert.matches("unknown rate_limit option 'per\\0'", raised(function()
        stackone.new{ api_key = "k", base_url = "http://127.0.0.1:9", rate_limit = { ["per\0"] = 1 } } end), 1, true)
      local _, err = client.crm.contacts.list{ filter = { ["updated_after\0"] = "2024-01-01" } }
      assert.equal("invalid", err.kind)
      _, err = client.crm.contacts.list{ ["page_size\0"] = 1 }
      assert.equal("invalid", err.kind)
      client:close()
      assert.equal(0, #server:requests())
    end)

    local client

    before_each(function()
      client = fx.client(server)
    end)
    after_each(function()
      client:close()
    end)

    it("NUL, CR or LF in an account id or header value sends nothing", function()
      for _, bad in ipairs{ "acc\0x", "acc\rX: y", "acc\nX: y", "\0" } do
        local _, err = client.crm.accounts.list(nil, { account_id = bad })
        assert.equal("invalid", err.kind)
        _, err = client.crm.accounts.list(nil, { headers = { ["X-Test"] = bad } })
        assert.equal("invalid", err.kind)
      end
      assert.equal(0, #server:requests())
    end)

    it("NUL in an option string raises rather than being cut short", function()
      local ok, msg = pcall(stackone.new, { api_key = "k", base_url = "http://127.0.0.1\0.evil.example" })
      assert.is_false(ok)
      assert.matches("NUL", msg)
      ok = pcall(stackone.new, { api_key = "k\0", base_url = "http://127.0.0.1:9" })
      assert.is_false(ok)
    end)

    it("ids with NUL, slashes or dots stay inside one path segment", function()
      for _, id in ipairs{ "a\0b", "../../x", "%00", "a/../../accounts" } do
        local _, err = client.crm.lists.get(id)
        assert.equal(404, err.status)
      end
      local targets = {}
      for _, r in ipairs(server:requests()) do targets[#targets + 1] = r.target end
      assert.same({ "/unified/crm/lists/a%00b", "/unified/crm/lists/..%2F..%2Fx", "/unified/crm/lists/%2500",
        "/unified/crm/lists/a%2F..%2F..%2Faccounts" }, targets)
    end)

    it("query keys and proxy keys keep every byte", function()
      local _, err = client.crm.contacts.list{ ["fields\0x"] = "id" }
      assert.equal("invalid", err.kind)
      assert(client.crm.contacts.list{ proxy = { ["a\0b"] = "c&d=e" } })
      assert.equal("/unified/crm/contacts?proxy%5Ba%00b%5D=c%26d%3De", server:requests()[1].target)
    end)

    it("an enormous body is refused before sending", function()
      local _, err = client.crm.contacts.create{ passthrough = { blob = string.rep("x", 17 * 1024 * 1024) } }
      assert.equal("invalid", err.kind)
      assert.matches("at most", err.message)
      assert.equal(0, #server:requests())
    end)

    it("a body nested 60 deep is sent whole (the C stack grows as needed)", function()
      local deep = { x = "y" }
      for _ = 1, 60 do deep = { a = deep } end
      local contact = assert(client.crm.contacts.create{ first_name = "Deep", passthrough = deep })
      assert.equal("Deep", contact.first_name)
      local body = server:requests()[1].body
      assert.equal(61, select(2, body:gsub('"a":', "")) + 1)
    end)

    it("a field name with a NUL is not the field before it", function()
      local _, err = client.crm.contacts.create{ ["first_name\0x"] = "Steve" }
      assert.equal("invalid", err.kind)
      assert.equal(0, #server:requests())
    end)

    it("http:// to a name that only starts like a loopback address is refused", function()
      for _, url in ipairs{ "http://127.0.0.1.attacker.example:8080", "http://127.evil.example",
        "http://127.0.0.1.nip.io" } do
        local c, err = stackone.new{ api_key = "k", base_url = url }
        assert.is_nil(c, url)
        assert.matches("clear text", err.message)
      end
      assert(stackone.new{ api_key = "k", base_url = "http://127.1.2.3:9" }):close()
    end)

    it("deeply nested or self-referencing bodies are refused", function()
      local deep = {}
      local t = deep
      for _ = 1, 200 do t.x = {}; t = t.x end
      local _, err = client.crm.contacts.create{ passthrough = deep }
      assert.matches("nested too deeply", err.message)
      local a, b = {}, {}
      a.b, b.a = b, a
      _, err = client.crm.contacts.create{ passthrough = a }
      assert.matches("cycle", err.message)
      assert.equal(0, #server:requests())
    end)

    it("non-UTF-8 keys and overlong or surrogate encodings are refused", function()
      -- and past eight ASCII bytes (the check reads ASCII eight at a time)
      for _, bad in ipairs{ "\192\175", "\237\160\128", "\244\144\128\128", "\226\130", "ok\255",
                            "0123456789abcdef\255", "01234567\226\130", "0123456789\192\175xyzxyzxyz" } do
        local _, err = client.crm.contacts.create{ first_name = bad }
        assert.equal("invalid", err.kind, bad)
        assert.matches("field 'first_name' is not valid UTF%-8 text", err.message, 1, false, bad)
        _, err = client.crm.contacts.create{ passthrough = { [bad] = 1 } }
        assert.equal("invalid", err.kind, bad)
        assert.matches("field 'passthrough' has a key that is not valid UTF%-8", err.message, 1, false, bad)
        _, err = client.crm.contacts.create{ [bad] = 1 }
        assert.equal("the body has a key that is not valid UTF-8", err.message)
        -- with an empty array the body is copied to be sent: the same words
        _, err = client.crm.contacts.create{ emails = {}, passthrough = { note = bad } }
        assert.matches("field 'passthrough.note' is not valid UTF%-8 text", err.message, 1, false, bad)
      end
      assert.equal(0, #server:requests())
    end)

    it("UTF-8 text past eight ASCII bytes is sent as it is", function()
      local name = "0123456789 M\195\188ller \226\130\172 \240\159\152\128 ok"
      local contact = client.crm.contacts.create{ first_name = name,
        passthrough = { ["cl\195\169 0123456789 \230\151\165"] = name } }
      assert.is_table(contact)
      local sent = cjson.decode(server:requests()[1].body)
      assert.equal(name, sent.first_name)
    end)
  end)
end)
