# mk/fuzz.mk: libFuzzer targets for the C functions that read outside
# input (fuzz/README.md). Included by the main Makefile.
#
#   make fuzz-build   builds build/fuzz/<target> for every target
#   make fuzz-smoke   each target for FUZZ_RUNS runs (seed 1) on a copy of
#                     its corpus; part of `make test`
#   make fuzz         each target for FUZZ_TIME seconds; what it finds
#                     stays in build/fuzz/work/<target>
#   make fuzz-merge   adds to fuzz/corpus what `make fuzz` found that
#                     covers something new (minimized)
#
# Every run fails on a crash, a sanitizer report, a leak or a broken
# invariant; the input is saved as build/fuzz/artifacts/<target>-crash-*.
# FUZZ_TARGETS narrows the set, e.g. `make fuzz FUZZ_TARGETS=url`.
# FUZZ_CC must be clang (libFuzzer comes with it: Debian's clang and
# libclang-rt-14-dev). The main Makefile's `test` runs fuzz-smoke.

FUZZ_CC ?= clang
FUZZ_TARGETS ?= headers retry_after url json json_pieces
FUZZ_RUNS ?= 20000
FUZZ_TIME ?= 60
FUZZ_OUT = build/fuzz
FUZZ_LIBS = $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4) \
            $(CURL_LIBS) -lm -ldl
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all \
           -fno-omit-frame-pointer
# the targets link Lua 5.4 (fuzz/luastack.c wraps its API), whatever LUA says
FUZZ_LUA_INCDIR ?= $(shell pkg-config --cflags-only-I lua5.4 2>/dev/null | sed 's/-I//' | grep . || \
  echo /usr/include/lua5.4)
FUZZ_CFLAGS = -g -O1 $(FUZZ_SAN) $(WARN) -I$(FUZZ_LUA_INCDIR) $(CURL_CFLAGS) -Isrc
# the sources whose functions the targets call, and what those call
FUZZ_SRC = buffer luax ops retry url transport ca_bundle json fits bigint errors limiter \
           statuses chunks json_pieces
FUZZ_OBJ = $(FUZZ_SRC:%=$(FUZZ_OUT)/obj/%.o) $(FUZZ_OUT)/obj/common.o \
           $(FUZZ_OUT)/obj/luastack.o
FUZZ_BINS = $(FUZZ_TARGETS:%=$(FUZZ_OUT)/%)

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-merge

fuzz-build: $(FUZZ_BINS)

# says what to install when clang or its libFuzzer runtime is missing
$(FUZZ_OUT)/toolchain.ok: mk/fuzz.mk
	@mkdir -p $(dir $@)
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > $(FUZZ_OUT)/toolchain.c
	@$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $(FUZZ_OUT)/toolchain \
	  $(FUZZ_OUT)/toolchain.c 2> $(FUZZ_OUT)/toolchain.log || { \
	  echo "fuzz: '$(FUZZ_CC) -fsanitize=fuzzer,address,undefined' does not link:" >&2; \
	  tail -n 3 $(FUZZ_OUT)/toolchain.log >&2; \
	  echo "fuzz: install clang with libFuzzer (Debian: clang libclang-rt-14-dev)" >&2; \
	  exit 1; }
	@touch $@

$(FUZZ_OUT)/obj/%.o: src/%.c $(HDR) mk/fuzz.mk $(FUZZ_OUT)/toolchain.ok
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# batches of array elements end everywhere (fuzz/json_pieces.c)
$(FUZZ_OUT)/obj/json_pieces.o: FUZZ_CFLAGS += -DSO_PIECES_BATCH=8

$(FUZZ_OUT)/obj/common.o $(FUZZ_OUT)/obj/luastack.o: $(FUZZ_OUT)/obj/%.o: \
  fuzz/%.c fuzz/common.h $(HDR) mk/fuzz.mk $(FUZZ_OUT)/toolchain.ok
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BINS): $(FUZZ_OUT)/%: fuzz/%.c fuzz/common.h $(FUZZ_OBJ) $(HDR) mk/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) \
	  $(FUZZ_LIBS)

fuzz-smoke: $(FUZZ_BINS)
	@sh fuzz/run.sh smoke $(FUZZ_RUNS) $(FUZZ_TARGETS)

fuzz: $(FUZZ_BINS)
	@sh fuzz/run.sh long $(FUZZ_TIME) $(FUZZ_TARGETS)

fuzz-merge: $(FUZZ_BINS)
	@sh fuzz/run.sh merge 0 $(FUZZ_TARGETS)

