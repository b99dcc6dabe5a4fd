/*
** json_pieces.c: a large body decoded piece by piece, so that it is
** never held whole beside its value. A structural scanner (strings,
** brackets; it decodes nothing) walks the top-level value: the name and
** the value of each member of a top-level object are decoded each as a
** one-element array, and the elements of a top-level array, or of an
** array member, in batches of about SO_PIECES_BATCH as [e1,e2,...]. Every piece goes through
** lua-cjson's decode with the big-integer marks and the clean-up of
** json.c, so the value is the one a decode of the whole text gives, and a
** text cjson refuses is refused: between pieces the scanner checks only
** what cjson would (',', ':', the brackets, the depth limit, the end).
** Each block of the body goes back as soon as its pieces are decoded.
*/
#include <string.h>

#include "stackone.h"

#ifndef SO_PIECES_BATCH /* the fuzz build makes it tiny */
#define SO_PIECES_BATCH (64 * 1024)
#endif
#define GC_EVERY (1024 * 1024) /* bytes decoded between two GC steps */
#define MAX_DEPTH 1000         /* lua-cjson's decode_max_depth */
#define NONE (-2)

/* a place in the body: in the first buffer (blk NULL) or in a block */
typedef struct cursor {
  const char *p, *end;
  so_chunk *blk;
  size_t at; /* bytes before p in the body */
} cursor;

typedef struct pieces {
  lua_State *L;
  so_buf *first;
  so_chunks *rest;
  so_buf *text, *marked; /* a piece's text, and the same with marks */
  int decode;            /* stack index of cjson's decode */
  int has_mark;          /* the body holds byte 0xFF */
  size_t since_gc;
} pieces;

/* the start of the body */
static void rewind_to_start(pieces *d, cursor *c) {
  memset(c, 0, sizeof(*c));
  c->p = d->first->data ? d->first->data : "";
  c->end = c->p + d->first->len;
}

/* the next byte, or -1 at the end of the body */
static int next(pieces *d, cursor *c) {
  while (c->p == c->end) {
    so_chunk *b = c->blk ? c->blk->next : d->rest->head;
    if (b == NULL) return -1;
    c->blk = b;
    c->p = b->data;
    c->end = b->data + b->len;
  }
  c->at++;
  return (unsigned char)*c->p++;
}

