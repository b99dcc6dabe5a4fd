/*
** buffer.c: a growable byte buffer in C memory. Response bodies and
** headers grow here while libcurl runs, where no Lua call may happen.
** A buffer filled between Lua calls (any of which may raise) is owned by
** a userdata on the stack, so that an error frees it.
*/
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

/* returns 0 when out of memory; the buffer is then left unchanged */
int so_buf_append(so_buf *b, const void *p, size_t n) {
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 1024;
    char *data;
    while (cap - b->len < n) {
      if (cap > (size_t)-1 / 2) return b->oom = 1, 0;
      cap *= 2;
    }
    data = realloc(b->data, cap);
    if (data == NULL) return b->oom = 1, 0;
    b->data = data;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

/* keeps the memory for the next request, unless it grew unusually big */
void so_buf_reset(so_buf *b) {
  if (b->cap > 1024 * 1024) so_buf_free(b);
  b->len = 0;
  b->oom = 0;
}

/* only the first n bytes stay; the memory of the rest goes back (kept
   as it is if the smaller block cannot be had) */
void so_buf_keep(so_buf *b, size_t n) {
  char *data;
  if (b->len > n) b->len = n;
  if (b->cap <= 2 * n + 1024) return;
  data = realloc(b->data, b->len ? b->len : 1);
  if (data == NULL) return;
  b->data = data;
  b->cap = b->len ? b->len : 1;
}

void so_buf_free(so_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}

static int buf_gc(lua_State *L) {
  so_buf_free(luaL_checkudata(L, 1, SO_BUF_MT));
  return 0;
}

/* pushes a userdata holding an empty buffer, freed by its __gc if the
   owner does not free it first (so_buf_free may be called early) */
so_buf *so_buf_push(lua_State *L) {
  so_buf *b = lua_newuserdatauv(L, sizeof(so_buf), 0);
  memset(b, 0, sizeof(*b));
  if (luaL_newmetatable(L, SO_BUF_MT)) {
    lua_pushcfunction(L, buf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}
