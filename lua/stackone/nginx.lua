--- stackone.nginx: the SDK from nginx's Lua module (lua-nginx-module,
-- OpenResty) without blocking the worker. Each call runs in one of
-- nginx's thread pools (ngx.run_worker_thread): the request's coroutine
-- yields and the worker goes on serving other requests. The call itself
-- runs in a thread VM (stackone.nginx.thread), which keeps one client per
-- set of client options. Results and errors come back as they would from
-- a client: value, response or nil, err, with err an error object.
local stackone = require("stackone")
local core = require("stackone.core")
local crossing = require("stackone.nginx.crossing")

local nginx = {
  --- a JSON null to send (the same value as ngx.null and cjson.null)
  null = stackone.null,
  array = stackone.array,
  is_error = stackone.is_error,
  assert = stackone.assert,
}

local THREAD_MODULE = "stackone.nginx.thread"

local CLIENT_OPTIONS = {}
for _, key in ipairs(core.options.client) do CLIENT_OPTIONS[key] = true end

-- where ngx.run_worker_thread may be called: it yields the request
local YIELDING_PHASES = { rewrite = true, access = true, content = true }

-- what ngx.run_worker_thread says when it has no room now, rather than
-- about the configuration: the call was not run
local NO_ROOM = { ["no available Lua vm"] = "NO_VM", ["no memory"] = "NO_MEMORY",
  ["ngx_thread_task_post failed"] = "POST_FAILED" }

