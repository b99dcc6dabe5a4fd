-- Every Lua file a user runs or loads (the SDK, the local server the rock
-- installs as stackone-server, the examples) compiles under the Lua that
-- runs the suite: each version refuses something the others accept (5.5
-- makes loop variables read-only, 5.1 has no goto), and a file that no
-- spec happens to load under that Lua would not say so otherwise.
local function lua_files()
  local p = assert(io.popen("find lua server examples -name '*.lua' | sort"))
  local files = {}
  for path in p:lines() do files[#files + 1] = path end
  p:close()
  return files
end

describe("the Lua sources", function()
  it("all compile under " .. _VERSION .. (rawget(_G, "jit") and " (LuaJIT)" or ""), function()
    local files, refused = lua_files(), {}
    for _, path in ipairs(files) do
      local ok, err = loadfile(path)
      if not ok then refused[#refused + 1] = err end
    end
    assert.is_true(#files > 20, "found only " .. #files .. " files")
    assert.same({}, refused)
  end)
end)
