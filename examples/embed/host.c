/*
** host.c: a C program that embeds Lua 5.4 and uses stackone from two
** independent lua_States, interleaving requests between them, from each
** state's main thread, from coroutine.wrap and from host-made threads.
**
**   STACKONE_BASE_URL=http://127.0.0.1:PORT STACKONE_API_KEY=KEY \
**     build/embed/host [checkout-dir]
**
** Exits 0 when every request succeeded and both states gave back all
** their memory at lua_close, 1 otherwise. See README.md.
*/
#include <lualib.h>

#define EMBED_NAME "host"
#include "embed.h"

typedef struct state {
  const char *label;
  lua_State *L;
  state_mem mem;
  int api;     /* stack index of the table the chunk below returns */
  int created; /* contacts this state created, as the host counts them */
} state;

/* what each state runs: returns { create, worker, close }; no globals */
static const char chunk[] =
  "local label, base_url, api_key = ...\n"
  "local stackone = require('stackone')\n"
  "local client = assert(stackone.new{ api_key = api_key,\n"
  "  account_id = 'acc-embed-' .. label, base_url = base_url })\n"
  "local made = 0\n"
  "local function create(who)\n"
  "  local name = label .. '-' .. who\n"
  "  local contact, res = client.crm.contacts.create{\n"
  "    first_name = name, last_name = 'Embedded', emails = { name .. '@example.com' } }\n"
  "  if not contact then\n"
  "    error(('%s: create from %s failed: %s'):format(label, who, tostring(res)), 0)\n"
  "  end\n"
  "  if type(contact.id) ~= 'string' or contact.first_name ~= name\n"
  "      or contact.emails[1] ~= name .. '@example.com' then\n"
  "    error(('%s: create from %s returned the wrong contact'):format(label, who), 0)\n"
  "  end\n"
  "  made = made + 1\n"
  "  return contact.id\n"
  "end\n"
  "-- a coroutine.wrap that creates one contact per step, then yields\n"
  "local function worker(name, steps)\n"
  "  return coroutine.wrap(function()\n"
  "    for i = 1, steps do coroutine.yield(create(name .. '-' .. i)) end\n"
  "    return nil\n"
  "  end)\n"
  "end\n"
  "local function close()\n"
  "  client:close()\n"
  "  client:close() -- idempotent\n"
  "  if pcall(client.crm.contacts.create, {}) then\n"
  "    error(label .. ': a closed client still made a request', 0)\n"
  "  end\n"
  "  return made\n"
  "end\n"
  "return { create = create, worker = worker, close = close }\n";

/* calls the function under the arguments on top of s's stack */
static void call(state *s, int nargs, int nresults, const char *what) {
  protected_call(s->L, nargs, nresults, what);
}

static void open_state(state *s, const char *label, const char *root,
                       const char *base_url, const char *api_key) {
  s->label = label;
  s->mem.in_use = s->mem.peak = 0;
  s->created = 0;
  s->L = lua_newstate(counting_alloc, &s->mem);
  if (s->L == NULL) fail("%s: cannot create a lua_State", label);
  luaL_openlibs(s->L);
  prepend_path(s->L, "path", root, "%s/lua/?.lua;%s/lua/?/init.lua;");
  prepend_path(s->L, "cpath", root, "%s/build/?.so;");
  if (luaL_loadbuffer(s->L, chunk, sizeof(chunk) - 1, "=embed") != LUA_OK)
    fail("%s: %s", label, lua_tostring(s->L, -1));
  lua_pushstring(s->L, label);
  lua_pushstring(s->L, base_url);
  lua_pushstring(s->L, api_key);
  call(s, 3, 1, label);
  s->api = lua_gettop(s->L);
}

/* api.create(who) on the state's main thread */
static void create_main(state *s, const char *who) {
  lua_getfield(s->L, s->api, "create");
  lua_pushstring(s->L, who);
  call(s, 1, 1, s->label);
  s->created++;
  printf("%s: main thread created %s\n", s->label, lua_tostring(s->L, -1));
  lua_pop(s->L, 1);
}

