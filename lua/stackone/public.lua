--- How a public function reports a programmer mistake. The C core and the
-- Lua layer raise *usage errors* that name no function and no line:
-- `{ message = ..., argument = n }`. Only the public function the user
-- called knows its name, and it is one frame above the user's code, so
-- it turns the usage error into "<name>: message" (or Lua's own "bad
-- argument #n to '<name>' (...)") at the user's line. Public names and
-- frames live here and in init.lua, nowhere else.
local core = require("stackone.core")

local public = {}

local USAGE = core.usage_mt

--- a usage error, for error(); argument: the argument's number, if any
function public.usage(message, argument)
  return setmetatable({ message = message, argument = argument }, USAGE)
end

local function text_of(name, e)
  if e.argument then
    return ("bad argument #%d to '%s' (%s)"):format(e.argument, name, e.message)
  end
  return name .. ": " .. e.message
end

--- raises e for the public function `name`, whose frame calls fail: a
-- usage error becomes a message at the line that called the public
-- function; any other error (an error object, out of memory) goes on as
-- it is. Never call it as a tail call (`return fail(...)`): Lua 5.1
-- counts tail calls as frames, other versions do not.
function public.fail(name, e)
  if getmetatable(e) ~= USAGE then error(e, 0) end
  error(text_of(name, e), 3) -- 1: fail, 2: the public function, 3: its caller
end

--- public.fail with a usage error made of message (and argument)
function public.raise(name, message, argument)
  error(text_of(name, public.usage(message, argument)), 3)
end

return public
