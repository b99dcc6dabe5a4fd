/*
** embed.h: what both embedding examples (host.c, poll_host.c) need of a
** host: a counting allocator, fatal errors, protected calls with a
** traceback, package paths into the checkout. Each program defines
** EMBED_NAME (its name in messages) before including this.
*/
#ifndef EMBED_H
#define EMBED_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>

/* every allocation of a state goes through counting_alloc, so that the
   host can tell that lua_close gave back everything the state ever took */
typedef struct state_mem {
  size_t in_use, peak;
} state_mem;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs(EMBED_NAME ": ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  state_mem *m = (state_mem *)ud;
  void *p;
  if (ptr == NULL) osize = 0; /* then osize is a type tag, not a size */
  if (nsize == 0) {
    free(ptr);
    m->in_use -= osize;
    return NULL;
  }
  p = realloc(ptr, nsize);
  if (p != NULL) {
    m->in_use = m->in_use - osize + nsize;
    if (m->in_use > m->peak) m->peak = m->in_use;
  }
  return p;
}

/* message handler: error objects (stackone's have __tostring) as text,
   with a traceback */
static int traceback(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

/* calls the function under the nargs arguments on top of L's stack; a
   failure is fatal, reported as `what` */
static void protected_call(lua_State *L, int nargs, int nresults,
                           const char *what) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  if (lua_pcall(L, nargs, nresults, base) != LUA_OK)
    fail("%s: %s", what, lua_tostring(L, -1));
  lua_remove(L, base);
}

/* prepends dir/suffix to package[field] */
static void prepend_path(lua_State *L, const char *field, const char *dir,
                         const char *suffix) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, field);
  lua_pushfstring(L, suffix, dir, dir);
  lua_insert(L, -2);
  lua_concat(L, 2);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

#endif
