/*
** headers.c: fuzzes the response header block parsers, so_push_headers
** (transport.c) and so_find_header (retry.c), on arbitrary bytes as the
** header block libcurl collected.
** Invariants: the table has lower-case, non-empty names without ':' or
** line breaks and values without line breaks; so_find_header agrees with
** the table (its value is the first of the joined ones).
*/
#include <math.h>
#include <string.h>

#include "common.h"

static int push_headers(lua_State *L) {
  fz_guard_begin(L, lua_gettop(L));
  so_push_headers(L, (const so_buf *)lua_touserdata(L, 1));
  fz_guard_end();
  return 1;
}

static void check_table(lua_State *L, int t) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    size_t klen, vlen, i;
    const char *k, *v;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      fz_fail("headers table holds a %s = %s", luaL_typename(L, -2),
              luaL_typename(L, -1));
    k = lua_tolstring(L, -2, &klen);
    v = lua_tolstring(L, -1, &vlen);
    if (klen == 0 || klen >= 256) fz_fail("header name of %zu bytes", klen);
    for (i = 0; i < klen; i++)
      if ((k[i] >= 'A' && k[i] <= 'Z') || k[i] == ':' || k[i] == '\n')
        fz_fail("header name '%s' has byte 0x%02x", k, (unsigned char)k[i]);
    if (fz_has(v, vlen, '\n')) fz_fail("header '%s' value has a LF", k);
    lua_pop(L, 1);
  }
}

static const char *const names[] = {
  "retry-after", "content-type", "x-request-id", "content-length", "ratelimit",
  "a", NULL
};

static void check_find(lua_State *L, int t, const so_buf *head) {
  size_t i;
  for (i = 0; names[i]; i++) {
    size_t len = 0, tlen;
    const char *v = so_find_header(head, names[i], &len), *tv;
    lua_getfield(L, t, names[i]);
    tv = lua_tolstring(L, -1, &tlen);
    if (v == NULL) {
      if (tv) fz_fail("so_find_header misses '%s' that the table has",
                      names[i]);
    } else {
      if (v < head->data || v + len > head->data + head->len)
        fz_fail("so_find_header('%s') points outside the block", names[i]);
      if (tv == NULL)
        fz_fail("so_find_header finds '%s' that the table lacks", names[i]);
      if (tlen < len || memcmp(tv, v, len) != 0 ||
          (tlen > len && (tlen < len + 2 || memcmp(tv + len, ", ", 2) != 0)))
        fz_fail("so_find_header('%s') and the table disagree", names[i]);
      if (strcmp(names[i], "retry-after") == 0) {
        double s = -1;
        if (so_parse_retry_after(v, len, (time_t)1445412480, &s) &&
            (!isfinite(s) || s < 0))
          fz_fail("Retry-After gave %g seconds", s);
      }
    }
    lua_pop(L, 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fz_lua();
  so_buf head;
  /* the block exactly as large as the input, so that ASan sees any
     read past its end */
  head.data = (char *)(uintptr_t)data;
  if (size == 0) head.data = NULL; /* a block nothing was appended to */
  head.len = head.cap = size;
  head.oom = 0;
  fz_call(L, push_headers, &head, 1, 0);
  if (lua_type(L, -1) != LUA_TTABLE) fz_fail("so_push_headers gave no table");
  check_table(L, lua_gettop(L));
  check_find(L, lua_gettop(L), &head);
  fz_reset(L);
  return 0;
}
