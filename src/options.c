/*
** options.c: every option a user can give, described once as rows (like
** the operations in ops.c), and the one reader that checks, converts and
** stores them. The checks, core.option_rows and the generated types and
** reference (scripts/describe.lua) all come from these rows: adding an
** option is one row.
*/
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

#define NOWHERE (-1)
#define DAYS_30 2592000

/* a scratch build may change one default (spec/policy_spec.lua) */
#ifndef SO_DEFAULT_TIMEOUT
#define SO_DEFAULT_TIMEOUT "120"
#endif
#ifndef SO_MAX_CONCURRENCY
#define SO_MAX_CONCURRENCY 64
#endif

static const so_option retry_rows[] = {
  { .name = "max_attempts", .type = SO_O_INT, .lua_type = "integer",
    .min = 1, .max = 100, .dflt = "4", .at = offsetof(so_retry, max_attempts),
    .doc = "Attempts at most" },
  { .name = "base_delay", .type = SO_O_SECONDS, .lua_type = "number",
    .min = 0, .dflt = "0.5", .at = offsetof(so_retry, base_delay),
    .doc = "Seconds: before attempt n+1 the client waits a random time in "
           "[0, min(max_delay, base_delay * factor^(n-1))]" },
  { .name = "factor", .type = SO_O_NUMBER, .lua_type = "number", .min = 1,
    .dflt = "2", .at = offsetof(so_retry, factor),
    .doc = "The backoff's growth" },
  { .name = "max_delay", .type = SO_O_SECONDS, .lua_type = "number",
    .min = 0, .dflt = "30", .at = offsetof(so_retry, max_delay),
    .doc = "The longest wait in seconds; a `Retry-After` asking for more "
           "fails the call at once with `retry_after` set" },
  { .name = "max_wait", .type = SO_O_SECONDS, .lua_type = "number", .min = 0,
    .dflt = "120", .at = offsetof(so_retry, max_wait),
    .doc = "Seconds of waiting in all, at most" },
  { .name = "maybe_applied", .type = SO_O_BOOLEAN, .lua_type = "boolean",
    .dflt = "false", .at = offsetof(so_retry, maybe_applied),
    .doc = "`true` retries a POST or DELETE even when the server may have "
           "acted on it (408, 5xx, a connection lost after sending): it may "
           "then be applied twice" },
  { .name = NULL }
};

static const so_option rate_limit_rows[] = {
  { .name = "requests", .type = SO_O_INT, .lua_type = "integer", .min = 1,
    .max = 1000000, .dflt = "1000", .at = offsetof(so_rate_limit, requests),
    .doc = "Requests at most in any window of `per` seconds" },
  { .name = "per", .type = SO_O_NUMBER, .lua_type = "number", .min = 0,
    .above = 1, .dflt = "60", .at = offsetof(so_rate_limit, per),
    .doc = "The window in seconds" },
  { .name = "shared", .type = SO_O_LUA, .lua_type = "stackone.LimitStore|table",
    .at = offsetof(so_rate_limit, shared),
    .doc = "A store that shares the budget with other processes and machines "
           "(`stackone.limit.redis(conn)`, `stackone.limit.host()`, "
           "`stackone.limit.ngx(dict)`, or your own: docs/limits.md); as "
           "data, for nginx's thread VMs: `{ ngx = \"dict\" }`, "
           "`{ host = true }`, `{ redis = { host =, port = } }`" },
  { .name = "name", .type = SO_O_LUA, .lua_type = "string", .at = NOWHERE,
    .doc = "The budget's name in the store (letters, digits, `_ . : -`; "
           "default: a SHA-256 digest of the API key, never the key)" },
  { .name = NULL }
};

#define SET(field) offsetof(so_settings, field)

