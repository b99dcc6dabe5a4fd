-- fuzz/seeds.lua: writes the hand-made seeds of fuzz/corpus/<target>/.
-- Run from the repository root: lua5.4 fuzz/seeds.lua
-- The files are committed; this script says how they were made and makes
-- new ones easy. Inputs that `make fuzz-merge` adds have hash names and
-- are kept as they are.
--
-- The query and body seeds are written in the byte language of the value
-- builder in fuzz/common.c (fz_push_object, fz_push_value): keep the two
-- in step.

local NULL = setmetatable({}, { __name = "null" })   -- stackone.null
local EMPTY_ARRAY = setmetatable({}, { __name = "[]" }) -- marked empty array

local function write(target, name, bytes)
  local path = ("fuzz/corpus/%s/%s"):format(target, name)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- ---- the builder's byte language ----
local value

local function raw_string(s)
  assert(#s < 256, "strings are at most 255 bytes")
  return string.char(#s) .. s
end

local function key(k)
  if math.type(k) == "integer" then
    return string.char(2, k)           -- an integer key 0..9
  end
  return string.char(1) .. raw_string(k) -- a key of raw bytes
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function object(t) -- what fz_push_object reads: a count, then pairs
  local keys = sorted_keys(t)
  assert(#keys <= 8, "at most 8 entries")
  local out = { string.char(#keys) }
  for _, k in ipairs(keys) do
    out[#out + 1] = key(k) .. value(t[k])
  end
  return table.concat(out)
end

function value(v)
  if v == NULL then return string.char(7) end
  if v == EMPTY_ARRAY then return string.char(10) end
  local ty = math.type(v) or type(v)
  if ty == "boolean" then
    return string.char(0, v and 1 or 0)
  elseif ty == "integer" then
    if v >= -128 and v < 128 then return string.char(1, v & 0xff) end
    return string.char(2) .. string.pack(">i8", v)
  elseif ty == "float" then
    return string.char(3) .. string.pack(">d", v)
  elseif ty == "string" then
    return string.char(5) .. raw_string(v)
  elseif ty == "table" then
    if #v > 0 then
      assert(#v <= 8, "at most 8 items")
      local out = { string.char(8, #v) }
      for i = 1, #v do out[#out + 1] = value(v[i]) end
      return table.concat(out)
    end
    return string.char(9) .. object(v)
  end
  error("no builder bytes for a " .. ty)
end

-- ---- headers: header blocks as libcurl collects them ----
local function block(lines)
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

write("headers", "created-201", block {
  "HTTP/2 201",
  "date: Wed, 21 Oct 2015 07:28:00 GMT",
  "content-type: application/json; charset=utf-8",
  "content-length: 97",
  "x-request-id: 9b2f3c1e-5d4a-4c7e-8f00-2a6b1d9e0c11",
  "strict-transport-security: max-age=31536000; includeSubDomains",
})
write("headers", "rate-limited-429", block {
  "HTTP/1.1 429 Too Many Requests",
  "Content-Type: application/json",
  "Retry-After: 120",
  "RateLimit-Limit: 100",
  "RateLimit-Remaining: 0",
  "RateLimit-Reset: 120",
  "Connection: keep-alive",
})
write("headers", "unavailable-503-date", block {
  "HTTP/1.1 503 Service Unavailable",
  "Retry-After: Wed, 21 Oct 2015 07:30:00 GMT",
  "Content-Length: 0",
})
write("headers", "continue-then-200", "HTTP/1.1 100 Continue\r\n\r\n" .. block {
  "HTTP/1.1 200 OK",
  "Content-Type: application/json",
  "Transfer-Encoding: chunked",
})
write("headers", "repeated-names", block {
  "HTTP/1.1 200 OK",
  "Set-Cookie: a=1; Path=/",
  "set-cookie: b=2",
  "Vary: Accept-Encoding",
  "VARY: Origin",
  "Retry-After: 5",
  "retry-after: 7",
})
write("headers", "odd-spacing", "HTTP/1.1 400 Bad Request\n" ..
  "X-Empty:\n" ..
  "X-Tabs:\t\tvalue\t \r\n" ..
  " folded continuation line\r\n" ..
  ":no-name\r\n" ..
  "no colon at all\r\n" ..
  "Content-Type :application/problem+json\r\n" ..
  "retry-after:   3   \r\n")
write("headers", "long-name", "HTTP/1.1 200 OK\r\n" .. ("X" .. ("-a"):rep(140)) ..
  ": v\r\n" .. ("y"):rep(255) .. ": w\r\n\r\n")
write("headers", "binary", "HTTP/1.1 200\r\n\0\1\2: \255\254\r\nA\0B: C\0D\r\nHTTP/x: y\r\na:")
write("headers", "empty", "")

-- ---- Retry-After values ----
local retry = {
  ["seconds"] = "120",
  ["zero"] = "0",
  ["spaces"] = " \t5 \r\n",
  ["huge"] = "99999999999999999999",
  ["nine-digits"] = "123456789",
  ["imf-fixdate"] = "Wed, 21 Oct 2015 07:28:00 GMT",
  ["imf-fixdate-later"] = "Wed, 21 Oct 2015 07:30:00 GMT",
  ["rfc850"] = "Wednesday, 21-Oct-15 07:28:00 GMT",
  ["asctime"] = "Wed Oct 21 07:28:00 2015",
  ["past"] = "Thu, 01 Jan 1970 00:00:00 GMT",
  ["far-future"] = "Fri, 31 Dec 9999 23:59:59 GMT",
  ["offset"] = "Wed, 21 Oct 2015 09:28:00 +0200",
  ["negative"] = "-1",
  ["fraction"] = "1.5",
  ["word"] = "soon",
  ["nul-inside"] = "120\0junk",
  ["blank"] = "   ",
}
for name, v in pairs(retry) do write("retry_after", name, v) end

-- ---- url: '0' base URL ('a' allows http, 'b' does not), '1' path,
-- '2' query; see fuzz/url.c ----
local bases = {
  ["base-https"] = "bhttps://api.stackone.com",
  ["base-slash"] = "bhttps://api.stackone.com/",
  ["base-prefix"] = "bhttps://gateway.example.com/stackone/v1//",
  ["base-localhost"] = "bhttp://localhost:4010",
  ["base-loopback"] = "bhttp://127.0.0.1:8080/prefix/",
  ["base-ipv6"] = "bhttp://[::1]:4010",
  ["base-loopback-numeric"] = "bhttp://2130706433/",
  ["base-loopback-lookalike"] = "bhttp://127.0.0.1.attacker.example:8080",
  ["base-http-refused"] = "bhttp://api.stackone.com",
  ["base-http-allowed"] = "ahttp://10.0.0.7:8080",
  ["base-credentials"] = "bhttps://user:secret@api.stackone.com",
  ["base-query"] = "bhttps://api.stackone.com/?x=1",
  ["base-fragment"] = "bhttps://api.stackone.com/#top",
  ["base-ftp"] = "bftp://api.stackone.com",
  ["base-garbage"] = "bnot a url",
  ["base-dots"] = "bhttps://api.stackone.com/a/../b/./c",
  ["base-encoded"] = "bhttps://api.stackone.com/%2e%2E/%2F",
}
for name, v in pairs(bases) do write("url", name, "0" .. v) end
-- path: an operation byte, its index in so_operations modulo 10 (G =
-- contacts.get, H = contacts.update, J = accounts.get, L = lists.get,
-- N = definitions.get, I = contacts.list)
-- then 'x' (an id follows) or '7' (a NULL id)
local paths = {
  ["path-id"] = "Gxc0nt4ct-123_~.x",
  ["path-slash"] = "Gxa/b",
  ["path-dotdot-slash"] = "Hx../x",
  ["path-percent-nul"] = "Jx%00",
  ["path-dot"] = "Lx.",
  ["path-dotdot"] = "Nx..",
  ["path-three-dots"] = "Nx...",
  ["path-empty"] = "Gx",
  ["path-null"] = "G7",
  ["path-binary"] = "Gx\0\255?#&= \r\n",
  ["path-no-slot"] = "Ixignored",
}
for name, v in pairs(paths) do write("url", name, "1" .. v) end
-- query: an operation byte (I = contacts.list, A = accounts.list,
-- G = contacts.get), 'x' (a table follows), then builder bytes
local queries = {
  ["query-list"] = { "I", {
    fields = { "id", "first_name", "emails" },
    page_size = 50,
    filter = { updated_after = "2024-01-01T00:00:00Z" },
    next = "c3VyZQ==",
    raw = true,
    include = "custom_fields",
  } },
  ["query-proxy"] = { "A", {
    proxy = { a = { b = "c" }, list = { "1", "2" }, ["x y"] = { ["&"] = "=" } },
    page = 2,
    updated_after = "2024-01-01T00:00:00Z",
  } },
  ["query-deep-proxy"] = { "A", {
    proxy = { a = { b = { c = { d = { e = { f = { g = { h = { i = "j" } } } } } } } } },
  } },
  ["query-bad"] = { "G", { page_size = 0, fields = 7, unknown = "x" } },
  ["query-filter-typo"] = { "I", { filter = { updated_afer = "2024" } } },
  ["query-empty-next"] = { "I", { next = "", fields = EMPTY_ARRAY } },
}
for name, q in pairs(queries) do
  write("url", name, "2" .. q[1] .. "x" .. object(q[2]))
end

-- ---- json: '0' decode a response body; '1' encode a body without a
-- schema, '2' with the contact schema, '3' with the custom field one ----
local bodies = {
  ["contact"] = table.concat {
    [[{"data":{"id":"c0nt4ct-123","remote_id":"8187e5da","first_name":"Steve",]],
    [["last_name":"Wozniak","company_name":"Apple","emails":["steve@apple.com"],]],
    [["phone_numbers":["+14155552671"],"deal_ids":[],"account_ids":null,]],
    [["custom_fields":[{"id":"8187e5da-dc77-475e-9949-af0f1fa4e4e3",]],
    [["name":"Training Completion Status","value":"Completed","value_id":"value_456",]],
    [["remote_value_id":"e3cb75bf"}],"created_at":"2021-01-01T01:01:01.000Z",]],
    [["updated_at":"2021-01-01T01:01:01.000Z"},"raw":[]}]],
  },
  ["page"] = [[{"next":"c3VyZQ==","data":[{"id":"a","first_name":null},{"id":"b","emails":[]}]}]],
  ["created"] = table.concat {
    [[{"statusCode":201,"message":"Record created successfully",]],
    [["timestamp":"2021-01-01T01:01:01.000Z","data":{"id":"7b3a"}}]],
  },
  ["error"] = table.concat {
    [[{"statusCode":400,"message":"Bad Request","timestamp":"2023-05-30T00:00:00.000Z",]],
    [["data":{"statusCode":400,"message":["first_name must be a string"]},]],
    [["provider_errors":[{"status":400,"url":"https://api.someprovider.com/v1/endpoint",]],
    [["raw":{"error":"Bad Request"},"headers":{"date":"Tue, 02 Apr 2024 13:52:01 GMT"}}]}]],
  },
  ["numbers"] = "[0,-0,1.0,1.5,-2,1e2,12345678901234567890,9007199254740993,"
    .. "1e308,1e400,-1e-400,5e-324]",
  ["strings"] = [["a\"b\\c\/d\b\f\n\r\t\u0000\u00e9\ud83d\ude00\u2028"]],
  ["nested"] = ("["):rep(60) .. ("]"):rep(60),
  ["nested-objects"] = ('{"a":'):rep(40) .. "null" .. ("}"):rep(40),
  ["scalar"] = "5",
  ["bad"] = [[{"a":1,}]],
  ["bad-escape"] = [["\ud800"]],
  ["empty"] = "",
}
for name, v in pairs(bodies) do write("json", "decode-" .. name, "0" .. v) end
local encodes = {
  ["any"] = { "1", {
    a = "text", n = 12, f = 1.5, big = 12345678901234567, tiny = 5e-324,
    null = NULL, list = { 1, "two", true }, empty = EMPTY_ARRAY,
  } },
  ["nested"] = { "1", { a = { b = { c = { d = { 1, { e = "\u{e9}" } } } } } } },
  ["bad-utf8"] = { "1", { a = "\255[]", b = "\xed\xa0\x80" } },
  ["contact"] = { "2", {
    first_name = "Steve", last_name = "Wozniak", company_name = "Apple",
    emails = { "steve@apple.com" }, deal_ids = EMPTY_ARRAY,
    custom_fields = { { name = "Training", value = { 1, 2 } }, { id = "x", value = NULL } },
    passthrough = { other_known_names = "My Other Name", n = 0.1 },
  } },
  ["contact-unknown-field"] = { "2", { first_nme = "Steve", emails = "x" } },
  ["contact-nul-key"] = { "2", { ["first_name\0x"] = "Steve" } },
  ["custom-field"] = { "3", { id = "8187e5da", name = "Status", value = "Completed" } },
}
for name, e in pairs(encodes) do write("json", "encode-" .. name, e[1] .. object(e[2])) end
