/*
** client.c: the client handle, in the style of Lua's file handle: made
** closed and safe first, then filled in; __gc, __close and close are one
** idempotent function; a separate method table.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "stackone.h"


/* the open client of the Lua layer's own calls (_io_*, _on_close) */
so_client *so_check_client(lua_State *L, int idx) {
  so_client *c = luaL_checkudata(L, idx, SO_CLIENT_MT);
  if (c->closed) luaL_error(L, "attempt to use a closed stackone client");
  return c;
}

static void wipe_free(char *s) {
  if (s) {
    volatile char *v = s;
    /* our copies of the key are wiped before they are freed (libcurl's
       own request buffers are out of our hands) */
    while (*v) *v++ = '\0';
    free(s);
  }
}

/* __gc, __close and close: frees everything, safe to call again. Calls
   in flight end with kind "closed"; the Lua layer's on_close (a loop
   driver letting go of its watchers) runs under lua_pcall. */
static int client_close(lua_State *L) {
  so_client *c = luaL_checkudata(L, 1, SO_CLIENT_MT);
  int was_open = !c->closed;
  so_engine_close(&c->eng);
  so_free_default_headers(c);
  wipe_free(c->auth_header);
  c->auth_header = NULL;
  free(c->account_id);
  free(c->base_url);
  free(c->user_agent);
  free(c->ca_file);
  so_ca_bundle_close(&c->ca);
  free(c->proxy);
  c->account_id = c->base_url = c->user_agent = c->ca_file = c->proxy = NULL;
  c->closed = 1;
  if (was_open && lua_getiuservalue(L, 1, SO_UV_HOOKS) == LUA_TTABLE &&
      lua_getfield(L, -1, "on_close") == LUA_TFUNCTION)
    lua_pcall(L, 0, 0, 0) == LUA_OK ? (void)0 : lua_pop(L, 1);
  lua_settop(L, 1);
  so_engine_close_sockets(&c->eng); /* the loop has let go of them */
  so_buf_free(&c->eng.closing);
  lua_pushboolean(L, 1);
  return 1;
}

/* client:_on_close(fn): the Lua layer's loop driver, told of the close */
static int client_on_close(lua_State *L) {
  so_check_client(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_getiuservalue(L, 1, SO_UV_HOOKS);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "on_close");
  return 0;
}

/* client:_target() -> base_url, account_id | nil: where its records go,
   as the client resolved them (its defaults, the environment), for the
   journals of the Lua layer */
static int client_target(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  lua_pushstring(L, c->base_url);
  if (c->account_id) lua_pushstring(L, c->account_id); else lua_pushnil(L);
  return 2;
}

static int client_tostring(lua_State *L) {
  so_client *c = luaL_checkudata(L, 1, SO_CLIENT_MT);
  if (c->closed)
    lua_pushliteral(L, SO_CLIENT_MT " (closed)");
  else
    lua_pushfstring(L, SO_CLIENT_MT " (%p)", (void *)c);
  return 1;
}

static char *dup_string(lua_State *L, const char *s) {
  char *d = malloc(strlen(s) + 1);
  if (d == NULL) luaL_error(L, "not enough memory");
  return strcpy(d, s);
}

static char *base64(const unsigned char *s, size_t len) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
  size_t i;
  if (out == NULL) return NULL;
  for (i = 0; i + 2 < len; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    *o++ = tab[v >> 18];
    *o++ = tab[(v >> 12) & 63];
    *o++ = tab[(v >> 6) & 63];
    *o++ = tab[v & 63];
  }
  if (i < len) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0);
    *o++ = tab[v >> 18];
    *o++ = tab[(v >> 12) & 63];
    *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  return out;
}

/* "Authorization: Basic base64(key:)", wiping the temporary copies */
static char *auth_header(const char *key) {
  size_t len = strlen(key);
  char *plain = malloc(len + 2), *encoded, *line = NULL;
  if (plain == NULL) return NULL;
  memcpy(plain, key, len);
  plain[len] = ':';
  plain[len + 1] = '\0';
  encoded = base64((const unsigned char *)plain, len + 1);
  wipe_free(plain);
  if (encoded) {
    line = malloc(strlen(encoded) + sizeof("Authorization: Basic "));
    if (line) strcat(strcpy(line, "Authorization: Basic "), encoded);
    wipe_free(encoded);
  }
  return line;
}

/* checks a headers table into `into` ({ [lower] = "Name: value" });
   returns 0 with err set when a name or value is not acceptable */
