-- A bulk import with a journal that a spec kills (spec/journal_spec.lua):
--   LUA journal_child.lua BASE_URL API_KEY JOURNAL N KILL_AT [CONCURRENCY]
-- creates N contacts (r<i>@example.com) with create_many and the journal;
-- with KILL_AT >= 1 it kills itself with SIGKILL once KILL_AT results have
-- arrived (the transfers in flight then are lost to it, not to the server).
-- Prints "DONE ok=<n> skipped=<n> reconciled=<n> sent=<n>" when it ends.
local stackone = require("stackone")
local journal_child = {}

--- the records of a run: the same for a given n in every process
function journal_child.records(n)
  local out = {}
  for i = 1, n do
    out[i] = { first_name = "R" .. i, last_name = "Journal", emails = { ("r%d@example.com"):format(i) } }
  end
  return out
end

local function own_pid()
  local f = assert(io.open("/proc/self/stat", "r")) -- this process: the interpreter
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  return pid
end

if arg and arg[0] and arg[0]:match("journal_child%.lua$") then
  local base_url, key, path = arg[1], arg[2], arg[3]
  local n, kill_at, concurrency = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6] or "4")
  local client = assert(stackone.new{ api_key = key, account_id = "acc-123", base_url = base_url })
  local pid = own_pid()
  local results, summary = client.crm.contacts.create_many(journal_child.records(n), {
    journal = path, concurrency = concurrency,
    on_progress = function(done)
      if kill_at >= 1 and done >= kill_at then os.execute("kill -9 " .. pid) end
    end,
  })
  if not results then error(tostring(summary)) end
  io.write(("DONE ok=%d skipped=%d reconciled=%d sent=%d\n"):format(summary.ok, summary.skipped,
    summary.reconciled, summary.sent))
  client:close()
end

return journal_child
