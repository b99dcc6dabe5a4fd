-- The one way the specs start a program in the background and stop it by
-- PID: start it with its output in a file, wait until it is ready (a
-- "PORT n" line, or a check of the caller's), stop it and wait until it is
-- gone.
--
--   local process = require("support.process")
--   local node = process.start{ command = "node spec/support/h2_server.js", what = "the HTTPS test server",
--     port_line = true }              -- node.port, node.pid
--   node:stop()                       -- TERM, then waits; node:stop("KILL") for no goodbye
local socket = require("socket")
local shell = require("support.shell")

local M = {}

local Process = {}
Process.__index = Process

--- whether pid runs. A stopped program is reparented to init and stays a
-- zombie until init reaps it, and `kill -0` succeeds on a zombie: the
-- state comes from /proc (Linux), `kill -0` elsewhere.
function M.alive(pid)
  local stat = shell.read("/proc/" .. pid .. "/stat")
  if stat then
    local state = stat:match(".*%) (%a)") -- after the last ")" of "(comm)"
    return state ~= nil and state ~= "Z" and state ~= "X"
  end
  if shell.read("/proc/self/stat") then return false end -- /proc is there, the process is not
  return (shell.run("kill -0 " .. pid .. " 2>/dev/null"))
end

--- whether something accepts a TCP connection on a loopback port now
-- (the probe connection is closed at once): a ready check for start
function M.accepts(port)
  local sock = socket.tcp()
  sock:settimeout(0.2)
  local up = sock:connect("127.0.0.1", port)
  sock:close()
  return up ~= nil
end

--- starts command in the background, with stdout and stderr in the file
-- log (default: a temporary file, removed by stop). Does not wait for
-- anything. command is one program for sh, environment settings first if
-- any: the PID is the program's (a list such as "a; b" would give a shell's,
-- and stop would not reach b).
function M.spawn(command, log)
  local own_log = not log
  log = log or os.tmpname()
  local p = assert(io.popen(("%s > %s 2>&1 & echo $!"):format(command, shell.quote(log))))
  local pid = tonumber(p:read("*l"))
  p:close()
  if not pid then error("could not start: " .. command, 2) end
  return setmetatable({ pid = pid, log = log, own_log = own_log }, Process)
end

--- spawns opts.command and waits until it is ready, or raises (after
-- stopping it) with what it printed. opts: what (its name in the error),
-- port_line (wait for "PORT n" in its output: sets .port), ready
-- (function(process) -> truthy once ready), timeout (seconds, default 10),
-- interval (between checks, default 0.02), log (see spawn), details
-- (function() -> more text for the error, e.g. another log)
function M.start(opts)
  local proc = M.spawn(opts.command, opts.log)
  local deadline = socket.gettime() + (opts.timeout or 10)
  local ready, gone
  repeat
    if opts.port_line then
      proc.port = tonumber((proc:output()):match("PORT (%d+)"))
      ready = proc.port ~= nil
    end
    if opts.ready and (ready or not opts.port_line) then ready = opts.ready(proc) and true or false end
    gone = not ready and not M.alive(proc.pid)
    if not ready and not gone then socket.sleep(opts.interval or 0.02) end
  until ready or gone or socket.gettime() > deadline
  if ready then return proc end
  local said = proc:output() .. (opts.details and opts.details() or "")
  proc:stop("KILL")
  error(("%s %s: %s"):format(opts.what or opts.command, gone and "exited before it was ready"
    or "was not ready within " .. (opts.timeout or 10) .. " s", said), 2)
end

--- what it wrote to stdout and stderr so far
function Process:output()
  return shell.read(self.log) or ""
end

function Process:alive()
  return self.pid ~= nil and M.alive(self.pid)
end

--- sends signal (default TERM) and waits until it is gone (SIGKILL after
-- 5 s); idempotent
function Process:stop(signal)
  if not self.pid then return end
  shell.run(("kill -%s %d 2>/dev/null"):format(signal or "TERM", self.pid))
  local function wait(seconds)
    local deadline = socket.gettime() + seconds
    while M.alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.01) end
  end
  wait(5)
  if M.alive(self.pid) then
    shell.run("kill -KILL " .. self.pid .. " 2>/dev/null")
    wait(2)
  end
  self.pid = nil
  if self.own_log then os.remove(self.log) end
end

return M
