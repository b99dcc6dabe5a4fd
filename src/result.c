/*
** result.c: what one finished exchange becomes: `value, response`, or
** `nil, err` with an error object for a transport failure, an HTTP error
** status or a body that does not decode.
*/
#include <stdio.h>
#include <string.h>

#include "stackone.h"

static void set_string(lua_State *L, const char *name, const char *value) {
  lua_pushstring(L, value);
  lua_setfield(L, -2, name);
}

/* may the server have acted on this attempt, or an earlier one? */
int so_outcome_maybe_applied(const so_outcome *o) {
  if (o->earlier_maybe_applied) return 1;
  if (o->rc != CURLE_OK) return o->sent;
  return so_status_of(o->status)->maybe_applied;
}

static int transport_error(lua_State *L, so_exchange *x, so_outcome *k) {
  so_failure f;
  long status = k->status;
  CURLcode rc = k->rc;
  const char *message = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
  f.kind = x->too_large ? SO_E_TOO_LARGE : so_curl_kind(rc);
  f.method = k->op->method;
  f.path = k->op->path;
  f.attempts = k->attempts;
  f.rc = rc;
  f.status = status;
  f.maybe_applied = so_outcome_maybe_applied(k);
  lua_pushnil(L);
  so_new_error(L, &f);
  lua_pushinteger(L, rc);
  lua_setfield(L, -2, "curl_code");
  if (x->too_large) {
    char text[96];
    snprintf(text, sizeof(text), "the response is larger than "
             "max_response_bytes (%lu)", (unsigned long)x->max_response_bytes);
    lua_pushstring(L, text);
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
  return 2;
}

/* pushes nil and the error of a call stopped before its outcome was
   known: the client closed, or the host interrupted it */
void so_push_stop_error(lua_State *L, const so_operation *op,
                        so_error_kind kind, const char *message, int attempts,
                        int maybe_applied) {
  so_failure f;
  memset(&f, 0, sizeof(f));
  f.kind = kind;
  f.method = op->method;
  f.path = op->path;
  f.attempts = attempts;
  f.maybe_applied = maybe_applied;
  lua_pushnil(L);
  so_new_error(L, &f);
  set_string(L, "message", message);
}

/* an error for a response that came back: status >= 300, or a 2xx that
   could not be decoded (kind "decode") */
static int response_error(lua_State *L, so_exchange *x, so_outcome *k, long status,
                          so_error_kind kind, const char *message, int body) {
  so_failure f;
  memset(&f, 0, sizeof(f));
  f.kind = kind;
  f.method = k->op->method;
  f.path = k->op->path;
  f.attempts = k->attempts;
  f.status = status;
  f.maybe_applied = so_outcome_maybe_applied(k);
  lua_pushnil(L);
  so_new_error(L, &f);
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
  if (k->has_retry_after) {
    lua_pushnumber(L, k->retry_after);
    lua_setfield(L, -2, "retry_after");
  }
  return 2;
}

/* ---- response.headers, parsed when first read ---- */

/* __index of a response (upvalue 1: { [response] = header block }, weak
   keys): `headers` is parsed from the kept block on first read, then set
   in the response itself */
static int response_index(lua_State *L) {
  so_buf head;
  size_t len;
  if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "headers"))
    return 0;
  lua_pushvalue(L, 1);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isstring(L, -1)) return 0;
  memset(&head, 0, sizeof(head));
  head.data = (char *)lua_tolstring(L, -1, &len);
  head.len = len;
  so_push_headers(L, &head);
  lua_pushliteral(L, "headers");
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  lua_rawset(L, lua_upvalueindex(1));
  return 1;
}

/* the responses' metatable and the weak table of their header blocks,
   made once into the module state at `state` */
void so_response_init(lua_State *L, int state) {
  state = lua_absindex(L, state);
  lua_createtable(L, 0, 1); /* the blocks, by response */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawseti(L, state, SO_S_HEADER_BLOCKS);
  lua_createtable(L, 0, 1);
  lua_insert(L, -2);
  lua_pushcclosure(L, response_index, 1);
  lua_setfield(L, -2, "__index");
  lua_rawseti(L, state, SO_S_RESPONSE_MT);
}

/* gives the response on the top its headers: the block is kept as one
   string, parsed only if `headers` is read (most callers never do) */
static void set_lazy_headers(lua_State *L, const so_buf *head) {
  lua_rawgeti(L, SO_STATE, SO_S_HEADER_BLOCKS);
  lua_pushvalue(L, -2);
  lua_pushlstring(L, head->data ? head->data : "", head->len);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_rawgeti(L, SO_STATE, SO_S_RESPONSE_MT);
  lua_setmetatable(L, -2);
}

static int http_result(lua_State *L, so_exchange *x, so_outcome *k, long status) {
  int body = 0, envelope;
  if (x->body.len && (x->rest.head ? so_json_decode_pieces(L, SO_STATE,
                                                           &x->body, &x->rest)
                                    : so_json_decode(L, SO_STATE, &x->body)))
    body = lua_gettop(L);
  else if (x->body.len)
    lua_pop(L, 1); /* the decode message */
  if (status < 200 || status > 299) {
    const char *message = so_reason_phrase(status);
    if (body && lua_istable(L, body)) {
      lua_getfield(L, body, "message");
      if (lua_type(L, -1) == LUA_TSTRING) message = lua_tostring(L, -1);
    }
    return response_error(L, x, k, status, SO_E_HTTP, message,
                          body && lua_istable(L, body) ? body : 0);
  }
  if (!body || !lua_istable(L, body))
    return response_error(L, x, k, status, SO_E_DECODE,
                          "the response body is not a JSON object", 0);
  envelope = body;
  if (k->op->reply == SO_REPLY_DATA) {
    lua_getfield(L, envelope, "data");
    if (!lua_istable(L, -1))
      return response_error(L, x, k, status, SO_E_DECODE,
                            "the response has no 'data'", envelope);
  } else {
    lua_pushvalue(L, body); /* the record, or a bare array of them */
  }
  if (k->op->reply == SO_REPLY_ARRAY) {
    /* a page { data = {...} }; the Lua layer numbers the next one */
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "data");
  } else if (so_shapes[k->op->kind].page) {
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
  set_lazy_headers(L, &x->head);
  if (k->op->reply == SO_REPLY_DATA) {
    lua_getfield(L, envelope, "raw");
    lua_setfield(L, -2, "raw");
  }
  lua_pushinteger(L, k->attempts);
  lua_setfield(L, -2, "attempts");
  return 2;
}

/* pushes `value, response` or `nil, err` for the attempt's outcome */
int so_push_result(lua_State *L, so_exchange *x, so_outcome *o) {
  if (o->rc != CURLE_OK) return transport_error(L, x, o);
  return http_result(L, x, o, o->status);
}
