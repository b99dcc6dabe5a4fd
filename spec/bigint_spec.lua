-- Integers in responses keep every digit: Lua integers on 5.3+ when they
-- fit in 64 bits, strings of their digits otherwise (and on 5.1, LuaJIT
-- and 5.2 past 2^53), never a silently rounded number.
local harness = require("support.harness")

local INTEGERS = math.type ~= nil

describe("big integers in responses", function()
  local server, client

  harness.serve({ client = {}, reset = false }, function(s, c) server, client = s, c end)

  it("keep every digit, in records and in raw", function()
    server:script("/unified/crm/contacts/big", { { status = 200, body = [[
{"data":{"id":"big","n":9007199254740993,"neg":-9223372036854775808,"past":12345678901234567890,
 "list":[9007199254740993,1,2.5],"exact":1234567890123456,"text":"9007199254740993","f":1e300},
 "raw":[{"response":{"big":9007199254740993}}]}]] } })
    local contact, res = client.crm.contacts.get("big", { raw = true })
    assert.equal("9007199254740993", tostring(contact.n))
    assert.equal("12345678901234567890", contact.past) -- past 2^63: digits
    assert.equal("9007199254740993", contact.text)      -- strings stay strings
    assert.equal(1e300, contact.f)
    assert.equal(2.5, contact.list[3])
    assert.equal(1234567890123456, contact.exact)
    assert.equal("9007199254740993", tostring(res.raw[1].response.big))
    if INTEGERS then
      local n = load("return 9007199254740993")()
      assert.equal(n, contact.n)
      assert.equal("integer", math.type(contact.n))
      assert.equal(math.mininteger, contact.neg)
      assert.equal(n, contact.list[1])
    else -- no 64-bit integers: the digits, as a string
      assert.equal("string", type(contact.n))
      assert.equal("-9223372036854775808", contact.neg)
      assert.equal("9007199254740993", contact.list[1])
      assert.equal("number", type(contact.exact))
    end
  end)

  -- the clean-up after decoding runs only when the scan saw a null, a
  -- number or a big integer outside strings; quotes and backslashes in
  -- strings must not hide them
  local tricky = {
    { "a null after an escaped quote", [[{"data":{"id":"q","s":"a\"b","z":null}}]] },
    { "a null after an escaped backslash", [[{"data":{"id":"q","s":"a\\","z":null}}]] },
    { "a null after a string holding null", [[{"data":{"id":"q","s":"null, 12","z":null}}]] },
  }
  for _, case in ipairs(tricky) do
    it("drops " .. case[1], function()
      server:script("/unified/crm/contacts/q", { { status = 200, body = case[2] } })
      local contact = assert(client.crm.contacts.get("q"))
      assert.is_nil(contact.z)
      assert.truthy(contact.s)
    end)
  end

  it("makes numbers integers in a body with no null", function()
    server:script("/unified/crm/contacts/n", { { status = 200, body = [[{"data":{"id":"n","n":42,"s":"x"}}]] } })
    local contact = assert(client.crm.contacts.get("n"))
    assert.equal(42, contact.n)
    if INTEGERS then assert.equal("integer", math.type(contact.n)) end
  end)
end)
