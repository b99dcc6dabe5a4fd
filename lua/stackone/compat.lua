--- What the Lua layer needs of Lua 5.2+ on every version it runs on
-- (5.1, LuaJIT, 5.2, 5.3, 5.4).
local compat = {}

compat.unpack = table.unpack or rawget(_G, "unpack")

function compat.pack(...)
  return { n = select("#", ...), ... }
end

return compat
