# Benchmarks (bench/README.md). Not part of `make test`; `make test` runs
# only the short `make bench-smoke`, which proves every case still runs.
#   make bench          the full run (a few minutes): table + build/bench/results.txt
#   make bench-smoke    every case with tiny sizes, no ratios asserted
#   make bench-node     installs the pinned TypeScript SDK into bench/node_modules
# BENCH_ARGS passes settings to bench/run.lua, e.g. BENCH_ARGS="create_n=500".

BENCH_OUT = build/bench
BENCH_BINS = $(BENCH_OUT)/raw_curl $(BENCH_OUT)/rusage $(BENCH_OUT)/multi_h2 \
  $(BENCH_OUT)/lua5.4/floor.so $(BENCH_OUT)/luajit/floor.so
BENCH_ARGS ?=

.PHONY: bench bench-smoke bench-node bench-tools

bench-tools: $(BENCH_BINS)

# the floor: plain C on libcurl, -O2
$(BENCH_OUT)/raw_curl: bench/raw_curl.c bench/common.h
	@mkdir -p $(dir $@)
	$(CC) -O2 $(WARN) $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

# the fair floor: the least Lua binding of libcurl (bench/floor.c), one
# build per measured Lua; lua-cjson does its JSON (bench/floor_create.lua)
$(BENCH_OUT)/%/floor.so: bench/floor.c bench/common.h
	@mkdir -p $(dir $@)
	$(CC) -O2 $(WARN) -fPIC -shared \
	  -I$(shell pkg-config --cflags-only-I $(if $(filter luajit,$*),luajit,$*) 2>/dev/null | sed 's/-I//' | grep . || \
	    echo /usr/include/$(if $(filter luajit,$*),luajit-2.1,$*)) \
	  $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

# the floor for case 8: libcurl's multi alone, HTTP/2 over TLS, -O2
$(BENCH_OUT)/multi_h2: bench/multi_h2.c bench/common.h
	@mkdir -p $(dir $@)
	$(CC) -O2 $(WARN) $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

# runs a command and reports its CPU time, peak RSS and wall time (wait4)
$(BENCH_OUT)/rusage: bench/rusage.c
	@mkdir -p $(dir $@)
	$(CC) -O2 $(WARN) -o $@ $<

# npm ci only when the lock file changed; without npm the TypeScript rows
# print SKIP
bench/node_modules/.package-lock.json: bench/package.json bench/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd bench && npm ci --no-audit --no-fund --ignore-scripts; \
	else \
	  echo "bench: npm not found, the TypeScript SDK rows will be skipped" >&2; \
	fi

bench-node: bench/node_modules/.package-lock.json

# the benchmark measures Lua 5.4's build (and LuaJIT's, case 1)
bench: deps module-lua5.4 module-luajit bench-tools
	-@$(MAKE) --no-print-directory bench-node
	lua5.4 bench/run.lua $(BENCH_ARGS)

bench-smoke: module-lua5.4 module-luajit bench-tools
	lua5.4 bench/run.lua --smoke $(BENCH_ARGS)
