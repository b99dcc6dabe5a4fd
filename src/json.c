/*
** json.c: request bodies, checked against the operation's schema and
** written as JSON in the same pass: empty arrays go out as [], integers
** with every digit, other numbers with as many digits as they need, and a
** body that fails a check is never half sent. lua-cjson gives the module
** its null (cjson.null, also stackone.null). Responses are decoded by
** decode.c, in one pass.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

#define MAX_DEPTH 64

void so_json_init(lua_State *L, int state) {
  state = lua_absindex(L, state);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "null");
  lua_setfield(L, state, "null");
  lua_pop(L, 1);
}

/* strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF;
   *plain tells whether JSON needs no escape in it */
static int utf8_ok(const unsigned char *s, size_t len, int *plain) {
  size_t i = 0;
  int escapes = 0;
  while (i < len) {
    unsigned c = s[i];
    size_t n, k;
    unsigned cp;
    if (c < 0x80) {
      escapes |= c < 0x20 || c == '"' || c == '\\' || c == 0x7f;
      i++;
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
  *plain = !escapes;
  return 1;
}

/* The walk checks a body against its schema and writes its JSON text
   into `out` as it goes. The path to the value being walked is kept as
   pointers and formatted only for a message. */
typedef struct walk {
  lua_State *L;
  so_buf *out;         /* the JSON text so far */
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

static void put(walk *w, const char *text, size_t len) {
  so_buf *b = w->out;
  if (len == 0) return;
  if (len <= b->cap - b->len) { /* the common case: room left */
    memcpy(b->data + b->len, text, len);
    b->len += len;
  } else {
    so_buf_append(b, text, len);
  }
}

#define PUT_LITERAL(w, s) put((w), (s), sizeof(s) - 1)

/* a UTF-8 string (checked before) as a JSON string; plain: it needs no
   escapes (utf8_ok says) */
static void put_string(walk *w, const char *s, size_t len, int plain) {
  static const char hex[] = "0123456789abcdef";
  const char *run = s, *end = s + len, *p;
  so_buf *b = w->out;
  if (plain && len + 2 <= b->cap - b->len) {
    char *to = b->data + b->len;
    to[0] = '"';
    memcpy(to + 1, s, len);
    to[len + 1] = '"';
    b->len += len + 2;
    return;
  }
  PUT_LITERAL(w, "\"");
  for (p = s; p < end; p++) {
    unsigned char c = (unsigned char)*p;
    char esc[6];
    size_t n = 2;
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    put(w, run, (size_t)(p - run));
    esc[0] = '\\';
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      default:
        esc[1] = 'u', esc[2] = '0', esc[3] = '0';
        esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
        n = 6;
    }
    put(w, esc, n);
    run = p + 1;
  }
  put(w, run, (size_t)(end - run));
  PUT_LITERAL(w, "\"");
}

/* integers with every digit; other numbers in the fewest digits (of 14
   or 17) that read back as the same double */
static int put_number(walk *w, int idx) {
  lua_State *L = w->L;
  char text[64];
  if (lua_isinteger(L, idx)) {
    lua_Integer i = lua_tointeger(L, idx);
    unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i
                                  : (unsigned long long)i;
    char *p = text + sizeof(text);
    do {
      *--p = (char)('0' + u % 10);
      u /= 10;
    } while (u);
    if (i < 0) *--p = '-';
    put(w, p, (size_t)(text + sizeof(text) - p));
    return 1;
  } else {
    lua_Number n = lua_tonumber(L, idx);
    char *comma;
    if (!isfinite(n)) return fail(w, "is not a finite number");
    snprintf(text, sizeof(text), "%.14g", (double)n);
    if (strtod(text, NULL) != n)
      snprintf(text, sizeof(text), "%.17g", (double)n);
    /* JSON's decimal point, whatever LC_NUMERIC says */
    if ((comma = strchr(text, ',')) != NULL) *comma = '.';
    put(w, text, strlen(text));
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

/* writes an array whose items are of the row `item` (NULL: any) */
static int copy_array(walk *w, int idx, lua_Integer n, const so_field *item,
                      int depth) {
  lua_State *L = w->L;
  const void *self = lua_topointer(L, idx);
  lua_Integer i;
  if (!room(w)) return 0;
  PUT_LITERAL(w, "[");
  for (i = 1; i <= n; i++) {
    if (i > 1) PUT_LITERAL(w, ",");
    lua_rawgeti(L, idx, i);
    enter_index(w, self, i);
    if (!copy_value(w, lua_gettop(L), item, depth + 1)) {
      lua_pop(L, 1);
      return 0;
    }
    w->depth--;
    lua_pop(L, 1);
  }
  PUT_LITERAL(w, "]");
  return 1;
}

/* every required field of the schema is in the table at idx */
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
      return 0;
    }
  }
  return 1;
}

/* writes an object; with a schema (rows), only its fields are allowed */
static int copy_object(walk *w, int idx, const so_field *schema, int depth) {
  lua_State *L = w->L;
  const void *self = lua_topointer(L, idx);
  int first = 1, plain;
  if (!room(w)) return 0;
  PUT_LITERAL(w, "{");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t klen;
    const char *key;
    const so_field *row = NULL;
    if (lua_type(L, -2) != LUA_TSTRING) { /* only a schema'd object can */
      fail(w, schema == so_custom_field_fields
                  ? "must be a table with named fields (id, name, value, ...)"
                  : "must be a table with named fields");
      lua_pop(L, 2);
      return 0;
    }
    key = lua_tolstring(L, -2, &klen);
    enter_key(w, self, key);
    if (!utf8_ok((const unsigned char *)key, klen, &plain)) {
      w->depth--;
      fail(w, "has a key that is not valid UTF-8");
      lua_pop(L, 2);
      return 0;
    }
    if (schema) {
      int at = so_name_index(L, -2, &schema[0].name, sizeof(so_field));
      if (at < 0) {
        char what[160];
        near_miss(what, sizeof(what), "is not a known field", key,
                  &schema[0].name, sizeof(so_field));
        fail(w, what);
        lua_pop(L, 2);
        return 0;
      }
      row = &schema[at];
    }
    if (!first) PUT_LITERAL(w, ",");
    first = 0;
    put_string(w, key, klen, plain);
    PUT_LITERAL(w, ":");
    if (!copy_value(w, lua_gettop(L), row, depth + 1)) {
      lua_pop(L, 2);
      return 0;
    }
    w->depth--;
    lua_pop(L, 1);
  }
  PUT_LITERAL(w, "}");
  return schema ? has_required(w, idx, schema) : 1;
}