const so_option so_client_rows[] = {
  { .name = "api_key", .type = SO_O_STRING, .lua_type = "string",
    .at = SET(api_key),
    .doc = "The API key, sent as Basic auth (the key as user, an empty "
           "password). Default: the `STACKONE_API_KEY` environment variable; "
           "required" },
  { .name = "account_id", .type = SO_O_STRING, .lua_type = "string",
    .at = SET(account_id),
    .doc = "The `x-account-id` header of every request (can be set per "
           "call). Default: `STACKONE_ACCOUNT_ID`" },
  { .name = "base_url", .type = SO_O_STRING, .lua_type = "string",
    .dflt = "https://api.stackone.com", .at = SET(base_url),
    .doc = "`http://` only to loopback hosts, unless `allow_insecure_http`" },
  { .name = "timeout", .type = SO_O_MS, .lua_type = "number", .min = 0,
    .above = 1, .max = DAYS_30, .dflt = SO_DEFAULT_TIMEOUT,
    .at = SET(timeout_ms), .doc = "Seconds for each attempt of a request" },
  { .name = "connect_timeout", .type = SO_O_MS, .lua_type = "number",
    .min = 0, .above = 1, .max = DAYS_30, .dflt = "10",
    .at = SET(connect_timeout_ms), .doc = "Seconds to connect" },
  { .name = "insecure", .type = SO_O_BOOLEAN, .lua_type = "boolean",
    .dflt = "false", .at = SET(insecure),
    .doc = "`true` turns TLS peer and host verification off (don't)" },
  { .name = "ca_file", .type = SO_O_STRING, .lua_type = "string",
    .at = SET(ca_file), .doc = "An extra CA bundle (a PEM file)" },
  { .name = "proxy", .type = SO_O_STRING, .lua_type = "string",
    .at = SET(proxy),
    .doc = "A proxy URL such as `http://proxy:3128`; without it libcurl's "
           "`http_proxy`, `https_proxy` and `no_proxy` variables apply" },
  { .name = "allow_insecure_http", .type = SO_O_BOOLEAN,
    .lua_type = "boolean", .dflt = "false", .at = SET(allow_insecure_http),
    .doc = "`true` allows `http://` to hosts other than loopback" },
  { .name = "max_response_bytes", .type = SO_O_SIZE, .lua_type = "integer",
    .min = 1, .dflt = "67108864", .at = SET(max_response_bytes),
    .doc = "Bigger responses fail with kind `too_large`" },
  { .name = "headers", .type = SO_O_TABLE,
    .lua_type = "table<string, string>", .at = SET(headers),
    .doc = "Headers sent on every request" },
  { .name = "retry", .type = SO_O_POLICY,
    .lua_type = "stackone.RetryOptions|boolean", .dflt = "true",
    .at = SET(retry), .fields = retry_rows,
    .doc = "The retry policy; `false` turns retrying off (one request on the "
           "wire), `true` keeps the defaults" },
  { .name = "rate_limit", .type = SO_O_POLICY,
    .lua_type = "stackone.RateLimitOptions|boolean", .dflt = "true",
    .at = SET(rate_limit), .fields = rate_limit_rows,
    .doc = "At most `requests` per `per` seconds, shared by the clients of "
           "one API key; `false` turns it off" },
  { .name = "sleep", .type = SO_O_FUNCTION, .lua_type = "fun(seconds: number)",
    .at = SET(sleep),
    .doc = "How to wait between attempts (default: block the thread); it may "
           "yield. Not with `loop`" },
  { .name = "debug", .type = SO_O_FUNCTION, .lua_type = "fun(text: string)",
    .at = SET(debug),
    .doc = "Gets each attempt's request and response headers, Authorization "
           "redacted; an error it raises comes back as `debug_error`" },
  { .name = "loop", .type = SO_O_TABLE, .lua_type = "stackone.LoopAdapter",
    .at = SET(loop),
    .must = "a loop adapter table (such as stackone.loop.luv(uv))",
    .doc = "Run calls in the host's event loop, from coroutines "
           "(`stackone.loop.luv(uv)`, `stackone.loop.neovim()`, "
           "`stackone.loop.cqueues(cq)`)" },
  { .name = NULL }
};

const so_option so_call_rows[] = {
  { .name = "account_id", .type = SO_O_STRING, .lua_type = "string",
    .at = offsetof(so_request, account), .any_bytes = 1,
    .doc = "The `x-account-id` of this call" },
  { .name = "timeout", .type = SO_O_MS, .lua_type = "number", .min = 0,
    .above = 1, .max = DAYS_30, .at = offsetof(so_request, timeout_ms),
    .doc = "Seconds for each attempt of this call" },
  { .name = "headers", .type = SO_O_TABLE,
    .lua_type = "table<string, string>", .at = NOWHERE,
    .doc = "Headers of this call; one replaces a client header of the same "
           "name. `Authorization`, `x-account-id`, `Host`, `Content-Length`, "
           "`Transfer-Encoding`, `Connection` and `Expect` cannot be set" },
  { .name = "retry", .type = SO_O_POLICY,
    .lua_type = "stackone.RetryOptions|boolean",
    .at = offsetof(so_request, retry), .fields = retry_rows,
    .doc = "The retry policy of this call; `false`: one request" },
  { .name = NULL }
};

