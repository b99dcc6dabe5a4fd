/*
** lockfile.c: a file held under an exclusive lock (flock), the one
** userdata behind a bulk call's journal (journal.c opens it) and the
** host store of the shared rate budget (limit.c opens it). Lua's io has
** no lock, no fsync and no positioned write, so this is the little both
** need: read or replace the whole content, append with one write, sync,
** cut a torn tail off. close, __close and __gc are one idempotent
** function; closing the descriptor lets go of the lock.
*/
#define _DEFAULT_SOURCE  /* flock, fsync, pread on glibc */
#define _DARWIN_C_SOURCE /* flock on macOS */
#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "stackone.h"

#define SO_LOCKFILE_MT "stackone.locked_file"

so_lockfile *so_lockfile_new(lua_State *L, const char *name) {
  so_lockfile *f = lua_newuserdatauv(L, sizeof(so_lockfile), 0);
  f->fd = -1;
  f->name = name;
  luaL_setmetatable(L, SO_LOCKFILE_MT);
  return f;
}

static void close_file(so_lockfile *f) {
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
}

int so_lockfile_lock(so_lockfile *f, int wait) {
  while (flock(f->fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
    if (errno != EINTR) {
      int err = errno;
      close_file(f);
      errno = err;
      return -1;
    }
  }
  return 0;
}

static so_lockfile *check_open(lua_State *L) {
  so_lockfile *f = luaL_checkudata(L, 1, SO_LOCKFILE_MT);
  if (f->fd < 0) luaL_error(L, "attempt to use a closed %s", f->name);
  return f;
}

/* nil, "cannot <what> the <file's name>: <strerror>" */
static int fail(lua_State *L, const char *what, const so_lockfile *f) {
  int err = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "cannot %s the %s: %s", what, f->name, strerror(err));
  return 2;
}

static int sync_fd(int fd) {
  int rc;
  do rc = fsync(fd);
  while (rc != 0 && errno == EINTR);
  return rc;
}

/* file:read() -> its whole content | nil, err */
static int lockfile_read(lua_State *L) {
  so_lockfile *f = check_open(L);
  luaL_Buffer b;
  char chunk[4096];
  off_t at = 0;
  luaL_buffinit(L, &b);
  for (;;) {
    ssize_t n = pread(f->fd, chunk, sizeof(chunk), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(L, "read", f);
    if (n == 0) break;
    luaL_addlstring(&b, chunk, (size_t)n);
    at += n;
  }
  luaL_pushresult(&b);
  return 1;
}

/* file:write(s) -> true | nil, err: s becomes its whole content */
static int lockfile_write(lua_State *L) {
  so_lockfile *f = check_open(L);
  size_t len, done = 0;
  const char *s = luaL_checklstring(L, 2, &len);
  while (done < len) {
    ssize_t n = pwrite(f->fd, s + done, len - done, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(L, "write", f);
    done += (size_t)n;
  }
  if (ftruncate(f->fd, (off_t)len) != 0) return fail(L, "write", f);
  lua_pushboolean(L, 1);
  return 1;
}

/* file:append(text, sync) -> true | nil, err: text in one write (a
   crash leaves whole lines, or a torn last one the reader drops); with
   sync, on disk before it returns. The file was opened for appending. */
static int lockfile_append(lua_State *L) {
  so_lockfile *f = check_open(L);
  size_t len, done = 0;
  const char *text = luaL_checklstring(L, 2, &len);
  int sync = lua_toboolean(L, 3);
  while (done < len) {
    ssize_t n = write(f->fd, text + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(L, "write", f);
    done += (size_t)n;
  }
  if (sync && sync_fd(f->fd) != 0) return fail(L, "sync", f);
  lua_pushboolean(L, 1);
  return 1;
}

/* file:sync() -> true | nil, err */
static int lockfile_sync(lua_State *L) {
  so_lockfile *f = check_open(L);
  if (sync_fd(f->fd) != 0) return fail(L, "sync", f);
  lua_pushboolean(L, 1);
  return 1;
}

/* file:cut(length) -> true | nil, err: drops what follows length (a
   line torn by a crash), so the next line does not run on from it */
static int lockfile_cut(lua_State *L) {
  so_lockfile *f = check_open(L);
  lua_Integer length = luaL_checkinteger(L, 2);
  luaL_argcheck(L, length >= 0, 2, "length must be >= 0");
  if (ftruncate(f->fd, (off_t)length) != 0 || sync_fd(f->fd) != 0)
    return fail(L, "cut the torn line off", f);
  lua_pushboolean(L, 1);
  return 1;
}

/* close, __gc and __close */
static int lockfile_close(lua_State *L) {
  close_file(luaL_checkudata(L, 1, SO_LOCKFILE_MT));
  return 0;
}

static int lockfile_tostring(lua_State *L) {
  so_lockfile *f = luaL_checkudata(L, 1, SO_LOCKFILE_MT);
  if (f->fd < 0) lua_pushfstring(L, SO_LOCKFILE_MT " (%s, closed)", f->name);
  else lua_pushfstring(L, SO_LOCKFILE_MT " (%s, %p)", f->name, (void *)f);
  return 1;
}

void so_lockfile_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"read", lockfile_read},
    {"write", lockfile_write},
    {"append", lockfile_append},
    {"sync", lockfile_sync},
    {"cut", lockfile_cut},
    {"close", lockfile_close},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", lockfile_close},
    {"__close", lockfile_close},
    {"__tostring", lockfile_tostring},
    {NULL, NULL}
  };
  luaL_newmetatable(L, SO_LOCKFILE_MT);
  luaL_setfuncs(L, meta, 0);
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
