-- Response values produced by handlers: { status, body, content_type, headers }.
-- http.response() turns them into bytes. Error bodies follow the StackOne
-- error envelope { statusCode, message, timestamp [, data, provider_errors] }.
local json = require("stackone.server.json")
local isotime = require("stackone.server.isotime")

local reply = {}

local ERROR_MT = json.order_mt({ "statusCode", "message", "timestamp", "data", "provider_errors" })
local UNIFIED_ERROR_MT = json.order_mt({ "statusCode", "message", "headers" })
local PROVIDER_ERROR_MT = json.order_mt({ "status", "url", "raw", "headers" })

local default_messages = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request timed out", [409] = "Conflict",
  [412] = "Precondition failed", [413] = "Payload Too Large", [422] = "Unprocessable Entity",
  [429] = "Too many requests", [431] = "Request Header Fields Too Large",
  [500] = "Internal server error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [505] = "HTTP Version Not Supported",
}

--- A JSON response.
function reply.json(status, value, headers)
  return { status = status, body = json.encode(value), headers = headers }
end

--- An empty response (204 unless told otherwise).
function reply.empty(status)
  return { status = status or 204 }
end

--- An error envelope. extra may hold `data`, `provider_errors`, `headers`
-- (extra response header pairs).
function reply.error(status, message, extra)
  local e = setmetatable({
    statusCode = status,
    message = message or default_messages[status] or "Error",
    timestamp = isotime.now(),
  }, ERROR_MT)
  local headers
  if extra then
    e.data, e.provider_errors, headers = extra.data, extra.provider_errors, extra.headers
  end
  return reply.json(status, e, headers)
end

--- A UnifiedError object for the `data` member of a 400 envelope.
function reply.unified_error(status, message)
  return setmetatable({ statusCode = status, message = message }, UNIFIED_ERROR_MT)
end

--- A ProviderError object.
function reply.provider_error(status, url, message)
  return setmetatable({
    status = status,
    url = url,
    raw = { message = message },
    headers = { ["content-type"] = "application/json" },
  }, PROVIDER_ERROR_MT)
end

return reply
