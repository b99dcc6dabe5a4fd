-- List query handling: opaque cursors, page_size, the page-size cap,
-- updated_after filters and `fields` projection.
--
-- A cursor is standard base64 (with '+', '/' and '=' on purpose, so that
-- clients must percent-encode it) of 3 marker bytes followed by the JSON
-- state {"r": <resource>, "i": <index of the next entry to consider>}.
local mime = require("mime")
local json = require("stackone.server.json")
local isotime = require("stackone.server.isotime")

local paging = {}

local find, sub, match = string.find, string.sub, string.match
local tointeger = require("stackone.server.compat").tointeger

local MARKER = "\251\255\191" -- base64 "+/+/"
local CURSOR_MT = json.order_mt({ "r", "i" })

function paging.encode_cursor(resource, index)
  return (mime.b64(MARKER .. json.encode(setmetatable({ r = resource, i = index }, CURSOR_MT))))
end

--- Decode a cursor. Returns the index or nil.
function paging.decode_cursor(cursor, resource)
  if not find(cursor, "^[%w+/]+=*$") or #cursor % 4 ~= 0 then return nil end
  local raw = mime.unb64(cursor)
  if not raw or sub(raw, 1, 3) ~= MARKER then return nil end
  local state = json.decode(sub(raw, 4))
  if not json.is_object(state) or state.r ~= resource then return nil end
  local i = tointeger(state.i)
  if not i or i < 1 then return nil end
  return i
end

--- page_size: nil/"" -> default 25; "1".."100" -> n; else nil.
function paging.page_size(v)
  if v == nil or v == "" then return 25 end
  if not find(v, "^%d+$") or #v > 3 then return nil end
  local n = tonumber(v)
  if n < 1 or n > 100 then return nil end
  return n
end

--- The updated_after bound from filter[updated_after] (preferred) or the
-- deprecated updated_after. Returns ms (or false when absent), or nil, msg.
function paging.updated_after(q)
  local name = "filter[updated_after]"
  local v = q[name]
  if v == nil or v == "" then
    name, v = "updated_after", q.updated_after
  end
  if v == nil or v == "" then return false end
  local ms = isotime.parse(v)
  if not ms then return nil, name .. " must be an ISO-8601 date-time" end
  return ms
end

--- raw: absent/""/"false" -> false, "true" -> true, else nil.
function paging.bool(v)
  if v == nil or v == "" or v == "false" then return false end
  if v == "true" then return true end
  return nil
end

--- A projector for `fields`: returns nil when every field is wanted, or a
-- function(record) -> new record with only the requested fields, in the
-- schema's order. Unknown names are ignored.
function paging.projector(fields_param, all_fields)
  if fields_param == nil or match(fields_param, "^[%s,]*$") then return nil end
  local wanted = {}
  for name in fields_param:gmatch("[^,]+") do
    wanted[match(name, "^%s*(.-)%s*$")] = true
  end
  local keys = {}
  for _, k in ipairs(all_fields) do
    if wanted[k] then keys[#keys + 1] = k end
  end
  local mt = json.order_mt(keys)
  return function(rec)
    local out = {}
    for i = 1, #keys do
      local k = keys[i]
      out[k] = rec[k]
    end
    return setmetatable(out, mt)
  end
end

--- Select one page of entries.
-- entries: list of { rec, upd }; start: first index; size: records per page;
-- after: ms bound or false. Returns the records and the index of the next
-- matching entry (nil at the end).
function paging.page(entries, start, size, after)
  local out, n = json.array({}), 0
  local i, count = start, #entries
  while i <= count and n < size do
    local e = entries[i]
    if not after or e.upd > after then
      n = n + 1; out[n] = e.rec
    end
    i = i + 1
  end
  if after then
    while i <= count and entries[i].upd <= after do i = i + 1 end
  end
  if i > count then return out, nil end
  return out, i
end

return paging
