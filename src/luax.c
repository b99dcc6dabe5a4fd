/*
** luax.c: small helpers on the Lua C API shared by the other files.
*/
#include <stdio.h>
#include <string.h>

#include "stackone.h"

/* t[name] without metamethods: strings read from options and queries then
   live in the table, never only in a slot an __index function filled */
int so_rawfield(lua_State *L, int t, const char *name) {
  t = lua_absindex(L, t);
  lua_pushstring(L, name);
  return lua_rawget(L, t);
}

/* the name of record i of `names`, records `stride` bytes apart whose
   first member is a const char * (a plain array of names: sizeof(char *)) */
static const char *name_at(const char *const *names, size_t stride,
                           size_t i) {
  const char *name;
  /* memcpy: the records need not be aligned for a cast */
  memcpy(&name, (const char *)names + i * stride, sizeof(name));
  return name;
}

/* where the string key at `key` is among the NULL-ended `names`, or -1.
   The whole key counts: "retry\0x" is not "retry" */
int so_name_index(lua_State *L, int key, const char *const *names,
                  size_t stride) {
  size_t len, i;
  const char *s, *name;
  if (lua_type(L, key) != LUA_TSTRING) return -1;
  s = lua_tolstring(L, key, &len);
  for (i = 0; (name = name_at(names, stride, i)) != NULL; i++)
    /* the first byte first: most names differ there, and cost no strlen */
    if (name[0] == s[0] && strlen(name) == len && memcmp(name, s, len) == 0)
      return (int)i;
  return -1;
}

/* pushes the key at `key` for a message: strings with their control
   bytes escaped (so a NUL cannot cut it short), other values by type */
void so_push_key(lua_State *L, int key) {
  luaL_Buffer b;
  size_t len, i;
  const char *s;
  key = lua_absindex(L, key);
  if (lua_type(L, key) != LUA_TSTRING) {
    lua_pushstring(L, luaL_typename(L, key));
    return;
  }
  s = lua_tolstring(L, key, &len);
  luaL_buffinit(L, &b);
  for (i = 0; i < len && i < 80; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) {
      char esc[8];
      snprintf(esc, sizeof(esc), "\\%d", c);
      luaL_addstring(&b, esc);
    } else {
      luaL_addchar(&b, (char)c);
    }
  }
  luaL_pushresult(&b);
}

/* the one check of every table of named options (client, call, retry,
   rate_limit, bulk, query, filter): 1 when every key of the table at t is
   among `names` (records `stride` bytes apart, as for so_name_index);
   else 0 with "unknown <what> 'key' (did you mean 'name'?)" in err */
int so_known_names(lua_State *L, int t, const char *const *names,
                   size_t stride, const char *what, char *err,
                   size_t errlen) {
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (so_name_index(L, -1, names, stride) < 0) {
      const char *near = NULL;
      size_t count;
      for (count = 0; name_at(names, stride, count); count++) {}
      if (lua_type(L, -1) == LUA_TSTRING)
        near = so_closest(lua_tostring(L, -1), names, count, stride);
      so_push_key(L, -1);
      if (count == 0)
        snprintf(err, errlen, "takes no %ss (got '%s')", what,
                 lua_tostring(L, -1));
      else
        snprintf(err, errlen, "unknown %s '%s'%s%s%s", what,
                 lua_tostring(L, -1), near ? " (did you mean '" : "",
                 near ? near : "", near ? "'?)" : "");
      lua_pop(L, 2);
      return 0;
    }
  }
  return 1;
}

/* so_known_names for a programmer's table: a usage error */
void so_check_names(lua_State *L, int t, const char *const *names,
                    size_t stride, const char *what) {
  char err[200];
  if (!so_known_names(L, t, names, stride, what, err, sizeof(err)))
    so_usage(L, 0, "%s", err);
}
