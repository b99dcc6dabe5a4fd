# stackone-lua: `make` builds the C module into build/ (no install needed),
# `make demo` and `make test` also install what is missing first.

LUA ?= lua5.4
LUA_INCDIR ?= $(shell pkg-config --cflags-only-I lua5.4 2>/dev/null | sed 's/-I//' || echo /usr/include/lua5.4)
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
MODULE = build/stackone/core.so

.PHONY: all deps npm-deps demo test lint check-warnings clean

all: $(MODULE)

$(MODULE): $(SRC) $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $(SRC) $(LDFLAGS_ALL) $(CURL_LIBS)

deps:
	@sh scripts/install-deps.sh

# Prism, pinned in package.json, for the conformance tests
npm-deps: deps
	@[ -x node_modules/.bin/prism ] || npm ci --no-audit --no-fund

# the strict build CI insists on: every warning is an error
check-warnings:
	@rm -f $(MODULE)
	$(MAKE) --no-print-directory WERROR=1 $(MODULE)

lint:
	luacheck lua spec examples server bench

demo: deps all
	@sh scripts/demo.sh

# the suite's own summary ("N passed, N failed") is the last line
test: deps npm-deps
	$(MAKE) --no-print-directory check-warnings
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory bench-smoke
	$(MAKE) --no-print-directory check-memory
	@sh scripts/test.sh

clean:
	rm -rf build

# further targets (memory checks, fuzzing, benchmarks) live in mk/
-include $(wildcard mk/*.mk)
