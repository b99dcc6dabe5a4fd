/*
** floor.c: the fair floor for case 1. The least any Lua binding of libcurl
** must do for a create: a C module with one reused easy handle (keep-alive)
** that POSTs a string and hands back the answer's status and body.
** bench/floor_create.lua encodes the caller's table with lua-cjson before
** and decodes the answer into Lua tables after, so the floor does all the
** JSON and HTTP work an SDK must do, and checks nothing.
**
**   local floor = require("floor")
**   local conn = floor.open(url, authorization, account_id, user_agent)
**   local status, body = conn:post(json_text)   -- nil, message on failure
*/
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>

#include "common.h"

#define FLOOR_CONN "bench.floor.conn"

typedef struct conn {
  CURL *easy;
  struct curl_slist *headers;
  buf body; /* the answer's body, its memory reused between posts */
} conn;

static conn *check_conn(lua_State *L) {
  conn *c = luaL_checkudata(L, 1, FLOOR_CONN);
  if (c->easy == NULL) luaL_error(L, "floor: connection is closed");
  return c;
}

static int conn_post(lua_State *L) {
  conn *c = check_conn(L);
  size_t len;
  const char *body = luaL_checklstring(L, 2, &len);
  long status = 0;
  CURLcode rc;
  c->body.len = 0;
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  rc = curl_easy_perform(c->easy);
  if (rc != CURLE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, curl_easy_strerror(rc));
    return 2;
  }
  curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushinteger(L, (lua_Integer)status);
  lua_pushlstring(L, c->body.data ? c->body.data : "", c->body.len);
  return 2;
}

static int conn_close(lua_State *L) {
  conn *c = luaL_checkudata(L, 1, FLOOR_CONN);
  if (c->easy) curl_easy_cleanup(c->easy);
  curl_slist_free_all(c->headers);
  free(c->body.data);
  c->easy = NULL;
  c->headers = NULL;
  c->body.data = NULL;
  c->body.len = c->body.cap = 0;
  return 0;
}

/* appends "name: value" to the header list; 0 when out of memory */
static int add_header(lua_State *L, conn *c, const char *name, int index) {
  struct curl_slist *next;
  lua_pushfstring(L, "%s: %s", name, luaL_checkstring(L, index));
  next = curl_slist_append(c->headers, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (next == NULL) return 0;
  c->headers = next;
  return 1;
}

static int floor_open(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  const char *ua = luaL_optstring(L, 4, "floor-bench");
  conn *c = lua_newuserdata(L, sizeof(conn));
  memset(c, 0, sizeof(*c));
  luaL_getmetatable(L, FLOOR_CONN);
  lua_setmetatable(L, -2);
  c->easy = curl_easy_init();
  if (c->easy == NULL) return luaL_error(L, "floor: curl_easy_init failed");
  if (!add_header(L, c, "Authorization", 2) || !add_header(L, c, "x-account-id", 3)) {
    return luaL_error(L, "floor: out of memory");
  }
  {
    static const char *const fixed[] = {"Accept: application/json",
                                        "Content-Type: application/json",
                                        "Expect:"};
    size_t i;
    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
      struct curl_slist *next = curl_slist_append(c->headers, fixed[i]);
      if (next == NULL) return luaL_error(L, "floor: out of memory");
      c->headers = next;
    }
  }
  curl_easy_setopt(c->easy, CURLOPT_URL, url);
  curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c->easy, CURLOPT_USERAGENT, ua);
  curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
  curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &c->body);
  return 1;
}

static const luaL_Reg conn_methods[] = {
    {"post", conn_post}, {"close", conn_close}, {NULL, NULL}};

LUALIB_API int luaopen_floor(lua_State *L);
LUALIB_API int luaopen_floor(lua_State *L) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (luaL_newmetatable(L, FLOOR_CONN)) {
    lua_pushcfunction(L, conn_close);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    {
      const luaL_Reg *r;
      for (r = conn_methods; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
      }
    }
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, floor_open);
  lua_setfield(L, -2, "open");
  return 1;
}
