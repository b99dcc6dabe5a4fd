-- Every CRM operation against the local server: records, pages, `each`,
-- ids in paths and query strings on the wire.
local stackone = require("stackone")
local harness = require("support.harness")
local fx = require("support.fixtures")

local TRAINING = "8187e5da-dc77-475e-9949-af0f1fa4e4e3"

describe("CRM operations", function()
  local server, client

  harness.serve({ args = fx.SERVER_ARGS .. " --page-size-cap 2", client = {}, fresh_client = true },
    function(s, c) server, client = s, c end)

  local function targets()
    local out = {}
    for _, r in ipairs(server:requests()) do out[#out + 1] = r.method .. " " .. r.target end
    return out
  end

  it("has a function for each of the spec's ten operations, built from one table", function()
    local crm = 0
    for _, op in ipairs(stackone.operations) do
      if op.api == "crm" then
        crm = crm + 1
        assert.is_function(client.crm[op.group][op.name], op.operation_id)
        if op.kind == "list" then assert.is_function(client.crm[op.group].each) end
      end
    end
    assert.equal(10, crm)
  end)

  it("contacts: create, get, update and list see the same contact", function()
    local created = assert(client.crm.contacts.create(fx.contact()))
    local got = assert(client.crm.contacts.get(created.id))
    assert.equal("Steve", got.first_name)
    local updated, res = client.crm.contacts.update(created.id, { last_name = "Jobs", emails = {} })
    assert.equal(200, res.status)
    assert.equal("Jobs", updated.last_name)
    assert.same({}, updated.emails)
    assert.equal("Jobs", assert(client.crm.contacts.get(created.id)).last_name)
    local page = assert(client.crm.contacts.list())
    assert.equal(created.id, page.data[1].id)
    assert.same({
      "POST /unified/crm/contacts",
      "GET /unified/crm/contacts/" .. created.id,
      "PATCH /unified/crm/contacts/" .. created.id,
      "GET /unified/crm/contacts/" .. created.id,
      "GET /unified/crm/contacts",
    }, targets())
    local patch = server:requests()[3]
    assert.equal('{"last_name":"Jobs","emails":[]}' == patch.body or
      '{"emails":[],"last_name":"Jobs"}' == patch.body, true)
  end)

  it("accounts, lists and custom field definitions: get and list", function()
    for _, group in ipairs{ "accounts", "lists", "contact_custom_field_definitions" } do
      local page, res = client.crm[group].list()
      assert.equal(200, res.status, group)
      assert.is_true(#page.data > 0, group)
      local one = assert(client.crm[group].get(page.data[1].id))
      assert.equal(page.data[1].id, one.id)
    end
  end)

  it("an unknown id is a 404 http error", function()
    local record, err = client.crm.accounts.get("no-such-account")
    assert.is_nil(record)
    assert.equal(404, err.status)
    assert.equal("HTTP_404", err.code)
    assert.equal(404, err.body.statusCode)
  end)

  it("percent-encodes ids so they cannot change the endpoint", function()
    for _, id in ipairs{ "a/b", "../accounts", "x?y", "p#q", "sp ace", "%2F", "ü" } do
      local _, err = client.crm.contacts.get(id)
      assert.equal(404, err.status, id)
    end
    assert.same({
      "GET /unified/crm/contacts/a%2Fb",
      "GET /unified/crm/contacts/..%2Faccounts",
      "GET /unified/crm/contacts/x%3Fy",
      "GET /unified/crm/contacts/p%23q",
      "GET /unified/crm/contacts/sp%20ace",
      "GET /unified/crm/contacts/%252F",
      "GET /unified/crm/contacts/%C3%BC",
    }, targets())
    for _, id in ipairs{ "", ".", ".." } do
      local _, err = client.crm.contacts.get(id)
      assert.equal("invalid", err.kind)
    end
    assert.has_error(function() client.crm.contacts.get(42) end)
    assert.equal(7, #server:requests())
  end)

  it("builds query strings: lists of fields, filter and proxy deep objects, paging", function()
    server:script("/unified/crm/contacts", { { json = { data = {} } } }) -- "a+b/c=" is no real cursor
    assert(client.crm.contacts.list{
      fields = { "id", "first_name" }, include = "custom_fields", page_size = 10, next = "a+b/c=",
      filter = { updated_after = "2024-01-01T00:00:00Z" }, raw = true,
      proxy = { z = "1", a = { b = "c d", list = { "x", "y" } } },
    })
    assert(client.crm.accounts.list{ updated_after = "2020-01-01", page = "2", fields = "id,name" })
    assert.same({
      "GET /unified/crm/contacts?fields=id,first_name&filter%5Bupdated_after%5D=2024-01-01T00%3A00%3A00Z" ..
        "&page_size=10&next=a%2Bb%2Fc%3D&include=custom_fields&raw=true" ..
        "&proxy%5Ba%5D%5Bb%5D=c%20d&proxy%5Ba%5D%5Blist%5D=x&proxy%5Ba%5D%5Blist%5D=y&proxy%5Bz%5D=1",
      "GET /unified/crm/accounts?fields=id,name&page=2&updated_after=2020-01-01",
    }, targets())
  end)

  it("refuses unknown or wrong query parameters, with a suggestion, sending nothing", function()
    local cases = {
      { client.crm.contacts.list, { page_sze = 10 }, "did you mean 'page_size'" },
      { client.crm.contacts.list, { feilds = "id" }, "did you mean 'fields'" },
      { client.crm.contacts.list, { filter = { updated_afer = "x" } }, "did you mean 'updated_after'" },
      { client.crm.contacts.list, { page_size = 0 }, "1 to 100" },
      { client.crm.contacts.list, { page_size = 101 }, "1 to 100" },
      { client.crm.contacts.list, { raw = "yes" }, "true or false" },
      { client.crm.accounts.list, { include = "x" }, "unknown query parameter 'include'" },
      { client.crm.contacts.list, { fields = { "id", 3 } }, "only strings" },
      { client.crm.contacts.list, { proxy = { f = print } }, "function" },
    }
    for _, case in ipairs(cases) do
      local page, err = case[1](case[2])
      assert.is_nil(page)
      assert.equal("invalid", err.kind)
      assert.matches(case[3], err.message)
    end
    assert.equal(0, #server:requests())
  end)

  it("list gives one page with its cursor; each follows every cursor", function()
    for i = 1, 5 do assert(client.crm.contacts.create{ first_name = "C" .. i }) end
    server:clear_requests()
    local page = assert(client.crm.contacts.list{ page_size = 3 })
    assert.equal(2, #page.data) -- the server caps pages at 2: a short page
    assert.is_string(page.next)
    local names = {}
    for contact in client.crm.contacts.each{ page_size = 3, fields = "id,first_name" } do
      names[#names + 1] = contact.first_name
    end
    assert.same({ "C1", "C2", "C3", "C4", "C5" }, names)
    local reqs = server:requests()
    assert.equal(4, #reqs) -- the list, then three pages
    for i = 2, 4 do
      assert.equal("3", reqs[i].query.page_size)
      assert.equal("id,first_name", reqs[i].query.fields)
    end
    assert.is_nil(reqs[2].query.next)
    assert.is_string(reqs[3].query.next)
  end)

  it("each stops on an empty cursor and raises the error object of a failed page", function()
    server:script("/unified/crm/accounts", {
      { json = { data = { { id = "a1" } }, next = "c1" } },
      { json = { data = { { id = "a2" } }, next = "" } },
    })
    local ids = {}
    for account in client.crm.accounts.each() do ids[#ids + 1] = account.id end
    assert.same({ "a1", "a2" }, ids)

    server:script("/unified/crm/accounts", {
      { json = { data = { { id = "a1" } }, next = "c1" } },
      { status = 500, json = { statusCode = 500, message = "boom", timestamp = "2024-01-01T00:00:00Z" } },
    })
    local seen = 0
    local ok, err = pcall(function()
      for _ in client.crm.accounts.each(nil, { retry = false }) do seen = seen + 1 end
    end)
    assert.is_false(ok)
    assert.equal(1, seen)
    assert.is_true(stackone.is_error(err))
    assert.equal(500, err.status)
  end)

  it("fields and raw reach the result", function()
    local created = assert(client.crm.contacts.create(fx.contact()))
    local got, res = client.crm.contacts.get(created.id, { fields = { "id", "first_name" }, raw = true })
    assert.same({ id = created.id, first_name = "Steve" }, got)
    assert.is_table(res.raw)
    assert.is_string(res.raw[1].url)
  end)

  describe("custom fields", function()
    it("sends the map form resolved against the account's definitions", function()
      local contact = assert(client.crm.contacts.create{ first_name = "A",
        custom_fields = { ["Training Completion Status"] = "Completed", ["Favourite Colour"] = "teal" } })
      assert.equal("Completed", stackone.custom_field(contact, "Training Completion Status"))
      assert.equal("Completed", stackone.custom_field(contact, TRAINING))
      assert.same({ ["Training Completion Status"] = "Completed", ["Favourite Colour"] = "teal" },
        stackone.custom_fields(contact))
      local reqs = server:requests()
      assert.equal("GET", reqs[1].method)
      assert.matches("^/unified/crm/custom_field_definitions/contacts", reqs[1].path)
      local body = require("cjson").decode(reqs[#reqs].body)
      table.sort(body.custom_fields, function(a, b) return a.name < b.name end)
      assert.same({
        { id = "5b2d8f1c-3e4a-4c6b-9d7e-1a2b3c4d5e01", name = "Favourite Colour", value = "teal" },
        { id = TRAINING, name = "Training Completion Status", value = "Completed", value_id = "value_456" },
      }, body.custom_fields)
    end)

    it("fetches the definitions once per account, and again on refresh", function()
      assert(client.crm.contacts.create{ custom_fields = { [TRAINING] = "In Progress" } })
      assert(client.crm.contacts.create{ custom_fields = { ["Employee Count"] = 12 } })
      local created = assert(client.crm.contacts.create{ custom_fields = { ["Employee Count"] = 13 } })
      assert(client.crm.contacts.update(created.id, { custom_fields = { ["Employee Count"] = 14 } }))
      local fetches = 0
      for _, r in ipairs(server:requests()) do
        if r.path:match("custom_field_definitions") then fetches = fetches + 1 end
      end
      -- the server caps pages at 2: three definitions take two pages, once
      assert.equal(2, fetches)
      local defs = assert(client.crm.contact_custom_field_definitions.refresh())
      assert.equal(3, #defs)
      assert(client.crm.contacts.create({ custom_fields = { ["Employee Count"] = 1 } }, { account_id = "acc-2" }))
      fetches = 0
      for _, r in ipairs(server:requests()) do
        if r.path:match("custom_field_definitions") then fetches = fetches + 1 end
      end
      assert.equal(6, fetches)
    end)

    it("refuses an unknown name or option, listing what exists, sending nothing else", function()
      local _, err = client.crm.contacts.create{ custom_fields = { ["Training Status"] = "Completed" } }
      assert.equal("invalid", err.kind)
      assert.matches("unknown custom field 'Training Status'", err.message)
      assert.matches("Training Completion Status", err.message)
      _, err = client.crm.contacts.create{ custom_fields = { ["Training Completion Status"] = "Done" } }
      assert.equal("invalid", err.kind)
      assert.matches("Completed, In Progress", err.message)
      assert.matches("^stackone: POST /unified/crm/contacts: invalid request", tostring(err))
      for _, r in ipairs(server:requests()) do assert.equal("GET", r.method) end
    end)

    it("sends the array form as given", function()
      assert(client.crm.contacts.create{ custom_fields = { { id = "any", value = "x" } } })
      assert.equal(1, #server:requests())
    end)

    it("reports a failed definitions fetch as the error", function()
      server:script("/unified/crm/custom_field_definitions/contacts", { { status = 503, body = "down" } })
      local _, err = client.crm.contacts.create({ custom_fields = { Anything = 1 } }, { retry = false })
      assert.equal(503, err.status)
      assert.equal(1, #server:requests())
    end)
  end)
end)
