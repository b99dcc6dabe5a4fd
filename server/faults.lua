-- Scripted responses ("steps" queued through /__control/script) turned
-- into output actions for the connection writer (see loop.lua):
--   { k = "data", s = string, i = 1 }          send bytes
--   { k = "stream", src = source, pos, last }  send bytes pos..last of a body source
--   { k = "wait", dur = seconds }              pause (timer; other connections go on)
--   { k = "refuse", dur = seconds }            stop accepting connections for that long
--   { k = "end", close = bool, reset = bool }  response done; keep alive, close
--                                              (FIN) or reset (RST)
-- A body source is { len = n, piece = function(i, j) -> bytes i..j }.
local json = require("stackone.server.json")
local idiv = require("stackone.server.compat").idiv
local http = require("stackone.server.http")

local faults = {}

local type, floor, min, rep, sub, lower, format = type, math.floor, math.min, string.rep, string.sub,
  string.lower, string.format
local sort = table.sort

faults.CHUNK = 64 * 1024

local STEP_KEYS = {
  status = true, headers = true, body = true, json = true, delay = true, body_delay = true,
  close = true, truncate = true, huge = true, pass = true, raw = true, refuse_for = true,
}
local CLOSE_MODES = { before = true, after_headers = true, mid_body = true, reset = true }
-- keys that describe a response, which `raw` replaces
local NOT_WITH_RAW = { "status", "body", "json", "headers", "close", "truncate", "huge", "body_delay", "pass" }

local function nonneg_number(v)
  return type(v) == "number" and v >= 0 and v == v and v < math.huge
end

local function nonneg_integer(v)
  return nonneg_number(v) and v == floor(v)
end

--- Check a decoded step. Returns nil when fine, else a message.
function faults.check(step, where)
  if not json.is_object(step) then return where .. " must be an object" end
  for k in pairs(step) do
    if not STEP_KEYS[k] then return format("%s: unknown key %q", where, k) end
  end
  local s = step.status
  if s ~= nil and not (nonneg_integer(s) and s >= 100 and s <= 999) then
    return where .. ".status must be an integer 100..999"
  end
  if step.headers ~= nil then
    if not json.is_object(step.headers) then return where .. ".headers must be an object" end
    for name, v in pairs(step.headers) do
      if not name:find("^[%w!#$%%&'*+.^_`|~-]+$") then
        return format("%s.headers: invalid header name %q", where, name)
      end
      if type(v) ~= "string" and type(v) ~= "number" and v ~= false then
        return format("%s.headers[%q] must be a string, a number or false", where, name)
      end
      if type(v) == "string" and v:find("[\r\n]") then
        return format("%s.headers[%q] must not contain CR or LF", where, name)
      end
    end
  end
  if step.body ~= nil and type(step.body) ~= "string" then return where .. ".body must be a string" end
  if step.body ~= nil and step.json ~= nil then return where .. ": give body or json, not both" end
  for _, k in ipairs({ "delay", "body_delay" }) do
    if step[k] ~= nil and not nonneg_number(step[k]) then
      return format("%s.%s must be a number of seconds >= 0", where, k)
    end
  end
  if step.close ~= nil and not CLOSE_MODES[step.close] then
    return where .. '.close must be "before", "after_headers", "mid_body" or "reset"'
  end
  if step.raw ~= nil then
    if type(step.raw) ~= "string" then return where .. ".raw must be a string" end
    for _, k in ipairs(NOT_WITH_RAW) do
      if step[k] ~= nil then return format("%s: raw cannot be combined with %s", where, k) end
    end
  end
  if step.refuse_for ~= nil and not nonneg_number(step.refuse_for) then
    return where .. ".refuse_for must be a number of seconds >= 0"
  end
  for _, k in ipairs({ "truncate", "huge" }) do
    if step[k] ~= nil and not nonneg_integer(step[k]) then
      return format("%s.%s must be an integer >= 0", where, k)
    end
  end
  if step.pass ~= nil and type(step.pass) ~= "boolean" then return where .. ".pass must be a boolean" end
  return nil
end

