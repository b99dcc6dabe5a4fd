-- What the specs need of the system, the same on every Lua: running a
-- command, reading and writing a file, quoting a word for sh.
local M = {}

--- the whole file at path, or nil when it cannot be opened
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- writes text to the file at path (raises when it cannot)
function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- s as one word for sh, in single quotes
function M.quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

-- os.execute: 5.1 and LuaJIT return the wait status, 5.2+ return
-- true|nil, "exit"|"signal", code

--- runs cmd; returns whether it exited 0, and its exit code
function M.run(cmd)
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then
    code = ok >= 256 and ok / 256 or ok
    return code == 0, code
  end
  return ok == true, code
end

return M
