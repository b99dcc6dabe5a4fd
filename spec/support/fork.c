/*
** fork.c: a test-only module (support.fork) for spec/fork_spec.lua:
** fork(2), waitpid(2), _exit(2) and getpid(2) for every Lua the suite runs
** (Debian's lua-posix has no Lua 5.4 build). Built by `make spec-helpers`.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

int luaopen_support_fork(lua_State *L);

/* fork() -> 0 in the child, the child's pid in the parent */
static int l_fork(lua_State *L) {
  pid_t pid = fork();
  if (pid < 0) return luaL_error(L, "fork failed");
  lua_pushinteger(L, (lua_Integer)pid);
  return 1;
}

/* wait(pid, seconds) -> the child's exit code (128 + n when signal n
   ended it); a child still running after `seconds` is killed (SIGKILL):
   a test that hangs in the child fails instead */
static int l_wait(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1), got;
  double left = luaL_checknumber(L, 2);
  struct timespec tick = {0, 10 * 1000 * 1000};
  int status = 0;
  while ((got = waitpid(pid, &status, WNOHANG)) == 0 && left > 0) {
    nanosleep(&tick, NULL);
    left -= 0.01;
  }
  if (got == 0) kill(pid, SIGKILL);
  while (got <= 0 && (got = waitpid(pid, &status, 0)) < 0)
    if (errno != EINTR) return luaL_error(L, "waitpid failed");
  lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status)
                                       : 128 + WTERMSIG(status));
  return 1;
}

/* exit(code): ends the process at once: no atexit, no lua_close, no
   flush of the parent's buffered output */
static int l_exit(lua_State *L) {
  _exit((int)luaL_optinteger(L, 1, 0));
  return 0;
}

static int l_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

int luaopen_support_fork(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, l_fork);
  lua_setfield(L, -2, "fork");
  lua_pushcfunction(L, l_wait);
  lua_setfield(L, -2, "wait");
  lua_pushcfunction(L, l_exit);
  lua_setfield(L, -2, "exit");
  lua_pushcfunction(L, l_pid);
  lua_setfield(L, -2, "pid");
  return 1;
}
