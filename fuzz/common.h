/*
** common.h: what the fuzz targets share: a reader over the fuzz input,
** one Lua state per process, a builder of Lua values from input bytes,
** and fz_fail, which reports a broken invariant and aborts (libFuzzer
** then saves the input as a crash).
*/
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "stackone.h"

/* the libFuzzer entry point */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* reads the input front to back; past the end every byte is 0 */
typedef struct fz_reader {
  const uint8_t *p;
  size_t n;
} fz_reader;

uint8_t fz_byte(fz_reader *r);
uint64_t fz_u64(fz_reader *r);
/* up to max bytes (fewer at the end of the input); returns the count */
size_t fz_take(fz_reader *r, size_t max, const uint8_t **out);

/* the process's Lua state: standard libraries, the stackone.array
   metatable, and at stack index 1 a module state table with cjson's
   functions (so_json_init). Targets restore the top with fz_reset. */
lua_State *fz_lua(void);
#define FZ_STATE 1
void fz_reset(lua_State *L);
/* pushes the module state table (for functions run under fz_call, whose
   index 1 is their own); returns its index */
int fz_push_state(lua_State *L);
/* whether two tables hold the same keys with values alike by `alike` */
int fz_same_keys(lua_State *L, int a, int b,
                 int (*alike)(lua_State *L, int a, int b));

/* runs f(L) under lua_pcall with ud as its light userdata argument 1;
   a Lua error is a failure unless allow_error; returns the pcall status */
int fz_call(lua_State *L, lua_CFunction f, void *ud, int nresults,
            int allow_error);

/* builds Lua values from the input: booleans, integers, floats, strings
   (raw bytes and words), stackone.null, arrays, objects, empty tables
   marked as arrays, holes, cycles and functions */
typedef struct fz_builder {
  lua_State *L;
  fz_reader *r;
  const char *const *words; /* keys and strings to favour, NULL ended */
  int max_depth;
  int chain[256]; /* stack indices of the tables being filled */
  int nchain;
} fz_builder;

void fz_push_value(fz_builder *b, int depth);
void fz_push_object(fz_builder *b, int depth);

/* luastack.c: between these two, the code under test may use the 20
   slots (LUA_MINSTACK) above entry_top, the stack top when the C function
   that calls it was entered, and more only after lua_checkstack; past
   that is a failure. fz_guard_end returns the highest top seen. */
void fz_guard_begin(lua_State *L, int entry_top);
int fz_guard_end(void);

/* reports a broken invariant and aborts */
void fz_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((noreturn, format(printf, 1, 2)))
#endif
    ;

/* whether s[0..len) holds c */
int fz_has(const char *s, size_t len, char c);

#endif
