-- Loaded by busted before the specs (see .busted): makes the in-tree
-- build and the Lua sources loadable whatever the working directory.
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
