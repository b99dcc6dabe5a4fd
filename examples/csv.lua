-- CSV as spreadsheets write it (RFC 4180 and what Excel, LibreOffice and
-- Google Sheets do), for examples/import_contacts.lua. Plain Lua, any
-- version from 5.1 on.
--
--   local csv = require("csv")
--   for fields, line in csv.rows(text, { delimiter = ";" }) do ... end
--   local rows = csv.parse(text) -- { {fields...}, ... }, or raises
--
-- * A UTF-8 byte-order mark at the start is skipped (Excel's "CSV UTF-8").
--   A UTF-16 one is refused with a message (Excel's "Unicode Text").
-- * Records end with CRLF, LF or a lone CR; the last one may have no end.
-- * A field in double quotes may hold the delimiter, line ends (kept as
--   they are in the file) and quotes written twice ("" is one ").
-- * Text after a closing quote is kept ("a"b is ab), and a quote inside
--   an unquoted field is an ordinary character, as spreadsheets read them.
-- * A first line "sep=;" (Excel's hint) sets the delimiter, unless
--   opts.delimiter is given.
-- * Empty lines are skipped. A quote that is never closed is an error
--   naming the line where its field starts.
-- * csv.from_cp1252(text) turns Windows-1252 text into UTF-8.
local csv = {}

local find, sub, byte, gsub = string.find, string.sub, string.byte, string.gsub
local concat = table.concat

local CR, LF, QUOTE = 13, 10, 34

-- the number of line ends in s (CRLF counts once)
local function line_ends(s)
  if not find(s, "[\r\n]") then return 0 end
  local _, n = gsub(gsub(s, "\r\n", "\n"), "[\r\n]", "")
  return n
end

--- the delimiter a name stands for: "," ";" "|" ... as given, "tab" or
-- "\t" for a tab. Returns it, or nil and a message.
function csv.delimiter(name)
  if name == "tab" or name == "\\t" then return "\t" end
  if type(name) ~= "string" or #name ~= 1 or find(name, '["\r\n]') then
    return nil, "the delimiter must be one character other than a quote or a line end, or tab"
  end
  return name
end

--- An iterator over the records of text: each step gives the list of the
-- record's fields (strings) and the line its record starts on. opts:
-- delimiter (default ",", or what a "sep=" first line says).
function csv.rows(text, opts)
  opts = opts or {}
  local pos, len, line = 1, #text, 1
  local b1, b2 = byte(text, 1, 2)
  if b1 == 0xFF and b2 == 0xFE or b1 == 0xFE and b2 == 0xFF then
    error("the file is UTF-16 (a spreadsheet's \"Unicode text\"): save it as \"CSV UTF-8\"", 0)
  end
  if sub(text, 1, 3) == "\239\187\191" then pos = 4 end
  local delim = opts.delimiter
  -- "sep=;" alone on the first line (or followed by empty fields: "sep=;;;")
  local sep, sep_end = text:match("^sep=([^\r\n\"])()", pos)
  if sep then
    local _, e = find(text, "^" .. gsub(sep, "%p", "%%%0") .. "*\r?\n?", sep_end)
    local c = byte(text, e)
    if e == len or c == CR or c == LF then
      delim, pos, line = delim or sep, e + 1, 2
    end
  end
  delim = delim or ","
  assert(csv.delimiter(delim))
  local db = byte(delim)
  -- where an unquoted field ends
  local stop = "[" .. gsub(delim, "%p", "%%%0") .. "\r\n]"

  return function()
    while pos <= len do
      local fields, n, start_line = {}, 0, line
      local any_quoted = false
      while true do
        local value
        if byte(text, pos) == QUOTE then
          any_quoted = true
          local parts, np, from, field_line = {}, 0, pos + 1, line
          while true do
            local qpos = find(text, '"', from, true)
            if not qpos then
              error(("line %d: a quoted field is not closed"):format(field_line), 0)
            end
            np = np + 1; parts[np] = sub(text, from, qpos - 1)
            if byte(text, qpos + 1) == QUOTE then
              np = np + 1; parts[np] = '"'
              from = qpos + 2
            else
              pos = qpos + 1
              break
            end
          end
          value = concat(parts, "", 1, np)
          line = line + line_ends(value)
          -- text after the closing quote, up to the delimiter or line end
          local e = find(text, stop, pos) or len + 1
          if e > pos then value = value .. sub(text, pos, e - 1) end
          pos = e
        else
          local e = find(text, stop, pos) or len + 1
          value = sub(text, pos, e - 1)
          pos = e
        end
        n = n + 1; fields[n] = value
        local c = byte(text, pos)
        if c == db then
          pos = pos + 1 -- (after a delimiter at the very end, the loop adds the empty last field)
        else
          if c == CR then
            pos = pos + (byte(text, pos + 1) == LF and 2 or 1)
            line = line + 1
          elseif c == LF then
            pos = pos + 1
            line = line + 1
          end
          break
        end
      end
      if n > 1 or any_quoted or fields[1] ~= "" then return fields, start_line end
      -- an empty line: on to the next record
    end
    return nil
  end
end

-- Windows-1252's 0x80..0x9F (its other bytes are the code points of the
-- same number, as in Latin-1; the five it leaves undefined stay C1 codes)
local CP1252 = {
  [0x80] = 0x20AC, [0x82] = 0x201A, [0x83] = 0x0192, [0x84] = 0x201E, [0x85] = 0x2026, [0x86] = 0x2020,
  [0x87] = 0x2021, [0x88] = 0x02C6, [0x89] = 0x2030, [0x8A] = 0x0160, [0x8B] = 0x2039, [0x8C] = 0x0152,
  [0x8E] = 0x017D, [0x91] = 0x2018, [0x92] = 0x2019, [0x93] = 0x201C, [0x94] = 0x201D, [0x95] = 0x2022,
  [0x96] = 0x2013, [0x97] = 0x2014, [0x98] = 0x02DC, [0x99] = 0x2122, [0x9A] = 0x0161, [0x9B] = 0x203A,
  [0x9C] = 0x0153, [0x9E] = 0x017E, [0x9F] = 0x0178,
}

local function cp1252_char(c)
  local cp = CP1252[byte(c)] or byte(c)
  if cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

--- text in Windows-1252 (what a spreadsheet's plain "CSV" is on Windows in
-- Western Europe and the Americas; Latin-1 text too) as UTF-8
function csv.from_cp1252(text)
  return (gsub(text, "[\128-\255]", cp1252_char))
end

--- every record of text: { {fields...}, ... }; raises on an unclosed quote
function csv.parse(text, opts)
  local rows = {}
  for fields in csv.rows(text, opts) do rows[#rows + 1] = fields end
  return rows
end

return csv
