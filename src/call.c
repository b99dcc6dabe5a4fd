/*
** call.c: client:call(op, ...), one API operation from arguments to
** `value, response` or `nil, err`: checks, URL, body, headers, the
** exchange, and the result or error object.
*/
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stackone.h"

static const char *const call_option_names[] = {
  "account_id", "timeout", "headers", "retry", NULL
};

/* raises "bad argument #n to 'crm.contacts.create' (...)" at the caller */
static int arg_error(lua_State *L, const so_operation *op, int n,
                     const char *what, int idx) {
  return so_raise(L, 2, "bad argument #%d to 'crm.%s.%s' (%s expected, "
                  "got %s)", n, op->group, op->name, what,
                  luaL_typename(L, idx));
}

static void check_call_options(lua_State *L, int opts, const so_operation *op) {
  size_t count = sizeof(call_option_names) / sizeof(char *) - 1;
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    size_t i;
    for (i = 0; key && i < count && strcmp(call_option_names[i], key); i++) {}
    if (key == NULL || i == count) {
      const char *near = key ? so_closest(key, call_option_names, count,
                                          sizeof(char *)) : NULL;
      so_raise(L, 2, "crm.%s.%s: unknown option '%s'%s%s%s", op->group,
               op->name, key ? key : luaL_typename(L, -2),
               near ? " (did you mean '" : "", near ? near : "",
               near ? "'?)" : "");
    }
    lua_pop(L, 1);
  }
}

typedef struct call {
  const so_operation *op;
  int id, body, query, opts; /* argument indexes, 0 when absent */
  int url;                   /* stack index of the URL string */
  int attempts;
  int has_retry_after;       /* the last response had a Retry-After */
  double retry_after;        /* its value, in seconds */
} call;

/* the request's header lines; NULL when out of memory. Raises nothing:
   only reads strings the stack keeps alive */
