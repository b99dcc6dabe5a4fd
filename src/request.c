/*
** request.c: what every request of a call shares, single or bulk: the
** per-call options, the account id and the header lines.
*/
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stackone.h"

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
  so_rawfield(L, r->opts, "headers"); /* a table: so_request_check saw it */
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

/* memset through a volatile pointer: a wipe before free() is not
   optimized away */
static void *(*volatile const wipe)(void *, int, size_t) = memset;

/* wipes every line (one holds the Authorization line) and frees the list */
void so_free_headers(struct curl_slist *list) {
  struct curl_slist *p;
  for (p = list; p; p = p->next) wipe(p->data, 0, strlen(p->data));
  curl_slist_free_all(list);
}

/* at the client's close, once its handles are gone */
void so_free_default_headers(so_client *c) {
  so_free_headers(c->default_headers[0]);
  so_free_headers(c->default_headers[1]);
  c->default_headers[0] = c->default_headers[1] = NULL;
}

/* appends a copy of line to r->headers; raises when out of memory (the
   lines so far stay in the list, which the job owns) */
static void add_line(lua_State *L, so_request *r, const char *line) {
  struct curl_slist *list = curl_slist_append(r->headers, line);
  if (list == NULL) luaL_error(L, "not enough memory");
  r->headers = list;
}

/* the Authorization line goes in as a blank line of its length, and is
   written into the list's own copy after: a failed append never leaves
   libcurl a copy of the key to free unwiped */
static void add_secret_line(lua_State *L, so_request *r, const char *line) {
  size_t len = strlen(line);
  char *blank = lua_newuserdatauv(L, len + 1, 0);
  struct curl_slist *last;
  memset(blank, 'x', len);
  blank[len] = '\0';
  add_line(L, r, blank);
  lua_pop(L, 1);
  for (last = r->headers; last->next; last = last->next) {}
  memcpy(last->data, line, len);
}

/* the request's header lines into r->headers, from the strings at the
   stack indexes given (account_line 0: none) */
static void header_list(lua_State *L, const so_client *c, so_request *r,
                        int merged, int account_line, int accept,
                        int content_type) {
  add_secret_line(L, r, c->auth_header);
  if (account_line) add_line(L, r, lua_tostring(L, account_line));
  if (accept) add_line(L, r, "Accept: application/json");
  if (content_type) add_line(L, r, "Content-Type: application/json");
  add_line(L, r, "Expect:");
  lua_pushnil(L);
  while (lua_next(L, merged)) {
    add_line(L, r, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

/* reads the options at `opts` (0 when none) into r, and those of `extra`
   rows (a bulk call's) into extra_into, whose functions stay on the
   stack; raises usage errors for options that are unknown or of the wrong
   type, or when no account id is known. The client is at index 1. */
void so_request_check(lua_State *L, so_client *c, so_request *r, int opts,
                      const so_option *extra, void *extra_into) {
  int top;
  r->opts = opts;
  r->timeout_ms = c->timeout_ms;
  r->retry = c->retry;
  r->account = NULL;
  if (opts) {
    so_check_option_names(L, opts, so_call_rows, extra, NULL);
    if (extra) so_read_rows(L, opts, extra, extra_into, NULL);
    top = lua_gettop(L);
    so_read_rows(L, opts, so_call_rows, r, NULL);
    if (r->account) { /* its length: so_request_setup refuses a NUL */
      so_rawfield(L, opts, "account_id");
      lua_tolstring(L, -1, &r->account_len);
    }
    lua_settop(L, top); /* opts keeps the account id alive */
  }
  if (!r->op->api->account) { /* the platform API: no account */
    if (r->account)
      so_usage(L, 0, "option 'account_id' does not apply: the %s API takes "
               "no x-account-id", r->op->api->name);
    return;
  }
  if (r->account == NULL && c->account_id) {
    r->account = c->account_id;
    r->account_len = strlen(c->account_id);
  }
  if (r->account == NULL)
    so_usage(L, 0, "no account id (pass account_id to stackone.new or in "
             "the call's options, or set STACKONE_ACCOUNT_ID)");
}

/* builds the header lines of the request so_request_check read, into
   r->headers: r is a job's (so_job_request), so that the job frees them
   whatever happens, unless they are the client's default_headers
   (r->borrowed), which the client frees. Returns 1, or pushes `nil, err`
   for bad content and returns 0. */
int so_request_setup(lua_State *L, so_client *c, so_request *r) {
  char err[400];
  int top = lua_gettop(L), merged, body = r->op->body != NULL;
  /* the client's own lines (checked at stackone.new) unless the call has
     headers or an account id of its own */
  int defaults = r->account == c->account_id &&
                 !(r->opts && so_rawfield(L, r->opts, "headers") != LUA_TNIL);
  lua_settop(L, top);
  r->verbose = c->has_debug;
  if (defaults && c->default_headers[body]) {
    r->headers = c->default_headers[body];
    r->borrowed = 1;
    return 1;
  }
  if (r->account && (*r->account == '\0' ||
                     !so_header_value_ok(r->account, r->account_len))) {
    so_push_invalid(L, r->op->method, r->op->path, "account_id is empty or "
                    "has CR, LF, NUL or another control character");
    return 0;
  }
  if (!merge_headers(L, r, err, sizeof(err))) {
    so_push_invalid(L, r->op->method, r->op->path, "%s", err);
    return 0;
  }
  merged = lua_gettop(L);
  if (r->account) lua_pushfstring(L, "x-account-id: %s", r->account);
  header_list(L, c, r, merged, r->account ? merged + 1 : 0,
              !has_header(L, merged, "accept"),
              body && !has_header(L, merged, "content-type"));
  lua_settop(L, top);
  if (defaults) { /* the client keeps them for its next calls */
    c->default_headers[body] = r->headers;
    r->borrowed = 1;
  }
  return 1;
}
