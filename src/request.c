/*
** request.c: what every request of a call shares, single or bulk: the
** per-call options, the account id, the header lines, the hooks (sleep,
** debug, rate limiter) and the decision to try again.
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
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    for (i = 0; key && i < count && strcmp(names[i], key); i++) {}
    if (key == NULL || i == count) {
      const char *near = key ? so_closest(key, names, count, sizeof(char *))
                             : NULL;
      so_raise(L, 2, "crm.%s.%s%s: unknown option '%s'%s%s%s", op->group,
               op->name, r->suffix, key ? key : luaL_typename(L, -2),
               near ? " (did you mean '" : "", near ? near : "",
               near ? "'?)" : "");
    }
    lua_pop(L, 1);
  }
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

/* reads the options at `opts` (0 when none) and prepares what every
   attempt needs on the stack. Returns 1, or pushes `nil, err` for bad
   content and returns 0. Raises on programmer errors. */
int so_request_setup(lua_State *L, so_client *c, so_request *r, int opts,
                     const char *const *extra_options) {
  char err[400];
  const char *account = NULL;
  size_t account_len = 0;
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
    if (so_rawfield(L, opts, "retry") != LUA_TNIL)
      so_read_retry(L, lua_gettop(L), &r->retry, "call");
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
  r->merged = lua_gettop(L);
  lua_pushfstring(L, "x-account-id: %s", account);
  r->account_line = lua_gettop(L);
  r->accept = !has_header(L, r->merged, "accept");
  r->content_type = r->op->body && !has_header(L, r->merged, "content-type");
  lua_getiuservalue(L, 1, SO_UV_HOOKS);
  r->hooks = lua_gettop(L);
  lua_getfield(L, r->hooks, "bucket");
  r->bucket = lua_touserdata(L, -1); /* kept alive by the hooks table */
  lua_pop(L, 1);
  lua_getfield(L, r->hooks, "debug");
  r->verbose = lua_isfunction(L, -1);
  lua_pop(L, 1);
  return 1;
}

/* the request's header lines; NULL when out of memory. Raises nothing:
   only reads strings the stack keeps alive */
struct curl_slist *so_header_list(lua_State *L, const so_client *c,
                                  const so_request *r) {
  struct curl_slist *list = NULL, *t;
#define ADD(line) do { \
    if ((t = curl_slist_append(list, line)) == NULL) goto oom; \
    list = t; \
  } while (0)
  ADD(c->auth_header);
  ADD(lua_tostring(L, r->account_line));
  if (r->accept) ADD("Accept: application/json");
  if (r->content_type) ADD("Content-Type: application/json");
  ADD("Expect:");
  lua_pushnil(L);
  while (lua_next(L, r->merged)) {
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

/* waits `seconds` with the client's sleep function, or blocks the thread.
   The sleep function may yield (a call from a coroutine, in a host with
   an event loop): the C function then goes on in `k` with `ctx` when the
   coroutine is resumed. An error it raises goes to the caller: nothing is
   held here. */
void so_wait(lua_State *L, const so_request *r, double seconds,
             lua_KContext ctx, lua_KFunction k) {
  if (lua_getfield(L, r->hooks, "sleep") == LUA_TFUNCTION) {
    lua_pushnumber(L, seconds);
    lua_callk(L, 1, 0, ctx, k);
  } else {
    lua_pop(L, 1);
    so_sleep(seconds);
  }
}

/* hands the redacted trace at `trace` to the debug function under
   lua_pcall: a failing debug function must not hide the outcome of a
   request (a created contact). The first error it raises is kept in
   user value `uv` of the userdata at `keep`, for so_attach_debug_error. */
void so_debug(lua_State *L, const so_request *r, int trace, int keep, int uv) {
  lua_getfield(L, r->hooks, "debug");
  lua_pushvalue(L, trace);
  if (lua_pcall(L, 1, 0, 0) == LUA_OK) return;
  if (lua_getiuservalue(L, keep, uv) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_setiuservalue(L, keep, uv);
  } else {
    lua_pop(L, 2);
  }
}

/* sets debug_error on the table at `target` when so_debug kept one */
void so_attach_debug_error(lua_State *L, int keep, int uv, int target) {
  target = lua_absindex(L, target);
  if (lua_getiuservalue(L, keep, uv) == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_setfield(L, target, "debug_error");
}

/* after an attempt: returns 1 with *delay set when it should be tried
   again, 0 when its outcome is final. Records Retry-After in k. */
int so_plan_retry(const so_request *r, so_call *k, const so_exchange *x,
                  CURLcode rc, long status, double *waited, uint64_t *rng,
                  double *delay) {
  long request_bytes = 0;
  size_t len;
  const char *ra;
  curl_easy_getinfo(x->curl, CURLINFO_REQUEST_SIZE, &request_bytes);
  ra = rc == CURLE_OK ? so_find_header(&x->head, "retry-after", &len) : NULL;
  k->has_retry_after = ra && so_parse_retry_after(ra, len, time(NULL),
                                                  &k->retry_after);
  if (rc == CURLE_OK && status >= 200 && status <= 299) return 0;
  if (k->attempts >= r->retry.max_attempts ||
      !so_retryable(r->op->method, rc, status, request_bytes, x->too_large,
                    &r->retry))
    return 0;
  if (k->has_retry_after && (status == 429 || status == 408 || status == 503)) {
    if (k->retry_after > r->retry.max_delay) return 0; /* not in an hour */
    *delay = k->retry_after;
  } else {
    *delay = so_backoff(&r->retry, k->attempts, rng);
  }
  if (*waited + *delay > r->retry.max_wait) return 0;
  *waited += *delay;
  return 1;
}
