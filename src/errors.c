/*
** errors.c: the error objects returned as `nil, err`. Every runtime
** failure is a table with stable fields and a one-line __tostring.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stackone.h"

#define CODE(name) case CURLE_##name: return #name

/* libcurl's own names for its codes, without the CURLE_ prefix */
const char *so_curl_code_name(CURLcode code) {
  switch (code) {
    CODE(OK); CODE(UNSUPPORTED_PROTOCOL); CODE(FAILED_INIT);
    CODE(URL_MALFORMAT); CODE(NOT_BUILT_IN); CODE(COULDNT_RESOLVE_PROXY);
    CODE(COULDNT_RESOLVE_HOST); CODE(COULDNT_CONNECT);
    CODE(WEIRD_SERVER_REPLY); CODE(REMOTE_ACCESS_DENIED);
    CODE(HTTP2); CODE(PARTIAL_FILE); CODE(HTTP_RETURNED_ERROR);
    CODE(WRITE_ERROR); CODE(UPLOAD_FAILED); CODE(READ_ERROR);
    CODE(OUT_OF_MEMORY); CODE(OPERATION_TIMEDOUT); CODE(RANGE_ERROR);
    CODE(HTTP_POST_ERROR); CODE(SSL_CONNECT_ERROR);
    CODE(BAD_DOWNLOAD_RESUME); CODE(FUNCTION_NOT_FOUND);
    CODE(ABORTED_BY_CALLBACK); CODE(BAD_FUNCTION_ARGUMENT);
    CODE(INTERFACE_FAILED); CODE(TOO_MANY_REDIRECTS);
    CODE(UNKNOWN_OPTION); CODE(GOT_NOTHING); CODE(SSL_ENGINE_NOTFOUND);
    CODE(SSL_ENGINE_SETFAILED); CODE(SEND_ERROR); CODE(RECV_ERROR);
    CODE(SSL_CERTPROBLEM); CODE(SSL_CIPHER); CODE(PEER_FAILED_VERIFICATION);
    CODE(BAD_CONTENT_ENCODING); CODE(FILESIZE_EXCEEDED);
    CODE(USE_SSL_FAILED); CODE(SEND_FAIL_REWIND); CODE(SSL_ENGINE_INITFAILED);
    CODE(LOGIN_DENIED); CODE(SSL_CACERT_BADFILE); CODE(SSL_SHUTDOWN_FAILED);
    CODE(AGAIN); CODE(SSL_CRL_BADFILE); CODE(SSL_ISSUER_ERROR);
    CODE(CHUNK_FAILED); CODE(NO_CONNECTION_AVAILABLE);
    CODE(SSL_PINNEDPUBKEYNOTMATCH); CODE(SSL_INVALIDCERTSTATUS);
    CODE(HTTP2_STREAM); CODE(RECURSIVE_API_CALL);
#if LIBCURL_VERSION_NUM >= 0x074400
    CODE(HTTP3);
#endif
#if LIBCURL_VERSION_NUM >= 0x074500
    CODE(QUIC_CONNECT_ERROR);
#endif
#if LIBCURL_VERSION_NUM >= 0x074900
    CODE(PROXY);
#endif
#if LIBCURL_VERSION_NUM >= 0x074d00
    CODE(SSL_CLIENTCERT);
#endif
#if LIBCURL_VERSION_NUM >= 0x075400
    CODE(UNRECOVERABLE_POLL);
#endif
    default: return "UNKNOWN";
  }
}

/* a scratch build may change one code (spec/policy_spec.lua) */
#ifndef SO_INVALID_CODE
#define SO_INVALID_CODE "INVALID"
#endif

/* every kind of error object: what its code and maybe_applied are, and
   how __tostring names it. Indexed by so_error_kind. */
