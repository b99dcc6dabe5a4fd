/*
** call.c: client:call(op, ...), one API operation from arguments to
** `value, response` or `nil, err`, trying again as the retry policy
** allows.
*/
#include <stdio.h>
#include <string.h>

#include "stackone.h"

/* raises "bad argument #n to 'crm.contacts.create' (...)" at the caller */
static int arg_error(lua_State *L, const so_operation *op, int n,
                     const char *what, int idx) {
  return so_raise(L, 2, "bad argument #%d to 'crm.%s.%s' (%s expected, "
                  "got %s)", n, op->group, op->name, what,
                  luaL_typename(L, idx));
}

/* builds the URL into c->url and pushes it; 0 with err set on bad input */
int so_push_url(lua_State *L, so_client *c, const so_operation *op, int id,
                int query, char *err, size_t errlen) {
  so_buf_reset(&c->url);
  so_buf_append(&c->url, c->base_url, strlen(c->base_url));
  if (!so_add_path(&c->url, op->path, id ? lua_tostring(L, id) : NULL,
                   id ? lua_rawlen(L, id) : 0, err, errlen) ||
      (query && !so_add_query(L, &c->url, query, op, err, errlen)))
    return 0;
  if (c->url.oom) luaL_error(L, "not enough memory");
  lua_pushlstring(L, c->url.data, c->url.len);
  return 1;
}

/* encodes the body at idx and pushes it; 0 with err set on bad content */
int so_push_body(lua_State *L, const so_operation *op, int idx, char *err,
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

/* what one call's attempts need, kept in a userdata on the stack so they
   can go on after the client's sleep function yields (a call made from a
   coroutine, in a host with an event loop) */
typedef struct attempts {
  so_call k;
  so_request r;
  const char *body;    /* the body string, anchored on the stack */
  size_t body_len;
  double waited;       /* seconds of retry waits so far */
  int token;           /* the next attempt's rate limiter token is taken */
} attempts;

static int run_attempts(lua_State *L, int state);

static int after_wait(lua_State *L, int status, lua_KContext state) {
  (void)status;
  return run_attempts(L, (int)state);
}

static int run_attempts(lua_State *L, int state) {
  attempts *a = lua_touserdata(L, state);
  so_client *c;
  CURLcode rc;
  long status;
  double delay = 0;
  int trace = 0;
  for (;;) {
    struct curl_slist *list;
    c = so_check_client(L, 1); /* a hook may have closed it meanwhile */
    if (!a->token) {
      a->token = 1;
      if (a->r.bucket) {
        double wait = so_bucket_take(a->r.bucket, so_now());
        if (wait > 0) {
          so_wait(L, &a->r, wait, (lua_KContext)state, after_wait);
          c = so_check_client(L, 1);
        }
      }
    }
    a->token = 0;
    a->k.attempts++;
    /* from here to curl_slist_free_all no Lua call may raise */
    list = so_header_list(L, c, &a->r);
    if (list == NULL) return luaL_error(L, "not enough memory");
    rc = so_perform(&c->ex, a->k.op->method, lua_tostring(L, a->k.url), list,
                    a->body, a->body_len, a->r.timeout_ms, a->r.verbose);
    curl_slist_free_all(list);
    status = 0;
    curl_easy_getinfo(c->ex.curl, CURLINFO_RESPONSE_CODE, &status);
    if (a->r.verbose) {
      lua_pushlstring(L, c->ex.trace.data ? c->ex.trace.data : "",
                      c->ex.trace.len);
      trace = lua_gettop(L);
    }
    if (!so_plan_retry(&a->r, &a->k, &c->ex, rc, status, &a->waited, &c->rng,
                       &delay))
      break;
    if (trace) { /* the debug function may use the client: c->ex is done */
      so_debug(L, &a->r, trace, state, 1);
      lua_settop(L, trace - 1);
      trace = 0;
    }
    so_wait(L, &a->r, delay, (lua_KContext)state, after_wait);
  }
  /* the result first: the debug function may use or close the client */
  so_push_result(L, &c->ex, &a->k, rc, status);
  if (trace) {
    so_debug(L, &a->r, trace, state, 1);
    so_attach_debug_error(L, state, 1, -1);
  }
  return 2;
}

int so_client_call(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  lua_Integer index = luaL_checkinteger(L, 2);
  attempts *a;
  so_call k;
  so_request r;
  char err[400];
  const char *body = NULL;
  size_t body_len = 0;
  int id = 0, fields = 0, query = 0, opts = 0;

  luaL_argcheck(L, index >= 1 && (size_t)index <= so_operation_count, 2,
                "unknown operation");
  memset(&k, 0, sizeof(k));
  memset(&r, 0, sizeof(r));
  k.op = r.op = &so_operations[index - 1];
  switch (k.op->kind) {
    case SO_KIND_CREATE: fields = 3; opts = 4; break;
    case SO_KIND_GET: id = 3; query = 4; opts = 5; break;
    case SO_KIND_UPDATE: id = 3; fields = 4; opts = 5; break;
    case SO_KIND_LIST: query = 3; opts = 4; break;
  }
  lua_settop(L, opts);
  if (id && lua_type(L, id) != LUA_TSTRING)
    return arg_error(L, k.op, id - 2, "string id", id);
  if (fields && !lua_istable(L, fields))
    return arg_error(L, k.op, fields - 2, "table of fields", fields);
  if (query && !lua_isnil(L, query) && !lua_istable(L, query))
    return arg_error(L, k.op, query - 2, "table of query parameters", query);
  if (!lua_isnil(L, opts) && !lua_istable(L, opts))
    return arg_error(L, k.op, opts - 2, "table of options", opts);
  if (lua_isnil(L, opts)) opts = 0;
  if (query && lua_isnil(L, query)) query = 0;

  if (!so_request_setup(L, c, &r, opts, NULL)) return 2;
  if (!so_push_url(L, c, k.op, id, query, err, sizeof(err)))
    return so_push_invalid(L, k.op->method, k.op->path, "%s", err);
  k.url = lua_gettop(L);
  if (fields) {
    if (!so_push_body(L, k.op, fields, err, sizeof(err)))
      return so_push_invalid(L, k.op->method, k.op->path, "%s", err);
    body = lua_tolstring(L, -1, &body_len);
  }
  a = lua_newuserdatauv(L, sizeof(attempts), 1); /* 1: a debug error */
  memset(a, 0, sizeof(*a));
  a->k = k;
  a->r = r;
  a->body = body;
  a->body_len = body_len;
  return run_attempts(L, lua_gettop(L));
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
