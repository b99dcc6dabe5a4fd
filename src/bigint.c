/*
** bigint.c: numbers in responses become their final Lua values as they
** are read (decode.c), and integers keep every digit: a Lua integer where
** the Lua has 64-bit integers and it fits, otherwise a number while a
** double holds it exactly (below 2^53), else a string of its digits
** (Lua 5.1, LuaJIT and 5.2, or past 2^63); never a rounded number. An
** integral float (2.0, 1e3) becomes an integer where one holds it.
*/
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

#define EXACT_DIGITS 15 /* any integer of 15 digits is exact in a double */
#define FAST_DIGITS 18  /* any integer of 18 digits fits in 63 bits */

/* the integer token s (JSON's grammar: -?digits), pushed */
void so_push_json_integer(lua_State *L, const char *s, size_t len) {
  int negative = s[0] == '-';
  size_t digits = len - (size_t)negative;
#if LUA_VERSION_NUM >= 503
  if (digits <= FAST_DIGITS) {
    unsigned long long v = 0;
    size_t i;
    for (i = (size_t)negative; i < len; i++)
      v = v * 10 + (unsigned long long)(s[i] - '0');
    lua_pushinteger(L, negative ? -(lua_Integer)v : (lua_Integer)v);
    return;
  }
  {
    char text[32], *endp;
    long long v;
    if (len < sizeof(text)) {
      memcpy(text, s, len);
      text[len] = '\0';
      errno = 0;
      v = strtoll(text, &endp, 10);
      if (errno == 0 && endp == text + len && v >= LUA_MININTEGER &&
          v <= LUA_MAXINTEGER) {
        lua_pushinteger(L, (lua_Integer)v);
        return;
      }
    }
  }
#else
  if (digits <= EXACT_DIGITS) {
    double v = 0;
    size_t i;
    for (i = (size_t)negative; i < len; i++) v = v * 10 + (s[i] - '0');
    lua_pushnumber(L, negative ? -v : v);
    return;
  }
  { /* a double holds every integer below 2^53 exactly; a larger one
       never rounds below it */
    char text[32];
    if (len < sizeof(text)) {
      double v;
      memcpy(text, s, len);
      text[len] = '\0';
      v = strtod(text, NULL);
      if (v > -9007199254740992.0 && v < 9007199254740992.0) {
        lua_pushnumber(L, v);
        return;
      }
    }
  }
#endif
  lua_pushlstring(L, s, len); /* past what a number holds: its digits */
}

/* the number token s with a fraction or an exponent, pushed */
void so_push_json_float(lua_State *L, const char *s, size_t len) {
  char text[128];
  double v;
  if (len < sizeof(text)) {
    const char *point = localeconv()->decimal_point;
    memcpy(text, s, len);
    text[len] = '\0';
    /* strtod reads the C locale's '.' only where the host kept it */
    if (point[0] != '.' && point[1] == '\0') {
      char *dot = memchr(text, '.', len);
      if (dot) *dot = point[0];
    }
    v = strtod(text, NULL);
  } else { /* very long: Lua's own conversion */
    lua_pushlstring(L, s, len);
    v = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
#if LUA_VERSION_NUM >= 503
  {
    lua_Integer i;
    if (v == floor(v) && lua_numbertointeger(v, &i)) {
      lua_pushinteger(L, i);
      return;
    }
  }
#endif
  lua_pushnumber(L, (lua_Number)v);
}
