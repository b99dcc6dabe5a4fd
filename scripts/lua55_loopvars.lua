-- Run by the Lua 5.5 that scripts/lua55.sh builds: copies the Lua files of
-- Debian's 5.4 trees that 5.5 refuses to compile because they assign to a
-- loop variable (read-only in 5.5: "attempt to assign to const variable
-- 'k'", penlight 1.13's tablex, app, lapp and seq) into OUT, each such
-- loop given a `local k = k` first, the change 5.5's manual prescribes
-- (section 8.1). OUT comes first on the interpreter's path, so that these
-- copies shadow the originals; every other file is used where it is.
--
--   lua5.5 scripts/lua55_loopvars.lua OUT DIR...
local out, dirs = arg[1], { table.unpack(arg, 2) }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function lines_of(text)
  local lines = {}
  if text:sub(-1) ~= "\n" then text = text .. "\n" end
  for line in text:gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  return lines
end

-- the text with the loop of `name` above line `at` opened by `local name = name`
local function shadow(lines, at, name)
  local word = "%f[%w_]" .. name .. "%f[^%w_]"
  for i = at - 1, 1, -1 do
    local head = lines[i]:match("^%s*for%s+(.-)%s+do%s*$")
    if head and (head:match("^(.-)%s+in%s") or head:match("^([%w_]+)%s*=")):find(word) then
      lines[i] = lines[i] .. " local " .. name .. " = " .. name
      return true
    end
  end
  return false
end

-- the fixed text of a file, or nil when it compiles as it is
local function fixed(path)
  local text = read(path)
  local lines, changed = nil, false
  while true do
    local ok, err = load(lines and table.concat(lines, "\n") or text, "=" .. path)
    if ok then return changed and table.concat(lines, "\n") .. "\n" or nil end
    local at, name = err:match(":(%d+): attempt to assign to const variable '([%w_]+)'")
    lines = lines or lines_of(text)
    if not at or not shadow(lines, tonumber(at), name) then
      return nil, err -- something else: left alone, the suite will say
    end
    changed = true
  end
end

local count = 0
for _, dir in ipairs(dirs) do
  local find = assert(io.popen("cd '" .. dir .. "' && find -L . -name '*.lua' | sort"))
  for line in find:lines() do
    local rel = line:gsub("^%./", "")
    local text = fixed(dir .. "/" .. rel)
    if text then
      local dest = out .. "/" .. rel
      assert(os.execute("mkdir -p '" .. dest:match("^(.*)/") .. "'"))
      local f = assert(io.open(dest, "wb"))
      f:write(text)
      f:close()
      count = count + 1
    end
  end
  find:close()
end
io.write(("lua5.5: %d Lua files of %s given a local copy of their loop variables\n"):format(count,
  table.concat(dirs, " ")))
