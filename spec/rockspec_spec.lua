-- The rockspecs LuaRocks users install from: they list every module and
-- every C source, keep the real dependencies, find libcurl on Debian and
-- Ubuntu without CURL_INCDIR, and `luarocks --lua-version=X make` builds a
-- rock whose module, examples and local server work under that Lua.
--
-- Which Luas are built: STACKONE_ROCK_LUAS (e.g. "lua5.1 luajit") if set;
-- else every installed one of lua5.1, luajit, lua5.2, lua5.3 and lua5.4
-- when the suite runs under Lua 5.4 (`busted --lua=lua5.4`), and the
-- suite's own Lua under any other (make test runs the suite under each).
local shell = require("support.shell")
local process = require("support.process")

local SCM, RELEASE = "stackone-scm-1.rockspec", "stackone-0.1.0-1.rockspec"

local function read(path)
  return (assert(shell.read(path), path))
end

-- a rockspec's globals, as LuaRocks reads it (a chunk run in an empty environment)
local function load_rockspec(path)
  local env = {}
  local chunk
  local setfenv = rawget(_G, "setfenv") -- 5.1 and LuaJIT
  if setfenv then
    chunk = assert(rawget(_G, "loadstring")(read(path), "@" .. path))
    setfenv(chunk, env)
  else
    chunk = assert(load(read(path), "@" .. path, "t", env))
  end
  chunk()
  return env
end

