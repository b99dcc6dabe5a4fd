-- examples/import_contacts.lua against the local server, with the CSV that
-- spreadsheets write: a byte-order mark, CRLF, quoted line breaks and
-- quotes, other delimiters; and its progress display while the batch waits.
-- It runs under the suite's own Lua, with the in-tree build of that Lua
-- (examples/connect.lua) or else the one STACKONE_BUILD names (see
-- spec/helper.lua).
local cjson = require("cjson")
local server_mod = require("support.server")
local harness = require("support.harness")
local process = require("support.process")

local LUA = arg and arg[-1] or "lua5.4"

local q = require("support.shell").quote

local write = require("support.shell").write

local read = require("support.shell").read

describe("import_contacts.lua", function()
  local server, base, files

  harness.serve({ args = "--api-key test-key" }, function(s) server = s end)
  setup(function()
    base = os.tmpname()
    files = {}
  end)

  teardown(function()
    for _, path in ipairs(files) do os.remove(path) end
    os.remove(base)
  end)

  -- a file of the given name (its extension matters) holding text
  local function file(name, text)
    local path = base .. "-" .. name
    files[#files + 1] = path
    write(path, text)
    return path
  end

  -- runs the importer on path with more arguments (against target, by
  -- default the spec's server); returns its output
  -- (stdout and stderr), its exit code and the failed file's lines
  local function import(path, args, target)
    local failed = path .. ".failed.jsonl"
    files[#files + 1] = failed
    files[#files + 1] = path .. ".journal"
    os.remove(failed)
    local cpath = os.getenv("STACKONE_BUILD") and "LUA_CPATH=" .. q(os.getenv("STACKONE_BUILD") .. "/?.so;;") or ""
    local p = assert(io.popen(("%s STACKONE_API_KEY=test-key STACKONE_ACCOUNT_ID=acc-1 STACKONE_BASE_URL=%s " ..
      "%s examples/import_contacts.lua %s --failed %s %s 2>&1; echo EXIT=$?"):format(cpath,
      q((target or server).url), q(LUA), q(path), q(failed), args or "")))
    local out = p:read("*a")
    p:close()
    local failed_lines = {}
    for line in (read(failed) or ""):gmatch("[^\n]+") do failed_lines[#failed_lines + 1] = cjson.decode(line) end
    return out, tonumber(out:match("EXIT=(%d+)%s*$")), failed_lines
  end

  -- the contacts the server was asked to create, in the order it got them
  local function created()
    local out = {}
    for _, r in ipairs(server:requests()) do
      if r.method == "POST" and r.path == "/unified/crm/contacts" then out[#out + 1] = cjson.decode(r.body) end
    end
    table.sort(out, function(a, b) return (a.last_name or "") < (b.last_name or "") end)
    return out
  end

  it("reads an Excel file: a byte-order mark and CRLF line ends", function()
    local path = file("excel.csv", "\239\187\191first_name,last_name,emails\r\nAda,Lovelace,ada@example.org\r\n" ..
      "Grace,Hopper,grace@example.org\r\n")
    local out, code = import(path)
    assert.equal(0, code, out)
    assert.matches("imported 2 of 2 contacts", out)
    local got = created()
    assert.same({ first_name = "Grace", last_name = "Hopper", emails = { "grace@example.org" } }, got[1])
    assert.same({ first_name = "Ada", last_name = "Lovelace", emails = { "ada@example.org" } }, got[2])
  end)

  it("keeps line breaks and doubled quotes inside quoted fields; a list cell may hold several lines", function()
    local path = file("quoted.csv", 'first_name,last_name,company_name,emails\n' ..
      'Alan,Turing,"Bletchley ""Park""\nHut 8",alan@example.org\n' ..
      'Joan,Clarke,"GC&CS, ""Hut 8""","joan@example.org\r\njoan.c@example.org"\n' ..
      '"Dilly","Knox","",\n')
    local out, code, failed = import(path)
    assert.equal(0, code, out)
    assert.matches("imported 3 of 3 contacts", out)
    assert.same({}, failed)
    local got = created()
    assert.same({ first_name = "Joan", last_name = "Clarke", company_name = 'GC&CS, "Hut 8"',
      emails = { "joan@example.org", "joan.c@example.org" } }, got[1])
    assert.same({ first_name = "Dilly", last_name = "Knox" }, got[2])
    assert.same({ first_name = "Alan", last_name = "Turing", company_name = 'Bletchley "Park"\nHut 8',
      emails = { "alan@example.org" } }, got[3])
  end)

  it("takes another delimiter: --delimiter ';', Excel's sep= line, tab for .tsv", function()
    local out, code = import(file("semi.csv", 'first_name;last_name;company_name;phone_numbers\r\n' ..
      'Karl;Müller;"Müller; Söhne GmbH";"+49 30 1234;+49 30 5678"\r\n'), "--delimiter ';'")
    assert.equal(0, code, out)
    assert.matches("imported 1 of 1 contacts", out)
    assert.same({ { first_name = "Karl", last_name = "Müller", company_name = "Müller; Söhne GmbH",
      phone_numbers = { "+49 30 1234", "+49 30 5678" } } }, created())

    server:reset()
    out, code = import(file("sep.csv", "\239\187\191sep=;\r\nfirst_name;last_name\r\nEmmy;Noether\r\n"))
    assert.equal(0, code, out)
    assert.same({ { first_name = "Emmy", last_name = "Noether" } }, created())

    server:reset()
    out, code = import(file("tabs.tsv", "first_name\tlast_name\tcompany_name\nLise\tMeitner\tKWI, Berlin\n"))
    assert.equal(0, code, out)
    assert.same({ { first_name = "Lise", last_name = "Meitner", company_name = "KWI, Berlin" } }, created())
    out = import(file("tabs.csv", "first_name\tlast_name\nLise\tMeitner\n"), "--delimiter tab")
    assert.matches("imported 1 of 1 contacts", out)

    out, code = import(file("bad.csv", "a,b\n"), "--delimiter ';;'")
    assert.equal(2, code, out)
    assert.matches("delimiter must be one character", out)
  end)

  it("reads Windows-1252 with --encoding cp1252, and says to when a record is not UTF-8", function()
    local path = file("ansi.csv", "first_name,last_name,company_name\nKarl,M\252ller,\147Caf\233\148 \128\n")
    local out, code, failed = import(path)
    assert.equal(0, code, out)
    assert.matches("imported 0 of 1 contacts", out)
    assert.matches("1 record%(s%) are not UTF%-8: .* try %-%-encoding cp1252", out)
    assert.matches("not valid UTF%-8", failed[1].error.message)
    out, code = import(path, "--encoding cp1252")
    assert.equal(0, code, out)
    assert.matches("imported 1 of 1 contacts", out)
    assert.same({ { first_name = "Karl", last_name = "M\195\188ller",
      company_name = "\226\128\156Caf\195\169\226\128\157 \226\130\172" } }, created())
  end)

  it("does not send a row with values in unnamed columns: it goes to the failed file with its line", function()
    local path = file("shifted.csv", "first_name,last_name,company_name\n" ..
      "Ada,Lovelace,Analytical Engines\n" ..
      "Charles,Babbage,Difference Engine, Ltd\n" .. -- an unquoted comma
      "Mary,Somerville,,,\n") -- trailing empty columns are fine
    local out, code, failed = import(path)
    assert.equal(0, code, out)
    assert.matches("imported 2 of 3 contacts.*1 failed, written to", out)
    assert.equal(2, #created())
    assert.equal(1, #failed)
    assert.equal(3, failed[1].line)
    assert.equal("Babbage", failed[1].record.last_name)
    assert.matches("^line 3: 1 value%(s%) in columns the header does not name", failed[1].error.message)
  end)

  it("says which line holds a quote that is never closed, and sends nothing", function()
    local out, code = import(file("open.csv", 'first_name,last_name\nAda,Lovelace\n"Grace,Hopper\nAlan,Turing\n'))
    assert.equal(1, code, out)
    assert.matches("line 3: a quoted field is not closed", out)
    assert.same({}, created())
  end)

  it("says when the batch waits for the rate limiter rather than looking frozen", function()
    local rows = { "first_name,last_name" }
    for i = 1, 5 do rows[#rows + 1] = "Ada,Number " .. i end
    local out, code = import(file("limited.csv", table.concat(rows, "\n")), "--rate-limit 2/0.5 --concurrency 1")
    assert.equal(0, code, out)
    assert.matches("waiting %d+%.%d s for the rate limiter %(%d/5 done%)", out)
    assert.matches("imported 5 of 5 contacts", out)
  end)

  it("says when a 429's Retry-After pauses the batch, and then imports everything", function()
    server:script("/unified/crm/contacts", { { status = 429, headers = { ["Retry-After"] = "1" },
      json = { statusCode = 429, message = "Too many requests" } } }, "POST")
    local out, code = import(file("retry.csv", "first_name,last_name\nAda,Lovelace\nGrace,Hopper\n"),
      "--concurrency 1")
    assert.equal(0, code, out)
    assert.matches("paused 1%.0 s: the server asked to wait %(429 Retry%-After%)", out)
    assert.matches("imported 2 of 2 contacts", out)
    assert.equal(3, #created()) -- the first attempt got the 429
  end)

  it("feeds a failed file back in as JSON Lines, its line numbers and all", function()
    local again = file("again.jsonl", cjson.encode{ record = { first_name = "Grace", last_name = "Hopper" },
      line = 2, error = { kind = "http", status = 500 } } .. "\n")
    local out, code = import(again)
    assert.equal(0, code, out)
    assert.matches("imported 1 of 1 contacts", out)
    assert.same({ { first_name = "Grace", last_name = "Hopper" } }, created())
  end)

  -- the contacts a server holds, by e-mail address
  local function stored(target)
    local stackone = require("stackone")
    local client = assert(stackone.new{ api_key = "test-key", account_id = "acc-1", base_url = target.url,
      rate_limit = false })
    local by_email, total = {}, 0
    for contact in client.crm.contacts.each{ page_size = 100 } do
      by_email[contact.emails[1]] = (by_email[contact.emails[1]] or 0) + 1
      total = total + 1
    end
    client:close()
    return by_email, total
  end

  it("resumes after SIGKILL at 10 random points of a 500-row import: every row once on the server", function()
    local slow = server_mod.start{ args = "--api-key test-key --latency 0.02" }
    local ok, err = pcall(function()
      local rows = { "first_name,last_name,emails" }
      for i = 1, 500 do rows[#rows + 1] = ("Row,Number %d,row%d@example.org"):format(i, i) end
      local path = file("big.csv", table.concat(rows, "\n") .. "\n")
      local cpath = os.getenv("STACKONE_BUILD") and "LUA_CPATH=" .. q(os.getenv("STACKONE_BUILD") .. "/?.so;;")
        or ""
      local socket = require("socket")
      math.randomseed(os.time())
      local points = {}
      for k = 1, 10 do
        points[k] = 0.05 + math.random() * 0.6
        local importer = process.spawn(("%s STACKONE_API_KEY=test-key STACKONE_ACCOUNT_ID=acc-1 STACKONE_BASE_URL=%s "
          .. "%s examples/import_contacts.lua %s --failed %s"):format(cpath, q(slow.url),
          q(LUA), q(path), q(path .. ".failed.jsonl")))
        socket.sleep(points[k])
        importer:stop("KILL")
        socket.sleep(0.05)
      end
      local where = "killed after (s): " .. table.concat(points, ", ")
      local out, code = import(path, nil, slow)
      assert.equal(0, code, out .. where)
      local made, reconciled, skipped = out:match("imported 500 of 500 contacts .-: (%d+) created, "
        .. "(%d+) reconciled, (%d+) skipped; 0 failed")
      assert.truthy(made, out)
      assert.equal(500, tonumber(made) + tonumber(reconciled) + tonumber(skipped), out)
      assert.is_true(tonumber(skipped) > 0, out) -- the killed runs did import
      local by_email, total = stored(slow)
      assert.equal(500, total, where)
      for i = 1, 500 do assert.equal(1, by_email[("row%d@example.org"):format(i)], where) end
      -- and no row was sent twice: the server read 500 creates in all
      assert.equal(500, #slow:requests("POST"), where)
    end)
    slow:stop()
    assert(ok, err)
  end)

  it("a row whose answer was lost: said, marked in the failed file, reconciled by the rerun, never sent twice",
    function()
    local path = file("lost.csv", "first_name,last_name,emails\nAda,Lovelace,ada@example.org\n" ..
      "Grace,Hopper,grace@example.org\n")
    server:script("/unified/crm/contacts", { { pass = true, status = 500,
      json = { statusCode = 500, message = "provider timeout" } } }, "POST")
    local out, code, failed = import(path, "--concurrency 1")
    assert.equal(0, code, out)
    assert.matches("imported 1 of 2 contacts .-: 1 created, 0 reconciled, 0 skipped; 1 failed", out)
    assert.matches("1 of the failed may have been created %(their answer was lost%): run the same command again",
      out)
    assert.equal(1, #failed)
    assert.is_true(failed[1].error.maybe_applied)

    -- fed back in, the row is not sent: the journal of the first run knows when it went
    local again = file("lost-again.jsonl", cjson.encode(failed[1]) .. "\n")
    out, code, failed = import(again)
    assert.equal(0, code, out)
    assert.matches("imported 0 of 1 contacts", out)
    assert.matches("may have been created by the run that sent it", failed[1].error.message)
    assert.is_true(failed[1].error.maybe_applied)

    out, code = import(path)
    assert.equal(0, code, out)
    assert.matches("imported 2 of 2 contacts .-: 0 created, 1 reconciled, 1 skipped; 0 failed", out)
    local by_email, total = stored(server)
    assert.equal(2, total)
    assert.same({ ["ada@example.org"] = 1, ["grace@example.org"] = 1 }, by_email)
    assert.equal(2, #created())
  end)

  it("refuses to resume with the journal of another file, and says which", function()
    local path = file("first.csv", "first_name,last_name\nAda,Lovelace\n")
    local out, code = import(path)
    assert.equal(0, code, out)
    out, code = import(file("second.csv", "first_name,last_name\nGrace,Hopper\n"),
      "--journal " .. q(path .. ".journal"))
    assert.equal(1, code, out)
    assert.matches("belongs to other records", out)
    assert.equal(1, #created())
  end)
end)
