-- Conformance: every operation through the Lua API against Prism serving
-- StackOne's OpenAPI spec with --errors. Prism is the independent judge:
-- a request it finds invalid gets a 4xx, which fails the test.
local stackone = require("stackone")
local prism = require("support.prism")
local harness = require("support.harness")

local KEY = "conformance-key"
local TRAINING = "8187e5da-dc77-475e-9949-af0f1fa4e4e3"

describe("conformance with StackOne's OpenAPI spec (Prism)", function()
  local mock, client

  harness.serve({ start = prism.start, client = function(s)
    return assert(stackone.new{ api_key = KEY, account_id = "acc-123", base_url = s.url,
      rate_limit = false, retry = false, timeout = 20 })
  end }, function(s, c) mock, client = s, c end)

  local function ok(value, res)
    if not value then error("Prism refused the request: " .. tostring(res), 2) end
    assert.equal(200, res.status)
    return value, res
  end

  local QUERY_LIST = { fields = { "id", "remote_id" }, filter = { updated_after = "2024-01-01T00:00:00.000Z" },
    page_size = 10, next = "cursor-1", raw = true, proxy = { provider = { region = "eu" }, flag = true } }
  local QUERY_GET = { fields = "id,remote_id", raw = false, proxy = { a = "b" } }

  it("crm.contacts.create with every field of the issue's example", function()
    local contact = ok(client.crm.contacts.create{
      first_name = "Steve", last_name = "Wozniak", company_name = "Apple Inc.",
      emails = { "steve@apple.com" }, phone_numbers = { "123-456-7890" },
      deal_ids = { "deal-001", "deal-002" }, account_ids = { "account-123", "account-456" },
      custom_fields = { { id = TRAINING, name = "Training Completion Status", value = "Completed",
        value_id = "value_456" } },
      passthrough = { other_known_names = "John Doe" },
    })
    assert.is_string(contact.id)
  end)

  it("crm.contacts.create with empty arrays, nulls and an empty passthrough", function()
    ok(client.crm.contacts.create{ first_name = stackone.null, emails = {}, phone_numbers = {},
      custom_fields = {}, passthrough = {} })
  end)

  it("crm.contacts.update", function()
    local contact = ok(client.crm.contacts.update("c/1", { last_name = "Jobs", emails = { "a@b.c" } }))
    assert.is_table(contact)
  end)

  it("crm.contacts.get with fields, include, raw and proxy", function()
    local q = { fields = { "id", "first_name" }, include = "custom_fields", raw = true, proxy = { x = "1" } }
    local contact, res = ok(client.crm.contacts.get("c-1", q))
    assert.is_string(contact.id)
    assert.is_table(res.raw)
  end)

  it("crm.contacts.list with every list parameter, and the deprecated ones", function()
    local q = {}
    for k, v in pairs(QUERY_LIST) do q[k] = v end
    q.include = { "custom_fields" }
    local page = ok(client.crm.contacts.list(q))
    assert.is_table(page.data)
    page = ok(client.crm.contacts.list{ page = "2", updated_after = "2024-01-01T00:00:00.000Z" })
    assert.is_table(page.data)
  end)

  for _, group in ipairs{ "accounts", "lists", "contact_custom_field_definitions" } do
    it("crm." .. group .. ".get and .list", function()
      local record = ok(client.crm[group].get("id-1", QUERY_GET))
      assert.is_string(record.id)
      local page = ok(client.crm[group].list(QUERY_LIST))
      assert.is_table(page.data)
      assert.is_string(page.next)
    end)

    it("crm." .. group .. ".each follows next (Prism always offers one: two pages)", function()
      local n = 0
      for record in client.crm[group].each{ page_size = 5 } do
        assert.is_table(record)
        n = n + 1
        if n == 2 then break end
      end
      assert.equal(2, n)
    end)
  end

  it("the judge works: Prism refuses a request without x-account-id or with a bad key", function()
    local http = require("socket.http")
    local mime = require("mime")
    local _, status = http.request{ url = mock.url .. "/unified/crm/accounts",
      headers = { authorization = "Basic " .. mime.b64(KEY .. ":") } }
    assert.equal(422, status)
    _, status = http.request{ url = mock.url .. "/unified/crm/accounts",
      headers = { authorization = "Bearer " .. KEY, ["x-account-id"] = "a" } }
    assert.equal(401, status)
  end)

  it("a refusal reaches the caller as nil, err", function()
    local page, err = client.crm.accounts.list(nil, { headers = { Prefer = "code=400" } })
    assert.is_nil(page)
    assert.equal(400, err.status)
    assert.is_table(err.body.provider_errors)
  end)
end)

