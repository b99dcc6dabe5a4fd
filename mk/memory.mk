# mk/memory.mk: memory checks and the embedding example (included by the
# main Makefile). Each check prints a summary line and fails on any error;
# logs go to build/memory/.
#
#   make check-memory    the three checks below, one after the other
#   make check-valgrind  the busted suite under valgrind memcheck, under
#                        each Lua of MEMCHECK_LUAS
#   make check-asan      the busted suite against an ASan+UBSan build of
#                        stackone.core, under each Lua of MEMCHECK_LUAS
#   make check-embed     examples/embed/host and poll_host under valgrind
#   make embed           builds examples/embed/host and poll_host into
#                        build/embed/
#   make asan            the ASan+UBSan build for LUA: build/asan/ for 5.4,
#                        build/asan-<lua>/ for the others (make asan
#                        LUA=luajit)
#
# MEMCHECK_LUAS picks the interpreters the suite runs under in both checks:
# lua5.4 and luajit by default (each check takes 3 to 6 minutes a Lua, so
# `make test` stays within its time); with LUA given (make test LUA=luajit,
# or LUA=lua5.5, the one `make lua5.5` builds), that one alone, or lua5.4
# for the other versions (the slow checks are not repeated on every
# version); all three: make check-memory MEMCHECK_LUAS="lua5.4 luajit lua5.5".
# The embedding host is Lua 5.4's whatever LUA says. SAN_CC picks the
# sanitizer compiler (gcc or clang, default $(CC)); MEMCHECK_TIMEOUT
# bounds each run in seconds (default 600).

SAN_CC ?= $(CC)
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
# clang links a shared module against its ASan runtime only when asked;
# -z nodelete keeps the module mapped after lua_close has dlclose()d it, so
# that LeakSanitizer's exit-time reports can name its functions
SAN_LINK = $(if $(findstring clang,$(shell $(SAN_CC) --version 2>/dev/null | head -n 1)),-shared-libasan)
MEMCHECK_LUAS ?= $(if $(filter command line,$(origin LUA)),$(or $(filter lua5.4 luajit lua5.5,$(LUA)),lua5.4),lua5.4 luajit)
ASAN_DIR = $(if $(filter lua5.4,$(LUA)),build/asan,build/asan-$(LUA))
ASAN_MODULE = $(ASAN_DIR)/stackone/core.so
# names the compiler of the ASan build, so that changing SAN_CC rebuilds it
ASAN_STAMP = $(ASAN_DIR)/built-with-$(subst /,_,$(SAN_CC))

LUA_LIBS ?= $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
EMBED_INCDIR ?= $(shell pkg-config --cflags-only-I lua5.4 2>/dev/null | sed 's/-I//' | grep . || \
  echo /usr/include/lua5.4)
EMBED_HOST = build/embed/host
EMBED_POLL_HOST = build/embed/poll_host

.PHONY: check-memory check-valgrind check-asan check-embed embed asan \
        memcheck-modules memcheck-asan-modules

asan: $(ASAN_MODULE)

$(ASAN_STAMP):
	@mkdir -p $(dir $@)
	@rm -f $(ASAN_DIR)/built-with-*
	@touch $@

$(ASAN_MODULE): $(SRC) $(HDR) Makefile mk/memory.mk $(ASAN_STAMP) $(if $(filter lua5.5,$(LUA)),$(LUA55))
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) $(WARN) -fPIC -fvisibility=hidden -I$(LUA_INCDIR) \
	  $(CURL_CFLAGS) -o $@ $(SRC) -shared -Wl,-z,nodelete $(SAN_LINK) $(CURL_LIBS)

embed: $(EMBED_HOST) $(EMBED_POLL_HOST)

$(EMBED_HOST): examples/embed/host.c examples/embed/embed.h mk/memory.mk
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -I$(EMBED_INCDIR) -o $@ examples/embed/host.c $(LUA_LIBS)

$(EMBED_POLL_HOST): examples/embed/poll_host.c examples/embed/embed.h mk/memory.mk
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -I$(EMBED_INCDIR) -o $@ examples/embed/poll_host.c $(LUA_LIBS)

# the module and the ASan build for each Lua of MEMCHECK_LUAS
memcheck-modules:
	@for v in $(MEMCHECK_LUAS); do $(MAKE) --no-print-directory LUA=$$v all || exit 1; done

memcheck-asan-modules:
	@for v in $(MEMCHECK_LUAS); do $(MAKE) --no-print-directory LUA=$$v asan || exit 1; done

check-memory: memcheck-modules memcheck-asan-modules module-lua5.4 $(EMBED_HOST) $(EMBED_POLL_HOST)
	@SAN_CC="$(SAN_CC)" MEMCHECK_LUAS="$(MEMCHECK_LUAS)" sh scripts/check-memory.sh valgrind asan embed

check-valgrind: memcheck-modules
	@MEMCHECK_LUAS="$(MEMCHECK_LUAS)" sh scripts/check-memory.sh valgrind

check-asan: memcheck-asan-modules
	@SAN_CC="$(SAN_CC)" MEMCHECK_LUAS="$(MEMCHECK_LUAS)" sh scripts/check-memory.sh asan

check-embed: module-lua5.4 $(EMBED_HOST) $(EMBED_POLL_HOST)
	@sh scripts/check-memory.sh embed
