--- stackone.limit.host(opts): a shared rate budget for the processes of
-- one machine, without a server: the window is a small file (one line a
-- place) read and rewritten under an exclusive lock (flock) at every
-- decision, with the machine's monotonic clock. The file is opened for
-- each decision, so a fork shares nothing. The clock starts again at a
-- reboot: the file names the boot it was written in (Linux's boot_id), and
-- a file of another boot starts empty. opts.dir: where the files go
-- (default $XDG_RUNTIME_DIR, else /tmp); each budget has its own file,
-- named after the budget (a digest of the API key unless rate_limit.name).
local core = require("stackone.core")
local window = require("stackone.limit.window")

local limit_core = core.limit

local host = {}

-- this boot's id, or "" where the system has none
local function boot_id()
  local f = io.open("/proc/sys/kernel/random/boot_id", "r")
  if not f then return "" end
  local id = f:read("*l") or ""
  f:close()
  return id
end
local BOOT = boot_id()

local Store = {}
Store.__index = Store
Store.__name = "stackone.limit.host"

--- the file of a budget
function Store:path(name)
  return self.dir .. "/stackone-budget-" .. name:gsub("[^%w_.-]", "_")
end

function Store:update(name, change)
  local file, err = limit_core.open(self:path(name))
  if not file then return nil, err end
  local text
  text, err = file:read()
  if not text then file:close(); return nil, err end
  local boot, rest = text:match("^boot (%S*)\n(.*)$")
  local state = window.decode(boot == BOOT and rest or "")
  local granted, wait = window.update(state, limit_core.now(), change)
  local ok
  ok, err = file:write("boot " .. BOOT .. "\n" .. window.encode(state))
  file:close()
  if not ok then return nil, err end
  return granted, wait
end

function host.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("stackone.limit.host: table of options expected, got " .. type(opts), 3)
  end
  local dir = opts and opts.dir or os.getenv("XDG_RUNTIME_DIR") or "/tmp"
  if type(dir) ~= "string" or dir == "" then
    error("stackone.limit.host: opts.dir must be a directory's path", 3)
  end
  return setmetatable({ dir = dir }, Store)
end

return host