local function string_source(s)
  return { len = #s, piece = function(i, j) return sub(s, i, j) end }
end

local XS = rep("x", faults.CHUNK)

-- n bytes of valid JSON: {"filler":"xxx...x"} (n >= 13) or a run of digits.
local function filler_source(n)
  if n < 13 then
    local s = rep("1", n)
    return string_source(s)
  end
  local head, tail = '{"filler":"', '"}'
  local mid_end = n - 2 -- last byte of the x run
  return {
    len = n,
    piece = function(i, j)
      local parts = {}
      if i <= 11 then parts[#parts + 1] = sub(head, i, min(j, 11)) end
      local a, b = i > 12 and i or 12, min(j, mid_end)
      if b >= a then parts[#parts + 1] = sub(XS, 1, b - a + 1) end
      if j > mid_end then parts[#parts + 1] = sub(tail, (i > mid_end and i or mid_end + 1) - mid_end, j - mid_end) end
      return table.concat(parts)
    end,
  }
end

local function header_list(step, body_len, close_after)
  local given, lowered = step.headers or {}, {}
  local names = {}
  for name in pairs(given) do
    names[#names + 1] = name
    lowered[lower(name)] = true
  end
  sort(names)
  local list = {}
  if not lowered["content-type"] and body_len > 0 then
    list[#list + 1] = { "Content-Type", "application/json" }
  end
  if not lowered["content-length"] then
    list[#list + 1] = { "Content-Length", body_len }
  end
  for _, name in ipairs(names) do
    list[#list + 1] = { name, given[name] }
  end
  if close_after and not lowered["connection"] then
    list[#list + 1] = { "Connection", "close" }
  end
  return list, lowered
end

local function step_actions(step, req)
  local out = {}
  if step.delay and step.delay > 0 then out[#out + 1] = { k = "wait", dur = step.delay } end
  if step.close == "before" or step.close == "reset" then
    out[#out + 1] = { k = "end", close = true, reset = step.close == "reset" }
    return out
  end
  if step.raw then
    if step.raw ~= "" then out[#out + 1] = { k = "data", s = step.raw, i = 1 } end
    out[#out + 1] = { k = "end", close = true }
    return out
  end
  local src
  if step.huge then
    src = filler_source(step.huge)
  elseif step.json ~= nil then
    src = string_source(json.encode(step.json))
  else
    src = string_source(step.body or "")
  end
  local len = src.len
  local given = step.headers or {}
  local conn_hdr
  for name, v in pairs(given) do
    if lower(name) == "connection" and type(v) == "string" then conn_hdr = lower(v) end
  end
  local no_length = false
  for name, v in pairs(given) do
    if lower(name) == "content-length" and v == false then no_length = true end
  end
  local graceful = not step.close and not step.truncate
  local close_after = not graceful or no_length or http.wants_close(req)
    or (conn_hdr ~= nil and conn_hdr:find("close", 1, true) ~= nil)
  local headers = header_list(step, len, graceful and close_after)
  local head = http.head(step.status or 200, headers)
  if step.close == "after_headers" then
    out[#out + 1] = { k = "data", s = head, i = 1 }
    out[#out + 1] = { k = "end", close = true }
    return out
  end
  local half = idiv(len, 2)
  local send_to = len
  if step.close == "mid_body" then
    send_to = half
  elseif step.truncate then
    send_to = min(step.truncate, len)
  end
  -- with body_delay: bytes 1..mid, pause, then mid+1..send_to
  local mid = step.body_delay and min(half, send_to) or send_to
  if len <= 4096 then
    -- small body: one write for head + (first part of) body
    out[#out + 1] = { k = "data", s = head .. src.piece(1, mid), i = 1 }
  else
    out[#out + 1] = { k = "data", s = head, i = 1 }
    out[#out + 1] = { k = "stream", src = src, pos = 1, last = mid }
  end
  if step.body_delay then
    out[#out + 1] = { k = "wait", dur = step.body_delay }
    out[#out + 1] = { k = "stream", src = src, pos = mid + 1, last = send_to }
  end
  out[#out + 1] = { k = "end", close = close_after }
  return out
end

--- Put a "refuse" action for dur seconds into out: just before the last
-- bytes are sent, or before the final "end" when nothing is sent. So the
-- listening socket is closed before the client can have seen the end of
-- the step's action (closing it after the last send would race with a
-- client that reads fast and connects again).
function faults.add_refuse(out, dur)
  local at = #out -- the final "end"
  for i = #out, 1, -1 do
    local k = out[i].k
    if k == "data" or k == "stream" then at = i break end
  end
  table.insert(out, at, { k = "refuse", dur = dur })
  return out
end

-- keys that give an answer of the step's own
local ANSWER_KEYS = { "status", "body", "json", "headers", "close", "truncate", "huge", "body_delay" }

--- whether a step gives an answer of its own (with pass = true: after
-- the normal handling, instead of its answer)
function faults.answers(step)
  for _, k in ipairs(ANSWER_KEYS) do
    if step[k] ~= nil then return true end
  end
  return false
end

--- Actions for a step answering req.
function faults.actions(step, req)
  local out = step_actions(step, req)
  if step.refuse_for then faults.add_refuse(out, step.refuse_for) end
  return out
end

return faults
