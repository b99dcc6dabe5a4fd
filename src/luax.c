/*
** luax.c: small helpers on the Lua C API shared by the other files.
*/
#include "stackone.h"

/* t[name] without metamethods: strings read from options and queries then
   live in the table, never only in a slot an __index function filled */
int so_rawfield(lua_State *L, int t, const char *name) {
  t = lua_absindex(L, t);
  lua_pushstring(L, name);
  return lua_rawget(L, t);
}
