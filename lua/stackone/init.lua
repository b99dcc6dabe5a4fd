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
local fanout = require("stackone.fanout")
local journal = require("stackone.journal")
local public = require("stackone.public")
local loop_check = require("stackone.loop.check")
local limit_budget = require("stackone.limit.budget")
local unpack, pack = require("stackone.compat").unpack, require("stackone.compat").pack

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

-- The public names: crm.<group>.<name> (the platform's: <group>.<name>),
-- its _many form, each and refresh, named here once and kept in the
-- description.
local by_id = {}
for _, op in ipairs(core.operations) do
  op.group_name = (op.namespace and op.namespace .. "." or "") .. op.group
  local prefix = op.group_name .. "."
  op.public_name = prefix .. op.name
  if op.bulk then op.bulk.public_name = op.public_name .. "_many" end
  if op.page then op.each = prefix .. "each" end
  by_id[op.operation_id] = op
end
for _, op in ipairs(core.operations) do
  local list = by_id[op.custom_fields]
  if list then list.refresh = list.group_name .. ".refresh" end
end

local function position_of(op, arg)
  for i, a in ipairs(op.args) do
    if a == arg then return i end
  end
end

-- A call: the core checks the arguments and makes a job, the driver runs
-- it (blocking, or yielding to the client's loop); a blocking client's
-- call is one trip into the core (client:_call), which hands back a job
-- only when it must wait in Lua. group:create{...}
-- works like group.create{...}, as callers of lua-openai or pgmoon would
-- write it. Every public function is the one frame above the user's code
-- and turns the usage errors under it into errors at the user's line.
-- the options of a call made through an account view: the view's
-- account unless the call names one (anything but a table is left for
-- the core to refuse)
local function account_options(account, opts)
  if opts == nil then return { account_id = account } end
  if type(opts) ~= "table" or opts.account_id ~= nil then return opts end
  local out = {}
  for k, v in pairs(opts) do out[k] = v end
  out.account_id = account
  return out
end

-- the arguments of a call (after the group of the colon form), with the
-- view's account in the options at `position`
local function with_account(account, position, ...)
  local args = pack(...)
  args[position] = account_options(account, args[position])
  if args.n < position then args.n = position end
  return unpack(args, 1, args.n)
end

local function bind(handle, op, driver, prepare, group, account)
  local start, check, index, run, name = handle._start, handle._check, op.index, driver.run, op.public_name
  -- a page numbered by the query's `page`: its `next` is made here
  local numbered = op.reply == "array" and paging.number
  local opts_at = account and op.account and position_of(op, "opts")
  -- the call's own arguments: after the group of the colon form, with a
  -- view's account in the options
  local function arguments(...)
    if rawequal((...), group) then
      if opts_at then return with_account(account, opts_at, select(2, ...)) end
      return select(2, ...)
    end
    if opts_at then return with_account(account, opts_at, ...) end
    return ...
  end
  local check_place = not driver.anywhere and driver.check
  -- a blocking client's call is one trip into the core (start and first
  -- step), unless one of run_all's functions makes it. The core drops the
  -- group of the colon form, and sends back custom fields by name (at
  -- `names_at`) to the long way below: every builtin Lua calls costs more
  -- there than the core's whole check of it
  local call = driver.blocking and not numbered and not opts_at and handle._call
  local names_at = prepare and position_of(op, "fields") or 0
  local in_scheduler, go_on = fanout.in_scheduler, engine.go_on
  -- the common call goes straight to the core: no table of arguments
  return function(...)
    if call and not (fanout.ever_scheduled and in_scheduler()) then
      -- value, response | nil, err | the handle, then the job to drive,
      -- or nothing for the long way
      local done, a, b, what, seconds, sleep = pcall(call, handle, index, group, names_at, ...)
      if not done then fail(name, a) end
      if a ~= handle then return a, b end -- no __eq: a is never another userdata
      if b ~= nil then return go_on(b, what, seconds, sleep) end
    end
    if check_place then
      local why = check_place()
      if why then fail(name, why) end
    end
    local ok, job, err
    if prepare and prepare.wants(arguments(...)) then
      local args = pack(arguments(...))
      -- the definitions are fetched with the call's options: checked first
      ok, err = pcall(check, handle, index, unpack(args, 1, args.n))
      if not ok then fail(name, err) end
      local prepared
      prepared, err = prepare.run(unpack(args, 1, args.n))
      if not prepared then return nil, err end
      ok, job, err = pcall(start, handle, index, unpack(prepared, 1, prepared.n))
    else
      ok, job, err = pcall(start, handle, index, arguments(...))
    end
    if not ok then fail(name, job) end
    if not job then return nil, err end
    if numbered then return numbered((arguments(...)), run(job)) end
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

-- the bulk call's own options, which fetching definitions or looking
-- records up does not take
local BULK_ONLY = {}
for _, k in ipairs(core.options.bulk) do BULK_ONLY[k] = true end

-- the options of a bulk call that also apply to its other requests
local function request_options(opts)
  if opts == nil then return nil end
  local out = {}
  for k, v in pairs(opts) do
    if not BULK_ONLY[k] then out[k] = v end
  end
  return out
end

-- list: the group's list (for reconciling a journal's creates), or nil;
-- where: { base_url, account_id } of the client
local function bind_many(handle, op, definitions, driver, group, account, list, where)
  local start_many, check_many, index, run = handle._start_many, handle._check_many, op.index, driver.run
  local name = op.bulk.public_name
  local fields_of, rebuild = item_form(op.bulk)
  local function invalid(message) return core.invalid_error(index, message) end
  -- checked items, with custom fields by name resolved, as a job
  local function send(items, opts)
    local prepared = custom_fields.prepare_many(items, fields_of, rebuild, definitions.get, invalid,
      request_options(opts))
    return pcall(start_many, handle, index, prepared, opts)
  end
  -- a POST is reconciled by looking the records up; a PATCH is sent again
  local reconciles = op.method == "POST" and list
  local function with_journal(items, opts)
    return journal.bulk({
      op = op, name = name, done_word = op.method == "POST" and "created" or "updated", run = run,
      target = where.base_url, account = opts.account_id or where.account_id,
      send = function(batch, batch_opts)
        local ok, job, err = send(batch, batch_opts)
        if not ok then error(job, 0) end
        return job, err
      end,
      pages = reconciles and function(query) return paging.walk(list, query, request_options(opts)) end,
    }, items, opts)
  end
  return function(items, opts, ...)
    if rawequal(items, group) then items, opts = opts, ... end
    if account then opts = account_options(account, opts) end
    local why = driver.check()
    if why then fail(name, why) end
    local ok, e = pcall(check_many, handle, index, items, opts)
    if not ok then fail(name, e) end
    local mistake = type(opts) == "table" and journal.check_options(opts)
    if mistake then public.raise(name, mistake) end
    if type(opts) == "table" and opts.journal then return with_journal(items, opts) end
    local job, err
    ok, job, err = send(items, opts)
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
    local run, in_scheduler, run_scheduled = engine.run, fanout.in_scheduler, fanout.run_job
    return {
      run = function(job)
        if in_scheduler() then return run_scheduled(job) end -- one of run_all's
        return run(job)
      end,
      check = function() end,
      anywhere = true, -- check never objects
      blocking = true,
    }
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
local function lister(handle, op, driver, group, account)
  local start, index, run = handle._start, op.index, driver.run
  local viewed = account and op.account
  local list = {
    name = op.each,
    group = group,
    check = driver.check,
    run = run,
    start = function(query, opts)
      if viewed then opts = account_options(account, opts) end
      return start(handle, index, query, opts)
    end,
    invalid = function(message) return core.invalid_error(index, message) end,
  }
  if op.reply ~= "array" then return list end
  -- a list numbered by `page`: the walk's cursor (`next`) is the number of
  -- the page to ask for, and each page's `next` is numbered from the query
  -- that asked for it
  local asked = setmetatable({}, { __mode = "k" }) -- job -> its query
  function list.start(query, opts)
    local q = query
    if type(query) == "table" and query.next ~= nil then
      q = {}
      for k, v in pairs(query) do q[k] = v end
      q.page, q.next = query.next, nil
    end
    if viewed then opts = account_options(account, opts) end
    local job, err = start(handle, index, q, opts)
    if job then asked[job] = q end
    return job, err
  end
  function list.run(job)
    return paging.number(asked[job], run(job))
  end
  return list
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
local function bind_refresh(handle, list_op, definitions, driver, group, account)
  local name, check, index = list_op.refresh, handle._check, list_op.index
  return function(opts, ...)
    if rawequal(opts, group) then opts = ... end
    if account then opts = account_options(account, opts) end
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

