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


const char *const so_client_options[] = {
  "api_key", "account_id", "base_url", "timeout", "connect_timeout",
  "insecure", "ca_file", "proxy", "allow_insecure_http",
  "max_response_bytes", "headers", "retry", "rate_limit", "sleep", "debug",
  "loop", NULL
};

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
  wipe_free(c->auth_header);
  c->auth_header = NULL;
  free(c->account_id);
  free(c->base_url);
  free(c->user_agent);
  free(c->ca_file);
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

static const char *opt_string(lua_State *L, int opts, const char *name) {
  const char *s = NULL;
  size_t len = 0;
  int t = so_rawfield(L, opts, name);
  if (t == LUA_TSTRING)
    s = lua_tolstring(L, -1, &len);
  else if (t != LUA_TNIL)
    so_usage(L, 0, "option '%s' must be a string, got %s", name,
             luaL_typename(L, -1));
  if (s && strlen(s) != len) /* C would see only the part before it */
    so_usage(L, 0, "option '%s' contains a NUL byte", name);
  lua_pop(L, 1); /* opts keeps the string alive */
  return s;
}

static int opt_bool(lua_State *L, int opts, const char *name) {
  int t = so_rawfield(L, opts, name), v = lua_toboolean(L, -1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    so_usage(L, 0, "option '%s' must be a boolean", name);
  lua_pop(L, 1);
  return v;
}

/* seconds -> milliseconds; must be a positive number */
long so_seconds_ms(lua_State *L, int idx, const char *name) {
  lua_Number s;
  int isnum;
  s = lua_tonumberx(L, idx, &isnum);
  if (!isnum || !(s > 0) || s > 86400 * 30)
    so_usage(L, 0, "option '%s' must be a positive number of seconds", name);
  return s * 1000 < 1 ? 1 : (long)(s * 1000);
}

static long opt_seconds(lua_State *L, int opts, const char *name, long dflt) {
  long ms = dflt;
  if (so_rawfield(L, opts, name) != LUA_TNIL)
    ms = so_seconds_ms(L, -1, name);
  lua_pop(L, 1);
  return ms;
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

const char *const so_retry_options[] = {
  "max_attempts", "base_delay", "factor", "max_delay", "max_wait",
  "maybe_applied", NULL
};

/* reads a retry option (false, true or a table) over the values in r */
int so_read_retry(lua_State *L, int idx, so_retry *r) {
  if (lua_type(L, idx) == LUA_TBOOLEAN) {
    r->enabled = lua_toboolean(L, idx);
    return 1;
  }
  if (lua_type(L, idx) != LUA_TTABLE)
    return so_usage(L, 0, "option 'retry' must be a table or false");
  r->enabled = 1;
  so_check_names(L, idx, so_retry_options, sizeof(char *), "retry option");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *key = lua_tostring(L, -2);
    int i = so_name_index(L, -2, so_retry_options, sizeof(char *)), isnum;
    double v;
    if (i == 5) {
      if (!lua_isboolean(L, -1))
        so_usage(L, 0, "retry.maybe_applied must be a boolean");
      r->maybe_applied = lua_toboolean(L, -1);
      lua_pop(L, 1);
      continue;
    }
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || v < 0 || (i == 0 && (v < 1 || v > 100 || v != (int)v)) ||
        (i == 2 && v < 1))
      so_usage(L, 0, "retry.%s must be %s", key,
               i == 0 ? "a whole number from 1 to 100"
               : i == 2 ? "a number >= 1" : "a number of seconds >= 0");
    switch (i) {
      case 0: r->max_attempts = (int)v; break;
      case 1: r->base_delay = v; break;
      case 2: r->factor = v; break;
      case 3: r->max_delay = v; break;
      default: r->max_wait = v; break;
    }
    lua_pop(L, 1);
  }
  return 1;
}

const char *const so_rate_limit_options[] = {"requests", "per", "shared",
                                              "name", NULL};

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

