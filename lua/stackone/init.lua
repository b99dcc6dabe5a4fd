--- stackone: the public Lua module of the StackOne CRM client.
-- The C core (stackone.core) owns the wire: transport, auth, URLs, JSON and
-- errors. This layer only builds `client.crm.<group>.<name>` from the core's
-- operation table.
local core = require("stackone.core")

local stackone = {
  _VERSION = core._VERSION,
  --- send an explicit JSON null: `{ first_name = stackone.null }`
  null = core.null,
  --- true when x is an error object returned as `nil, err`
  is_error = core.is_error,
  --- the operations of the API as data (group, name, method, path, ...)
  operations = core.operations,
}

--- marks a table as a JSON array, so that an empty one goes out as `[]`
function stackone.array(t)
  return setmetatable(t or {}, core.array_mt)
end

local function bind(handle, op)
  local call, index = handle.call, op.index
  return function(...)
    return call(handle, index, ...)
  end
end

local function build_crm(handle)
  local crm = {}
  for _, op in ipairs(core.operations) do
    local group = crm[op.group] or {}
    crm[op.group] = group
    group[op.name] = bind(handle, op)
  end
  return crm
end

--- stackone.new{ api_key = ..., account_id = ..., ... } -> client | nil, err
function stackone.new(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'stackone.new' (table expected, got " .. type(opts) .. ")", 2)
  end
  local members = {}
  local handle, err = core.new(opts, members)
  if not handle then
    return nil, err
  end
  members.crm = build_crm(handle)
  return handle
end

return stackone
