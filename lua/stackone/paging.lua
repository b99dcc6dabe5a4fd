--- Iterating every record of a paged list, following StackOne's `next`
-- cursor. Only the current page is held in memory.
local public = require("stackone.public")

local paging = {}

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

--- The pages of one list call, in order: the one loop over pages.
-- list = { start = function(query, opts) -> job | nil, err,
--          run = function(job) -> page | nil, err,
--          invalid = function(message) -> error object }.
-- Returns next_page() -> page, or nil at the end, or nil, err. The
-- first job may be given already started (job, err). A page that gives
-- a cursor seen before (the query's own, or any page's) is returned, and
-- the walk then ends with an error: a cursor chain that loops would never
-- end, and a page read twice (a request that lost its query string reads
-- the first page again) would hand out its records twice.
function paging.walk(list, query, opts, first, first_err)
  local q, given, stop = query, first ~= nil or first_err ~= nil, nil
  -- cursor -> the page that gave it (0: the query's own)
  local seen, pages = {}, 0
  if q.next ~= nil then seen[q.next] = 0 end
  local function repeated(at)
    local err
    if at == pages - 1 then
      err = list.invalid("the server gave the cursor of the previous page again: stopped")
    elseif at == 0 then
      err = list.invalid(("page %d gave the cursor the walk started from: stopped"):format(pages))
    else
      err = list.invalid(("page %d gave the cursor that page %d gave: a page would be read again, "
        .. "stopped"):format(pages, at))
    end
    err.first_page = at
    return err
  end
  return function()
    if stop ~= nil then
      local e = stop or nil
      stop = false
      return nil, e
    end
    local job, err
    if given then
      job, err, given, first, first_err = first, first_err, false, nil, nil
    else
      job, err = list.start(q, opts)
    end
    if not job then
      stop = false
      return nil, err
    end
    local page, perr = list.run(job)
    if not page then
      stop = false
      return nil, perr
    end
    pages = pages + 1
    if page.next == nil then
      stop = false
    elseif seen[page.next] then
      stop = repeated(seen[page.next])
    else
      seen[page.next] = pages
    end
    q.next = page.next -- page_size and the rest stay the same on every page
    return page
  end
end

-- the page size a numbered list answers when the query names none (the
-- spec's default)
local DEFAULT_PAGE_SIZE = 25

--- a page of a list numbered by `page` (a bare array on the wire) gets
-- `next`, the number of the next page, while it comes back full
function paging.number(query, page, ...)
  if not page then return page, ... end
  query = type(query) == "table" and query or {}
  local size = tonumber(query.page_size) or DEFAULT_PAGE_SIZE
  if #page.data >= size then page.next = (tonumber(query.page) or 1) + 1 end
  return page, ...
end

--- every record of a list call: list | nil, err
function paging.all(list, query, opts)
  local out, next_page = {}, paging.walk(list, copy(query), opts)
  while true do
    local page, err = next_page()
    if not page then
      if err then return nil, err end
      return out
    end
    for _, record in ipairs(page.data) do out[#out + 1] = record end
  end
end

--- the public `each` of a list operation:
-- each(query, opts) -> a generic-for iterator over the records. Its
-- arguments are checked on the line that calls it; a failed page raises
-- its error object. list: as for paging.walk, with `name` (its public
-- name), `group` (for group:each{...}) and `check()` (a usage error
-- when the call cannot be made here).
function paging.each(list)
  local name, group, start = list.name, list.group, list.start
  return function(query, opts, ...)
    if rawequal(query, group) then query, opts = opts, ... end -- group:each{...}
    if type(opts) == "function" then -- a generic for's second call: each was not called
      public.raise(name, "it must be called: for record in " .. name .. "{ ... } do")
    end
    local why = list.check()
    if why then public.fail(name, why) end
    local q = query
    if q == nil then q = {} elseif type(q) == "table" then q = copy(q) end
    local ok, job, err = pcall(start, q, opts)
    if not ok then public.fail(name, job) end
    local next_page = paging.walk(list, q, opts, job, err)
    local data, i = nil, 0
    return function()
      while true do
        if data and i < #data then
          i = i + 1
          return data[i], i
        end
        local page, perr = next_page()
        if not page then
          if perr then error(perr, 0) end
          return nil
        end
        data, i = page.data, 0
      end
    end
  end
end

return paging
