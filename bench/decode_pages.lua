-- Case 3, the baseline: a bare lua-cjson decode of the same pages the SDK
-- walks (saved by bench/run.lua, one JSON page per line), stopping after
-- LIMIT contacts. LIMIT 0 only loads lua-cjson: the start-up cost to subtract.
--   lua5.4 bench/decode_pages.lua PAGES_FILE LIMIT
-- Prints "RESULT n=<contacts seen> cpu_us=<os.clock() over the decode>".
local cjson = require("cjson")

local path, limit = arg[1], math.tointeger(tonumber(arg[2]))
local decode = cjson.decode

local n, bytes = 0, 0
local c0 = os.clock()
if limit > 0 then
  local f = assert(io.open(path, "rb"))
  for line in f:lines() do
    local page = decode(line)
    for _, contact in ipairs(page.data) do
      n = n + 1
      bytes = bytes + #contact.id
      if n >= limit then break end
    end
    if n >= limit then break end
  end
  f:close()
end
local cpu = os.clock() - c0
assert(n == 0 or bytes > 0)
print(string.format("RESULT n=%d cpu_us=%d", n, math.floor(cpu * 1e6 + 0.5)))
