-- The body check has two readers: a quick one over cjson's text (src/fits.c)
-- and the full walk over the Lua table (src/json.c). The quick one may only
-- ever say yes to what the walk would send unchanged; everything it cannot
-- be sure of goes to the walk. Each case below is one where cjson's text
-- alone would mislead it: what the server received, or the error, is the
-- walk's answer.
local harness = require("support.harness")
local stackone = require("stackone")
local cjson = require("cjson")

local INTEGERS = math.type ~= nil

describe("the body check, read from cjson's text or walked", function()
  local server, client

  harness.serve({ client = {} }, function(s, c) server, client = s, c end)

  -- the JSON text the server received for the last create
  local function sent()
    local posts = server:requests("POST", "/unified/crm/contacts")
    return posts[#posts].body
  end

  -- call(fields) must come back with an "invalid" error matching pattern,
  -- and nothing sent
  local function refused(fields, pattern, call)
    local before = #server:requests("POST")
    local value, err = (call or client.crm.contacts.create)(fields)
    if value then
      error("expected the body to be refused (" .. pattern .. "), it was sent: " .. sent(), 2)
    end
    assert.equal("invalid", err.kind)
    assert.matches(pattern, err.message)
    assert.equal(before, #server:requests("POST"))
  end

  it("sends a plain body as cjson wrote it", function()
    local fields = { first_name = "Ada", emails = { "ada@example.com", "a@b.c" },
      custom_fields = { { id = "cf-1", value = { "x", true } } }, passthrough = { a = { b = "c" } } }
    assert(client.crm.contacts.create(fields))
    assert.same(fields, cjson.decode(sent()))
  end)

  it("refuses a table mixing items and names (cjson would write an object)", function()
    refused({ first_name = "A", passthrough = { tags = { "x", "y", kind = "z" } } }, "mixed or non%-consecutive")
  end)

  it("refuses an array with a hole (cjson would write a null)", function()
    refused({ first_name = "A", passthrough = { list = { 1, nil, 3 } } }, "mixed or non%-consecutive")
    refused({ first_name = "A", emails = { [1] = "a@b.c", [3] = "c@d.e" } }, "emails. is a table with mixed")
  end)

  it("sends a name that looks like a number as the name it is", function()
    assert(client.crm.contacts.create{ first_name = "A", passthrough = { ["1"] = "one", ["-2"] = "x" } })
    assert.same({ ["1"] = "one", ["-2"] = "x" }, cjson.decode(sent()).passthrough)
  end)

  it("refuses numeric keys in an object (cjson would write them as names)", function()
    refused({ first_name = "A", passthrough = { [2] = "two", name = "n" } }, "mixed or non%-consecutive")
    refused({ first_name = "A", passthrough = { [1.5] = "x" } }, "mixed or non%-consecutive")
  end)

  it("sends every digit of a number cjson would round", function()
    local f = 1 + 2 ^ -52 -- cjson writes 1
    assert(client.crm.contacts.create{ first_name = "A", passthrough = { f = f, g = 0.1, n = 42 } })
    local text = sent()
    assert.matches('"f":1%.0000000000000002', text)
    assert.matches('"g":0%.1', text)
    if INTEGERS then
      local big = load("return 9007199254740993")()
      assert(client.crm.contacts.create{ first_name = "A", passthrough = { big = big } })
      assert.matches('"big":9007199254740993', sent())
    end
  end)

  it("sends an empty array as [] where the row or stackone.array says so", function()
    -- one at a time: any of them alone sends the body to the walk
    assert(client.crm.contacts.create{ first_name = "A", emails = {} })
    assert.matches('"emails":%[%]', sent())
    assert(client.crm.contacts.create{ first_name = "A", passthrough = { e = stackone.array{} } })
    assert.matches('"e":%[%]', sent())
    assert(client.crm.contacts.create{ first_name = "A", passthrough = { o = {} } })
    assert.matches('"o":{}', sent())
  end)

  it("refuses what JSON cannot carry, or nests too deeply", function()
    refused({ first_name = "A", passthrough = { f = print } }, "JSON cannot carry")
    refused({ first_name = "A", passthrough = { [true] = 1 } }, "mixed or non%-consecutive")
    local deep = {}
    local at = deep
    for _ = 1, 70 do at.x = {} at = at.x end
    at.x = "leaf"
    refused({ first_name = "A", passthrough = deep }, "nested too deeply")
    local cycle = {}
    cycle.me = cycle
    refused({ first_name = "A", passthrough = cycle }, "cycle")
    refused({ first_name = "A", passthrough = { s = "\255" } }, "UTF%-8")
  end)

  it("refuses a wrong type or an unknown field with the walk's words", function()
    refused({ first_name = 42 }, "first_name' must be a string")
    refused({ first_nme = "A" }, "did you mean 'first_name'")
    refused({ first_name = "A", emails = "a@b.c" }, "emails' must be an array of strings")
    refused({ first_name = "A", custom_fields = { { id = "x", colour = "red" } } }, "colour' is not a known field")
    refused({ first_name = "A", custom_fields = { "x" } }, "custom_fields%[1%]")
  end)

  describe("on a body with listed values and required fields", function()
    local base = { origin_owner_id = "o", origin_owner_name = "O" }
    local function with(extra)
      local t = {}
      for k, v in pairs(base) do t[k] = v end
      for k, v in pairs(extra) do t[k] = v end
      return t
    end

    it("takes the listed values, escaped or not, and refuses others", function()
      assert(client.connect_sessions.create(with{ categories = { "crm", "hris-legacy" } }))
      refused(with{ categories = { "crm", "hris/legacy" } }, "is not one of the values", client.connect_sessions.create)
      refused(with{ categories = { "cr\"m" } }, "is not one of the values", client.connect_sessions.create)
    end)

    it("sends every digit of a number row's value", function()
      assert(client.connect_sessions.create(with{ expires_in = 1 + 2 ^ -52 }))
      local posts = server:requests("POST", "/connect_sessions")
      assert.matches('"expires_in":1%.0000000000000002', posts[#posts].body)
    end)

    it("refuses a body without a required field, null counting as given", function()
      refused({ origin_owner_id = "o" }, "origin_owner_name' is required", client.connect_sessions.create)
      assert(client.connect_sessions.create(with{ provider = stackone.null }))
    end)
  end)
end)
