-- The client's life inside the processes that host it: a process that
-- ends without closing it (luv, cqueues), a dropped client and an
-- abandoned coroutine (their descriptors come back), Neovim (code after
-- a call may use vim.api), loop options checked at the user's line, and
-- nothing printed. The docs' examples (docs/hosts.md) run as written, in
-- child processes of the suite's own Lua, against the local server.
local stackone = require("stackone")
local harness = require("support.harness")
local fx = require("support.fixtures")
local shell = require("support.shell")

local function needs(module) return fx.needs(module, it, pending) end

local HOSTS_DOC = assert(shell.read("docs/hosts.md"), "docs/hosts.md is missing")

-- the lua code block of docs/hosts.md that follows `marker`
local function doc_block(marker)
  local at = assert(HOSTS_DOC:find(marker, 1, true), "docs/hosts.md has no " .. marker)
  return assert(HOSTS_DOC:match("```lua\n(.-)```", at), "no lua block after " .. marker)
end

-- what a child script runs first: the checkout's module, and every
-- client sent to the local server (STACKONE_TEST_URL) instead of StackOne
local PRELUDE = ([[
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = %q .. "/?.so;" .. package.cpath
local so_ = require("stackone")
local new_ = so_.new
so_.new = function(o) o.base_url = os.getenv("STACKONE_TEST_URL"); return new_(o) end
]]):format(fx.BUILD)

-- runs source in a child `lua` with stdout to a pipe (as in a shell
-- pipeline); returns its exit code, stdout and stderr
local function run_child(source, url, program)
  local script, out, err = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(source)
  f:close()
  local command = (program or fx.LUA .. " %s"):format(script)
  local cmd = ("STACKONE_API_KEY=%s STACKONE_TEST_URL=%s %s </dev/null 2>%s | cat > %s; exit ${PIPESTATUS[0]}")
    :format(fx.API_KEY, url, command, err, out)
  local _, code = shell.run("bash -c '" .. cmd .. "'")
  local stdout, stderr = shell.read(out), shell.read(err)
  os.remove(script); os.remove(out); os.remove(err)
  return code, stdout, stderr
end

-- run_child, for a child that must exit 0 and print nothing on stderr:
-- returns its stdout
local function runs_clean(source, url)
  local code, out, err = run_child(source, url)
  assert.equal("", err)
  assert.equal(0, code)
  return out
end

local function lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- the descriptors this process has open (the shell's pipe included, the
-- same each time)
local function open_descriptors()
  local p = assert(io.popen("ls /proc/$PPID/fd | wc -l"))
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

-- what they are, for a failure's message
local function descriptors()
  local p = assert(io.popen("ls -l /proc/$PPID/fd | sed 's/.* [0-9][0-9]:[0-9][0-9] //'"))
  local text = p:read("*a")
  p:close()
  return text
end

local function collect()
  -- LuaJIT's compiled traces keep the objects they were specialised on
  -- (a client, a closure) until flushed: that is LuaJIT's hold, not ours
  if rawget(_G, "jit") then jit.flush() end -- luacheck: ignore 113
  for _ = 1, 4 do collectgarbage() end
end

