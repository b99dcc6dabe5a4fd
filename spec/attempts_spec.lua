-- `attempts` counts the requests that went on the wire (the engine sees
-- each at libcurl's prerequest callback), not the tries: a try that failed
-- to connect or to finish its TLS handshake sent nothing and counts 0, in
-- err.attempts, response.attempts, summary.attempts and every record's
-- result. Every count is checked against the server's journal.
local socket = require("socket")
local server_support = require("support.server")
local harness = require("support.harness")
local h2 = require("support.h2")
local fx = require("support.fixtures")

-- retried at once, a few times: every try fails before sending
local RETRY = { max_attempts = 3, base_delay = 0.001, max_delay = 0.002 }

describe("attempts", function()
  local server

  harness.serve({}, function(s) server = s end)

  local function client_at(base_url)
    return fx.client({ url = base_url }, { retry = RETRY, sleep = function(s) socket.sleep(s) end })
  end

  it("is 1 for a create that went out once", function()
    local client = fx.client(server)
    local contact, res = client.crm.contacts.create{ first_name = "Once" }
    client:close()
    assert.is_truthy(contact)
    assert.equal(1, res.attempts)
    assert.equal(1, #server:requests())
  end)

  it("is 0 after a TLS failure (an unknown certificate): nothing was sent", function()
    local tls = h2.start()
    local client = client_at(tls.url)
    local contact, err = client.crm.contacts.create{ first_name = "Never" }
    client:close()
    local journal = tls:requests()
    tls:stop()
    assert.is_nil(contact)
    assert.equal("tls", err.kind)
    assert.equal("PEER_FAILED_VERIFICATION", err.code)
    assert.equal(0, err.attempts)
    assert.is_false(err.maybe_applied)
    assert.equal(0, #journal)
  end)

  it("is 0 after refused connections, for a single call", function()
    local client = client_at("http://127.0.0.1:" .. fx.closed_port())
    local contact, err = client.crm.contacts.create{ first_name = "Never" }
    local page, get_err = client.crm.contacts.list{ page_size = 1 }
    client:close()
    assert.is_nil(contact)
    assert.equal("network", err.kind)
    assert.equal("COULDNT_CONNECT", err.code)
    assert.equal(0, err.attempts)
    assert.is_nil(page)
    assert.equal(0, get_err.attempts)
  end)

  it("is 0 after refused connections, for a bulk call: the summary and every record", function()
    local client = client_at("http://127.0.0.1:" .. fx.closed_port())
    local records = {}
    for i = 1, 5 do records[i] = { first_name = "Never " .. i } end
    local results, summary = client.crm.contacts.create_many(records, { concurrency = 2 })
    client:close()
    assert.equal(5, summary.failed)
    assert.equal(0, summary.attempts)
    for i = 1, 5 do
      assert.equal("COULDNT_CONNECT", results[i].err.code)
      assert.equal(0, results[i].err.attempts)
    end
  end)

  it("equals the requests the server received when sockets run out (ulimit -n 10)", function()
    -- a child process whose bulk call finds no descriptor for most sockets
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local build, url, key = ...
package.cpath = build .. "/?.so;" .. package.cpath
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local stackone = require("stackone")
local c = assert(stackone.new{ api_key = key, account_id = "acc-fd", base_url = url,
  retry = { max_attempts = 2, base_delay = 0.001, max_delay = 0.001 } })
local records = {}
for i = 1, 40 do records[i] = { first_name = "fd " .. i } end
local results, summary = c.crm.contacts.create_many(records, { concurrency = 8 })
local per_record = 0
for _, r in ipairs(results) do per_record = per_record + (r.err and r.err.attempts or 1) end
print(summary.attempts, summary.failed, per_record)
c:close()
]])
    f:close()
    -- the first creates are answered slowly, so that the first wave holds
    -- its sockets while the rest (and their retries) look for theirs,
    -- however the machine schedules the child
    local slow = {}
    for i = 1, 8 do slow[i] = { delay = 0.2, pass = true } end
    server:script("/unified/crm/contacts", slow, "POST")
    -- (no redirection after ulimit: sh would save the old descriptor above 10)
    local p = assert(io.popen(("exec 2>&1; ulimit -n 10; %s %s %s %s %s"):format(fx.LUA, script, fx.BUILD, server.url,
      fx.API_KEY)))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    local attempts, failed, per_record = out:match("^(%d+)\t(%d+)\t(%d+)")
    assert(attempts, out)
    local posts = #server:requests("POST")
    assert.is_true(tonumber(failed) > 0, "no socket ran out: " .. out)
    assert.equal(posts, tonumber(attempts))
    assert.equal(posts, tonumber(per_record))
  end)

  it("counts only the tries that went out when some did not", function()
    -- two tries: the first refused, the second sent
    local port = fx.closed_port()
    local tries = 0
    local late -- a second server comes up on the refused port after the first try
    local client = fx.client({ url = "http://127.0.0.1:" .. port }, { retry = RETRY, sleep = function(s)
      tries = tries + 1
      if not late then late = server_support.start{ args = fx.SERVER_ARGS .. " --port " .. port } end
      socket.sleep(s)
    end })
    local contact, res = client.crm.contacts.create{ first_name = "Second try" }
    client:close()
    local journal = late and late:requests() or {}
    if late then late:stop() end
    assert.is_truthy(contact, tostring(res))
    assert.equal(1, tries)
    assert.equal(1, res.attempts)
    assert.equal(1, #journal)
  end)
end)
