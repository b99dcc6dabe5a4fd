/*
** journal.c: the file under a bulk call's journal, whose format the Lua
** layer owns (lua/stackone/journal.lua). Lua's io has no fsync and no
** lock, so this is the little a journal needs of the system: a file
** opened for appending and locked against a second run, lines appended
** with one write each, synced when the caller says so (the intents,
** before anything is sent), a torn tail cut off; and the digest of a
** record's canonical text (64-bit FNV-1a).
*/
#define _DEFAULT_SOURCE  /* flock, fsync on glibc */
#define _DARWIN_C_SOURCE /* flock on macOS */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stackone.h"

#define SO_JOURNAL_MT "stackone.journal"

typedef struct so_journal {
  int fd; /* -1 once closed */
} so_journal;

static so_journal *check_journal(lua_State *L) {
  so_journal *j = luaL_checkudata(L, 1, SO_JOURNAL_MT);
  if (j->fd < 0) luaL_error(L, "attempt to use a closed stackone journal");
  return j;
}

/* nil, "<what>[ <path>]: <strerror>" */
static int fail(lua_State *L, const char *what, const char *path, int err) {
  lua_pushnil(L);
  if (path) lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
  else lua_pushfstring(L, "%s: %s", what, strerror(err));
  return 2;
}

/* fsync of the directory holding path: a new file's name is durable */
static int sync_directory(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  int fd, rc;
  if (slash == NULL) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof(dir)) return 0;
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  fd = open(dir, O_RDONLY);
  if (fd < 0) return -1;
  rc = fsync(fd);
  close(fd);
  return rc;
}

/* core.journal_open(path) -> journal | nil, message: opened for
   appending (created 0600 when missing: it names the records of an
   import), and locked: one run at a time writes a journal */
static int journal_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  so_journal *j = lua_newuserdata(L, sizeof(so_journal));
  int created = 1;
  j->fd = -1;
  luaL_setmetatable(L, SO_JOURNAL_MT);
  do j->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL, 0600);
  while (j->fd < 0 && errno == EINTR);
  if (j->fd < 0 && errno == EEXIST) {
    created = 0;
    do j->fd = open(path, O_WRONLY | O_APPEND);
    while (j->fd < 0 && errno == EINTR);
  }
  if (j->fd < 0) return fail(L, "cannot open the journal", path, errno);
  (void)fcntl(j->fd, F_SETFD, FD_CLOEXEC);
  { /* a device or a pipe would never read as a journal, nor end */
    struct stat st;
    if (fstat(j->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(j->fd);
      j->fd = -1;
      lua_pushnil(L);
      lua_pushfstring(L, "the journal %s is not a regular file", path);
      return 2;
    }
  }
  if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(j->fd);
    j->fd = -1;
    if (err == EWOULDBLOCK) {
      lua_pushnil(L);
      lua_pushfstring(L, "the journal %s is in use by another run", path);
      return 2;
    }
    return fail(L, "cannot lock the journal", path, err);
  }
  if (created && sync_directory(path) != 0) {
    int err = errno;
    close(j->fd);
    j->fd = -1;
    return fail(L, "cannot sync the directory of the journal", path, err);
  }
  return 1;
}

static int sync_fd(int fd) {
  int rc;
  do rc = fsync(fd);
  while (rc != 0 && errno == EINTR);
  return rc;
}

/* journal:append(text, sync) -> true | nil, message: text in one write
   (a crash leaves whole lines, or a torn last one the reader drops);
   with sync, on disk before it returns */
static int journal_append(lua_State *L) {
  so_journal *j = check_journal(L);
  size_t len, done = 0;
  const char *text = luaL_checklstring(L, 2, &len);
  int sync = lua_toboolean(L, 3);
  while (done < len) {
    ssize_t n = write(j->fd, text + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(L, "cannot write the journal", NULL, errno);
    done += (size_t)n;
  }
  if (sync && sync_fd(j->fd) != 0)
    return fail(L, "cannot sync the journal", NULL, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* journal:sync() -> true | nil, message */
static int journal_sync(lua_State *L) {
  so_journal *j = check_journal(L);
  if (sync_fd(j->fd) != 0) return fail(L, "cannot sync the journal", NULL, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* journal:cut(length) -> true | nil, message: drops what follows the
   last whole line (a line torn by a crash), so the next line does not
   run on from it */
static int journal_cut(lua_State *L) {
  so_journal *j = check_journal(L);
  lua_Integer length = luaL_checkinteger(L, 2);
  luaL_argcheck(L, length >= 0, 2, "length must be >= 0");
  if (ftruncate(j->fd, (off_t)length) != 0 || sync_fd(j->fd) != 0)
    return fail(L, "cannot cut the torn line off the journal", NULL, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* close, __gc and __close: one idempotent function (the lock goes with
   the descriptor) */
static int journal_close(lua_State *L) {
  so_journal *j = luaL_checkudata(L, 1, SO_JOURNAL_MT);
  if (j->fd >= 0) {
    close(j->fd);
    j->fd = -1;
  }
  return 0;
}

static int journal_tostring(lua_State *L) {
  so_journal *j = luaL_checkudata(L, 1, SO_JOURNAL_MT);
  if (j->fd < 0) lua_pushliteral(L, "stackone.journal (closed)");
  else lua_pushfstring(L, "stackone.journal (%p)", (void *)j);
  return 1;
}

/* core.digest(text) -> "fnv1a64:<16 hex digits>": a record's identity in
   its journal, from its canonical text. Not a secret and not a defence
   against forgery: it tells the records of one input from another's */
static int digest(lua_State *L) {
  size_t len, k;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
  uint64_t h = UINT64_C(14695981039346656037);
  char out[32];
  for (k = 0; k < len; k++) {
    h ^= s[k];
    h *= UINT64_C(1099511628211);
  }
  snprintf(out, sizeof(out), "fnv1a64:%08lx%08lx", (unsigned long)(h >> 32),
           (unsigned long)(h & 0xffffffffu));
  lua_pushstring(L, out);
  return 1;
}

/* the journal's metatable, and core.journal_open and core.digest in the
   module table on the top of the stack */
void so_journal_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"append", journal_append},
    {"sync", journal_sync},
    {"cut", journal_cut},
    {"close", journal_close},
    {NULL, NULL}
  };
  luaL_newmetatable(L, SO_JOURNAL_MT);
  lua_pushcfunction(L, journal_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, journal_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, journal_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlibtable(L, methods);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, journal_open);
  lua_setfield(L, -2, "journal_open");
  lua_pushcfunction(L, digest);
  lua_setfield(L, -2, "digest");
}
