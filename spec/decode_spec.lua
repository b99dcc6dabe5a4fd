-- Response bodies are decoded in one pass straight into their final
-- values (src/decode.c): the same tables lua-cjson plus the old clean-up
-- gave, for every JSON shape, and a decode error for text that is not JSON.
local cjson = require("cjson")
local server_support = require("support.server")
local fx = require("support.fixtures")

local INTEGERS = math.type ~= nil

describe("decoding responses", function()
  local server, client

  setup(function()
    server = server_support.start{ args = fx.SERVER_ARGS }
    client = fx.client(server)
  end)
  teardown(function()
    client:close()
    server:stop()
  end)

  local function get(body)
    server:script("/unified/crm/contacts/d", { { status = 200, body = body } })
    return client.crm.contacts.get("d")
  end

  it("drops nulls in objects and keeps them in arrays as cjson.null", function()
    local c = assert(get([[{"data":{"id":"d","gone":null,"list":[1,null,3],"nested":{"a":null,"b":false}}}]]))
    assert.is_nil(c.gone)
    assert.equal(3, #c.list)
    assert.equal(cjson.null, c.list[2])
    assert.same({ b = false }, c.nested)
  end)

  it("reads escapes, surrogate pairs and raw UTF-8", function()
    local c = assert(get('{"data":{"id":"d","s":"a\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00","u":"\226\130\172"}}'))
    assert.equal('a"b\\c/d\n\t\195\169\226\130\172\240\159\152\128', c.s)
    assert.equal("\226\130\172", c.u)
  end)

  it("makes integral numbers integers and keeps other numbers", function()
    local c = assert(get([[{"data":{"id":"d","i":42,"neg":-7,"two":2.0,"e":1e3,"half":-0.5,"big":1e300,"z":-0}}]]))
    assert.equal(42, c.i)
    assert.equal(-7, c.neg)
    assert.equal(2, c.two)
    assert.equal(1000, c.e)
    assert.equal(-0.5, c.half)
    assert.equal(1e300, c.big)
    assert.equal(0, c.z)
    if INTEGERS then
      for _, k in ipairs{ "i", "neg", "two", "e", "z" } do assert.equal("integer", math.type(c[k]), k) end
      assert.equal("float", math.type(c.half))
    end
  end)

  it("fills arrays and objects past one chunk, in order, the last of a repeated key winning", function()
    local items, fields = {}, {}
    for i = 1, 100 do
      items[i] = tostring(i)
      fields[i] = string.format('"k%d":%d', i, i)
    end
    local c = assert(get('{"data":{"id":"d","items":[' .. table.concat(items, ",") .. '],"o":{'
      .. table.concat(fields, ",") .. ',"k1":"last"},"dup":1,"dup":2}}'))
    assert.equal(100, #c.items)
    for i = 1, 100 do assert.equal(i, c.items[i]) end
    assert.equal("last", c.o.k1)
    assert.equal(100, c.o.k100)
    assert.equal(2, c.dup)
    local n = 0
    for _ in pairs(c.o) do n = n + 1 end
    assert.equal(100, n)
  end)

  it("reads empty containers and a page of them", function()
    local c = assert(get([==[ {"data":{"id":"d","a":[],"o":{},"deep":[[[]],{"x":[{}]}]}} ]==]))
    assert.same({}, c.a)
    assert.same({}, c.o)
    assert.same({ { {} }, { x = { {} } } }, c.deep)
  end)

  local bad = {
    { "text after the value", '{"data":{"id":"d"}} x' },
    { "a missing comma", '{"data":{"id":"d" "x":1}}' },
    { "an unterminated string", '{"data":{"id":"d' },
    { "a bad escape", '{"data":{"id":"d\\q"}}' },
    { "a lone surrogate", '{"data":{"id":"\\udc00"}}' },
    { "a bad number", '{"data":{"id":"d","n":01}}' },
    { "a truncated literal", '{"data":{"id":"d","t":tru}}' },
    { "nesting past 1000 levels", '{"data":{"id":"d","n":' .. string.rep("[", 1001) .. string.rep("]", 1001) .. "}}" },
  }
  for _, case in ipairs(bad) do
    it("gives a decode error for " .. case[1], function()
      local c, err = get(case[2])
      assert.is_nil(c)
      assert.equal("decode", err.kind)
      assert.equal(200, err.status)
    end)
  end

  it("reads 1000 levels of nesting", function()
    local c = assert(get('{"data":{"id":"d","n":' .. string.rep("[", 998) .. string.rep("]", 998) .. "}}"))
    local depth, t = 0, c.n
    while type(t) == "table" and t[1] do depth, t = depth + 1, t[1] end
    assert.equal(997, depth)
  end)
end)
