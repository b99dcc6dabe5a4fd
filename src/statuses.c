/*
** statuses.c: what each HTTP status of a failed attempt means for trying
** again, for honouring Retry-After and for whether the server may have
** acted on the request: one table, read by retry.c, job.c and result.c,
** and exported as core.statuses for the reference.
*/
#include "stackone.h"

/* a scratch build may move one status (spec/policy_spec.lua) */
#ifndef SO_STATUS_408_RETRY
#define SO_STATUS_408_RETRY SO_RETRY_SAFE
#endif

/* the first row whose range holds the status counts */
static const so_status rows[] = {
  { .from = 408, .to = 408, .retry = SO_STATUS_408_RETRY, .retry_after = 1,
    .maybe_applied = 1, .doc = "The server gave up waiting for the request" },
  { .from = 429, .to = 429, .retry = SO_RETRY_ALWAYS, .retry_after = 1,
    .pause_all = 1, .doc = "Rate limited: the request was not processed" },
  { .from = 500, .to = 500, .retry = SO_RETRY_SAFE, .maybe_applied = 1,
    .doc = "The server failed, maybe after acting on the request" },
  { .from = 502, .to = 502, .retry = SO_RETRY_SAFE, .maybe_applied = 1,
    .doc = "A gateway got no good answer from the server" },
  { .from = 503, .to = 503, .retry = SO_RETRY_SAFE, .retry_after = 1,
    .maybe_applied = 1, .doc = "The server is unavailable for now" },
  { .from = 504, .to = 504, .retry = SO_RETRY_SAFE, .maybe_applied = 1,
    .doc = "A gateway timed out waiting for the server" },
  { .from = 500, .to = 999, .retry = SO_RETRY_NEVER, .maybe_applied = 1,
    .doc = "Any other server error: the server may have acted on it" },
  { .from = 0, .to = 0, .doc = NULL }
};

/* what any other status is: final, and the server did not act on it */
static const so_status other = { .from = 0, .to = 0, .doc = "" };

const so_status *so_status_of(long status) {
  const so_status *s;
  for (s = rows; s->doc; s++)
    if (status >= s->from && status <= s->to) return s;
  return &other;
}

/* core.statuses: { { from, to, retry = "always"|"safe"|"never",
   retry_after, pause_all, maybe_applied, doc }, ... } in lookup order */
void so_push_statuses(lua_State *L) {
  static const char *const retry_names[] = {"never", "safe", "always"};
  const so_status *s;
  int i = 0;
  lua_newtable(L);
  for (s = rows; s->doc; s++) {
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, s->from);
    lua_setfield(L, -2, "from");
    lua_pushinteger(L, s->to);
    lua_setfield(L, -2, "to");
    lua_pushstring(L, retry_names[s->retry]);
    lua_setfield(L, -2, "retry");
    lua_pushboolean(L, s->retry_after);
    lua_setfield(L, -2, "retry_after");
    lua_pushboolean(L, s->pause_all);
    lua_setfield(L, -2, "pause_all");
    lua_pushboolean(L, s->maybe_applied);
    lua_setfield(L, -2, "maybe_applied");
    lua_pushstring(L, s->doc);
    lua_setfield(L, -2, "doc");
    lua_rawseti(L, -2, ++i);
  }
}
