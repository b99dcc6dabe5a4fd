-- A large answer (past 1 MiB) is received in blocks and decoded piece by
-- piece (src/chunks.c, src/json_pieces.c): the value must be exactly the
-- one the small path gives, invalid JSON refused the same way, the size
-- cap kept, and a retried attempt must not see its first attempt's bytes.
local harness = require("support.harness")
local fx = require("support.fixtures")
local cjson = require("cjson")

local LIST = "/unified/crm/accounts"
local INTEGERS = math.type ~= nil

-- records whose text is hard to cut: brackets, commas and quotes inside
-- strings, escapes, nulls, big integers, nested arrays, integral floats
local TEMPLATES = {
  [=[{"id":"%d","name":"a]b}c,d\"e\\","u":"\u00e9\ud83d\ude00 [{,}]","n":null,"ok":true}]=],
  [=[ { "id" : "%d" , "big" : 9007199254740993, "past":12345678901234567890, ]=]
    .. [=["list" : [1, null, [2, [3.0, "]"]], "x", {"z":null}] } ]=],
  [=[{"id":"%d","f":2.5,"i":3.0,"e":1e2,"neg":-0.5,"empty":{},"none":[],"s":"\\\"\\"}]=],
  [=[{"id":"%d","deep":[[[[{"a":[null,{"b":"}"}]}]]]],"t":"tab\there","nil":null}]=],
}

-- the same text as an element `size` bytes long or more (a long string)
local function padded(template, size)
  return template:gsub('^(%s*{)', '%1"pad":"' .. string.rep("p", size) .. '",', 1)
end