static int is_space(int ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int next_token(pieces *d, cursor *c) {
  int ch;
  while (is_space(ch = next(d, c))) {}
  return ch;
}

/* the place of the byte just read */
static cursor before(const cursor *c) {
  cursor b = *c;
  b.p--;
  b.at--;
  return b;
}

/* past the string whose opening quote was just read; 0 if it never ends.
   Most of a body is text: the block is searched without next() */
static int skip_string(pieces *d, cursor *c) {
  for (;;) {
    const char *p = c->p;
    while (p < c->end && *p != '"' && *p != '\\') p++;
    c->at += (size_t)(p - c->p);
    c->p = p;
    switch (next(d, c)) {
      case -1: return 0;
      case '"': return 1;
      case '\\': if (next(d, c) < 0) return 0; break;
      default: break; /* the block ended: on in the next one */
    }
  }
}

/* reads on to the ',', ']' or '}' that ends a value, outside strings and
   brackets (ch, unless NONE, is its first byte, already read): returns
   that byte, or -1 if the text ends first or has a NUL outside a string
   (cjson's end of text). *deepest: how deep its brackets nest; *seen:
   whether it holds more than white space */
static int to_delimiter(pieces *d, cursor *c, int ch, int *deepest,
                        int *seen) {
  int depth = 0;
  *deepest = *seen = 0;
  if (ch == NONE) ch = next(d, c);
  for (;; ch = next(d, c)) {
    switch (ch) {
      case -1: case 0:
        return -1;
      case ' ': case '\t': case '\n': case '\r':
        break;
      case '"':
        *seen = 1;
        if (!skip_string(d, c)) return -1;
        break;
      case '[': case '{':
        *seen = 1;
        if (++depth > *deepest) *deepest = depth;
        break;
      case ']': case '}':
        if (depth == 0) return ch;
        depth--;
        break;
      case ',':
        if (depth == 0) return ch;
        break;
      default:
        *seen = 1;
    }
  }
}

/* appends the body's bytes from a to b to the piece text */
static void add_text(pieces *d, cursor a, const cursor *b) {
  while (a.blk != b->blk) {
    so_buf_append(d->text, a.p, (size_t)(a.end - a.p));
    a.blk = a.blk ? a.blk->next : d->rest->head;
    a.p = a.blk->data;
    a.end = a.blk->data + a.blk->len;
  }
  so_buf_append(d->text, a.p, (size_t)(b->p - a.p));
}

/* every piece before c is decoded: the blocks before its own go back */
static void release(pieces *d, const cursor *c) {
  if (c->blk == NULL) return;
  so_buf_keep(d->first, 1024); /* what an error quotes of the body */
  while (d->rest->head != c->blk) so_chunks_drop_head(d->rest);
}

static int refuse(lua_State *L) {
  lua_pushliteral(L, "the body is not JSON");
  return 0;
}

/* decodes the piece text, a JSON array of n values: pushes the table and
   returns 1, or pushes a message and returns 0 */
static int decode_text(pieces *d, int n) {
  lua_State *L = d->L;
  so_buf *s = d->text;
  int seen, big, status;
  if (s->oom) luaL_error(L, "not enough memory");
  big = so_json_mark_big_integers(s->data, s->len, NULL, &seen);
  if (big > 0 && d->has_mark) big = -1; /* marks could not be told apart */
  if (big < 0) {
    lua_pushliteral(L, "the body is not UTF-8 JSON");
    return 0;
  }
  lua_pushvalue(L, d->decode);
  if (big) {
    so_buf_reset(d->marked);
    so_json_mark_big_integers(s->data, s->len, d->marked, &seen);
    if (d->marked->oom) luaL_error(L, "not enough memory");
    lua_pushlstring(L, d->marked->data, d->marked->len);
  } else {
    lua_pushlstring(L, s->data, s->len);
  }
  status = lua_pcall(L, 1, 1, 0);
  if (status == LUA_ERRMEM) lua_error(L); /* not the body's fault */
  if (status != LUA_OK) return 0;
  if ((int)lua_rawlen(L, -1) != n) { /* the scanner and cjson disagree */
    lua_pop(L, 1);
    lua_pushliteral(L, "the body is not JSON");
    return 0;
  }
#if LUA_VERSION_NUM >= 503
  if (seen & SO_SEEN_NUMBER) seen |= SO_SEEN_NULL;
#endif
  if (big || (seen & SO_SEEN_NULL)) so_json_clean(L, -1, big);
  /* the piece strings are garbage at once: collect as they come, so the
     garbage stays small beside the value */
  d->since_gc += s->len;
  if (d->since_gc >= GC_EVERY) {
    d->since_gc = 0;
    /* a collector the host stopped stays stopped: Lua 5.1 cannot say
       whether it runs, and a step there would set it going again */
#ifdef LUA_GCISRUNNING
    if (lua_gc(L, LUA_GCISRUNNING, 0)) lua_gc(L, LUA_GCSTEP, 0);
#endif
  }
  return 1;
}

/* the elements of the array whose '[' was just read, into the table at
   the top; extra: the levels of brackets around the array (cjson's depth
   limit counts them, its batches do not). 1, or 0 with a message */
static int array_items(pieces *d, cursor *c, int extra) {
  lua_State *L = d->L;
  int into = lua_gettop(L), items = 0, count = 0, i;
  cursor start = *c;
  for (;;) {
    int deepest, seen, ch = to_delimiter(d, c, NONE, &deepest, &seen);
    if (ch != ',' && ch != ']') return refuse(L);
    if (extra + 1 + deepest > MAX_DEPTH) return refuse(L);
    if (!seen) {
      if (ch == ']' && count + items == 0) return 1; /* [] */
      return refuse(L);                              /* [1,] [,1] */
    }
    items++;
    if (ch == ']' || c->at - start.at >= SO_PIECES_BATCH) {
      cursor end = before(c);
      so_buf_reset(d->text);
      so_buf_append(d->text, "[", 1);
      add_text(d, start, &end);
      so_buf_append(d->text, "]", 1);
      if (!decode_text(d, items)) return 0;
      for (i = 1; i <= items; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, into, count + i);
      }
      lua_pop(L, 1);
      count += items;
      items = 0;
      start = *c;
      release(d, &start);
      if (ch == ']') return 1;
    }
  }
}

/* pushes the member name whose first byte ch was just read and returns
   1, or pushes a message and returns 0. A name is a string, or a big
   integer: the whole text's marks (bigint.c) make that a string too,
   which json.c's clean-up leaves as it is (it unmarks only values) */
static int push_key(pieces *d, cursor *c, int ch) {
  lua_State *L = d->L;
  cursor key = before(c), end;
  int seen;
  so_buf_reset(d->text);
  if (ch == '"') {
    if (!skip_string(d, c)) return refuse(L);
    end = *c;
    so_buf_append(d->text, "[", 1);
    add_text(d, key, &end);
    so_buf_append(d->text, "]", 1);
    if (!decode_text(d, 1)) return 0;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
    return 1;
  }
  if (ch != '-' && !(ch >= '0' && ch <= '9')) return refuse(L);
  so_buf_append(d->text, "\xFF", 1);
  do {
    char byte = (char)ch;
    so_buf_append(d->text, &byte, 1);
  } while ((ch = next(d, c)) >= 0 && strchr("0123456789.eE+-", ch) && ch);
  if (ch >= 0) *c = before(c); /* not the number's */
  if (d->text->oom) luaL_error(L, "not enough memory");
  if (d->has_mark || so_json_mark_big_integers(d->text->data + 1,
                                               d->text->len - 1, NULL,
                                               &seen) != 1)
    return refuse(L);
  lua_pushlstring(L, d->text->data, d->text->len);
  return 1;
}

