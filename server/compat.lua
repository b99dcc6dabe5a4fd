-- What the server needs of Lua 5.3 and 5.4 on every Lua it runs on (5.1,
-- LuaJIT, 5.2, 5.3, 5.4). On 5.3 and 5.4 these are the language's own
-- operator and functions, so the server behaves there exactly as it
-- always did. Before 5.3 every number is a double: integers are exact up
-- to 2^53, which is all the server computes with; an integer past 2^53 in
-- a request body is kept as the nearest double there (see README.md).
local compat = {}

local floor, byte, char = math.floor, string.byte, string.char

if math.type then -- Lua 5.3, 5.4
  -- `//` is a syntax error before 5.3, so it is compiled only here
  compat.idiv = assert(load("return function(a, b) return a // b end"))()
  compat.tointeger, compat.mtype = math.tointeger, math.type
  compat.utf8_char, compat.utf8_len = utf8.char, utf8.len
  return compat
end

--- a // b
function compat.idiv(a, b)
  return floor(a / b)
end

--- x when it is a whole number that fits in 64 bits, else nil
function compat.tointeger(x)
  if type(x) == "number" and x == floor(x) and x >= -2 ^ 63 and x < 2 ^ 63 then return x end
  return nil
end

--- "float" for every number: there is no integer subtype before 5.3
function compat.mtype(x)
  if type(x) == "number" then return "float" end
  return nil
end

--- the UTF-8 bytes of code point cp (0..0x10FFFF)
function compat.utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

-- the smallest code point of a sequence of 2, 3 or 4 bytes (shorter ones are overlong)
local MIN_CP = { nil, 0x80, 0x800, 0x10000 }

--- the number of characters of s, or nil and the position of the first
-- byte that is not valid UTF-8 (as Lua 5.4's utf8.len: no overlong forms,
-- no surrogates, nothing past 0x10FFFF)
function compat.utf8_len(s)
  local n, i, len = 0, 1, #s
  while i <= len do
    local c = byte(s, i)
    if c >= 0x80 then
      if c < 0xC0 or c > 0xF7 then return nil, i end
      local size, cp
      if c >= 0xF0 then size, cp = 4, c - 0xF0
      elseif c >= 0xE0 then size, cp = 3, c - 0xE0
      else size, cp = 2, c - 0xC0 end
      for k = 1, size - 1 do
        local b = byte(s, i + k)
        if not b or b < 0x80 or b > 0xBF then return nil, i end
        cp = cp * 0x40 + (b - 0x80)
      end
      if cp < MIN_CP[size] or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil, i end
      i = i + size
    else
      i = i + 1
    end
    n = n + 1
  end
  return n
end

return compat
