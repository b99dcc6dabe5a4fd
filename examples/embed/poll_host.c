/*
** poll_host.c: a C program that embeds Lua 5.4 and runs stackone's engine
** (a client made with `loop = adapter`) from its OWN poll(2) loop, the way
** a game loop or a GUI main loop would.
**
**   STACKONE_BASE_URL=http://127.0.0.1:PORT STACKONE_API_KEY=KEY \
**     build/embed/poll_host [checkout-dir]
**
** The adapter (in the Lua chunk below) does nothing but record what the
** engine asks for in three tables; each frame, this host reads them,
** polls, calls the engine's callbacks and resumes the coroutines whose
** wait is over. Exits 0 when every check passed and the state gave back
** all its memory at lua_close, 1 otherwise. See README.md.
*/
#define _POSIX_C_SOURCE 200809L /* poll, clock_gettime, getpid */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#define EMBED_NAME "poll_host"
#include "embed.h"

/* a game-style loop: it never sleeps longer than one frame, whatever the
   engine waits for, so that frames keep coming while requests are out */
#define FRAME_MS 10
/* no phase may take longer than this (valgrind included) */
#define PHASE_LIMIT 300.0
#define WORKERS 8 /* coroutines that create contacts, EACH apiece */
#define EACH 4
#define BULK 6 /* records of the create_many */
#define STR(x) #x
#define XSTR(x) STR(x) /* the numbers above, as text for the chunk */

