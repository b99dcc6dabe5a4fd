/*
** start.c: client:_start(op, ...) and client:_start_many(op, items,
** opts): one call's arguments checked, its URLs and bodies built, and a
** job made for the engine (job.c). Nothing is sent here. Also the two
** entry points of a host loop: _io_changes and _io_action.
*/
#include <stdio.h>
#include <string.h>

#include "stackone.h"

/* raises "bad argument #n to 'crm.contacts.create' (...)" at the caller */
static int arg_error(lua_State *L, const so_operation *op, const char *suffix,
                     int n, const char *what, int idx) {
  return so_raise(L, 2, "bad argument #%d to 'crm.%s.%s%s' (%s expected, "
                  "got %s)", n, op->group, op->name, suffix, what,
                  luaL_typename(L, idx));
}

static const so_operation *check_operation(lua_State *L) {
  lua_Integer index = luaL_checkinteger(L, 2);
  luaL_argcheck(L, index >= 1 && (size_t)index <= so_operation_count, 2,
                "unknown operation");
  return &so_operations[index - 1];
}

/* builds the URL and pushes it; 0 with err set on bad input */
static int so_push_url(lua_State *L, so_client *c, const so_operation *op, int id,
                int query, char *err, size_t errlen) {
  so_buf url = {NULL, 0, 0, 0};
  int ok;
  so_buf_append(&url, c->base_url, strlen(c->base_url));
  ok = so_add_path(&url, op->path, id ? lua_tostring(L, id) : NULL,
                   id ? lua_rawlen(L, id) : 0, err, errlen) &&
       (!query || so_add_query(L, &url, query, op, err, errlen));
  if (ok && !url.oom) lua_pushlstring(L, url.data, url.len);
  so_buf_free(&url);
  if (ok && url.oom) luaL_error(L, "not enough memory");
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
   of the operation's kind */
int so_client_start(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  const so_operation *op = check_operation(L);
  so_request r;
  so_job *j;
  char err[400];
  int id = 0, fields = 0, query = 0, opts = 0, url, body = 0;

  switch (op->kind) {
    case SO_KIND_CREATE: fields = 3; opts = 4; break;
    case SO_KIND_GET: id = 3; query = 4; opts = 5; break;
    case SO_KIND_UPDATE: id = 3; fields = 4; opts = 5; break;
    case SO_KIND_LIST: query = 3; opts = 4; break;
  }
  lua_settop(L, opts);
  if (id && lua_type(L, id) != LUA_TSTRING)
    return arg_error(L, op, "", id - 2, "string id", id);
  if (fields && !lua_istable(L, fields))
    return arg_error(L, op, "", fields - 2, "table of fields", fields);
  if (query && !lua_isnil(L, query) && !lua_istable(L, query))
    return arg_error(L, op, "", query - 2, "table of query parameters",
                     query);
  if (!lua_isnil(L, opts) && !lua_istable(L, opts))
    return arg_error(L, op, "", opts - 2, "table of options", opts);
  if (lua_isnil(L, opts)) opts = 0;
  if (query && lua_isnil(L, query)) query = 0;

  memset(&r, 0, sizeof(r));
  r.op = op;
  if (!so_push_url(L, c, op, id, query, err, sizeof(err)))
    return so_push_invalid(L, op->method, op->path, "%s", err);
  url = lua_gettop(L);
  if (fields) {
    if (!so_push_body(L, op, fields, err, sizeof(err)))
      return so_push_invalid(L, op->method, op->path, "%s", err);
    body = lua_gettop(L);
  }
  if (!so_request_setup(L, c, &r, opts, NULL)) return 2;
  j = so_job_new(L, c, 1, &r, 1, 0, 1);
  so_job_set_record(L, j, 0, url, body);
  return 1;
}

/* items[i] as a URL and a body, or its error as the record's outcome */
static void prepare_item(lua_State *L, so_client *c, const so_operation *op,
                         so_job *j, int items, int i) {
  char err[400];
  int top = lua_gettop(L), id = 0, fields, url;
  lua_rawgeti(L, items, i + 1);
  fields = lua_gettop(L);
  if (so_is_error_at(L, fields)) { /* the Lua layer refused it already */
    lua_pushvalue(L, fields);
    goto failed;
  }
  if (op->kind == SO_KIND_UPDATE) {
    if (lua_istable(L, fields)) {
      so_rawfield(L, fields, "id");
      id = lua_gettop(L);
      so_rawfield(L, fields, "fields");
      fields = lua_gettop(L);
    }
    if (!id || lua_type(L, id) != LUA_TSTRING || !lua_istable(L, fields)) {
      so_push_invalid(L, op->method, op->path, "change %d must be a table "
                      "{ id = \"...\", fields = { ... } }", i + 1);
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

static const char *const bulk_options[] = {"concurrency", "on_progress", NULL};

/* client:_start_many(op_index, items, opts) -> job | nil, err */
int so_client_start_many(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  const so_operation *op = check_operation(L);
  so_request r;
  so_job *j;
  int items = 3, opts = 4, progress = 0, i, n;
  lua_Integer concurrency = 8;

  luaL_argcheck(L, op->kind == SO_KIND_CREATE || op->kind == SO_KIND_UPDATE,
                2, "only creates and updates come in bulk");
  lua_settop(L, 4);
  if (!lua_istable(L, items))
    return arg_error(L, op, "_many", 1, "table", items);
  if (lua_isnil(L, opts)) opts = 0;
  else if (!lua_istable(L, opts))
    return arg_error(L, op, "_many", 2, "table of options", opts);
  memset(&r, 0, sizeof(r));
  r.op = op;
  r.suffix = "_many";
  if (opts) {
    if (so_rawfield(L, opts, "concurrency") != LUA_TNIL) {
      concurrency = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
      if (concurrency < 1 || concurrency > 64)
        so_raise(L, 2, "crm.%s.%s_many: concurrency must be a whole number "
                 "from 1 to 64", op->group, op->name);
    }
    if (so_rawfield(L, opts, "on_progress") != LUA_TNIL) {
      if (!lua_isfunction(L, -1))
        so_raise(L, 2, "crm.%s.%s_many: on_progress must be a function",
                 op->group, op->name);
      progress = lua_gettop(L);
    }
  }
  n = sequence_length(L, items);
  if (n < 0)
    return so_push_invalid(L, op->method, op->path, "the %s must be a "
                           "sequence 1..n without holes: a record would be "
                           "left out", op->kind == SO_KIND_UPDATE
                           ? "changes" : "records");
  if (!so_request_setup(L, c, &r, opts, bulk_options)) return 2;
  j = so_job_new(L, c, 1, &r, n, 1, (int)concurrency);
  if (progress) so_job_set_progress(L, j, progress);
  /* every item is checked before anything is sent */
  for (i = 0; i < n; i++) prepare_item(L, c, op, j, items, i);
  return 1;
}

/* client:_io_changes() -> { fd, what, fd, what, ... }, timer: what libcurl
   asked to watch since the last call (what: 1 in, 2 out, 3 both, 4
   remove), and its timer in seconds (false: none; nil: unchanged) */
int so_client_io_changes(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  so_engine *e = &c->eng;
  const int *rec = (const int *)(void *)e->changes.data;
  size_t k, n = e->changes.len / (2 * sizeof(int));
  if (e->changes.oom) return luaL_error(L, "not enough memory");
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
