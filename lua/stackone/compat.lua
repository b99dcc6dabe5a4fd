--- What the Lua layer needs of Lua 5.2+ on every version it runs on
-- (5.1, LuaJIT, 5.2, 5.3, 5.4, 5.5).
local compat = {}

compat.unpack = table.unpack or rawget(_G, "unpack")

function compat.pack(...)
  return { n = select("#", ...), ... }
end

local create, resume, yield, status = coroutine.create, coroutine.resume, coroutine.yield, coroutine.status

--- whether the running code may yield (5.1 has no main coroutine object)
function compat.in_coroutine()
  local co, main = coroutine.running()
  return co ~= nil and not main
end

-- the coroutines compat.pcall made, each to the one its yields reach.
-- Weak both ways: the owner holds its inner coroutine on its stack, and
-- before 5.2 (no ephemerons) a value that refers back to its weak key
-- would keep the pair, and an abandoned call's client, forever. While
-- the owner lives, so does the inner coroutine, and the pair stays.
local owner = setmetatable({}, { __mode = "kv" })

--- the running coroutine a host resumes: compat.pcall's own are passed
-- through, so a loop adapter is given the coroutine it can resume
function compat.running()
  local co = coroutine.running()
  return owner[co] or co
end

--- pcall(fn, ...) that lets fn yield on every Lua: fn runs in a coroutine
-- of its own, whose yields pass through to whoever resumed the caller,
-- and whose error is caught here (5.1's pcall cannot be yielded across).
-- Returns true, or false and the error; fn's results are not kept.
function compat.pcall(fn, ...)
  local co = create(fn)
  owner[co] = compat.running()
  local res = compat.pack(resume(co, ...))
  while true do
    if not res[1] then return false, res[2] end
    if status(co) == "dead" then return true end
    if not compat.in_coroutine() then
      return false, "it yielded, but the call was not made from a coroutine"
    end
    res = compat.pack(resume(co, yield(compat.unpack(res, 2, res.n))))
  end
end

return compat
