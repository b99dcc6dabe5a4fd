/*
** start.c: client:_start(op, ...) and client:_start_many(op, items,
** opts): one call's arguments checked, its URLs and bodies built, and a
** job made for the engine (job.c). Nothing is sent here. Also the two
** entry points of a host loop: _io_changes and _io_action.
*/
#include <stdio.h>
#include <string.h>

#include "stackone.h"

/* a usage error "bad argument #n (<what> expected, got <type>)" */
static int arg_error(lua_State *L, int n, const char *what, int idx) {
  return so_usage(L, n, "%s expected, got %s", what, luaL_typename(L, idx));
}

static const so_operation *check_operation(lua_State *L) {
  lua_Integer index = luaL_checkinteger(L, 2);
  luaL_argcheck(L, index >= 1 && (size_t)index <= so_operation_count, 2,
                "unknown operation");
  return &so_operations[index - 1];
}

/* the open client at index 1; a closed one is a usage error */
static so_client *open_client(lua_State *L) {
  so_client *c = luaL_checkudata(L, 1, SO_CLIENT_MT);
  if (c->closed) so_usage(L, 0, "attempt to use a closed stackone client");
  so_engine_own(&c->eng); /* a call's start notices a fork */
  return c;
}

/* the stack indexes of one call's arguments, from its shape; 0 for none
   given (nil) or not in the shape */
typedef struct call_args {
  int id, fields, query, opts;
} call_args;

/* checks the types of the arguments after the operation's index and the
   call's options (usage errors); nothing is built */
static void check_call(lua_State *L, so_client *c, const so_operation *op,
                       call_args *a, so_request *r) {
  const so_arg *arg = so_shapes[op->kind].args;
  int n;
  memset(a, 0, sizeof(*a));
  for (n = 0; arg[n] != SO_ARG_END; n++) {}
  lua_settop(L, 2 + n);
  for (n = 0; arg[n] != SO_ARG_END; n++) {
    int idx = 3 + n;
    switch (arg[n]) {
      case SO_ARG_ID:
        if (lua_type(L, idx) != LUA_TSTRING)
          arg_error(L, n + 1, "string id", idx);
        a->id = idx;
        break;
      case SO_ARG_FIELDS:
        if (!lua_istable(L, idx)) arg_error(L, n + 1, "table of fields", idx);
        a->fields = idx;
        break;
      case SO_ARG_QUERY:
        if (!lua_isnil(L, idx) && !lua_istable(L, idx))
          arg_error(L, n + 1, "table of query parameters", idx);
        if (!lua_isnil(L, idx)) a->query = idx;
        break;
      case SO_ARG_OPTIONS:
        if (!lua_isnil(L, idx) && !lua_istable(L, idx))
          arg_error(L, n + 1, "table of options", idx);
        if (!lua_isnil(L, idx)) a->opts = idx;
        break;
      case SO_ARG_END:
        break;
    }
  }
  memset(r, 0, sizeof(*r));
  r->op = op;
  so_request_check(L, c, r, a->opts, NULL, NULL);
}

/* client:_check(op_index, ...): the checks of _start that do not read
   the content (usage errors only). The Lua layer calls it before it
   fetches anything for the call (custom field definitions). */
int so_client_check(lua_State *L) {
  so_client *c = open_client(L);
  call_args a;
  so_request r;
  check_call(L, c, check_operation(L), &a, &r);
  return 0;
}

/* builds the URL and pushes it; 0 with err set on bad input. The query
   is read through Lua calls, which may raise: the buffer is a userdata's */
static int so_push_url(lua_State *L, so_client *c, const so_operation *op, int id,
                int query, char *err, size_t errlen) {
  so_buf *url;
  int box, ok;
  if (!id && !query && strchr(op->path, '{') == NULL) {
    /* the same URL every time: the client keeps it (it is at index 1) */
    lua_getiuservalue(L, 1, SO_UV_URLS);
    lua_pushlightuserdata(L, (void *)op);
    if (lua_rawget(L, -2) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushlightuserdata(L, (void *)op);
      lua_pushstring(L, c->base_url);
      lua_pushstring(L, op->path);
      lua_concat(L, 2);
      lua_pushvalue(L, -1);
      lua_insert(L, -3);
      lua_rawset(L, -4);
    }
    lua_remove(L, -2);
    return 1;
  }
  url = so_buf_push(L);
  box = lua_gettop(L);
  so_buf_append(url, c->base_url, strlen(c->base_url));
  ok = so_add_path(url, op->path, id ? lua_tostring(L, id) : NULL,
                   id ? lua_rawlen(L, id) : 0, err, errlen) &&
       (!query || so_add_query(L, url, query, op, err, errlen));
  if (ok && url->oom) luaL_error(L, "not enough memory");
  if (ok) lua_pushlstring(L, url->data, url->len);
  so_buf_free(url);
  lua_remove(L, box);
  return ok;
}

