/*
** json.c: fuzzes the JSON layer of json.c. The first byte picks:
** - decode: so_json_decode on the rest of the input, as a response body;
**   the value, wrapped as { v = value }, then goes through the encoder;
** - encode: so_json_encode_body on a table built from the rest of the
**   input (any bytes as strings, numbers of every kind, stackone.null,
**   nested arrays and objects, marked empty arrays, cycles, functions),
**   without a schema, with the contact schema or with the custom field
**   one.
** Invariants: decoding pushes one value (no nulls left in objects, no
** integral floats left in tables) or a message; an accepted body is JSON
** that plain cjson decodes into a structure equal to the input, with only
** schema fields at the top; a refused one has a message; the Lua stack is
** balanced either way.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const char *const json_words[] = {
  "first_name", "last_name", "company_name", "emails", "phone_numbers",
  "deal_ids", "account_ids", "custom_fields", "passthrough", "id",
  "remote_id", "name", "value", "value_id", "remote_value_id", "", "a",
  "\xc3\xa9", "\xf0\x9f\x98\x80", "\xff", "\xff[]", "\xff" "1e999", "\"",
  "\\", "/", "\x01", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80",
  "null", "[]", "{}", "1", NULL
};

/* whether the input value at a and the decoded value at b are the same
   JSON (numbers as doubles, as cjson 2.1.0 decodes them) */
static int same(lua_State *L, int a, int b) {
  int ta = lua_type(L, a), tb = lua_type(L, b);
  luaL_checkstack(L, 4, "same");
  switch (ta) {
    case LUA_TNUMBER:
      return tb == LUA_TNUMBER &&
             (double)lua_tonumber(L, a) == (double)lua_tonumber(L, b);
    case LUA_TSTRING: case LUA_TBOOLEAN:
      return lua_rawequal(L, a, b);
    case LUA_TLIGHTUSERDATA:
      return tb == LUA_TLIGHTUSERDATA && lua_touserdata(L, a) == NULL &&
             lua_touserdata(L, b) == NULL;
    case LUA_TTABLE:
      return tb == LUA_TTABLE && fz_same_keys(L, a, b, same);
    default:
      return 0;
  }
}

/* a decoded response: no null left under a string key, and no float in
   a table that the integers could hold */
static void check_decoded(lua_State *L, int t, int depth) {
  if (depth > 1100) fz_fail("decoded value nested %d deep", depth);
  luaL_checkstack(L, 4, "check_decoded");
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int tv = lua_type(L, -1);
    if (tv == LUA_TLIGHTUSERDATA && lua_type(L, -2) == LUA_TSTRING)
      fz_fail("a null is left in a decoded object");
    if (tv == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Number n = lua_tonumber(L, -1);
      lua_Integer i;
      if (n == floor(n) && lua_numbertointeger(n, &i))
        fz_fail("the integral float %.17g is left in a decoded table", n);
    }
    if (tv == LUA_TTABLE) check_decoded(L, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
}

typedef struct json_case {
  const char *s;        /* decode: the text */
  size_t len;
  const so_field *schema; /* encode */
  char err[256];
  int ok, before, after;
} json_case;

static int run_decode(lua_State *L) {
  json_case *jc = lua_touserdata(L, 1);
  int entry = lua_gettop(L), state = fz_push_state(L);
  jc->before = lua_gettop(L);
  fz_guard_begin(L, entry);
  {
    /* the input as a response buffer; capacity 0: so_json_decode's
       trimming of a decoded body never reallocates memory not malloc's */
    so_buf text;
    text.data = (char *)jc->s;
    text.len = jc->len;
    text.cap = 0;
    text.oom = 0;
    jc->ok = so_json_decode(L, state, &text);
  }
  fz_guard_end();
  jc->after = lua_gettop(L);
  return 1;
}

/* argument 2 is the body; returns the JSON text or nothing */
static int run_encode(lua_State *L) {
  json_case *jc = lua_touserdata(L, 1);
  int entry = lua_gettop(L), state = fz_push_state(L);
  jc->err[0] = '\0';
  jc->before = lua_gettop(L);
  fz_guard_begin(L, entry);
  jc->ok = so_json_encode_body(L, state, 2, jc->schema, jc->err,
                               sizeof(jc->err));
  fz_guard_end();
  jc->after = lua_gettop(L);
  return jc->ok ? 1 : 0;
}

static int schema_field(const so_field *schema, const char *key, size_t len) {
  const so_field *f;
  for (f = schema; f->name; f++)
    if (strlen(f->name) == len && memcmp(f->name, key, len) == 0) return 1;
  return 0;
}

/* the keys of the object at t are all fields of schema */
static void check_keys(lua_State *L, int t, const so_field *schema) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    size_t len;
    const char *key = lua_tolstring(L, -2, &len);
    if (!schema_field(schema, key, len))
      fz_fail("the body went out with the field '%s' (%zu bytes), which the "
              "schema does not have", key, len);
    lua_pop(L, 1);
  }
}