const so_error_row so_error_kinds[] = {
  [SO_E_HTTP] = { .kind = "http", .code_rule = SO_CODE_STATUS,
    .maybe = SO_MAYBE_OUTCOME, .noun = "error", .shows_code = 1,
    .doc = "The server answered with a status >= 300" },
  [SO_E_NETWORK] = { .kind = "network", .code_rule = SO_CODE_CURL,
    .maybe = SO_MAYBE_OUTCOME, .noun = "error", .shows_code = 1,
    .doc = "The connection failed or was lost (`code` names libcurl's "
           "error)" },
  [SO_E_TIMEOUT] = { .kind = "timeout", .code_rule = SO_CODE_CURL,
    .maybe = SO_MAYBE_OUTCOME, .noun = "error", .shows_code = 1,
    .doc = "An attempt took longer than `timeout`" },
  [SO_E_TLS] = { .kind = "tls", .code_rule = SO_CODE_CURL,
    .maybe = SO_MAYBE_OUTCOME, .noun = "error", .shows_code = 1,
    .doc = "The TLS handshake or the certificate failed" },
  [SO_E_DECODE] = { .kind = "decode", .code = "DECODE",
    .maybe = SO_MAYBE_ALWAYS, .noun = "error", .shows_code = 1,
    .doc = "A 2xx whose body is not the expected JSON" },
  [SO_E_TOO_LARGE] = { .kind = "too_large", .code = "TOO_LARGE",
    .maybe = SO_MAYBE_OUTCOME, .noun = "error", .shows_code = 1,
    .doc = "The response is larger than `max_response_bytes`" },
  [SO_E_INVALID] = { .kind = "invalid", .code = SO_INVALID_CODE,
    .maybe = SO_MAYBE_NONE, .noun = "request",
    .doc = "Bad content in the call (a wrong field type, an unknown query "
           "key): nothing was sent" },
  [SO_E_CLOSED] = { .kind = "closed", .code = "CLOSED",
    .maybe = SO_MAYBE_CALLER, .noun = "error", .shows_code = 1,
    .doc = "The client was closed while the call was waiting" },
  [SO_E_INTERRUPTED] = { .kind = "interrupted", .code = "INTERRUPTED",
    .maybe = SO_MAYBE_CALLER, .noun = "error", .shows_code = 1,
    .doc = "A `sleep` function or the loop raised while the call was "
           "waiting" },
  [SO_E_FORKED] = { .kind = "forked", .code = "FORKED",
    .maybe = SO_MAYBE_CALLER, .noun = "error", .shows_code = 1,
    .doc = "The process forked while the call was in flight: in the child, "
           "the call is the parent's" },
  /* made by the Lua layer's journal, with codes JOURNAL_* of its own */
  [SO_E_JOURNAL] = { .kind = "journal", .maybe = SO_MAYBE_CALLER,
    .noun = "error", .shows_code = 1,
    .doc = "A bulk call's journal: it cannot be opened or written, belongs "
           "to other records, or a record it reconciled matches several "
           "contacts or cannot be looked for" },
  { .kind = NULL }
};

/* which error kind a libcurl failure is */
so_error_kind so_curl_kind(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return SO_E_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED: case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return SO_E_TLS;
    default:
      return SO_E_NETWORK;
  }
}

/* core.error_kinds: { { kind, code, maybe_applied, doc }, ... }; code is
   the fixed code, "HTTP_<status>" or "<libcurl's name>"; maybe_applied
   "never", "always", "outcome" or "caller" */
void so_push_error_kinds(lua_State *L) {
  static const char *const codes[] = {NULL, "HTTP_<status>",
                                      "<libcurl's name>"};
  static const char *const maybe[] = {"never", "always", "outcome",
                                      "caller"};
  const so_error_row *k;
  int i = 0;
  lua_newtable(L);
  for (k = so_error_kinds; k->kind; k++) {
    const char *code = k->code_rule == SO_CODE_FIXED ? k->code
                                                     : codes[k->code_rule];
    lua_createtable(L, 0, 4);
    lua_pushstring(L, k->kind);
    lua_setfield(L, -2, "kind");
    if (code) {
      lua_pushstring(L, code);
      lua_setfield(L, -2, "code");
    }
    lua_pushstring(L, maybe[k->maybe]);
    lua_setfield(L, -2, "maybe_applied");
    lua_pushstring(L, k->doc);
    lua_setfield(L, -2, "doc");
    lua_rawseti(L, -2, ++i);
  }
}

const char *so_reason_phrase(long status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 500 ? "Server Error"
                  : status >= 400 ? "Client Error" : "Unexpected Status";
  }
}

/* pushes a new error object with the fields every error has: its kind,
   code and maybe_applied as its row says */
void so_new_error(lua_State *L, const so_failure *f) {
  const so_error_row *k = &so_error_kinds[f->kind];
  lua_createtable(L, 0, 12);
  luaL_setmetatable(L, SO_ERROR_MT);
  lua_pushstring(L, k->kind);
  lua_setfield(L, -2, "kind");
  switch (k->code_rule) {
    case SO_CODE_STATUS: lua_pushfstring(L, "HTTP_%d", (int)f->status); break;
    case SO_CODE_CURL: lua_pushstring(L, so_curl_code_name(f->rc)); break;
    default: lua_pushstring(L, k->code); break;
  }
  lua_setfield(L, -2, "code");
  if (f->method) {
    lua_pushstring(L, f->method);
    lua_setfield(L, -2, "method");
  }
  if (f->path) {
    lua_pushstring(L, f->path);
    lua_setfield(L, -2, "path");
  }
  lua_pushinteger(L, f->attempts);
  lua_setfield(L, -2, "attempts");
  if (k->maybe != SO_MAYBE_NONE) {
    lua_pushboolean(L, k->maybe == SO_MAYBE_ALWAYS || f->maybe_applied);
    lua_setfield(L, -2, "maybe_applied");
  }
}

