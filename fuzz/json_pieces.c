/*
** json_pieces.c: fuzzes the piecewise decode of a large body
** (so_json_decode_pieces) against json.c's decode of the same text
** whole (so_json_decode). The first byte gives the length of the first
** buffer, the second the size of the blocks after it (at most 16 blocks),
** the rest is the body. The fuzz build makes a batch of array elements
** 8 bytes long (SO_PIECES_BATCH, mk/fuzz.mk), so that batches end
** everywhere.
** Invariants: both accept, with identical values (the same types, integer
** or float, nulls, big integers), or both refuse with a message; each
** pushes one value; the blocks are freed (LeakSanitizer).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

typedef struct pieces_case {
  so_buf first;
  so_chunks rest;
  so_buf whole;
  int ok, pushed;
} pieces_case;

/* whether the values at a and b are the same, to the number subtype */
static int identical(lua_State *L, int a, int b) {
  int t;
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  t = lua_type(L, a);
  luaL_checkstack(L, 4, "identical");
  if (t != lua_type(L, b)) return 0;
  switch (t) {
    case LUA_TNUMBER: {
      lua_Number x = lua_tonumber(L, a), y = lua_tonumber(L, b);
      if (lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
      if (lua_isinteger(L, a)) return lua_tointeger(L, a) == lua_tointeger(L, b);
      return x == y || (isnan(x) && isnan(y));
    }
    case LUA_TLIGHTUSERDATA:
      return lua_touserdata(L, a) == lua_touserdata(L, b);
    case LUA_TTABLE:
      return fz_same_keys(L, a, b, identical);
    default:
      return lua_rawequal(L, a, b);
  }
}

static int run_whole(lua_State *L) {
  pieces_case *pc = lua_touserdata(L, 1);
  int entry = lua_gettop(L), state = fz_push_state(L), before = lua_gettop(L);
  fz_guard_begin(L, entry);
  pc->ok = so_json_decode(L, state, &pc->whole);
  fz_guard_end();
  pc->pushed = lua_gettop(L) - before;
  return 1;
}

static int run_pieces(lua_State *L) {
  pieces_case *pc = lua_touserdata(L, 1);
  int entry = lua_gettop(L), state = fz_push_state(L), before = lua_gettop(L);
  fz_guard_begin(L, entry);
  pc->ok = so_json_decode_pieces(L, state, &pc->first, &pc->rest);
  fz_guard_end();
  pc->pushed = lua_gettop(L) - before;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fz_lua();
  pieces_case pc;
  size_t first_len, block, n, at;
  int whole_ok;
  if (size < 3) return 0; /* an empty body is never decoded */
  memset(&pc, 0, sizeof(pc));
  first_len = data[0];
  block = (size_t)data[1] % 64 + 1;
  data += 2;
  size -= 2;
  if (first_len > size) first_len = size;
  n = size - first_len;
  if (block < (n + 15) / 16) block = (n + 15) / 16;
  /* whole: the buffer as the exchange has it, trimmed by the decode */
  if (!so_buf_append(&pc.whole, data, size)) return 0;
  /* pieces: the first buffer, then the blocks */
  if (!so_buf_append(&pc.first, data, first_len)) abort();
  for (at = first_len; at < size; at += block) {
    so_chunk *b = malloc(sizeof(so_chunk));
    if (b == NULL) abort();
    b->next = NULL;
    b->len = size - at < block ? size - at : block;
    memcpy(b->data, data + at, b->len);
    if (pc.rest.tail) pc.rest.tail->next = b;
    else pc.rest.head = b;
    pc.rest.tail = b;
    pc.rest.len += b->len;
  }
  fz_call(L, run_whole, &pc, 1, 0);
  if (pc.pushed != 1) fz_fail("so_json_decode pushed %d values", pc.pushed);
  whole_ok = pc.ok;
  fz_call(L, run_pieces, &pc, 1, 0);
  if (pc.pushed != 1)
    fz_fail("so_json_decode_pieces pushed %d values", pc.pushed);
  if (pc.rest.head || pc.rest.len)
    fz_fail("the blocks were not all given back");
  if (pc.first.len > 1024) fz_fail("the first buffer kept %zu bytes", pc.first.len);
  if (getenv("FUZZ_DEBUG"))
    fprintf(stderr, "whole %s, pieces %s: %s\n", whole_ok ? "ok" : "refused",
            pc.ok ? "ok" : "refused", pc.ok ? "" : lua_tostring(L, -1));
  if (whole_ok != pc.ok)
    fz_fail("the whole text was %s, its pieces %s", whole_ok ? "accepted" : "refused",
            pc.ok ? "accepted" : "refused");
  if (!pc.ok) {
    if (lua_type(L, -1) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING)
      fz_fail("a refusal without a message");
  } else if (!identical(L, -2, -1)) {
    fz_fail("the pieces decoded to another value than the whole text");
  }
  so_buf_free(&pc.whole);
  so_buf_free(&pc.first);
  fz_reset(L);
  return 0;
}