/* the members of the object whose '{' was just read, into the table at
   the top, each in text order (a repeated name's last value wins). 1,
   or 0 with a message */
static int object_members(pieces *d, cursor *c) {
  lua_State *L = d->L;
  int into = lua_gettop(L), ch = next_token(d, c);
  if (ch == '}') return 1;
  for (;;) {
    if (!push_key(d, c, ch)) return 0;
    if (next_token(d, c) != ':') return refuse(L);
    ch = next_token(d, c);
    if (ch == '[') { /* the elements in batches */
      lua_newtable(L);
      release(d, c);
      if (!array_items(d, c, 1)) return 0;
      ch = next_token(d, c);
    } else { /* [value] */
      cursor value = before(c), end;
      int deepest, seen;
      ch = to_delimiter(d, c, ch, &deepest, &seen);
      if (ch != ',' && ch != '}') return refuse(L);
      end = before(c);
      so_buf_reset(d->text);
      so_buf_append(d->text, "[", 1);
      add_text(d, value, &end);
      so_buf_append(d->text, "]", 1);
      if (!decode_text(d, 1)) return 0;
      if (lua_rawgeti(L, -1, 1) == LUA_TLIGHTUSERDATA &&
          lua_touserdata(L, -1) == NULL) {
        lua_pop(L, 1); /* a null: the field is absent, as after json.c's */
        lua_pushnil(L);
      }
      lua_remove(L, -2);
      release(d, c);
    }
    lua_rawset(L, into);
    if (ch == '}') return 1;
    if (ch != ',') return refuse(L);
    ch = next_token(d, c);
  }
}

/* the whole text in one piece, through json.c's decode (a top-level
   value that is neither an object nor an array) */
static int decode_whole(pieces *d, int state) {
  cursor a, b;
  rewind_to_start(d, &a);
  b = a;
  while (next(d, &b) >= 0) {}
  so_buf_reset(d->text);
  add_text(d, a, &b);
  if (d->text->oom) luaL_error(d->L, "not enough memory");
  so_chunks_free(d->rest);
  return so_json_decode(d->L, state, d->text);
}

/* after the top-level value: only white space, up to the end or a NUL
   (cjson's end of text). What follows a NUL is not decoded, but the
   whole text's scan for big integers reads it too: one there, in a body
   holding byte 0xFF, makes the text refused (so_json_decode) */
static int end_of_text(pieces *d, cursor *c) {
  int ch = next_token(d, c), seen;
  cursor at, end;
  if (ch != 0) return ch < 0;
  if (!d->has_mark) return 1;
  at = before(c);
  end = *c;
  while (next(d, &end) >= 0) {}
  so_buf_reset(d->text);
  add_text(d, at, &end);
  if (d->text->oom) luaL_error(d->L, "not enough memory");
  return so_json_mark_big_integers(d->text->data, d->text->len, NULL,
                                   &seen) == 0;
}

static int has_byte(const so_buf *first, const so_chunks *rest, int byte) {
  const so_chunk *b;
  if (first->len && memchr(first->data, byte, first->len)) return 1;
  for (b = rest->head; b; b = b->next)
    if (memchr(b->data, byte, b->len)) return 1;
  return 0;
}

/* decodes the body in first and rest, giving rest's blocks back (and
   keeping only first's first KiB) as it goes: pushes the value and returns
   1, or pushes a message and returns 0, as so_json_decode */
int so_json_decode_pieces(lua_State *L, int state, so_buf *first,
                          so_chunks *rest) {
  int top = lua_gettop(L), ok, ch;
  pieces d;
  cursor c;
  state = lua_absindex(L, state);
  memset(&d, 0, sizeof(d));
  d.L = L;
  d.first = first;
  d.rest = rest;
  lua_rawgeti(L, state, SO_S_DECODE);
  d.decode = lua_gettop(L);
  d.text = so_buf_push(L); /* a Lua error frees them */
  d.marked = so_buf_push(L);
  d.has_mark = has_byte(first, rest, 0xFF);
  rewind_to_start(&d, &c);
  /* cjson's test for UTF-16 and UTF-32 text */
  if (first->len + rest->len >= 2 && (next(&d, &c) == 0 || next(&d, &c) == 0)) {
    lua_pushliteral(L, "the body is not UTF-8 JSON");
    ok = 0;
  } else {
    rewind_to_start(&d, &c);
    ch = next_token(&d, &c);
    if (ch == '{' || ch == '[') {
      lua_newtable(L);
      ok = ch == '{' ? object_members(&d, &c) : array_items(&d, &c, 0);
      if (ok && !end_of_text(&d, &c)) {
        lua_pushliteral(L, "the body is not JSON");
        ok = 0;
      }
    } else {
      ok = decode_whole(&d, state);
    }
  }
  so_buf_free(d.text);
  so_buf_free(d.marked);
  so_chunks_free(rest);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  so_buf_keep(first, 1024);
  return ok;
}