static const char *type_word(so_type type) {
  switch (type) {
    case SO_T_STRING: return "must be a string";
    case SO_T_STRING_ARRAY: return "must be an array of strings";
    case SO_T_CUSTOM_FIELDS: return "must be an array of custom field tables";
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

static int copy_table(walk *w, int idx, const so_field *row, int depth) {
  lua_State *L = w->L;
  so_type type = row ? row->type : SO_T_ANY;
  int arrays = type == SO_T_STRING_ARRAY || type == SO_T_CUSTOM_FIELDS;
  lua_Integer n;
  shape sh;
  if (depth > MAX_DEPTH) return fail(w, "is nested too deeply");
  if (on_path(w, lua_topointer(L, idx)))
    return fail(w, "contains a cycle (a table inside itself)");
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
    /* the row of the items: strings (of `values`), or objects (of
       `fields`) */
    so_field item = {NULL, SO_T_ANY, NULL, NULL, 0};
    if (type == SO_T_STRING_ARRAY) item.type = SO_T_STRING;
    if (type == SO_T_CUSTOM_FIELDS) item.type = SO_T_OBJECT;
    if (arrays) {
      item.fields = row->fields;
      item.values = row->values;
    }
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
    PUT_LITERAL(w, "null"); /* stackone.null: explicit JSON null */
    return 1;
  }
  if ((type == SO_T_STRING && t != LUA_TSTRING) ||
      (type == SO_T_NUMBER && t != LUA_TNUMBER) ||
      (type == SO_T_BOOLEAN && t != LUA_TBOOLEAN))
    return fail(w, type_word(type));
  if ((type == SO_T_STRING_ARRAY || type == SO_T_CUSTOM_FIELDS ||
       type == SO_T_OBJECT) && t != LUA_TTABLE)
    return fail(w, row->fields && type == SO_T_OBJECT ? "must be a table"
                                                      : type_word(type));
  switch (t) {
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) PUT_LITERAL(w, "true");
      else PUT_LITERAL(w, "false");
      return 1;
    case LUA_TNUMBER:
      return put_number(w, idx);
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      int plain;
      if (!utf8_ok((const unsigned char *)s, len, &plain))
        return fail(w, "is not valid UTF-8 text");
      if (row && row->values && !one_of(w, idx, row)) return 0;
      put_string(w, s, len, plain);
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

/* checks and encodes the body at `value`: pushes the JSON text and
   returns 1, or returns 0 with a message in err (nothing pushed) */
int so_json_encode_body(lua_State *L, int state, int value,
                        const so_field *schema, char *err, size_t errlen) {
  walk w;
  int ok;
  (void)state;
  value = lua_absindex(L, value);
  memset(&w, 0, sizeof(w));
  w.L = L;
  w.err = err;
  w.errlen = errlen;
  w.out = so_buf_push(L); /* a Lua error frees it */
  ok = copy_object(&w, value, schema, 0);
  if (ok && w.out->oom) {
    so_buf_free(w.out);
    luaL_error(L, "not enough memory");
  }
  if (ok) lua_pushlstring(L, w.out->data, w.out->len);
  so_buf_free(w.out);
  lua_remove(L, ok ? -2 : -1);
  return ok;
}
