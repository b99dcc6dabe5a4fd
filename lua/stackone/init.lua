--- stackone: the public Lua module of the StackOne CRM client.
-- The C core (stackone.core) owns the wire: transport, auth, URLs, JSON and
-- errors. This layer builds `client.crm.<group>.<name>` from the core's
-- operation table and adds the ergonomics: `each` iterators and custom
-- fields by name.
local core = require("stackone.core")
local engine = require("stackone.engine")
local paging = require("stackone.paging")
local custom_fields = require("stackone.custom_fields")
local unpack = require("stackone.compat").unpack

local stackone = {
  _VERSION = core._VERSION,
  --- send an explicit JSON null: `{ first_name = stackone.null }`
  null = core.null,
  --- true when x is an error object returned as `nil, err`
  is_error = core.is_error,
  --- the operations of the API as data (group, name, method, path, ...)
  operations = core.operations,
  --- the value of a returned record's custom field, by id or name
  custom_field = custom_fields.value,
  --- { [name] = value } of a returned record's custom fields
  custom_fields = custom_fields.map,
  --- adapters for the client option `loop`: stackone.loop.luv(uv), stackone.loop.cqueues()
  loop = require("stackone.loop"),
}

--- marks a table as a JSON array, so that an empty one goes out as `[]`
function stackone.array(t)
  return setmetatable(t or {}, core.array_mt)
end

-- a call: the core checks the arguments and makes a job, the driver runs
-- it (blocking, or yielding to the client's loop). group:create{...}
-- works like group.create{...}, as callers of lua-openai or pgmoon would
-- write it. The public function is one frame, so the core's errors point
-- at the caller's line.
local function bind(handle, op, driver, prepare, group)
  local start, index, run = handle._start, op.index, driver.run
  local name = "crm." .. op.group .. "." .. op.name
  return function(...)
    driver.check(name)
    local colon = rawequal((...), group)
    local job, err
    local args, perr = false, nil
    if prepare then
      if colon then args, perr = prepare(select(2, ...)) else args, perr = prepare(...) end
    end
    if args == nil then return nil, perr end
    if args then
      job, err = start(handle, index, unpack(args, 1, args.n))
    elseif colon then
      job, err = start(handle, index, select(2, ...))
    else
      job, err = start(handle, index, ...)
    end
    if not job then return nil, err end
    return run(job)
  end
end

-- the argument position of the body, for operations that send one
local BODY_ARG = { create = 1, update = 2 }

-- how bulk items carry their fields
local BULK = {
  create = {
    fields_of = function(record) return record end,
    rebuild = function(_, fields) return fields end,
  },
  update = {
    fields_of = function(change) return type(change) == "table" and change.fields or nil end,
    rebuild = function(change, fields) return { id = change.id, fields = fields } end,
  },
}

-- the options of a bulk call that also apply to fetching definitions:
-- all but the bulk call's own
local function request_options(opts)
  if opts == nil then return nil end
  local out = {}
  for k, v in pairs(opts) do
    if k ~= "concurrency" and k ~= "on_progress" then out[k] = v end
  end
  return out
end

local function bind_many(handle, op, definitions, driver, group)
  local start_many, index, bulk, run = handle._start_many, op.index, BULK[op.kind], driver.run
  local name = "crm." .. op.group .. "." .. op.name .. "_many"
  local function invalid(message) return core.invalid_error(index, message) end
  return function(items, opts, ...)
    if rawequal(items, group) then items, opts = opts, ... end
    if type(items) ~= "table" then
      error("bad argument #1 to '" .. name .. "' (table expected, got " .. type(items) .. ")", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #2 to '" .. name .. "' (table of options expected, got " .. type(opts) .. ")", 2)
    end
    driver.check(name)
    local prepared = custom_fields.prepare_many(items, bulk.fields_of, bulk.rebuild, definitions.get, invalid,
      request_options(opts))
    local job, err = start_many(handle, index, prepared, opts)
    if not job then return nil, err end
    return run(job)
  end
end

-- how the client's calls wait: blocking, or in the host's loop
local function new_driver(handle, loop)
  if not loop then
    return { run = engine.run, check = function() end }
  end
  local run, on_close = engine.loop_driver(handle, loop)
  handle:_on_close(on_close)
  return {
    run = run,
    check = function(name)
      if not engine.in_coroutine() then
        error(name .. ": a client with a loop must be called from a coroutine that the loop resumes "
          .. "(the call yields while its requests are on the network)", 3)
      end
    end,
  }
end

local function build_crm(handle, driver)
  local crm = {}
  -- the definitions are read through crm's own each, bound below
  local definitions = custom_fields.cache(function(...)
    return crm.contact_custom_field_definitions.each(...)
  end, core.is_error)
  for _, op in ipairs(core.operations) do
    local group = crm[op.group] or {}
    crm[op.group] = group
    local prepare
    if op.group == "contacts" and BODY_ARG[op.kind] then
      local index = op.index
      prepare = custom_fields.preparer(BODY_ARG[op.kind], definitions.get,
        function(message) return core.invalid_error(index, message) end)
      group[op.name .. "_many"] = bind_many(handle, op, definitions, driver, group)
    end
    group[op.name] = bind(handle, op, driver, prepare, group)
    if op.kind == "list" then
      local index = op.index
      group.each = paging.each(group.list, "crm." .. op.group .. ".each",
        function(message) return core.invalid_error(index, message) end, group)
    end
  end
  crm.contact_custom_field_definitions.refresh = definitions.refresh
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
  members.crm = build_crm(handle, new_driver(handle, rawget(opts, "loop")))
  return handle
end

return stackone
