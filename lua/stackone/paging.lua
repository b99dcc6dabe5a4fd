--- Iterating every record of a paged list, following StackOne's `next`
-- cursor. Only the current page is held in memory.
local paging = {}

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

--- each(list, name, invalid) -> function(query, opts) returning a
-- generic-for iterator. A failed page raises its error object; a page
-- repeating the last cursor raises invalid(message), an error object.
function paging.each(list, name, invalid, group)
  return function(query, opts, ...)
    if rawequal(query, group) then query, opts = opts, ... end -- group:each{...}
    if type(opts) == "function" then -- a generic for's second call: each was not called
      error(name .. " must be called: for record in " .. name .. "{ ... } do", 2)
    end
    if query ~= nil and type(query) ~= "table" then
      error("bad argument #1 to '" .. name .. "' (table of query parameters expected, got "
        .. type(query) .. ")", 2)
    end
    local q = copy(query) -- page_size and the rest stay the same on every page
    local data, i, more, repeated = nil, 0, true, false
    return function()
      while true do
        if data and i < #data then
          i = i + 1
          return data[i], i
        end
        if repeated then
          error(invalid("the server gave the cursor of the previous page again: stopped"), 0)
        end
        if not more then return nil end
        local page, err = list(q, opts)
        if not page then error(err, 0) end
        -- a server that gives the same cursor again would loop forever:
        -- this page is read, then the loop stops with an error
        repeated = page.next ~= nil and page.next == q.next
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