static struct curl_slist *header_list(lua_State *L, so_client *c, int merged,
                                      int account_line, int accept,
                                      int content_type) {
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

/* waits with the client's sleep function, or blocks the thread. An error
   the sleep function raises goes to the caller: nothing is held here */
static void wait_for(lua_State *L, int hooks, double seconds) {
  if (lua_getfield(L, hooks, "sleep") == LUA_TFUNCTION) {
    lua_pushnumber(L, seconds);
    lua_call(L, 1, 0);
  } else {
    lua_pop(L, 1);
    so_sleep(seconds);
  }
}

/* hands the redacted trace of the last attempt to the debug function */
static void report_trace(lua_State *L, so_exchange *x, int hooks) {
  lua_getfield(L, hooks, "debug");
  lua_pushlstring(L, x->trace.data ? x->trace.data : "", x->trace.len);
  lua_call(L, 1, 0);
}

static int retry_after(so_exchange *x, double *seconds) {
  size_t len;
  const char *v = so_find_header(&x->head, "retry-after", &len);
  return v && so_parse_retry_after(v, len, time(NULL), seconds);
}

static void set_string(lua_State *L, const char *name, const char *value) {
  lua_pushstring(L, value);
  lua_setfield(L, -2, name);
}

static int transport_error(lua_State *L, so_exchange *x, call *k, CURLcode rc) {
  so_failure f;
  long status = 0;
  curl_off_t sent = 0;
  const char *message = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
  curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
  {
    long request_size = 0;
    curl_easy_getinfo(x->curl, CURLINFO_REQUEST_SIZE, &request_size);
    sent = request_size;
  }
  f.kind = x->too_large ? "too_large" : so_curl_kind(rc);
  f.method = k->op->method;
  f.path = k->op->path;
  f.attempts = k->attempts;
  lua_pushnil(L);
  so_new_error(L, &f);
  set_string(L, "code", x->too_large ? "TOO_LARGE" : so_curl_code_name(rc));
  lua_pushinteger(L, rc);
  lua_setfield(L, -2, "curl_code");
  if (x->too_large) {
    lua_pushfstring(L, "the response is larger than max_response_bytes (%I)",
                    (lua_Integer)x->max_response_bytes);
    lua_setfield(L, -2, "message");
  } else {
    set_string(L, "message", message);
  }
  if (status > 0) {
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    so_push_headers(L, &x->head);
    lua_setfield(L, -2, "headers");
  }
  lua_pushvalue(L, k->url);
  lua_setfield(L, -2, "url");
  /* whether the server may have acted on the request */
  lua_pushboolean(L, so_maybe_applied(rc, status, (long)sent));
  lua_setfield(L, -2, "maybe_applied");
  return 2;
}

/* an error for a response that came back: status >= 300, or a 2xx that
   could not be decoded (kind "decode") */
static int response_error(lua_State *L, so_exchange *x, call *k, long status,
                          const char *kind, const char *message, int body) {
  so_failure f;
  char code[16];
  f.kind = kind;
  f.method = k->op->method;
  f.path = k->op->path;
  f.attempts = k->attempts;
  lua_pushnil(L);
  so_new_error(L, &f);
  snprintf(code, sizeof(code), "HTTP_%ld", status);
  set_string(L, "code", strcmp(kind, "decode") == 0 ? "DECODE" : code);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  if (body) {
    lua_pushvalue(L, body);
    lua_setfield(L, -2, "body");
  } else if (x->body.len) {
    /* not JSON: keep the start of the text for the reader */
    lua_pushlstring(L, x->body.data, x->body.len > 1024 ? 1024 : x->body.len);
    lua_setfield(L, -2, "text");
  }
  set_string(L, "message", message);
  so_push_headers(L, &x->head);
  lua_setfield(L, -2, "headers");
  lua_pushvalue(L, k->url);
  lua_setfield(L, -2, "url");
  lua_pushboolean(L, strcmp(kind, "decode") == 0 ||
                         so_maybe_applied(CURLE_OK, status, 1));
  lua_setfield(L, -2, "maybe_applied");
  if (k->has_retry_after) {
    lua_pushnumber(L, k->retry_after);
    lua_setfield(L, -2, "retry_after");
  }
  return 2;
}

static int http_result(lua_State *L, so_exchange *x, call *k, long status) {
  int body = 0, envelope;
  if (x->body.len && so_json_decode(L, SO_STATE, x->body.data, x->body.len))
    body = lua_gettop(L);
  else if (x->body.len)
    lua_pop(L, 1); /* the decode message */
  if (status < 200 || status > 299) {
    const char *message = so_reason_phrase(status);
    if (body && lua_istable(L, body)) {
      lua_getfield(L, body, "message");
      if (lua_type(L, -1) == LUA_TSTRING) message = lua_tostring(L, -1);
    }
    return response_error(L, x, k, status, "http", message,
                          body && lua_istable(L, body) ? body : 0);
  }
  if (!body || !lua_istable(L, body))
    return response_error(L, x, k, status, "decode",
                          "the response body is not a JSON object", 0);
  envelope = body;
  lua_getfield(L, envelope, "data");
  if (!lua_istable(L, -1))
    return response_error(L, x, k, status, "decode",
                          "the response has no 'data'", envelope);
  if (k->op->kind == SO_KIND_LIST) {
    /* a page: { data = {...}, next = cursor or nil } */
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "data");
    if (lua_getfield(L, envelope, "next") == LUA_TSTRING && lua_rawlen(L, -1) > 0)
      lua_setfield(L, -2, "next");
    else
      lua_pop(L, 1);
  }
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  so_push_headers(L, &x->head);
  lua_setfield(L, -2, "headers");
  lua_getfield(L, envelope, "raw");
  lua_setfield(L, -2, "raw");
  lua_pushinteger(L, k->attempts);
  lua_setfield(L, -2, "attempts");
  return 2;
}

