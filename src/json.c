/*
** json.c: request and response bodies through lua-cjson's own encode and
** decode (a private cjson.new() instance, so the user's cjson settings
** are never touched). Around them, what cjson 2.1.0 cannot do:
** - the request body is checked against the operation's schema and
**   copied, so empty arrays can go out as [] and numbers keep every digit;
**   such values travel through cjson as "splice" strings, starting with
**   the byte 0xFF, that are replaced by raw JSON text afterwards: every
**   other string was checked to be UTF-8, where 0xFF never occurs;
** - decoded responses lose their nulls and integral numbers become
**   Lua integers (past 2^53, see bigint.c).
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

#define SPLICE '\xFF'
#define MAX_DEPTH SO_BODY_MAX_DEPTH

void so_json_init(lua_State *L, int state) {
  state = lua_absindex(L, state);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "null");
  lua_setfield(L, state, "null");
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  /* a table with a hole is refused, never sent with nulls in it: the
     quick body check (fits.c) trusts that an array in the text was one */
  lua_getfield(L, -1, "encode_sparse_array");
  lua_pushboolean(L, 0);
  lua_pushinteger(L, 1);
  lua_pushinteger(L, 0);
  lua_call(L, 3, 0);
  lua_getfield(L, -1, "encode");
  lua_rawseti(L, state, SO_S_ENCODE);
  lua_getfield(L, -1, "decode");
  lua_rawseti(L, state, SO_S_DECODE);
  lua_pop(L, 2);
}

/* strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF */
static int utf8_ok(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    size_t n, k;
    unsigned cp;
    if (c < 0x80) {
      /* ASCII, most text: eight bytes at a time */
      uint64_t word;
      while (len - i >= 8 && (memcpy(&word, s + i, 8),
                              (word & 0x8080808080808080ULL) == 0))
        i += 8;
      if (i < len && s[i] < 0x80) i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
    else return 0;
    if (len - i <= n) return 0;
    for (k = 1; k <= n; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return 0;
    i += n + 1;
  }
  return 1;
}

/* The walk checks a body against its schema. It runs first in "check"
   mode, which pushes nothing and only notes whether the body needs a copy
   (an empty array, a number cjson would round); only then does a second
   walk in "copy" mode build the copy with splices. The path to the value
   being walked is kept as pointers and formatted only for a message.
   The check walk leaves UTF-8 to one pass over the encoded text (cjson
   copies text bytes as they are); only when that finds a bad byte does a
   walk checking each string say which field has it. */
typedef struct walk {
  lua_State *L;
  int copy;            /* push copies (else only check) */
  int text_later;      /* strings and keys: UTF-8 left to the encoded text */
  int needs_copy;      /* check mode found something cjson cannot say */
  char *err;
  size_t errlen;
  int depth;
  struct {
    const char *key;   /* NULL for an array index */
    lua_Integer index;
    const void *table; /* the table holding it, for cycle checks */
  } path[MAX_DEPTH + 2];
} walk;

static int fail(walk *w, const char *what) {
  char where[256];
  size_t len = 0;
  int i;
  where[0] = '\0';
  for (i = 0; i < w->depth && len < sizeof(where) - 1; i++) {
    int n = w->path[i].key
                ? snprintf(where + len, sizeof(where) - len, "%s%s",
                           len ? "." : "", w->path[i].key)
                : snprintf(where + len, sizeof(where) - len, "[%lld]",
                           (long long)w->path[i].index);
    if (n > 0) len += (size_t)n;
  }
  if (len >= sizeof(where)) len = sizeof(where) - 1;
  where[len] = '\0';
  if (len)
    snprintf(w->err, w->errlen, "field '%s' %s", where, what);
  else
    snprintf(w->err, w->errlen, "the body %s", what);
  return 0;
}

static void enter_key(walk *w, const void *table, const char *key) {
  w->path[w->depth].key = key;
  w->path[w->depth].table = table;
  w->depth++;
}

static void enter_index(walk *w, const void *table, lua_Integer i) {
  w->path[w->depth].key = NULL;
  w->path[w->depth].index = i;
  w->path[w->depth].table = table;
  w->depth++;
}

static void push_splice(walk *w, const char *json) {
  if (w->copy) {
    /* not "%c": Lua 5.3's lua_pushfstring does not write byte 0xFF */
    char marker = (char)SPLICE;
    lua_pushlstring(w->L, &marker, 1);
    lua_pushstring(w->L, json);
    lua_concat(w->L, 2);
  } else {
    w->needs_copy = 1;
  }
}

static void push_same(walk *w, int idx) {
  if (w->copy) lua_pushvalue(w->L, idx);
}

/* numbers cjson 2.1.0 would round (it prints 14 digits) become splices */
static int copy_number(walk *w, int idx) {
  lua_State *L = w->L;
  char text[64];
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    if (i > -100000000000000LL && i < 100000000000000LL) {
      push_same(w, idx);
    } else {
      snprintf(text, sizeof(text), "%lld", (long long)i);
      push_splice(w, text);
    }
    return 1;
  } else {
    lua_Number n = lua_tonumber(L, idx);
    if (!isfinite(n)) return fail(w, "is not a finite number");
    snprintf(text, sizeof(text), "%.14g", (double)n);
    if (strtod(text, NULL) == n) {
      push_same(w, idx);
    } else {
      char *comma;
      snprintf(text, sizeof(text), "%.17g", (double)n);
      /* JSON's decimal point, whatever LC_NUMERIC says */
      if ((comma = strchr(text, ',')) != NULL) *comma = '.';
      push_splice(w, text);
    }
    return 1;
  }
}

