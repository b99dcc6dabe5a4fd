-- Every example runs against the bundled local server and does what it says,
-- under the Lua that runs the suite (each example uses that Lua's in-tree
-- build and runs the local server on it too: see examples/connect.lua).
local LUA = require("support.fixtures").LUA

local function run(cmd)
  local p = assert(io.popen("env -u STACKONE_API_KEY -u STACKONE_ACCOUNT_ID -u STACKONE_BASE_URL " ..
    cmd .. " 2>&1; echo EXIT=$?"))
  local out = p:read("*a")
  p:close()
  return out, tonumber(out:match("EXIT=(%d+)%s*$"))
end

describe("examples", function()
  local cases = {
    { "create_contact.lua", "created contact %S+ %(HTTP 200%).*emails%s+steve@apple.com" },
    { "list_contacts.lua", "7 contacts updated after" },
    { "read_account.lua", "Apple Inc%." },
    { "read_lists.lua", "Newsletter subscribers" },
    { "custom_fields.lua", "Training Completion Status = Completed.*refused: .*no option 'Done'" },
    { "passthrough_proxy.lua", "read back Grace Hopper" },
    { "connect_link.lua", "send your customer to: http://127%.0%.0%.1:%d+/connect/%x" },
  }
  it("run under the suite's own Lua", function()
    local function which() return _VERSION .. (rawget(_G, "jit") and " (LuaJIT)" or "") end
    local out = run(LUA .. [[ -e 'print(_VERSION .. (rawget(_G, "jit") and " (LuaJIT)" or ""))']])
    assert.equal(which() .. "\nEXIT=0\n", out)
  end)

  for _, case in ipairs(cases) do
    it(case[1], function()
      local out, code = run(LUA .. " examples/" .. case[1])
      assert.equal(0, code, out)
      assert.matches(case[2], out)
    end)
  end

  it("export_contacts.lua writes every active account's contacts to one JSON Lines file", function()
    local path = os.tmpname()
    local out, code = run(LUA .. " examples/export_contacts.lua 2024-01-01T00:00:00Z " .. path)
    assert.equal(0, code, out)
    assert.matches("12/12 accounts, 0 failed", out)
    assert.matches("wrote 6 contacts of 12 accounts to", out)
    local lines, accounts = 0, {}
    for l in io.lines(path) do
      lines = lines + 1
      local record = require("cjson").decode(l)
      accounts[record.account_id] = (accounts[record.account_id] or 0) + 1
      assert.matches("^Contact %d%.%d$", record.contact.first_name)
    end
    os.remove(path)
    assert.equal(6, lines)
    assert.same({ ["linked-01"] = 1, ["linked-02"] = 2, ["linked-03"] = 3 }, accounts)
  end)

  it("import_contacts.lua imports a CSV and writes what failed to a file that can be fed back", function()
    local failed = os.tmpname()
    -- each run talks to a server of its own: a journal of its own too (not
    -- one beside the bundled data, which a later run would skip by)
    local function journal(n) return " --journal " .. failed .. "." .. n .. ".journal" end
    local out, code = run(LUA .. " examples/import_contacts.lua examples/data/contacts.csv --failed " .. failed
      .. journal(1))
    assert.equal(0, code, out)
    assert.matches("imported 10 of 10 contacts", out)
    out, code = run(LUA .. " examples/import_contacts.lua examples/data/contacts.jsonl --failed " .. failed
      .. journal(2))
    assert.equal(0, code, out)
    assert.matches("imported 3 of 4 contacts.*1 failed, written to", out)
    local f = assert(io.open(failed))
    local text = f:read("*a")
    f:close()
    assert.matches('"frist_name":"Typo"', text)
    out = run(LUA .. " examples/import_contacts.lua " .. failed .. " --failed " .. failed .. ".again" .. journal(3))
    assert.matches("imported 0 of 1 contacts", out)
    os.remove(failed)
    os.remove(failed .. ".again")
    for n = 1, 3 do os.remove(failed .. "." .. n .. ".journal") end
  end)
end)
