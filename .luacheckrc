std = "lua54"
max_line_length = 120
files["spec"] = { std = "+busted" }
exclude_files = { "node_modules", "build" }
-- `local _x <close> = ...` guards exist for their __close only
ignore = { "211/_.*" }
-- nginx's Lua module gives its VMs the global ngx; its Lua is LuaJIT (newproxy)
files["lua/stackone/nginx.lua"] = { read_globals = { "ngx", "newproxy" } }
