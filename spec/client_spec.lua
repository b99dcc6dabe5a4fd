-- The client handle: options, lifecycle, base_url rules, and keeping the
-- API key out of every output.
local stackone = require("stackone")
local fx = require("support.fixtures")

-- runs code in a child of the suite's Lua, with the environment env
local function lua_with_env(env, code)
  local cmd = string.format("%s %s -e %q 2>&1", env, fx.LUA,
    'package.path="./lua/?.lua;./lua/?/init.lua;"..package.path; ' ..
    'package.cpath="' .. fx.BUILD .. '/?.so;"..package.cpath; ' .. code)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

describe("stackone.new", function()
  it("needs an API key, and says where it looked", function()
    local out = lua_with_env("env -u STACKONE_API_KEY",
      'local ok, msg = pcall(require("stackone").new, {}); print(ok, msg)')
    assert.matches("false", out)
    assert.matches("api_key is required", out)
    assert.matches("STACKONE_API_KEY", out)
  end)

  it("reads STACKONE_API_KEY and STACKONE_ACCOUNT_ID from the environment", function()
    local out = lua_with_env("STACKONE_API_KEY=envkey STACKONE_ACCOUNT_ID=env-acc",
      'local c = require("stackone").new{ base_url = "http://127.0.0.1:1" }; ' ..
      'local _, err = c.crm.contacts.create{}; print(err.kind, err.code)')
    assert.matches("network\tCOULDNT_CONNECT", out)
  end)

  it("raises for a non-table argument and unknown options", function()
    assert.has_error(function() stackone.new("key") end,
      "bad argument #1 to 'stackone.new' (table expected, got string)")
    local ok, msg = pcall(stackone.new, { api_key = "k", timout = 3 })
    assert.is_false(ok)
    assert.matches("unknown option 'timout' %(did you mean 'timeout'%?%)", msg)
    ok, msg = pcall(stackone.new, { api_key = "k", timeout = -1 })
    assert.is_false(ok)
    assert.matches("timeout", msg)
  end)

  describe("base_url", function()
    local function refused(url, extra)
      local opts = { api_key = fx.API_KEY, account_id = "a", base_url = url }
      for k, v in pairs(extra or {}) do opts[k] = v end
      local client, err = stackone.new(opts)
      assert.is_nil(client)
      assert.equal("invalid", err.kind)
      return err
    end

    it("must be http or https", function()
      assert.matches("http or https", refused("ftp://example.com").message)
      assert.matches("valid", refused("not a url").message)
    end)

    it("refuses http:// to a host other than loopback", function()
      assert.matches("clear text", refused("http://api.example.com").message)
      assert.matches("clear text", refused("http://10.0.0.1:8080").message)
    end)

    it("allows http:// to loopback, or anywhere when asked", function()
      for _, url in ipairs{ "http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9" } do
        local c = assert(stackone.new{ api_key = "k", base_url = url })
        c:close()
      end
      local c = assert(stackone.new{ api_key = "k", base_url = "http://api.example.com", allow_insecure_http = true })
      c:close()
    end)

    it("refuses credentials, queries and fragments", function()
      assert.matches("credentials", refused("https://user:pw@api.example.com").message)
      assert.matches("fragment", refused("https://api.example.com/#x").message)
      assert.matches("query", refused("https://api.example.com/?a=b").message)
    end)

    it("refuses an account id with CR/LF", function()
      local _, err = stackone.new{ api_key = "k", account_id = "a\r\nX-Evil: 1", base_url = "http://127.0.0.1:9" }
      assert.equal("invalid", err.kind)
    end)
  end)

  describe("the handle", function()
    it("closes once, idempotently, through close, __close and __gc", function()
      local c = assert(stackone.new{ api_key = fx.API_KEY, base_url = "http://127.0.0.1:9" })
      assert.matches("^stackone%.client %(0x%x+%)$", tostring(c))
      assert.is_true(c:close())
      assert.is_true(c:close())
      assert.equal("stackone.client (closed)", tostring(c))
      if _VERSION >= "Lua 5.4" then -- to-be-closed variables are 5.4 syntax (5.5 too)
        c = assert(load([[
          local stackone = ...
          local scoped <close> = assert(stackone.new{ api_key = "k", base_url = "http://127.0.0.1:9" })
          return scoped
        ]]))(stackone)
        assert.equal("stackone.client (closed)", tostring(c))
      end
      for _ = 1, 50 do stackone.new{ api_key = "k", base_url = "http://127.0.0.1:9" } end
      collectgarbage()
      collectgarbage()
    end)

    it("names its type in argument errors", function()
      local c = assert(stackone.new{ api_key = "k", base_url = "http://127.0.0.1:9" })
      local ok, msg = pcall(c.close, {})
      c:close()
      assert.is_false(ok)
      assert.matches("stackone.client expected", msg)
    end)

    it("never shows the API key", function()
      local c = assert(stackone.new{ api_key = fx.API_KEY, base_url = "http://127.0.0.1:9" })
      assert.is_nil(tostring(c):find(fx.API_KEY, 1, true))
      c:close()
    end)
  end)
end)
