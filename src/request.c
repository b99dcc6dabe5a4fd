/*
** request.c: what every request of a call shares, single or bulk: the
** per-call options, the account id and the header lines.
*/
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stackone.h"

static void check_options(lua_State *L, int opts, const so_request *r,
                          const char *const *extra) {
  const so_operation *op = r->op;
  static const char *const common[] = {
    "account_id", "timeout", "headers", "retry", NULL
  };
  const char *names[16];
  size_t count = 0, i;
  for (i = 0; common[i]; i++) names[count++] = common[i];
  for (i = 0; extra && extra[i] && count < 15; i++) names[count++] = extra[i];
  names[count] = NULL;
  lua_pushfstring(L, "crm.%s.%s%s", op->group, op->name, r->suffix);
  so_check_names(L, opts, names, lua_tostring(L, -1), "option");
  lua_pop(L, 1);
}

/* the merged header lines: client-wide, then the call's on top; pushes
   the table */
static int merge_headers(lua_State *L, const so_request *r, char *err,
                         size_t errlen) {
  int own = r->opts && so_rawfield(L, r->opts, "headers") != LUA_TNIL;
  if (r->opts) lua_pop(L, 1);
  if (!own) { /* the client's table as it is: it is only read */
    lua_getiuservalue(L, 1, SO_UV_HEADERS);
    return 1;
  }
  lua_newtable(L);
  lua_getiuservalue(L, 1, SO_UV_HEADERS);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  if (so_rawfield(L, r->opts, "headers") != LUA_TTABLE)
    so_raise(L, 2, "crm.%s.%s%s: option 'headers' must be a table",
             r->op->group, r->op->name, r->suffix);
  if (!so_collect_headers(L, lua_gettop(L), lua_gettop(L) - 1, err, errlen))
    return 0;
  lua_pop(L, 1);
  return 1;
}

static int has_header(lua_State *L, int merged, const char *lower) {
  int yes = lua_getfield(L, merged, lower) != LUA_TNIL;
  lua_pop(L, 1);
  return yes;
}

/* the request's header lines, from the strings at r's stack indexes;
   NULL when out of memory */
static struct curl_slist *header_list(lua_State *L, const so_client *c,
                                      int merged, int account_line,
                                      int accept, int content_type) {
  struct curl_slist *list = NULL, *t;
#define ADD(line) do { \
    if ((t = curl_slist_append(list, line)) == NULL) goto oom; \
    list = t; \
  } while (0)
  ADD(c->auth_header);
  ADD(lua_tostring(L, account_line));
  if (accept) ADD("Accept: application/json");
  if (content_type) ADD("Content-Type: application/json");
  ADD("Expect:");
  lua_pushnil(L);
  while (lua_next(L, merged)) {
    if ((t = curl_slist_append(list, lua_tostring(L, -1))) == NULL) {
      lua_pop(L, 2);
      goto oom;
    }
    list = t;
    lua_pop(L, 1);
  }
#undef ADD
  return list;
oom:
  curl_slist_free_all(list);
  return NULL;
}

/* reads the options at `opts` (0 when none) into r and builds the header
   lines (r->headers, which the caller must hand to a job or free).
   Returns 1, or pushes `nil, err` for bad content and returns 0. Raises
   on programmer errors. The client is at index 1. */
int so_request_setup(lua_State *L, so_client *c, so_request *r, int opts,
                     const char *const *extra_options) {
  char err[400];
  const char *account = NULL;
  size_t account_len = 0;
  int top = lua_gettop(L), merged;
  r->opts = opts;
  if (r->suffix == NULL) r->suffix = "";
  r->timeout_ms = c->timeout_ms;
  r->retry = c->retry;
  if (opts) {
    check_options(L, opts, r, extra_options);
    if (so_rawfield(L, opts, "timeout") != LUA_TNIL)
      r->timeout_ms = so_seconds_ms(L, -1, "call", "timeout");
    lua_pop(L, 1);
    if (so_rawfield(L, opts, "account_id") == LUA_TSTRING)
      account = lua_tolstring(L, -1, &account_len);
    else if (!lua_isnil(L, -1))
      so_raise(L, 2, "crm.%s.%s%s: option 'account_id' must be a string",
               r->op->group, r->op->name, r->suffix);
    lua_pop(L, 1); /* opts keeps it alive */
    if (so_rawfield(L, opts, "retry") != LUA_TNIL) {
      lua_pushfstring(L, "crm.%s.%s%s", r->op->group, r->op->name, r->suffix);
      so_read_retry(L, lua_gettop(L) - 1, &r->retry, lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (account == NULL) {
    account = c->account_id;
    account_len = account ? strlen(account) : 0;
  }
  if (account == NULL)
    return so_raise(L, 2, "crm.%s.%s%s: no account id (pass account_id to "
                    "stackone.new or in the call's options, or set "
                    "STACKONE_ACCOUNT_ID)", r->op->group, r->op->name,
                    r->suffix);
  if (*account == '\0' || !so_header_value_ok(account, account_len)) {
    so_push_invalid(L, r->op->method, r->op->path, "account_id is empty or "
                    "has CR, LF, NUL or another control character");
    return 0;
  }
  if (!merge_headers(L, r, err, sizeof(err))) {
    so_push_invalid(L, r->op->method, r->op->path, "%s", err);
    return 0;
  }
  merged = lua_gettop(L);
  lua_pushfstring(L, "x-account-id: %s", account);
  r->headers = header_list(L, c, merged, merged + 1,
                           !has_header(L, merged, "accept"),
                           r->op->body && !has_header(L, merged,
                                                      "content-type"));
  if (r->headers == NULL) return luaL_error(L, "not enough memory");
  lua_getiuservalue(L, 1, SO_UV_HOOKS);
  lua_getfield(L, -1, "debug");
  r->verbose = lua_isfunction(L, -1);
  lua_settop(L, top);
  return 1;
}
