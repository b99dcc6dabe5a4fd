--- Custom fields: the map form `{ ["Training Completion Status"] = "Completed" }`
-- resolved against the account's contact custom field definitions, and
-- readers for the custom_fields of returned records.
local compat = require("stackone.compat")

local custom_fields = {}

local function is_map(t)
  local k = next(t)
  return k ~= nil and type(k) ~= "number"
end

-- Definitions and records come from the server: any shape may arrive.
-- Entries that are not tables, or lack what is needed, are passed over,
-- so nothing here can raise on what the server sent.
local function tables(list)
  local out = {}
  if type(list) == "table" then
    for _, v in ipairs(list) do
      if type(v) == "table" then out[#out + 1] = v end
    end
  end
  return out
end

local function text(v)
  return (type(v) == "string" or type(v) == "number") and tostring(v) or nil
end

local function names_of(definitions)
  local names = {}
  for _, d in ipairs(definitions) do names[#names + 1] = text(d.name) or text(d.id) or "?" end
  table.sort(names)
  return table.concat(names, ", ")
end

local function find_definition(definitions, key)
  for _, d in ipairs(definitions) do
    if d.id == key then return d end
  end
  for _, d in ipairs(definitions) do
    if d.name == key then return d end
  end
end

local function find_option(options, value)
  for _, o in ipairs(options) do
    if o.value ~= nil and o.value == value then return o end
  end
end

local function option_values(options)
  local values = {}
  for _, o in ipairs(options) do values[#values + 1] = text(o.value) or "?" end
  return table.concat(values, ", ")
end

local function is_integral(v)
  return type(v) == "number" and v == math.floor(v) and v > -math.huge and v < math.huge
end

-- what a value must be for each of the spec's CustomFieldType values; the
-- ones not listed (list, other, unmapped_value, none) take any value
local TYPE_CHECKS = {
  text = { "a string", function(v) return type(v) == "string" end },
  url = { "a URL string", function(v) return type(v) == "string" end },
  date = { "a date string (YYYY-MM-DD...)",
    function(v) return type(v) == "string" and v:find("^%d%d%d%d%-%d%d%-%d%d") ~= nil end },
  float = { "a number", function(v) return type(v) == "number" and v == v end },
  integer = { "a whole number", is_integral },
  checkbox = { "a boolean", function(v) return type(v) == "boolean" end },
  boolean = { "a boolean", function(v) return type(v) == "boolean" end },
  multi_select = { "a list of options", function(v) return type(v) == "table" end },
}

-- the definition's type name: { value = "float", source_value = ... }
local function type_of(d)
  local t = d.type
  if type(t) == "table" then t = t.value end
  return type(t) == "string" and t or nil
end

--- turns a map into the spec's array form; nil and a message when a name
-- or an option is unknown, or a value is not of its field's type
local function resolve(map, definitions)
  local keys = {}
  for k in pairs(map) do
    if type(k) ~= "string" then
      return nil, "custom_fields must be an array of entries or a map of names to values"
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  definitions = tables(definitions)
  local out = {}
  for _, key in ipairs(keys) do
    local d = find_definition(definitions, key)
    if not d then
      return nil, ("unknown custom field '%s' (the account has: %s)"):format(key, names_of(definitions))
    end
    local value = map[key]
    local label = text(d.name) or text(d.id) or key
    local options = tables(d.options)
    local check = TYPE_CHECKS[type_of(d) or ""]
    if #options == 0 and check and not check[2](value) then
      return nil, ("custom field '%s' is of type %s: its value must be %s, not %s"):format(
        label, type_of(d), check[1], type(value) == "string" and ("'" .. value .. "'") or type(value))
    end
    local entry = { id = d.id, name = d.name, value = value }
    if #options > 0 then
      local values = type(value) == "table" and value or { value }
      for _, v in ipairs(values) do
        local option = find_option(options, v)
        if not option then
          return nil, ("custom field '%s' has no option '%s' (options: %s)"):format(
            label, tostring(v), option_values(options))
        end
        -- one chosen option travels with its id; a multi-select has no single id
        if type(value) ~= "table" then entry.value_id = option.id end
      end
    end
    out[#out + 1] = entry
  end
  return out
end

local function with_entries(fields, entries)
  local copy = {}
  for k, v in pairs(fields) do copy[k] = v end
  copy.custom_fields = entries
  return copy
end

--- for create/update, where `fields.custom_fields` may be a map, at
-- argument `position`: { wants = function(...) -> whether the call's
-- arguments need the definitions, run = function(...) -> the packed new
-- arguments | nil, err }.
-- definitions(opts) -> list | nil, err gives the account's definitions;
-- invalid(message) -> err makes an "invalid" error object.
function custom_fields.preparer(position, definitions, invalid)
  local prepare = {}
  function prepare.wants(...)
    local fields = select(position, ...)
    return type(fields) == "table" and type(fields.custom_fields) == "table"
      and is_map(fields.custom_fields)
  end
  function prepare.run(...)
    local args = compat.pack(...)
    local fields = args[position]
    local defs, err = definitions(args[position + 1])
    if not defs then return nil, err end
    local entries, message = resolve(fields.custom_fields, defs)
    if not entries then return nil, invalid(message) end
    args[position] = with_entries(fields, entries)
    return args
  end
  return prepare
end

--- for bulk calls: resolves the map-form custom_fields of every item. An
-- item that cannot be resolved becomes its error object, which the core
-- reports as that item's failure. fields_of(item) gives an item's fields,
-- rebuild(item, fields) a new item with other fields.
function custom_fields.prepare_many(items, fields_of, rebuild, definitions, invalid, opts)
  local out, defs, err
  for i, item in pairs(items) do
    local fields = fields_of(item)
    if type(fields) == "table" and type(fields.custom_fields) == "table" and is_map(fields.custom_fields) then
      if not out then
        out = {} -- every key kept: the core refuses a records table with holes
        for k, v in pairs(items) do out[k] = v end
        defs, err = definitions(opts) -- once per batch, failure included
      end
      if not defs then
        out[i] = err
      else
        local entries, message = resolve(fields.custom_fields, defs)
        out[i] = entries and rebuild(item, with_entries(fields, entries)) or invalid(message)
      end
    end
  end
  return out or items
end

--- a per-client cache of definitions, per account id;
-- fetch(opts) -> list | nil, err reads them all (it may yield, in a loop)
function custom_fields.cache(fetch)
  local by_account = {}
  local cache = {}

  function cache.get(opts)
    local account = opts and opts.account_id or ""
    local defs = by_account[account]
    if defs then return defs end
    local err
    defs, err = fetch(opts)
    if not defs then return nil, err end
    by_account[account] = defs
    return defs
  end

  --- forgets what was fetched (for one account, or all) and fetches again
  function cache.refresh(opts)
    if opts and opts.account_id then
      by_account[opts.account_id] = nil
    else
      by_account = {}
    end
    return cache.get(opts)
  end

  return cache
end

--- the value of a returned record's custom field, by id or name
function custom_fields.value(record, name_or_id)
  local list = tables(type(record) == "table" and record.custom_fields or nil)
  for _, f in ipairs(list) do
    if f.id == name_or_id then return f.value end
  end
  for _, f in ipairs(list) do
    if f.name == name_or_id then return f.value end
  end
end

--- { [name] = value } for a returned record (by id when a field has no name)
function custom_fields.map(record)
  local out = {}
  for _, f in ipairs(tables(type(record) == "table" and record.custom_fields or nil)) do
    local key = text(f.name) or text(f.id)
    if key ~= nil then out[key] = f.value end
  end
  return out
end

return custom_fields