/*
** The Lua side: the adapter, the client, the tasks the host runs and the
** checks. No globals: the chunk returns its table. Arguments: base URL,
** API key, account id, and the host's monotonic clock (a C function).
**
** adapter.fds    fd -> { events = "r" | "w" | "rw", on_ready = function }
** adapter.timers on_timeout -> deadline: each client's one engine timer,
**                keyed by its callback, so one adapter serves any number
**                of clients
** adapter.waits  coroutine -> { at = deadline or false, woken = boolean }:
**                the coroutines suspended in adapter:wait. The host takes
**                an entry out when it resumes that coroutine.
*/
static const char *const chunk[] = {
  /* (in pieces: C99 compilers need only take literals of 4095 bytes) */
  "local base_url, api_key, account_id, clock = ...\n"
  "local stackone = require('stackone')\n"
  "local http = require('socket.http')\n"
  "local ltn12 = require('ltn12')\n"
  "local cjson = require('cjson')\n"
  "local WORKERS, EACH, BULK = " XSTR(WORKERS) ", " XSTR(EACH) ", " XSTR(BULK) "\n",

  "-- the adapter: it only records; the C host reads these tables each frame\n"
  "local adapter = { fds = {}, timers = {}, waits = {} }\n"
  "function adapter:io(fd, events, on_ready)\n"
  "  self.fds[fd] = events and { events = events, on_ready = on_ready } or nil\n"
  "end\n"
  "function adapter:timer(seconds, on_timeout)\n"
  "  self.timers[on_timeout] = seconds and clock() + seconds or nil\n"
  "end\n"
  "function adapter:wait(co, seconds)\n"
  "  self.waits[co] = { at = seconds and clock() + seconds or false, woken = false }\n"
  "  coroutine.yield() -- the host resumes co: woken, or at its deadline\n"
  "end\n"
  "function adapter:wake(co)\n"
  "  local w = self.waits[co]\n"
  "  if w then w.woken = true end -- resumed by the host's next frame\n"
  "end\n",

  "local client = assert(stackone.new{ api_key = api_key, account_id = account_id,\n"
  "  base_url = base_url, loop = adapter })\n"
  "local api = { adapter = adapter }\n"
  "local created, made, listed, posts = {}, 0, 0, 0 -- created: id -> first_name\n"
  "local cut, after_close_raised\n"
  "\n"
  "local function fields(name)\n"
  "  return { first_name = name, last_name = 'Polled', emails = { name .. '@example.com' } }\n"
  "end\n"
  "local function expect_contact(contact, err, name, how)\n"
  "  if not contact then error(('%s %s failed: %s'):format(how, name, tostring(err)), 0) end\n"
  "  if type(contact.id) ~= 'string' or contact.id == '' or contact.first_name ~= name\n"
  "      or contact.last_name ~= 'Polled' or type(contact.emails) ~= 'table'\n"
  "      or contact.emails[1] ~= name .. '@example.com' then\n"
  "    error(('%s %s returned the wrong contact'):format(how, name), 0)\n"
  "  end\n"
  "  if created[contact.id] then error(how .. ' ' .. name .. ': a duplicate id', 0) end\n"
  "  created[contact.id] = name\n"
  "  made = made + 1\n"
  "end\n"
  "\n"
  "-- plain HTTP to the server's /__control/ interface (blocking: checks only)\n"
  "local function control(method, path, body)\n"
  "  local chunks = {}\n"
  "  local ok, status = http.request{ url = base_url .. path, method = method,\n"
  "    source = body and ltn12.source.string(body) or nil,\n"
  "    headers = body and { ['content-type'] = 'application/json',\n"
  "      ['content-length'] = #body } or nil,\n"
  "    sink = ltn12.sink.table(chunks) }\n"
  "  if not ok then error(method .. ' ' .. path .. ': ' .. tostring(status), 0) end\n"
  "  return status, table.concat(chunks)\n"
  "end\n"
  "-- the journal's records of this run's account\n"
  "local function journal()\n"
  "  local status, body = control('GET', '/__control/requests')\n"
  "  if status ~= 200 then error('GET /__control/requests: ' .. status, 0) end\n"
  "  local mine = {}\n"
  "  for _, r in ipairs(cjson.decode(body)) do\n"
  "    if type(r.headers) == 'table' and r.headers['x-account-id'] == account_id then\n"
  "      mine[#mine + 1] = r\n"
  "    end\n"
  "  end\n"
  "  return mine\n"
  "end\n",

  "-- each phase returns the functions the host runs as coroutines\n"
  "function api.create_phase()\n"
  "  local tasks = {}\n"
  "  for w = 1, WORKERS do\n"
  "    tasks[w] = function()\n"
  "      for i = 1, EACH do\n"
  "        local name = ('w%d-%d'):format(w, i)\n"
  "        local contact, err = client.crm.contacts.create(fields(name))\n"
  "        expect_contact(contact, err, name, 'create')\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "  tasks[WORKERS + 1] = function()\n"
  "    local records = {}\n"
  "    for i = 1, BULK do records[i] = fields('bulk-' .. i) end\n"
  "    local results, summary = client.crm.contacts.create_many(records, { concurrency = 3 })\n"
  "    if not results then error('create_many failed: ' .. tostring(summary), 0) end\n"
  "    if summary.ok ~= BULK or summary.failed ~= 0 then\n"
  "      error(('create_many: %d ok, %d failed'):format(summary.ok, summary.failed), 0)\n"
  "    end\n"
  "    for i = 1, BULK do\n"
  "      expect_contact(results[i].record, results[i].err, 'bulk-' .. i, 'create_many')\n"
  "    end\n"
  "  end\n"
  "  return tasks\n"
  "end\n"
  "\n"
  "function api.list_phase()\n"
  "  return { function()\n"
  "    local page, err = client.crm.contacts.list{ page_size = 100 }\n"
  "    if not page then error('list failed: ' .. tostring(err), 0) end\n"
  "    for _, c in ipairs(page.data) do\n"
  "      if created[c.id] == nil or created[c.id] ~= c.first_name then\n"
  "        error(('list: %s (%s) is not a contact the host created')\n"
  "          :format(tostring(c.id), tostring(c.first_name)), 0)\n"
  "      end\n"
  "    end\n"
  "    listed = #page.data\n"
  "    if listed ~= made or page.next ~= nil then\n"
  "      error(('list: %d contacts, the host created %d'):format(listed, made), 0)\n"
  "    end\n"
  "  end }\n"
  "end\n",

  "-- exactly one POST per contact created, and the list's one GET\n"
  "function api.check_journal()\n"
  "  local per_name, gets = {}, 0\n"
  "  for _, r in ipairs(journal()) do\n"
  "    if r.method == 'POST' and r.path == '/unified/crm/contacts' then\n"
  "      posts = posts + 1\n"
  "      local name = cjson.decode(r.body).first_name\n"
  "      per_name[name] = (per_name[name] or 0) + 1\n"
  "    elseif r.method == 'GET' and r.path == '/unified/crm/contacts' then\n"
  "      gets = gets + 1\n"
  "    else\n"
  "      error('journal: an unexpected ' .. r.method .. ' ' .. r.target, 0)\n"
  "    end\n"
  "  end\n"
  "  for _, name in pairs(created) do\n"
  "    if per_name[name] ~= 1 then\n"
  "      error(('journal: %d POSTs of %s'):format(per_name[name] or 0, name), 0)\n"
  "    end\n"
  "  end\n"
  "  if posts ~= made or gets ~= 1 then\n"
  "    error(('journal: %d POSTs and %d GETs for %d contacts and 1 list'):format(posts, gets, made), 0)\n"
  "  end\n"
  "end\n"
  "\n"
  "-- the server holds the next POST for 30 s: when the host closes the\n"
  "-- client, the call is suspended and its request is on the wire\n"
  "function api.cut_phase()\n"
  "  local status = control('POST', '/__control/script', cjson.encode{ method = 'POST',\n"
  "    path = '/unified/crm/contacts', responses = { { delay = 30, pass = true } } })\n"
  "  if status ~= 204 then error('POST /__control/script: ' .. status, 0) end\n"
  "  return { function()\n"
  "    cut = table.pack(client.crm.contacts.create(fields('cut')))\n"
  "    after_close_raised = not pcall(client.crm.contacts.create, fields('after'))\n"
  "  end }\n"
  "end\n"
  "local next_look = 0\n"
  "local function sent(name) -- a host's stop condition, asked each frame\n"
  "  if clock() < next_look then return false end\n"
  "  next_look = clock() + 0.05\n"
  "  for _, r in ipairs(journal()) do\n"
  "    if r.method == 'POST' and cjson.decode(r.body).first_name == name then return true end\n"
  "  end\n"
  "  return false\n"
  "end\n"
  "function api.cut_sent() return sent('cut') end\n"
  "-- a new client on the same adapter, left open with its call in flight\n"
  "-- when the host closes the Lua state: lua_close must free it all\n"
  "function api.open_phase()\n"
  "  client = assert(stackone.new{ api_key = api_key, account_id = account_id,\n"
  "    base_url = base_url, loop = adapter })\n"
  "  local status = control('POST', '/__control/script', cjson.encode{ method = 'POST',\n"
  "    path = '/unified/crm/contacts', responses = { { delay = 30, pass = true } } })\n"
  "  if status ~= 204 then error('POST /__control/script: ' .. status, 0) end\n"
  "  return { function() client.crm.contacts.create(fields('left-open')) end }\n"
  "end\n"
  "function api.open_sent() return sent('left-open') end\n"
  "function api.close()\n"
  "  client:close()\n"
  "end\n"
  "function api.check_cut()\n"
  "  local contact, err = cut[1], cut[2]\n"
  "  if contact ~= nil or not stackone.is_error(err) or err.kind ~= 'closed' then\n"
  "    error('the call cut by close() returned ' .. tostring(contact or err), 0)\n"
  "  end\n"
  "  if err.maybe_applied ~= true then\n"
  "    error('the call cut by close() does not say its POST may have been applied', 0)\n"
  "  end\n"
  "  if not after_close_raised then error('a closed client still made a call', 0) end\n"
  "  for what, t in pairs{ fds = adapter.fds, timers = adapter.timers, waits = adapter.waits } do\n"
  "    if next(t) ~= nil then error('after close, adapter.' .. what .. ' is not empty', 0) end\n"
  "  end\n"
  "  control('DELETE', '/__control/script')\n"
  "  return made, listed, posts\n"
  "end\n"
  "return api\n",
  NULL
};

