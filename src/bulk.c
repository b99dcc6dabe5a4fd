/*
** bulk.c: client:call_many(op, items, opts), many creates or updates at
** once on libcurl's multi interface. Each item keeps the retry,
** duplicate-safety and rate-limit rules of a single call; a 429 with
** Retry-After pauses new transfers for the whole batch. All C memory
** lives in a batch userdata, so a Lua error anywhere leaks nothing.
*/
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

#define BATCH_MT "stackone.batch"

typedef struct slot {
  so_exchange x;
  struct curl_slist *headers;
  int item;            /* the item in flight (1-based), 0 when idle */
} slot;

typedef struct item {
  double not_before;   /* may not start before this monotonic time */
  double waited;       /* seconds of retry waits so far */
  int attempts;
  int has_token;       /* its rate limiter token is already taken */
} item;

typedef struct progress {
  int fn;              /* stack index of on_progress, 0 when none */
  int failed_once;     /* it raised an error: not called again */
  int keep;            /* the batch: its user value 3 keeps that error */
  int done, total, ok, failed;
} progress;

typedef struct batch {
  CURLM *multi;
  slot *slots;
  int nslots;
  item *items;         /* 1-based: items[0] is unused */
  int *fresh;          /* items never tried, in order */
  int nfresh, next_fresh;
  int *waiting;        /* items waiting to be tried again */
  int nwaiting;
  /* the loop's state, kept here so it can go on after the sleep
     function yields */
  so_request r;
  progress p;
  int n, running;
  int results, urls, bodies, at; /* stack indexes; `at` is the batch */
  double start, pause_until;
  lua_Integer attempts;
} batch;

static void batch_free(batch *b) {
  int i;
  for (i = 0; b->slots && i < b->nslots; i++) {
    slot *s = &b->slots[i];
    if (b->multi && s->x.curl && s->item) curl_multi_remove_handle(b->multi, s->x.curl);
    so_exchange_free(&s->x);
    curl_slist_free_all(s->headers);
  }
  if (b->multi) curl_multi_cleanup(b->multi);
  free(b->slots);
  free(b->items);
  free(b->fresh);
  free(b->waiting);
  /* the resources only: the loop's state stays readable */
  b->multi = NULL;
  b->slots = NULL;
  b->nslots = 0;
  b->items = NULL;
  b->fresh = b->waiting = NULL;
}

static int batch_gc(lua_State *L) {
  batch_free(luaL_checkudata(L, 1, BATCH_MT));
  return 0;
}

/* the batch keeps the bodies table (at `bodies`) alive: libcurl reads
   the strings in it without copying them */
static batch *new_batch(lua_State *L, so_client *c, int nitems, int nslots,
                        int bodies) {
  /* user values: 1 the bodies, 2 the first error of the debug function,
     3 that of on_progress */
  batch *b = lua_newuserdatauv(L, sizeof(batch), 3);
  int i;
  memset(b, 0, sizeof(*b));
  if (luaL_newmetatable(L, BATCH_MT)) {
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, bodies);
  lua_setiuservalue(L, -2, 1);
  b->items = calloc((size_t)nitems + 1, sizeof(item));
  b->fresh = calloc((size_t)nitems + 1, sizeof(int));
  b->waiting = calloc((size_t)nitems + 1, sizeof(int));
  b->slots = calloc((size_t)nslots, sizeof(slot));
  b->multi = curl_multi_init();
  if (!b->items || !b->fresh || !b->waiting || !b->slots || !b->multi)
    luaL_error(L, "not enough memory");
  b->nslots = nslots;
  for (i = 0; i < nslots; i++) {
    slot *s = &b->slots[i];
    s->x.curl = curl_easy_init();
    if (s->x.curl == NULL || so_setup_handle(c, &s->x) != CURLE_OK)
      luaL_error(L, "stackone: could not set up a transfer handle");
  }
  return b;
}

/* the next item allowed to start now, 0 when none */
static int pick(batch *b, double now) {
  int j;
  for (j = 0; j < b->nwaiting; j++) {
    int i = b->waiting[j];
    if (b->items[i].not_before <= now) {
      b->waiting[j] = b->waiting[--b->nwaiting];
      return i;
    }
  }
  return b->next_fresh < b->nfresh ? b->fresh[b->next_fresh++] : 0;
}

