/*
** bigint.c: integers in responses keep every digit. lua-cjson reads every
** number as a double, so an integer past 2^53 (9007199254740993) would
** come back silently wrong. Before decoding, such literals are turned
** into strings marked with the byte 0xFF (never in UTF-8 text); after,
** they become Lua integers where the Lua has 64-bit integers and they fit,
** and strings of their digits otherwise (Lua 5.1, LuaJIT and 5.2, or past
** 2^63), never a rounded number.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

#define MARK '\xFF'
#define EXACT_DIGITS 15 /* any integer of 15 digits is exact in a double */

static int digit(char c) { return c >= '0' && c <= '9'; }

/* the end of the number token at p (JSON grammar, loosely), and whether
   it is an integer of more than EXACT_DIGITS digits */
static const char *number_end(const char *p, const char *end, int *big) {
  const char *q = p, *digits;
  int integer = 1;
  if (q < end && *q == '-') q++;
  digits = q;
  while (q < end && digit(*q)) q++;
  *big = q - digits > EXACT_DIGITS;
  while (q < end && (digit(*q) || *q == '.' || *q == 'e' || *q == 'E' ||
                     *q == '+' || *q == '-')) {
    integer = 0;
    q++;
  }
  *big = *big && integer;
  return q;
}

/* the end of the string whose opening quote is at p (end if it has
   none): memchr to each quote, which ends it unless escaped */
static const char *string_end(const char *p, const char *end) {
  const char *q = p + 1;
  while ((q = memchr(q, '"', (size_t)(end - q))) != NULL) {
    const char *b = q;
    while (b > p + 1 && b[-1] == '\\') b--;
    if ((q - b) % 2 == 0) return q + 1; /* not escaped */
    q++;
  }
  return end;
}

/* 0: nothing to do; 1: `out` holds the text with the big integers marked;
   -1: the text holds byte 0xFF, so marks could not be told apart (it is
   not UTF-8: the caller reports it as not decodable). *seen gets
   SO_SEEN_NUMBER and SO_SEEN_NULL for the tokens outside strings, so that
   a body with neither needs no clean-up after decoding. With out NULL,
   the scan stops at the first big integer and returns 1 (*seen is then
   incomplete): most bodies have none, and need no buffer. */
int so_json_mark_big_integers(const char *s, size_t len, so_buf *out,
                              int *seen) {
  const char *p = s, *end = s + len, *copied = s;
  int found = 0;
  *seen = 0;
  while (p < end) {
    char c = *p;
    if (c == '"') {
      p = string_end(p, end);
    } else if (c == 'n') { /* outside strings, only null starts so */
      *seen |= SO_SEEN_NULL;
      p++;
    } else if (c == '-' || digit(c)) {
      int big;
      const char *q = number_end(p, end, &big);
      *seen |= SO_SEEN_NUMBER;
      if (big) {
        if (!found && memchr(s, MARK, len)) return -1;
        if (out == NULL) return 1;
        found = 1;
        so_buf_append(out, copied, (size_t)(p - copied));
        so_buf_append(out, "\"\xFF", 2);
        so_buf_append(out, p, (size_t)(q - p));
        so_buf_append(out, "\"", 1);
        copied = q;
      }
      p = q;
    } else {
      p++;
    }
  }
  if (!found) return 0;
  so_buf_append(out, copied, (size_t)(end - copied));
  return 1;
}

/* the value a marked string at the top of the stack stands for replaces
   it: a Lua integer when one holds it exactly, else its digits */
void so_json_unmark(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (len < 2 || s[0] != MARK) return;
#if LUA_VERSION_NUM >= 503
  {
    char *endp;
    long long v;
    errno = 0;
    v = strtoll(s + 1, &endp, 10);
    if (errno == 0 && endp == s + len &&
        v >= LUA_MININTEGER && v <= LUA_MAXINTEGER) {
      lua_pop(L, 1);
      lua_pushinteger(L, (lua_Integer)v);
      return;
    }
  }
#else
  { /* a double holds every integer below 2^53 exactly; a larger one
       never rounds below it */
    double v = strtod(s + 1, NULL);
    if (v > -9007199254740992.0 && v < 9007199254740992.0) {
      lua_pop(L, 1);
      lua_pushnumber(L, v);
      return;
    }
  }
#endif
  lua_pushlstring(L, s + 1, len - 1);
  lua_remove(L, -2);
}
