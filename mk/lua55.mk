# mk/lua55.mk: Lua 5.5, which Debian does not have, built for the tests
# into build/lua5.5/ by scripts/lua55.sh from the shared toolchains (the
# Lua 5.5.0 and lua-cjson sources) and Debian's source packages of
# LuaFileSystem, lua-term and LuaSocket; busted and the rest of the
# suite's Lua code come from Debian's 5.4 trees (see the script).
#
#   make lua5.5             the interpreter build/lua5.5/bin/lua5.5, its
#                           headers and the C modules the suite loads
#   make LUA=lua5.5         stackone.core for it, build/lua5.5/stackone/
#   make test LUA=lua5.5    the suite under it alone

# (LUA55, the interpreter, and LUA55_INCDIR are set in the Makefile)
.PHONY: lua5.5

lua5.5: $(LUA55)

$(LUA55): scripts/lua55.sh scripts/lua55_loopvars.lua spec/support/lua55_system.lua
	@sh scripts/lua55.sh
	@touch $@