static int copy_value(walk *w, int idx, const so_field *row, int depth);

typedef enum { SHAPE_EMPTY, SHAPE_ARRAY, SHAPE_OBJECT, SHAPE_BAD } shape;

static shape table_shape(lua_State *L, int idx, lua_Integer *count) {
  lua_Integer n = 0, max = 0;
  int strings = 0, numbers = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
    if (lua_type(L, -1) == LUA_TSTRING) {
      strings = 1;
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      numbers = 1;
      if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
    } else {
      lua_pop(L, 1);
      return SHAPE_BAD;
    }
  }
  *count = n;
  if (n == 0) return SHAPE_EMPTY;
  if (strings && numbers) return SHAPE_BAD;
  if (numbers) return max == n ? SHAPE_ARRAY : SHAPE_BAD;
  return SHAPE_OBJECT;
}

static int marked_array(lua_State *L, int idx) {
  int yes = 0;
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, SO_ARRAY_MT);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return yes;
}

/* stack room for one more level of an array or object: each level keeps
   a few values on the stack, and the C API guarantees only 20 slots */
static int room(walk *w) {
  if (lua_checkstack(w->L, 8)) return 1;
  return fail(w, "is nested too deeply");
}

/* "did you mean" for `word` among the names of records `stride` bytes
   apart: writes "<what> (did you mean 'x'?)" or "<what>" */
static void near_miss(char *out, size_t outlen, const char *what,
                      const char *word, const char *const *names,
                      size_t stride) {
  const char *near = so_closest(word, names, (size_t)-1, stride);
  if (near)
    snprintf(out, outlen, "%s (did you mean '%s'?)", what, near);
  else
    snprintf(out, outlen, "%s", what);
}

