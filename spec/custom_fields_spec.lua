-- Custom fields by name: values checked against their definition's type,
-- and definitions or records of any shape from the server give a value or
-- `nil, err`, never an error raised.
local stackone = require("stackone")
local harness = require("support.harness")

local DEFINITIONS = "/unified/crm/custom_field_definitions/contacts"

describe("custom fields", function()
  local server, client

  harness.serve({ client = {}, fresh_client = true }, function(s, c) server, client = s, c end)

  it("checks a value given by name against its definition's type before anything is sent", function()
    local _, contact, err
    contact, err = client.crm.contacts.create{ custom_fields = { ["Employee Count"] = "abc" } }
    assert.is_nil(contact)
    assert.equal("invalid", err.kind)
    assert.matches("Employee Count' is of type float: its value must be a number, not 'abc'", err.message, 1, true)
    _, err = client.crm.contacts.create{ custom_fields = { ["Favourite Colour"] = 7 } }
    assert.equal("invalid", err.kind)
    assert.equal(0, #server:requests("POST"))
    assert(client.crm.contacts.create{ custom_fields = { ["Employee Count"] = 12.5, ["Favourite Colour"] = "red" } })
    assert.equal(1, #server:requests("POST"))
  end)

  it("definitions of any shape from the server give nil, err, never a raise", function()
    server:script(DEFINITIONS, { { json = { data = { 42, "text",
      { id = "x", name = "X", options = { { id = "no-value" }, 7 } },
      { id = "y", name = "Y", options = "not a list", type = { value = "integer" } },
      { name = { nested = true } } } } } }, "GET")
    local _, contact, err
    contact, err = client.crm.contacts.create{ custom_fields = { X = "anything" } }
    assert.is_nil(contact)
    assert.equal("invalid", err.kind)
    assert.matches("has no option 'anything'", err.message, 1, true)
    _, err = client.crm.contacts.create{ custom_fields = { Nope = 1 } }
    assert.matches("unknown custom field 'Nope'", err.message, 1, true)
    _, err = client.crm.contacts.create{ custom_fields = { Y = 1.5 } }
    assert.matches("must be a whole number", err.message, 1, true)
    local results = client.crm.contacts.create_many{ { custom_fields = { X = "a" } }, { first_name = "Plain" } }
    assert.equal("invalid", results[1].err.kind)
    assert.equal("Plain", results[2].record.first_name)
    server:script(DEFINITIONS, { { json = { data = "not a list" } } }, "GET")
    client.crm.contact_custom_field_definitions.refresh()
    _, err = client.crm.contacts.create{ custom_fields = { X = "a" } }
    assert.is_true(stackone.is_error(err))
  end)

  it("reading custom fields from records of any shape never raises", function()
    local record = { custom_fields = { 1, "x", { name = "a", value = 2 }, { id = "i", value = 3 }, { name = {} } } }
    assert.equal(2, stackone.custom_field(record, "a"))
    assert.equal(3, stackone.custom_field(record, "i"))
    assert.same({ a = 2, i = 3 }, stackone.custom_fields(record))
    for _, odd in ipairs{ "text", 42, { custom_fields = "x" }, { custom_fields = { 1, 2 } } } do
      assert.is_nil(stackone.custom_field(odd, "a"))
      assert.same({}, stackone.custom_fields(odd))
    end
  end)
end)
