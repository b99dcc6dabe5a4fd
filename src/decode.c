/*
** decode.c: response bodies straight into their final Lua values, in one
** pass: integers as Lua integers (every digit kept, see bigint.c), nulls
** in objects left out, nulls in arrays as cjson.null (a NULL light
** userdata), and each table made at its size. Values wait on the Lua
** stack until their table is made, a chunk at a time, so that a huge
** array needs no huge stack. Nothing is allocated outside Lua: an
** allocation error unwinds with nothing to free.
*/
#include <stdio.h>
#include <string.h>

#include "stackone.h"

#define MAX_DEPTH 1000 /* lua-cjson's default */
#define CHUNK 32       /* values (or pairs) waiting for their table */

typedef struct reader {
  lua_State *L;
  const char *start, *p, *end;
  const char *err; /* what is wrong at p, when a step returns 0 */
  int depth;
} reader;

static int value(reader *r);

static int fail(reader *r, const char *what) {
  r->err = what;
  return 0;
}

static void skip_space(reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' ||
                           *r->p == '\t'))
    r->p++;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

/* \uXXXX (a surrogate pair as one) at r->p, as UTF-8 into b */
static int unicode_escape(reader *r, luaL_Buffer *b) {
  unsigned cp, low;
  char out[4];
  size_t n;
  if (r->end - r->p < 6 || !hex4(r->p + 2, &cp))
    return fail(r, "a bad \\u escape");
  r->p += 6;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(r, "a lone low surrogate");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
        !hex4(r->p + 2, &low) || low < 0xDC00 || low > 0xDFFF)
      return fail(r, "a high surrogate without its low one");
    r->p += 6;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  }
  if (cp < 0x80) {
    out[0] = (char)cp, n = 1;
  } else if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  luaL_addlstring(b, out, n);
  return 1;
}

/* a string with escapes, from its opening quote at r->p */
static int escaped_string(reader *r) {
  luaL_Buffer b;
  const char *run = ++r->p;
  luaL_buffinit(r->L, &b);
  while (r->p < r->end) {
    char c = *r->p;
    if (c == '"') {
      luaL_addlstring(&b, run, (size_t)(r->p - run));
      r->p++;
      luaL_pushresult(&b);
      return 1;
    }
    if (c != '\\') {
      r->p++;
      continue;
    }
    luaL_addlstring(&b, run, (size_t)(r->p - run));
    if (r->p + 1 >= r->end) break;
    switch (r->p[1]) {
    case '"': luaL_addchar(&b, '"'); break;
    case '\\': luaL_addchar(&b, '\\'); break;
    case '/': luaL_addchar(&b, '/'); break;
    case 'b': luaL_addchar(&b, '\b'); break;
    case 'f': luaL_addchar(&b, '\f'); break;
    case 'n': luaL_addchar(&b, '\n'); break;
    case 'r': luaL_addchar(&b, '\r'); break;
    case 't': luaL_addchar(&b, '\t'); break;
    case 'u':
      if (!unicode_escape(r, &b)) {
        luaL_pushresult(&b);
        lua_pop(r->L, 1);
        return 0;
      }
      run = r->p;
      continue;
    default:
      luaL_pushresult(&b);
      lua_pop(r->L, 1);
      return fail(r, "a bad escape");
    }
    r->p += 2;
    run = r->p;
  }
  luaL_pushresult(&b);
  lua_pop(r->L, 1);
  return fail(r, "a string without its closing quote");
}