/* raises a usage error: a programmer mistake in a call, { message,
   argument = n for "bad argument #n" }. It names no function and no line:
   the Lua layer's public function turns it into "<its name>: message" at
   the user's line (lua/stackone/public.lua), so public names and frames
   live in one layer. argument is 0 when the mistake is not one argument. */
int so_usage(lua_State *L, int argument, const char *fmt, ...) {
  va_list ap;
  lua_createtable(L, 0, 2);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_setfield(L, -2, "message");
  if (argument > 0) {
    lua_pushinteger(L, argument);
    lua_setfield(L, -2, "argument");
  }
  luaL_setmetatable(L, SO_USAGE_MT);
  return lua_error(L);
}

/* a usage error that escaped the Lua layer still reads as its message */
static int usage_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) lua_pushliteral(L, "stackone: usage error");
  return 1;
}

void so_usage_metatable(lua_State *L) {
  luaL_newmetatable(L, SO_USAGE_MT);
  lua_pushcfunction(L, usage_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

/* pushes nil and an "invalid" error: bad content, nothing was sent */
int so_push_invalid(lua_State *L, const char *method, const char *path,
                    const char *fmt, ...) {
  so_failure f;
  va_list ap;
  memset(&f, 0, sizeof(f));
  f.kind = SO_E_INVALID;
  f.method = method;
  f.path = path;
  lua_pushnil(L);
  so_new_error(L, &f);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_setfield(L, -2, "message");
  return 2;
}

static const char *field_string(lua_State *L, int t, const char *name) {
  const char *s = NULL;
  lua_pushstring(L, name);
  /* only a string: one converted from a number would not stay alive */
  if (lua_rawget(L, t) == LUA_TSTRING) s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the string stays alive in the error table */
  return s;
}

/* the row of a kind named by an error object, or NULL */
static const so_error_row *row_of(const char *kind) {
  const so_error_row *k;
  for (k = so_error_kinds; kind && k->kind; k++)
    if (strcmp(k->kind, kind) == 0) return k;
  return NULL;
}

/* "stackone: POST /unified/crm/contacts: HTTP 422 Unprocessable Entity: msg" */
static int error_tostring(lua_State *L) {
  const char *kind, *method, *path, *message, *code;
  const so_error_row *row;
  luaL_Buffer b;
  luaL_checktype(L, 1, LUA_TTABLE);
  kind = field_string(L, 1, "kind");
  method = field_string(L, 1, "method");
  path = field_string(L, 1, "path");
  message = field_string(L, 1, "message");
  code = field_string(L, 1, "code");
  row = row_of(kind);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "stackone: ");
  if (method && path) {
    luaL_addstring(&b, method);
    luaL_addchar(&b, ' ');
    luaL_addstring(&b, path);
    luaL_addstring(&b, ": ");
  }
  lua_pushliteral(L, "status");
  lua_rawget(L, 1);
  if (row && row->code_rule == SO_CODE_STATUS && lua_isinteger(L, -1)) {
    lua_Integer status = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushfstring(L, "HTTP %d %s", (int)status, so_reason_phrase((long)status));
    luaL_addvalue(&b);
  } else {
    lua_pop(L, 1);
    luaL_addstring(&b, kind ? kind : "error");
    luaL_addchar(&b, ' ');
    luaL_addstring(&b, row ? row->noun : "error");
    if (code && (row == NULL || row->shows_code)) {
      luaL_addstring(&b, " ");
      luaL_addstring(&b, code);
    }
  }
  if (message && *message) {
    luaL_addstring(&b, ": ");
    luaL_addstring(&b, message);
  }
  luaL_pushresult(&b);
  return 1;
}

int so_is_error_at(lua_State *L, int idx) {
  int yes = 0;
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, SO_ERROR_MT);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return yes;
}

int so_is_error(lua_State *L) {
  lua_pushboolean(L, so_is_error_at(L, 1));
  return 1;
}

void so_error_metatable(lua_State *L) {
  static const luaL_Reg meta[] = {
    {"__tostring", error_tostring},
    {NULL, NULL}
  };
  luaL_newmetatable(L, SO_ERROR_MT);
  luaL_setfuncs(L, meta, 0);
  lua_pop(L, 1);
}
