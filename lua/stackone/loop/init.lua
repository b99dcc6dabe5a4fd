--- stackone.loop: adapters that hand a client's engine to a host's event
-- loop (the client option `loop`). Each is a small table of four methods;
-- see the README ("Event loops") to write one for another loop.
local public = require("stackone.public")

local loop = {}

--- for luv, and Neovim's vim.uv (the same API): stackone.loop.luv(uv)
function loop.luv(uv)
  if type(uv) ~= "table" or type(uv.new_timer) ~= "function" then
    public.raise("stackone.loop.luv", "the luv module expected (require('luv') or vim.uv), got " .. type(uv), 1)
  end
  return require("stackone.loop.luv")(uv)
end

--- for cqueues: stackone.loop.cqueues([controller]); calls are made from
-- coroutines the controller runs
function loop.cqueues(controller)
  return require("stackone.loop.cqueues")(controller)
end

return loop
