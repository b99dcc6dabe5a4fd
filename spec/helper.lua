-- Loaded by busted before the specs (see .busted): makes the in-tree
-- build and the Lua sources loadable whatever the working directory.
-- STACKONE_BUILD names the build of another Lua (scripts/test.sh sets it,
-- e.g. build/lua5.1); the default is Lua 5.4's, build/.
local build = os.getenv("STACKONE_BUILD") or "./build"
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
