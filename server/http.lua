-- HTTP/1.x wire format: an incremental request parser (one per connection)
-- and response serialisation, plus target/query/percent-decoding helpers.
local http = {}

local byte, sub, find, match, lower, gsub, format =
  string.byte, string.sub, string.find, string.match, string.lower, string.gsub, string.format
local concat, char, tonumber = table.concat, string.char, tonumber

http.MAX_HEAD = 64 * 1024          -- request line + headers
http.MAX_HEADERS = 100
http.MAX_BODY = 64 * 1024 * 1024

local reasons = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [206] = "Partial Content", [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [412] = "Precondition Failed", [413] = "Content Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Entity", [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout", [505] = "HTTP Version Not Supported",
}

function http.reason(status)
  return reasons[status] or "Unknown"
end

---------------------------------------------------------------------------
-- Percent-decoding and query strings
---------------------------------------------------------------------------

local function hex_char(h)
  return char(tonumber(h, 16))
end

--- Percent-decode once ("%2541" -> "%41"); malformed escapes are kept as is.
function http.unescape(s)
  if find(s, "%", 1, true) then s = gsub(s, "%%(%x%x)", hex_char) end
  return s
end

local function form_unescape(s)
  if find(s, "+", 1, true) then s = gsub(s, "+", " ") end
  return http.unescape(s)
end

--- Parse a raw query string. Returns a map name -> value (the last value
-- wins) and the list of {name, value} pairs in order. Names are decoded
-- but otherwise kept as sent ("filter[updated_after]").
function http.parse_query(raw)
  local map, list, n = {}, {}, 0
  if raw == nil or raw == "" then return map, list end
  for part in raw:gmatch("[^&]+") do
    local k, v = match(part, "^([^=]*)=(.*)$")
    if not k then k, v = part, "" end
    k, v = form_unescape(k), form_unescape(v)
    n = n + 1; list[n] = { k, v }
    map[k] = v
  end
  return map, list
end

--- Split a request target into (path, raw query or nil). Absolute-form
-- targets ("http://host/path?q") are reduced to their path.
function http.split_target(target)
  if byte(target) ~= 47 then -- not '/'
    local rest = match(target, "^[%a][%w+.-]*://[^/?#]*(.*)$")
    if rest then target = rest ~= "" and rest or "/" end
  end
  local q = find(target, "?", 1, true)
  if q then return sub(target, 1, q - 1), sub(target, q + 1) end
  return target, nil
end

---------------------------------------------------------------------------
-- Incremental request parser
---------------------------------------------------------------------------

local Parser = {}
Parser.__index = Parser

function http.new_parser()
  return setmetatable({ buf = "", pos = 1, scan = 1, state = "head" }, Parser)
end

--- Append bytes received from the peer.
function Parser:feed(data)
  if self.pos > 1 then
    self.buf = sub(self.buf, self.pos) .. data
    self.pos, self.scan = 1, 1
  else
    self.buf = self.buf .. data
  end
end

--- Bytes buffered but not yet consumed.
function Parser:buffered()
  return #self.buf - self.pos + 1
end

local TOKEN = "^[%w!#$%%&'*+.^_`|~-]+$"

local function bad(status, message)
  return false, status, message
end

-- Parse request line and header fields. Returns req or false, status, msg.
local function parse_head(head)
  local req = { header_list = {}, headers = {} }
  local hl, hmap, nh = req.header_list, req.headers, 0
  local first = true
  for raw in head:gmatch("([^\n]*)\n") do
    local line = byte(raw, -1) == 13 and sub(raw, 1, -2) or raw
    if first then
      first = false
      local method, target, major, minor = match(line, "^(%S+) (%S+) HTTP/(%d)%.(%d)$")
      if not method or not find(method, TOKEN) then return bad(400, "Malformed request line") end
      if major ~= "1" then return bad(505, "HTTP version not supported") end
      req.method, req.target, req.version = method, target, major .. "." .. minor
    elseif line ~= "" then
      local c = byte(line)
      if c == 32 or c == 9 then return bad(400, "Obsolete header line folding is not supported") end
      local name, value = match(line, "^([^:]+):[ \t]*(.-)[ \t]*$")
      if not name or not find(name, TOKEN) then return bad(400, "Malformed header field") end
      nh = nh + 1
      if nh > http.MAX_HEADERS then return bad(431, "Too many header fields") end
      hl[nh] = { name, value }
      local key = lower(name)
      local old = hmap[key]
      hmap[key] = old and (old .. ", " .. value) or value
    end
  end
  if not req.method then return bad(400, "Missing request line") end
  return req
end

-- Decide how the body is framed. Returns true or false, status, msg.
local function frame_body(self, req)
  local h = req.headers
  local te, cl = h["transfer-encoding"], h["content-length"]
  if te then
    if cl then return bad(400, "Both Transfer-Encoding and Content-Length are present") end
    if lower(te) ~= "chunked" then return bad(400, "Unsupported Transfer-Encoding: " .. te) end
    self.state, self.cphase, self.parts, self.np, self.total = "chunked", "size", {}, 0, 0
  elseif cl then
    -- a repeated header was joined with ", "; all copies must agree
    local value
    for copy in cl:gmatch("[^,]+") do
      local v = match(copy, "^%s*(.-)%s*$")
      if not find(v, "^%d+$") or #v > 15 or (value and v ~= value) then
        return bad(400, "Invalid Content-Length")
      end
      value = v
    end
    if not value then return bad(400, "Invalid Content-Length") end
    local n = tonumber(value)
    if n > http.MAX_BODY then return bad(413, "Request body too large") end
    if n > 0 then
      self.state, self.need, self.parts, self.np = "body", n, {}, 0
    end
  end
  local expect = h["expect"]
  if self.state ~= "head" and expect and lower(expect) == "100-continue" and req.version == "1.1" then
    self.want_continue = true
  end
  return true
end

-- Collect body bytes for a Content-Length body. Returns true when complete.
local function take_body(self)
  local avail = #self.buf - self.pos + 1
  if avail <= 0 then return false end
  local np = self.np + 1
  if avail >= self.need then
    self.parts[np] = sub(self.buf, self.pos, self.pos + self.need - 1)
    self.pos = self.pos + self.need
    self.need, self.np = 0, np
    return true
  end
  self.parts[np] = self.pos == 1 and self.buf or sub(self.buf, self.pos)
  self.np, self.need = np, self.need - avail
  self.buf, self.pos, self.scan = "", 1, 1
  return false
end

-- Decode chunked framing. Returns true when complete, nil when more data
-- is needed, or false, status, msg.
local function take_chunked(self)
  local buf = self.buf
  while true do
    local phase = self.cphase
    if phase == "size" or phase == "trailer" then
      local nl = find(buf, "\n", self.pos, true)
      if not nl then
        if #buf - self.pos > 4096 then return bad(400, "Malformed chunked body") end
        return nil
      end
      local line = sub(buf, self.pos, nl - 1)
      if byte(line, -1) == 13 then line = sub(line, 1, -2) end
      self.pos = nl + 1
      if phase == "trailer" then
        if line == "" then return true end
      else
        local hex, ext = match(line, "^(%x+)(.*)$")
        if not hex or #hex > 8 or not (ext == "" or find(ext, "^[ \t]*;")) then
          return bad(400, "Malformed chunk size")
        end
        local size = tonumber(hex, 16)
        self.total = self.total + size
        if self.total > http.MAX_BODY then return bad(413, "Request body too large") end
        if size == 0 then
          self.cphase = "trailer"
        else
          self.cphase, self.csize = "data", size
        end
      end
    elseif phase == "data" then
      local avail = #buf - self.pos + 1
      if avail <= 0 then return nil end
      local n = avail < self.csize and avail or self.csize
      self.np = self.np + 1
      self.parts[self.np] = sub(buf, self.pos, self.pos + n - 1)
      self.pos, self.csize = self.pos + n, self.csize - n
      if self.csize > 0 then return nil end
      self.cphase = "crlf"
    else -- "crlf" after chunk data
      local c = byte(buf, self.pos)
      if c == nil then return nil end
      if c == 10 then
        self.pos = self.pos + 1
      elseif c == 13 then
        local c2 = byte(buf, self.pos + 1)
        if c2 == nil then return nil end
        if c2 ~= 10 then return bad(400, "Malformed chunked body") end
        self.pos = self.pos + 2
      else
        return bad(400, "Malformed chunked body")
      end
      self.cphase = "size"
    end
  end
end

--- Take the next complete request, if any.
-- Returns req; nil (need more bytes); or false, status, message (malformed:
-- answer and close). Sets self.want_continue when a 100 Continue is due.
function Parser:take()
  if self.state == "head" then
    local buf = self.buf
    local p = self.pos
    if p > #buf then return nil end
    local c = byte(buf, p)
    if c == 13 or c == 10 then -- tolerate empty lines before a request
      local _, e = find(buf, "^[\r\n]+", p)
      p = e + 1
      self.pos = p
      if p > #buf then return nil end
    end
    local s = self.scan > p and self.scan or p
    local _, e = find(buf, "\n\r?\n", s)
    if not e then
      if #buf - p + 1 > http.MAX_HEAD then return bad(431, "Request header too large") end
      self.scan = #buf > 3 and #buf - 2 or 1
      return nil
    end
    if e - p + 1 > http.MAX_HEAD then return bad(431, "Request header too large") end
    local req, status, message = parse_head(sub(buf, p, e))
    self.pos, self.scan = e + 1, 1
    if not req then return false, status, message end
    local ok, st, msg = frame_body(self, req)
    if not ok then return false, st, msg end
    if self.state == "head" then
      req.body = ""
      return req
    end
    self.req = req
  end
  local done, st, msg
  if self.state == "body" then
    done = take_body(self)
  else
    done, st, msg = take_chunked(self)
    if done == false then return false, st, msg end
  end
  if not done then return nil end
  local req = self.req
  req.body = concat(self.parts, "", 1, self.np)
  self.req, self.parts, self.state, self.want_continue = nil, nil, "head", nil
  return req
end

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

--- Whether the connection must close after answering req.
function http.wants_close(req)
  if req.version ~= "1.1" then return true end
  local c = req.headers["connection"]
  return c ~= nil and find(lower(c), "close", 1, true) ~= nil
end

--- Serialise a status line and header block.
-- headers: list of {name, value}; a value of false omits the field.
function http.head(status, headers, reason)
  local b, n = { format("HTTP/1.1 %d %s\r\n", status, reason or http.reason(status)) }, 1
  if headers then
    for i = 1, #headers do
      local h = headers[i]
      if h[2] ~= false then
        n = n + 1; b[n] = h[1] .. ": " .. tostring(h[2]) .. "\r\n"
      end
    end
  end
  n = n + 1; b[n] = "\r\n"
  return concat(b, "", 1, n)
end

local CT_JSON = "Content-Type: application/json\r\n"

--- Serialise a complete, well-formed response.
-- res = { status, body = string|nil, content_type = string|nil,
--         headers = {{name, value}, ...} | nil }
function http.response(res, close, head_only)
  local status, body = res.status, res.body or ""
  local b = { format("HTTP/1.1 %d %s\r\n", status, http.reason(status)) }
  local n = 1
  if res.content_type then
    n = n + 1; b[n] = "Content-Type: " .. res.content_type .. "\r\n"
  elseif body ~= "" then
    n = n + 1; b[n] = CT_JSON
  end
  local extra = res.headers
  if extra then
    for i = 1, #extra do
      n = n + 1; b[n] = extra[i][1] .. ": " .. extra[i][2] .. "\r\n"
    end
  end
  if status ~= 204 and status ~= 304 and status >= 200 then
    n = n + 1; b[n] = "Content-Length: " .. #body .. "\r\n"
  end
  if close then
    n = n + 1; b[n] = "Connection: close\r\n"
  end
  n = n + 1; b[n] = "\r\n"
  if not head_only and body ~= "" then
    n = n + 1; b[n] = body
  end
  return concat(b, "", 1, n)
end

return http
