/*
** oom_host.c: runs one stackone call in an embedded Lua 5.4 with one
** allocation made to fail, for spec/oom_spec.lua (built with ASan by
** `make oom-host`, against the ASan build of stackone.core).
**
**   STACKONE_BASE_URL=http://127.0.0.1:PORT STACKONE_API_KEY=KEY \
**     build/oom/oom_host ROOT SCENARIO ALLOCATOR N
**
** SCENARIO: new (a client made and closed), create (one contact), get
** (one contact), each (3 pages of 2 seeded contacts), bulk (create_many
** of 5) or large (a list answer past 1 MiB, which the spec scripts: the
** piecewise decode). ALLOCATOR: lua (the
** state's allocator) or curl (libcurl's, through curl_global_init_mem).
** N: the allocation of that allocator, counted from the start of the call,
** that fails; 0 fails none and reports how many the call made. The client
** is made before, and closed after, the call, with nothing failing.
**
** Prints one line, "oom_host: <scenario> <allocator> <n>: <outcome>;
** allocations <k>; failed <0|1>", where outcome is "ok", "nil, err <kind>
** <code>" or "raised <message>", and exits 0; exits 1 (with a message on
** stderr) when the call broke a promise: a result that is neither a value
** nor an error object, `each` handing out a record twice or too few
** without an error, memory of the state left after lua_close, or libcurl
** freeing a header line that still holds the key (ours must be wiped
** first). Leaks of C memory are ASan's to report (LeakSanitizer, at exit).
*/
#define _GNU_SOURCE /* RTLD_NODELETE */
#include <dlfcn.h>
#include <string.h>

#include <curl/curl.h>
#include <lualib.h>

#define EMBED_NAME "oom_host"
#include "embed.h"

/* one allocator's count and the allocation to fail */
typedef struct failing {
  int armed;          /* counting: the call runs */
  long count;         /* allocations since armed */
  long fail_at;       /* 0: none */
  int failed;         /* fail_at came */
  const void *retry_ptr; /* Lua 5.4 collects and asks again at once: */
  size_t retry_size;     /* that retry of the failed request fails too */
  int retry_pending;
} failing;

static failing lua_side, curl_side;

/* whether this allocation fails; only growth is counted, since Lua
   assumes that shrinking never fails */
static int fails(failing *f, const void *ptr, size_t size) {
  if (!f->armed) return 0;
  if (f->retry_pending) {
    f->retry_pending = 0;
    if (ptr == f->retry_ptr && size == f->retry_size) return 1;
  }
  if (++f->count != f->fail_at) return 0;
  f->failed = 1;
  f->retry_pending = 1;
  f->retry_ptr = ptr;
  f->retry_size = size;
  return 1;
}

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  size_t old = ptr == NULL ? 0 : osize; /* else osize is a type tag */
  if (nsize > old && fails(&lua_side, ptr, nsize)) return NULL;
  return counting_alloc(ud, ptr, osize, nsize);
}

/* libcurl's allocator: the same count, on libcurl's own allocations.
   Each block carries its size in front, so that a freed block can be
   read: a header line holding the key must have been wiped before
   (libcurl frees the lines of a request's header list as it got them) */
#define SECRET_LINE "Authorization: Basic "
#define HEAD 16 /* keeps the alignment of malloc's blocks */

static void *with_size(char *block, size_t size) {
  if (block == NULL) return NULL;
  memcpy(block, &size, sizeof(size));
  return block + HEAD;
}

static void *curl_malloc(size_t size) {
  return fails(&curl_side, NULL, size) ? NULL
                                       : with_size(malloc(HEAD + size), size);
}
static void curl_free_cb(void *ptr) {
  char *block = ptr ? (char *)ptr - HEAD : NULL;
  size_t size;
  if (block == NULL) return;
  memcpy(&size, block, sizeof(size));
  if (size >= sizeof(SECRET_LINE) &&
      memcmp(ptr, SECRET_LINE, sizeof(SECRET_LINE) - 1) == 0)
    fail("libcurl freed a copy of the Authorization line not wiped");
  free(block);
}
static void *curl_realloc(void *ptr, size_t size) {
  if (fails(&curl_side, ptr, size)) return NULL;
  return with_size(realloc(ptr ? (char *)ptr - HEAD : NULL, HEAD + size),
                   size);
}
static char *curl_strdup(const char *s) {
  size_t len = strlen(s) + 1;
  char *d = curl_malloc(len);
  return d ? memcpy(d, s, len) : NULL;
}
static void *curl_calloc(size_t n, size_t size) {
  char *p = n && size > (size_t)-1 / n ? NULL : curl_malloc(n * size);
  return p ? memset(p, 0, n * size) : NULL;
}

