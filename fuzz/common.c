/*
** common.c: the helpers of common.h.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "common.h"

uint8_t fz_byte(fz_reader *r) {
  uint8_t c;
  if (r->n == 0) return 0;
  c = *r->p++;
  r->n--;
  return c;
}

uint64_t fz_u64(fz_reader *r) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = (v << 8) | fz_byte(r);
  return v;
}

size_t fz_take(fz_reader *r, size_t max, const uint8_t **out) {
  size_t n = max < r->n ? max : r->n;
  *out = r->p;
  r->p += n;
  r->n -= n;
  return n;
}

void fz_fail(const char *fmt, ...) {
  va_list ap;
  fputs("\n==fuzz== invariant broken: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n", stderr);
  fflush(stderr);
  abort();
}

int fz_has(const char *s, size_t len, char c) {
  return len > 0 && memchr(s, c, len) != NULL;
}

/* kept for the whole process: reachable, so never reported as a leak */
static lua_State *fz_L;

lua_State *fz_lua(void) {
  if (fz_L == NULL) {
    lua_State *L = luaL_newstate();
    if (L == NULL) fz_fail("luaL_newstate failed");
    luaL_openlibs(L);
    luaL_newmetatable(L, SO_ARRAY_MT);
    lua_pop(L, 1);
    lua_newtable(L); /* FZ_STATE */
    so_json_init(L, FZ_STATE);
    lua_pushvalue(L, FZ_STATE);
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.state");
    fz_L = L;
  }
  return fz_L;
}

int fz_push_state(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.state");
  return lua_gettop(L);
}

/* whether the tables at a and b have the same keys, each key's two
   values alike by `alike` (the caller's own rule for leaves, which comes
   back here for tables) */
int fz_same_keys(lua_State *L, int a, int b,
                 int (*alike)(lua_State *L, int a, int b)) {
  lua_Integer na = 0, nb = 0;
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  luaL_checkstack(L, 4, "fz_same_keys");
  lua_pushnil(L);
  while (lua_next(L, b)) {
    nb++;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, a)) {
    int ok;
    na++;
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    ok = alike(L, lua_gettop(L) - 1, lua_gettop(L));
    lua_pop(L, 2);
    if (!ok) {
      lua_pop(L, 1);
      return 0;
    }
  }
  return na == nb;
}

void fz_reset(lua_State *L) {
  lua_settop(L, FZ_STATE);
}

int fz_call(lua_State *L, lua_CFunction f, void *ud, int nresults,
            int allow_error) {
  int status;
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, ud);
  status = lua_pcall(L, 1, nresults, 0);
  if (status != LUA_OK && !allow_error)
    fz_fail("Lua error: %s", lua_tostring(L, -1));
  return status;
}

/* ---- the value builder ---- */

static size_t word_count(const char *const *words) {
  size_t n = 0;
  while (words && words[n]) n++;
  return n;
}

static void push_word(fz_builder *b) {
  size_t n = word_count(b->words);
  uint8_t i = fz_byte(b->r);
  if (n == 0) lua_pushliteral(b->L, "");
  else lua_pushstring(b->L, b->words[i % n]);
}

static void push_bytes(fz_builder *b) {
  const uint8_t *p;
  size_t len = fz_take(b->r, fz_byte(b->r), &p);
  lua_pushlstring(b->L, (const char *)p, len);
}

static void push_key(fz_builder *b) {
  switch (fz_byte(b->r) % 5) {
    case 1:
      push_bytes(b);
      break;
    case 2:
      lua_pushinteger(b->L, (lua_Integer)fz_byte(b->r) % 10);
      break;
    case 3: /* a word with bytes after it: NULs, near misses */
      push_word(b);
      push_bytes(b);
      lua_concat(b->L, 2);
      break;
    default:
      push_word(b);
      break;
  }
}

static void fill_array(fz_builder *b, int depth) {
  lua_State *L = b->L;
  lua_Integer i, n = fz_byte(b->r) % 9;
  if (b->nchain >= (int)(sizeof(b->chain) / sizeof(b->chain[0])))
    fz_fail("fz_builder: max_depth is too large");
  lua_createtable(L, (int)n, 0);
  b->chain[b->nchain++] = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    fz_push_value(b, depth + 1);
    lua_rawseti(L, -2, i); /* a nil leaves a hole */
  }
  b->nchain--;
}

void fz_push_object(fz_builder *b, int depth) {
  lua_State *L = b->L;
  int i, n = fz_byte(b->r) % 9;
  luaL_checkstack(L, 4, "fuzz builder");
  if (b->nchain >= (int)(sizeof(b->chain) / sizeof(b->chain[0])))
    fz_fail("fz_builder: max_depth is too large");
  lua_createtable(L, 0, n);
  b->chain[b->nchain++] = lua_gettop(L);
  for (i = 0; i < n; i++) {
    push_key(b);
    fz_push_value(b, depth + 1);
    lua_rawset(L, -3); /* a nil value sets nothing */
  }
  b->nchain--;
}

static int a_function(lua_State *L) {
  (void)L;
  return 0;
}

void fz_push_value(fz_builder *b, int depth) {
  lua_State *L = b->L;
  unsigned op = fz_byte(b->r) % 16;
  luaL_checkstack(L, 4, "fuzz builder");
  if ((op == 8 || op == 9 || op == 13) && depth >= b->max_depth) op = 6;
  switch (op) {
    case 0:
      lua_pushboolean(L, fz_byte(b->r) & 1);
      break;
    case 1:
      lua_pushinteger(L, (lua_Integer)(int8_t)fz_byte(b->r));
      break;
    case 2:
      lua_pushinteger(L, (lua_Integer)fz_u64(b->r));
      break;
    case 3: { /* any double: NaN, infinities, subnormals, -0 */
      uint64_t u = fz_u64(b->r);
      double d;
      memcpy(&d, &u, sizeof(d));
      lua_pushnumber(L, d);
      break;
    }
    case 4: /* small floats, integral ones too */
      lua_pushnumber(L, (double)(int8_t)fz_byte(b->r) / 4.0);
      break;
    case 5:
      push_bytes(b);
      break;
    case 6: case 11: case 12:
      push_word(b);
      break;
    case 7:
      lua_pushlightuserdata(L, NULL); /* stackone.null */
      break;
    case 8:
      fill_array(b, depth);
      break;
    case 9: case 13:
      fz_push_object(b, depth);
      break;
    case 10: /* an empty table marked as an array */
      lua_newtable(L);
      luaL_setmetatable(L, SO_ARRAY_MT);
      break;
    case 14: /* a table that holds itself, or a function */
      if (b->nchain > 0 && (fz_byte(b->r) & 1))
        lua_pushvalue(L, b->chain[fz_byte(b->r) % b->nchain]);
      else
        lua_pushcfunction(L, a_function);
      break;
    default:
      lua_pushnil(L);
      break;
  }
}
