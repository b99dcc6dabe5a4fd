-- JSON for the test server: a decoder that keeps what lua-cjson 2.1.0 loses
-- (array vs object for empty containers, integers vs floats, null vs absent)
-- and an encoder that writes it back faithfully.
--
--   * decoded arrays carry json.array_mt, so `[]` re-encodes as `[]`;
--   * JSON null decodes to json.null (absent keys stay nil);
--   * decoded objects keep their key order (a `__jsonorder` metatable);
--   * integral numbers without '.'/exponent decode to Lua integers;
--   * an object whose metatable has `__jsonorder` (a list of keys) is
--     written with exactly those keys, in that order, skipping nil values.
local json = {}

local byte, sub, find, format, gsub = string.byte, string.sub, string.find, string.format, string.gsub
local compat = require("stackone.server.compat")
local concat, floor, mtype, tointeger = table.concat, math.floor, compat.mtype, compat.tointeger
local utf8_char, utf8_len = compat.utf8_char, compat.utf8_len

local MAX_DEPTH = 200

local array_mt = { __name = "json.array" }
json.array_mt = array_mt
json.null = setmetatable({}, { __name = "json.null", __tostring = function() return "null" end })
local null = json.null

--- Mark t (or a new table) as a JSON array.
function json.array(t)
  return setmetatable(t or {}, array_mt)
end

--- A metatable that makes objects encode with the given keys in that order.
function json.order_mt(keys)
  return { __jsonorder = keys }
end

function json.is_array(v)
  return type(v) == "table" and getmetatable(v) == array_mt
end

--- A decoded JSON object (a table that is neither an array nor null).
function json.is_object(v)
  if type(v) ~= "table" or v == null then return false end
  local mt = getmetatable(v)
  return mt == nil or mt.__jsonorder ~= nil
end

---------------------------------------------------------------------------
-- Encoder
---------------------------------------------------------------------------

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}
for i = 0, 31 do
  local c = string.char(i)
  if not escapes[c] then escapes[c] = format("\\u%04x", i) end
end
escapes["\127"] = "\\u007f"

local function latin1_escape(c)
  return format("\\u%04x", byte(c))
end

local function quote(s)
  if find(s, '[%c"\\]') then s = gsub(s, '[%c"\\]', escapes) end
  if find(s, "[\128-\255]") and not utf8_len(s) then
    -- Not valid UTF-8 (e.g. a raw request body): keep it representable.
    s = gsub(s, "[\128-\255]", latin1_escape)
  end
  return '"' .. s .. '"'
end
json.quote = quote

local function number(x)
  if mtype(x) == "integer" then return format("%d", x) end
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then
    return format("%d", x)
  end
  local s = format("%.14g", x)
  if tonumber(s) ~= x then s = format("%.17g", x) end
  return s
end

local encode_value

local function encode_table(v, buf, n, depth)
  if depth > MAX_DEPTH then error("json.encode: nesting too deep", 0) end
  local mt = getmetatable(v)
  local order = mt and mt.__jsonorder
  local first = true
  if order then
    n = n + 1; buf[n] = "{"
    for i = 1, #order do
      local k = order[i]
      local x = v[k]
      if x ~= nil then
        n = n + 1; buf[n] = first and (quote(k) .. ":") or ("," .. quote(k) .. ":")
        first = false
        n = encode_value(x, buf, n, depth + 1)
      end
    end
    n = n + 1; buf[n] = "}"
    return n
  end
  local len = #v
  local is_array = mt == array_mt
  if not is_array and len > 0 then
    -- Unmarked table: a proper sequence is an array, anything else an object.
    local count = 0
    for _ in pairs(v) do count = count + 1 end
    is_array = count == len
  end
  if is_array then
    n = n + 1; buf[n] = "["
    for i = 1, len do
      if i > 1 then n = n + 1; buf[n] = "," end
      n = encode_value(v[i], buf, n, depth + 1)
    end
    n = n + 1; buf[n] = "]"
    return n
  end
  n = n + 1; buf[n] = "{"
  for k, x in pairs(v) do
    n = n + 1; buf[n] = first and (quote(tostring(k)) .. ":") or ("," .. quote(tostring(k)) .. ":")
    first = false
    n = encode_value(x, buf, n, depth + 1)
  end
  n = n + 1; buf[n] = "}"
  return n
end

encode_value = function(v, buf, n, depth)
  local t = type(v)
  if t == "string" then
    n = n + 1; buf[n] = quote(v)
  elseif t == "number" then
    n = n + 1; buf[n] = number(v)
  elseif t == "boolean" then
    n = n + 1; buf[n] = v and "true" or "false"
  elseif v == nil or v == null then
    n = n + 1; buf[n] = "null"
  elseif t == "table" then
    n = encode_table(v, buf, n, depth)
  else
    error("json.encode: cannot encode a " .. t, 0)
  end
  return n
end

--- Encode a Lua value as a compact JSON text.
function json.encode(v)
  local buf = {}
  local n = encode_value(v, buf, 0, 0)
  return concat(buf, "", 1, n)
end

---------------------------------------------------------------------------
-- Decoder
---------------------------------------------------------------------------