/* returns a table { prepare = f(scenario) -> run, close = f, ids,
   is_error }: run() makes the call and returns "ok" or nil, err */
static const char chunk[] =
  "local base_url, api_key, tag = ...\n"
  "local stackone = require('stackone')\n"
  "local function client_for(account)\n"
  "  return assert(stackone.new{ api_key = api_key, account_id = account,\n"
  "    base_url = base_url, retry = { base_delay = 0.001, max_delay = 0.001 } })\n"
  "end\n"
  "local client\n"
  "local ids = {} -- each: the records handed out, even when it fails\n"
  "local scenarios = {}\n"
  "function scenarios.new()\n"
  "  return function()\n"
  "    local made = client_for('acc-oom-new')\n"
  "    made:close()\n"
  "    return 'ok'\n"
  "  end\n"
  "end\n"
  "function scenarios.create()\n"
  "  client = client_for('acc-oom-write')\n"
  "  return function()\n"
  "    local contact, err = client.crm.contacts.create{ first_name = tag }\n"
  "    if not contact then return nil, err end\n"
  "    return 'ok'\n"
  "  end\n"
  "end\n"
  "function scenarios.get()\n"
  "  client = client_for('acc-oom-read')\n"
  "  local id = assert(client.crm.contacts.list{ page_size = 1 }).data[1].id\n"
  "  return function()\n"
  "    local contact, err = client.crm.contacts.get(id)\n"
  "    if not contact then return nil, err end\n"
  "    return 'ok'\n"
  "  end\n"
  "end\n"
  "function scenarios.large()\n" /* the spec scripts a body past 1 MiB */
  "  client = client_for('acc-oom-read')\n"
  "  return function()\n"
  "    local page, err = client.crm.accounts.list()\n"
  "    if not page then return nil, err end\n"
  "    return 'ok'\n"
  "  end\n"
  "end\n"
  "function scenarios.each()\n"
  "  client = client_for('acc-oom-read')\n"
  "  return function()\n"
  "    for contact in client.crm.contacts.each{ page_size = 2 } do\n"
  "      ids[#ids + 1] = contact.id\n"
  "    end\n"
  "    return 'ok'\n"
  "  end\n"
  "end\n"
  "function scenarios.bulk()\n"
  "  client = client_for('acc-oom-write')\n"
  "  local records = {}\n"
  "  for i = 1, 5 do records[i] = { first_name = tag .. '-' .. i } end\n"
  "  return function()\n"
  "    local results, summary = client.crm.contacts.create_many(records)\n"
  "    if summary.failed > 0 then\n"
  "      for _, r in ipairs(results) do if r.err then return nil, r.err end end\n"
  "    end\n"
  "    return 'ok'\n"
  "  end\n"
  "end\n"
  "local function prepare(name) return scenarios[name]() end\n"
  "local function close() if client then client:close() end end\n"
  "return { prepare = prepare, close = close, ids = ids,\n"
  "  is_error = stackone.is_error }\n";

/* lua-cjson stays mapped after lua_close, so that LeakSanitizer can name
   its frames: its decode leaks its scratch buffer when a Lua allocation
   fails inside it (lua-cjson 2.1.0; spec/support/oom.supp) */
static void keep_cjson_loaded(lua_State *L) {
  const char *path;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushliteral(L, "cjson");
  lua_getfield(L, -3, "cpath");
  lua_call(L, 2, 1);
  path = lua_tostring(L, -1);
  if (path == NULL || dlopen(path, RTLD_NOW | RTLD_NODELETE) == NULL)
    fail("cannot load cjson: %s", path ? dlerror() : "not found");
  lua_pop(L, 2);
}

/* the 6 seeded contacts of the each scenario's account */
#define EACH_RECORDS 6