/* the next time something may start: the end of the pause, or a waiting
   item's time when a slot is free for it; 0 when nothing is ahead (only
   the network can change anything then) */
static double next_event(const batch *b, double pause_until, double now) {
  double t = pause_until > now ? pause_until : 0;
  int j, free_slot = 0;
  for (j = 0; j < b->nslots; j++) free_slot |= b->slots[j].item == 0;
  for (j = 0; free_slot && j < b->nwaiting; j++) {
    double nb = b->items[b->waiting[j]].not_before;
    if (nb > now && (t == 0 || nb < t)) t = nb;
  }
  return t;
}


/* on_progress(done, total, failed) under lua_pcall: an error in it is
   kept for the summary, never thrown through libcurl */
static void report(lua_State *L, progress *p) {
  if (!p->fn || p->failed_once) return;
  lua_pushvalue(L, p->fn);
  lua_pushinteger(L, p->done);
  lua_pushinteger(L, p->total);
  lua_pushinteger(L, p->failed);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    p->failed_once = 1;
    lua_setiuservalue(L, p->keep, 3);
  }
}

/* results[i] = { record = value } or { err = err } from the two values on
   the top of the stack */
static void store_result(lua_State *L, int results, int i, progress *p) {
  lua_createtable(L, 0, 1);
  if (lua_isnil(L, -3)) {
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "err");
    p->failed++;
  } else {
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "record");
    p->ok++;
  }
  lua_rawseti(L, results, i);
  lua_pop(L, 2);
  p->done++;
}

/* items[i] as a URL and a body in urls[i], bodies[i], or its error in
   results[i]; returns 1 when it can be sent */
static int prepare_item(lua_State *L, so_client *c, const so_operation *op,
                        int items, int i, int urls, int bodies, int results,
                        progress *p) {
  char err[400];
  int top = lua_gettop(L), id = 0, fields;
  lua_rawgeti(L, items, i);
  fields = lua_gettop(L);
  if (so_is_error_at(L, fields)) { /* the Lua layer refused it already */
    lua_pushnil(L);
    lua_pushvalue(L, fields);
    store_result(L, results, i, p);
    lua_settop(L, top);
    return 0;
  }
  if (op->kind == SO_KIND_UPDATE) {
    if (lua_istable(L, fields)) {
      so_rawfield(L, fields, "id");
      id = lua_gettop(L);
      so_rawfield(L, fields, "fields");
      fields = lua_gettop(L);
    }
    if (!id || lua_type(L, id) != LUA_TSTRING || !lua_istable(L, fields)) {
      so_push_invalid(L, op->method, op->path, "change %d must be a table "
                      "{ id = \"...\", fields = { ... } }", i);
      goto failed;
    }
  } else if (!lua_istable(L, fields)) {
    so_push_invalid(L, op->method, op->path, "record %d must be a table of "
                    "fields, not a %s", i, luaL_typename(L, fields));
    goto failed;
  }
  if (!so_push_url(L, c, op, id, 0, err, sizeof(err))) {
    so_push_invalid(L, op->method, op->path, "%s", err);
    goto failed;
  }
  lua_rawseti(L, urls, i);
  if (!so_push_body(L, op, fields, err, sizeof(err))) {
    so_push_invalid(L, op->method, op->path, "%s", err);
    goto failed;
  }
  lua_rawseti(L, bodies, i);
  lua_settop(L, top);
  return 1;
failed:
  store_result(L, results, i, p);
  lua_settop(L, top);
  return 0;
}

static const char *const bulk_options[] = {"concurrency", "on_progress", NULL};

static int run_batch(lua_State *L, int at);