int so_collect_headers(lua_State *L, int headers, int into, char *err,
                       size_t errlen) {
  static const char *const reserved[] = {
    "authorization", "x-account-id", "host", "content-length",
    "transfer-encoding", "connection", "expect", NULL
  };
  lua_pushnil(L);
  while (lua_next(L, headers)) {
    size_t nlen, vlen, i;
    const char *name, *value;
    char lower[128];
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
      snprintf(err, errlen, "headers must map names to string values");
      lua_pop(L, 2);
      return 0;
    }
    name = lua_tolstring(L, -2, &nlen);
    value = lua_tolstring(L, -1, &vlen);
    if (nlen >= sizeof(lower) || !so_header_name_ok(name, nlen)) {
      snprintf(err, errlen, "header name '%.60s' is not a valid HTTP token",
               name);
      lua_pop(L, 2);
      return 0;
    }
    if (!so_header_value_ok(value, vlen)) {
      snprintf(err, errlen, "header '%s' has CR, LF, NUL or another control "
               "character in its value", name);
      lua_pop(L, 2);
      return 0;
    }
    for (i = 0; i < nlen; i++) lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    lower[nlen] = '\0';
    for (i = 0; reserved[i] && strcmp(reserved[i], lower) != 0; i++) {}
    if (reserved[i]) {
      snprintf(err, errlen, "header '%s' is set by the client itself%s", name,
               strcmp(lower, "x-account-id") == 0
                   ? " (use the account_id option)" : "");
      lua_pop(L, 2);
      return 0;
    }
    lua_pushstring(L, lower);
    lua_pushfstring(L, "%s: %s", name, value);
    lua_rawset(L, into);
    lua_pop(L, 1);
  }
  return 1;
}

/* the client's rate limiter: shared by every client of the same API key
   and limits in this Lua state (state.limiters holds them weakly) */
static void push_limiter(lua_State *L, const char *key, double requests,
                         double per) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a: the key itself is not kept */
  const unsigned char *p;
  int n = (int)requests;
  for (p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  lua_getfield(L, SO_STATE, "limiters");
  lua_pushfstring(L, "%p:%d/%f", (void *)(uintptr_t)h, n, per);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  /* a margin for the way to the server: requests sent one window apart
     may arrive a little closer together */
  so_limiter_push(L, n, per * 1.02);
  lua_pushfstring(L, "%p:%d/%f", (void *)(uintptr_t)h, n, per);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_remove(L, -2);
}

static void push_index(lua_State *L, int idx) {
  if (idx) lua_pushvalue(L, idx); else lua_pushnil(L);
}

/* sleep, debug, the loop and the rate limiter, in the hooks user value;
   the handle is on the top of the stack */
static void set_hooks(lua_State *L, const so_settings *s, const char *key) {
  so_client *c = lua_touserdata(L, -1);
  c->has_debug = s->debug != 0;
  c->has_shared = s->rate_limit.shared != 0;
  lua_getiuservalue(L, -1, SO_UV_HOOKS);
  push_index(L, s->sleep);
  lua_setfield(L, -2, "sleep");
  push_index(L, s->debug);
  lua_setfield(L, -2, "debug");
  if (s->rate_limit.enabled)
    push_limiter(L, key, s->rate_limit.requests, s->rate_limit.per);
  else
    lua_pushnil(L);
  c->limiter = lua_touserdata(L, -1); /* the hooks keep it */
  lua_setfield(L, -2, "limiter");
  /* the shared budget: the Lua layer puts its own object here (see
     stackone.limit) */
  push_index(L, s->rate_limit.shared);
  lua_setfield(L, -2, "shared");
  push_index(L, s->loop);
  lua_setfield(L, -2, "loop");
  lua_pop(L, 1); /* hooks */
}

/* the options' own checks, past their rows: the key and the account from
   the environment, the loop or sleep */
static void settle(lua_State *L, so_settings *s) {
  if (s->api_key == NULL || *s->api_key == '\0')
    s->api_key = getenv("STACKONE_API_KEY");
  if (s->api_key == NULL || *s->api_key == '\0')
    so_usage(L, 0, "api_key is required (pass api_key or set "
             "STACKONE_API_KEY)");
  if (s->account_id == NULL || *s->account_id == '\0')
    s->account_id = getenv("STACKONE_ACCOUNT_ID");
  if (s->account_id && *s->account_id == '\0') s->account_id = NULL;
  if (s->loop && s->sleep)
    so_usage(L, 0, "give 'loop' or 'sleep', not both (with a loop, every "
             "wait is a timer of the loop)");
}

/* a safe, closed handle: an error from here on leaks nothing */
static so_client *new_handle(lua_State *L) {
  so_client *c = lua_newuserdatauv(L, sizeof(so_client), SO_CLIENT_UV_COUNT);
  memset(c, 0, sizeof(*c));
  so_engine_blank(&c->eng);
  c->closed = 1;
  luaL_setmetatable(L, SO_CLIENT_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, SO_UV_HEADERS);
  lua_newtable(L);
  lua_setiuservalue(L, -2, SO_UV_HOOKS);
  lua_newtable(L);
  lua_setiuservalue(L, -2, SO_UV_URLS);
  return c;
}