-- the client's groups: { crm = { contacts = ..., ... }, accounts = ... }
-- (the CRM's under crm, the platform's at the top). With `account`, an
-- account view's: the groups whose calls carry x-account-id, sending that
-- one. `shared` holds what the client and its views share: the caches of
-- custom field definitions (per account) and the lists they are read by.
local function build_groups(handle, driver, account, shared, where)
  local members, groups, lists = {}, {}, {}
  local definitions = shared.definitions
  for _, op in ipairs(core.operations) do
    if not account or op.account then
      if not groups[op.group_name] then
        groups[op.group_name] = {}
        local home = members
        if op.namespace then
          members[op.namespace] = members[op.namespace] or {}
          home = members[op.namespace]
        end
        home[op.group] = groups[op.group_name]
      end
      if op.page then lists[op.operation_id] = lister(handle, op, driver, groups[op.group_name], account) end
    end
  end
  -- a group's list, for reconciling a journal's creates
  local function list_of(group_name)
    for _, op in ipairs(core.operations) do
      if op.group_name == group_name and op.page and op.name == "list" then return lists[op.operation_id] end
    end
  end
  -- one cache per list of definitions, read through the client's pages
  -- of that list (a call's options name the account)
  for id, list in pairs(lists) do
    local op = by_id[id]
    if op.refresh then
      definitions[id] = definitions[id]
        or custom_fields.cache(function(opts) return paging.all(list, { page_size = 100 }, opts) end)
      groups[op.group_name].refresh = bind_refresh(handle, op, definitions[id], driver, list.group, account)
    end
  end
  for _, op in ipairs(core.operations) do
    local group, prepare = groups[op.group_name], nil
    if group then
      local defs = definitions[op.custom_fields]
      if defs then
        local index = op.index
        prepare = custom_fields.preparer(position_of(op, "fields"), defs.get,
          function(message) return core.invalid_error(index, message) end)
        if op.bulk then
          group[op.name .. "_many"] = bind_many(handle, op, defs, driver, group, account, list_of(op.group_name), where)
        end
      end
      group[op.name] = bind(handle, op, driver, prepare, group, account)
      if op.page then group.each = paging.each(lists[op.operation_id]) end
    end
  end
  for name, group in pairs(groups) do
    strict(group, { name = name, member = "operation" })
  end
  for name, namespace in pairs(members) do
    if not groups[name] then strict(namespace, { name = name, member = "group" }) end
  end
  return members
end

-- the options of run_all and for_each_account (argument `n`), the rows
-- of the bulk options C reads itself (core.option_rows):
-- { concurrency, on_progress }, or nil and a usage error
local FAN, FAN_NAMES = {}, {}
for _, row in ipairs(core.option_rows.bulk) do
  if row.type ~= "any" then FAN[row.name], FAN_NAMES[#FAN_NAMES + 1] = row, row.name end
end
FAN_NAMES = table.concat(FAN_NAMES, " and ")
local function fan_options(opts, n)
  if opts ~= nil and type(opts) ~= "table" then
    return nil, public.usage("table of options expected, got " .. type(opts), n)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not FAN[k] then
      return nil, public.usage(("unknown option '%s' (it takes %s)"):format(tostring(k), FAN_NAMES))
    end
  end
  local c, range = opts.concurrency == nil and 4 or opts.concurrency, FAN.concurrency
  if type(c) ~= "number" or c ~= math.floor(c) or c < range.min or c > range.max then
    return nil, public.usage("concurrency must be " .. range.must)
  end
  if opts.on_progress ~= nil and type(opts.on_progress) ~= "function" then
    return nil, public.usage("on_progress must be " .. FAN.on_progress.must)
  end
  return { concurrency = c, on_progress = opts.on_progress }
end

local NOT_A_METHOD = public.usage("call it with a colon, on the client or an account view")

-- client:with_account, :run_all and :for_each_account, for a client and
-- its account views; `views` makes (and keeps) the view of an account id
local function fan_members(client, driver, adapter, views)
  local members = {}

  local function is_client(x) return rawequal(x, client) or views.is_view(x) end

  function members.with_account(self, id)
    if not is_client(self) then fail("client.with_account", NOT_A_METHOD) end
    if type(id) ~= "string" then public.raise("client.with_account", "string id expected, got " .. type(id), 1) end
    if id == "" then public.raise("client.with_account", "an account id cannot be empty") end
    return views.get(id)
  end

  function members.run_all(self, fns, opts)
    if not is_client(self) then fail("client.run_all", NOT_A_METHOD) end
    if type(fns) ~= "table" then public.raise("client.run_all", "table of functions expected, got " .. type(fns), 1) end
    for i = 1, #fns do
      if type(fns[i]) ~= "function" then
        public.raise("client.run_all", ("fns[%d] is a %s, not a function"):format(i, type(fns[i])))
      end
    end
    local o, why = fan_options(opts, 2)
    if not o then fail("client.run_all", why) end
    why = driver.check()
    if why then fail("client.run_all", why) end
    return fanout.run_all(fns, o, adapter)
  end

  function members.for_each_account(self, query, fn, opts)
    local name = "client.for_each_account"
    if not is_client(self) then fail(name, NOT_A_METHOD) end
    if query ~= nil and type(query) ~= "table" then
      public.raise(name, "table of query parameters expected, got " .. type(query), 1)
    end
    if type(fn) ~= "function" then public.raise(name, "function expected, got " .. type(fn), 2) end
    local o, why = fan_options(opts, 3)
    if not o then fail(name, why) end
    why = driver.check()
    if why then fail(name, why) end
    local q = {}
    for k, v in pairs(query or {}) do q[k] = v end
    -- (the query's content is checked by the core: a bad one is nil, err)
    local accounts, err = paging.all(views.accounts_list, q, nil)
    if not accounts then return nil, err end
    local fns = {}
    for i, account in ipairs(accounts) do
      fns[i] = function() return fn(account, views.get(account.id)) end
    end
    local results, summary = fanout.run_all(fns, o, adapter)
    for i, r in ipairs(results) do r.account = accounts[i] end
    return results, summary
  end

  return members
end

-- an account view: the client's calls, the CRM's sending this account id
local function new_view(members, groups, id)
  local view = { account_id = id }
  for name, member in pairs(members) do view[name] = member end
  for name, member in pairs(groups) do view[name] = member end
  return setmetatable(view, {
    __name = "stackone.account_view",
    __index = function(_, key)
      error(("an account view has no '%s' (close or configure the client itself)"):format(tostring(key)), 2)
    end,
    __tostring = function() return "stackone.account_view (" .. id .. ")" end,
  })
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

-- The public client: a table of its groups and methods around the core
-- handle, which stays private (its _start, _io_* and the like are the
-- Lua layer's, not the user's). The handle's own __gc is the safety net:
-- a dropped client takes its handle with it, and an account view still
-- in use keeps the handle (not the client) open.
local function new_client(handle)
  local client = {}
  --- client:close() -> true; again is harmless
  function client.close(self)
    if not rawequal(self, client) then
      public.raise("client.close", "stackone.client expected, got " .. type(self), 1)
    end
    return handle:close()
  end
  return setmetatable(client, {
    __name = "stackone.client",
    __metatable = "locked",
    __close = function() handle:close() end,
    __tostring = function() return tostring(handle) end,
  })
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
  local ok, handle, err = pcall(core.new, opts)
  if not ok then fail("stackone.new", handle) end
  if not handle then
    return nil, err
  end
  local client = new_client(handle)
  local driver, shared = new_driver(handle, adapter), { definitions = {} }
  -- where this client's records go, for the journals of its bulk calls
  -- (as the core resolved them: its defaults, STACKONE_ACCOUNT_ID)
  local where = {}
  where.base_url, where.account_id = handle:_target()
  local groups = build_groups(handle, driver, nil, shared, where)
  for name, member in pairs(groups) do client[name] = member end
  -- the views of accounts, made once each and kept while the client is
  local views, made = {}, setmetatable({}, { __mode = "v" })
  local is_view = setmetatable({}, { __mode = "k" })
  views.accounts_list = lister(handle, by_id.stackone_list_linked_accounts, driver, client.accounts)
  function views.is_view(x) return is_view[x] == true end
  local fan = fan_members(client, driver, adapter, views)
  function views.get(id)
    local view = made[id]
    if not view then
      local own = build_groups(handle, driver, id, shared, where)
      for name, member in pairs(groups) do
        if own[name] == nil and name ~= "crm" then own[name] = member end
      end
      view = new_view(fan, own, id)
      made[id], is_view[view] = view, true
    end
    return view
  end
  for name, member in pairs(fan) do client[name] = member end
  return client
end

return stackone
