--- stackone: the public Lua module of the StackOne CRM client.
-- The C core (stackone.core) owns the wire: transport, auth, URLs, JSON and
-- errors. This layer builds `client.crm.<group>.<name>` from the core's
-- description of the API (core.operations), owns the public names and the
-- frames programmer errors are reported at (with public.lua), and adds the
-- ergonomics: `each` iterators and custom fields by name.
local core = require("stackone.core")
local engine = require("stackone.engine")
local paging = require("stackone.paging")
local custom_fields = require("stackone.custom_fields")
local public = require("stackone.public")
local loop_check = require("stackone.loop.check")
local limit_budget = require("stackone.limit.budget")
local unpack = require("stackone.compat").unpack

local fail = public.fail

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
  --- adapters for the client option `loop`: stackone.loop.luv(uv), .neovim(), .cqueues()
  loop = require("stackone.loop"),
  --- stores for `rate_limit.shared`: stackone.limit.redis(conn), .host(), .ngx(dict)
  limit = require("stackone.limit"),
}

--- assert(call(...)) on every Lua: a call's results when it succeeded,
-- else raises its error object itself (Lua 5.1 and 5.2's own assert
-- takes only a string message, and raises about that instead)
function stackone.assert(value, err, ...)
  if value == nil or value == false then
    if err == nil then err = "assertion failed!" end
    error(err, 2)
  end
  return value, err, ...
end

--- marks a table as a JSON array, so that an empty one goes out as `[]`
function stackone.array(t)
  if t ~= nil and type(t) ~= "table" then
    public.raise("stackone.array", "table expected, got " .. type(t), 1)
  end
  return setmetatable(t or {}, core.array_mt)
end

-- The public names: crm.<group>.<name>, its _many form, each and refresh,
-- named here once and kept in the description.
local by_id = {}
for _, op in ipairs(core.operations) do
  local prefix = "crm." .. op.group .. "."
  op.public_name = prefix .. op.name
  if op.bulk then op.bulk.public_name = op.public_name .. "_many" end
  if op.page then op.each = prefix .. "each" end
  by_id[op.operation_id] = op
end
for _, op in ipairs(core.operations) do
  local list = by_id[op.custom_fields]
  if list then list.refresh = "crm." .. list.group .. ".refresh" end
end

local function position_of(op, arg)
  for i, a in ipairs(op.args) do
    if a == arg then return i end
  end
end