/* encodes the table at idx; checks what comes out */
static void encode(lua_State *L, int idx, const so_field *schema) {
  json_case jc;
  int top = lua_gettop(L), out, state;
  jc.schema = schema;
  lua_pushcfunction(L, run_encode);
  lua_pushlightuserdata(L, &jc);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK)
    fz_fail("so_json_encode_body raised: %s", lua_tostring(L, -1));
  if (getenv("FUZZ_DEBUG"))
    fprintf(stderr, "body %s: %s\n", jc.ok ? "encoded" : "refused",
            jc.ok ? lua_tostring(L, -1) : jc.err);
  if (!jc.ok) {
    if (jc.after != jc.before)
      fz_fail("a refused body left the stack at %d, not %d", jc.after,
              jc.before);
    if (jc.err[0] == '\0') fz_fail("a body was refused without a message");
    lua_settop(L, top);
    return;
  }
  if (jc.after != jc.before + 1 || lua_type(L, -1) != LUA_TSTRING)
    fz_fail("an encoded body left the stack at %d, not %d + a string",
            jc.after, jc.before);
  out = lua_gettop(L);
  /* plain cjson reads the text back */
  state = fz_push_state(L);
  lua_rawgeti(L, state, SO_S_DECODE);
  lua_pushvalue(L, out);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    fz_fail("the encoded body '%s' is not JSON: %s", lua_tostring(L, out),
            lua_tostring(L, -1));
  if (!same(L, idx, lua_gettop(L)))
    fz_fail("the encoded body '%s' is not the table that was given",
            lua_tostring(L, out));
  if (schema) {
    int t = lua_gettop(L);
    check_keys(L, t, schema);
    if (schema != so_custom_field_fields) {
      lua_getfield(L, t, "custom_fields");
      if (lua_type(L, -1) == LUA_TTABLE) {
        lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
        for (i = 1; i <= n; i++) {
          lua_rawgeti(L, -1, i);
          if (lua_type(L, -1) == LUA_TTABLE)
            check_keys(L, lua_gettop(L), so_custom_field_fields);
          lua_pop(L, 1);
        }
      }
    }
  }
  lua_settop(L, top);
}

static void fuzz_decode(lua_State *L, const uint8_t *data, size_t size) {
  json_case jc;
  jc.s = (const char *)data;
  jc.len = size;
  fz_call(L, run_decode, &jc, 1, 0);
  if (jc.after != jc.before + 1)
    fz_fail("so_json_decode pushed %d values", jc.after - jc.before);
  if (getenv("FUZZ_DEBUG"))
    fprintf(stderr, "decode %s: %s\n", jc.ok ? "ok" : "refused",
            jc.ok ? luaL_typename(L, -1) : lua_tostring(L, -1));
  if (!jc.ok) {
    if (lua_type(L, -1) != LUA_TSTRING) fz_fail("no message from a decode");
    return;
  }
  if (lua_type(L, -1) == LUA_TTABLE) check_decoded(L, lua_gettop(L), 0);
  /* a decoded value as a field of a body */
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "v");
  encode(L, lua_gettop(L), NULL);
}

static void fuzz_encode(lua_State *L, const uint8_t *data, size_t size,
                        int which) {
  fz_reader r;
  fz_builder fb;
  const so_field *schema = which == 0 ? NULL
                           : which == 1 ? so_operations[0].body
                           : so_custom_field_fields;
  r.p = data;
  r.n = size;
  fb.L = L;
  fb.r = &r;
  fb.words = json_words;
  fb.max_depth = 70; /* past MAX_DEPTH */
  fb.nchain = 0;
  fz_push_object(&fb, 0);
  encode(L, lua_gettop(L), schema);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fz_lua();
  if (size == 0) return 0;
  switch (data[0] % 4) {
    case 0: fuzz_decode(L, data + 1, size - 1); break;
    default: fuzz_encode(L, data + 1, size - 1, data[0] % 4 - 1); break;
  }
  fz_reset(L);
  return 0;
}
