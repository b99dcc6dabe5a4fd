-- The rockspec LuaRocks users install from: it must list every module and
-- every C source, and `luarocks make` must build a working module.
local function load_rockspec()
  local env = {}
  local chunk = assert(loadfile("stackone-scm-1.rockspec", "t", env))
  if rawget(_G, "setfenv") then rawget(_G, "setfenv")(chunk, env) end -- 5.1: loadfile takes no env
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

describe("stackone-scm-1.rockspec", function()
  local spec = load_rockspec()

  it("lists every C source and every Lua module", function()
    local sources = {}
    for _, s in ipairs(spec.build.modules["stackone.core"].sources) do sources[#sources + 1] = s end
    table.sort(sources)
    assert.same(lines("ls src/*.c | sort"), sources)
    local modules = {}
    for name, path in pairs(spec.build.modules) do
      if type(path) == "string" then modules[#modules + 1] = path end
      assert.matches("^stackone", name)
    end
    table.sort(modules)
    assert.same(lines("ls lua/stackone/*.lua lua/stackone/*/*.lua | sort"), modules)
  end)

  it("keeps the real dependencies for users", function()
    local deps = table.concat(spec.dependencies, " ")
    assert.matches("lua >= 5.4", deps)
    assert.matches("lua%-cjson", deps)
    assert.equal("curl/curl.h", spec.external_dependencies.CURL.header)
  end)

  it("builds with luarocks make and the installed module works", function()
    local incdir = lines("dirname $(find /usr/include /usr/local/include -name curl.h -path '*curl/curl.h' " ..
      "2>/dev/null | head -1) | xargs dirname")[1]
    local tree = "build/rocktree"
    local ok = require("support.shell").run(("luarocks --lua-version=5.4 make --deps-mode=none --tree %s " ..
      "stackone-scm-1.rockspec CURL_INCDIR=%s > build/luarocks.log 2>&1"):format(tree, incdir))
    os.execute("rm -rf stackone src/*.o")
    assert.is_true(ok, "luarocks make failed: see build/luarocks.log")
    local out = lines(("cd /tmp && LUA_PATH='%s/%s/share/lua/5.4/?.lua;%s/%s/share/lua/5.4/?/init.lua;;' " ..
      "LUA_CPATH='%s/%s/lib/lua/5.4/?.so;;' lua5.4 -e 'local s = require(\"stackone\"); " ..
      "local c = s.new{ api_key = \"k\", base_url = \"http://127.0.0.1:9\" }; " ..
      "print(s._VERSION, tostring(c):match(\"^stackone.client\"), package.searchpath(\"stackone.core\", " ..
      "package.cpath))'"):format(os.getenv("PWD"), tree, os.getenv("PWD"), tree, os.getenv("PWD"), tree))
    assert.matches("^%d+%.%d+%.%d+\tstackone.client\t.*rocktree", out[1] or "")
  end)
end)