/* encodes the body at idx and pushes it; 0 with err set on bad content */
static int so_push_body(lua_State *L, const so_operation *op, int idx, char *err,
                 size_t errlen) {
  size_t len;
  if (!so_json_encode_body(L, SO_STATE, idx, op->body, err, errlen)) return 0;
  len = lua_rawlen(L, -1);
  if (len > SO_MAX_REQUEST_BYTES) {
    lua_pop(L, 1);
    snprintf(err, errlen, "the body is %lu bytes of JSON; at most %lu may be "
             "sent", (unsigned long)len, (unsigned long)SO_MAX_REQUEST_BYTES);
    return 0;
  }
  return 1;
}

/* client:_start(op_index, ...) -> job | nil, err; the arguments are those
   of the operation's shape */
int so_client_start(lua_State *L) {
  so_client *c = open_client(L);
  const so_operation *op = check_operation(L);
  call_args a;
  so_request r;
  so_job *j;
  char err[400];
  int url, body = 0;

  check_call(L, c, op, &a, &r);
  if (!so_push_url(L, c, op, a.id, a.query, err, sizeof(err)))
    return so_push_invalid(L, op->method, op->path, "%s", err);
  url = lua_gettop(L);
  if (a.fields) {
    if (!so_push_body(L, op, a.fields, err, sizeof(err)))
      return so_push_invalid(L, op->method, op->path, "%s", err);
    body = lua_gettop(L);
  }
  j = so_job_new(L, c, 1, &r, 1, 0, 1);
  if (!so_request_setup(L, c, so_job_request(j))) return 2;
  so_job_set_record(L, j, 0, url, body);
  return 1;
}

/* items[i] as a URL and a body, or its error as the record's outcome */
static void prepare_item(lua_State *L, so_client *c, const so_operation *op,
                         so_job *j, int items, int i) {
  const so_shape *shape = &so_shapes[op->kind];
  char err[400];
  int top = lua_gettop(L), id = 0, fields, url;
  lua_rawgeti(L, items, i + 1);
  fields = lua_gettop(L);
  if (so_is_error_at(L, fields)) { /* the Lua layer refused it already */
    lua_pushvalue(L, fields);
    goto failed;
  }
  if (shape->item_fields) {
    if (lua_istable(L, fields)) {
      so_rawfield(L, fields, shape->item_id);
      id = lua_gettop(L);
      so_rawfield(L, fields, shape->item_fields);
      fields = lua_gettop(L);
    }
    if (!id || lua_type(L, id) != LUA_TSTRING || !lua_istable(L, fields)) {
      so_push_invalid(L, op->method, op->path, "change %d must be a table "
                      "{ %s = \"...\", %s = { ... } }", i + 1,
                      shape->item_id, shape->item_fields);
      lua_remove(L, -2);
      goto failed;
    }
  } else if (!lua_istable(L, fields)) {
    so_push_invalid(L, op->method, op->path, "record %d must be a table of "
                    "fields, not a %s", i + 1, luaL_typename(L, fields));
    lua_remove(L, -2);
    goto failed;
  }
  if (!so_push_url(L, c, op, id, 0, err, sizeof(err))) {
    so_push_invalid(L, op->method, op->path, "%s", err);
    lua_remove(L, -2);
    goto failed;
  }
  url = lua_gettop(L);
  if (!so_push_body(L, op, fields, err, sizeof(err))) {
    so_push_invalid(L, op->method, op->path, "%s", err);
    lua_remove(L, -2);
    goto failed;
  }
  lua_pushvalue(L, top); /* the job */
  so_job_set_record(L, j, i, url, lua_gettop(L) - 1);
  lua_settop(L, top);
  return;
failed: /* the error is on the top */
  lua_pushvalue(L, top);
  lua_insert(L, -2);
  so_job_fail_record(L, j, i);
  lua_settop(L, top);
}

/* the number of records when `items` is a sequence 1..n, else -1 (a
   record would be skipped: refused before anything is sent) */
static int sequence_length(lua_State *L, int items) {
  lua_Integer n = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, items)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return -1;
    }
    if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
    n++;
  }
  return n == max && n <= 10000000 ? (int)n : -1;
}

/* what a bulk call reads from its options, besides a request's */
typedef struct bulk_call {
  int items, opts;
  so_bulk own; /* its own options: so_bulk_rows */
} bulk_call;

