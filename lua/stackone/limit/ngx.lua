--- stackone.limit.ngx(dict): a shared rate budget in an nginx
-- lua_shared_dict, for the workers of one nginx and their thread VMs
-- (lua-nginx-module 0.10.23 gives those ngx.shared). The window is one
-- value of the dictionary (stackone.limit.window's text), changed under a
-- lock that is a key of the same dictionary (dict:add is atomic across
-- workers; the lock expires after a second if its holder died). nginx's
-- workers are processes of one machine: the monotonic clock is theirs.
-- dict: a dictionary (ngx.shared.NAME) or its name.
local core = require("stackone.core")
local window = require("stackone.limit.window")

local limit_core = core.limit

local ngx_store = {}

local Store = {}
Store.__index = Store
Store.__name = "stackone.limit.ngx"

-- the lock is held for microseconds; a holder that stopped (a killed
-- worker) lets go when the key expires
local LOCK_TRIES, LOCK_PAUSE, LOCK_EXPIRES = 2000, 0.0005, 1

local function dictionary(self)
  if type(self.dict) ~= "string" then return self.dict end
  local shared = rawget(_G, "ngx") and rawget(_G, "ngx").shared
  local dict = shared and shared[self.dict]
  if not dict then return nil, "no lua_shared_dict named " .. self.dict end
  return dict
end

function Store:update(name, change)
  local dict, err = dictionary(self)
  if not dict then return nil, err end
  local lock, key = "stackone:budget:" .. name .. ":lock", "stackone:budget:" .. name
  local tries = 0
  while true do
    local ok, why = dict:add(lock, true, LOCK_EXPIRES)
    if ok then break end
    if why ~= "exists" then return nil, "cannot lock the budget: " .. tostring(why) end
    tries = tries + 1
    if tries >= LOCK_TRIES then return nil, "the budget's lock was held too long" end
    limit_core.sleep(LOCK_PAUSE)
  end
  local state = window.decode(dict:get(key))
  local granted, wait = window.update(state, limit_core.now(), change)
  local ok, why = dict:set(key, window.encode(state), change.per + change.hold + 1)
  dict:delete(lock)
  if not ok then return nil, "cannot keep the budget: " .. tostring(why) end
  return granted, wait
end

function ngx_store.new(dict)
  local kind = type(dict)
  if kind ~= "string" and kind ~= "table" and kind ~= "userdata" then
    error("stackone.limit.ngx: a lua_shared_dict (ngx.shared.NAME) or its name expected, got " .. kind, 3)
  end
  return setmetatable({ dict = dict }, Store)
end

return ngx_store
