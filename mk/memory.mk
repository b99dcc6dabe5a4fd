# mk/memory.mk: memory checks and the embedding example (included by the
# main Makefile). Each check prints a summary line and fails on any error;
# logs go to build/memory/.
#
#   make check-memory    the three checks below, one after the other
#   make check-valgrind  the busted suite under valgrind memcheck
#   make check-asan      the busted suite against an ASan+UBSan build of
#                        stackone.core (build/asan/stackone/core.so)
#   make check-embed     examples/embed/host and poll_host under valgrind
#   make embed           builds examples/embed/host and poll_host into
#                        build/embed/
#
# SAN_CC picks the sanitizer compiler (gcc or clang, default $(CC));
# MEMCHECK_TIMEOUT bounds each run in seconds (default 600).

SAN_CC ?= $(CC)
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
# clang links a shared module against its ASan runtime only when asked;
# -z nodelete keeps the module mapped after lua_close has dlclose()d it, so
# that LeakSanitizer's exit-time reports can name its functions
SAN_LINK = $(if $(findstring clang,$(shell $(SAN_CC) --version 2>/dev/null | head -n 1)),-shared-libasan)
ASAN_MODULE = build/asan/stackone/core.so
# names the compiler of the ASan build, so that changing SAN_CC rebuilds it
ASAN_STAMP = build/asan/built-with-$(subst /,_,$(SAN_CC))

LUA_LIBS ?= $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
EMBED_HOST = build/embed/host
EMBED_POLL_HOST = build/embed/poll_host

.PHONY: check-memory check-valgrind check-asan check-embed embed asan

asan: $(ASAN_MODULE)

$(ASAN_STAMP):
	@mkdir -p $(dir $@)
	@rm -f build/asan/built-with-*
	@touch $@

$(ASAN_MODULE): $(SRC) $(HDR) Makefile mk/memory.mk $(ASAN_STAMP)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) $(WARN) -fPIC -fvisibility=hidden -I$(LUA_INCDIR) \
	  $(CURL_CFLAGS) -o $@ $(SRC) -shared -Wl,-z,nodelete $(SAN_LINK) $(CURL_LIBS)

embed: $(EMBED_HOST) $(EMBED_POLL_HOST)

$(EMBED_HOST): examples/embed/host.c mk/memory.mk
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -I$(LUA_INCDIR) -o $@ examples/embed/host.c $(LUA_LIBS)

$(EMBED_POLL_HOST): examples/embed/poll_host.c mk/memory.mk
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -I$(LUA_INCDIR) -o $@ examples/embed/poll_host.c $(LUA_LIBS)

check-memory: $(MODULE) $(ASAN_MODULE) $(EMBED_HOST) $(EMBED_POLL_HOST)
	@SAN_CC="$(SAN_CC)" sh scripts/check-memory.sh valgrind asan embed

check-valgrind: $(MODULE)
	@sh scripts/check-memory.sh valgrind

check-asan: $(ASAN_MODULE)
	@SAN_CC="$(SAN_CC)" sh scripts/check-memory.sh asan

check-embed: $(MODULE) $(EMBED_HOST) $(EMBED_POLL_HOST)
	@sh scripts/check-memory.sh embed