typedef struct host {
  lua_State *L;
  state_mem mem;
  int api, adapter;    /* stack indexes of the chunk's table and adapter */
  struct pollfd *pfd;  /* this frame's poll set */
  size_t npfd, cap;
  int live;            /* coroutines started and not finished */
  long frames;         /* turns of the loop */
  long busy_frames;    /* ... while calls were suspended */
  long idle_busy;      /* ... of which poll found nothing to do */
  int max_waits;       /* the most calls suspended at once */
} host;

static double monotonic(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) fail("clock_gettime failed");
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* the adapter's clock, the same one the loop computes timeouts with */
static int l_clock(lua_State *L) {
  lua_pushnumber(L, monotonic());
  return 1;
}

/* calls the function under the nargs arguments on top of the stack */
static void call(host *h, int nargs, int nresults, const char *what) {
  protected_call(h->L, nargs, nresults, what);
}

/* pushes api[name]() */
static void call_api(host *h, const char *name, int nresults) {
  lua_getfield(h->L, h->api, name);
  call(h, 0, nresults, name);
}

/* a lua_Reader over the pieces of the chunk */
static const char *read_chunk(lua_State *L, void *ud, size_t *size) {
  const char *const **piece = (const char *const **)ud;
  const char *s = **piece;
  (void)L;
  if (s == NULL) return NULL;
  (*piece)++;
  *size = strlen(s);
  return s;
}

