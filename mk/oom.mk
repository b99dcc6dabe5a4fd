# mk/oom.mk: out-of-memory checks (included by the main Makefile).
#
#   make oom-host        builds build/oom/oom_host (spec/support/oom_host.c,
#                        ASan+UBSan, Lua 5.4) and the ASan build of
#                        stackone.core it loads (build/asan/)
#   make check-oom       spec/oom_spec.lua: a client made and closed, a
#                        create, a get, a 3-page each and a bulk of 5, each
#                        with allocation N (of Lua's or libcurl's) failing,
#                        for a sample of N (see the spec); part of `make
#                        test`, through the Lua 5.4 suite
#   make check-oom-full  the same for every N
#
# A run fails on a crash, a sanitizer report (a leak included), a result
# that is neither a value nor an error, memory left after lua_close, `each`
# reading a record twice, or a contact POSTed twice (the server's journal).

OOM_HOST = build/oom/oom_host

.PHONY: oom-host check-oom check-oom-full

# (built with SAN_CC; after changing it, rm build/oom/oom_host)
$(OOM_HOST): spec/support/oom_host.c examples/embed/embed.h mk/oom.mk
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) $(WARN) -Iexamples/embed -I$(EMBED_INCDIR) $(CURL_CFLAGS) \
	  -o $@ spec/support/oom_host.c $(LUA_LIBS) $(CURL_LIBS)

oom-host: $(OOM_HOST)
	@$(MAKE) --no-print-directory LUA=lua5.4 asan

check-oom: oom-host module-lua5.4
	busted --lua=lua5.4 spec/oom_spec.lua

check-oom-full: oom-host module-lua5.4
	STACKONE_OOM_FULL=1 busted --lua=lua5.4 spec/oom_spec.lua