/* each: the ids must be distinct, and all of them unless it failed */
static void check_ids(lua_State *L, int ids, int complete) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, ids), i, k;
  for (i = 1; i <= n; i++)
    for (k = i + 1; k <= n; k++) {
      int same;
      lua_rawgeti(L, ids, i);
      lua_rawgeti(L, ids, k);
      same = lua_rawequal(L, -1, -2);
      if (same)
        fail("each handed out record %s twice (records %d and %d of %d)",
             lua_tostring(L, -1), (int)i, (int)k, (int)n);
      lua_pop(L, 2);
    }
  if (complete && n != EACH_RECORDS)
    fail("each ended without an error after %d records of %d", (int)n,
         EACH_RECORDS);
}

/* prints the outcome of run() (its results or its error on the stack) */
static void report(lua_State *L, int api, int status, int base,
                   const char *head, const failing *f) {
  printf("%s: ", head);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) {
      lua_getfield(L, api, "is_error");
      lua_pushvalue(L, -2);
      lua_call(L, 1, 1);
      if (!lua_toboolean(L, -1))
        fail("the call raised a %s that is no error object",
             luaL_typename(L, -2));
      lua_pop(L, 1);
      msg = luaL_tolstring(L, -1, NULL);
    }
    printf("raised %s", msg);
  } else if (lua_isnil(L, base)) {
    lua_getfield(L, api, "is_error");
    lua_pushvalue(L, base + 1);
    lua_call(L, 1, 1);
    if (!lua_toboolean(L, -1)) fail("nil, and no error object");
    lua_getfield(L, base + 1, "kind");
    lua_getfield(L, base + 1, "code");
    printf("nil, err %s %s", lua_tostring(L, -2), lua_tostring(L, -1));
  } else {
    printf("ok");
  }
  printf("; allocations %ld; failed %d\n", f->count, f->failed);
}

int main(int argc, char **argv) {
  const char *base_url = getenv("STACKONE_BASE_URL");
  const char *api_key = getenv("STACKONE_API_KEY");
  const char *root, *scenario, *which;
  char head[160];
  failing *f;
  state_mem mem = {0, 0};
  lua_State *L;
  int api, base, status;
  if (argc != 5 || base_url == NULL || api_key == NULL)
    fail("usage: STACKONE_BASE_URL=... STACKONE_API_KEY=... oom_host ROOT "
         "new|create|get|each|bulk|large lua|curl N");
  root = argv[1];
  scenario = argv[2];
  which = argv[3];
  f = strcmp(which, "curl") == 0 ? &curl_side : &lua_side;
  f->fail_at = atol(argv[4]);
  snprintf(head, sizeof(head), "oom_host: %s %s %ld", scenario, which,
           f->fail_at);
  /* before the module's own curl_global_init, which then only counts */
  if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_malloc, curl_free_cb,
                           curl_realloc, curl_strdup, curl_calloc) != CURLE_OK)
    fail("curl_global_init_mem failed");

  L = lua_newstate(failing_alloc, &mem);
  if (L == NULL) fail("cannot create a lua_State");
  luaL_openlibs(L);
  prepend_path(L, "path", root, "%s/lua/?.lua;%s/lua/?/init.lua;");
  prepend_path(L, "cpath", root, "%s/build/asan/?.so;");
  keep_cjson_loaded(L);
  if (luaL_loadbuffer(L, chunk, sizeof(chunk) - 1, "=oom") != LUA_OK)
    fail("%s", lua_tostring(L, -1));
  lua_pushstring(L, base_url);
  lua_pushstring(L, api_key);
  lua_pushfstring(L, "oom-%s-%s-%s", scenario, which, argv[4]);
  protected_call(L, 3, 1, "setup");
  api = lua_gettop(L);
  lua_getfield(L, api, "prepare");
  lua_pushstring(L, scenario);
  protected_call(L, 1, 1, "prepare");

  base = lua_gettop(L); /* run() is there: its results replace it */
  f->armed = 1;
  status = lua_pcall(L, 0, 2, 0);
  f->armed = 0;
  report(L, api, status, base, head, f);
  if (strcmp(scenario, "each") == 0) {
    lua_getfield(L, api, "ids");
    check_ids(L, lua_gettop(L), status == LUA_OK && !lua_isnil(L, base));
  }
  lua_settop(L, api);

  lua_getfield(L, api, "close");
  protected_call(L, 0, 0, "close");
  lua_close(L);
  curl_global_cleanup();
  if (mem.in_use != 0)
    fail("lua_close left %lu bytes allocated", (unsigned long)mem.in_use);
  return 0;
}