/* the merged header lines: client-wide, then the call's on top */
static int merge_headers(lua_State *L, so_client *c, call *k, char *err,
                         size_t errlen) {
  (void)c;
  lua_newtable(L);
  lua_getiuservalue(L, 1, 2);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  if (k->opts && lua_getfield(L, k->opts, "headers") != LUA_TNIL) {
    if (!lua_istable(L, -1))
      so_raise(L, 2, "crm.%s.%s: option 'headers' must be a table",
                 k->op->group, k->op->name);
    if (!so_collect_headers(L, lua_gettop(L), lua_gettop(L) - 1, err, errlen))
      return 0;
  }
  if (k->opts) lua_pop(L, 1);
  return 1;
}

static int has_header(lua_State *L, int merged, const char *lower) {
  int yes = lua_getfield(L, merged, lower) != LUA_TNIL;
  lua_pop(L, 1);
  return yes;
}

int so_client_call(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  lua_Integer index = luaL_checkinteger(L, 2);
  call k;
  char err[400];
  const char *account = NULL, *body = NULL;
  size_t account_len = 0;
  size_t body_len = 0;
  long timeout_ms;
  int merged, account_line, own_accept, own_content_type, hooks, verbose;
  struct curl_slist *list = NULL;
  so_bucket *bucket;
  so_retry retry = c->retry;
  double waited = 0;
  CURLcode rc;
  long status = 0;

  luaL_argcheck(L, index >= 1 && (size_t)index <= so_operation_count, 2,
                "unknown operation");
  memset(&k, 0, sizeof(k));
  k.op = &so_operations[index - 1];
  switch (k.op->kind) {
    case SO_KIND_CREATE: k.body = 3; k.opts = 4; break;
    case SO_KIND_GET: k.id = 3; k.query = 4; k.opts = 5; break;
    case SO_KIND_UPDATE: k.id = 3; k.body = 4; k.opts = 5; break;
    case SO_KIND_LIST: k.query = 3; k.opts = 4; break;
  }
  lua_settop(L, k.opts);
  if (k.id && lua_type(L, k.id) != LUA_TSTRING)
    return arg_error(L, k.op, k.id - 2, "string id", k.id);
  if (k.body && !lua_istable(L, k.body))
    return arg_error(L, k.op, k.body - 2, "table of fields", k.body);
  if (k.query && !lua_isnil(L, k.query) && !lua_istable(L, k.query))
    return arg_error(L, k.op, k.query - 2, "table of query parameters", k.query);
  if (!lua_isnil(L, k.opts) && !lua_istable(L, k.opts))
    return arg_error(L, k.op, k.opts - 2, "table of options", k.opts);
  if (lua_isnil(L, k.opts)) k.opts = 0;
  if (k.query && lua_isnil(L, k.query)) k.query = 0;

  timeout_ms = c->timeout_ms;
  if (k.opts) {
    check_call_options(L, k.opts, k.op);
    if (lua_getfield(L, k.opts, "timeout") != LUA_TNIL)
      timeout_ms = so_seconds_ms(L, -1, "call", "timeout");
    lua_pop(L, 1);
    if (lua_getfield(L, k.opts, "account_id") == LUA_TSTRING)
      account = lua_tolstring(L, -1, &account_len);
    else if (!lua_isnil(L, -1))
      so_raise(L, 2, "crm.%s.%s: option 'account_id' must be a string",
                 k.op->group, k.op->name);
    lua_pop(L, 1); /* opts keeps it alive */
    if (lua_getfield(L, k.opts, "retry") != LUA_TNIL)
      so_read_retry(L, lua_gettop(L), &retry, "call");
    lua_pop(L, 1);
  }
  if (account == NULL) {
    account = c->account_id;
    account_len = account ? strlen(account) : 0;
  }
  if (account == NULL)
    return so_raise(L, 2, "crm.%s.%s: no account id (pass account_id to "
                      "stackone.new or in the call's options, or set "
                      "STACKONE_ACCOUNT_ID)", k.op->group, k.op->name);
  if (*account == '\0' || !so_header_value_ok(account, account_len))
    return so_push_invalid(L, k.op->method, k.op->path, "account_id is empty "
                           "or has CR, LF, NUL or another control character");

  /* the URL */
  so_buf_reset(&c->url);
  so_buf_append(&c->url, c->base_url, strlen(c->base_url));
  if (!so_add_path(&c->url, k.op->path, k.id ? lua_tostring(L, k.id) : NULL,
                   k.id ? lua_rawlen(L, k.id) : 0, err, sizeof(err)) ||
      (k.query && !so_add_query(L, &c->url, k.query, k.op, err, sizeof(err))))
    return so_push_invalid(L, k.op->method, k.op->path, "%s", err);
  if (c->url.oom) return luaL_error(L, "not enough memory");
  lua_pushlstring(L, c->url.data, c->url.len);
  k.url = lua_gettop(L);

  /* the body */
  if (k.body) {
    if (!so_json_encode_body(L, SO_STATE, k.body, k.op->body, err, sizeof(err)))
      return so_push_invalid(L, k.op->method, k.op->path, "%s", err);
    body = lua_tolstring(L, -1, &body_len);
    if (body_len > SO_MAX_REQUEST_BYTES)
      return so_push_invalid(L, k.op->method, k.op->path, "the body is %I "
                             "bytes of JSON; at most %I may be sent",
                             (lua_Integer)body_len,
                             (lua_Integer)SO_MAX_REQUEST_BYTES);
  }

  /* the headers, as Lua strings that outlive the exchange */
  if (!merge_headers(L, c, &k, err, sizeof(err)))
    return so_push_invalid(L, k.op->method, k.op->path, "%s", err);
  merged = lua_gettop(L);
  lua_pushfstring(L, "x-account-id: %s", account);
  account_line = lua_gettop(L);
  own_accept = has_header(L, merged, "accept");
  own_content_type = has_header(L, merged, "content-type");

  lua_getiuservalue(L, 1, 3);
  hooks = lua_gettop(L);
  lua_getfield(L, hooks, "bucket");
  bucket = lua_touserdata(L, -1); /* kept alive by the hooks table */
  lua_pop(L, 1);
  lua_getfield(L, hooks, "debug");
  verbose = lua_isfunction(L, -1);
  lua_pop(L, 1);

  for (;;) {
    double delay;
    long request_bytes = 0;
    int ra;
    k.attempts++;
    if (bucket) {
      double wait = so_bucket_take(bucket, so_now());
      if (wait > 0) wait_for(L, hooks, wait);
    }
    /* from here to curl_slist_free_all no Lua call may raise */
    list = header_list(L, c, merged, account_line,
                       !own_accept, body && !own_content_type);
    if (list == NULL) return luaL_error(L, "not enough memory");
    rc = so_perform(&c->ex, k.op->method, lua_tostring(L, k.url), list, body,
                    body_len, timeout_ms, verbose);
    curl_slist_free_all(list);
    status = 0;
    curl_easy_getinfo(c->ex.curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c->ex.curl, CURLINFO_REQUEST_SIZE, &request_bytes);
    if (verbose) report_trace(L, &c->ex, hooks);
    k.has_retry_after = 0;
    ra = rc == CURLE_OK && retry_after(&c->ex, &k.retry_after);
    k.has_retry_after = ra;
    if (rc == CURLE_OK && status >= 200 && status <= 299) break;
    if (k.attempts >= retry.max_attempts ||
        !so_retryable(k.op->method, rc, status, request_bytes, c->ex.too_large,
                      &retry))
      break;
    if (ra && (status == 429 || status == 408 || status == 503)) {
      if (k.retry_after > retry.max_delay) break; /* fail now, not in an hour */
      delay = k.retry_after;
    } else {
      delay = so_backoff(&retry, k.attempts, &c->rng);
    }
    if (waited + delay > retry.max_wait) break;
    waited += delay;
    wait_for(L, hooks, delay);
  }

  if (rc != CURLE_OK) return transport_error(L, &c->ex, &k, rc);
  return http_result(L, &c->ex, &k, status);
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