-- every public name a client has, with its operation (for the "invalid"
-- errors of arguments that cannot cross) and how it is called
local calls, groups = {}, {}
for _, op in ipairs(stackone.operations) do
  local members = groups[op.group_name] or {}
  groups[op.group_name] = members
  local function add(public_name, how)
    if not public_name then return end
    calls[public_name] = { op = op, how = how }
    members[#members + 1] = public_name:match("[^.]+$")
  end
  add(op.public_name, "call")
  add(op.bulk and op.bulk.public_name, "call")
  add(op.each, "each")
  add(op.refresh, "call")
end

-- one semaphore per thread pool and worker: at most `threads` calls of
-- this worker in that pool at once, the others wait in the worker (each
-- call in flight holds a thread VM and its client's connections). It is
-- made at the first call, in a worker: a client made in init_by_lua (in
-- the master, before the fork) makes none.
local places = {}

local function place_for(pool, threads)
  local place = places[pool]
  if not place then
    place = { threads = threads }
    places[pool] = place
  end
  return place
end

local function semaphore_of(place)
  if not place.semaphore then place.semaphore = require("ngx.semaphore").new(place.threads) end
  return place.semaphore
end

-- takes a place in the semaphore: a function that gives it back (once),
-- and a guard to keep alive until then. nginx can end a request's
-- coroutine while its call is in the pool (ngx.thread.kill, ngx.exit in
-- another light thread, a client abort with lua_check_client_abort on);
-- the code after the call then never runs, and the collector gives the
-- place back when it finds the guard unreachable.
local function take(semaphore, timeout)
  local ok, err = semaphore:wait(timeout)
  if not ok then return nil, err end
  local held = true
  local function release()
    if held then
      held = false
      semaphore:post()
    end
  end
  local guard = newproxy(true)
  getmetatable(guard).__gc = release
  return release, guard
end

local Client = {}
Client.__index = Client

local function error_object(fields)
  fields.attempts, fields.maybe_applied = 0, false
  return setmetatable(fields, core.error_mt)
end

-- runs the call `name` in the pool: its results. A mistake in the
-- caller's code raises at `level` (1 is run's own frame), the caller's line.
local function run(self, name, level, ...)
  local call = calls[name]
  local phase = ngx.get_phase()
  if not YIELDING_PHASES[phase] then
    error(("%s: stackone.nginx calls run in rewrite_by_lua*, access_by_lua* and content_by_lua* "
      .. "(they yield while the call runs in a thread), not in %s"):format(name, phase), level)
  end
  local args, problem, why = crossing.pack({ n = select("#", ...), ... }, "argument")
  if why == "cycle" then return nil, core.invalid_error(call.op.index, problem) end
  if problem then
    error(("%s: %s: only tables, strings, numbers, booleans and stackone.null cross to nginx's thread VM")
      :format(name, (problem:gsub("^argument%[(%d+)%]", "argument #%1"))), level)
  end
  local release, guard = take(semaphore_of(self._place), self._queue_timeout)
  if not release then
    return nil, error_object{ kind = "busy", code = "QUEUE_TIMEOUT",
      message = ("no room in thread pool '%s' within %s s (%s)"):format(self._pool, self._queue_timeout, guard) }
  end
  local done, ran, status, value, second = pcall(ngx.run_worker_thread, self._pool, THREAD_MODULE, "run",
    self._client, name, args)
  release(guard) -- (the guard stays alive until here)
  if not done then error(name .. ": " .. tostring(ran), level) end
  if not ran then
    if NO_ROOM[status] then
      return nil, error_object{ kind = "busy", code = NO_ROOM[status],
        message = ("thread pool '%s': %s"):format(self._pool, status) }
    end
    error(("%s: the call could not run in thread pool '%s' (is it in nginx.conf, and do lua_package_path "
      .. "and lua_package_cpath reach the SDK?): %s"):format(name, self._pool, tostring(status)), level)
  end
  if status == "raise" then error(value, level) end
  if status == "fail" then return nil, crossing.unpack(value) end
  return crossing.unpack(value), crossing.unpack(second)
end

-- every record of every page of the list call behind `name`: a
-- generic-for iterator; a page that fails raises its error object
local function each(self, name, level, query, opts)
  if query ~= nil and type(query) ~= "table" then
    error(("bad argument #1 to '%s' (table of query parameters expected, got %s)"):format(name, type(query)), level)
  end
  local list = name:gsub("%.each$", ".list")
  local q = {}
  for k, v in pairs(query or {}) do q[k] = v end
  local data, i, last = nil, 0, false
  return function()
    while true do
      if data and i < #data then
        i = i + 1
        return data[i], i
      end
      if last then return nil end
      local page, err = run(self, list, 3, q, opts) -- 1 run, 2 this iterator, 3 the for loop
      if not page then error(err, 0) end
      if page.next ~= nil and page.next == q.next then
        error(core.invalid_error(calls[list].op.index,
          "the server gave the cursor of the previous page again: stopped"), 0)
      end
      data, i, last = page.data or {}, 0, page.next == nil or page.next == ""
      q.next = page.next -- page_size and the rest stay the same on every page
    end
  end
end

-- a call from the public function the caller called (no tail calls, so
-- that the caller's line is level 4: 1 run or each, 2 dispatch, 3 the
-- public function)
local function dispatch(self, name, ...)
  local value, second
  if calls[name].how == "each" then
    value = each(self, name, 4, ...)
  else
    value, second = run(self, name, 4, ...)
  end
  return value, second
end

-- client.crm.<group>.<name> and client.<group>.<name> (the platform's), as
-- on a client: a name that is not there raises, saying what is
local function strict(t, what, member, names)
  table.sort(names)
  return setmetatable(t, {
    __index = function(_, key)
      error(("%s has no %s '%s' (it has: %s)"):format(what, member, tostring(key), table.concat(names, ", ")), 2)
    end,
  })
end

local function build_groups(self)
  local out, namespaces = {}, {}
  for group_name, members in pairs(groups) do
    local group = {}
    for _, member in ipairs(members) do
      local name = group_name .. "." .. member
      group[member] = function(...)
        local value, second
        if rawequal((...), group) then -- group:create{...} works like group.create{...}
          value, second = dispatch(self, name, select(2, ...))
        else
          value, second = dispatch(self, name, ...)
        end
        return value, second
      end
    end
    strict(group, group_name, "operation", members)
    local namespace, short = group_name:match("^(.-)%.([^.]+)$")
    if namespace then
      namespaces[namespace] = namespaces[namespace] or { groups = {}, names = {} }
      namespaces[namespace].groups[short] = group
      table.insert(namespaces[namespace].names, short)
    else
      out[group_name] = group
    end
  end
  for name, n in pairs(namespaces) do out[name] = strict(n.groups, name, "group", n.names) end
  return out
end

-- a client for opts; a mistake raises at `level` (1 is make's frame)
local function make(opts, level)
  local name = "stackone.nginx.new"
  if type(opts) ~= "table" then
    error(("bad argument #1 to '%s' (table expected, got %s)"):format(name, type(opts)), level)
  end
  for key in pairs(opts) do
    if key ~= "pool" and key ~= "client" and key ~= "threads" and key ~= "queue_timeout" then
      error(("%s: unknown option '%s' (it takes: client, pool, queue_timeout, threads)"):format(name, tostring(key)),
        level)
    end
  end
  local function option(key, kind, default)
    local value = opts[key]
    if value == nil then return default end
    if type(value) ~= kind then
      error(("%s: option '%s' must be a %s, got %s"):format(name, key, kind, type(value)), level + 1)
    end
    return value
  end
  local pool = option("pool", "string")
  if not pool then error(name .. ": option 'pool' (a thread_pool's name in nginx.conf) is required", level) end
  local threads = option("threads", "number", 32)
  if threads < 1 or threads % 1 ~= 0 then error(name .. ": option 'threads' must be a positive integer", level) end
  local client_opts = option("client", "table", {})
  for key in pairs(client_opts) do
    if not CLIENT_OPTIONS[key] then
      error(("%s: unknown client option '%s' (stackone.new takes: %s)"):format(name, tostring(key),
        table.concat(core.options.client, ", ")), level)
    end
  end
  local client, problem = crossing.pack(client_opts, "client")
  if problem then
    error(("%s: %s: only tables, strings, numbers and booleans cross to nginx's thread VM"):format(name, problem),
      level)
  end
  local place = place_for(pool, threads)
  if place.threads ~= threads then
    error(("%s: thread pool '%s' was given threads = %d before, now %d"):format(name, pool, place.threads, threads),
      level)
  end
  return setmetatable({ _pool = pool, _client = client, _place = place,
    _queue_timeout = option("queue_timeout", "number", 60) }, Client)
end

local function check_name(name)
  if type(name) ~= "string" or not calls[name] then
    error(("stackone.nginx: no call named '%s'"):format(tostring(name)), 3)
  end
end

--- stackone.nginx.new{ pool = "stackone", client = { ...stackone.new's options },
--   threads = 32, queue_timeout = 60 } -> a client whose calls run in the pool
function nginx.new(opts)
  local client = make(opts, 3)
  for name, member in pairs(build_groups(client)) do client[name] = member end
  return client
end

--- client:call("crm.contacts.create", fields, opts): any call by its public name
function Client:call(name, ...)
  check_name(name)
  local value, second = dispatch(self, name, ...)
  return value, second
end

--- stackone.nginx.call(options, "crm.contacts.create", fields, opts): a
-- single call, as stackone.nginx.new(options):call(...)
function nginx.call(opts, name, ...)
  local client = make(opts, 3)
  check_name(name)
  local value, second = dispatch(client, name, ...)
  return value, second
end

return nginx