/* journal, match and reconcile_margin belong to the Lua layer's journal
   (lua/stackone/journal.lua), which checks them */
const so_option so_bulk_rows[] = {
  { .name = "concurrency", .type = SO_O_INT, .lua_type = "integer",
    .min = 1, .max = SO_MAX_CONCURRENCY, .dflt = "8",
    .at = offsetof(so_bulk, concurrency), .doc = "Transfers in flight" },
  { .name = "on_progress", .type = SO_O_FUNCTION,
    .lua_type = "fun(done: integer, total: integer, failed: integer, "
                "wait?: stackone.BulkWait)",
    .at = offsetof(so_bulk, progress),
    .doc = "Called as results arrive, and once with `wait` when the batch "
           "starts waiting; an error it raises is `summary.progress_error`" },
  { .name = "journal", .type = SO_O_LUA, .lua_type = "string", .at = NOWHERE,
    .doc = "A file recording each record's intent before it is sent and its "
           "outcome after: a rerun with the same journal and records skips "
           "what was applied, reconciles what may have been, sends the rest "
           "(docs/reliability.md)" },
  { .name = "match", .type = SO_O_LUA,
    .lua_type = "fun(record: table, candidate: table): boolean?",
    .at = NOWHERE,
    .doc = "With `journal`: whether a contact found on the server is this "
           "record (default: a shared e-mail address, else the same names)" },
  { .name = "reconcile_margin", .type = SO_O_LUA, .lua_type = "number",
    .dflt = "600", .at = NOWHERE,
    .doc = "With `journal`: seconds before a record's intent from which the "
           "server's contacts are looked at" },
  { .name = NULL }
};

/* the tables of options, by core.options key */
const so_option_table so_option_tables[] = {
  { "client", so_client_rows }, { "call", so_call_rows },
  { "bulk", so_bulk_rows }, { "retry", retry_rows },
  { "rate_limit", rate_limit_rows }, { NULL, NULL }
};

static const char *const type_names[] = {
  "string", "boolean", "seconds", "seconds", "number", "integer", "integer",
  "function", "table", "policy", "any"
};

/* what a wrong value is told it must be: the row's words, or its type's
   and range's */
static void push_must(lua_State *L, const so_option *o) {
  const char *unit = o->type == SO_O_MS || o->type == SO_O_SECONDS
                         ? " of seconds" : "";
  if (o->must) {
    lua_pushstring(L, o->must);
    return;
  }
  switch (o->type) {
    case SO_O_STRING: lua_pushliteral(L, "a string"); break;
    case SO_O_BOOLEAN: lua_pushliteral(L, "a boolean"); break;
    case SO_O_FUNCTION: lua_pushliteral(L, "a function"); break;
    case SO_O_TABLE: lua_pushliteral(L, "a table"); break;
    case SO_O_POLICY: lua_pushliteral(L, "a table or false"); break;
    case SO_O_INT: case SO_O_SIZE:
      if (o->max > 0)
        lua_pushfstring(L, "a whole number from %d to %d", (int)o->min,
                        (int)o->max);
      else
        lua_pushfstring(L, "a whole number >= %d", (int)o->min);
      break;
    case SO_O_LUA: lua_pushliteral(L, "any value"); break;
    default:
      if (o->above && o->min == 0)
        lua_pushfstring(L, "a positive number%s", unit);
      else
        lua_pushfstring(L, "a number%s %s %d", unit, o->above ? ">" : ">=",
                        (int)o->min); /* whole: no "1.0" */
      break;
  }
}

/* "option 'timeout'" at the top, "retry.max_attempts" nested */
static int wrong(lua_State *L, const so_option *o, const char *table,
                 const char *got) {
  push_must(L, o);
  if (table)
    return so_usage(L, 0, "%s.%s must be %s%s%s", table, o->name,
                    lua_tostring(L, -1), got ? ", got " : "", got ? got : "");
  return so_usage(L, 0, "option '%s' must be %s%s%s", o->name,
                  lua_tostring(L, -1), got ? ", got " : "", got ? got : "");
}