static double positive_field(lua_State *L, int t, const char *name,
                             double dflt) {
  double v = dflt;
  if (so_rawfield(L, t, name) != LUA_TNIL) {
    int isnum;
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(v > 0))
      so_usage(L, 0, "rate_limit.%s must be a positive number",
               name);
  }
  lua_pop(L, 1);
  return v;
}

/* sleep, debug, the loop and the rate limiter, in the hooks user value;
   the handle is on the top of the stack */
static void set_hooks(lua_State *L, const char *key) {
  int handle = lua_gettop(L);
  lua_getiuservalue(L, handle, SO_UV_HOOKS);
  if (so_rawfield(L, 1, "sleep") != LUA_TNIL && !lua_isfunction(L, -1))
    so_usage(L, 0, "option 'sleep' must be a function");
  lua_setfield(L, -2, "sleep");
  if (so_rawfield(L, 1, "debug") != LUA_TNIL && !lua_isfunction(L, -1))
    so_usage(L, 0, "option 'debug' must be a function");
  lua_setfield(L, -2, "debug");
  switch (so_rawfield(L, 1, "rate_limit")) {
    case LUA_TNIL:
      push_limiter(L, key, 1000, 60);
      break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, -1))
        push_limiter(L, key, 1000, 60);
      else
        lua_pushnil(L);
      break;
    case LUA_TTABLE: {
      int t = lua_gettop(L);
      so_check_names(L, t, so_rate_limit_options, sizeof(char *),
                     "rate_limit option");
      {
        double requests = positive_field(L, t, "requests", 1000);
        if (requests != (double)(int)requests || requests > 1000000)
          so_usage(L, 0, "rate_limit.requests must be a whole "
                   "number from 1 to 1000000");
        push_limiter(L, key, requests, positive_field(L, t, "per", 60));
      }
      /* the shared budget: the Lua layer puts its own object here (see
         stackone.limit) */
      so_rawfield(L, t, "shared");
      lua_setfield(L, -4, "shared");
      break;
    }
    default:
      so_usage(L, 0, "option 'rate_limit' must be a table or "
               "false");
  }
  lua_setfield(L, -3, "limiter");
  lua_pop(L, 1); /* rate_limit */
  if (so_rawfield(L, 1, "loop") != LUA_TNIL) {
    if (!lua_istable(L, -1))
      so_usage(L, 0, "option 'loop' must be a loop adapter "
               "table (such as stackone.loop.luv(uv))");
    if (so_rawfield(L, 1, "sleep") != LUA_TNIL)
      so_usage(L, 0, "give 'loop' or 'sleep', not both (with "
               "a loop, every wait is a timer of the loop)");
    lua_pop(L, 1);
  }
  lua_setfield(L, -2, "loop");
  lua_pop(L, 1); /* hooks */
}

/* core.new(opts) -> client | nil, err; raises on programmer
   errors (a missing api_key, options of the wrong type) */