/* copies an array whose items are of the row `item` (NULL: any) */
static int copy_array(walk *w, int idx, lua_Integer n, const so_field *item,
                      int depth) {
  lua_State *L = w->L;
  const void *self = lua_topointer(L, idx);
  lua_Integer i;
  if (!room(w)) return 0;
  if (n == 0) {
    push_splice(w, "[]");
    return 1;
  }
  if (w->copy) lua_createtable(L, (int)n, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    enter_index(w, self, i);
    if (!copy_value(w, lua_gettop(L), item, depth + 1)) {
      lua_pop(L, w->copy ? 2 : 1);
      return 0;
    }
    w->depth--;
    if (w->copy) lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  return 1;
}

/* every required field of the schema is in the table at idx (on
   failure, a copy under way is dropped) */
static int has_required(walk *w, int idx, const so_field *schema) {
  lua_State *L = w->L;
  const so_field *f;
  for (f = schema; f->name; f++) {
    int missing;
    if (!f->required) continue;
    lua_pushstring(L, f->name);
    missing = lua_rawget(L, idx) == LUA_TNIL;
    lua_pop(L, 1);
    if (missing) {
      enter_key(w, lua_topointer(L, idx), f->name);
      fail(w, "is required");
      w->depth--;
      if (w->copy) lua_pop(L, 1);
      return 0;
    }
  }
  return 1;
}

/* the row of `schema` named key, or NULL (the first byte compared first:
   most names differ there, and cost no strlen) */
static const so_field *field_row(const so_field *schema, const char *key,
                                 size_t klen) {
  const so_field *f;
  for (f = schema; f->name; f++)
    if (f->name[0] == key[0] && strlen(f->name) == klen &&
        memcmp(f->name, key, klen) == 0)
      return f;
  return NULL;
}

/* copies an object; with a schema (rows), only its fields are allowed */
static int copy_object(walk *w, int idx, const so_field *schema, int depth) {
  lua_State *L = w->L;
  const void *self = lua_topointer(L, idx);
  int copy = 0, extra = w->copy ? 1 : 0;
  if (!room(w)) return 0;
  if (w->copy) {
    lua_newtable(L);
    copy = lua_gettop(L);
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t klen;
    const char *key;
    const so_field *row = NULL;
    if (lua_type(L, -2) != LUA_TSTRING) { /* only a schema'd object can */
      char what[160];
      if (schema && schema[0].name && schema[1].name && schema[2].name)
        snprintf(what, sizeof(what), "must be a table with named fields "
                 "(%s, %s, %s, ...)", schema[0].name, schema[1].name,
                 schema[2].name);
      else
        snprintf(what, sizeof(what), "must be a table with named fields");
      fail(w, what);
      lua_pop(L, 2 + extra);
      return 0;
    }
    key = lua_tolstring(L, -2, &klen);
    enter_key(w, self, key);
    /* a field's name is ASCII: only other keys need the UTF-8 check */
    row = schema ? field_row(schema, key, klen) : NULL;
    /* (an unknown field's name is checked before it is named in a message) */
    if (!row && (!w->text_later || schema) &&
        !utf8_ok((const unsigned char *)key, klen)) {
      w->depth--;
      fail(w, "has a key that is not valid UTF-8");
      lua_pop(L, 2 + extra);
      return 0;
    }
    if (schema) {
      if (row == NULL) {
        char what[160];
        near_miss(what, sizeof(what), "is not a known field", key,
                  &schema[0].name, sizeof(so_field));
        fail(w, what);
        lua_pop(L, 2 + extra);
        return 0;
      }
    }
    if (!copy_value(w, lua_gettop(L), row, depth + 1)) {
      lua_pop(L, 2 + extra);
      return 0;
    }
    w->depth--;
    if (w->copy) {
      lua_pushvalue(L, -3);   /* key */
      lua_insert(L, -2);
      lua_rawset(L, copy);
    }
    lua_pop(L, 1);
  }
  return schema ? has_required(w, idx, schema) : 1;
}

static const char *type_word(so_type type) {
  switch (type) {
    case SO_T_STRING: return "must be a string";
    case SO_T_STRING_ARRAY: return "must be an array of strings";
    case SO_T_OBJECT_ARRAY: return "must be an array of tables (JSON objects)";
    case SO_T_OBJECT: return "must be a table of named values (a JSON object)";
    case SO_T_NUMBER: return "must be a number";
    case SO_T_BOOLEAN: return "must be true or false";
    default: return "has the wrong type";
  }
}

/* a table inside itself: it is one of the tables on the current path */
static int on_path(const walk *w, const void *t) {
  int i;
  for (i = 0; i < w->depth; i++)
    if (w->path[i].table == t) return 1;
  return 0;
}

so_field so_array_item(const so_field *row) {
  so_field item = {NULL, SO_T_ANY, NULL, NULL, 0, NULL};
  item.type = row->type == SO_T_STRING_ARRAY ? SO_T_STRING : SO_T_OBJECT;
  item.fields = row->fields;
  item.values = row->values;
  return item;
}

/* check mode's one pass over a table a row says is an array: 1 when it is
   a non-empty array whose items all pass; 0 for anything else, message or
   not (the full check then says what is wrong) */
static int array_passes(walk *w, int idx, const so_field *item, int depth) {
  lua_State *L = w->L;
  const void *self = lua_topointer(L, idx);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  if (n == 0 || !room(w)) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_Integer k = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
    if (k < 1 || k > n) {
      lua_pop(L, 2);
      return 0;
    }
    count++;
    enter_index(w, self, k);
    if (!copy_value(w, lua_gettop(L), item, depth + 1)) {
      lua_pop(L, 2);
      return 0;
    }
    w->depth--;
    lua_pop(L, 1);
  }
  return count == n;
}

