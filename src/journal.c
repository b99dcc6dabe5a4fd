/*
** journal.c: the file under a bulk call's journal, whose format the Lua
** layer owns (lua/stackone/journal.lua): opened for appending and locked
** against a second run (a locked file, lockfile.c, which appends, syncs
** and cuts); and the digest of a record's canonical text (64-bit
** FNV-1a).
*/
#define _DEFAULT_SOURCE /* fsync on glibc */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stackone.h"

/* nil, "<what> <path>: <strerror>" */
static int fail(lua_State *L, const char *what, const char *path, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
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
  so_lockfile *j = so_lockfile_new(L, "journal");
  int created = 1;
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
  if (so_lockfile_lock(j, 0) != 0) {
    int err = errno;
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

/* core.journal_open and core.digest in the module table on the top of
   the stack */
void so_journal_register(lua_State *L) {
  lua_pushcfunction(L, journal_open);
  lua_setfield(L, -2, "journal_open");
  lua_pushcfunction(L, digest);
  lua_setfield(L, -2, "digest");
}