int so_client_call_many(lua_State *L) {
  so_client *c = so_check_client(L, 1);
  lua_Integer index = luaL_checkinteger(L, 2);
  const so_operation *op;
  so_request r;
  progress p;
  batch *b;
  int items = 3, opts = 4, urls, bodies, results, i, n;
  lua_Integer concurrency = 8;
  double start = so_now();

  luaL_argcheck(L, index >= 1 && (size_t)index <= so_operation_count, 2,
                "unknown operation");
  op = &so_operations[index - 1];
  luaL_argcheck(L, op->kind == SO_KIND_CREATE || op->kind == SO_KIND_UPDATE,
                2, "only creates and updates come in bulk");
  lua_settop(L, 4);
  if (!lua_istable(L, items))
    return so_raise(L, 2, "bad argument #1 to 'crm.%s.%s_many' (table "
                    "expected, got %s)", op->group, op->name,
                    luaL_typename(L, items));
  if (lua_isnil(L, opts)) opts = 0;
  else if (!lua_istable(L, opts))
    return so_raise(L, 2, "bad argument #2 to 'crm.%s.%s_many' (table of "
                    "options expected, got %s)", op->group, op->name,
                    luaL_typename(L, opts));
  memset(&r, 0, sizeof(r));
  memset(&p, 0, sizeof(p));
  r.op = op;
  r.suffix = "_many";
  if (opts) {
    if (so_rawfield(L, opts, "concurrency") != LUA_TNIL) {
      concurrency = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
      if (concurrency < 1 || concurrency > 64)
        so_raise(L, 2, "crm.%s.%s_many: concurrency must be a whole number "
                 "from 1 to 64", op->group, op->name);
    }
    if (so_rawfield(L, opts, "on_progress") != LUA_TNIL) {
      if (!lua_isfunction(L, -1))
        so_raise(L, 2, "crm.%s.%s_many: on_progress must be a function",
                 op->group, op->name);
      p.fn = lua_gettop(L);
    } else {
      lua_pop(L, 1);
    }
  }
  if (!so_request_setup(L, c, &r, opts, bulk_options)) return 2;

  n = (int)lua_rawlen(L, items);
  p.total = n;
  lua_createtable(L, n, 0);
  results = lua_gettop(L);
  lua_createtable(L, n, 0);
  urls = lua_gettop(L);
  lua_createtable(L, n, 0);
  bodies = lua_gettop(L);
  b = new_batch(L, c, n, (int)(concurrency < n ? concurrency : (n ? n : 1)),
                bodies);
  b->at = lua_gettop(L); /* the loop leaves nothing above it */
  p.keep = b->at;
  /* every item is checked before anything is sent */
  for (i = 1; i <= n; i++)
    if (prepare_item(L, c, op, items, i, urls, bodies, results, &p))
      b->fresh[b->nfresh++] = i;
  if (p.done) report(L, &p);
  b->r = r;
  b->p = p;
  b->n = n;
  b->results = results;
  b->urls = urls;
  b->bodies = bodies;
  b->start = start;
  return run_batch(L, b->at);
}

static int after_batch_wait(lua_State *L, int status, lua_KContext at) {
  (void)status;
  return run_batch(L, (int)at);
}