/* check mode's one pass over a non-empty table a row says is an object
   (else 0, as above) */
static int object_passes(walk *w, int idx, const so_field *fields,
                         int depth) {
  lua_State *L = w->L;
  lua_pushnil(L);
  if (!lua_next(L, idx)) return 0; /* empty: {} or a marked [] */
  lua_pop(L, 2);
  return copy_object(w, idx, fields, depth);
}

static int copy_table(walk *w, int idx, const so_field *row, int depth) {
  lua_State *L = w->L;
  so_type type = row ? row->type : SO_T_ANY;
  int arrays = type == SO_T_STRING_ARRAY || type == SO_T_OBJECT_ARRAY;
  lua_Integer n;
  shape sh;
  if (depth > MAX_DEPTH) return fail(w, "is nested too deeply");
  if (on_path(w, lua_topointer(L, idx)))
    return fail(w, "contains a cycle (a table inside itself)");
  if (!w->copy && (arrays || type == SO_T_OBJECT)) {
    /* the common case in one pass; the full check below only when it
       does not pass, for the message */
    int at = w->depth;
    if (arrays) {
      so_field item = so_array_item(row);
      if (array_passes(w, idx, &item, depth)) return 1;
    } else if (object_passes(w, idx, row->fields, depth)) {
      return 1;
    }
    w->depth = at;
  }
  sh = table_shape(L, idx, &n);
  if (sh == SHAPE_BAD)
    return fail(w, "is a table with mixed or non-consecutive keys "
                   "(a sparse array cannot be sent as JSON)");
  if (sh == SHAPE_EMPTY)
    sh = (arrays || marked_array(L, idx)) ? SHAPE_ARRAY : SHAPE_OBJECT;
  if (sh == SHAPE_ARRAY && type == SO_T_OBJECT)
    /* an object of known keys says which */
    return row->fields ? copy_object(w, idx, row->fields, depth)
                       : fail(w, type_word(type));
  if (sh == SHAPE_OBJECT && arrays) return fail(w, type_word(type));
  if (sh == SHAPE_ARRAY) {
    so_field item;
    if (arrays) item = so_array_item(row);
    return copy_array(w, idx, n, arrays ? &item : NULL, depth);
  }
  return copy_object(w, idx, type == SO_T_OBJECT ? row->fields : NULL,
                     depth);
}

/* a string of a row with `values` must be one of them */
static int one_of(walk *w, int idx, const so_field *row) {
  size_t i;
  char what[200];
  const char *s = lua_tostring(w->L, idx);
  for (i = 0; row->values[i]; i++)
    if (strcmp(s, row->values[i]) == 0) return 1;
  near_miss(what, sizeof(what), "is not one of the values the API takes", s,
            row->values, sizeof(char *));
  return fail(w, what);
}

