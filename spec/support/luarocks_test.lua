-- What `luarocks test` runs (the rockspec's `test` section): LuaRocks starts
-- this file with the interpreter it is set up for, e.g. lua5.3 for
-- `luarocks --lua-version=5.3 test`. It builds the rock for that Lua into a
-- tree of its own, build/luarocks-<version>/tree/ (`luarocks make
-- --deps-mode=none`: the dependencies are the ones installed), then runs
-- the busted suite under the same interpreter against that build and the
-- local server. Nothing else: no apt-get, no npm, no valgrind, no fuzzers
-- (`make test` is the developer pipeline).
--
--   luarocks --lua-version=5.3 test [-- busted options and spec files]
--
-- busted, LuaSocket and lua-cjson may come from the system (Debian's
-- lua-busted, lua-socket, lua-cjson) or from LuaRocks' trees for that Lua
-- (`luarocks test` installs busted and luasocket there when they are
-- missing). LUAROCKS names another luarocks command.
local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

if arg[1] == "--run-busted" then
  -- the second half, in a process of its own: busted itself, in this
  -- interpreter, with LuaRocks' trees for it on the paths
  table.remove(arg, 1)
  package.path = os.getenv("STACKONE_LR_PATH") .. ";" .. package.path
  package.cpath = os.getenv("STACKONE_LR_CPATH") .. ";" .. package.cpath
  require("busted.runner")({ standalone = false })
  return
end

local i = 0
while arg[i - 1] do i = i - 1 end
local lua = arg[i] -- the interpreter LuaRocks ran this file with
local version = _VERSION:match("%d+%.%d+")

local function run(cmd)
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then return ok == 0 end -- 5.1: the wait status
  return ok == true and (code == nil or code == 0)
end

local function output(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end

local rockspec = "stackone-scm-1.rockspec"
local f = io.open(rockspec)
if not f then
  io.stderr:write("luarocks test: run it from the checkout (", rockspec, " is not here)\n")
  os.exit(1)
end
local text = f:read("*a")
f:close()

-- the top directories the rockspec takes files from: the rock is built
-- from a copy, so the checkout gets no *.o files nor a stackone/ directory
local spec = {}
local setfenv = rawget(_G, "setfenv") -- 5.1 and LuaJIT
if setfenv then
  setfenv(assert(rawget(_G, "loadstring")(text, "@" .. rockspec)), spec)()
else
  assert(load(text, "@" .. rockspec, "t", spec))()
end
local dirs, list = {}, {}
local function add(path) dirs[path:match("^[^/]+")] = true end
for _, m in pairs(spec.build.modules) do
  if type(m) == "string" then add(m) else for _, src in ipairs(m.sources) do add(src) end end
end
for _, p in pairs(spec.build.install.bin) do add(p) end
for _, d in ipairs(spec.build.copy_directories) do add(d) end
for d in pairs(dirs) do list[#list + 1] = q(d) end

local luarocks = (os.getenv("LUAROCKS") or "luarocks") .. " --lua-version=" .. version
local build = "build/luarocks-" .. version
local tree = build .. "/tree"
io.stderr:write("building the rock for Lua ", version, " into ", tree, "/ (log: ", build, "/log)\n")
if not run(("rm -rf %s && mkdir -p %s/src && cp -R LICENSE %s %s %s/src/ && cd %s/src && " ..
    "%s make --tree ../tree --deps-mode=none %s > ../log 2>&1"):format(q(build), q(build), rockspec,
    table.concat(list, " "), q(build), q(build), luarocks, rockspec)) then
  io.stderr:write("luarocks make failed:\n")
  os.execute("tail -n 30 " .. q(build .. "/log") .. " >&2")
  os.exit(1)
end

-- spec/helper.lua puts STACKONE_BUILD first on package.cpath; the Lua
-- layer comes from lua/, the files the rock installed. spec/rockspec_spec.lua
-- builds the rock again, for this Lua only (STACKONE_ROCK_LUAS).
local args = {}
for n = 1, #arg do args[n] = q(arg[n]) end
local cmd = ("STACKONE_BUILD=%s STACKONE_ROCK_LUAS=%s STACKONE_LR_PATH=%s STACKONE_LR_CPATH=%s %s %s --run-busted %s")
  :format(q(tree .. "/lib/lua/" .. version), q(lua), q(output(luarocks .. " path --lr-path")),
    q(output(luarocks .. " path --lr-cpath")), q(lua), q(arg[0]), table.concat(args, " "))
io.stderr:write("running the suite under ", lua, "\n")
os.exit(run(cmd) and 0 or 1)
