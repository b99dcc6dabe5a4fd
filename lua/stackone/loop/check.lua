--- Whether a value can be a client's option `loop`: the adapter contract
-- (docs/hosts.md) checked when the client is made, so that a mistake is
-- reported at the user's line, saying what to pass instead.
local check = {}

local METHODS = { "io", "timer", "wait", "wake" }

--- what x is, when it is a loop library where an adapter is expected:
-- "luv", "cqueues" (the module) or "controller" (a cqueues controller)
function check.module_name(x)
  if type(x) == "table" and type(x.new_socket_poll) == "function" then return "luv" end
  if type(x) == "table" and type(x.monotime) == "function" and type(x.new) == "function" then
    return "cqueues"
  end
  if type(x) == "userdata" then
    local ok, cqueues = pcall(require, "cqueues")
    if ok and cqueues.type(x) == "controller" then return "controller" end
  end
end

local INSTEAD = {
  luv = "the luv module itself: pass stackone.loop.luv(uv) (in Neovim: stackone.loop.neovim())",
  cqueues = "the cqueues module itself: pass stackone.loop.cqueues(controller)",
  controller = "a cqueues controller itself: pass stackone.loop.cqueues(controller)",
}

--- why x cannot be the option `loop`, or nil when it can
function check.problem(x)
  local name = check.module_name(x)
  if name then return "option 'loop' must be a loop adapter, not " .. INSTEAD[name] end
  if type(x) ~= "table" then
    return "option 'loop' must be a loop adapter table (such as stackone.loop.luv(uv)), got " .. type(x)
  end
  for _, method in ipairs(METHODS) do
    if type(x[method]) ~= "function" then
      return ("option 'loop' is not a loop adapter: it has no method '%s' (an adapter has io, timer, "
        .. "wait and wake; see docs/hosts.md)"):format(method)
    end
  end
  if x.close ~= nil and type(x.close) ~= "function" then
    return "option 'loop': the adapter's 'close' must be a function, got " .. type(x.close)
  end
  if require("stackone.engine").serving(x) then
    return "option 'loop': this adapter already serves another open client (make one adapter per client)"
  end
end

return check
