-- spec/support/prism.lua
--
-- Starts and stops a Prism mock server (Stoplight's `prism mock --errors`)
-- on the vendored StackOne CRM OpenAPI spec, for the conformance tests.
--
--   local prism = require("spec.support.prism")
--   local server = prism.start()          -- raises on failure
--   -- server.url  == "http://127.0.0.1:<port>"
--   server.stop()                          -- idempotent
--
-- Prism is installed with `npm ci --no-audit --no-fund` (package.json,
-- package-lock.json at the project root).

local socket = require("socket")
local process = require("support.process")

local M = {}

local DEFAULT_SPEC = "spec/data/stackone-crm.openapi.json"
local DEFAULT_LOG = "build/prism.log"
local PRISM_BIN = "node_modules/.bin/prism"
local HOST = "127.0.0.1"

local shell_quote = require("support.shell").quote

local function is_absolute(path)
  return path:sub(1, 1) == "/"
end

local function join(root, path)
  if is_absolute(path) or root == "." or root == "" then
    return path
  end
  return (root:gsub("/+$", "")) .. "/" .. path
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function file_exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
    return true
  end
  return false
end

local function run(cmd)
  return (require("support.shell").run(cmd))
end

local function read_tail(path, max_lines)
  local f = io.open(path, "r")
  if not f then
    return "(no log at " .. path .. ")"
  end
  local lines = {}
  for line in f:lines() do
    lines[#lines + 1] = line
    if #lines > max_lines then
      table.remove(lines, 1)
    end
  end
  f:close()
  if #lines == 0 then
    return "(log " .. path .. " is empty)"
  end
  return table.concat(lines, "\n")
end

local function read_all(path)
  local f = io.open(path, "r")
  if not f then
    return ""
  end
  local s = f:read("*a") or ""
  f:close()
  return s
end

-- Ask the kernel for a free loopback port: bind to port 0, read it, close.
local function free_port()
  local server, err = socket.bind(HOST, 0)
  if not server then
    error("prism: cannot bind " .. HOST .. ":0 to find a free port: " .. tostring(err), 0)
  end
  local _, port = server:getsockname()
  server:close()
  port = tonumber(port)
  if not port then
    error("prism: could not read the port of a bound socket", 0)
  end
  return port
end

-- True when something on host:port accepts a TCP connection and answers an
-- HTTP request with a status line.
local function answers_http(port)
  local conn = socket.tcp()
  conn:settimeout(2)
  local ok = conn:connect(HOST, port)
  if not ok then
    conn:close()
    return false
  end
  conn:send("GET /__prism_ready HTTP/1.1\r\nHost: " .. HOST .. ":" .. port
    .. "\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
  local line = conn:receive("*l")
  conn:close()
  return line ~= nil and line:match("^HTTP/1%.%d %d%d%d") ~= nil
end

-- Launch prism in the background (process.spawn), its output in log.
local function launch(root, bin, spec, log, port, extra_args)
  local args = {
    shell_quote(bin), "mock", "--errors",
    "-h", HOST, "-p", tostring(port),
  }
  for _, a in ipairs(extra_args or {}) do
    args[#args + 1] = shell_quote(a)
  end
  args[#args + 1] = shell_quote(spec)
  return process.spawn("cd " .. shell_quote(root) .. " && " .. table.concat(args, " ") .. " </dev/null",
    join(root, log))
end

-- Path of the prism executable under root (default ".").
function M.binary(root)
  return join(root or ".", PRISM_BIN)
end

-- True when `npm ci` has been run under root (default ".").
function M.installed(root)
  return file_exists(M.binary(root))
end

-- Start Prism. opts (all optional):
--   root       project root (default "."); prism runs from there
--   spec       spec path, relative to root (default spec/data/stackone-crm.openapi.json)
--   log        log file, relative to root (default build/prism.log)
--   timeout    seconds to wait for Prism to answer (default 60)
--   port       port to try first (default: a free one from the kernel); if
--              it is taken, one retry is made on a free port
--   args       extra CLI arguments for `prism mock`, e.g. { "--seed", "1" }
-- Returns { port, pid, url, log, stop }; raises on failure.
function M.start(opts)
  opts = opts or {}
  local root = opts.root or "."
  local spec = opts.spec or DEFAULT_SPEC
  local log = opts.log or DEFAULT_LOG
  local timeout = opts.timeout or 60
  local log_path = join(root, log)

  local bin = M.binary(root)
  if not file_exists(bin) then
    error("prism: " .. bin .. " not found; run `npm ci --no-audit --no-fund` in "
      .. root .. " to install the Prism mock server", 0)
  end
  if not file_exists(join(root, spec)) then
    error("prism: spec " .. join(root, spec) .. " not found", 0)
  end
  if not run("mkdir -p " .. shell_quote(dirname(log_path))) then
    error("prism: cannot create the directory of " .. log_path, 0)
  end

  local last_err
  for attempt = 1, 2 do -- second try with another port if the first was taken
    local port = (attempt == 1 and opts.port) or free_port()
    local prism = launch(root, PRISM_BIN, spec, log, port, opts.args)
    local started = socket.gettime()
    local deadline = started + timeout
    local ready, died = false, false
    while socket.gettime() < deadline do
      -- "listening" in the log guards against another process that grabbed
      -- the port between free_port() and prism's bind.
      if answers_http(port) and prism:alive()
          and read_all(log_path):find("is listening on", 1, true) then
        ready = true
        break
      end
      if not prism:alive() or read_all(log_path):find("EADDRINUSE", 1, true) then
        died = true
        break
      end
      socket.sleep(0.2)
    end

    if ready then
      local server = {
        port = port,
        pid = prism.pid,
        url = "http://" .. HOST .. ":" .. port,
        log = log_path,
        startup_seconds = socket.gettime() - started,
      }
      server.stop = function() prism:stop() end
      return server
    end

    prism:stop()
    local tail = read_tail(log_path, 30)
    if died then
      last_err = "prism: exited before answering on port " .. port .. "; tail of "
        .. log_path .. ":\n" .. tail
    else
      last_err = "prism: did not answer on port " .. port .. " within " .. timeout
        .. " s; tail of " .. log_path .. ":\n" .. tail
    end
    if not read_all(log_path):find("EADDRINUSE", 1, true) then
      break
    end
  end
  error(last_err, 0)
end

return M