int so_client_new(lua_State *L) {
  so_client *c;
  const char *key, *account, *base, *s;
  size_t account_len = 0;
  int insecure_http;
  char err[320], *normalized = NULL;
  curl_version_info_data *ver;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2); /* the handle goes to 3 */
  so_check_names(L, 1, so_client_options, sizeof(char *), "option");

  key = opt_string(L, 1, "api_key");
  if (key == NULL || *key == '\0') key = getenv("STACKONE_API_KEY");
  if (key == NULL || *key == '\0')
    return so_usage(L, 0, "api_key is required (pass api_key "
                         "or set STACKONE_API_KEY)");
  account = opt_string(L, 1, "account_id");
  if (account == NULL || *account == '\0') account = getenv("STACKONE_ACCOUNT_ID");
  if (account && *account == '\0') account = NULL;
  if (account) account_len = strlen(account);
  base = opt_string(L, 1, "base_url");
  if (base == NULL) base = "https://api.stackone.com";

  /* a safe, closed handle first: an error from here on leaks nothing */
  c = lua_newuserdatauv(L, sizeof(so_client), 2);
  memset(c, 0, sizeof(*c));
  so_engine_blank(&c->eng);
  c->closed = 1;
  luaL_setmetatable(L, SO_CLIENT_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, SO_UV_HEADERS);
  lua_newtable(L);
  lua_setiuservalue(L, -2, SO_UV_HOOKS);

  if (account && !so_header_value_ok(account, account_len))
    return so_push_invalid(L, NULL, NULL, "account_id has CR, LF, NUL or "
                           "another control character");
  insecure_http = opt_bool(L, 1, "allow_insecure_http");
  if (!so_check_base_url(base, insecure_http, err, sizeof(err), &normalized))
    return so_push_invalid(L, NULL, NULL, "%s", err);
  c->base_url = normalized;
  /* plain http is allowed to loopback only: a proxy (the option, or
     libcurl's http_proxy variables) would see the key in clear text */
  c->no_proxy = strncmp(normalized, "http:", 5) == 0 && !insecure_http;
  if (c->no_proxy && opt_string(L, 1, "proxy"))
    return so_push_invalid(L, NULL, NULL, "a proxy with an http:// base_url "
                           "would see the API key in clear text (use https, "
                           "or set allow_insecure_http = true)");
  if (so_rawfield(L, 1, "headers") != LUA_TNIL) {
    if (!lua_istable(L, -1))
      return so_usage(L, 0, "option 'headers' must be a table");
    lua_getiuservalue(L, 3, SO_UV_HEADERS);
    if (!so_collect_headers(L, 4, 5, err, sizeof(err)))
      return so_push_invalid(L, NULL, NULL, "%s", err);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  c->timeout_ms = opt_seconds(L, 1, "timeout", 120000);
  c->connect_timeout_ms = opt_seconds(L, 1, "connect_timeout", 10000);
  c->insecure = opt_bool(L, 1, "insecure");
  c->max_response_bytes = 64 * 1024 * 1024;
  if (so_rawfield(L, 1, "max_response_bytes") != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      return so_usage(L, 0, "option 'max_response_bytes' must be "
                           "a positive integer");
    c->max_response_bytes = (size_t)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  if ((s = opt_string(L, 1, "ca_file")) != NULL) c->ca_file = dup_string(L, s);
  if ((s = opt_string(L, 1, "proxy")) != NULL) c->proxy = dup_string(L, s);
  if (account) c->account_id = dup_string(L, account);
  so_retry_defaults(&c->retry);
  if (so_rawfield(L, 1, "retry") != LUA_TNIL)
    so_read_retry(L, lua_gettop(L), &c->retry);
  lua_pop(L, 1);
  c->rng = (uint64_t)(uintptr_t)c ^ (uint64_t)time(NULL) << 20;
  set_hooks(L, key);

  ver = curl_version_info(CURLVERSION_NOW);
  lua_pushfstring(L, "stackone-lua/" SO_VERSION " libcurl/%s Lua/"
                  LUA_VERSION_MAJOR "." LUA_VERSION_MINOR, ver->version);
  c->user_agent = dup_string(L, lua_tostring(L, -1));
  lua_pop(L, 1);
  c->auth_header = auth_header(key);
  if (c->auth_header == NULL) return luaL_error(L, "not enough memory");
  lua_getiuservalue(L, 3, SO_UV_HOOKS);
  lua_getfield(L, -1, "loop");
  if (!so_engine_init(&c->eng, !lua_isnil(L, -1)))
    return so_usage(L, 0, "curl_multi_init failed");
  lua_pop(L, 2);
  c->closed = 0;
  { /* one handle up front: libcurl's verdict on the options comes now */
    so_slot *first = so_engine_acquire(&c->eng, c);
    if (first == NULL)
      return so_usage(L, 0, "libcurl rejected an option");
    so_engine_release(&c->eng, first);
  }
  return 1;
}

void so_client_metatable(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", client_close},
    {"_start", so_client_start},
    {"_start_many", so_client_start_many},
    {"_check", so_client_check},
    {"_check_many", so_client_check_many},
    {"_io_changes", so_client_io_changes},
    {"_io_action", so_client_io_action},
    {"_io_done", so_client_io_done},
    {"_io_gather", so_client_io_gather},
    {"_on_close", client_on_close},
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
