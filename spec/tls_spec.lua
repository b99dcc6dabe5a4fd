-- HTTPS with a real TLS peer (Node's http2 module, with a test
-- certificate): verification on by default, ca_file, insecure, HTTP/2, and
-- the debug trace never showing the key, whatever the protocol.
local stackone = require("stackone")
local mime = require("mime")
local fx = require("support.fixtures")
local h2 = require("support.h2")
local harness = require("support.harness")

local CA = "spec/data/tls/cert.pem"

describe("TLS", function()
  local url

  harness.serve({ start = h2.start, reset = false }, function(s) url = s.url end)

  it("verifies the peer by default: an unknown certificate is a tls error, not retried", function()
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url })
    local page, err = c.crm.accounts.list()
    c:close()
    assert.is_nil(page)
    assert.equal("tls", err.kind)
    assert.equal("PEER_FAILED_VERIFICATION", err.code)
    assert.equal(0, err.attempts) -- no request went out
  end)

  it("trusts a ca_file, and talks HTTP/2 when the server offers it", function()
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url, ca_file = CA })
    local page, res = c.crm.accounts.list()
    c:close()
    assert(page, tostring(res))
    assert.equal("2.0", page.data[1].http)
    assert.equal(200, res.status)
  end)

  it("insecure = true skips verification", function()
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url, insecure = true })
    assert(c.crm.accounts.list())
    c:close()
  end)

  it("the debug trace over HTTP/2 never shows the key", function()
    local traces = {}
    local c = assert(stackone.new{ api_key = fx.API_KEY, account_id = "a", base_url = url, ca_file = CA,
      debug = function(text) traces[#traces + 1] = text end })
    assert(c.crm.contacts.create{ first_name = "A" })
    assert(c.crm.accounts.list())
    c:close()
    assert.equal(2, #traces)
    for _, text in ipairs(traces) do
      assert.is_nil(text:find(fx.API_KEY, 1, true))
      assert.is_nil(text:find(mime.b64(fx.API_KEY .. ":"), 1, true))
      assert.matches("REDACTED", text)
    end
    assert.matches("HTTP/2", traces[2])
  end)
end)