/*
** Resuming is done here, from C, with lua_resume: the host owns its
** coroutines the way a game engine's scheduler owns its scripts. The
** engine yields only from Lua code (adapter:wait's coroutine.yield), never
** across a C call, so a plain lua_resume is all a host needs; no
** continuations (lua_yieldk) are involved. A coroutine that yields must be
** parked in adapter.waits (that entry also keeps it from being collected);
** one that returns is done.
*/
static void resume(host *h, lua_State *co, int nargs) {
  lua_State *L = h->L;
  int nres, parked;
  int status = lua_resume(co, L, nargs, &nres);
  if (status == LUA_OK) {
    lua_pop(co, nres);
    h->live--;
  } else if (status == LUA_YIELD) {
    lua_pop(co, nres);
    lua_getfield(L, h->adapter, "waits");
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    parked = lua_rawget(L, -2) == LUA_TTABLE;
    lua_pop(L, 2);
    if (!parked) fail("a coroutine yielded outside adapter:wait");
  } else {
    /* the error object, moved out of the dead coroutine to turn it into
       text there, then the coroutine's own traceback */
    lua_xmove(co, L, 1);
    luaL_traceback(L, co, luaL_tolstring(L, -1, NULL), 0);
    fail("a coroutine failed: %s", lua_tostring(L, -1));
  }
}

/* runs each function of api[phase]() as a coroutine, up to its first wait */
static void spawn_phase(host *h, const char *phase) {
  lua_State *L = h->L;
  lua_Integer i, n;
  call_api(h, phase, 1);
  n = (lua_Integer)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    lua_State *co = lua_newthread(L);
    lua_rawgeti(L, -2, i);
    lua_xmove(L, co, 1);
    h->live++;
    resume(h, co, 0);
    lua_pop(L, 1); /* the thread: adapter.waits holds it if it waits */
  }
  lua_pop(L, 1);
}

static void watch(host *h, int fd, short events) {
  if (h->npfd == h->cap) {
    size_t cap = h->cap ? 2 * h->cap : 16;
    struct pollfd *p = realloc(h->pfd, cap * sizeof *p);
    if (p == NULL) fail("out of memory");
    h->pfd = p;
    h->cap = cap;
  }
  h->pfd[h->npfd].fd = fd;
  h->pfd[h->npfd].events = events;
  h->pfd[h->npfd].revents = 0;
  h->npfd++;
}

/* pushes a sequence of the keys of adapter[field] that are due at now
   (timers: their deadline has passed; waits: woken, or their deadline has
   passed) and removes them from adapter[field]; returns how many */
static lua_Integer take_due(host *h, const char *field, double now) {
  lua_State *L = h->L;
  lua_Integer n = 0, i;
  int t, due;
  lua_getfield(L, h->adapter, field);
  t = lua_gettop(L);
  lua_newtable(L);
  due = t + 1;
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    int ready;
    if (lua_istable(L, -1)) { /* a wait */
      lua_getfield(L, -1, "woken");
      lua_getfield(L, -2, "at");
      ready = lua_toboolean(L, -2) || (lua_isnumber(L, -1) && lua_tonumber(L, -1) <= now);
      lua_pop(L, 2);
    } else { /* a timer */
      ready = lua_tonumber(L, -1) <= now;
    }
    lua_pop(L, 1);
    if (ready) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, due, ++n);
    }
  }
  for (i = 1; i <= n; i++) { /* out of the table, after the traversal */
    lua_rawgeti(L, due, i);
    lua_pushnil(L);
    lua_rawset(L, t);
  }
  lua_remove(L, t);
  return n;
}