local function lines(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

local function sorted(t)
  table.sort(t)
  return t
end

local q = shell.quote

-- what LuaRocks makes of a table with `platforms` on a system that is the
-- given platforms, least specific first (its platform_overrides)
local ORDER = { "unix", "bsd", "solaris", "netbsd", "openbsd", "freebsd", "linux", "macosx", "cygwin",
  "msys", "haiku", "windows", "win32", "mingw", "mingw32", "msys2_mingw_w64" }
local function deep_merge(dst, src)
  for k, v in pairs(src) do
    if type(v) == "table" then
      if type(dst[k]) ~= "table" then dst[k] = {} end
      deep_merge(dst[k], v)
    else
      dst[k] = v
    end
  end
end
local function on_platform(tbl, ...)
  local is = {}
  for _, p in ipairs({ ... }) do is[p] = true end
  local out = {}
  for k, v in pairs(tbl) do if k ~= "platforms" then out[k] = v end end
  for _, p in ipairs(ORDER) do
    if is[p] and tbl.platforms[p] then deep_merge(out, tbl.platforms[p]) end
  end
  return out
end

describe("the rockspecs", function()
  local spec = load_rockspec(SCM)

  it("list every C source and every Lua module, the server's too", function()
    local sources = {}
    for _, s in ipairs(spec.build.modules["stackone.core"].sources) do sources[#sources + 1] = s end
    assert.same(lines("ls src/*.c | sort"), sorted(sources))
    local sdk, server = {}, {}
    for name, path in pairs(spec.build.modules) do
      if type(path) == "string" then
        -- the name is the path's: stackone.loop.luv is lua/stackone/loop/luv.lua
        local expected = path:match("^server/(.*)%.lua$")
        if expected then
          server[#server + 1] = path
          assert.equal("stackone.server." .. expected, name)
        else
          sdk[#sdk + 1] = path
          assert.equal(name, (path:gsub("^lua/", ""):gsub("/init%.lua$", ""):gsub("%.lua$", ""):gsub("/", ".")))
        end
      end
      assert.matches("^stackone", name)
    end
    assert.same(lines("ls lua/stackone/*.lua lua/stackone/*/*.lua | sort"), sorted(sdk))
    assert.same(lines("ls server/*.lua | grep -v '/stackone_server.lua$' | sort"), sorted(server))
    assert.same({ ["stackone-server"] = "server/stackone_server.lua" }, spec.build.install.bin)
    assert.same({ "examples", "types", "docs" }, spec.build.copy_directories)
  end)

  it("keep the real dependencies for users, and any Lua from 5.1 to 5.5", function()
    assert.same({ "lua >= 5.1, < 5.6", "lua-cjson >= 2.1.0" }, spec.dependencies)
    -- busted and the local server's LuaSocket are for tests only
    assert.same({ "busted", "luasocket" }, spec.test_dependencies)
  end)

  it("check libcurl itself on Linux and the BSDs, nothing on macOS, curl/curl.h on Windows", function()
    local ext = spec.external_dependencies
    assert.same({ CURL = { library = "curl" } }, on_platform(ext, "unix", "linux"))
    assert.same({ CURL = { library = "curl" } }, on_platform(ext, "unix", "bsd", "freebsd"))
    assert.same({ CURL = {} }, on_platform(ext, "unix", "bsd", "macosx", "macos"))
    assert.same({ CURL = {} }, on_platform(ext, "unix")) -- an unknown Unix: CURL_DIR still works
    assert.same({ CURL = { header = "curl/curl.h" } }, on_platform(ext, "windows", "win32"))
    assert.same({ CURL = { header = "curl/curl.h" } }, on_platform(ext, "windows", "win32", "mingw32", "mingw"))
  end)

  it("have a homepage and the MIT license, whose text is in LICENSE", function()
    assert.matches("^https://", spec.description.homepage)
    assert.equal("MIT", spec.description.license)
    local license = read("LICENSE")
    assert.matches("^MIT License\n\nCopyright %(c%) 2026 the stackone%-lua authors\n", license)
    assert.matches("THE SOFTWARE IS PROVIDED \"AS IS\"", license)
  end)

  it("run only the busted suite under `luarocks test`", function()
    assert.same({ type = "command", script = "spec/support/luarocks_test.lua" }, spec.test)
    local script = read(spec.test.script)
    assert.matches("busted", script)
    for _, word in ipairs({ "apt", "npm", "valgrind", "fuzz", "make test" }) do
      assert.is_nil(script:gsub("%-%-[^\n]*", ""):find(word, 1, true), word)
    end
  end)

  it("the release rockspec is the scm one at the tag of the module's version", function()
    local release = load_rockspec(RELEASE)
    local c_version = read("src/stackone.h"):match('#define SO_VERSION "([^"]+)"')
    assert.equal(c_version .. "-1", release.version)
    assert.equal("v" .. c_version, release.source.tag)
    assert.equal(spec.source.url, release.source.url)
    release.version, release.source.tag = spec.version, nil
    assert.same(spec, release)
  end)
end)

-- The Luas to build for: { lua = "lua5.3", version = "5.3" }, ...
local function luas_to_build()
  local names = os.getenv("STACKONE_ROCK_LUAS")
  local running = arg and arg[-1]
  if not names then
    if _VERSION == "Lua 5.4" or not running then
      names = "lua5.1 luajit lua5.2 lua5.3 lua5.4"
    else
      names = running
    end
  end
  local out = {}
  for name in names:gmatch("%S+") do
    local version = lines(q(name) .. " -e 'io.write((_VERSION:gsub(\"Lua \", \"\")))' 2>/dev/null")[1]
    if version then out[#out + 1] = { lua = name, version = version } end
  end
  return out
end

-- LuaRocks knows Lua 5.5 from 3.13.0 on; Debian 12's is 3.8.0, which
-- finds no 5.5 headers (it reads LUA_VERSION_NUM as a number in lua.h,
-- which 5.5 computes)
local function luarocks_knows(version)
  if version ~= "5.5" then return true end
  local major, minor = (lines("luarocks --version 2>/dev/null")[1] or ""):match(" (%d+)%.(%d+)")
  major, minor = tonumber(major), tonumber(minor)
  return major ~= nil and (major > 3 or major == 3 and minor >= 13)
end

-- the top directories the rockspec takes files from, to build from a copy:
-- the checkout gets no *.o files, and builds for several Luas never share one
local function source_dirs(spec)
  local dirs = {}
  local function add(path) dirs[path:match("^[^/]+")] = true end
  for _, m in pairs(spec.build.modules) do
    if type(m) == "string" then add(m) else for _, s in ipairs(m.sources) do add(s) end end
  end
  for _, p in pairs(spec.build.install.bin) do add(p) end
  for _, d in ipairs(spec.build.copy_directories) do add(d) end
  local list = {}
  for d in pairs(dirs) do list[#list + 1] = d end
  return sorted(list)
end

describe("luarocks make, without CURL_INCDIR", function()
  local spec = load_rockspec(SCM)
  local targets = luas_to_build()
  local root -- a temporary directory: <root>/<version>/{src/,tree/,log,status}

  -- builds the rock for every version of targets at once, each from its own
  -- copy of the sources into its own tree
  local function build_all()
    root = lines("mktemp -d \"${TMPDIR:-/tmp}/stackone-rocks.XXXXXX\"")[1]
    local jobs, seen = {}, {}
    for _, t in ipairs(targets) do
      if not seen[t.version] then
        seen[t.version] = true
        local dir = root .. "/" .. t.version
        -- a Lua of a build tree (build/lua5.5/bin/lua5.5) is named by its path
        local lua_dir = t.lua:find("/") and " --lua-dir=" .. q(t.lua:match("^(.*)/[^/]*/[^/]*$")) or ""
        jobs[#jobs + 1] = ("(mkdir -p %s/src && cp -R LICENSE %s %s %s/src/ && cd %s/src && " ..
          "env -u CURL_DIR -u CURL_INCDIR -u CURL_LIBDIR luarocks --lua-version=%s%s make --tree %s " ..
          "--deps-mode=none %s > %s 2>&1; echo $? > %s) &"):format(q(dir), SCM,
          table.concat(source_dirs(spec), " "), q(dir), q(dir), t.version, lua_dir, q(dir .. "/tree"), SCM,
          q(dir .. "/log"), q(dir .. "/status"))
      end
    end
    shell.run(table.concat(jobs, " ") .. " wait")
  end

  -- the tree built for this version, or nil and the end of the build's log
  local function built(version)
    if not root then build_all() end
    local dir = root .. "/" .. version
    local status = io.open(dir .. "/status")
    local ok = status and status:read("*l") == "0"
    if status then status:close() end
    if ok then return dir .. "/tree" end
    return nil, table.concat(lines("tail -n 25 " .. q(dir .. "/log") .. " 2>&1"), "\n")
  end

  teardown(function()
    if root then shell.run("rm -rf " .. q(root)) end
  end)

  -- LUA_PATH and LUA_CPATH for the tree, then the interpreter's own (cjson, LuaSocket)
  local function paths(tree, version)
    return ("LUA_PATH=%s LUA_CPATH=%s"):format(
      q(("%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua;;"):format(tree, version, tree, version)),
      q(("%s/lib/lua/%s/?.so;;"):format(tree, version)))
  end

  local CREATE = [[
local stackone = require("stackone")
local client = assert(stackone.new{ api_key = "test-key", account_id = "acc-1", base_url = "http://127.0.0.1:%s" })
local contact, res = client.crm.contacts.create{ first_name = "Ada", emails = { "ada@example.org" } }
assert(contact, tostring(res))
local core -- where stackone.core came from (5.1 has no package.searchpath)
for template in package.cpath:gmatch("[^;]+") do
  local path = template:gsub("%%?", "stackone/core")
  local f = io.open(path)
  if f then f:close(); core = path; break end
end
print(stackone._VERSION, res.status, contact.id, contact.first_name, core)
client:close()
]]

  for _, target in ipairs(targets) do
    local lua, version = target.lua, target.version
    local it = luarocks_knows(version) and it or function(name)
      pending(name .. " (the installed LuaRocks does not know Lua " .. version .. "; 3.13.0 does)")
    end
    it(("builds and installs for %s (%s), and a create works through the installed rock and " ..
        "its stackone-server"):format(lua:match("[^/]+$"), version), function()
      local tree, log = built(version)
      assert.is_truthy(tree, "luarocks --lua-version=" .. version .. " make failed:\n" .. tostring(log))
      for _, file in ipairs({ "/lib/lua/" .. version .. "/stackone/core.so", "/share/lua/" .. version ..
          "/stackone/init.lua", "/share/lua/" .. version .. "/stackone/server/json.lua", "/bin/stackone-server",
          "/lib/luarocks/rocks-" .. version .. "/stackone/scm-1/examples/import_contacts.lua",
          "/lib/luarocks/rocks-" .. version .. "/stackone/scm-1/types/stackone.lua",
          "/lib/luarocks/rocks-" .. version .. "/stackone/scm-1/docs/reference.md" }) do
        assert.is_truthy(io.open(tree .. file), file)
      end

      -- the installed command (LuaRocks' wrapper runs it under the tree's
      -- Lua; under LuaJIT, the rock's copy is run by luajit itself)
      local server = q(tree .. "/bin/stackone-server")
      if lua == "luajit" then
        server = q(lua) .. " " .. q(tree .. "/lib/luarocks/rocks-" .. version .. "/stackone/scm-1/bin/stackone-server")
      end
      local started, installed = pcall(process.start, { what = "stackone-server", port_line = true,
        command = server .. " --api-key test-key" })
      local result
      if started then
        result = lines(("cd /tmp && %s %s -e %s 2>&1"):format(paths(tree, version), q(lua),
          q(CREATE:format(installed.port))))
        installed:stop()
      end
      assert(started, installed)
      local text = table.concat(result, "\n")
      local sdk_version, status, id, name, core = text:match("^(%S+)\t(%d+)\t(%S+)\t(%S+)\t(%S+)$")
      assert.is_truthy(sdk_version, text)
      assert.equal("200", status)
      assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", id)
      assert.equal("Ada", name)
      assert.equal(tree .. "/lib/lua/" .. version .. "/stackone/core.so", core)
    end)
  end
end)