local function fail(s, i, what)
  error(format("%s at byte %d", what, i > #s and #s + 1 or i), 0)
end

local function skip_ws(s, i)
  local _, e = find(s, "^[ \t\r\n]*", i)
  return e + 1
end

local unescape = {
  [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f",
  [110] = "\n", [114] = "\r", [116] = "\t",
}

local function parse_string(s, i)
  -- s:byte(i) is the opening quote
  local j = i + 1
  local parts, np = nil, 0
  while true do
    local k = find(s, '["\\%z\1-\31]', j)
    if not k then fail(s, i, "unterminated string") end
    local c = byte(s, k)
    if c == 34 then
      local piece = sub(s, j, k - 1)
      if parts then
        np = np + 1; parts[np] = piece
        piece = concat(parts, "", 1, np)
      end
      return piece, k + 1
    elseif c == 92 then
      parts = parts or {}
      np = np + 1; parts[np] = sub(s, j, k - 1)
      local e = byte(s, k + 1)
      if e == 117 then -- \uXXXX
        local hex = sub(s, k + 2, k + 5)
        if not find(hex, "^%x%x%x%x$") then fail(s, k, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        j = k + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = find(s, "^\\u[dD][c-fC-F]%x%x", j) and tonumber(sub(s, j + 2, j + 5), 16)
          if lo then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            j = j + 6
          else
            cp = 0xFFFD
          end
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          cp = 0xFFFD
        end
        np = np + 1; parts[np] = utf8_char(cp)
      else
        local r = e and unescape[e]
        if not r then fail(s, k, "bad escape") end
        np = np + 1; parts[np] = r
        j = k + 2
      end
    else
      fail(s, k, "control character in string")
    end
  end
end

local function parse_number(s, i)
  local _, e = find(s, "^-?%d+", i)
  if not e then fail(s, i, "unexpected character") end
  local digits_start = byte(s, i) == 45 and i + 1 or i
  if byte(s, digits_start) == 48 and e > digits_start then fail(s, i, "leading zero") end
  local is_float = false
  if byte(s, e + 1) == 46 then -- '.'
    local _, fe = find(s, "^%d+", e + 2)
    if not fe then fail(s, e + 1, "bad number") end
    e, is_float = fe, true
  end
  local c = byte(s, e + 1)
  if c == 101 or c == 69 then -- e/E
    local _, ee = find(s, "^[eE][+-]?%d+", e + 1)
    if not ee then fail(s, e + 1, "bad exponent") end
    e, is_float = ee, true
  end
  local text = sub(s, i, e)
  local v = tonumber(text)
  if not is_float then v = tointeger(v) or v end
  return v, e + 1
end

local parse_value

local function parse_array(s, i, depth)
  local arr, n = setmetatable({}, array_mt), 0
  i = skip_ws(s, i + 1)
  if byte(s, i) == 93 then return arr, i + 1 end
  while true do
    local v
    v, i = parse_value(s, i, depth)
    n = n + 1; arr[n] = v
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 93 then return arr, i + 1 end
    if c ~= 44 then fail(s, i, "expected ',' or ']'") end
    i = skip_ws(s, i + 1)
  end
end

local function parse_object(s, i, depth)
  local obj, keys, nk = {}, {}, 0
  setmetatable(obj, { __jsonorder = keys }) -- keep the sender's key order
  i = skip_ws(s, i + 1)
  if byte(s, i) == 125 then return obj, i + 1 end
  while true do
    if byte(s, i) ~= 34 then fail(s, i, "expected a string key") end
    local k
    k, i = parse_string(s, i)
    i = skip_ws(s, i)
    if byte(s, i) ~= 58 then fail(s, i, "expected ':'") end
    local v
    v, i = parse_value(s, skip_ws(s, i + 1), depth)
    if obj[k] == nil then nk = nk + 1; keys[nk] = k end
    obj[k] = v
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 125 then return obj, i + 1 end
    if c ~= 44 then fail(s, i, "expected ',' or '}'") end
    i = skip_ws(s, i + 1)
  end
end

parse_value = function(s, i, depth)
  local c = byte(s, i)
  if c == 34 then return parse_string(s, i) end
  if c == 123 or c == 91 then
    if depth >= MAX_DEPTH then fail(s, i, "nesting too deep") end
    if c == 123 then return parse_object(s, i, depth + 1) end
    return parse_array(s, i, depth + 1)
  end
  if c == 116 and sub(s, i, i + 3) == "true" then return true, i + 4 end
  if c == 102 and sub(s, i, i + 4) == "false" then return false, i + 5 end
  if c == 110 and sub(s, i, i + 3) == "null" then return null, i + 4 end
  if c == 45 or (c and c >= 48 and c <= 57) then return parse_number(s, i) end
  if c == nil then fail(s, i, "unexpected end of input") end
  fail(s, i, "unexpected character")
end

--- Decode a JSON text. Returns value, or nil and an error message.
function json.decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  if find(s, "[\128-\255]") and not utf8_len(s) then return nil, "invalid UTF-8" end
  local ok, v, i = pcall(function()
    local v, i = parse_value(s, skip_ws(s, 1), 0)
    return v, skip_ws(s, i)
  end)
  if not ok then return nil, v end
  if i <= #s then return nil, format("trailing data at byte %d", i) end
  return v
end

return json
