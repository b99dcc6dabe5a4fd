-- Identifiers for created records: UUID-v4-shaped ids that are unique for
-- the life of the process (the last group embeds a counter), and
-- provider-style numeric remote ids.
local ids = {}

local format, random = string.format, math.random

local counter = 0

function ids.uuid()
  counter = counter + 1
  -- (Lua 5.1's math.random takes C ints: 32 random bits come as two halves)
  return format("%04x%04x-%04x-4%03x-%x%03x-%04x%08x",
    random(0, 0xffff), random(0, 0xffff), random(0, 0xffff), random(0, 0xfff),
    random(8, 11), random(0, 0xfff), random(0, 0xffff), counter % 0x100000000)
end

local remote_counter = 51000000

function ids.remote_id()
  remote_counter = remote_counter + 1
  return tostring(remote_counter)
end

return ids
