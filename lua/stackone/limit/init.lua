--- stackone.limit: stores for a rate budget that several clients,
-- processes or machines share (`rate_limit = { requests =, per =,
-- shared = store }`). See docs/limits.md.
local limit = {}

--- stackone.limit.redis(conn, opts): processes on any machines, through Redis
function limit.redis(conn, opts)
  return require("stackone.limit.redis").new(conn, opts)
end

--- stackone.limit.host(opts): the processes of one machine, through a locked file
function limit.host(opts)
  return require("stackone.limit.host").new(opts)
end

--- stackone.limit.ngx(dict): nginx's workers and thread VMs, through a lua_shared_dict
function limit.ngx(dict)
  return require("stackone.limit.ngx").new(dict)
end

return limit
