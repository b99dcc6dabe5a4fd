/*
** compat.h: the Lua 5.4 API this module is written against, for Lua 5.1
** (and LuaJIT 2.1), 5.2 and 5.3, and what 5.5 no longer has. Only what
** the module uses; each shim is named so_compat_* and mapped by a macro,
** so that a Lua that already has a function of that name (LuaJIT has
** some of 5.2's) sees no clash.
*/
#ifndef STACKONE_COMPAT_H
#define STACKONE_COMPAT_H

#include <math.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502 /* 5.1 and LuaJIT */

#ifndef LUA_OK
#define LUA_OK 0
#endif
#define LUA_OPLT 1
#define lua_rawlen(L, i) lua_objlen((L), (i))
#define lua_compare(L, a, b, op) lua_lessthan((L), (a), (b))

static inline int so_compat_absindex(lua_State *L, int i) {
  return i > 0 || i <= LUA_REGISTRYINDEX ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex so_compat_absindex

static inline void so_compat_copy(lua_State *L, int from, int to) {
  to = lua_absindex(L, to);
  lua_pushvalue(L, from);
  lua_replace(L, to);
}
#define lua_copy so_compat_copy

static inline lua_Number so_compat_tonumberx(lua_State *L, int i, int *isnum) {
  lua_Number n = lua_tonumber(L, i);
  if (isnum) *isnum = n != 0 || lua_isnumber(L, i);
  return n;
}
#define lua_tonumberx so_compat_tonumberx

static inline void so_compat_setfuncs(lua_State *L, const luaL_Reg *l,
                                      int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_setfuncs so_compat_setfuncs
#ifndef luaL_newlibtable /* LuaJIT 2.1 has these two */
#define luaL_newlibtable(L, l) \
  lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#define luaL_newlib(L, l) (luaL_newlibtable(L, l), luaL_setfuncs((L), (l), 0))
#endif

static inline void so_compat_setmetatable(lua_State *L, const char *name) {
  luaL_getmetatable(L, name);
  lua_setmetatable(L, -2);
}
#define luaL_setmetatable so_compat_setmetatable

#define lua_getuservalue lua_getfenv
#define lua_setuservalue lua_setfenv
#define LUA_VERSION_MAJOR "5"
#define LUA_VERSION_MINOR "1"

#endif /* < 5.2 */

#if LUA_VERSION_NUM < 503 /* 5.1, LuaJIT and 5.2: numbers are doubles */

/* a number with an integral value that a double holds exactly */
static inline int so_compat_isinteger(lua_State *L, int i) {
  lua_Number n;
  if (lua_type(L, i) != LUA_TNUMBER) return 0;
  n = lua_tonumber(L, i);
  return n == floor(n) && fabs(n) <= 9007199254740992.0;
}
#define lua_isinteger so_compat_isinteger

/* the reads that give the type of what they pushed, as 5.3's do */
#define lua_getfield(L, i, k) (lua_getfield((L), (i), (k)), lua_type((L), -1))
#define lua_rawget(L, i) (lua_rawget((L), (i)), lua_type((L), -1))
#define lua_rawgeti(L, i, n) (lua_rawgeti((L), (i), (n)), lua_type((L), -1))

/* a decimal number only: what page_size and friends are written as */
static inline size_t so_compat_stringtonumber(lua_State *L, const char *s) {
  char *end;
  double d;
  if (s == NULL || *s == '\0') return 0;
  d = strtod(s, &end);
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
  if (end == s || *end != '\0') return 0;
  lua_pushnumber(L, d);
  return (size_t)(end - s) + 1;
}
#define lua_stringtonumber so_compat_stringtonumber

#endif /* < 5.3 */

#if LUA_VERSION_NUM < 504 /* n user values: one table in the single one */

static inline void *so_compat_newuserdatauv(lua_State *L, size_t size,
                                            int n) {
  void *p = lua_newuserdata(L, size);
  lua_createtable(L, n, 0);
  lua_setuservalue(L, -2);
  return p;
}
#define lua_newuserdatauv so_compat_newuserdatauv

static inline int so_compat_getiuservalue(lua_State *L, int idx, int n) {
  lua_getuservalue(L, idx);
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_pushnil(L);
    return LUA_TNONE;
  }
  lua_rawgeti(L, -1, n);
  lua_remove(L, -2);
  return lua_type(L, -1);
}
#define lua_getiuservalue so_compat_getiuservalue

static inline int so_compat_setiuservalue(lua_State *L, int idx, int n) {
  idx = lua_absindex(L, idx);
  lua_getuservalue(L, idx);
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, n);
  lua_pop(L, 1);
  return 1;
}
#define lua_setiuservalue so_compat_setiuservalue

#endif /* < 5.4 */

/* user values 1..n of the userdata at idx become nil, but `keep` (before
   5.4: in their one table, fetched once) */
static inline void so_clear_uservalues(lua_State *L, int idx, int n,
                                       int keep) {
  int k;
#if LUA_VERSION_NUM < 504
  lua_getuservalue(L, idx);
  if (lua_type(L, -1) == LUA_TTABLE)
    for (k = 1; k <= n; k++) {
      if (k == keep) continue;
      lua_pushnil(L);
      lua_rawseti(L, -2, k);
    }
  lua_pop(L, 1);
#else
  idx = lua_absindex(L, idx);
  for (k = 1; k <= n; k++) {
    if (k == keep) continue;
    lua_pushnil(L);
    lua_setiuservalue(L, idx, k);
  }
#endif
}

#if LUA_VERSION_NUM >= 503 && !defined(lua_numbertointeger)
/* 5.5 moved this luaconf.h macro into its private headers: a float with
** an integral value to an integer, 0 when outside lua_Integer's range
** (-(float)LUA_MININTEGER is 2^63, exact; LUA_MAXINTEGER as a float is not) */
static inline int so_compat_numbertointeger(lua_Number n, lua_Integer *p) {
  if (!(n >= (lua_Number)LUA_MININTEGER && n < -(lua_Number)LUA_MININTEGER))
    return 0;
  *p = (lua_Integer)n;
  return 1;
}
#define lua_numbertointeger so_compat_numbertointeger
#endif

#endif