static int copy_value(walk *w, int idx, const so_field *row, int depth) {
  lua_State *L = w->L;
  int t = lua_type(L, idx);
  so_type type = row ? row->type : SO_T_ANY;
  if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL) {
    push_same(w, idx); /* stackone.null: explicit JSON null */
    return 1;
  }
  if ((type == SO_T_STRING && t != LUA_TSTRING) ||
      (type == SO_T_NUMBER && t != LUA_TNUMBER) ||
      (type == SO_T_BOOLEAN && t != LUA_TBOOLEAN))
    return fail(w, type_word(type));
  if ((type == SO_T_STRING_ARRAY || type == SO_T_OBJECT_ARRAY ||
       type == SO_T_OBJECT) && t != LUA_TTABLE)
    return fail(w, row->fields && type == SO_T_OBJECT ? "must be a table"
                                                      : type_word(type));
  switch (t) {
    case LUA_TBOOLEAN:
      push_same(w, idx);
      return 1;
    case LUA_TNUMBER:
      return copy_number(w, idx);
    case LUA_TSTRING: {
      size_t len;
      const char *s;
      if (w->text_later && !(row && row->values)) {
        push_same(w, idx);
        return 1;
      }
      s = lua_tolstring(L, idx, &len);
      if (!utf8_ok((const unsigned char *)s, len))
        return fail(w, "is not valid UTF-8 text");
      if (row && row->values && !one_of(w, idx, row)) return 0;
      push_same(w, idx);
      return 1;
    }
    case LUA_TTABLE:
      return copy_table(w, idx, row, depth);
    default: {
      char what[64];
      snprintf(what, sizeof(what), "is a %s, which JSON cannot carry",
               lua_typename(L, t));
      return fail(w, what);
    }
  }
}

/* replaces every "\xFF<json>" by <json> in the encoded text on the top */
static void apply_splices(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  const char *p = memchr(s, SPLICE, len), *end = s + len;
  luaL_Buffer b;
  if (p == NULL) return;
  luaL_buffinit(L, &b);
  while (p) {
    const char *close = memchr(p, '"', (size_t)(end - p));
    luaL_addlstring(&b, s, (size_t)(p - 1 - s)); /* up to the quote */
    luaL_addlstring(&b, p + 1, (size_t)(close - p - 1));
    s = close + 1;
    p = memchr(s, SPLICE, (size_t)(end - s));
  }
  luaL_addlstring(&b, s, (size_t)(end - s));
  luaL_pushresult(&b);
  lua_remove(L, -2);
}

/* encodes the body at `value`: pushes the JSON text and returns 1, or
   returns 0 with a message in err (nothing pushed). cjson's text is read
   against the rows first (fits.c); only a body it cannot vouch for is
   walked here, which checks it, says what is wrong, or copies it */
int so_json_encode_body(lua_State *L, int state, int value,
                        const so_field *schema, char *err, size_t errlen) {
  walk w;
  int encoded, text_ok = 0;
  size_t len;
  const char *text;
  value = lua_absindex(L, value);
  state = lua_absindex(L, state);
  lua_rawgeti(L, state, SO_S_ENCODE);
  lua_pushvalue(L, value);
  encoded = lua_pcall(L, 1, 1, 0) == LUA_OK;
  if (encoded) {
    text = lua_tolstring(L, -1, &len);
    text_ok = utf8_ok((const unsigned char *)text, len);
    if (text_ok && so_json_fits(text, len, schema)) return 1;
  } else {
    lua_pop(L, 1); /* cjson's message: the walk says what is wrong */
  }
  memset(&w, 0, sizeof(w));
  w.L = L;
  w.err = err;
  w.errlen = errlen;
  w.text_later = 1;
  /* check (copy_object refuses keys that are not names); copy only when
     cjson alone would get something wrong. The copy walk checks each
     string itself: its splices are marked by a byte UTF-8 never has */
  if (!copy_object(&w, value, schema, 0)) {
    if (encoded) lua_pop(L, 1);
    return 0;
  }
  if (encoded && !w.needs_copy && text_ok) return 1; /* cjson's text */
  if (encoded) lua_pop(L, 1);
  lua_rawgeti(L, state, SO_S_ENCODE);
  if (w.needs_copy) {
    w.copy = 1;
    w.text_later = 0;
    if (!copy_object(&w, value, schema, 0)) {
      lua_pop(L, 1);
      return 0;
    }
  } else {
    lua_pushvalue(L, value);
  }
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    snprintf(err, errlen, "cannot encode the body: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  if (w.needs_copy) {
    apply_splices(L);
  } else {
    text = lua_tolstring(L, -1, &len);
    if (!utf8_ok((const unsigned char *)text, len)) {
      lua_pop(L, 1);
      w.text_later = 0; /* the walk again, to say where */
      if (copy_object(&w, value, schema, 0))
        snprintf(err, errlen, "the body is not valid UTF-8 text");
      return 0;
    }
  }
  return 1;
}

