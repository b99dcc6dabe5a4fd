--- The journal of a bulk call, `create_many(records, { journal = "import.journal" })`:
-- exactly once across crashes and reruns. Before a request goes on the
-- wire, the record's intent (its index and the digest of its content) is
-- on disk; as its answer arrives, its outcome. A rerun with the same
-- journal skips what is known to be applied, looks up on the server what
-- may have been (reconciliation) and sends only the rest.
--
-- The format (docs/reliability.md): JSON Lines, one object a line,
--   {"journal":1,"operation":"crm.contacts.create_many","target":"https://api.stackone.com",
--    "account":"acc-1","records":500,"at":"..."}                                  a run begins
--   {"intent":3,"digest":"fnv1a64:...","at":"2026-01-01T10:00:00Z"}              record 3 is about to go
--   {"outcome":3,"result":"created","id":"c-1"}                                   and what came of it
-- result: created | updated | reconciled (found on the server, with its id) |
-- failed (not applied: kind, code, status) | maybe_applied | not_found
-- (reconciliation found nothing: it is sent) | ambiguous (several
-- candidates) | unreconciled (the match rule could not tell). The last
-- line of a record wins. A torn last line (a crash mid-write) is cut off.
local core = require("stackone.core")
local compat = require("stackone.compat")
local cjson = require("cjson").new()

local journal = {}