-- The platform API against Prism serving its own spec: repeated array
-- keys, 201s, DELETE, nested bodies (that no x-account-id is sent,
-- spec/platform_spec.lua sees on the local server).
describe("conformance with StackOne's platform spec (Prism)", function()
  local mock, client

  harness.serve({ start = function()
    return prism.start{ spec = "spec/data/stackone-platform.openapi.json", log = "build/prism-platform.log" }
  end, client = function(s)
    return assert(stackone.new{ api_key = KEY, base_url = s.url, rate_limit = false, retry = false, timeout = 20 })
  end }, function(s, c) mock, client = s, c end)

  local function ok(status, value, res)
    if not value then error("Prism refused the request: " .. tostring(res), 2) end
    assert.equal(status, res.status)
    return value, res
  end

  it("accounts.list with every parameter, arrays repeating their key; each over numbered pages", function()
    local page = ok(200, client.accounts.list{ page = 2, page_size = 10, provider = "hubspot",
      origin_owner_id = "o-1", origin_owner_ids = { "o-1", "o-2" }, providers = { "hubspot", "salesforce" },
      account_ids = { "a-1", "a-2" }, status = { "active", "error" } })
    assert.is_table(page.data)
    assert.is_string(page.data[1].id)
    local n = 0
    for account in client.accounts.each{ page_size = 50 } do
      assert.is_string(account.provider)
      n = n + 1
    end
    assert.is_true(n >= 1)
  end)

  it("accounts.get, update with nested objects, delete", function()
    local account = ok(200, client.accounts.get("a/1"))
    assert.is_string(account.id)
    ok(200, client.accounts.update("a-1", { label = { team = "sales" }, metadata = { plan = "pro" },
      credentials = { token = "t" }, setup_information = { region = "eu" }, type = "test", provider = "hubspot" }))
    ok(200, client.accounts.delete("a-1"))
  end)

  it("connect_sessions.create and authenticate answer 201", function()
    local session = ok(201, client.connect_sessions.create{ origin_owner_id = "o-1", origin_owner_name = "Owner",
      categories = { "crm", "hris" }, provider = "hubspot", expires_in = 1800, multiple = false,
      metadata = { plan = "pro" }, type = "production" })
    assert.is_string(session.auth_link_url)
    ok(201, client.connect_sessions.authenticate{ token = "token-1" })
  end)

  it("request_logs.list with every parameter and a deepObject filter, get with include, each by cursor", function()
    local page = ok(200, client.request_logs.list{ order_by = "eventDatetime", order_direction = "desc",
      page_size = 50, next = "c-1", include = "step_logs", filter = { account_ids = { "a-1", "a-2" },
        start_date = "2024-01-01T00:00:00.000Z", end_date = "2024-02-01T00:00:00.000Z", http_methods = "GET,POST",
        success = true, status_codes = { "200", "400" }, order_by = "duration", order_direction = "asc" } })
    assert.is_table(page.data)
    ok(200, client.request_logs.get("r-1", { include = "advanced_logs" }))
    local n = 0
    for log in client.request_logs.each{ page_size = 5 } do
      assert.is_table(log)
      n = n + 1
      if n == 2 then break end
    end
    assert.is_true(n >= 1)
  end)

  it("a refusal reaches the caller as nil, err; the judge refuses a bad key and a page that is no number",
    function()
      local page, err = client.accounts.list(nil, { headers = { Prefer = "code=404" } })
      assert.is_nil(page)
      assert.equal(404, err.status)
      local http = require("socket.http")
      local mime = require("mime")
      local _, status = http.request{ url = mock.url .. "/accounts", headers = { authorization = "Bearer x" } }
      assert.equal(401, status)
      -- (this Prism checks the platform's query strings, not its bodies)
      _, status = http.request{ url = mock.url .. "/accounts?page=abc",
        headers = { authorization = "Basic " .. mime.b64(KEY .. ":") } }
      assert.equal(422, status)
    end)
end)