-- A call: the core checks the arguments and makes a job, the driver runs
-- it (blocking, or yielding to the client's loop). group:create{...}
-- works like group.create{...}, as callers of lua-openai or pgmoon would
-- write it. Every public function is the one frame above the user's code
-- and turns the usage errors under it into errors at the user's line.
local function bind(handle, op, driver, prepare, group)
  local start, check, index, run, name = handle._start, handle._check, op.index, driver.run, op.public_name
  return function(...)
    local first = rawequal((...), group) and 2 or 1
    local why = driver.check()
    if why then fail(name, why) end
    local ok, job, err
    if prepare and prepare.wants(select(first, ...)) then
      -- the definitions are fetched with the call's options: checked first
      ok, err = pcall(check, handle, index, select(first, ...))
      if not ok then fail(name, err) end
      local args
      args, err = prepare.run(select(first, ...))
      if not args then return nil, err end
      ok, job, err = pcall(start, handle, index, unpack(args, 1, args.n))
    else
      ok, job, err = pcall(start, handle, index, select(first, ...))
    end
    if not ok then fail(name, job) end
    if not job then return nil, err end
    return run(job)
  end
end

-- how a bulk form's items carry their fields: the item itself, or the
-- item's `fields` key beside its id
local function item_form(bulk)
  local key = bulk.fields
  if not key then
    return function(record) return record end, function(_, fields) return fields end
  end
  return function(item) return type(item) == "table" and item[key] or nil end,
    function(item, fields)
      local out = {}
      for k, v in pairs(item) do out[k] = v end
      out[key] = fields
      return out
    end
end

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
  local start_many, check_many, index, run = handle._start_many, handle._check_many, op.index, driver.run
  local name = op.bulk.public_name
  local fields_of, rebuild = item_form(op.bulk)
  local function invalid(message) return core.invalid_error(index, message) end
  return function(items, opts, ...)
    if rawequal(items, group) then items, opts = opts, ... end
    local why = driver.check()
    if why then fail(name, why) end
    local ok, e = pcall(check_many, handle, index, items, opts)
    if not ok then fail(name, e) end
    local prepared = custom_fields.prepare_many(items, fields_of, rebuild, definitions.get, invalid,
      request_options(opts))
    local job, err
    ok, job, err = pcall(start_many, handle, index, prepared, opts)
    if not ok then fail(name, job) end
    if not job then return nil, err end
    return run(job)
  end
end

local NOT_IN_COROUTINE = public.usage("a client with a loop must be called from a coroutine that the loop "
  .. "resumes (the call yields while its requests are on the network)")

-- how the client's calls wait: blocking, or in the host's loop. check()
-- gives a usage error when a call cannot be made here.
local function new_driver(handle, loop)
  if not loop then
    return { run = engine.run, check = function() end }
  end
  local run, on_close = engine.loop_driver(handle, loop)
  handle:_on_close(on_close)
  return {
    run = run,
    check = function()
      if not engine.in_coroutine() then return NOT_IN_COROUTINE end
    end,
  }
end

-- a list operation's pages, for paging
local function lister(handle, op, driver, group)
  local start, index = handle._start, op.index
  return {
    name = op.each,
    group = group,
    check = driver.check,
    run = driver.run,
    start = function(query, opts) return start(handle, index, query, opts) end,
    invalid = function(message) return core.invalid_error(index, message) end,
  }
end

-- group.anything_else: an error that says what the group has
local function strict(t, what)
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  return setmetatable(t, {
    __index = function(_, key)
      error(("%s has no %s '%s' (it has: %s)"):format(what.name, what.member, tostring(key),
        table.concat(names, ", ")), 2)
    end,
  })
end

-- group.refresh(opts) of a list of definitions: forgets what was read
-- for custom fields by name (for opts.account_id, or all accounts) and
-- reads it again
local function bind_refresh(handle, list_op, definitions, driver, group)
  local name, check, index = list_op.refresh, handle._check, list_op.index
  return function(opts, ...)
    if rawequal(opts, group) then opts = ... end
    local why = driver.check()
    if why then fail(name, why) end
    if opts ~= nil and type(opts) ~= "table" then -- its argument #1, the list's #2
      public.raise(name, "table of options expected, got " .. type(opts), 1)
    end
    local ok, err = pcall(check, handle, index, nil, opts)
    if not ok then fail(name, err) end
    return definitions.refresh(opts)
  end
end

local function build_crm(handle, driver)
  local crm, lists, definitions = {}, {}, {}
  for _, op in ipairs(core.operations) do
    crm[op.group] = crm[op.group] or {}
    if op.page then lists[op.operation_id] = lister(handle, op, driver, crm[op.group]) end
  end
  -- one cache per list of definitions, read through that list's pages
  for id, list in pairs(lists) do
    if by_id[id].refresh then
      definitions[id] = custom_fields.cache(function(opts) return paging.all(list, { page_size = 100 }, opts) end)
      crm[by_id[id].group].refresh = bind_refresh(handle, by_id[id], definitions[id], driver, list.group)
    end
  end
  for _, op in ipairs(core.operations) do
    local group, prepare = crm[op.group], nil
    local defs = definitions[op.custom_fields]
    if defs then
      local index = op.index
      prepare = custom_fields.preparer(position_of(op, "fields"), defs.get,
        function(message) return core.invalid_error(index, message) end)
      if op.bulk then group[op.name .. "_many"] = bind_many(handle, op, defs, driver, group) end
    end
    group[op.name] = bind(handle, op, driver, prepare, group)
    if op.page then group.each = paging.each(lists[op.operation_id]) end
  end
  for group_name, group in pairs(crm) do
    strict(group, { name = "crm." .. group_name, member = "operation" })
  end
  return strict(crm, { name = "crm", member = "group" })
end

-- opts with rate_limit.shared made the client's budget object (the C
-- core only passes it to the driver), or nil and what is wrong; the
-- user's tables are not changed
local function share_budget(opts)
  local rate = rawget(opts, "rate_limit")
  local store = type(rate) == "table" and rawget(rate, "shared")
  if not store then return opts end
  store = limit_budget.described(store) or store
  local kind, update = type(store), nil
  if kind == "table" or kind == "userdata" then -- a userdata may have no fields at all
    local _, found = pcall(function() return store.update end)
    update = found
  end
  if type(update) ~= "function" and not (getmetatable(update) or {}).__call then
    return nil, "rate_limit.shared must be a store (stackone.limit.redis(conn), stackone.limit.host(), "
      .. "stackone.limit.ngx(dict), { ngx = \"dict\" }, { host = true }, { redis = { host =, port = } }, "
      .. "or an object with update: see docs/limits.md)"
  end
  local name, key = rawget(rate, "name"), rawget(opts, "api_key")
  if name ~= nil and (type(name) ~= "string" or not name:match("^[%w_.:-]+$")) then
    return nil, "rate_limit.name must be a string of letters, digits and _ . : -"
  end
  if type(key) ~= "string" or key == "" then key = os.getenv("STACKONE_API_KEY") end -- as the core does
  local copy, rate_copy = {}, {}
  for k, v in next, opts do copy[k] = v end
  for k, v in next, rate do rate_copy[k] = v end
  copy.rate_limit = rate_copy
  rate_copy.shared = nil
  if name == nil and (key == nil or key == "") then return copy end -- core.new says what is wrong
  local requests, per = tonumber(rawget(rate, "requests")) or 1000, tonumber(rawget(rate, "per")) or 60
  local timeout = tonumber(rawget(opts, "timeout")) or 120
  rate_copy.shared = limit_budget.new{
    store = store,
    -- never the key itself: its digest (the key's owner may read the store)
    name = name or core.limit.digest("stackone-lua budget " .. key),
    requests = requests,
    per = per * 1.02, -- the client's own margin for the way to the server
    hold = math.max(timeout, 120) + 1,
    debug = type(rawget(opts, "debug")) == "function" and rawget(opts, "debug") or nil,
  }
  return copy
end

--- stackone.new{ api_key = ..., account_id = ..., ... } -> client | nil, err
function stackone.new(opts)
  if type(opts) ~= "table" then
    public.raise("stackone.new", "table expected, got " .. type(opts), 1)
  end
  local adapter = rawget(opts, "loop")
  local problem = adapter ~= nil and loop_check.problem(adapter)
  if problem then public.raise("stackone.new", problem) end
  local why
  opts, why = share_budget(opts)
  if not opts then public.raise("stackone.new", why) end
  local members = {}
  local ok, handle, err = pcall(core.new, opts, members)
  if not ok then fail("stackone.new", handle) end
  if not handle then
    return nil, err
  end
  members.crm = build_crm(handle, new_driver(handle, adapter))
  return handle
end

return stackone
