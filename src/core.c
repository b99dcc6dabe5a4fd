/*
** core.c: luaopen_stackone_core, the module's entry point. Per-state
** data (cjson's functions, metatables) lives in a state table passed as
** upvalue 1, never in C globals.
*/
#include "stackone.h"

#if defined(__GNUC__)
#define SO_EXPORT __attribute__((visibility("default")))
#else
#define SO_EXPORT
#endif

SO_EXPORT int luaopen_stackone_core(lua_State *L);

/* core.now() -> seconds on the monotonic clock (run_all's elapsed) */
static int core_now(lua_State *L) {
  lua_pushnumber(L, so_now());
  return 1;
}

int luaopen_stackone_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"new", so_client_new},
    {"now", core_now},
    {"is_error", so_is_error},
    {"invalid_error", so_invalid_error},
    {NULL, NULL}
  };
  /* libcurl's one-time init: reference counted by libcurl itself */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return luaL_error(L, "stackone: curl_global_init failed");
  lua_newtable(L); /* the state table */
  so_json_init(L, -1);
  so_response_init(L, -1);
  lua_newtable(L); /* rate limiters, kept while a client uses them */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "limiters");
  so_error_metatable(L);
  so_usage_metatable(L);
  so_client_metatable(L);
  so_job_metatable(L);
  luaL_newlibtable(L, funcs);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, funcs, 1);
  lua_getfield(L, -2, "null");
  lua_setfield(L, -2, "null");
  luaL_newmetatable(L, SO_ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  luaL_getmetatable(L, SO_ERROR_MT);
  lua_setfield(L, -2, "error_mt");
  luaL_getmetatable(L, SO_USAGE_MT);
  lua_setfield(L, -2, "usage_mt");
  so_push_operations(L);
  lua_setfield(L, -2, "operations");
  so_push_fields(L, so_custom_field_fields);
  lua_setfield(L, -2, "custom_field_fields");
  so_push_options(L);
  lua_setfield(L, -2, "options");
  so_push_option_rows(L);
  lua_setfield(L, -2, "option_rows");
  so_push_statuses(L);
  lua_setfield(L, -2, "statuses");
  so_push_error_kinds(L);
  lua_setfield(L, -2, "error_kinds");
  so_lockfile_register(L);
  so_journal_register(L);
  so_limit_push(L);
  lua_setfield(L, -2, "limit");
  lua_pushliteral(L, SO_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  lua_remove(L, -2);
  return 1;
}
