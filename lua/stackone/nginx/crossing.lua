--- What crosses between nginx's worker VM and a thread VM
-- (ngx.run_worker_thread copies only nil, booleans, numbers, strings,
-- light userdata and tables, and drops metatables). The SDK's marked
-- tables, stackone.array{...} and error objects, travel as plain tables
-- tagged with their kind and get their metatable back on the other side,
-- so an error object is the same object in both VMs. Used by both sides.
local core = require("stackone.core")

local crossing = {}

-- a key no JSON or user value holds: the kind of a tagged table
local TAG = "\0stackone.kind"

local KIND_OF = { [core.array_mt] = "array", [core.error_mt] = "error" }
local MT_OF = { array = core.array_mt, error = core.error_mt }

local function where(path, key)
  if type(key) == "string" and key:match("^[%a_][%w_]*$") then return path .. "." .. key end
  return path .. "[" .. tostring(key) .. "]"
end

local pack

local function pack_table(t, path, ancestors)
  if ancestors[t] then return nil, path .. " holds itself (a cycle)", "cycle" end
  ancestors[t] = true
  local out = {}
  for k, v in pairs(t) do
    local kt = type(k)
    if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
      ancestors[t] = nil
      return nil, path .. " has a key that is a " .. kt, "type"
    end
    local vp, problem, why = pack(v, where(path, k), ancestors)
    if problem then ancestors[t] = nil; return nil, problem, why end
    out[k] = vp
  end
  ancestors[t] = nil
  local kind = KIND_OF[getmetatable(t)]
  if kind then out[TAG] = kind end
  return out
end

--- a copy of value that can cross, or nil, problem, why: why is "type"
-- (a function, userdata, a coroutine, a table as a key: a mistake in the
-- caller's code) or "cycle" (a table holding itself: bad content, as the
-- SDK says of it). path names value in the problem ("argument #1").
function pack(value, path, ancestors)
  local kind = type(value)
  if kind == "table" then return pack_table(value, path, ancestors or {}) end
  if kind == "nil" or kind == "boolean" or kind == "number" or kind == "string" or value == core.null then
    return value
  end
  return nil, path .. " is a " .. kind, "type"
end
crossing.pack = pack

--- gives the tagged tables in value (a fresh copy made by the crossing)
-- their metatables back, in place; returns value
function crossing.unpack(value)
  if type(value) ~= "table" then return value end
  for _, v in pairs(value) do crossing.unpack(v) end
  local kind = value[TAG]
  if kind then
    value[TAG] = nil
    setmetatable(value, MT_OF[kind])
  end
  return value
end

return crossing