/* checks the arguments of a bulk call (usage errors); nothing is built */
static void check_bulk(lua_State *L, so_client *c, const so_operation *op,
                       bulk_call *b, so_request *r) {
  luaL_argcheck(L, op->bulk, 2, "the operation has no bulk form");
  lua_settop(L, 4);
  b->items = 3;
  b->opts = 4;
  memset(&b->own, 0, sizeof(b->own));
  so_option_defaults(so_bulk_rows, &b->own);
  if (!lua_istable(L, b->items)) arg_error(L, 1, "table", b->items);
  if (lua_isnil(L, b->opts)) b->opts = 0;
  else if (!lua_istable(L, b->opts))
    arg_error(L, 2, "table of options", b->opts);
  memset(r, 0, sizeof(*r));
  r->op = op;
  so_request_check(L, c, r, b->opts, so_bulk_rows, &b->own);
}

/* client:_check_many(op_index, items, opts): _start_many's checks of its
   arguments and options, without reading the items */
int so_client_check_many(lua_State *L) {
  so_client *c = open_client(L);
  bulk_call b;
  so_request r;
  check_bulk(L, c, check_operation(L), &b, &r);
  return 0;
}

/* client:_start_many(op_index, items, opts) -> job | nil, err */
int so_client_start_many(lua_State *L) {
  so_client *c = open_client(L);
  const so_operation *op = check_operation(L);
  bulk_call b;
  so_request r;
  so_job *j;
  int i, n;

  check_bulk(L, c, op, &b, &r);
  n = sequence_length(L, b.items);
  if (n < 0)
    return so_push_invalid(L, op->method, op->path, "the %s must be a "
                           "sequence 1..n without holes: a record would be "
                           "left out", so_shapes[op->kind].item_fields
                           ? "changes" : "records");
  j = so_job_new(L, c, 1, &r, n, 1, b.own.concurrency);
  if (!so_request_setup(L, c, so_job_request(j))) return 2;
  if (b.own.progress) so_job_set_progress(L, j, b.own.progress);
  /* every item is checked before anything is sent */
  for (i = 0; i < n; i++) prepare_item(L, c, op, j, b.items, i);
  return 1;
}

/* client:_io_changes() -> { fd, what, fd, what, ... }, timer: what libcurl
   asked to watch since the last call (what: 1 in, 2 out, 3 both, 4
   remove), and its timer in seconds (false: none; nil: unchanged) */
int so_client_io_changes(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  so_engine *e = &c->eng;
  const int *rec;
  size_t k, n;
  so_engine_own(e);
  rec = (const int *)(void *)e->changes.data;
  n = e->changes.len / (2 * sizeof(int));
  if (e->changes.oom) return luaL_error(L, "not enough memory");
  if (e->gather_errno)
    return luaL_error(L, "stackone: cannot watch a socket (%s)", strerror(e->gather_errno));
  lua_createtable(L, (int)(2 * n), 0);
  for (k = 0; k < 2 * n; k++) {
    lua_pushinteger(L, rec[k]);
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  so_buf_reset(&e->changes);
  if (!e->timer_changed) return 1;
  e->timer_changed = 0;
  if (e->timer_ms < 0) lua_pushboolean(L, 0);
  else lua_pushnumber(L, (double)e->timer_ms / 1000);
  return 2;
}

/* client:_io_done(): the loop stopped watching what _io_changes said to
   remove; the sockets libcurl is done with can close now */
int so_client_io_done(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  so_engine_close_sockets(&c->eng);
  return 0;
}

/* client:_io_gather() -> whether the engine now gives the loop one
   descriptor for all of libcurl's sockets (an adapter's `one_descriptor`) */
int so_client_io_gather(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  lua_pushboolean(L, so_engine_gather(&c->eng));
  return 1;
}

/* client:_io_action(fd, readable, writable) or client:_io_action() for
   the timer -> how many transfers finished */
int so_client_io_action(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  curl_socket_t fd = CURL_SOCKET_TIMEOUT;
  int events = 0;
  if (!lua_isnoneornil(L, 2)) {
    fd = (curl_socket_t)luaL_checkinteger(L, 2);
    if (lua_toboolean(L, 3)) events |= CURL_CSELECT_IN;
    if (lua_toboolean(L, 4)) events |= CURL_CSELECT_OUT;
  }
  if (!c->eng.loop) return luaL_error(L, "stackone: this client has no loop");
  lua_pushinteger(L, so_engine_action(&c->eng, fd, events));
  return 1;
}

/* core.invalid_error(op_index, message): the "invalid" error object the
   Lua layer returns for content it refuses before calling the core */
int so_invalid_error(lua_State *L) {
  lua_Integer index = luaL_checkinteger(L, 1);
  const char *message = luaL_checkstring(L, 2);
  const so_operation *op;
  luaL_argcheck(L, index >= 1 && (size_t)index <= so_operation_count, 1,
                "unknown operation");
  op = &so_operations[index - 1];
  so_push_invalid(L, op->method, op->path, "%s", message);
  return 1;
}