/* the base URL, the proxy and the headers: bad content is `nil, err` */
static int set_endpoint(lua_State *L, so_client *c, const so_settings *s,
                        int handle) {
  char err[320], *normalized = NULL;
  if (s->account_id &&
      !so_header_value_ok(s->account_id, strlen(s->account_id)))
    return so_push_invalid(L, NULL, NULL, "account_id has CR, LF, NUL or "
                           "another control character");
  if (!so_check_base_url(s->base_url, s->allow_insecure_http, err,
                         sizeof(err), &normalized))
    return so_push_invalid(L, NULL, NULL, "%s", err);
  c->base_url = normalized;
  /* plain http is allowed to loopback only: a proxy (the option, or
     libcurl's http_proxy variables) would see the key in clear text */
  c->no_proxy = strncmp(normalized, "http:", 5) == 0 &&
                !s->allow_insecure_http;
  if (c->no_proxy && s->proxy)
    return so_push_invalid(L, NULL, NULL, "a proxy with an http:// base_url "
                           "would see the API key in clear text (use https, "
                           "or set allow_insecure_http = true)");
  if (s->headers) {
    lua_getiuservalue(L, handle, SO_UV_HEADERS);
    if (!so_collect_headers(L, s->headers, lua_gettop(L), err, sizeof(err)))
      return so_push_invalid(L, NULL, NULL, "%s", err);
    lua_pop(L, 1);
  }
  return 0;
}

/* core.new(opts) -> client | nil, err; raises on programmer
   errors (a missing api_key, options of the wrong type) */
int so_client_new(lua_State *L) {
  so_settings s;
  so_client *c;
  int handle;
  curl_version_info_data *ver = curl_version_info(CURLVERSION_NOW);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  memset(&s, 0, sizeof(s));
  so_option_defaults(so_client_rows, &s);
  so_read_options(L, 1, so_client_rows, &s);
  settle(L, &s);

  c = new_handle(L);
  handle = lua_gettop(L);
  if (set_endpoint(L, c, &s, handle)) return 2;
  c->timeout_ms = s.timeout_ms;
  c->connect_timeout_ms = s.connect_timeout_ms;
  c->insecure = s.insecure;
  c->max_response_bytes = s.max_response_bytes;
  c->retry = s.retry;
  if (s.ca_file) c->ca_file = dup_string(L, s.ca_file);
  /* only a client that may verify a peer pays for the bundle */
  if (s.ca_file && !s.insecure && strncmp(c->base_url, "https:", 6) == 0)
    so_ca_bundle_make(&c->ca, s.ca_file);
  if (s.proxy) c->proxy = dup_string(L, s.proxy);
  if (s.account_id) c->account_id = dup_string(L, s.account_id);
  c->rng = (uint64_t)(uintptr_t)c ^ (uint64_t)time(NULL) << 20;
  set_hooks(L, &s, s.api_key);

  lua_pushfstring(L, "stackone-lua/" SO_VERSION " libcurl/%s Lua/"
                  LUA_VERSION_MAJOR "." LUA_VERSION_MINOR, ver->version);
  c->user_agent = dup_string(L, lua_tostring(L, -1));
  lua_pop(L, 1);
  c->auth_header = auth_header(s.api_key);
  if (c->auth_header == NULL) return luaL_error(L, "not enough memory");
  if (!so_engine_init(&c->eng, s.loop != 0))
    return so_usage(L, 0, "curl_multi_init failed");
  c->closed = 0;
  { /* one handle up front: libcurl's verdict on the options comes now */
    so_slot *first = so_engine_acquire(&c->eng, c);
    if (first == NULL)
      return so_usage(L, 0, "libcurl rejected an option");
    so_engine_release(&c->eng, first);
  }
  lua_settop(L, handle);
  return 1;
}

void so_client_metatable(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", client_close},
    {"_start", so_client_start},
    {"_call", so_client_call},
    {"_start_many", so_client_start_many},
    {"_check", so_client_check},
    {"_check_many", so_client_check_many},
    {"_io_changes", so_client_io_changes},
    {"_io_action", so_client_io_action},
    {"_io_done", so_client_io_done},
    {"_io_gather", so_client_io_gather},
    {"_on_close", client_on_close},
    {"_target", client_target},
    {NULL, NULL}
  };
  static const luaL_Reg meta[] = {
    {"__gc", client_close},
    {"__close", client_close},
    {"__tostring", client_tostring},
    {NULL, NULL}
  };
  luaL_newmetatable(L, SO_CLIENT_MT);
  lua_pushvalue(L, -2);                /* upvalue: the module state */
  luaL_setfuncs(L, meta, 1);
  luaL_newlibtable(L, methods);
  lua_pushvalue(L, -3);                /* state */
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}