-- a list body of at least `bytes` bytes; element k is template k % #TEMPLATES
-- with id k, and element 7 is longer than a block (256 KiB)
local function list_body(bytes, extra)
  local parts, size, k = {}, 0, 0
  while size < bytes do
    k = k + 1
    local t = TEMPLATES[(k - 1) % #TEMPLATES + 1]
    if k == 7 then t = padded(t, 300 * 1024) end
    parts[k] = t:format(k)
    size = size + #parts[k] + 3
  end
  return '{"data":[' .. table.concat(parts, " ,\n ") .. '],"meta":{"n":null},' .. (extra or "")
    .. '"next":"cursor-2"}', k
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

-- the records as the small path decodes them, one call per template
local function small_records(server, client)
  local records = {}
  for i, t in ipairs(TEMPLATES) do
    server:script(LIST, { { status = 200, body = '{"data":[' .. t:format(0) .. ']}' } }, "GET")
    records[i] = assert(client.crm.accounts.list()).data[1]
  end
  return records
end

describe("a large answer", function()
  local server, client

  harness.serve({ client = { retry = { base_delay = 0.01, max_delay = 0.02 } } },
    function(s, c) server, client = s, c end)

  it("decodes to the value the small path gives, record by record", function()
    local small = small_records(server, client)
    local body, n = list_body(1536 * 1024)
    server:script(LIST, { { status = 200, body = body } }, "GET")
    local page = assert(client.crm.accounts.list())
    assert.equal(n, #page.data)
    assert.equal("cursor-2", page.next)
    -- spot checks: against plain cjson, and the clean-up (nulls, numbers)
    local plain = cjson.decode(body).data
    assert.equal('a]b}c,d"e\\', page.data[1].name)
    assert.equal(plain[1].u, page.data[1].u)
    assert.equal(plain[4].t, page.data[4].t)
    assert.is_nil(page.data[1].n)
    assert.equal(cjson.null, page.data[2].list[2])
    if INTEGERS then
      assert.equal(load("return 9007199254740993")(), page.data[2].big)
      assert.equal("integer", math.type(page.data[3].i))
    else
      assert.equal("9007199254740993", page.data[2].big)
    end
    assert.equal("12345678901234567890", page.data[2].past)
    -- every record; under valgrind (STACKONE_SLOW) a sample of them, the
    -- decode itself still whole
    local sampled, step = {}, os.getenv("STACKONE_SLOW") and 23 or 1
    for k = 1, n do
      if k % step == 1 % step or k == 7 or k == n then sampled[#sampled + 1] = k end
    end
    for _, k in ipairs(sampled) do
      local expected = copy(small[(k - 1) % #TEMPLATES + 1])
      local got = page.data[k]
      assert.equal(tostring(k), got.id)
      if k == 7 then
        assert.equal(300 * 1024, #got.pad)
        got.pad = nil
      end
      got.id, expected.id = nil, nil
      if k % #TEMPLATES == 2 then -- big integers: compared as the small path has them
        assert.equal(tostring(small[2].big), tostring(got.big))
        assert.equal(tostring(small[2].past), tostring(got.past))
        got.big, got.past, expected.big, expected.past = nil, nil, nil, nil
      end
      assert.same(expected, got)
    end
  end)

  -- a host that stopped the collector (a game between frames) keeps it
  -- stopped: the decode's own collection steps are skipped then
  it("leaves a collector the host stopped stopped", function()
    local body = list_body(1536 * 1024)
    server:script(LIST, { { status = 200, body = body } }, "GET")
    collectgarbage("collect")
    collectgarbage("stop")
    local ok, err = pcall(function()
      assert(client.crm.accounts.list())
      -- 2,000 dropped tables of 1,000 items (16 to 32 MiB, by Lua): a
      -- running collector would take most of them back
      local before = collectgarbage("count")
      for _ = 1, 2000 do
        local t = {}
        for j = 1, 1000 do t[j] = j end
        assert(#t == 1000)
      end
      assert(collectgarbage("count") - before > 15 * 1024, "the collector ran")
    end)
    collectgarbage("restart")
    assert(ok, err)
  end)

  it("decodes a large object member and a large array member (get with raw)", function()
    local raw = {}
    for k = 1, 30000 do raw[k] = ('{"k":%d,"big":9007199254740993,"n":null}'):format(k) end
    local body = '{"data":{"id":"c1","notes":"' .. string.rep("n", 1200 * 1024) .. '","z":null,"f":4.0},'
      .. '"raw":[' .. table.concat(raw, ",") .. '],"raw":[' .. table.concat(raw, ",", 1, 20000) .. ']}'
    server:script("/unified/crm/contacts/c1", { { status = 200, body = body } }, "GET")
    local contact, res = assert(client.crm.contacts.get("c1", { raw = true }))
    assert.equal(1200 * 1024, #contact.notes)
    assert.is_nil(contact.z)
    assert.is_true(fx.is_integer(contact.f))
    assert.equal(20000, #res.raw) -- a repeated key: the last one, as cjson
    assert.equal(20000, res.raw[20000].k)
    assert.equal("9007199254740993", tostring(res.raw[1].big))
    assert.is_nil(res.raw[1].n)
  end)

  -- an element of the data array nested n deep: 2 + n levels in the body
  local function nested(n) return string.rep("[", n) .. string.rep("]", n) end

  it("accepts nesting up to cjson's limit (1000 levels)", function()
    local body = list_body(1536 * 1024):gsub(" ,\n ", " ," .. nested(998) .. ",", 1)
    server:script(LIST, { { status = 200, body = body } }, "GET")
    local page = assert(client.crm.accounts.list())
    local t, depth = page.data[2], 0
    while type(t) == "table" do t, depth = t[1], depth + 1 end
    assert.equal(998, depth)
  end)

  local invalid = {
    { "a trailing comma", function(b) return (b:gsub("%],\"meta\"", ",],\"meta\"")) end },
    { "an empty element", function(b) return (b:gsub(" ,\n ", " ,, ", 1)) end },
    { "text after the value", function(b) return b .. " x" end },
    { "a cut body", function(b) return b:sub(1, -3) end },
    { "a bracket that does not match", function(b) return (b:gsub("%],\"meta\"", "},\"meta\"")) end },
    { "a bad escape in a record", function(b) return (b:gsub('\\u00e9', '\\u00g9', 1)) end },
    { "nesting past cjson's limit", function(b) return (b:gsub(" ,\n ", " ," .. nested(999) .. ",", 1)) end },
    { "a key without a value", function(b) return (b:gsub('"next":"cursor%-2"', '"next":')) end },
  }
  for _, case in ipairs(invalid) do
    it("refuses " .. case[1] .. " as a small body is refused", function()
      local body = case[2]((list_body(1536 * 1024)))
      assert.has_error(function() cjson.decode(body) end)
      server:script(LIST, { { status = 200, body = body } }, "GET")
      local page, err = client.crm.accounts.list()
      assert.is_nil(page)
      assert.equal("decode", err.kind)
      assert.equal("the response body is not a JSON object", err.message)
      assert.equal(body:sub(1, 1024), err.text)
    end)
  end

  it("refuses a large body that is valid JSON but not an object", function()
    local body = list_body(1536 * 1024)
    body = body:match('^{"data":(.*),"meta"')
    assert.truthy(#body > 1024 * 1024)
    server:script(LIST, { { status = 200, body = body } }, "GET")
    local page, err = client.crm.accounts.list()
    assert.is_nil(page)
    assert.equal("decode", err.kind)
  end)

  it("keeps max_response_bytes to the byte", function()
    local body = list_body(1536 * 1024)
    local limit = #body + 100
    local c = fx.client(server, { max_response_bytes = limit })
    body = body:sub(1, -2) .. string.rep(" ", limit - #body) .. "}"
    assert.equal(limit, #body)
    server:script(LIST, { { status = 200, body = body }, { status = 200, body = body .. " " } }, "GET")
    local page = assert(c.crm.accounts.list())
    assert.equal("cursor-2", page.next)
    local _, err = c.crm.accounts.list()
    c:close()
    assert.equal("too_large", err.kind)
    assert.matches("max_response_bytes %(" .. limit .. "%)", err.message)
  end)

  it("decodes the retried attempt's body alone after a connection dropped mid-body", function()
    local first = list_body(4 * 1024 * 1024)
    local second, n = list_body(1536 * 1024, '"other":[1,2],')
    server:script(LIST, { { status = 200, body = first, close = "mid_body" },
                          { status = 200, body = second } }, "GET")
    local page, res = assert(client.crm.accounts.list())
    assert.equal(2, res.attempts)
    assert.equal(n, #page.data)
    assert.equal(tostring(n), page.data[n].id)
    assert.equal("cursor-2", page.next)
  end)
end)
