/*
** luastack.c: checks that the code under test keeps to the Lua C API's
** stack budget: a C function may use LUA_MINSTACK (20) slots above its
** arguments, more only after lua_checkstack. Pushing past that writes
** past the end of the Lua stack, inside liblua where ASan does not look:
** heap corruption that shows up, if at all, much later.
**
** The fuzz binary defines the lua_* functions that push, so every call
** from the code under test lands here first (the executable's symbols
** come before liblua's); each forwards to liblua's own function
** (dlsym(RTLD_NEXT)) and, between fz_guard_begin and fz_guard_end,
** checks the stack top after it. lua_checkstack and luaL_checkstack raise
** the limit. Calls that run in a new frame (lua_callk, lua_pcallk: cjson)
** are not checked: their tops count from another base.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <string.h>

#include "common.h"

static struct {
  lua_State *L;
  int armed;
  int nested; /* calls of lua_callk and lua_pcallk under way */
  int frame;  /* the value of nested in the guarded function */
  int limit;  /* the highest top allowed now */
  int peak;
} guard;

void fz_guard_begin(lua_State *L, int entry_top) {
  guard.L = L;
  guard.armed = 1;
  guard.frame = guard.nested;
  guard.limit = entry_top + LUA_MINSTACK;
  guard.peak = lua_gettop(L);
}

int fz_guard_end(void) {
  guard.armed = 0;
  return guard.peak;
}

static void check(lua_State *L, const char *what) {
  int top;
  if (!guard.armed || guard.nested != guard.frame || L != guard.L) return;
  top = lua_gettop(L);
  if (top > guard.peak) guard.peak = top;
  if (top > guard.limit)
    fz_fail("Lua stack overflow: %s left the top at %d, past the %d slots "
            "this C function may use without lua_checkstack", what, top,
            guard.limit);
}

static void raise_limit(lua_State *L, int n) {
  if (guard.armed && guard.nested == guard.frame && L == guard.L &&
      lua_gettop(L) + n > guard.limit)
    guard.limit = lua_gettop(L) + n;
}

/* liblua's own function; a void * to a function pointer through memcpy,
   which ISO C allows */
static void *real(const char *name) {
  void *sym = dlsym(RTLD_NEXT, name);
  if (sym == NULL) fz_fail("luastack: no %s in liblua", name);
  return sym;
}

/* f: liblua's function of this name (its type taken from lua.h) */
#define REAL(name) \
  static __typeof__(&name) f; \
  if (f == NULL) { \
    void *sym_ = real(#name); \
    memcpy(&f, &sym_, sizeof(f)); \
  }

void lua_pushnil(lua_State *L) {
  REAL(lua_pushnil)
  f(L);
  check(L, "lua_pushnil");
}

void lua_pushnumber(lua_State *L, lua_Number n) {
  REAL(lua_pushnumber)
  f(L, n);
  check(L, "lua_pushnumber");
}

void lua_pushinteger(lua_State *L, lua_Integer n) {
  REAL(lua_pushinteger)
  f(L, n);
  check(L, "lua_pushinteger");
}

const char *lua_pushlstring(lua_State *L, const char *s, size_t len) {
  const char *r;
  REAL(lua_pushlstring)
  r = f(L, s, len);
  check(L, "lua_pushlstring");
  return r;
}

const char *lua_pushstring(lua_State *L, const char *s) {
  const char *r;
  REAL(lua_pushstring)
  r = f(L, s);
  check(L, "lua_pushstring");
  return r;
}

const char *lua_pushvfstring(lua_State *L, const char *fmt, va_list ap) {
  const char *r;
  REAL(lua_pushvfstring)
  r = f(L, fmt, ap);
  check(L, "lua_pushvfstring");
  return r;
}

const char *lua_pushfstring(lua_State *L, const char *fmt, ...) {
  const char *r;
  va_list ap;
  va_start(ap, fmt);
  r = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return r;
}

void lua_pushboolean(lua_State *L, int b) {
  REAL(lua_pushboolean)
  f(L, b);
  check(L, "lua_pushboolean");
}

void lua_pushlightuserdata(lua_State *L, void *p) {
  REAL(lua_pushlightuserdata)
  f(L, p);
  check(L, "lua_pushlightuserdata");
}

void lua_pushvalue(lua_State *L, int idx) {
  REAL(lua_pushvalue)
  f(L, idx);
  check(L, "lua_pushvalue");
}

void lua_createtable(lua_State *L, int narr, int nrec) {
  REAL(lua_createtable)
  f(L, narr, nrec);
  check(L, "lua_createtable");
}

int lua_getfield(lua_State *L, int idx, const char *k) {
  int r;
  REAL(lua_getfield)
  r = f(L, idx, k);
  check(L, "lua_getfield");
  return r;
}

int lua_getglobal(lua_State *L, const char *name) {
  int r;
  REAL(lua_getglobal)
  r = f(L, name);
  check(L, "lua_getglobal");
  return r;
}

int lua_rawgeti(lua_State *L, int idx, lua_Integer n) {
  int r;
  REAL(lua_rawgeti)
  r = f(L, idx, n);
  check(L, "lua_rawgeti");
  return r;
}

int lua_rawget(lua_State *L, int idx) {
  int r;
  REAL(lua_rawget)
  r = f(L, idx);
  check(L, "lua_rawget");
  return r;
}

int lua_getmetatable(lua_State *L, int idx) {
  int r;
  REAL(lua_getmetatable)
  r = f(L, idx);
  check(L, "lua_getmetatable");
  return r;
}

int lua_next(lua_State *L, int idx) {
  int r;
  REAL(lua_next)
  r = f(L, idx);
  check(L, "lua_next");
  return r;
}

size_t lua_stringtonumber(lua_State *L, const char *s) {
  size_t r;
  REAL(lua_stringtonumber)
  r = f(L, s);
  check(L, "lua_stringtonumber");
  return r;
}

int lua_checkstack(lua_State *L, int n) {
  int r;
  REAL(lua_checkstack)
  r = f(L, n);
  if (r) raise_limit(L, n);
  return r;
}

void luaL_checkstack(lua_State *L, int n, const char *msg) {
  REAL(luaL_checkstack)
  f(L, n, msg);
  raise_limit(L, n);
}

void lua_callk(lua_State *L, int nargs, int nresults, lua_KContext ctx,
               lua_KFunction k) {
  REAL(lua_callk)
  guard.nested++;
  f(L, nargs, nresults, ctx, k); /* an error jumps past the --, and the
                                  next fz_guard_begin starts afresh */
  guard.nested--;
  check(L, "lua_call");
}

int lua_pcallk(lua_State *L, int nargs, int nresults, int errfunc,
               lua_KContext ctx, lua_KFunction k) {
  int r;
  REAL(lua_pcallk)
  guard.nested++;
  r = f(L, nargs, nresults, errfunc, ctx, k);
  guard.nested--;
  check(L, "lua_pcall");
  return r;
}