local VERSION = 1
-- seconds before the intent: clocks and providers lag (the option's row)
local DEFAULT_MARGIN = (function()
  for _, row in ipairs(core.option_rows.bulk) do
    if row.name == "reconcile_margin" then return tonumber(row.default) end
  end
end)()
local format, concat, sort, floor = string.format, table.concat, table.sort, math.floor

-- The canonical text of a value, for the digest: JSON with sorted keys,
-- integral numbers without a fraction on every Lua version, so the same
-- record has the same digest under 5.1 and 5.4. Values JSON cannot carry
-- get a fixed text (the core refuses those records anyway).
local function escape(c) return format("\\u%04x", c:byte()) end
local function quote(s)
  if not s:find('[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. s:gsub('[%c"\\]', escape) .. '"'
end

local function number_text(x)
  if math.type and math.type(x) == "integer" then return format("%d", x) end
  if x ~= x or x == math.huge or x == -math.huge then return '"<nan>"' end
  if x == floor(x) and x > -2 ^ 63 and x < 2 ^ 63 then return format("%.0f", x) end
  return format("%.17g", x)
end

-- appends the canonical text of v to out (a buffer of pieces)
local function put(out, v, seen)
  local kind = type(v)
  if kind == "string" then
    out[#out + 1] = quote(v)
  elseif kind == "number" then
    out[#out + 1] = number_text(v)
  elseif kind == "boolean" then
    out[#out + 1] = tostring(v)
  elseif kind == "table" then
    if seen[v] then
      out[#out + 1] = '"<cycle>"'
      return
    end
    seen[v] = true
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    if (n > 0 and count == n) or (count == 0 and getmetatable(v) == core.array_mt) then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        put(out, v[i], seen)
      end
      out[#out + 1] = "]"
    else
      -- keys by their text; a key that is not a string (a mixed table)
      -- is named by its type and value
      local keys, by_text = {}, nil
      for k in pairs(v) do
        local text = k
        if type(k) ~= "string" then
          text = "<" .. type(k) .. ">" .. tostring(k)
          by_text = by_text or {}
          by_text[text] = k
        end
        keys[#keys + 1] = text
      end
      sort(keys)
      out[#out + 1] = "{"
      for i, text in ipairs(keys) do
        out[#out + 1] = (i > 1 and "," or "") .. quote(text) .. ":"
        put(out, v[by_text and by_text[text] or text], seen)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
  elseif v == core.null then
    out[#out + 1] = "null"
  else
    out[#out + 1] = '"<' .. kind .. '>"'
  end
end

local function canonical(v)
  local out = {}
  put(out, v, {})
  return concat(out)
end

--- the digest of a record (or a change of update_many): "fnv1a64:<hex>"
function journal.digest(record)
  return core.digest(canonical(record))
end

-- one journal line: pairs in the order given (nil values left out)
local function line(...)
  local parts = {}
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    if v ~= nil then
      parts[#parts + 1] = quote(k) .. ":" .. (type(v) == "table" and canonical(v)
        or type(v) == "string" and quote(v) or tostring(v))
    end
  end
  return "{" .. concat(parts, ",") .. "}\n"
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

-- seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ" (days from the civil
-- date, so no time zone of the host is involved), or nil
local function epoch(s)
  local y, m, d, hh, mm, ss = tostring(s):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

-- results that say a record is on the server, with its id
local APPLIED = { created = true, updated = true, reconciled = true }
-- results that prove nothing was applied: the record is sent (again)
local NOT_APPLIED = { failed = true, not_found = true }

--- reads a journal's text: entries[i] = { digest, at, result, id, ... }
-- (the state its last lines give), and the length of its whole lines.
-- Returns nil, code, message when it is not a journal of `operation`.
local function parse(text, ctx, path)
  local operation = ctx.name
  local entries, pos, number, seen_header = {}, 1, 0, false
  while true do
    local stop = text:find("\n", pos, true)
    if not stop then break end -- a torn last line, or the end
    number = number + 1
    local ok, t = pcall(cjson.decode, text:sub(pos, stop - 1))
    if not ok or type(t) ~= "table" then
      return nil, "JOURNAL_DAMAGED", format("line %d of %s is not a journal line: the file is damaged or is not "
        .. "a stackone journal", number, path)
    end
    if t.journal ~= nil then
      if t.operation ~= operation then
        return nil, "JOURNAL_MISMATCH", format("%s is the journal of %s, not of %s", path, tostring(t.operation),
          operation)
      end
      -- what it knows holds for one server and account only
      if t.target ~= ctx.target or t.account ~= ctx.account then
        return nil, "JOURNAL_MISMATCH", format("%s is the journal of records sent to %s, account %s, not to %s, "
          .. "account %s", path, tostring(t.target), tostring(t.account), ctx.target, tostring(ctx.account))
      end
      seen_header = true
    elseif not seen_header then
      return nil, "JOURNAL_DAMAGED", format("%s does not start as a stackone journal (line %d)", path, number)
    elseif type(t.intent) == "number" then
      entries[floor(t.intent)] = { digest = t.digest, at = t.at }
    elseif type(t.outcome) == "number" then
      local e = entries[floor(t.outcome)]
      if not e then
        return nil, "JOURNAL_DAMAGED", format("line %d of %s gives the outcome of record %d, whose intent it "
          .. "does not hold", number, path, t.outcome)
      end
      e.result, e.id, e.kind, e.code, e.status = t.result, t.id, t.kind, t.code, t.status
      e.candidates = t.candidates
    end
    pos = stop + 1
  end
  return entries, pos - 1
end

-- what a record's journal entry means for this run
local function state_of(e)
  if not e then return "new" end
  if APPLIED[e.result] then return "applied" end
  if NOT_APPLIED[e.result] then return "not_applied" end
  return "maybe" -- an intent without outcome, maybe_applied, ambiguous, unreconciled
end

local function journal_error(op, code, message, extra)
  local err = { kind = "journal", code = code, message = message, method = op.method, path = op.path,
    attempts = 0 }
  for k, v in pairs(extra or {}) do err[k] = v end
  return setmetatable(err, core.error_mt)
end

local function lower_trim(s)
  return type(s) == "string" and s:lower():gsub("^%s+", ""):gsub("%s+$", "") or nil
end

local function emails_of(t)
  local out = {}
  if type(t) == "table" then
    for _, e in ipairs(t) do
      local v = lower_trim(type(e) == "table" and e.value or e)
      if v and v ~= "" then out[#out + 1] = v end
    end
  end
  return out
end

--- the default match rule: a record with e-mail addresses is the
-- candidate that has one of them (case and spaces aside); a record
-- without, the candidate of the same first and last name (and company,
-- when the record has one). nil: the record holds nothing to tell by.
function journal.default_match(record, candidate)
  local mine = emails_of(record.emails)
  if #mine > 0 then
    local theirs = {}
    for _, e in ipairs(emails_of(candidate.emails)) do theirs[e] = true end
    for _, e in ipairs(mine) do
      if theirs[e] then return true end
    end
    return false
  end
  local first, last = lower_trim(record.first_name), lower_trim(record.last_name)
  if (first or "") == "" and (last or "") == "" then return nil end
  if lower_trim(candidate.first_name) ~= first or lower_trim(candidate.last_name) ~= last then return false end
  local company = lower_trim(record.company_name)
  return company == nil or company == lower_trim(candidate.company_name)
end

-- the default rule's candidates for a record, found through an index by
-- e-mail address and by names rather than by trying every contact: the
-- rule still decides, among these
local function name_key(t)
  return "#" .. (lower_trim(t.first_name) or "") .. "\n" .. (lower_trim(t.last_name) or "")
end

local function default_pool(candidates)
  local by_key = {}
  local function add(key, c)
    local list = by_key[key]
    if not list then
      list = {}
      by_key[key] = list
    end
    list[#list + 1] = c
  end
  for _, c in ipairs(candidates) do
    for _, e in ipairs(emails_of(c.emails)) do add("@" .. e, c) end
    add(name_key(c), c)
  end
  return function(record)
    local keys, out, seen = {}, {}, {}
    for _, e in ipairs(emails_of(record.emails)) do keys[#keys + 1] = "@" .. e end
    if #keys == 0 then keys[1] = name_key(record) end
    for _, key in ipairs(keys) do
      for _, c in ipairs(by_key[key] or {}) do
        if not seen[c] then
          seen[c] = true
          out[#out + 1] = c
        end
      end
    end
    return out
  end
end

-- The records that may have been applied, looked up among the contacts
-- updated since their earliest intent (minus the margin). found[i] = the
-- candidate, or an error object (ambiguous, unreconciled); absent: not on
-- the server. Candidates already claimed by a record are not offered again.
local function reconcile(ctx, items, entries, maybe, claimed, opts)
  local since
  for _, i in ipairs(maybe) do
    local t = epoch(entries[i].at) or 0
    if not since or t < since then since = t end
  end
  local margin = opts.reconcile_margin or DEFAULT_MARGIN
  local query = { filter = { updated_after = iso(since - margin) }, page_size = 100 }
  local candidates, next_page = {}, ctx.pages(query)
  while true do
    local page, err = next_page()
    if not page then
      if err then return nil, err end
      break
    end
    for _, c in ipairs(page.data) do
      if type(c) == "table" and c.id ~= nil and not claimed[c.id] then candidates[#candidates + 1] = c end
    end
  end
  local match, found = opts.match or journal.default_match, {}
  local pool = opts.match and function() return candidates end or default_pool(candidates)
  for _, i in ipairs(maybe) do
    local record, hits = items[i], {}
    -- the default rule with nothing to tell by cannot say "not there"
    -- while the server has contacts
    local unknown = not opts.match and #candidates > 0 and journal.default_match(record, {}) == nil
    for _, c in ipairs(unknown and {} or pool(record)) do
      if not claimed[c.id] and match(record, c) then hits[#hits + 1] = c end
    end
    if unknown then
      found[i] = journal_error(ctx.op, "UNRECONCILED", format("record %d may have been created in an earlier run, "
        .. "and the default match rule cannot look for it (no e-mail, no name): give a match function", i),
        { maybe_applied = true })
    elseif #hits == 1 then
      found[i] = hits[1]
      claimed[hits[1].id] = true
    elseif #hits > 1 then
      local ids = {}
      for k, c in ipairs(hits) do ids[k] = tostring(c.id) end
      found[i] = journal_error(ctx.op, "AMBIGUOUS", format("record %d may have been created in an earlier run, "
        .. "and %d contacts match it (%s): not sent", i, #hits, concat(ids, ", ")),
        { maybe_applied = true, candidates = ids })
    end
  end
  return found
end

-- the outcome line of record i from its result
local function outcome_line(ctx, i, result)
  if result.record then
    local id = type(result.record) == "table" and result.record.id or nil
    return line("outcome", i, "result", result.reconciled and "reconciled" or ctx.done_word, "id",
      id ~= nil and tostring(id) or nil)
  end
  local e = result.err or {}
  local word = e.code == "AMBIGUOUS" and "ambiguous" or e.code == "UNRECONCILED" and "unreconciled"
    or e.maybe_applied and "maybe_applied" or "failed"
  return line("outcome", i, "result", word, "kind", e.kind, "code", e.code,
    "status", type(e.status) == "number" and e.status or nil, "candidates", e.candidates)
end

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

--- the usage mistake in opts' journal options, if any
function journal.check_options(opts)
  if opts == nil then return nil end
  local path = rawget(opts, "journal")
  if path ~= nil and (type(path) ~= "string" or path == "") then
    return "journal must be the name of a file (a string)"
  end
  local match, margin = rawget(opts, "match"), rawget(opts, "reconcile_margin")
  if match ~= nil and type(match) ~= "function" then return "match must be a function" end
  if margin ~= nil and (type(margin) ~= "number" or margin < 0 or margin ~= margin) then
    return "reconcile_margin must be a number of seconds >= 0"
  end
  if path == nil and (match ~= nil or margin ~= nil) then
    return (match ~= nil and "match" or "reconcile_margin") .. " needs a journal"
  end
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local text = f:read("*a") or ""
  f:close()
  return text
end

local function sequence_length(items)
  local n, count = #items, 0
  for _ in pairs(items) do count = count + 1 end
  return count == n and n or nil
end

-- a bulk call with a journal. ctx: target and account (where the records
-- go: a journal serves one), op (method, path), name (the
-- public name), done_word ("created"), send(items,
-- opts) -> job | nil, err, run(job), pages(query) -> next_page or nil
-- (no reconciliation: the records are sent again, as for PATCH).
-- held.file: the open journal. Returns what the bulk call returns.
local function run_bulk(ctx, items, opts, held)
  local op, path, started = ctx.op, opts.journal, os.time()
  local n = sequence_length(items)
  if not n then
    return nil, core.invalid_error(ctx.op.index, "the records must be a sequence 1..n without holes: a record "
      .. "would be left out")
  end
  local file, open_err = core.journal_open(path)
  if not file then return nil, journal_error(op, "JOURNAL_OPEN", open_err) end
  held.file = file -- closed by journal.bulk, however this ends
  local function give_up(code, message)
    file:close()
    return nil, journal_error(op, code, message)
  end
  local text = read_all(path)
  local entries, whole, why = parse(text, ctx, path)
  if not entries then return give_up(whole, why) end
  if whole < #text then
    local ok, cut_err = file:cut(whole)
    if not ok then return give_up("JOURNAL_WRITE", cut_err) end
  end

  -- which records are whose: the digests must agree wherever something
  -- may have been applied
  local digests, claimed = {}, {}
  for i = 1, n do digests[i] = journal.digest(items[i]) end
  for i, e in pairs(entries) do
    local state = state_of(e)
    if state ~= "not_applied" and (i > n or e.digest ~= digests[i]) then
      return give_up("JOURNAL_MISMATCH", format("%s belongs to other records: its record %d %s, %s; nothing was "
        .. "sent (a journal serves one list of records: use another for other records)", path, i,
        state == "applied" and "was applied" or "may have been applied",
        i > n and format("and there are %d records now", n) or "and record " .. i .. " has other content now"))
    end
    if APPLIED[e.result] and e.id then claimed[e.id] = true end
  end

  local results, skipped, reconciled, pre_failed = {}, 0, 0, 0
  local maybe, send, lines = {}, {}, { line("journal", VERSION, "operation", ctx.name, "target", ctx.target,
    "account", ctx.account, "records", n, "at", iso(started)) }
  for i = 1, n do
    local state = state_of(entries[i])
    if state == "applied" then
      local id = entries[i].id
      results[i] = { record = { id = id }, skipped = true }
      skipped = skipped + 1
    elseif state == "maybe" and ctx.pages then
      maybe[#maybe + 1] = i
    else
      send[#send + 1] = i
    end
  end
  if #maybe > 0 then
    local found, err = reconcile(ctx, items, entries, maybe, claimed, opts)
    if not found then
      file:close()
      return nil, err
    end
    for _, i in ipairs(maybe) do
      local f = found[i]
      if f == nil then
        lines[#lines + 1] = line("outcome", i, "result", "not_found")
        send[#send + 1] = i
      else
        results[i] = core.is_error(f) and { err = f } or { record = f, reconciled = true }
        if results[i].err then pre_failed = pre_failed + 1 else reconciled = reconciled + 1 end
        lines[#lines + 1] = outcome_line(ctx, i, results[i])
      end
    end
    sort(send)
  end
  local stamp = iso(os.time())
  for _, i in ipairs(send) do
    lines[#lines + 1] = line("intent", i, "digest", digests[i], "at", stamp)
  end
  -- the intents are on disk before anything is sent
  local ok, write_err = file:append(concat(lines), true)
  if not ok then return give_up("JOURNAL_WRITE", write_err .. " (nothing was sent)") end

  local pre_done = skipped + reconciled + pre_failed
  local batch_opts, user_progress = copy(opts), opts.on_progress
  local progress_error
  if user_progress then
    batch_opts.on_progress = function(done, total, failed, wait)
      return user_progress(done + pre_done, total + pre_done, failed + pre_failed, wait)
    end
    if pre_done > 0 then
      local pok, perr = pcall(user_progress, pre_done, n, pre_failed)
      if not pok then progress_error, batch_opts.on_progress = perr, nil end
    end
  end
  local batch = {}
  for k, i in ipairs(send) do batch[k] = items[i] end
  local job, err = ctx.send(batch, batch_opts)
  if not job then
    file:close()
    return nil, err
  end
  local written, journal_err = {}, nil
  local function write_outcome(k, result)
    if written[k] then return end
    written[k] = true
    local wok, werr = file:append(outcome_line(ctx, send[k], result), false)
    if not wok and not journal_err then journal_err = werr end
  end
  job:on_result(write_outcome)
  -- the batch's summary, counting the records this run did not send
  local function counted(summary)
    summary.ok = summary.ok + skipped + reconciled
    summary.failed = summary.failed + pre_failed
    summary.skipped, summary.reconciled, summary.sent = skipped, reconciled, #send
    summary.progress_error = summary.progress_error or progress_error
    return summary
  end
  local sent_results, summary
  local run_ok, run_err = compat.pcall(function() sent_results, summary = ctx.run(job) end)
  if not run_ok then
    -- interrupted: what finished is written; the rest stays an intent
    -- without outcome, which the next run reconciles. The error's
    -- results and summary are the caller's records'.
    file:sync()
    if type(run_err) == "table" and type(run_err.results) == "table" then
      for k, result in pairs(run_err.results) do results[send[k]] = result end
      run_err.results = results
      if type(run_err.summary) == "table" then counted(run_err.summary) end
    end
    error(run_err, 0)
  end
  for k, result in ipairs(sent_results) do
    write_outcome(k, result)
    results[send[k]] = result
  end
  local sync_ok, sync_err = file:sync()
  if not sync_ok and not journal_err then journal_err = sync_err end
  file:close()
  counted(summary)
  if journal_err then summary.journal_error = journal_error(op, "JOURNAL_WRITE", journal_err) end
  return results, summary
end

--- a bulk call with a journal (see run_bulk): the journal is closed, and
-- its lock let go, however the call ends (a match function that raises,
-- an interrupted batch)
function journal.bulk(ctx, items, opts)
  local held, out = {}, nil
  local ok, err = compat.pcall(function() out = compat.pack(run_bulk(ctx, items, opts, held)) end)
  if held.file then held.file:close() end
  if not ok then error(err, 0) end
  return compat.unpack(out, 1, out.n)
end

return journal
