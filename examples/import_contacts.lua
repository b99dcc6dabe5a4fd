-- Imports contacts from a CSV or JSON Lines file with create_many: a
-- progress bar on a terminal (plain lines otherwise) that says when the
-- batch waits for the rate limiter, a summary, and every record that
-- failed written, with its error, to a file that can be fed back in.
-- Nothing is lost, and nothing is created twice, across crashes and reruns:
-- a journal beside the input (FILE.journal, or --journal PATH) records what
-- was sent and what came of it. Run the same command again after a crash, a
-- kill or a lost answer: rows already created are skipped, rows that may have
-- been created are looked up on the server (reconciled), the rest are sent.
-- Delete the journal only to import the same file again on purpose. (Against
-- the bundled local server, which starts empty every run, the journal is a
-- temporary file unless --journal names one.)
--
--   lua examples/import_contacts.lua FILE [--failed failed.jsonl] [--concurrency 8]
--       [--delimiter ','] [--encoding utf-8|cp1252] [--rate-limit N/SECONDS] [--journal FILE.journal]
--
-- CSV (.csv, .tsv, .txt, or any file not starting with "{"), as spreadsheets
-- write it (see csv.lua): a header row naming the fields; an Excel
-- byte-order mark, quoted fields holding delimiters, quotes and line breaks,
-- and CRLF line ends are fine. --delimiter sets the field delimiter: ','
-- (the default; a .tsv file's is tab), ';' as Excel writes it in many
-- locales, 'tab', '|'... A first line "sep=;" sets it too. List fields
-- (emails, phone_numbers, deal_ids, account_ids) hold values separated by
-- ';', ',' or line breaks within the cell. A row with more values than the
-- header has names is not sent: it goes to the failed file with its line.
-- The text must be UTF-8 (Excel's "CSV UTF-8"); --encoding cp1252 reads
-- Windows-1252, what Excel's plain "CSV" is in Western locales.
--
-- JSON Lines (.jsonl, .ndjson, .json): one contact object per line, or
-- { "record": {...}, "error": {...} } lines from an earlier run's failed file.
-- A failed line whose error says maybe_applied (the server may have created
-- it) is not sent from there: the run that sent it reconciles it when it is
-- run again (its journal knows when it was sent).
--
-- --rate-limit sets the client's rate limiter (default 1000 requests per
-- 60 s, as StackOne's); the progress display shows its waits, and the
-- pauses a 429's Retry-After asks for.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local cjson = require("cjson")
local csv = require("csv")

local LIST_FIELDS = { emails = true, phone_numbers = true, deal_ids = true, account_ids = true }

local function usage(msg)
  if msg then io.stderr:write("import_contacts.lua: ", msg, "\n") end
  io.stderr:write("usage: import_contacts.lua FILE.csv|FILE.jsonl [--failed OUT.jsonl] [--concurrency N]\n",
    "         [--delimiter C] [--encoding utf-8|cp1252] [--rate-limit N/SECONDS] [--journal FILE]\n")
  os.exit(2)
end

local function whole_number(s)
  local n = tonumber(s)
  if n and n >= 1 and n == math.floor(n) then return n end
  return nil
end

-- the command line: FILE and --name value (or --name=value)
local opts = { failed = "failed.jsonl", concurrency = "8" }
local KNOWN = { failed = true, concurrency = true, delimiter = true, encoding = true, ["rate-limit"] = true,
  journal = true }
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    local name, value = a:match("^%-%-([%w-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w-]+)$") end
    if name then
      if not KNOWN[name] then usage("unknown option --" .. name) end
      if not value then
        i = i + 1
        value = arg[i] or usage("--" .. name .. " needs a value")
      end
      opts[name] = value
    elseif not opts.input then
      opts.input = a
    else
      usage("one input file only")
    end
    i = i + 1
  end
end
if not opts.input then usage() end
local journal = opts.journal or (opts.input .. ".journal")
local concurrency = whole_number(opts.concurrency) or usage("--concurrency wants a whole number from 1")
local client_opts = {}
if opts["rate-limit"] then
  local n, per = opts["rate-limit"]:match("^(%d+)/([%d.]+)$")
  n, per = whole_number(n), tonumber(per)
  if not n or not per or per <= 0 then usage("--rate-limit wants N/SECONDS, e.g. 100/10") end
  client_opts.rate_limit = { requests = n, per = per }
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- CSV rows into records; rows that cannot be one go to `rejected`
-- ({ record =, line =, message = }).
local function read_csv(text, delimiter)
  local rows = csv.rows(text, { delimiter = delimiter })
  local header, header_line = rows()
  if not header then return {}, {}, {} end
  local names, seen = {}, {}
  for n, name in ipairs(header) do
    name = trim(name)
    if name ~= "" then
      if seen[name] then
        error(("line %d: the column %q appears twice"):format(header_line, name), 0)
      end
      seen[name], names[n] = true, name
    end
  end
  if not next(seen) then error(("line %d: the header row names no fields"):format(header_line), 0) end
  local records, lines, rejected = {}, {}, {}
  for fields, line in rows do
    local record, extra = {}, 0
    for n, value in ipairs(fields) do
      value = trim(value)
      local name = names[n]
      if value ~= "" then
        if not name then
          extra = extra + 1
        elseif LIST_FIELDS[name] then
          local list = {}
          for raw in value:gmatch("[^;,\r\n]+") do
            local item = trim(raw)
            if item ~= "" then list[#list + 1] = item end
          end
          record[name] = list
        else
          record[name] = value
        end
      end
    end
    if extra > 0 then
      rejected[#rejected + 1] = { record = record, line = line, message = ("line %d: %d value(s) in " ..
        "columns the header does not name (a delimiter inside an unquoted value? try --delimiter)")
        :format(line, extra) }
    elseif next(record) then
      records[#records + 1], lines[#records + 1] = record, line
    end
  end
  return records, lines, rejected
end

local MAYBE_APPLIED = "may have been created by the run that sent it (its answer was lost): not sent again " ..
  "from here; run that import again, with its journal, to look it up on the server"

local function read_jsonl(text)
  local records, lines, rejected, n = {}, {}, {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:match("%S") then
      local ok, value = pcall(cjson.decode, line)
      if not ok or type(value) ~= "table" then
        error(("line %d: not a JSON object: %s"):format(n, tostring(value)), 0)
      end
      if type(value.record) == "table" and type(value.error) == "table" and value.error.maybe_applied == true then
        rejected[#rejected + 1] = { record = value.record, line = value.line or n, message = MAYBE_APPLIED,
          maybe_applied = true }
      else
        if type(value.record) == "table" and value.error then value = value.record end
        records[#records + 1], lines[#records + 1] = value, n
      end
    end
  end
  return records, lines, rejected
end

local f, open_err = io.open(opts.input, "rb")
if not f then
  io.stderr:write("import_contacts.lua: ", open_err, "\n")
  os.exit(1)
end
local text = f:read("*a")
f:close()
local encoding = (opts.encoding or "utf-8"):lower():gsub("[-_]", "")
if encoding == "cp1252" or encoding == "windows1252" or encoding == "latin1" or encoding == "iso88591" then
  text = csv.from_cp1252(text)
elseif encoding ~= "utf8" then
  usage("--encoding is utf-8 or cp1252")
end
local unbommed = text:gsub("^\239\187\191", "") -- Windows editors start UTF-8 with a byte-order mark
local jsonl = opts.input:match("%.jsonl$") or opts.input:match("%.ndjson$") or opts.input:match("%.json$")
  or (not opts.input:match("%.[ct]sv$") and not opts.input:match("%.txt$") and unbommed:match("^%s*{"))
local delimiter, bad_delimiter
if opts.delimiter then
  delimiter, bad_delimiter = csv.delimiter(opts.delimiter)
  if not delimiter then usage(bad_delimiter) end
elseif opts.input:match("%.tsv$") then
  delimiter = "\t"
end
local ok, records, lines, rejected = pcall(function()
  if jsonl then return read_jsonl(unbommed) end
  return read_csv(text, delimiter)
end)
if not ok then
  io.stderr:write("import_contacts.lua: ", opts.input, ": ", records, "\n")
  os.exit(1)
end

-- Progress: redrawn about a hundred times in all, whenever a record fails,
-- and when the batch starts to wait (on_progress's 4th argument, from the
-- SDK versions that have it): the rate limiter holding the next request,
-- or a 429's Retry-After pausing them all.
local tty = os.execute("test -t 2")
tty = tty == true or tty == 0
local started = os.time()
-- a clock for the remaining wait: LuaSocket's when it is there, else whole seconds
local has_socket, socket = pcall(require, "socket")
local now = has_socket and socket.gettime or os.time
local last_failed, wait_note, wait_until = 0, nil, nil
local last_wait_line = { reason = nil, at = -math.huge } -- the last wait written as a plain line

local function describe_wait(reason, seconds)
  if reason == "rate_limit" then
    return ("waiting %.1f s for the rate limiter"):format(seconds)
  elseif reason == "retry_after" then
    return ("paused %.1f s: the server asked to wait (429 Retry-After)"):format(seconds)
  end
  return ("waiting %.1f s (%s)"):format(seconds, tostring(reason))
end

local function progress(done, total, failed, wait)
  local step = math.max(1, math.floor(total / 100))
  local due = done == total or failed ~= last_failed or done % step == 0 or wait ~= nil
  last_failed = failed
  if type(wait) == "table" then
    wait_note, wait_until = wait.reason, now() + (tonumber(wait.seconds) or 0)
  end
  local note -- what the current wait has left, if any
  if wait_note and done < total and now() < wait_until then
    note = describe_wait(wait_note, wait_until - now())
  else
    wait_note = nil
  end
  if not due then return end
  if tty then
    local width = 40
    local filled = total > 0 and math.floor(width * done / total) or width
    io.stderr:write(("\r[%s%s] %d/%d  %d failed%s\027[K"):format(("#"):rep(filled), ("."):rep(width - filled),
      done, total, failed, note and ("  " .. note) or ""))
    if done == total then io.stderr:write("\n") end
  elseif wait then
    -- a line for the first wait, and then at most one in 10 s (a tight
    -- limiter waits before every request)
    if wait.reason ~= last_wait_line.reason or os.time() - last_wait_line.at >= 10 then
      last_wait_line.reason, last_wait_line.at = wait.reason, os.time()
      io.stderr:write(("%s (%d/%d done)\n"):format(describe_wait(wait.reason, tonumber(wait.seconds) or 0),
        done, total))
    end
  elseif done == total or done % 500 == 0 then
    io.stderr:write(("%d/%d done, %d failed\n"):format(done, total, failed))
  end
end

local function import(client)
  local results, summary = {}, { ok = 0, failed = 0, attempts = 0, elapsed = 0 }
  if #records > 0 then
    results, summary = client.crm.contacts.create_many(records, { concurrency = concurrency,
      on_progress = progress, journal = journal })
    if not results then error(tostring(summary), 0) end -- the batch itself was refused
  end
  if summary.journal_error then io.stderr:write("(journal: ", tostring(summary.journal_error), ")\n") end
  if summary.progress_error then io.stderr:write("(progress display: ", tostring(summary.progress_error), ")\n") end

  local failed = #rejected
  local out = assert(io.open(opts.failed, "w"))
  for _, r in ipairs(rejected) do
    out:write(cjson.encode{ record = r.record, line = r.line, error = { kind = "invalid", message = r.message,
      maybe_applied = r.maybe_applied } }, "\n")
  end
  for n, result in ipairs(results) do
    if result.err then
      local e = result.err
      out:write(cjson.encode{ record = records[n], line = lines[n], error = { kind = e.kind, code = e.code,
        status = e.status, message = e.message, maybe_applied = e.maybe_applied } }, "\n")
    end
  end
  out:close()
  failed = failed + summary.failed
  local not_utf8 = 0
  for _, result in ipairs(results) do
    if result.err and tostring(result.err.message):find("not valid UTF-8", 1, true) then not_utf8 = not_utf8 + 1 end
  end
  if not_utf8 > 0 and not opts.encoding then
    io.stderr:write(("%d record(s) are not UTF-8: a spreadsheet's plain \"CSV\" is often Windows-1252, " ..
      "try --encoding cp1252\n"):format(not_utf8))
  end
  local skipped, reconciled = summary.skipped or 0, summary.reconciled or 0
  print(("imported %d of %d contacts in %.1f s (%d requests): %d created, %d reconciled, %d skipped; " ..
    "%d failed%s"):format(summary.ok, #records + #rejected, summary.elapsed, summary.attempts,
    summary.ok - reconciled - skipped, reconciled, skipped, failed,
    failed > 0 and (", written to " .. opts.failed) or ""))
  local maybe = 0
  for _, result in ipairs(results) do
    if result.err and result.err.maybe_applied then maybe = maybe + 1 end
  end
  if maybe > 0 then
    print(("%d of the failed may have been created (their answer was lost): run the same command again " ..
      "to look them up on the server; they will not be sent twice"):format(maybe))
  end
  if skipped > 0 then
    print(("(skipped: created by an earlier run, says the journal %s)"):format(journal))
  end
  if failed == 0 then os.remove(opts.failed) end
end

-- the bundled local server, when connect started one, is stopped however
-- the import ends (no `<close>`: this runs on every Lua from 5.1)
local client, server = require("connect")(client_opts)
local scratch -- the bundled server forgets everything when this run ends: so does its journal
if server.local_server and not opts.journal then
  scratch = os.tmpname()
  journal = scratch
end
local done, err = pcall(import, client)
if scratch then os.remove(scratch) end
client:close()
server:close()
if not done then
  io.stderr:write("import_contacts.lua: ", tostring(err), "\n")
  os.exit(1)
end
print(("(wall time %d s)"):format(os.time() - started))