/*
** One turn of the loop:
**   1. ask Lua what to watch (adapter.fds) and for the nearest deadline
**      (adapter.timers, and the waits that have a time limit; a woken wait
**      is due now), capped at one frame;
**   2. poll(2) with that timeout;
**   3. call on_ready(fd, readable, writable) of each ready fd that is
**      still watched (an earlier callback of this frame may have stopped
**      it), then on_timeout() of each timer that is due;
**   4. resume the coroutines that were woken or whose wait timed out.
** Callbacks and coroutines are collected before any runs, since each may
** change the adapter's tables.
*/
static void frame(host *h) {
  lua_State *L = h->L;
  double now = monotonic();
  double deadline = now + FRAME_MS / 1000.0;
  int waits = 0, timed = 0, nready, timeout_ms;
  lua_Integer i, n;
  size_t k;

  h->npfd = 0;
  lua_getfield(L, h->adapter, "fds");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    const char *ev;
    short events = 0;
    lua_getfield(L, -1, "events");
    ev = lua_tostring(L, -1);
    if (ev != NULL && strchr(ev, 'r') != NULL) events |= POLLIN;
    if (ev != NULL && strchr(ev, 'w') != NULL) events |= POLLOUT;
    watch(h, (int)lua_tointeger(L, -3), events);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);

  lua_getfield(L, h->adapter, "timers");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    double at = lua_tonumber(L, -1);
    if (at < deadline) deadline = at;
    timed = 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  lua_getfield(L, h->adapter, "waits");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    waits++;
    lua_getfield(L, -1, "woken");
    lua_getfield(L, -2, "at");
    if (lua_toboolean(L, -2)) {
      deadline = now;
      timed = 1;
    } else if (lua_isnumber(L, -1)) {
      if (lua_tonumber(L, -1) < deadline) deadline = lua_tonumber(L, -1);
      timed = 1;
    }
    lua_pop(L, 3);
  }
  lua_pop(L, 1);

  if (h->live > 0 && h->npfd == 0 && !timed)
    fail("stuck: %d coroutines wait, with no socket, timer or time limit",
         h->live);
  timeout_ms = deadline <= now ? 0 : (int)((deadline - now) * 1000.0 + 0.999);

  nready = poll(h->pfd, (nfds_t)h->npfd, timeout_ms);
  if (nready < 0 && errno != EINTR) fail("poll: %s", strerror(errno));
  h->frames++;
  if (waits > 0) {
    h->busy_frames++;
    if (nready == 0) h->idle_busy++;
  }
  if (waits > h->max_waits) h->max_waits = waits;

  for (k = 0; nready > 0 && k < h->npfd; k++) {
    short re = h->pfd[k].revents;
    int fd = h->pfd[k].fd;
    if (re == 0) continue;
    if (re & POLLNVAL) fail("fd %d was closed while it was watched", fd);
    lua_getfield(L, h->adapter, "fds");
    if (lua_rawgeti(L, -1, fd) == LUA_TTABLE) {
      lua_getfield(L, -1, "on_ready");
      lua_pushinteger(L, fd);
      lua_pushboolean(L, (re & (POLLIN | POLLHUP | POLLERR)) != 0);
      lua_pushboolean(L, (re & (POLLOUT | POLLERR)) != 0);
      call(h, 3, 0, "on_ready");
    }
    lua_pop(L, 2);
  }

  now = monotonic();
  n = take_due(h, "timers", now);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    call(h, 0, 0, "on_timeout");
  }
  lua_pop(L, 1);

  n = take_due(h, "waits", now);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    resume(h, lua_tothread(L, -1), 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* turns the loop until every coroutine has finished, or until api[stop]()
   is true when stop is given */
static void run(host *h, const char *stop) {
  double limit = monotonic() + PHASE_LIMIT;
  int top = lua_gettop(h->L);
  while (h->live > 0) {
    if (stop != NULL) {
      int done;
      call_api(h, stop, 1);
      done = lua_toboolean(h->L, -1);
      lua_pop(h->L, 1);
      if (done) return;
    }
    if (monotonic() > limit) fail("a phase took over %.0f s", PHASE_LIMIT);
    frame(h);
    if (lua_gettop(h->L) != top) fail("the frame left the stack unbalanced");
  }
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : ".";
  const char *base_url = getenv("STACKONE_BASE_URL");
  const char *api_key = getenv("STACKONE_API_KEY");
  char account[64];
  host h;
  lua_Integer made, listed, posts;
  const char *const *piece = chunk;

  if (base_url == NULL || *base_url == '\0' || api_key == NULL
      || *api_key == '\0')
    fail("set STACKONE_BASE_URL and STACKONE_API_KEY "
         "(see examples/embed/README.md)");
  /* an account of its own: the list and the journal see only this run */
  snprintf(account, sizeof account, "acc-poll-host-%ld-%ld", (long)getpid(),
           (long)time(NULL));

  memset(&h, 0, sizeof h);
  h.L = lua_newstate(counting_alloc, &h.mem);
  if (h.L == NULL) fail("cannot create a lua_State");
  luaL_openlibs(h.L);
  prepend_path(h.L, "path", root, "%s/lua/?.lua;%s/lua/?/init.lua;");
  prepend_path(h.L, "cpath", root, "%s/build/?.so;");
  if (lua_load(h.L, read_chunk, &piece, "=poll_host", "t") != LUA_OK)
    fail("%s", lua_tostring(h.L, -1));
  lua_pushstring(h.L, base_url);
  lua_pushstring(h.L, api_key);
  lua_pushstring(h.L, account);
  lua_pushcfunction(h.L, l_clock);
  call(&h, 4, 1, "the chunk");
  h.api = lua_gettop(h.L);
  lua_getfield(h.L, h.api, "adapter");
  h.adapter = lua_gettop(h.L);

  /* WORKERS coroutines creating EACH contacts, and a create_many, at once
     on one client; then a list that must hold exactly those contacts */
  spawn_phase(&h, "create_phase");
  run(&h, NULL);
  spawn_phase(&h, "list_phase");
  run(&h, NULL);
  call_api(&h, "check_journal", 0);

  /* close the client while a call is suspended: it ends with kind closed */
  spawn_phase(&h, "cut_phase");
  run(&h, "cut_sent");
  if (h.live != 1) fail("the call to cut ended before the host closed the client");
  call_api(&h, "close", 0);
  run(&h, NULL);
  call_api(&h, "check_cut", 3);
  made = lua_tointeger(h.L, -3);
  listed = lua_tointeger(h.L, -2);
  posts = lua_tointeger(h.L, -1);

  if (h.max_waits < WORKERS + 1)
    fail("at most %d calls were suspended at once, expected %d", h.max_waits,
         WORKERS + 1);
  if (h.idle_busy < 10)
    fail("only %ld idle frames while calls were in flight", h.idle_busy);
  if (made != WORKERS * EACH + BULK)
    fail("%ld contacts created, expected %d", (long)made, WORKERS * EACH + BULK);

  /* a client never closed, its call in flight: lua_close collects it */
  lua_settop(h.L, h.adapter);
  spawn_phase(&h, "open_phase");
  run(&h, "open_sent");
  if (h.live != 1) fail("the call left open ended before lua_close");

  lua_close(h.L);
  free(h.pfd);
  if (h.mem.in_use != 0)
    fail("lua_close left %lu bytes allocated", (unsigned long)h.mem.in_use);
  printf("poll_host: ok: %ld contacts (%d coroutines x %d creates, a create_many "
         "of %d) on one client, %ld listed, %ld POSTs; up to %d calls in flight; "
         "%ld frames, %ld with calls in flight (%ld idle); close() ended a "
         "suspended call with kind closed; a client left open with a call in "
         "flight; 0 of %lu bytes left after lua_close\n",
         (long)made, WORKERS, EACH, BULK, (long)listed, (long)posts, h.max_waits,
         h.frames, h.busy_frames, h.idle_busy, (unsigned long)h.mem.peak);
  return 0;
}
