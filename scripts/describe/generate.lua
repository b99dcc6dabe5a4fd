--- The generator of types/stackone.lua and docs/reference.md (run by
-- scripts/describe.lua; spec/types_spec.lua calls it directly too).
--
--   local describe = require("describe.generate")
--   local files = describe.generate(describe.inputs("."))  -- { [path] = text }
local model = require("describe.model")
local types = require("describe.types")
local reference = require("describe.reference")

local D = {}

--- the generated files, in order
D.FILES = { "types/stackone.lua", "docs/reference.md" }

D.SPEC = "spec/data/stackone-crm.openapi.json"
D.PLATFORM_SPEC = "spec/data/stackone-platform.openapi.json"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- the inputs, from the module on package.path/cpath and the spec under root
function D.inputs(root)
  local stackone = require("stackone")
  local core = require("stackone.core")
  local cjson = require("cjson")
  return {
    operations = stackone.operations,
    options = core.options,
    option_rows = core.option_rows,
    statuses = core.statuses,
    error_kinds = core.error_kinds,
    custom_field_fields = core.custom_field_fields,
    module = stackone,
    spec = cjson.decode(read((root or ".") .. "/" .. D.SPEC)),
    platform_spec = cjson.decode(read((root or ".") .. "/" .. D.PLATFORM_SPEC)),
  }
end

-- the end of a LuaCATS type expression that starts at i: at a space
-- outside brackets, unless the type goes on (after ':', ',' or '|')
local function type_end(s, i)
  local depth, last = 0, ""
  while i <= #s do
    local c = s:sub(i, i)
    if c:match("[%(<%[{]") then depth = depth + 1
    elseif c:match("[%)>%]}]") then depth = depth - 1
    elseif c:match("%s") and depth == 0 and not last:match("[:,|]") then return i - 1 end
    if not c:match("%s") then last = c end
    i = i + 1
  end
  return #s
end

--- the stackone.* type names a LuaCATS text uses and defines: used, defined
-- (sets), and where each used one first appears (line numbers)
function D.type_names(text)
  local used, defined, n = {}, {}, 0
  for l in text:gmatch("[^\n]*") do
    n = n + 1
    local tag, rest = l:match("^%-%-%-@(%a+)%s+(.*)$")
    local expr
    if tag == "class" or tag == "alias" then
      local name, after = rest:match("^([%w_.]+)%s*(.*)$")
      defined[name] = true
      expr = after:gsub("^:%s*", "")
    elseif tag == "field" or tag == "param" then
      expr = rest:match("^%S+%s+(.*)$")
    elseif tag == "return" or tag == "overload" then
      expr = rest
    elseif l:match("^%-%-%-|") then
      expr = l:match("^%-%-%-|%s*(.*)$")
    end
    if expr and expr ~= "" then
      for word in expr:sub(1, type_end(expr, 1)):gmatch("stackone[%w_.]*") do
        local name = word:gsub("%.$", "")
        used[name] = used[name] or n
      end
    end
  end
  return used, defined
end

--- the files: { [path] = text }. Raises when the description and the
-- knowledge disagree, or the types use a class they do not define.
function D.generate(input)
  local m = model.model(input)
  local t = types(m)
  local used, defined = D.type_names(t)
  for _, name in ipairs(model.sorted_keys(used)) do
    if not defined[name] then
      error(("scripts/describe: types/stackone.lua uses %s (line %d), which it does not define"):format(
        name, used[name]), 0)
    end
  end
  return { ["types/stackone.lua"] = t, ["docs/reference.md"] = reference(m) }
end

return D
