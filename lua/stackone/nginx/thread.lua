--- The thread VM's side of stackone.nginx: ngx.run_worker_thread runs
-- `run` here, in one of nginx's thread pools, in a Lua VM of its own.
-- A thread VM runs one call at a time and keeps its module state between
-- calls, so it keeps one client per set of client options: its
-- connections and its rate limiter serve every later call made here.
-- The options are the cache's key as they are (api_key included); the key
-- is never printed, logged or returned.
local stackone = require("stackone")
local crossing = require("stackone.nginx.crossing")
local unpack = require("stackone.compat").unpack

local thread = {}

-- clients kept in one thread VM: a caller that varies its client options
-- per request (use the per-call account_id instead) closes the oldest
local MAX_CLIENTS = 16

local clients, order = {}, {}

-- the options as one string, the same whatever order pairs() takes
local function key_of(value)
  if type(value) ~= "table" then return type(value) .. ":" .. tostring(value) end
  local keys = {}
  for k in pairs(value) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return key_of(a) < key_of(b) end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = key_of(k) .. "=" .. key_of(value[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function client_for(opts)
  local key = key_of(opts)
  local client = clients[key]
  if client then return client end
  local err
  client, err = stackone.new(crossing.unpack(opts))
  if not client then return nil, err end
  if #order >= MAX_CLIENTS then
    local oldest = table.remove(order, 1)
    clients[oldest]:close()
    clients[oldest] = nil
  end
  clients[key] = client
  order[#order + 1] = key
  return client
end

-- a raised message without this file's position: the SDK reports a
-- mistake at the line that called it, here, which means nothing to the
-- caller in the worker VM
local function message_of(e)
  return (tostring(e):gsub("^[^\n]-stackone/nginx/thread%.lua:%d+: ", ""))
end

-- a result as it crosses back (nothing the SDK returns fails to cross)
local function packed(value)
  local copy, problem = crossing.pack(value, "the result")
  if problem then error("stackone.nginx: " .. problem .. " and cannot cross back to the worker", 0) end
  return copy
end

-- the status of a call and its results, as they cross back:
-- "ok", value, response | "fail", err | "raise", message
local function outcome(ok, value, second)
  if not ok then
    if stackone.is_error(value) then return "fail", packed(value) end -- a raised error object
    return "raise", message_of(value)
  end
  if value == nil then return "fail", packed(second) end
  return "ok", packed(value), packed(second)
end

local function call(client, name, args)
  local fn = client
  for part in name:gmatch("[^.]+") do fn = fn[part] end
  return fn(unpack(args, 1, args.n))
end

--- runs the call `name` ("crm.contacts.create") with the packed
-- arguments args ({ n = count, ... }) on this VM's client for
-- client_opts; see outcome for what it returns
function thread.run(client_opts, name, args)
  local ok, client, err = pcall(client_for, client_opts)
  if not ok then return outcome(false, client) end
  if not client then return outcome(true, nil, err) end
  return outcome(pcall(call, client, name, crossing.unpack(args)))
end

return thread
