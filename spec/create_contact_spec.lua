-- crm.contacts.create against the local server: the exact request on the
-- wire and the decoded result.
local stackone = require("stackone")
local cjson = require("cjson")
local mime = require("mime")
local harness = require("support.harness")
local fx = require("support.fixtures")

describe("crm.contacts.create", function()
  local server, client

  harness.serve({ client = {}, fresh_client = true },
    function(s, c) server, client = s, c end)

  local function last_request()
    local all = server:requests()
    return all[#all], #all
  end

  it("creates the issue's example contact and returns it as a plain table", function()
    local contact, res = client.crm.contacts.create(fx.contact())
    assert.is_table(contact)
    assert.is_string(contact.id)
    assert.equal("Steve", contact.first_name)
    assert.equal("Wozniak", contact.last_name)
    assert.equal("Apple Inc.", contact.company_name)
    assert.equal("steve@apple.com", contact.emails[1])
    assert.same({ "deal-001", "deal-002" }, contact.deal_ids)
    assert.same({ "account-123", "account-456" }, contact.account_ids)
    assert.equal("Training Completion Status", contact.custom_fields[1].name)
    assert.is_nil(getmetatable(contact))
    assert.equal(200, res.status)
    assert.is_true(fx.is_integer(res.status))
    assert.equal(1, res.attempts)
    assert.matches("application/json", res.headers["content-type"])
    assert.is_nil(res.raw)
  end)

  -- response.headers is parsed from the kept header block when first read
  it("gives response.headers as a table of every header, lower-case names, read any time", function()
    server:script("/unified/crm/contacts", { { status = 200,
      headers = { ["X-Request-Id"] = "r-1", ["Cache-Control"] = "no-store" },
      json = { data = { id = "h-1" } } } }, "POST")
    local contact, res = client.crm.contacts.create{ first_name = "H" }
    assert.equal("h-1", contact.id)
    local other_contact, other = client.crm.contacts.create{ first_name = "I" } -- a later call reuses the buffers
    assert.truthy(other_contact)
    local h = res.headers
    assert.is_table(h)
    assert.equal("r-1", h["x-request-id"])
    assert.equal("no-store", h["cache-control"])
    assert.matches("application/json", h["content-type"])
    assert.is_nil(h["X-Request-Id"])
    assert.equal(h, res.headers) -- the same table on every read
    assert.equal(h, rawget(res, "headers"))
    assert.is_nil(other.headers["x-request-id"])
    assert.is_nil(res.no_such_field)
  end)

  it("sends the spec's request: method, path, every header, the JSON body", function()
    client.crm.contacts.create(fx.contact())
    local req, count = last_request()
    assert.equal(1, count)
    assert.equal("POST", req.method)
    assert.equal("/unified/crm/contacts", req.target)
    local h = req.headers
    assert.equal("Basic " .. mime.b64(fx.API_KEY .. ":"), h.authorization)
    assert.equal("acc-123", h["x-account-id"])
    assert.equal("application/json", h.accept)
    assert.equal("application/json", h["content-type"])
    assert.matches("^stackone%-lua/" .. stackone._VERSION:gsub("%.", "%%.") ..
      " libcurl/%d+%.%d+%.%d+ Lua/" .. _VERSION:match("%d+%.%d+"):gsub("%.", "%%.") .. "$", h["user-agent"])
    assert.is_nil(h.expect)
    assert.equal(tostring(#req.body), h["content-length"])
    assert.same(fx.contact(), cjson.decode(req.body))
  end)

  it("sends empty arrays as [] and an empty passthrough as {}", function()
    client.crm.contacts.create{ first_name = "A", emails = {}, phone_numbers = {}, custom_fields = {},
      passthrough = {} }
    local body = last_request().body
    assert.matches('"emails":%[%]', body)
    assert.matches('"phone_numbers":%[%]', body)
    assert.matches('"custom_fields":%[%]', body)
    assert.matches('"passthrough":{}', body)
  end)

  it("sends stackone.null as an explicit JSON null", function()
    client.crm.contacts.create{ first_name = "A", last_name = stackone.null, passthrough = { x = stackone.null } }
    local body = last_request().body
    assert.matches('"last_name":null', body)
    assert.matches('"x":null', body)
  end)

  it("keeps every digit of numbers in passthrough and marks arrays on request", function()
    -- integers past 2^53 exist only on 5.3+; before, a number is a double
    local big = math.type and load("return 12345678901234567, -9007199254740993")
    local b, n = 2 ^ 52, -2 ^ 52
    if big then b, n = big() end
    client.crm.contacts.create{ passthrough = { big = b, neg = n,
      pi = 3.141592653589793, small = 7, list = stackone.array(), nested = { stackone.array{} } } }
    local body = last_request().body
    assert.matches('"big":' .. (big and "12345678901234567" or "4503599627370496"), body)
    assert.matches('"neg":%-' .. (big and "9007199254740993" or "4503599627370496"), body)
    assert.matches('"pi":3%.141592653589793', body)
    assert.matches('"small":7', body)
    assert.matches('"list":%[%]', body)
    assert.matches('"nested":%[%[%]%]', body)
  end)

  it("sends text as UTF-8 untouched", function()
    local contact = client.crm.contacts.create{ first_name = "Zoë", last_name = "Ωmega 😀", company_name = "a\"b\\c/d" }
    assert.equal("Zoë", contact.first_name)
    assert.equal("Ωmega 😀", contact.last_name)
    assert.equal("a\"b\\c/d", contact.company_name)
  end)

  it("drops JSON nulls from results and gives integral numbers as integers", function()
    server:script("/unified/crm/contacts", { { status = 200,
      body = '{"data":{"id":"c1","first_name":null,"emails":["a"],"n":3,"f":2.5,"deep":{"x":null,"y":1}},' ..
             '"raw":[{"method":"POST","url":"https://p.example/c","response":{"ok":true}}]}' } })
    local contact, res = client.crm.contacts.create{ first_name = "A" }
    assert.equal("c1", contact.id)
    assert.is_nil(contact.first_name)
    assert.is_nil(contact.deep.x)
    assert.is_true(fx.is_integer(contact.n))
    assert.is_true(fx.is_integer(contact.deep.y))
    assert.is_false(fx.is_integer(contact.f))
    assert.equal("POST", res.raw[1].method)
    assert.is_true(res.raw[1].response.ok)
  end)

  it("treats any 2xx as success", function()
    server:script("/unified/crm/contacts", { { status = 201, body = '{"data":{"id":"c2"}}' } })
    local contact, res = client.crm.contacts.create{ first_name = "A" }
    assert.equal("c2", contact.id)
    assert.equal(201, res.status)
  end)

  it("takes per-call options: account id, headers and timeout", function()
    local contact = client.crm.contacts.create({ first_name = "A" },
      { account_id = "acc-other", headers = { ["X-Trace"] = "t-1" }, timeout = 5 })
    assert.is_string(contact.id)
    local req = last_request()
    assert.equal("acc-other", req.headers["x-account-id"])
    assert.equal("t-1", req.headers["x-trace"])
  end)

  it("sends client-wide headers and lets a call override them", function()
    local c = fx.client(server, { headers = { ["X-App"] = "import", ["X-Trace"] = "base" } })
    c.crm.contacts.create({ first_name = "A" }, { headers = { ["x-trace"] = "call" } })
    c:close()
    local req = last_request()
    assert.equal("import", req.headers["x-app"])
    assert.equal("call", req.headers["x-trace"])
    local traces = 0
    for _, pair in ipairs(req.header_list) do
      if pair[1]:lower() == "x-trace" then traces = traces + 1 end
    end
    assert.equal(1, traces)
  end)

  it("reuses one connection for consecutive calls", function()
    local before = server:stats().connections
    assert(client.crm.contacts.create{ first_name = "A" })
    assert(client.crm.contacts.create{ first_name = "B" })
    assert(client.crm.contacts.create{ first_name = "C" })
    -- one connection for the three calls, one for this stats request
    assert.equal(2, server:stats().connections - before)
    local reqs = server:requests()
    assert.equal(3, #reqs)
    assert.equal(reqs[1].connection, reqs[2].connection)
    assert.equal(reqs[2].connection, reqs[3].connection)
  end)
end)