static int in_range(const so_option *o, double v) {
  if (o->above ? !(v > o->min) : !(v >= o->min)) return 0;
  if (o->max > 0 && v > o->max) return 0;
  /* whole, and exact in a double (so the cast to size_t is defined) */
  if ((o->type == SO_O_INT || o->type == SO_O_SIZE) &&
      (v != floor(v) || v > 9007199254740992.0))
    return 0;
  return 1;
}

#define STORE(type, into, o, v) \
  do { if ((o)->at != NOWHERE) *(type *)((char *)(into) + (o)->at) = (v); } \
  while (0)

static void read_policy(lua_State *L, int idx, const so_option *o,
                        void *into);

/* checks the value on the top for row o and stores it; values kept by
   stack index (functions, tables) stay on the stack, the others are
   popped */
static void read_value(lua_State *L, const so_option *o, void *into,
                       const char *table) {
  int t = lua_type(L, -1), isnum;
  double v;
  switch (o->type) {
    case SO_O_STRING: {
      size_t len;
      const char *s;
      if (t != LUA_TSTRING) wrong(L, o, table, luaL_typename(L, -1));
      s = lua_tolstring(L, -1, &len);
      if (strlen(s) != len && !o->any_bytes) /* C would see only the part
                                                before it */
        so_usage(L, 0, "option '%s' contains a NUL byte", o->name);
      STORE(const char *, into, o, s); /* the options table keeps it */
      break;
    }
    case SO_O_BOOLEAN:
      if (t != LUA_TBOOLEAN) wrong(L, o, table, NULL);
      STORE(int, into, o, lua_toboolean(L, -1));
      break;
    case SO_O_FUNCTION: case SO_O_TABLE: case SO_O_LUA:
      if ((o->type == SO_O_FUNCTION && t != LUA_TFUNCTION) ||
          (o->type == SO_O_TABLE && t != LUA_TTABLE))
        wrong(L, o, table, NULL);
      if (o->at != NOWHERE) {
        STORE(int, into, o, lua_gettop(L));
        return;
      }
      break;
    case SO_O_POLICY:
      if (t == LUA_TBOOLEAN)
        STORE(int, into, o, lua_toboolean(L, -1)); /* its `enabled` */
      else if (t == LUA_TTABLE)
        read_policy(L, lua_gettop(L), o, into);
      else
        wrong(L, o, table, NULL);
      if (t == LUA_TTABLE && o->at != NOWHERE) return; /* `shared` in it */
      break;
    default:
      v = lua_tonumberx(L, -1, &isnum);
      if (!isnum || !in_range(o, v)) wrong(L, o, table, NULL);
      if (o->type == SO_O_MS)
        STORE(long, into, o, v * 1000 < 1 ? 1 : (long)(v * 1000));
      else if (o->type == SO_O_INT)
        STORE(int, into, o, (int)v);
      else if (o->type == SO_O_SIZE)
        STORE(size_t, into, o, (size_t)v);
      else
        STORE(double, into, o, v);
      break;
  }
  lua_pop(L, 1);
}

/* reads the rows' values from the table at t into `into`; a row that is
   absent keeps what `into` holds */
void so_read_rows(lua_State *L, int t, const so_option *rows, void *into,
                  const char *table) {
  const so_option *o;
  t = lua_absindex(L, t);
  for (o = rows; o->name; o++) {
    luaL_checkstack(L, 2, "too many options");
    if (so_rawfield(L, t, o->name) == LUA_TNIL)
      lua_pop(L, 1);
    else
      read_value(L, o, into, table);
  }
}

/* the one names check: every key of the table at t is a row of `rows` or
   of `more` (NULL: none) */
void so_check_option_names(lua_State *L, int t, const so_option *rows,
                           const so_option *more, const char *table) {
  const char *names[32];
  size_t n = 0;
  const so_option *o;
  for (o = rows; o->name && n < 31; o++) names[n++] = o->name;
  for (o = more; o && o->name && n < 31; o++) names[n++] = o->name;
  names[n] = NULL;
  if (table) {
    lua_pushfstring(L, "%s option", table);
    so_check_names(L, t, names, sizeof(char *), lua_tostring(L, -1));
    lua_pop(L, 1);
  } else {
    so_check_names(L, t, names, sizeof(char *), "option");
  }
}

