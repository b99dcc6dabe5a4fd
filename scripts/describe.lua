--- Generates the editor types (types/stackone.lua) and the API reference
-- (docs/reference.md) from the one description of the API: the module's
-- exports (stackone.operations from src/ops.c, core.options,
-- core.custom_field_fields), the vendored spec
-- (spec/data/stackone-crm.openapi.json) and scripts/describe/known.lua.
--
--   lua5.4 scripts/describe.lua           regenerate both (make describe)
--   lua5.4 scripts/describe.lua --check   write nothing; exit 1 naming each
--                                         file that is not current
--   --out DIR                             the files under DIR instead of
--                                         the checkout
--
-- The module comes from STACKONE_BUILD (default <checkout>/build: `make`)
-- and <checkout>/lua. It runs on Lua 5.1 to 5.5 and LuaJIT.
-- the checkout: the directory above this script's
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local root = here == "scripts" and "." or here .. "/.."
local build = os.getenv("STACKONE_BUILD") or (root .. "/build")
package.path = ("%s/scripts/?.lua;%s/lua/?.lua;%s/lua/?/init.lua;"):format(
  root, root, root) .. package.path
package.cpath = build .. "/?.so;" .. package.cpath

local check, out = false, root
local i = 1
while arg and arg[i] do
  if arg[i] == "--check" then
    check = true
  elseif arg[i] == "--out" and arg[i + 1] then
    out = arg[i + 1]
    i = i + 1
  else
    io.stderr:write("usage: lua5.4 scripts/describe.lua [--check] [--out DIR]\n")
    os.exit(2)
  end
  i = i + 1
end

local describe = require("describe.generate")
local ok, files = pcall(function() return describe.generate(describe.inputs(root)) end)
if not ok then
  io.stderr:write(tostring(files), "\n")
  os.exit(1)
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local stale = 0
for _, name in ipairs(describe.FILES) do
  local path = out .. "/" .. name
  if read(path) ~= files[name] then
    if check then
      stale = stale + 1
      io.stdout:write(name, " is not current: run `make describe` (lua5.4 scripts/describe.lua)\n")
    else
      os.execute(("mkdir -p '%s'"):format((path:match("^(.*)/[^/]*$") or "."):gsub("'", "'\\''")))
      local f = assert(io.open(path, "wb"))
      f:write(files[name])
      f:close()
      io.stdout:write("wrote ", name, "\n")
    end
  end
end
os.exit(stale == 0 and 0 or 1)
