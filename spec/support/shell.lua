-- os.execute the same on every Lua: 5.1 and LuaJIT return the wait
-- status, 5.2+ return true|nil, "exit"|"signal", code.
local M = {}

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