-- whether, collected, the process is back to at most n descriptors (a
-- few tries: the suite's own helpers open and close some at times)
local function back_to(n)
  for _ = 1, 10 do
    collect()
    if open_descriptors() <= n then return true end
    require("socket").sleep(0.02)
  end
  return false
end

describe("hosts", function()
  local server, slow

  harness.serve({}, function(s) server = s end)
  harness.serve({ args = fx.SERVER_ARGS .. " --latency 0.5" }, function(s) slow = s end)


  describe("a process that ends without closing its client", function()
    needs("luv")("docs/hosts.md's luv example, as written: 50 contacts, ids printed, exit 0, nothing on stderr",
      function()
      local ids = lines(runs_clean(PRELUDE .. doc_block("<!-- example: luv -->"), server.url))
      assert.equal(50, #ids)
      for _, id in ipairs(ids) do assert.matches("^%x+%-", id) end
      assert.equal(50, #server:requests("POST"))
    end)

    it("docs/hosts.md's cqueues example, as written: exit 0 with its output", function()
      assert.matches("^%x+%-", runs_clean(PRELUDE .. doc_block("<!-- example: cqueues -->"), server.url))
      assert.equal(1, #server:requests("POST"))
    end)

    needs("luv")("luv, with calls in flight at exit: exit 0, nothing on stderr", function()
      local out = runs_clean(PRELUDE .. [[
        local stackone = require("stackone")
        local uv = require("luv")
        local client = stackone.new{ api_key = os.getenv("STACKONE_API_KEY"), account_id = "acc-1",
          loop = stackone.loop.luv(uv) }
        for i = 1, 5 do coroutine.wrap(function() client.crm.contacts.create{ first_name = "F" .. i } end)() end
        local t = uv.new_timer()
        t:start(100, 0, function() uv.stop() end)
        uv.run() -- the requests went out; their answers are 0.5 s away
        print("leaving")
      ]], slow.url)
      assert.equal("leaving\n", out)
    end)

    it("cqueues, with calls in flight at exit: exit 0, nothing on stderr", function()
      local out = runs_clean(PRELUDE .. [[
        local stackone = require("stackone")
        local cqueues = require("cqueues")
        local cq = cqueues.new()
        local client = stackone.new{ api_key = os.getenv("STACKONE_API_KEY"), account_id = "acc-1",
          loop = stackone.loop.cqueues(cq) }
        for i = 1, 5 do cq:wrap(function() client.crm.contacts.create{ first_name = "F" .. i } end) end
        for _ = 1, 5 do assert(cq:step(0.02)) end
        print("leaving")
      ]], slow.url)
      assert.equal("leaving\n", out)
    end)
  end)

  describe("collection", function()
    -- each client is made and dropped in a function of its own: LuaJIT
    -- may still see a dead local in the frame that made it
    local function drop_luv_client(gone)
      local uv = require("luv")
      local client = fx.client(server, { loop = stackone.loop.luv(uv) })
      gone[1] = client
      local done = 0
      for i = 1, 5 do
        coroutine.wrap(function()
          assert(client.crm.contacts.create{ first_name = "Drop" .. i })
          done = done + 1
        end)()
      end
      uv.run()
      assert.equal(5, done)
    end

    needs("luv")("a dropped luv client is collected and gives back every descriptor", function()
      require("luv").run() -- luv's own descriptors, opened at its first use, are not the client's
      collect() -- nor what earlier tests left to the collector
      local before = open_descriptors()
      local gone = setmetatable({}, { __mode = "v" })
      drop_luv_client(gone)
      assert.is_true(open_descriptors() > before) -- its connections, until it goes
      -- (a few rounds, the loop turning between them: the client object
      -- may go a collection before its core handle, and under valgrind
      -- LuaJIT has once kept it past the first)
      for _ = 1, 10 do
        collect()
        if gone[1] == nil and open_descriptors() <= before then break end
        require("luv").run("nowait")
        require("socket").sleep(0.02)
      end
      assert.is_nil(gone[1])
      assert.is_true(back_to(before), descriptors())
      require("luv").run() -- nothing of it is left in the loop
    end)

    local function abandon_call(gone)
      local c = fx.client(server, { rate_limit = { requests = 1, per = 30 }, sleep = function() coroutine.yield() end })
      assert(c.crm.accounts.list())
      local co = coroutine.create(function() return c.crm.accounts.list() end)
      assert.is_true(coroutine.resume(co)) -- waits for the limiter, then is abandoned
      gone[1], gone[2] = c, co
    end

    it("an abandoned coroutine and its dropped client are collected, descriptors given back", function()
      collect()
      local before = open_descriptors()
      local gone = setmetatable({}, { __mode = "v" })
      abandon_call(gone)
      assert.is_true(open_descriptors() > before) -- its connection, until it goes
      collect()
      assert.is_nil(gone[2])
      assert.is_nil(gone[1])
      assert.is_true(back_to(before), descriptors())
    end)
  end)

  describe("the host's descriptors", function()
    local function standard()
      local p = assert(io.popen("readlink /proc/$PPID/fd/0 /proc/$PPID/fd/1 /proc/$PPID/fd/2"))
      local text = p:read("*a")
      p:close()
      return text
    end

    it("clients that cannot be made, or are closed, close none of the host's (stdin included)", function()
      collect()
      local before, std = open_descriptors(), standard()
      for _ = 1, 3 do
        -- made closed first, then refused: its engine held nothing
        local c, err = stackone.new{ api_key = fx.API_KEY, account_id = fx.ACCOUNT, base_url = "ftp://x" }
        assert.is_nil(c)
        assert.equal("invalid", err.kind)
        fx.client(server):close()
        fx.client(server, { loop = stackone.loop.cqueues() }):close()
      end
      collect()
      assert.equal(std, standard())
      assert.is_true(back_to(before), descriptors())
    end)
  end)

  describe("nothing printed", function()
    local function child_with(loop_source, url, extra)
      return runs_clean(PRELUDE .. [[
        local stackone = require("stackone")
        ]] .. loop_source .. [[
        local client = stackone.new{ api_key = os.getenv("STACKONE_API_KEY"), account_id = "acc-1",
          loop = ADAPTER, retry = { max_attempts = 3, base_delay = 0.01 } }
        SPAWN(function()
          local c, err = client.crm.contacts.get("c-1")
          print(c and "ok" or err.kind)
          local list, lerr = client.crm.accounts.list()
          print(list and "ok" or lerr.kind)
        end)
        RUN()
      ]] .. (extra or ""), url)
    end
    local LOOPS = {
      luv = [[local uv = require("luv"); local ADAPTER = stackone.loop.luv(uv)
        local SPAWN = function(fn) coroutine.wrap(fn)() end; local RUN = function() uv.run() end]],
      cqueues = [[local cq = require("cqueues").new(); local ADAPTER = stackone.loop.cqueues(cq)
        local SPAWN = function(fn) cq:wrap(fn) end; local RUN = function() assert(cq:loop()) end]],
    }
    for name, source in pairs(LOOPS) do
      needs(name)(name .. ": a refused connection, retried, prints nothing", function()
        assert.equal("network\nnetwork\n", child_with(source, "http://127.0.0.1:" .. fx.closed_port()))
      end)

      needs(name)(name .. ": connections reset by the server print nothing", function()
        server:script("/unified/crm/contacts/c-1", { { close = "reset" }, { close = "reset" }, { close = "reset" } })
        assert.equal("network\nok\n", child_with(source, server.url))
      end)
    end
  end)

  describe("an adapter that fails", function()
    needs("luv")("inside the loop, it stops the call with an error; the host lives on, nothing printed", function()
      local out = runs_clean(PRELUDE .. [[
        local stackone = require("stackone")
        local uv = require("luv")
        local inner = stackone.loop.luv(uv)
        -- arming libcurl's timer fails once the request is under way,
        -- inside the loop
        local arms = 0
        local adapter = setmetatable({ timer = function(_, seconds, on_timeout)
          if seconds then arms = arms + 1 end
          if arms > 1 then error("boom", 0) end
          return inner:timer(seconds, on_timeout)
        end }, { __index = inner })
        local client = stackone.new{ api_key = os.getenv("STACKONE_API_KEY"), account_id = "acc-1", loop = adapter }
        coroutine.wrap(function()
          -- (5.1's pcall cannot be yielded across: the SDK's own can)
          local ok, e = require("stackone.compat").pcall(client.crm.contacts.create, { first_name = "Boom" })
          print(ok and "returned" or (stackone.is_error(e) and e.kind .. " " .. tostring(e.cause) or tostring(e)))
        end)()
        uv.run()
        print("alive")
      ]], server.url)
      assert.equal("interrupted boom\nalive\n", out)
    end)
  end)

  describe("loop options, checked when the client is made", function()
    local function refused(opts, pattern)
      local ok, msg = pcall(function()
        local c = stackone.new{ api_key = fx.API_KEY, account_id = fx.ACCOUNT, base_url = server.url, loop = opts.loop }
        return c -- not a tail call: the user's line stays on the stack
      end)
      assert.is_false(ok)
      assert.matches(pattern, msg, 1, true)
      assert.matches("hosts_spec.lua", msg, 1, true) -- at the user's line
    end

    needs("luv")("a module where an adapter is expected names the adapter to pass", function()
      refused({ loop = require("luv") }, "stackone.new: option 'loop' must be a loop adapter, not the luv module "
        .. "itself: pass stackone.loop.luv(uv)")
      refused({ loop = require("cqueues") }, "not the cqueues module itself: pass stackone.loop.cqueues(controller)")
      refused({ loop = require("cqueues").new() }, "not a cqueues controller itself")
    end)

    it("stackone.loop.cqueues takes a controller, not the module", function()
      local ok, msg = pcall(function()
        local adapter = stackone.loop.cqueues(require("cqueues"))
        return adapter
      end)
      assert.is_false(ok)
      assert.matches("stackone.loop.cqueues", msg, 1, true)
      assert.matches("got the cqueues module", msg, 1, true)
      assert.matches("hosts_spec.lua", msg, 1, true)
    end)

    needs("luv")("an adapter missing a method, or one that serves another client, is refused", function()
      local adapter = stackone.loop.luv(require("luv"))
      local partial = { io = adapter.io, timer = adapter.timer, wait = adapter.wait }
      refused({ loop = partial }, "it has no method 'wake'")
      local first = fx.client(server, { loop = adapter })
      refused({ loop = adapter }, "this adapter already serves another open client")
      first:close()
      fx.client(server, { loop = adapter }):close() -- free again once its client closed
    end)
  end)

  describe("Neovim", function()
    local function output(cmd)
      local p = assert(io.popen(cmd))
      local text = p:read("*a")
      p:close()
      return text
    end
    local nvim = output("command -v nvim") ~= ""
    local version = nvim and output("nvim --version") or ""
    -- Neovim's own Lua: the module built for it
    local build = version:find("LuaJIT", 1, true) and "build/luajit" or "build/lua5.1"

    setup(function()
      assert(nvim, "Neovim is not installed (scripts/install-deps.sh installs it)")
      assert(shell.run("make -s module-" .. build:match("[^/]+$") .. " >/dev/null"))
    end)

    -- runs body in headless Neovim; returns what it wrote to its result file
    local function in_neovim(body, url)
      local result = os.tmpname()
      local source = PRELUDE:gsub(fx.BUILD:gsub("%p", "%%%0"), build) .. body .. ([[
        local f = io.open(%q, "w")
        f:write(table.concat(RESULT, "\n"))
        f:close()
        vim.cmd("qa!")
      ]]):format(result)
      local code, _, err = run_child(source, url, 'nvim --headless -u NONE -i NONE -c "luafile %s"')
      local text = shell.read(result) or ""
      os.remove(result)
      return code, text, err
    end

    -- a call in a coroutine, then vim.api; a 10 ms timer ticks meanwhile
    local CALLS = [[
      RESULT = {}
      local uv = vim.uv or vim.loop
      local client = stackone.new{ api_key = os.getenv("STACKONE_API_KEY"), account_id = "acc-1", loop = LOOP }
      local ticks, done = 0, 0
      local ticker = uv.new_timer()
      ticker:start(10, 10, function() ticks = ticks + 1 end)
      for i = 1, 3 do
        coroutine.wrap(function()
          local c, err = client.crm.contacts.create{ first_name = "Nv" .. i }
          local ok, e = pcall(vim.api.nvim_buf_set_lines, 0, -1, -1, false, { c and c.id or tostring(err) })
          RESULT[#RESULT + 1] = ok and "api ok" or ("api failed: " .. tostring(e))
          done = done + 1
        end)()
      end
      vim.wait(5000, function() return done == 3 end, 5)
      ticker:stop()
      RESULT[#RESULT + 1] = "ticks " .. ticks
    ]]

    it("stackone.loop.neovim(): code after a call may use vim.api, and the host's timer keeps ticking", function()
      local code, text, err = in_neovim("local stackone = require('stackone')\nlocal LOOP = stackone.loop.neovim()\n"
        .. CALLS, slow.url)
      assert.equal(0, code, err)
      local got = lines(text)
      assert.equal(4, #got, text)
      for i = 1, 3 do assert.equal("api ok", got[i]) end
      -- the calls took 0.5 s: the 10 ms timer fired all along
      assert.is_true(tonumber(got[4]:match("ticks (%d+)")) >= 20, got[4])
      assert.equal(3, #slow:requests("POST"))
    end)

    it("(the plain luv adapter resumes inside a luv callback, where vim.api refuses)", function()
      local _, text = in_neovim("local stackone = require('stackone')\n"
        .. "local LOOP = stackone.loop.luv(vim.uv or vim.loop)\n" .. CALLS, server.url)
      assert.matches("api failed: .*E5560", text)
    end)

    it("docs/hosts.md's Neovim example, as written", function()
      local code, text = in_neovim(doc_block("<!-- example: neovim -->") .. [[
        vim.wait(5000, function() return #vim.api.nvim_buf_get_lines(0, 0, -1, false) > 1 end, 5)
        RESULT = vim.api.nvim_buf_get_lines(0, 0, -1, false)
      ]], server.url)
      assert.equal(0, code)
      assert.matches("\n%x+%-", text)
      assert.equal(1, #server:requests("POST"))
    end)
  end)
end)
