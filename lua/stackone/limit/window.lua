--- The shared budget's rule, for the stores that keep the window in Lua
-- (stackone.limit.host, stackone.limit.ngx); stackone.limit.redis runs
-- the same rule as a script inside Redis. The window is one place per
-- request not yet `per` seconds old: its id and when it frees. A place
-- taken frees at now + per + hold (its request not known to be sent); told
-- sent `ago` seconds ago, at now - ago + per; told unsent, at once. So
-- every request sent holds a place until `per` after its send, and no
-- more than `requests` places are ever held: no window of `per` seconds
-- holds more than `requests` sends.
local window = {}

-- a place that frees later than this from now is from a clock that went
-- back (clients' holds differ with their timeouts: only a day is wrong)
local FURTHEST = 86400

--- window.update(state, now, change) -> granted, wait.
-- state: { places = { [id] = frees_at }, pause = until or nil }, changed
-- in place; change: see docs/limits.md (the store contract)
function window.update(state, now, change)
  local places = state.places
  for id, ago in pairs(change.sent) do
    if places[id] then places[id] = now - ago + change.per end
  end
  for _, id in ipairs(change.unsent) do places[id] = nil end
  if change.pause and now + change.pause > (state.pause or 0) then state.pause = now + change.pause end
  if state.pause and state.pause <= now then state.pause = nil end
  local held, first = 0, nil
  local furthest = now + change.per + math.max(change.hold, FURTHEST)
  for id, frees in pairs(places) do
    if frees <= now or frees > furthest then
      places[id] = nil
    else
      held = held + 1
      if not first or frees < first then first = frees end
    end
  end
  local want = #change.take
  if state.pause then return 0, state.pause - now end
  local granted = math.max(0, math.min(want, change.requests - held))
  for i = 1, granted do places[change.take[i]] = now + change.per + change.hold end
  if granted == want then return granted, 0 end
  local wait = (first or now + change.per + change.hold) - now
  -- the first to free is a place whose request may not be sent yet: it
  -- may be given back or told sent soon, so ask again shortly
  if wait > change.per then wait = math.max(change.per / change.requests, 0.01) end
  return granted, wait
end

--- the state as text: a line a place ("id frees_at"), and "pause until"
function window.encode(state)
  local lines = {}
  if state.pause then lines[1] = ("pause %.6f\n"):format(state.pause) end
  for id, frees in pairs(state.places) do lines[#lines + 1] = ("%s %.6f\n"):format(id, frees) end
  return table.concat(lines)
end

--- the state from window.encode's text (nil or "": empty)
function window.decode(text)
  local state = { places = {} }
  for what, value in (text or ""):gmatch("(%S+) (%S+)\n") do
    if what == "pause" then state.pause = tonumber(value)
    else state.places[what] = tonumber(value) end
  end
  return state
end

return window
