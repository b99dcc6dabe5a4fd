--- stackone.loop: adapters that hand a client's engine to a host's event
-- loop (the client option `loop`). Each is a small table of four methods
-- (and an optional close); see docs/hosts.md to write one for another
-- loop. One adapter serves one client.
local public = require("stackone.public")

local loop = {}

local module_name = require("stackone.loop.check").module_name

--- for luv, and Neovim's vim.uv (the same API): stackone.loop.luv(uv).
-- A call resumes inside a luv callback; in Neovim, use loop.neovim.
function loop.luv(uv)
  if type(uv) ~= "table" or type(uv.new_socket_poll) ~= "function" then
    public.raise("stackone.loop.luv", "the luv module expected (require('luv') or vim.uv), got " .. type(uv), 1)
  end
  return require("stackone.loop.luv")(uv)
end

--- for Neovim (0.7 and newer): its luv loop (vim.uv, or vim.loop before
-- 0.10), with every call resumed through vim.schedule, so that the code
-- after a call may use vim.api
function loop.neovim()
  local vim = rawget(_G, "vim")
  if type(vim) ~= "table" or type(vim.schedule) ~= "function" then
    public.raise("stackone.loop.neovim", "not running inside Neovim (no vim.schedule)")
  end
  return require("stackone.loop.luv")(vim.uv or vim.loop, vim.schedule)
end

--- for cqueues: stackone.loop.cqueues([controller]); calls are made from
-- coroutines the controller runs
function loop.cqueues(controller)
  if controller ~= nil and module_name(controller) ~= "controller" then
    public.raise("stackone.loop.cqueues", "a cqueues controller (cqueues.new()) or nothing expected, got "
      .. (module_name(controller) and "the " .. module_name(controller) .. " module" or type(controller)), 1)
  end
  return require("stackone.loop.cqueues")(controller)
end

return loop
