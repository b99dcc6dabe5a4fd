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

static int transport_error(lua_State *L, so_exchange *x, so_call *k, CURLcode rc) {
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
static int response_error(lua_State *L, so_exchange *x, so_call *k, long status,
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

static int http_result(lua_State *L, so_exchange *x, so_call *k, long status) {
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

/* pushes `value, response` or `nil, err` for the exchange's outcome */
int so_push_result(lua_State *L, so_exchange *x, so_call *k, CURLcode rc,
                   long status) {
  if (rc != CURLE_OK) return transport_error(L, x, k, rc);
  return http_result(L, x, k, status);
}
