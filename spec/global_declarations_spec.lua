-- Lua 5.5's global declarations (manual 3.3.7, "Variable Declarations"):
-- a user's script that declares every global it uses (`global none`, then
-- `global<const>` for what it reads) calls the SDK, and the SDK sets no
-- global, not even for a moment. The declarations are checked when a chunk
-- is compiled and bind only that chunk, so the SDK's own globals are
-- watched at run time: _G gets a __newindex guard before the first
-- require, and its keys are compared before and after. Each script runs in
-- a fresh process of the suite's Lua, against the local server.
-- Lua 5.5 only: `global` is 5.5 syntax.
if _VERSION ~= "Lua 5.5" then return end

local harness = require("support.harness")
local fx = require("support.fixtures")
local shell = require("support.shell")

local q = shell.quote

-- the guard and the check, shared by every script: what it prints last is
-- "globals set: <names>" (none: "globals set: -")
local GUARD = [[
local set, before = {}, {}
for k in pairs(_G) do before[k] = true end
setmetatable(_G, { __newindex = function(t, k, v) set[tostring(k)] = true; rawset(t, k, v) end })
local function report()
  for k in pairs(_G) do
    if not before[k] then set[tostring(k)] = true end
  end
  local names = {}
  for k in pairs(set) do names[#names + 1] = k end
  table.sort(names)
  print("globals set: " .. (#names > 0 and table.concat(names, ",") or "-"))
end
]]

-- a script that uses the whole public surface: create, get, each,
-- create_many, an error result, a usage error, <close>
local STRICT = [[
global none
global<const> require, assert, print, pairs, tostring, type, pcall, setmetatable, rawset, table, arg, _G
]] .. GUARD .. [[
local stackone = require("stackone")
local url, key = arg[1], arg[2]
do
  local client <close> = assert(stackone.new{ api_key = key, account_id = "acc-1", base_url = url })
  local contacts = client.crm.contacts
  local contact = assert(contacts.create{ first_name = "Ada", emails = { "ada@example.org" } })
  local got = assert(contacts.get(contact.id))
  local n = 0
  for _ in contacts.each{ page_size = 2 } do n = n + 1 end
  local results, summary = contacts.create_many{ { first_name = "Grace" }, { first_name = "Edsger" } }
  local missing, err = contacts.get("no-such-contact")
  local raised = pcall(contacts.create, { first_name = "Typo" }, { timout = 1 })
  print(got.first_name, n > 0, #results, summary.ok, missing, err.kind, raised)
end
report()
]]

-- the same with every global read-only (global<const> *)
local READ_ONLY = [[
global<const> *
]] .. GUARD .. [[
local stackone = require("stackone")
local client = assert(stackone.new{ api_key = arg[2], account_id = "acc-1", base_url = arg[1] })
local contact = assert(client.crm.contacts.create{ first_name = "Barbara" })
print(contact.first_name)
client:close()
report()
]]

describe("a Lua 5.5 script with global declarations", function()
  local server
  harness.serve({ reset = false }, function(s) server = s end)

  -- runs a script in a new process of the suite's Lua, with the in-tree
  -- SDK; returns what it printed and its exit code
  local function run(source)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(source)
    f:close()
    local p = assert(io.popen(("LUA_PATH_5_5=%s LUA_CPATH_5_5=%s %s %s %s %s 2>&1; echo EXIT=$?"):format(
      q("./lua/?.lua;./lua/?/init.lua;;"), q(fx.BUILD .. "/?.so;;"), q(fx.LUA), q(path), q(server.url),
      q(fx.API_KEY))))
    local out = p:read("a")
    p:close()
    os.remove(path)
    return out, tonumber(out:match("EXIT=(%d+)%s*$"))
  end

  it("`global none` with its reads declared const: every call works, and the SDK sets no global", function()
    local out, code = run(STRICT)
    assert.equal(0, code, out)
    assert.matches("^Ada\ttrue\t2\t2\tnil\thttp\tfalse\nglobals set: %-\n", out)
  end)

  it("`global<const> *`: the same", function()
    local out, code = run(READ_ONLY)
    assert.equal(0, code, out)
    assert.matches("^Barbara\nglobals set: %-\n", out)
  end)

  it("the declarations bind: a script assigning an undeclared global does not compile", function()
    local out, code = run("global none\nglobal<const> print\nprint(1)\nleak = 1\n")
    assert.equal(1, code, out)
    assert.matches("variable 'leak' not declared", out, 1, true)
    assert.is_true(shell.run(q(fx.LUA) .. " -e 'global<const> *; return 1'"))
  end)
end)