/* leaves a coroutine.wrap function from api.worker on the stack */
static int new_worker(state *s, const char *name, int steps) {
  lua_getfield(s->L, s->api, "worker");
  lua_pushstring(s->L, name);
  lua_pushinteger(s->L, steps);
  call(s, 2, 1, s->label);
  return lua_gettop(s->L);
}

/* runs one step of a coroutine.wrap worker; 0 once it has finished */
static int step_worker(state *s, int idx, const char *name) {
  int more;
  lua_pushvalue(s->L, idx);
  call(s, 0, 1, s->label);
  more = !lua_isnil(s->L, -1);
  if (more) {
    s->created++;
    printf("%s: coroutine %s created %s\n", s->label, name,
           lua_tostring(s->L, -1));
  }
  lua_pop(s->L, 1);
  return more;
}

/* a thread made by the host and resumed with lua_resume: the request runs
   on a lua_State the module has never seen before, which is then dropped */
static void create_in_host_thread(state *s, const char *who) {
  int nres;
  lua_State *co = lua_newthread(s->L);
  lua_getfield(s->L, s->api, "create");
  lua_xmove(s->L, co, 1);
  lua_pushstring(co, who);
  if (lua_resume(co, s->L, 1, &nres) != LUA_OK || nres != 1)
    fail("%s: host thread: %s", s->label, lua_tostring(co, -1));
  s->created++;
  printf("%s: host thread created %s\n", s->label, lua_tostring(co, -1));
  lua_pop(s->L, 1); /* the thread: garbage from now on */
  lua_gc(s->L, LUA_GCCOLLECT);
}

static void close_state(state *s) {
  int made;
  lua_getfield(s->L, s->api, "close");
  call(s, 0, 1, s->label);
  made = (int)lua_tointeger(s->L, -1);
  lua_close(s->L);
  s->L = NULL;
  printf("%s: closed after %d contacts; peak %lu bytes, %lu left after "
         "lua_close\n", s->label, made, (unsigned long)s->mem.peak,
         (unsigned long)s->mem.in_use);
  if (made != s->created)
    fail("%s: the client made %d contacts, the host asked for %d", s->label,
         made, s->created);
  if (s->mem.in_use != 0)
    fail("%s: lua_close left %lu bytes allocated", s->label,
         (unsigned long)s->mem.in_use);
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : ".";
  const char *base_url = getenv("STACKONE_BASE_URL");
  const char *api_key = getenv("STACKONE_API_KEY");
  state a, b;
  int wa, wb, wa_more = 1, wb_more = 1;
  if (base_url == NULL || *base_url == '\0' || api_key == NULL
      || *api_key == '\0')
    fail("set STACKONE_BASE_URL and STACKONE_API_KEY "
         "(see examples/embed/README.md)");

  open_state(&a, "A", root, base_url, api_key);
  open_state(&b, "B", root, base_url, api_key);

  /* main threads, interleaved */
  create_main(&a, "main-1");
  create_main(&b, "main-1");

  /* coroutine.wrap workers, one step of A's, one of B's, ... until both
     are done */
  wa = new_worker(&a, "wa", 3);
  wb = new_worker(&b, "wb", 2);
  while (wa_more || wb_more) {
    if (wa_more) wa_more = step_worker(&a, wa, "wa");
    if (wb_more) wb_more = step_worker(&b, wb, "wb");
    /* and main-thread requests while the other state's worker waits */
    if (wa_more) create_main(&b, "main-between");
    if (wb_more) create_main(&a, "main-between");
  }
  lua_settop(a.L, a.api); /* the finished workers become garbage */
  lua_settop(b.L, b.api);
  lua_gc(a.L, LUA_GCCOLLECT);
  lua_gc(b.L, LUA_GCCOLLECT);

  /* threads the host makes and drops, then the main threads again: the
     client must not remember a lua_State from an earlier request */
  create_in_host_thread(&a, "host-thread");
  create_in_host_thread(&b, "host-thread");
  create_main(&a, "main-2");
  create_main(&b, "main-2");

  /* closing A must leave B working: nothing is shared between them */
  close_state(&a);
  create_main(&b, "after-A-closed");
  close_state(&b);
  printf("host: ok\n");
  return 0;
}
