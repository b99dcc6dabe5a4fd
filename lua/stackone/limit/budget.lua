--- A client's shared rate budget (rate_limit.shared): between the job's
-- steps, the driver hands the job here (job:step() returned "limit"), and
-- this asks the store for places and tells it what became of the places
-- it gave. The store is the user's (see docs/limits.md for its contract);
-- whatever it does, the call goes on: an error, a raise or a wrong answer
-- means this process's own limiter alone, until the store answers again.
local core = require("stackone.core")
local compat = require("stackone.compat")

local now, pid = core.limit.now, core.limit.pid
local protected = compat.pcall

local budget = {}

-- after a failure, the store is asked again this many seconds later
local RETRY_AFTER = 1

local Budget = {}
Budget.__index = Budget

-- a prefix no other process (here or on another machine) uses: the pid,
-- and random bytes, read again after a fork
local function owner_prefix()
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(8) or tostring({}) .. tostring(now())
  if f then f:close() end
  return ("%d.%s."):format(pid(), (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end)))
end

local function new_id(self)
  if self.pid ~= pid() then
    self.pid, self.prefix, self.seq = pid(), owner_prefix(), 0
  end
  self.seq = self.seq + 1
  return self.prefix .. self.seq
end

-- one line for the client's debug function, under pcall: a failing one
-- changes nothing here
local function say(self, line)
  if self.debug then pcall(self.debug, "* stackone: " .. line .. "\n") end
end

--- budget.new{ store =, name =, requests =, per =, hold =, debug = }:
-- per includes the margin for the way to the server; hold is how long a
-- place not yet known to be sent is kept (beyond per) when its process
-- never tells what became of it
function budget.new(opts)
  return setmetatable({
    store = opts.store, name = opts.name, requests = opts.requests, per = opts.per,
    hold = opts.hold, debug = opts.debug,
    held = setmetatable({}, { __mode = "k" }),      -- job -> its places' ids, oldest first
    fell_back = setmetatable({}, { __mode = "k" }), -- job -> the store's error
    failure = nil, retry_at = 0, seq = 0,
  }, Budget)
end

local function valid(granted, wait, want)
  return type(granted) == "number" and granted >= 0 and granted <= want and granted % 1 == 0
    and (granted == want or type(wait) == "number" and wait >= 0)
end

-- the store failed (err): the job goes on with the client's own limiter
local function fall_back(self, job, want, err, t)
  if not self.failure then
    say(self, "the shared rate limit store failed (" .. err .. "); calls go on under this "
      .. "process's own rate limit until it answers again")
  end
  self.failure, self.retry_at = err, t + RETRY_AFTER
  self.fell_back[job] = err
  if want > 0 then job:_grant(want, 0) end
end

--- what the job asks of the shared budget, asked of the store
function Budget:serve(job)
  local want, pause, unsent, sent_ago = job:_limit()
  local ids = self.held[job]
  if not ids then ids = {}; self.held[job] = ids end
  local change = { requests = self.requests, per = self.per, hold = self.hold,
    take = {}, sent = {}, unsent = {}, pause = pause > 0 and pause or nil }
  local told = change.pause ~= nil or want > 0
  for i = 1, #sent_ago do
    local id = table.remove(ids, 1) -- places are alike: any of the job's will do
    if id then change.sent[id] = sent_ago[i]; told = true end
  end
  for _ = 1, unsent do
    local id = table.remove(ids, 1)
    if id then change.unsent[#change.unsent + 1] = id; told = true end
  end
  if not told then return end
  for i = 1, want do change.take[i] = new_id(self) end
  local t = now()
  if self.failure and t < self.retry_at then
    self.fell_back[job] = self.failure
    if want > 0 then job:_grant(want, 0) end
    return
  end
  local granted, wait -- or nil, err
  local ok, raised = protected(function()
    granted, wait = self.store:update(self.name, change)
  end)
  if not ok then
    return fall_back(self, job, want, tostring(raised), t)
  elseif granted == nil then
    return fall_back(self, job, want, tostring(wait or "no answer"), t)
  elseif not valid(granted, wait, want) then
    return fall_back(self, job, want, "a wrong answer: " .. tostring(granted) .. ", " .. tostring(wait), t)
  end
  if self.failure then
    self.failure = nil
    say(self, "the shared rate limit store answers again")
  end
  for i = 1, granted do ids[#ids + 1] = change.take[i] end
  if want > 0 then
    -- never 0 when short: the job would ask again at once
    job:_grant(granted, granted < want and math.max(wait, 0.001) or 0)
  end
end

-- { redis = { host =, port =, timeout =, prefix = } }: a Redis store on
-- lua-redis (LuaSocket), connecting again after an error or a fork
local function redis_described(r)
  local connect = function()
    local ok, redis = pcall(require, "redis")
    if not ok then return nil, "lua-redis is not installed (require \"redis\": " .. tostring(redis) .. ")" end
    local made, conn = pcall(redis.connect, { host = r.host or "127.0.0.1", port = r.port or 6379,
      timeout = r.timeout or 1 })
    if not made then return nil, conn end
    return conn
  end
  return require("stackone.limit.redis").new(connect, { prefix = r.prefix })
end

--- the store a description names, for options that cross into nginx's
-- thread VMs as data: { ngx = "dict name" }, { host = opts or true } or
-- { redis = { host =, port =, timeout =, prefix = } }; nil when it names
-- none
function budget.described(t)
  if type(t) ~= "table" or getmetatable(t) ~= nil or next(t) == nil or next(t, next(t)) ~= nil then
    return nil
  end
  if type(t.ngx) == "string" then return require("stackone.limit.ngx").new(t.ngx) end
  if t.host == true then return require("stackone.limit.host").new() end
  if type(t.host) == "table" then return require("stackone.limit.host").new(t.host) end
  if type(t.redis) == "table" then return redis_described(t.redis) end
end

--- the call's result (response, error or summary) says when the store
-- failed while it ran
function Budget:finish(job, result)
  local err = self.fell_back[job]
  self.held[job], self.fell_back[job] = nil, nil
  if err and type(result) == "table" then result.limit_error = err end
end

return budget
