# stackone-lua: `make` builds the C module into build/ (no install needed),
# `make demo` and `make test` also install what is missing first.

# LUA picks the interpreter to build and test for: lua5.1, luajit, lua5.2,
# lua5.3, lua5.4 (the default) or lua5.5. `make test` runs the suite under
# all six; `make test LUA=lua5.3` under that one alone. Lua 5.5 is not in
# Debian: `make lua5.5` builds it into build/lua5.5/ (mk/lua55.mk).
LUA ?= lua5.4
LUA_VERSIONS = lua5.1 luajit lua5.2 lua5.3 lua5.4 lua5.5
LUA55 = build/lua5.5/bin/lua5.5
LUA55_INCDIR = build/lua5.5/include
LUA_PKG = $(if $(filter luajit,$(LUA)),luajit,$(LUA))
LUA_INCDIR ?= $(if $(filter lua5.5,$(LUA)),$(LUA55_INCDIR),$(shell \
  pkg-config --cflags-only-I $(LUA_PKG) 2>/dev/null | sed 's/-I//' | grep . || \
  echo /usr/include/$(if $(filter luajit,$(LUA)),luajit-2.1,$(LUA))))
CURL_CFLAGS ?= $(shell curl-config --cflags 2>/dev/null)
CURL_LIBS ?= $(shell curl-config --libs 2>/dev/null || echo -lcurl)
CC ?= cc
OPT ?= -O2 -g
WARN = -std=c99 -Wall -Wextra -pedantic -Wshadow -Wcast-align -Wwrite-strings \
       -Wmissing-prototypes -Wstrict-prototypes -Wundef
ifeq ($(WERROR),1)
WARN += -Werror
endif
CFLAGS_ALL = $(OPT) $(WARN) -fPIC -fvisibility=hidden -I$(LUA_INCDIR) $(CURL_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_ALL = -shared $(LDFLAGS) $(EXTRA_LDFLAGS)

SRC = $(wildcard src/*.c)
HDR = $(wildcard src/*.h)
# Lua 5.4's build is build/, the others' build/<lua>/
BUILD_DIR = $(if $(filter lua5.4,$(LUA)),build,build/$(LUA))
MODULE = $(BUILD_DIR)/stackone/core.so
# the versions `make test` runs: the one asked for, or all
TEST_LUAS = $(if $(filter command line,$(origin LUA)),$(LUA),$(LUA_VERSIONS))

.PHONY: all modules deps npm-deps demo test lint check-warnings clean

all: $(MODULE)

# the module for one Lua, whatever LUA says: module-lua5.4, module-luajit...
module-%:
	@$(MAKE) --no-print-directory LUA=$* all

# the module for every version of TEST_LUAS
modules:
	@for v in $(TEST_LUAS); do $(MAKE) --no-print-directory LUA=$$v WERROR=$(WERROR) all || exit 1; done

$(MODULE): $(SRC) $(HDR) Makefile $(if $(filter lua5.5,$(LUA)),$(LUA55))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $(SRC) $(LDFLAGS_ALL) $(CURL_LIBS)

deps:
	@sh scripts/install-deps.sh

# Prism, pinned in package.json, for the conformance tests
npm-deps: deps
	@[ -x node_modules/.bin/prism ] || npm ci --no-audit --no-fund

# the strict build CI insists on: every warning is an error
check-warnings:
	@for v in $(TEST_LUAS); do \
	  rm -f $$( [ $$v = lua5.4 ] && echo build || echo build/$$v )/stackone/core.so; \
	  $(MAKE) --no-print-directory LUA=$$v WERROR=1 all || exit 1; \
	done

lint:
	luacheck lua spec examples server bench scripts

demo: deps all
	@sh scripts/demo.sh

# regenerates types/stackone.lua and docs/reference.md from the description
# (scripts/describe.lua; `lua5.4 scripts/describe.lua --check` only checks)
.PHONY: describe
describe: module-lua5.4
	lua5.4 scripts/describe.lua

# the suite's own summary ("N passed, N failed") is the last line
test: deps npm-deps
	$(MAKE) --no-print-directory check-warnings
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory bench-smoke
	$(MAKE) --no-print-directory check-memory
	@$(MAKE) --no-print-directory modules
	@$(MAKE) --no-print-directory oom-host # for spec/oom_spec.lua
	@sh scripts/test.sh $(TEST_LUAS)

clean:
	rm -rf build

# further targets (memory checks, fuzzing, benchmarks) live in mk/
-include $(wildcard mk/*.mk)
