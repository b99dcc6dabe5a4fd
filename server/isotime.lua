-- ISO-8601 timestamps: formatting (UTC, millisecond precision, as StackOne
-- writes them: 2021-01-01T01:01:01.000Z) and parsing to epoch milliseconds.
local isotime = {}

local floor, format, match, tonumber = math.floor, string.format, string.match, tonumber
local date = os.date

local gettime = require("socket").gettime
local idiv = require("stackone.server.compat").idiv

--- Milliseconds since the epoch, as an integer.
function isotime.now_ms()
  return floor(gettime() * 1000)
end

local last_sec, last_prefix

--- Format epoch milliseconds (integer) as YYYY-MM-DDTHH:MM:SS.mmmZ.
function isotime.format_ms(ms)
  local sec = idiv(ms, 1000)
  if sec ~= last_sec then
    last_sec, last_prefix = sec, date("!%Y-%m-%dT%H:%M:%S", sec)
  end
  return format("%s.%03dZ", last_prefix, ms % 1000)
end

function isotime.now()
  return isotime.format_ms(isotime.now_ms())
end

-- Days since 1970-01-01 of a proleptic Gregorian date.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = idiv(y, 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = idiv(153 * mp + 2, 5) + d - 1
  local doe = yoe * 365 + idiv(yoe, 4) - idiv(yoe, 100) + doy
  return era * 146097 + doe - 719468
end

local month_days = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function valid_date(y, m, d)
  if m < 1 or m > 12 or d < 1 then return false end
  local max = month_days[m]
  if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then max = 29 end
  return d <= max
end

--- Parse an ISO-8601 date or date-time (zone Z, +hh:mm, +hhmm or none = UTC)
-- into epoch milliseconds. Returns nil for anything else.
function isotime.parse(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = match(s, "^(%d%d%d%d)-(%d%d)-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if not valid_date(y, mo, d) then return nil end
  local h, mi, sec, ms = 0, 0, 0, 0
  local offset = 0
  if rest ~= "" then
    local hh, mm, tail = match(rest, "^[Tt ](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, tail2 = match(tail, "^:(%d%d)(.*)$")
    if ss then
      sec, tail = tonumber(ss), tail2
      local frac, tail3 = match(tail, "^[.,](%d+)(.*)$")
      if frac then
        ms = floor(tonumber("0." .. frac) * 1000 + 1e-6)
        tail = tail3
      end
    end
    if tail == "Z" or tail == "z" then
      offset = 0
    elseif tail ~= "" then
      local sign, oh, om = match(tail, "^([+-])(%d%d):?(%d%d)$")
      if not sign then return nil end
      offset = (tonumber(oh) * 60 + tonumber(om)) * 60
      if sign == "-" then offset = -offset end
    end
    if h > 24 or mi > 59 or sec > 60 or (h == 24 and (mi > 0 or sec > 0 or ms > 0)) then
      return nil
    end
  end
  local secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
  return secs * 1000 + ms
end

return isotime