/* nulls in objects vanish, integral numbers become integers */
static void normalize(lua_State *L, int idx, int depth, int marked) {
  if (depth > 1000 || !lua_checkstack(L, 4)) return;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int t = lua_type(L, -1);
    if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        lua_pushvalue(L, -2);
        lua_pushnil(L);
        lua_rawset(L, idx); /* clearing a field while traversing is allowed */
      }
#if LUA_VERSION_NUM >= 503 /* before, every number is a double */
    } else if (t == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Number n = lua_tonumber(L, -1);
      lua_Integer i;
      if (n == floor(n) && lua_numbertointeger(n, &i)) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, i);
        lua_rawset(L, idx);
      }
#endif
    } else if (t == LUA_TTABLE) {
      normalize(L, lua_gettop(L), depth + 1, marked);
    } else if (t == LUA_TSTRING && marked && *lua_tostring(L, -1) == SPLICE) {
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      so_json_unmark(L);
      lua_rawset(L, idx); /* an existing key: allowed while traversing */
    }
    lua_pop(L, 1);
  }
}

/* decodes text: pushes the value and returns 1, or pushes a message and
   returns 0. Once the text is a Lua string, only its start stays in text
   (an error's excerpt): a large body is not held twice while decoded */
int so_json_decode(lua_State *L, int state, so_buf *text) {
  const char *s = text->data;
  size_t len = text->len;
  so_buf *marked;
  int big, ok, status, seen;
  state = lua_absindex(L, state);
  lua_rawgeti(L, state, SO_S_DECODE);
  /* a first scan needs no buffer: most bodies have no big integer */
  big = so_json_mark_big_integers(s, len, NULL, &seen);
  if (big > 0) {
    marked = so_buf_push(L); /* a Lua error frees it */
    big = so_json_mark_big_integers(s, len, marked, &seen);
    if (marked->oom) luaL_error(L, "not enough memory");
    lua_pushlstring(L, marked->data, marked->len);
    so_buf_free(marked);
    lua_remove(L, -2);
  }
  if (big < 0) {
    lua_pop(L, 1);
    lua_pushliteral(L, "the body is not UTF-8 JSON");
    return 0;
  }
  if (!big) lua_pushlstring(L, s, len);
  so_buf_keep(text, 1024); /* s is not read again */
  status = lua_pcall(L, 1, 1, 0);
  if (status == LUA_ERRMEM) lua_error(L); /* not the body's fault */
  ok = status == LUA_OK;
  /* the clean-up, only for what it changes: nulls, big integers and (on
     Lua 5.3+, where cjson gives floats) numbers */
#if LUA_VERSION_NUM >= 503
  if (seen & SO_SEEN_NUMBER) seen |= SO_SEEN_NULL;
#endif
  if (ok && lua_type(L, -1) == LUA_TTABLE && (big || (seen & SO_SEEN_NULL)))
    normalize(L, lua_gettop(L), 0, big);
  return ok;
}

/* the clean-up of a decoded table, for a piece of a large body
   (json_pieces.c): marked says whether it held big integers */
void so_json_clean(lua_State *L, int idx, int marked) {
  normalize(L, lua_absindex(L, idx), 0, marked);
}
