-- Conformance: every operation through the Lua API against Prism serving
-- StackOne's OpenAPI spec with --errors. Prism is the independent judge:
-- a request it finds invalid gets a 4xx, which fails the test.
local stackone = require("stackone")
local prism = require("support.prism")

local KEY = "conformance-key"
local TRAINING = "8187e5da-dc77-475e-9949-af0f1fa4e4e3"

describe("conformance with StackOne's OpenAPI spec (Prism)", function()
  local mock, client

  setup(function()
    mock = prism.start()
    client = assert(stackone.new{ api_key = KEY, account_id = "acc-123", base_url = mock.url,
      rate_limit = false, retry = false, timeout = 20 })
  end)
  teardown(function()
    if client then client:close() end
    if mock then mock.stop() end
  end)

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