/* a policy given as a table: enabled, and its rows over what it holds */
static void read_policy(lua_State *L, int idx, const so_option *o,
                        void *into) {
  void *policy = (char *)into + o->at;
  STORE(int, into, o, 1);
  so_check_option_names(L, idx, o->fields, NULL, o->name);
  so_read_rows(L, idx, o->fields, policy, o->name);
}

void so_read_options(lua_State *L, int t, const so_option *rows, void *into) {
  so_check_option_names(L, t, rows, NULL, NULL);
  so_read_rows(L, t, rows, into, NULL);
}

/* writes the rows' defaults into `into` (what no default has is left) */
void so_option_defaults(const so_option *rows, void *into) {
  const so_option *o;
  for (o = rows; o->name; o++) {
    double v;
    if (o->dflt == NULL || o->at == NOWHERE) continue;
    v = strtod(o->dflt, NULL);
    switch (o->type) {
      case SO_O_STRING: STORE(const char *, into, o, o->dflt); break;
      case SO_O_BOOLEAN: STORE(int, into, o, strcmp(o->dflt, "true") == 0); break;
      case SO_O_MS: STORE(long, into, o, (long)(v * 1000)); break;
      case SO_O_INT: STORE(int, into, o, (int)v); break;
      case SO_O_SIZE: STORE(size_t, into, o, (size_t)v); break;
      case SO_O_SECONDS: case SO_O_NUMBER: STORE(double, into, o, v); break;
      case SO_O_POLICY:
        STORE(int, into, o, strcmp(o->dflt, "true") == 0);
        so_option_defaults(o->fields, (char *)into + o->at);
        break;
      default: break;
    }
  }
}

/* a whole number as an integer: 120, not 120.0 */
static void push_number(lua_State *L, double v) {
  if (v == floor(v) && fabs(v) < 1e15)
    lua_pushinteger(L, (lua_Integer)v);
  else
    lua_pushnumber(L, v);
}

/* the default as a Lua value: a number, a boolean or a string */
static void push_default(lua_State *L, const so_option *o) {
  switch (o->type) {
    case SO_O_STRING: lua_pushstring(L, o->dflt); break;
    case SO_O_BOOLEAN: case SO_O_POLICY:
      lua_pushboolean(L, strcmp(o->dflt, "true") == 0);
      break;
    default: push_number(L, strtod(o->dflt, NULL)); break;
  }
}

static void push_rows(lua_State *L, const so_option *rows) {
  const so_option *o;
  int i = 0;
  lua_newtable(L);
  for (o = rows; o->name; o++) {
    lua_createtable(L, 0, 9);
    lua_pushstring(L, o->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, type_names[o->type]);
    lua_setfield(L, -2, "type");
    lua_pushstring(L, o->lua_type);
    lua_setfield(L, -2, "lua_type");
    lua_pushstring(L, o->doc);
    lua_setfield(L, -2, "doc");
    push_must(L, o);
    lua_setfield(L, -2, "must");
    if (o->type == SO_O_INT || o->type == SO_O_SIZE || o->type == SO_O_MS ||
        o->type == SO_O_SECONDS || o->type == SO_O_NUMBER) {
      push_number(L, o->min);
      lua_setfield(L, -2, "min");
      if (o->max > 0) {
        push_number(L, o->max);
        lua_setfield(L, -2, "max");
      }
      lua_pushboolean(L, o->above);
      lua_setfield(L, -2, "above");
    }
    if (o->dflt) {
      push_default(L, o);
      lua_setfield(L, -2, "default");
    }
    if (o->fields) {
      push_rows(L, o->fields);
      lua_setfield(L, -2, "fields");
    }
    lua_rawseti(L, -2, ++i);
  }
}

/* core.options: the names of each table; core.option_rows: the rows */
void so_push_options(lua_State *L) {
  const so_option_table *t;
  const so_option *o;
  lua_newtable(L);
  for (t = so_option_tables; t->name; t++) {
    int i = 0;
    lua_newtable(L);
    for (o = t->rows; o->name; o++) {
      lua_pushstring(L, o->name);
      lua_rawseti(L, -2, ++i);
    }
    lua_setfield(L, -2, t->name);
  }
}

void so_push_option_rows(lua_State *L) {
  const so_option_table *t;
  lua_newtable(L);
  for (t = so_option_tables; t->name; t++) {
    push_rows(L, t->rows);
    lua_setfield(L, -2, t->name);
  }
}