static int run_batch(lua_State *L, int at) {
  batch *b = lua_touserdata(L, at);
  const so_operation *op = b->r.op;
  so_request *r = &b->r;
  progress *p = &b->p;
  while (p->done < b->n) {
    so_client *c = so_check_client(L, 1); /* a hook may have closed it */
    double now = so_now(), wake;
    int s, finished = 0;
    /* start what may start */
    for (s = 0; s < b->nslots && now >= b->pause_until; s++) {
      slot *sl = &b->slots[s];
      item *it;
      int k;
      size_t body_len;
      const char *body;
      if (sl->item) continue;
      if ((k = pick(b, now)) == 0) break;
      it = &b->items[k];
      if (r->bucket && !it->has_token) {
        double w = so_bucket_take(r->bucket, now);
        it->has_token = 1;
        if (w > 0) { /* everyone waits for the limiter */
          it->not_before = now + w;
          b->waiting[b->nwaiting++] = k;
          b->pause_until = now + w;
          break;
        }
      }
      it->has_token = 0;
      it->attempts++;
      b->attempts++;
      lua_rawgeti(L, b->bodies, k);
      body = lua_tolstring(L, -1, &body_len);
      lua_rawgeti(L, b->urls, k);
      /* from here to curl_multi_add_handle no Lua call may raise */
      sl->headers = so_header_list(L, c, r);
      if (sl->headers == NULL ||
          so_prepare(&sl->x, op->method, lua_tostring(L, -1), sl->headers,
                     body, body_len, r->timeout_ms, r->verbose) != CURLE_OK ||
          curl_multi_add_handle(b->multi, sl->x.curl) != CURLM_OK) {
        lua_pop(L, 2);
        return luaL_error(L, "stackone: could not start a transfer");
      }
      lua_pop(L, 2); /* urls and bodies keep the strings alive */
      sl->item = k;
      b->running++;
    }

    if (b->running > 0) {
      CURLMsg *msg;
      int still, left;
      curl_multi_perform(b->multi, &still);
      while ((msg = curl_multi_info_read(b->multi, &left)) != NULL) {
        slot *sl;
        so_call k;
        long status = 0;
        double delay = 0;
        CURLcode rc;
        item *it;
        if (msg->msg != CURLMSG_DONE) continue;
        finished++;
        rc = msg->data.result;
        for (sl = b->slots; sl->x.curl != msg->easy_handle; sl++) {}
        curl_multi_remove_handle(b->multi, sl->x.curl);
        curl_easy_setopt(sl->x.curl, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(sl->headers);
        sl->headers = NULL;
        b->running--;
        it = &b->items[sl->item];
        memset(&k, 0, sizeof(k));
        k.op = op;
        k.attempts = it->attempts;
        curl_easy_getinfo(sl->x.curl, CURLINFO_RESPONSE_CODE, &status);
        if (r->verbose) { /* the slot's handle is ours: nothing can reuse it */
          lua_pushlstring(L, sl->x.trace.data ? sl->x.trace.data : "",
                          sl->x.trace.len);
          so_debug(L, r, lua_gettop(L), b->at, 2);
          lua_settop(L, b->at);
        }
        if (so_plan_retry(r, &k, &sl->x, rc, status, &it->waited, &c->rng,
                          &delay)) {
          it->not_before = so_now() + delay;
          b->waiting[b->nwaiting++] = sl->item;
          if (status == 429 && k.has_retry_after &&
              it->not_before > b->pause_until)
            b->pause_until = it->not_before; /* the whole batch waits */
        } else {
          lua_rawgeti(L, b->urls, sl->item);
          k.url = lua_gettop(L);
          so_push_result(L, &sl->x, &k, rc, status);
          store_result(L, b->results, sl->item, p);
          lua_settop(L, b->at); /* the URL and what decoding left */
          sl->item = 0;
          report(L, p);
          c = so_check_client(L, 1);
        }
        sl->item = 0;
      }
    }
    if (p->done >= b->n) break;
    /* slots freed in this round start their next item before any wait:
       polling first would leave them idle until another socket stirs */
    if (finished > 0) continue;

    /* wait for the network, a retry or the end of a pause */
    now = so_now();
    wake = next_event(b, b->pause_until, now);
    if (b->running > 0) {
      double ms = wake > 0 ? (wake - now) * 1000 : 200;
      if (ms > 200) ms = 200;
#if LIBCURL_VERSION_NUM >= 0x074200
      curl_multi_poll(b->multi, NULL, 0, (int)ms, NULL);
#else
      curl_multi_wait(b->multi, NULL, 0, (int)ms, NULL);
#endif
    } else if (wake > now) { /* nothing in flight: the wait may yield */
      so_wait(L, r, wake - now, (lua_KContext)b->at, after_batch_wait);
    }
  }
  batch_free(b); /* now rather than at the next collection */

  lua_pushvalue(L, b->results);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, p->ok);
  lua_setfield(L, -2, "ok");
  lua_pushinteger(L, p->failed);
  lua_setfield(L, -2, "failed");
  lua_pushinteger(L, b->attempts);
  lua_setfield(L, -2, "attempts");
  lua_pushnumber(L, so_now() - b->start);
  lua_setfield(L, -2, "elapsed");
  if (lua_getiuservalue(L, b->at, 3) != LUA_TNIL)
    lua_setfield(L, -2, "progress_error");
  else
    lua_pop(L, 1);
  so_attach_debug_error(L, b->at, 2, -1);
  return 2;
}