/* a string at r->p (its opening quote), pushed */
static int string(reader *r) {
  const char *s = r->p + 1, *q = s;
  while (q < r->end && *q != '"' && *q != '\\') q++;
  if (q < r->end && *q == '"') { /* no escapes: the common case */
    lua_pushlstring(r->L, s, (size_t)(q - s));
    r->p = q + 1;
    return 1;
  }
  return escaped_string(r);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* a number token (JSON's grammar), pushed as its final value */
static int number(reader *r) {
  const char *s = r->p, *q = s, *digits;
  int integer = 1;
  if (q < r->end && *q == '-') q++;
  digits = q;
  if (q < r->end && *q == '0') q++;
  else while (q < r->end && is_digit(*q)) q++;
  if (q == digits) return fail(r, "a bad number");
  if (q < r->end && *q == '.') {
    integer = 0;
    if (++q >= r->end || !is_digit(*q)) return fail(r, "a bad number");
    while (q < r->end && is_digit(*q)) q++;
  }
  if (q < r->end && (*q == 'e' || *q == 'E')) {
    integer = 0;
    q++;
    if (q < r->end && (*q == '+' || *q == '-')) q++;
    if (q >= r->end || !is_digit(*q)) return fail(r, "a bad number");
    while (q < r->end && is_digit(*q)) q++;
  }
  r->p = q;
  if (integer) so_push_json_integer(r->L, s, (size_t)(q - s));
  else so_push_json_float(r->L, s, (size_t)(q - s));
  return 1;
}

static int literal(reader *r, const char *word, size_t len) {
  if ((size_t)(r->end - r->p) < len || memcmp(r->p, word, len) != 0)
    return fail(r, "an unexpected character");
  r->p += len;
  return 1;
}

/* moves the `pending` values on the top into the table at *t (made now,
   below them, if there is none yet), after its first n */
static void flush_array(lua_State *L, int *t, lua_Integer n, int pending) {
  int k;
  if (*t == 0) {
    lua_createtable(L, pending, 0);
    lua_insert(L, -(pending + 1));
    *t = lua_gettop(L) - pending;
  }
  for (k = pending; k > 0; k--) lua_rawseti(L, *t, n + k);
}

static int array(reader *r) {
  lua_State *L = r->L;
  int t = 0, pending = 0;
  lua_Integer n = 0;
  r->p++;
  skip_space(r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    lua_createtable(L, 0, 0);
    return 1;
  }
  for (;;) {
    if (!value(r)) return 0;
    if (++pending == CHUNK) {
      flush_array(L, &t, n, pending);
      n += pending;
      pending = 0;
    }
    skip_space(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      skip_space(r);
    } else if (r->p < r->end && *r->p == ']') {
      r->p++;
      break;
    } else {
      return fail(r, "an array without ',' or ']'");
    }
  }
  if (pending || t == 0) flush_array(L, &t, n, pending);
  return 1;
}

/* sets the `pending` pairs on the top into the table at *t (made now,
   below them, if there is none yet), in order: a repeated key keeps its
   last value */
static void flush_object(lua_State *L, int *t, int pending) {
  int k, first;
  if (*t == 0) {
    lua_createtable(L, 0, pending);
    lua_insert(L, -(2 * pending + 1));
    *t = lua_gettop(L) - 2 * pending;
  }
  first = *t + 1;
  for (k = 0; k < pending; k++) {
    lua_pushvalue(L, first + 2 * k);
    lua_pushvalue(L, first + 2 * k + 1);
    lua_rawset(L, *t);
  }
  lua_settop(L, *t);
}

static int object(reader *r) {
  lua_State *L = r->L;
  int t = 0, pending = 0;
  r->p++;
  skip_space(r);
  if (r->p < r->end && *r->p == '}') {
    r->p++;
    lua_createtable(L, 0, 0);
    return 1;
  }
  for (;;) {
    if (r->p >= r->end || *r->p != '"') return fail(r, "an object key that is not a string");
    if (!string(r)) return 0;
    skip_space(r);
    if (r->p >= r->end || *r->p != ':') return fail(r, "an object key without ':'");
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == 'n') { /* a null field is left out */
      if (!literal(r, "null", 4)) return 0;
      lua_pop(L, 1);
    } else {
      if (!value(r)) return 0;
      if (++pending == CHUNK) {
        flush_object(L, &t, pending);
        pending = 0;
      }
    }
    skip_space(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      skip_space(r);
    } else if (r->p < r->end && *r->p == '}') {
      r->p++;
      break;
    } else {
      return fail(r, "an object without ',' or '}'");
    }
  }
  if (pending || t == 0) flush_object(L, &t, pending);
  return 1;
}

/* one value at r->p (no space before it), pushed */
static int value(reader *r) {
  int ok;
  /* a container keeps up to 2 * CHUNK values waiting, plus its table and
     what a nested value needs */
  if (!lua_checkstack(r->L, 2 * CHUNK + 4)) return fail(r, "values nested too deeply");
  if (r->p >= r->end) return fail(r, "the end of the text where a value was expected");
  switch (*r->p) {
  case '"': return string(r);
  case '{':
  case '[':
    if (++r->depth > MAX_DEPTH) return fail(r, "values nested too deeply");
    ok = *r->p == '{' ? object(r) : array(r);
    r->depth--;
    return ok;
  case 't':
    if (!literal(r, "true", 4)) return 0;
    lua_pushboolean(r->L, 1);
    return 1;
  case 'f':
    if (!literal(r, "false", 5)) return 0;
    lua_pushboolean(r->L, 0);
    return 1;
  case 'n':
    if (!literal(r, "null", 4)) return 0;
    lua_pushlightuserdata(r->L, NULL); /* cjson.null */
    return 1;
  default:
    if (*r->p == '-' || is_digit(*r->p)) return number(r);
    return fail(r, "an unexpected character");
  }
}

/* decodes s: pushes the value and returns 1, or pushes a message and
   returns 0. An allocation error is raised. */
int so_json_decode(lua_State *L, int state, const char *s, size_t len) {
  reader r;
  int top = lua_gettop(L);
  (void)state;
  r.L = L;
  r.start = r.p = s;
  r.end = s + len;
  r.err = NULL;
  r.depth = 0;
  skip_space(&r);
  if (value(&r)) {
    skip_space(&r);
    if (r.p == r.end) return 1;
    r.err = "text after the value";
  }
  lua_settop(L, top);
  lua_pushfstring(L, "the body is not JSON: %s at byte %d", r.err,
                  (int)(r.p - r.start) + 1);
  return 0;
}
