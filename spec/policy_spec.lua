-- Policy as data: the options (src/options.c), the statuses
-- (src/statuses.c) and the error kinds (src/errors.c) are each one table.
-- A scratch build with one row of each changed shows the checks, the
-- exported rows and the generated files follow the row; the README's
-- stated defaults are the rows'.
local core = require("stackone.core")
local shell = require("support.shell")
local server_support = require("support.server")
local fx = require("support.fixtures")

-- the rows of a table of core.option_rows, by name
local function rows_of(which, rows)
  local out = {}
  for _, row in ipairs((rows or core.option_rows)[which]) do out[row.name] = row end
  return out
end

describe("the README's defaults", function()
  -- the `stackone.new{...}` example: `name = value, -- ... default ...`
  local function stated_defaults(readme)
    local block = assert(readme:match("local client = stackone%.new{\n(.-)\n}\n"), "the client example")
    local bulk = assert(readme:match("create_many%(records, {\n(.-)\n}%)"), "the bulk example")
    local out, lines = {}, {}
    for text in (block .. "\n" .. bulk):gmatch("[^\n]+") do lines[#lines + 1] = text end
    for i, text in ipairs(lines) do
      local name, value, comment = text:match("^%s+([%w_]+) = (.-),?%s*%-%-(.*)$")
      if not name then -- the comment on the line below: `retry = {...},\n -- the defaults`
        name, value = text:match("^%s+([%w_]+) = (.-),%s*$")
        comment = name and (lines[i + 1] or ""):match("^%s+%-%-(.*)$")
      end
      if comment and comment:find("default") and not comment:find("default:") then
        local said = comment:match("default (%d+)%)") -- "(default 120)"
        out[name] = said and tonumber(said) or assert((rawget(_G, "loadstring") or load)("return " .. value))()
      end
    end
    return out
  end

  it("match the rows: every default the README states is the row's", function()
    local stated = stated_defaults(assert(shell.read("README.md")))
    local client, bulk = rows_of("client"), rows_of("bulk")
    local checked = 0
    for name, value in pairs(stated) do
      local row = client[name] or bulk[name]
      assert(row, "README states a default for '" .. name .. "', which is no option")
      if type(value) == "table" then -- retry, rate_limit: their nested rows
        local nested = {}
        for _, r in ipairs(row.fields) do nested[r.name] = r end
        for k, v in pairs(value) do
          assert.equal(nested[k].default, v, name .. "." .. k)
          checked = checked + 1
        end
      else
        assert.equal(row.default, value, name)
        checked = checked + 1
      end
    end
    -- base_url, timeout, connect_timeout, 5 of retry, 2 of rate_limit, concurrency
    assert.is_true(checked >= 11, "only " .. checked .. " defaults found in the README")
  end)
end)

describe("a scratch build with one row changed in each table", function()
  local dir, server
  local DEFS = "-DSO_DEFAULT_TIMEOUT='\"7\"' -DSO_MAX_CONCURRENCY=9 " ..
    "-DSO_STATUS_408_RETRY=SO_RETRY_NEVER -DSO_INVALID_CODE='\"BAD_CONTENT\"'"

  setup(function()
    dir = assert(io.popen("mktemp -d \"${TMPDIR:-/tmp}/stackone-policy.XXXXXX\"")):read("*l")
    assert(shell.run(("make -s LUA=lua5.4 OPT=-O0 BUILD_DIR=%s EXTRA_CFLAGS=%q all >/dev/null"):format(dir, DEFS)),
      "the scratch build failed")
    assert(shell.run(("STACKONE_BUILD=%s lua5.4 scripts/describe.lua --out %s >/dev/null"):format(dir, dir)))
    server = server_support.start{ args = fx.SERVER_ARGS }
  end)
  teardown(function()
    if server then server:stop() end
    if dir then shell.run("rm -rf '" .. dir .. "'") end
  end)

  -- runs `body` under lua5.4 with the scratch module; returns its output
  local function scratch(body)
    local path = dir .. "/child.lua"
    local f = assert(io.open(path, "wb"))
    f:write(("package.cpath = %q .. '/?.so;' .. package.cpath\n"):format(dir),
      "package.path = './lua/?.lua;./lua/?/init.lua;' .. package.path\n",
      "local core, stackone = require('stackone.core'), require('stackone')\n",
      ("local client = assert(stackone.new{ api_key = %q, account_id = %q, base_url = %q,\n"):format(
        fx.API_KEY, fx.ACCOUNT, server.url),
      "  sleep = function() end })\n",
      "local function raised(fn) local _, e = pcall(fn) return tostring(e) end\n",
      "local _ = core, raised\n", body, "\n")
    f:close()
    local p = assert(io.popen("lua5.4 " .. path .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    return out
  end

  local function generated(name)
    return assert(shell.read(dir .. "/" .. name))
  end

  it("an option's default and range: the check, core.option_rows and the generated files follow", function()
    local out = scratch([[
      local rows = {}
      for _, row in ipairs(core.option_rows.client) do rows[row.name] = row end
      for _, row in ipairs(core.option_rows.bulk) do rows[row.name] = row end
      print("timeout default", rows.timeout.default)
      print("concurrency max", rows.concurrency.max)
      print(raised(function() client.crm.contacts.create_many({}, { concurrency = 10 }) end))
      print("nine", select("#", client.crm.contacts.create_many({}, { concurrency = 9 })))
      print(raised(function() client:for_each_account({}, function() end, { concurrency = 10 }) end))]])
    assert.matches("timeout default\t7", out, 1, true)
    assert.matches("concurrency max\t9", out, 1, true)
    assert.matches("create_many: option 'concurrency' must be a whole number from 1 to 9", out, 1, true)
    assert.matches("nine\t2", out, 1, true)
    assert.matches("for_each_account: concurrency must be a whole number from 1 to 9", out, 1, true)
    assert.matches("Seconds for each attempt of a request (a positive number of seconds; default 7)",
      generated("docs/reference.md"), 1, true)
    assert.matches("Transfers in flight (a whole number from 1 to 9; default 8)", generated("types/stackone.lua"),
      1, true)
    -- the real build says otherwise: the rows made the difference
    assert.equal(120, rows_of("client").timeout.default)
    assert.equal(64, rows_of("bulk").concurrency.max)
  end)

  it("a status's retry rule: retrying, core.statuses and the reference follow", function()
    server:reset()
    local created = assert(fx.client(server).crm.contacts.create{ first_name = "A" })
    server:script("/unified/crm/contacts/" .. created.id, { { status = 408, json = { statusCode = 408,
      message = "x" } }, { pass = true } })
    local out = scratch(([[
      for _, row in ipairs(core.statuses) do
        if row.from == 408 then print("408 retry", row.retry) end
      end
      local got, err = client.crm.contacts.get(%q)
      print("got", got, err.status, err.attempts, err.maybe_applied)]]):format(created.id))
    assert.matches("408 retry\tnever", out, 1, true)
    assert.matches("got\tnil\t408\t1\ttrue", out, 1, true) -- the real build retries a GET on 408
    assert.matches("| 408 | [^\n]* | no |", generated("docs/reference.md"))
    assert.is_nil(generated("docs/reference.md"):find("| 408 | [^\n]* | yes |"))
  end)

  it("an error kind's code: the errors, core.error_kinds and the reference follow", function()
    local out = scratch([[
      for _, row in ipairs(core.error_kinds) do
        if row.kind == "invalid" then print("invalid code", row.code) end
      end
      local _, err = client.crm.contacts.create({}, { headers = { ["Bad Name"] = "x" } })
      print("err", err.kind, err.code, tostring(err))]])
    assert.matches("invalid code\tBAD_CONTENT", out, 1, true)
    assert.matches("err\tinvalid\tBAD_CONTENT\tstackone: POST /unified/crm/contacts: invalid request: header name",
      out, 1, true)
    assert.matches("| `invalid` | `BAD_CONTENT` |", generated("docs/reference.md"), 1, true)
  end)
end)
