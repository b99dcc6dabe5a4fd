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

/* where the string key at `key` is in the NULL-terminated `names`, or -1.
   The whole key counts: "retry\0x" is not "retry" */
int so_name_index(lua_State *L, int key, const char *const *names) {
  size_t len;
  const char *s;
  int i;
  if (lua_type(L, key) != LUA_TSTRING) return -1;
  s = lua_tolstring(L, key, &len);
  for (i = 0; names[i]; i++)
    if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) return i;
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
   rate_limit, bulk): raises "<who>: unknown <what> 'key' (did you mean
   'name'?)" at the caller for the first key not in `names` */
void so_check_names(lua_State *L, int t, const char *const *names,
                    const char *who, const char *what) {
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (so_name_index(L, -1, names) < 0) {
      const char *near = NULL;
      size_t count;
      for (count = 0; names[count]; count++) {}
      if (lua_type(L, -1) == LUA_TSTRING)
        near = so_closest(lua_tostring(L, -1), names, count, sizeof(char *));
      so_push_key(L, -1);
      so_raise(L, 2, "%s: unknown %s '%s'%s%s%s", who, what,
               lua_tostring(L, -1), near ? " (did you mean '" : "",
               near ? near : "", near ? "'?)" : "");
    }
  }
}
