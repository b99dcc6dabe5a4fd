-- Imports contacts from a CSV or JSON Lines file with create_many: a
-- progress bar on a terminal (plain lines otherwise), a summary, and every
-- record that failed written, with its error, to a file that can be fed
-- back in. Nothing is lost.
--
--   lua5.4 examples/import_contacts.lua contacts.csv [--failed failed.jsonl] [--concurrency 8]
--
-- CSV: a header row naming the fields; list fields (emails, phone_numbers,
-- deal_ids, account_ids) hold values separated by ";". JSON Lines: one
-- contact object per line, or { "record": {...}, "error": {...} } lines
-- from an earlier run's failed file.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local client, _server <close> = require("connect")()
local cjson = require("cjson")

local LIST_FIELDS = { emails = true, phone_numbers = true, deal_ids = true, account_ids = true }

local function usage()
  io.stderr:write("usage: import_contacts.lua FILE.csv|FILE.jsonl [--failed OUT.jsonl] [--concurrency N]\n")
  os.exit(2)
end

local input, failed_path, concurrency = nil, "failed.jsonl", 8
local i = 1
while arg[i] do
  if arg[i] == "--failed" then failed_path, i = arg[i + 1] or usage(), i + 2
  elseif arg[i] == "--concurrency" then concurrency, i = math.tointeger(tonumber(arg[i + 1])) or usage(), i + 2
  elseif not input then input, i = arg[i], i + 1
  else usage() end
end
if not input then usage() end

-- one CSV line into fields; quoted fields may hold commas and "" quotes
local function csv_fields(line)
  local fields, pos = {}, 1
  while pos <= #line + 1 do
    if line:sub(pos, pos) == '"' then
      local value, j = {}, pos + 1
      while true do
        local q = line:find('"', j, true)
        if not q then error("unterminated quote in: " .. line) end
        value[#value + 1] = line:sub(j, q - 1)
        if line:sub(q + 1, q + 1) == '"' then
          value[#value + 1] = '"'
          j = q + 2
        else
          pos = q + 2
          break
        end
      end
      fields[#fields + 1] = table.concat(value)
    else
      local comma = line:find(",", pos, true) or #line + 1
      fields[#fields + 1] = line:sub(pos, comma - 1)
      pos = comma + 1
    end
  end
  return fields
end

local function read_csv(f)
  local header = csv_fields((f:read("l") or ""):gsub("\r$", ""))
  local records = {}
  for line in f:lines() do
    line = line:gsub("\r$", "")
    if line ~= "" then
      local record = {}
      for n, value in ipairs(csv_fields(line)) do
        local name = header[n]
        if name and value ~= "" then
          if LIST_FIELDS[name] then
            local list = {}
            for item in value:gmatch("[^;]+") do list[#list + 1] = item:match("^%s*(.-)%s*$") end
            value = list
          end
          record[name] = value
        end
      end
      records[#records + 1] = record
    end
  end
  return records
end

local function read_jsonl(f)
  local records = {}
  for line in f:lines() do
    if line:match("%S") then
      local value = cjson.decode(line)
      if type(value.record) == "table" and value.error then value = value.record end
      records[#records + 1] = value
    end
  end
  return records
end

local f = assert(io.open(input, "r"))
local records = input:match("%.csv$") and read_csv(f) or read_jsonl(f)
f:close()

local tty = os.execute("test -t 2")
local started = os.time()
local last_failed = 0
local function progress(done, total, failed)
  -- redraw about a hundred times in all, and whenever a record fails
  local due = done == total or failed ~= last_failed or done % math.max(1, total // 100) == 0
  last_failed = failed
  if not due then return end
  if tty then
    local width = 40
    local filled = total > 0 and math.floor(width * done / total) or width
    io.stderr:write(("\r[%s%s] %d/%d  %d failed"):format(("#"):rep(filled), ("."):rep(width - filled),
      done, total, failed))
    if done == total then io.stderr:write("\n") end
  elseif done == total or done % 500 == 0 then
    io.stderr:write(("%d/%d done, %d failed\n"):format(done, total, failed))
  end
end

local results, summary = client.crm.contacts.create_many(records, { concurrency = concurrency,
  on_progress = progress })

local out = assert(io.open(failed_path, "w"))
for n, result in ipairs(results) do
  if result.err then
    local e = result.err
    out:write(cjson.encode{ record = records[n], error = { kind = e.kind, code = e.code, status = e.status,
      message = e.message, maybe_applied = e.maybe_applied } }, "\n")
  end
end
out:close()

print(("imported %d of %d contacts in %.1f s (%d requests); %d failed%s"):format(summary.ok, #records,
  summary.elapsed, summary.attempts, summary.failed,
  summary.failed > 0 and (", written to " .. failed_path) or ""))
if summary.failed == 0 then os.remove(failed_path) end
client:close()
print(("(wall time %d s)"):format(os.time() - started))
