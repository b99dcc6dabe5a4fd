--- Iterating every record of a paged list, following StackOne's `next`
-- cursor. Only the current page is held in memory.
local paging = {}

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

--- each(list) -> function(query, opts) returning a generic-for iterator.
-- A failed page raises its error object.
function paging.each(list, name)
  return function(query, opts)
    if query ~= nil and type(query) ~= "table" then
      error("bad argument #1 to '" .. name .. "' (table of query parameters expected, got "
        .. type(query) .. ")", 2)
    end
    local q = copy(query) -- page_size and the rest stay the same on every page
    local data, i, more = nil, 0, true
    return function()
      while true do
        if data and i < #data then
          i = i + 1
          return data[i], i
        end
        if not more then return nil end
        local page, err = list(q, opts)
        if not page then error(err, 0) end
        data, i = page.data, 0
        -- a short page with a cursor is not the end; no cursor is (the
        -- core gives no `next` for a null or empty one)
        more = page.next ~= nil
        q.next = page.next
      end
    end
  end
end

return paging
