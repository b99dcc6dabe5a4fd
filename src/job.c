/*
** job.c: one call in flight, single or bulk (a single call is a job of
** one record): its records, their attempts on the client's engine, the
** retry plan, the rate limiter, the waits and the results. Lua drives it
** with job:step(), which never yields itself: it returns what to wait
** for, so the Lua layer can yield on every Lua version. All C memory
** lives in the job userdata, so an error anywhere frees it.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stackone.h"

#define SO_JOB_MT "stackone.job"

/* user values */
enum {
  /* a bulk job keeps a table of each per record, a single one the value
     itself (record_value) */
  UV_URLS = 1,       /* i -> URL string */
  UV_BODIES,         /* i -> body string (libcurl reads it uncopied) */
  UV_RESULTS,        /* bulk: i -> { record = } or { err = }; single: the
                        first value of the result */
  UV_RESULT_2,       /* single: the second value of the result */
  UV_CLIENT,         /* the client userdata: kept alive, its hooks */
  UV_DEBUG_ERROR,    /* the first error the debug function raised */
  UV_PROGRESS_ERROR, /* the first error on_progress raised */
  UV_PROGRESS,       /* on_progress */
  UV_ON_RESULT,      /* the Lua layer's hook (the journal) */
  UV_COUNT = UV_ON_RESULT
};

enum { QUEUED, WAITING, FLYING, DONE };

typedef struct item {
  int state;
  int tries;           /* attempts started: max_attempts bounds them */
  int sent;            /* requests its attempts put on the wire */
  int maybe_applied;   /* an earlier attempt may have been processed */
  double waited;       /* seconds of retry waits so far */
  double not_before;   /* WAITING: may not start before this time */
  int shared;          /* FLYING on a place of the shared budget */
  so_slot *slot;       /* FLYING */
} item;

struct so_job {
  so_client *client;   /* kept alive by UV_CLIENT; check client->closed */
  so_request r;
  int n, many, concurrency;
  item *items;
  int *waiting, nwaiting; /* items waiting for their time */
  int *flying, nflying;   /* items in flight */
  int next_fresh;         /* items before it were started once */
  int done, ok, failed;
  int progress, progress_failed;
  int on_result;          /* UV_ON_RESULT is set */
  int started;
  pid_t pid;              /* the process that made the call */
  int stopped;            /* stopped early: the client closed, or
                             interrupted */
  so_limiter *limiter;
  double start, pause_until, limit_until;
  lua_Integer sent;       /* requests on the wire, every record's */
  /* the shared budget (rate_limit.shared): the Lua driver asks the store
     for places when step returns "limit", and tells it what they became */
  int shared;             /* the client has one */
  int granted;            /* places granted, not used yet */
  int want;               /* places asked for */
  int unsent;             /* places given back, not told yet */
  double shared_until;    /* the store said: no place before then */
  double pause_told;      /* the pause the store was last told of */
  double *send_times;     /* send times of places used, not told yet */
  int nsent, sent_cap;
  double wait_until, wait_asked; /* the wait the driver was last asked for */
  double reported_wait;   /* the wait on_progress was last told of */
  int wait_early;         /* how often it came back at once */
  /* a single job's arrays, in the userdata rather than four callocs */
  item one_item[2];
  int one_waiting[2], one_flying[1];
  double one_send_times[2];
};

/* the arrays are the job's own (one_*), not allocated */
static int inline_arrays(const so_job *j) {
  return j->items == j->one_item;
}

static void give_back(so_job *j, item *it) {
  so_engine *e = &j->client->eng;
  if (it->slot == NULL) return;
  if (!it->slot->done) so_engine_cancel(e, it->slot);
  so_engine_release(e, it->slot);
  it->slot = NULL;
}

static void job_free(so_job *j) {
  int k;
  for (k = 0; j->items && k < j->nflying; k++) give_back(j, &j->items[j->flying[k]]);
  j->nflying = 0;
  if (j->items && !inline_arrays(j)) {
    free(j->items);
    free(j->waiting);
    free(j->flying);
    free(j->send_times);
  }
  j->send_times = NULL;
  j->items = NULL;
  j->waiting = j->flying = NULL;
  if (!j->r.borrowed) so_free_headers(j->r.headers);
  j->r.headers = NULL;
}

static int job_gc(lua_State *L) {
  job_free(luaL_checkudata(L, 1, SO_JOB_MT));
  return 0;
}

static so_job *check_job(lua_State *L) {
  so_job *j = luaL_checkudata(L, 1, SO_JOB_MT);
  if (j->items == NULL) luaL_error(L, "stackone: this call is over");
  return j;
}

/* a job for n records; the client userdata is at client_idx. Pushes the
   job. Its request is r without header lines: so_request_setup builds
   them into so_job_request(j), where the job owns them. */
/* the client's spare job (see park), taken: pushed, or NULL and nothing
   pushed */
static so_job *take_spare(lua_State *L, int client_idx) {
  so_job *j;
  if (lua_getiuservalue(L, client_idx, SO_UV_SPARE_JOB) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return NULL;
  }
  j = lua_touserdata(L, -1);
  lua_pushnil(L);
  lua_setiuservalue(L, client_idx, SO_UV_SPARE_JOB);
  return j;
}

so_job *so_job_new(lua_State *L, so_client *c, int client_idx,
                   const so_request *r, int n, int many, int concurrency) {
  so_job *j = NULL;
  int k;
  client_idx = lua_absindex(L, client_idx);
  if (!many && n == 1 && concurrency <= 1) j = take_spare(L, client_idx);
  if (j == NULL) {
    j = lua_newuserdatauv(L, sizeof(so_job), UV_COUNT);
    luaL_setmetatable(L, SO_JOB_MT);
    lua_pushvalue(L, client_idx); /* a spare has it already */
    lua_setiuservalue(L, -2, UV_CLIENT);
  }
  memset(j, 0, sizeof(*j));
  j->r = *r;
  j->r.headers = NULL;
  j->r.borrowed = 0;
  j->client = c;
  j->pid = c->eng.forks.pid; /* the caller owned the engine (start.c) */
  j->n = n;
  j->many = many;
  j->concurrency = concurrency < 1 ? 1 : concurrency;
  j->start = so_now();
  /* at most 2 x concurrency places are used between two visits of the
     driver (those in flight, those its last grant started) */
  j->sent_cap = 2 * j->concurrency;
  if (!many && n == 1 && j->concurrency == 1) {
    j->items = j->one_item; /* memset above: zeroed */
    j->waiting = j->one_waiting;
    j->flying = j->one_flying;
    j->send_times = j->one_send_times;
  } else {
    j->items = calloc((size_t)n + 1, sizeof(item));
    j->waiting = calloc((size_t)n + 1, sizeof(int));
    j->flying = calloc((size_t)j->concurrency, sizeof(int));
    j->send_times = calloc((size_t)j->sent_cap, sizeof(double));
    if (j->items == NULL || j->waiting == NULL || j->flying == NULL ||
        j->send_times == NULL)
      luaL_error(L, "not enough memory");
  }
  for (k = UV_URLS; many && k <= UV_RESULTS; k++) {
    lua_createtable(L, n, 0);
    lua_setiuservalue(L, -2, k);
  }
  j->limiter = c->limiter;
  j->shared = c->has_shared;
  return j;
}

/* record i's value `uv` := the value at `value`; the job is on the top */
static void set_record_value(lua_State *L, const so_job *j, int uv, int i,
                             int value) {
  value = lua_absindex(L, value);
  if (j->many) {
    lua_getiuservalue(L, -1, uv);
    lua_pushvalue(L, value);
    lua_rawseti(L, -2, i + 1);
    lua_pop(L, 1);
  } else {
    lua_pushvalue(L, value);
    lua_setiuservalue(L, -2, uv);
  }
}

/* pushes record i's value `uv` of the job at self; returns its type */
static int push_record_value(lua_State *L, const so_job *j, int self, int uv,
                             int i) {
  int type;
  if (!j->many) return lua_getiuservalue(L, self, uv);
  lua_getiuservalue(L, self, uv);
  type = lua_rawgeti(L, -1, i + 1);
  lua_remove(L, -2);
  return type;
}

so_request *so_job_request(so_job *j) {
  return &j->r;
}

/* record i (0-based) is sent to the URL at `url` with the body at
   `body` (0: none); the job is on the top of the stack */
void so_job_set_record(lua_State *L, so_job *j, int i, int url, int body) {
  set_record_value(L, j, UV_URLS, i, url);
  if (body) set_record_value(L, j, UV_BODIES, i, body);
  j->items[i].state = QUEUED;
}

/* on_progress(done, total, failed[, wait]) under lua_pcall: an error in
   it is kept for the summary, never thrown through libcurl or the
   engine. `wait` ({ reason =, seconds = }) comes once when the batch
   starts to wait for the rate limiter or a Retry-After pause, so a
   progress display can say so rather than look frozen. */
static void report(lua_State *L, so_job *j, int self, const char *reason,
                   double seconds) {
  if (!j->progress || j->progress_failed) return;
  lua_getiuservalue(L, self, UV_PROGRESS);
  lua_pushinteger(L, j->done);
  lua_pushinteger(L, j->n);
  lua_pushinteger(L, j->failed);
  if (reason) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_pushnumber(L, seconds);
    lua_setfield(L, -2, "seconds");
  }
  if (lua_pcall(L, reason ? 4 : 3, 0, 0) != LUA_OK) {
    j->progress_failed = 1;
    lua_setiuservalue(L, self, UV_PROGRESS_ERROR);
  }
}

static void report_wait(lua_State *L, so_job *j, int self, double until,
                        double now) {
  const char *reason = until == j->limit_until ? "rate_limit"
                       : until == j->pause_until ? "retry_after" : NULL;
  if (reason == NULL || until == j->reported_wait) return;
  j->reported_wait = until;
  report(L, j, self, reason, until - now);
}

/* on_result(i, results[i]) under lua_pcall, as record i's outcome is
   stored: the Lua layer's journal writes it down at once. Its first error
   is kept as on_progress's would be, and it is not called again. */
static void tell_result(lua_State *L, so_job *j, int self, int i) {
  if (!j->on_result) return;
  lua_getiuservalue(L, self, UV_ON_RESULT);
  lua_pushinteger(L, i + 1);
  lua_getiuservalue(L, self, UV_RESULTS);
  lua_rawgeti(L, -1, i + 1);
  lua_remove(L, -2);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    j->on_result = 0;
    if (lua_getiuservalue(L, self, UV_PROGRESS_ERROR) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_setiuservalue(L, self, UV_PROGRESS_ERROR);
    } else {
      lua_pop(L, 2);
    }
  }
}

/* stores the two values on the top of the stack as record i's outcome */
static void store(lua_State *L, so_job *j, int self, int i) {
  int failed = lua_isnil(L, -2);
  if (j->many) {
    lua_getiuservalue(L, self, UV_RESULTS);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, failed ? -3 : -4);
    lua_setfield(L, -2, failed ? "err" : "record");
    lua_rawseti(L, -2, i + 1);
    lua_pop(L, 3);
  } else {
    lua_setiuservalue(L, self, UV_RESULT_2);
    lua_setiuservalue(L, self, UV_RESULTS);
  }
  j->items[i].state = DONE;
  j->done++;
  if (failed) j->failed++;
  else j->ok++;
  if (j->many) tell_result(L, j, self, i);
}

/* a record the Lua layer or the checks refused: the error on the top of
   the stack is its outcome (the job is below it) */
void so_job_fail_record(lua_State *L, so_job *j, int i) {
  int self = lua_absindex(L, -2);
  lua_pushnil(L);
  lua_insert(L, -2);
  store(L, j, self, i);
}

void so_job_set_progress(lua_State *L, so_job *j, int fn) {
  lua_pushvalue(L, fn);
  lua_setiuservalue(L, -2, UV_PROGRESS);
  j->progress = 1;
}

/* the debug function gets the attempt's trace under lua_pcall: a failing
   one must never hide the outcome of a request (a created contact) */
static void debug_hook(lua_State *L, int self, const so_buf *trace) {
  lua_getiuservalue(L, self, UV_CLIENT);
  lua_getiuservalue(L, -1, SO_UV_HOOKS);
  lua_getfield(L, -1, "debug");
  lua_pushlstring(L, trace->data ? trace->data : "", trace->len);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    if (lua_getiuservalue(L, self, UV_DEBUG_ERROR) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_setiuservalue(L, self, UV_DEBUG_ERROR);
    } else {
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 2);
}

/* the shared place item i held is used (its request went on the wire)
   or free again; the driver tells the store at its next visit. A send
   time that does not fit is left out: the store then keeps the place
   until its hold runs out, later than needed, never earlier. */
static void note_place(so_job *j, item *it, const so_exchange *x) {
  if (!it->shared) return;
  it->shared = 0;
  if (x->requests == 0) j->unsent++;
  else if (j->nsent < j->sent_cap) j->send_times[j->nsent++] = x->sent_at;
}

static void remove_flying(so_job *j, int i) {
  int k;
  for (k = 0; k < j->nflying; k++)
    if (j->flying[k] == i) {
      j->flying[k] = j->flying[--j->nflying];
      return;
    }
}

/* whether the attempt should go again, with its delay; also reads
   Retry-After into the outcome (not of a success, where nothing reads it) */
static int plan_retry(so_job *j, item *it, so_exchange *x, so_outcome *o,
                      double *delay) {
  const so_retry *r = &j->r.retry;
  size_t len;
  const char *ra;
  o->has_retry_after = 0;
  if (o->rc == CURLE_OK && o->status >= 200 && o->status <= 299) return 0;
  ra = o->rc == CURLE_OK ? so_find_header(&x->head, "retry-after", &len) : NULL;
  o->has_retry_after = ra && so_parse_retry_after(ra, len, time(NULL),
                                                  &o->retry_after);
  if (it->tries >= r->max_attempts ||
      !so_retryable(j->r.op->method, o->rc, o->status, o->sent,
                    x->too_large, r))
    return 0;
  if (o->has_retry_after && so_status_of(o->status)->retry_after) {
    if (o->retry_after > r->max_delay) return 0; /* not in an hour */
    *delay = o->retry_after;
  } else {
    *delay = so_backoff(r, it->tries, &j->client->rng);
  }
  if (it->waited + *delay > r->max_wait) return 0;
  it->waited += *delay;
  return 1;
}

/* what libcurl's vetoed resend means (see on_prereq in transport.c) */
static void classify(so_exchange *x, so_outcome *o) {
  int refused = x->stream_refused ||
                (x->goaway && x->stream_id > x->goaway_last);
  o->sent = x->requests > 0 && !refused;
  if (!x->resend_refused) return;
  if (refused) {
    o->rc = CURLE_SEND_ERROR;
    strcpy(x->errbuf, "the server refused the HTTP/2 stream: the request "
           "was not processed");
  } else {
    o->rc = CURLE_GOT_NOTHING;
    strcpy(x->errbuf, "the connection closed before any response: the "
           "server may have processed the request");
  }
}

/* the attempt of item i is over: plan another one or keep the outcome.
   Until its handle is back in the engine's pool, the item stays in flight
   holding it, so that a Lua error (out of memory) on the way frees the
   handle with the job. */
static void finish_attempt(lua_State *L, so_job *j, int self, int i) {
  item *it = &j->items[i];
  so_slot *s = it->slot;
  so_exchange *x = &s->x;
  so_outcome o;
  double delay = 0;
  int top = lua_gettop(L), final = 1;
  memset(&o, 0, sizeof(o));
  o.op = j->r.op;
  it->sent += x->requests;
  j->sent += x->requests;
  o.attempts = it->sent;
  o.rc = s->rc;
  curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &o.status);
  classify(x, &o);
  o.earlier_maybe_applied = it->maybe_applied;
  note_place(j, it, x);
  if (s->closed) { /* the client closed under it */
    so_push_stop_error(L, o.op, SO_E_CLOSED, "the client was closed while the "
                       "request was in flight", it->sent,
                       o.sent || it->maybe_applied);
  } else if (plan_retry(j, it, x, &o, &delay)) {
    final = 0;
  } else {
    push_record_value(L, j, self, UV_URLS, i);
    o.url = lua_gettop(L);
    so_push_result(L, x, &o);
    /* the pair to the bottom: decoding may leave more below it */
    lua_copy(L, -2, top + 1);
    lua_copy(L, -1, top + 2);
    lua_settop(L, top + 2);
  }
  if (x->want_trace) { /* the handle is still this job's: nothing reuses it */
    debug_hook(L, self, &x->trace);
    x->want_trace = 0;
  }
  remove_flying(j, i);
  so_engine_release(&j->client->eng, s);
  it->slot = NULL;
  if (final) {
    store(L, j, self, i);
    report(L, j, self, NULL, 0);
  } else {
    it->maybe_applied |= so_outcome_maybe_applied(&o);
    it->state = WAITING;
    it->not_before = so_now() + delay;
    j->waiting[j->nwaiting++] = i;
    if (so_status_of(o.status)->pause_all && o.has_retry_after &&
        it->not_before > j->pause_until)
      j->pause_until = it->not_before; /* the whole job waits */
  }
  lua_settop(L, top);
}

/* whether an item never tried is left (passing those refused up front) */
static int fresh_left(so_job *j) {
  while (j->next_fresh < j->n && j->items[j->next_fresh].state == DONE)
    j->next_fresh++;
  return j->next_fresh < j->n;
}

/* the next item allowed to start now: its place in `waiting`, -1 for the
   next fresh one, -2 for none */
static int pick(so_job *j, double now) {
  int k;
  for (k = 0; k < j->nwaiting; k++)
    if (j->items[j->waiting[k]].not_before <= now) return k;
  return fresh_left(j) ? -1 : -2;
}

/* compression is asked for only where answers can be large (pages);
   on a create or get, libcurl's Accept-Encoding handling costs more than
   a small answer saves */
static CURLcode set_encoding(so_exchange *x, const so_operation *op) {
  return curl_easy_setopt(x->curl, CURLOPT_ACCEPT_ENCODING,
                          so_shapes[op->kind].page ? "" : NULL);
}

/* starts item i; place: the rate limiter place it took, or -1. The Lua
   calls come first: once it has a handle, nothing here may raise before
   the item holds it. */
static void launch(lua_State *L, so_job *j, int self, int i, int place) {
  so_client *c = j->client;
  item *it = &j->items[i];
  const char *body = NULL, *url;
  size_t body_len = 0;
  so_slot *s;
  push_record_value(L, j, self, UV_URLS, i);
  url = lua_tostring(L, -1);
  if (push_record_value(L, j, self, UV_BODIES, i) == LUA_TSTRING)
    body = lua_tolstring(L, -1, &body_len);
  lua_pop(L, 2); /* the job keeps both strings alive */
  s = so_engine_acquire(&c->eng, c);
  if (j->shared) { /* a place of the shared budget is used now */
    j->granted--;
    it->shared = 1;
  }
  if (s == NULL) {
    so_limiter_unsent(j->limiter, place);
    if (it->shared) it->shared = 0, j->unsent++;
    luaL_error(L, "stackone: could not set up a transfer");
  }
  s->x.limiter = j->limiter; /* the send time goes in its place */
  s->x.place = place;
  if (so_prepare(&s->x, j->r.op->method, url, j->r.headers, body, body_len,
                 j->r.timeout_ms, j->r.verbose) != CURLE_OK ||
      set_encoding(&s->x, j->r.op) != CURLE_OK ||
      !so_engine_add(&c->eng, s)) {
    so_engine_release(&c->eng, s);
    if (it->shared) it->shared = 0, j->unsent++;
    luaL_error(L, "stackone: could not start a transfer");
  }
  s->job = j;
  s->item = i;
  it->slot = s;
  it->state = FLYING;
  it->tries++;
  j->flying[j->nflying++] = i;
}

/* how many items could start now */
static int startable(so_job *j, double now) {
  int k, n = 0, room = j->concurrency - j->nflying;
  for (k = 0; k < j->nwaiting && n < room; k++)
    if (j->items[j->waiting[k]].not_before <= now) n++;
  for (k = j->next_fresh; k < j->n && n < room; k++)
    if (j->items[k].state != DONE) n++;
  return n;
}

/* starts what may start now, within the concurrency, the job's pause and
   the rate limiters: the shared budget's places first (j->want asks the
   driver for some), then the client's own */
static void start_ready(lua_State *L, so_job *j, int self, double now) {
  j->limit_until = 0;
  j->want = 0;
  while (j->nflying < j->concurrency && now >= j->pause_until) {
    int k = pick(j, now), i, place = -1;
    if (k == -2) break;
    if (j->shared && j->granted == 0) {
      if (now < j->shared_until) j->limit_until = j->shared_until;
      else j->want = startable(j, now);
      break;
    }
    if (j->limiter) {
      double wait = so_limiter_take(j->limiter, j->client->eng.forks.pid,
                                    now, &place);
      if (wait > 0) {
        j->limit_until = now + wait;
        break;
      }
    }
    if (k == -1) {
      i = j->next_fresh++;
    } else {
      i = j->waiting[k];
      j->waiting[k] = j->waiting[--j->nwaiting];
    }
    launch(L, j, self, i, place);
  }
}

/* the next time something may start (0: only the network can change
   anything) */
static double next_wake(so_job *j, double now) {
  double t = fresh_left(j) ? now : 0;
  int k;
  if (j->nflying >= j->concurrency) return 0;
  for (k = 0; k < j->nwaiting; k++) {
    double nb = j->items[j->waiting[k]].not_before;
    if (t == 0 || nb < t) t = nb;
  }
  if (t == 0) return 0;
  if (j->pause_until > t) t = j->pause_until;
  if (j->limit_until > t) t = j->limit_until;
  return t;
}

/* every record not done gets an error of `kind`; transfers in flight
   stop. Returns nothing on the stack. */
static void stop(lua_State *L, so_job *j, int self, so_error_kind kind,
                 const char *sent_message, const char *unsent_message) {
  int i;
  for (i = 0; i < j->n; i++) {
    item *it = &j->items[i];
    int maybe = it->maybe_applied;
    if (it->state == DONE) continue;
    if (it->state == FLYING) {
      maybe |= it->slot->x.requests > 0;
      it->sent += it->slot->x.requests;
      j->sent += it->slot->x.requests;
      note_place(j, it, &it->slot->x);
      remove_flying(j, i);
      give_back(j, it);
    }
    so_push_stop_error(L, j->r.op, kind, maybe || it->tries
                       ? sent_message : unsent_message, it->sent, maybe);
    store(L, j, self, i);
  }
  j->nwaiting = 0;
  j->next_fresh = j->n;
  j->stopped = 1;
}

/* the driver was asked to wait until `until`: a sleep function or loop
   that comes back early is asked again for what remains, but one that
   keeps coming back at once is not spun: the job then waits itself */
/* whether the call was made in another process, before it forked: its
   records are the parent's to finish */
static int inherited(so_job *j) {
  so_engine_own(&j->client->eng);
  return j->pid != j->client->eng.forks.pid;
}

static int ask_wait(so_job *j, double until, double now) {
  int again = j->wait_until > until - 1e-6 && j->wait_until < until + 1e-6;
  if (!again) j->wait_early = 0;
  else if (now - j->wait_asked < 0.001) j->wait_early++;
  if (j->wait_early >= 3) {
    so_sleep(until - now);
    return 0;
  }
  j->wait_until = until;
  j->wait_asked = now;
  return 1;
}

/* "limit", budget: the driver calls budget:serve(job), which reads
   job:_limit() and answers with job:_grant() */
static int push_limit(lua_State *L, so_job *j) {
  (void)j;
  lua_pushliteral(L, "limit");
  lua_getiuservalue(L, 1, UV_CLIENT);
  lua_getiuservalue(L, -1, SO_UV_HOOKS);
  lua_getfield(L, -1, "shared");
  lua_replace(L, -3);
  lua_pop(L, 1);
  return 2;
}

/* job:_limit() -> want, pause, unsent, sent: the places the job asks the
   shared budget for, the seconds of a Retry-After pause every process
   should keep (0: none new), the places given back, and how many
   seconds ago each used place went on the wire. Told once. */
static int job_limit(lua_State *L) {
  so_job *j = check_job(L);
  double now = so_now();
  int k;
  lua_pushinteger(L, j->want);
  lua_pushnumber(L, j->pause_until > j->pause_told && j->pause_until > now
                        ? j->pause_until - now : 0);
  lua_pushinteger(L, j->unsent);
  lua_createtable(L, j->nsent, 0);
  for (k = 0; k < j->nsent; k++) {
    lua_pushnumber(L, now - j->send_times[k]);
    lua_rawseti(L, -2, k + 1);
  }
  if (j->pause_until > j->pause_told) j->pause_told = j->pause_until;
  j->want = j->unsent = j->nsent = 0;
  return 4;
}

/* job:_grant(places, wait): the budget granted that many places; when
   fewer than asked, none may come before `wait` seconds */
static int job_grant(lua_State *L) {
  so_job *j = check_job(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  double wait = luaL_optnumber(L, 3, 0);
  if (n < 0 || n > j->concurrency) luaL_argerror(L, 2, "out of range");
  j->granted += (int)n;
  j->shared_until = wait > 0 ? so_now() + wait : 0;
  return 0;
}

/* job:step([max_wait]) -> "done" | "sleep", seconds, sleep_function |
   "wait", seconds or nil | "limit", budget. Blocking mode drives the
   engine here until the job is done or a wait needs the client's sleep
   function (or the shared budget's driver); loop mode starts what it can
   and says how long the host may let it be. Given max_wait, a blocking
   client makes one round (start what can start, drive the engine once,
   waiting at most max_wait, finish what finished) and says "wait": a
   scheduler steps many jobs in turn. */
static int step_job(lua_State *L, so_job *j) {
  so_engine *e = &j->client->eng;
  double max_wait = luaL_optnumber(L, 2, -1);
  int round = max_wait >= 0 ? 1 : 0;
  lua_settop(L, 1);
  if (!j->started) { /* records refused before the start count as done */
    j->started = 1;
    if (j->done) report(L, j, 1, NULL, 0);
  }
  for (;;) {
    double now, until;
    int k, forked;
    /* finished attempts first; a hook they call may fork */
    forked = inherited(j);
    for (k = 0; k < j->nflying && !forked;) {
      item *it = &j->items[j->flying[k]];
      if (!it->slot->done) {
        k++;
        continue;
      }
      finish_attempt(L, j, 1, j->flying[k]);
      forked = inherited(j);
    }
    if (j->done < j->n && forked)
      stop(L, j, 1, SO_E_FORKED, "the process forked while the call was in "
           "flight: the request is the parent process's", "the process "
           "forked before the request was sent: the parent process sends it");
    if (j->done == j->n) {
      j->unsent += j->granted;
      j->granted = 0;
      if (j->shared && (j->nsent || j->unsent)) return push_limit(L, j);
      break;
    }
    if (j->client->closed) {
      stop(L, j, 1, SO_E_CLOSED, "the client was closed before the request "
           "finished", "the client was closed before the request was sent");
      continue;
    }
    now = so_now();
    start_ready(L, j, 1, now);
    if (j->shared && (j->want > 0 || j->pause_until > j->pause_told))
      return push_limit(L, j);
    until = next_wake(j, now);
    if (until > now) report_wait(L, j, 1, until, now);
    if (j->client->closed) continue; /* on_progress closed it */
    if (e->loop) {
      lua_pushliteral(L, "wait");
      if (until > 0) lua_pushnumber(L, until - now);
      else lua_pushnil(L);
      if (until > 0 && !ask_wait(j, until, now)) {
        lua_pop(L, 2);
        continue;
      }
      return 2;
    }
    if (round == 2) { /* the round is over */
      lua_pushliteral(L, "wait");
      if (until > 0) lua_pushnumber(L, until - now);
      else lua_pushnil(L);
      return 2;
    }
    if (round) {
      double wait = until > now && until - now < max_wait ? until - now
                                                          : max_wait;
      round = 2;
      e->completions = 0;
      if (e->active > 0) so_engine_run(e, wait);
      else so_sleep(wait);
      continue;
    }
    if (e->active > 0) {
      e->completions = 0;
      so_engine_run(e, until > 0 ? until - now : 1.0);
      continue;
    }
    if (until <= now) continue;
    { /* nothing in flight: wait with the sleep function, or block */
      int hook;
      lua_getiuservalue(L, 1, UV_CLIENT);
      lua_getiuservalue(L, -1, SO_UV_HOOKS);
      hook = lua_getfield(L, -1, "sleep") == LUA_TFUNCTION;
      if (hook && ask_wait(j, until, now)) {
        lua_pushliteral(L, "sleep");
        lua_pushnumber(L, until - now);
        lua_pushvalue(L, -3);
        return 3;
      }
      lua_settop(L, 1);
      if (!hook) so_sleep(until - now);
    }
  }
  lua_pushliteral(L, "done");
  return 1;
}

static int job_step(lua_State *L) {
  return step_job(L, check_job(L));
}

/* job:on_result(fn): fn(i, results[i]) as each record's outcome is
   known, from then on (a bulk job) */
static int job_on_result(lua_State *L) {
  so_job *j = check_job(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, UV_ON_RESULT);
  j->on_result = j->many;
  return 0;
}

/* job:ready() -> whether step has something to do: an attempt finished
   or the client closed (loop mode: the driver resumes the call then) */
static int job_ready(lua_State *L) {
  so_job *j = check_job(L);
  int k, ready = j->client->closed || inherited(j);
  for (k = 0; !ready && k < j->nflying; k++)
    ready = j->items[j->flying[k]].slot->done;
  lua_pushboolean(L, ready);
  return 1;
}

static void push_summary(lua_State *L, so_job *j, int self) {
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, j->ok);
  lua_setfield(L, -2, "ok");
  lua_pushinteger(L, j->failed);
  lua_setfield(L, -2, "failed");
  lua_pushinteger(L, j->sent);
  lua_setfield(L, -2, "attempts");
  lua_pushnumber(L, so_now() - j->start);
  lua_setfield(L, -2, "elapsed");
  if (j->stopped) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "stopped");
  }
  if (lua_getiuservalue(L, self, UV_PROGRESS_ERROR) != LUA_TNIL)
    lua_setfield(L, -2, "progress_error");
  else
    lua_pop(L, 1);
  if (lua_getiuservalue(L, self, UV_DEBUG_ERROR) != LUA_TNIL)
    lua_setfield(L, -2, "debug_error");
  else
    lua_pop(L, 1);
}

/* job:result() -> value, response | nil, err (single);
   results, summary (bulk). Frees the job's C memory. */
static int result_of(lua_State *L, so_job *j) {
  if (j->done < j->n) return luaL_error(L, "stackone: the call is not done");
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, UV_RESULTS);
  if (j->many) {
    push_summary(L, j, 1);
  } else {
    lua_getiuservalue(L, 1, UV_RESULT_2);
    if (lua_getiuservalue(L, 1, UV_DEBUG_ERROR) != LUA_TNIL)
      lua_setfield(L, -2, "debug_error");
    else
      lua_pop(L, 1);
  }
  job_free(j);
  return 2;
}

static int job_result(lua_State *L) {
  return result_of(L, check_job(L));
}

/* job:interrupt(cause) -> err: the driver's host callback (a sleep
   function or the loop) raised `cause`. Transfers in flight stop; the
   error to raise carries what the call knows: bulk results and summary,
   or whether the single request may have been processed. */
static int job_interrupt(lua_State *L) {
  so_job *j = check_job(L);
  lua_settop(L, 2);
  stop(L, j, 1, SO_E_INTERRUPTED, "interrupted while the request was pending "
       "or in flight", "interrupted before the request was sent");
  lua_getiuservalue(L, 1, UV_RESULTS);
  if (j->many) {
    so_push_stop_error(L, j->r.op, SO_E_INTERRUPTED, "the bulk call was "
                       "interrupted: see results and summary", (int)j->sent,
                       0);
    lua_remove(L, -2); /* the nil */
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "results");
    push_summary(L, j, 1);
    lua_setfield(L, -2, "summary");
    lua_pushnil(L);
    lua_setfield(L, -2, "maybe_applied"); /* per record, in results */
  } else {
    lua_getiuservalue(L, 1, UV_RESULT_2);
  }
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "cause");
  job_free(j);
  return 1;
}

/* the finished job at idx, which never left the core, becomes its
   client's spare: the next one-record call uses its memory again rather
   than make another. It lets go of the call's values first. */
static void park(lua_State *L, int idx) {
  so_clear_uservalues(L, idx, UV_COUNT, UV_CLIENT);
  lua_getiuservalue(L, idx, UV_CLIENT);
  lua_pushvalue(L, idx);
  lua_setiuservalue(L, -2, SO_UV_SPARE_JOB);
  lua_pop(L, 1);
}

/* whether the fields at idx name custom fields ({ ["Name"] = value }):
   those the Lua layer resolves against the account's definitions */
static int names_custom_fields(lua_State *L, int idx) {
  int named = 0;
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  if (lua_getfield(L, idx, "custom_fields") == LUA_TTABLE) {
    lua_pushnil(L);
    if (lua_next(L, -2)) {
      named = lua_type(L, -2) != LUA_TNUMBER;
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 1);
  return named;
}

/* client:_call(op_index, group, names_at, ...): _start, then the job's
   first step. The group is the colon form's first argument, dropped;
   names_at (0: none) the position of fields whose custom fields by name
   need the Lua layer: then it returns the client alone. A blocking
   one-record call usually ends in its first step: it returns what
   job:result() would, with no job for Lua to drive. Otherwise it returns
   the client (which no call returns), the job and what the step said,
   for the Lua driver to go on from. */
int so_client_call(lua_State *L) {
  int names_at = (int)luaL_checkinteger(L, 4), n, stepped;
  so_job *j;
  if (lua_gettop(L) >= 5 && lua_rawequal(L, 3, 5)) lua_remove(L, 5);
  if (names_at > 0 && names_custom_fields(L, 4 + names_at)) {
    lua_settop(L, 1);
    return 1;
  }
  lua_remove(L, 4);
  lua_remove(L, 3);
  n = so_client_start(L);
  if (lua_isnil(L, -n)) return n; /* nil, err */
  lua_replace(L, 1);
  lua_settop(L, 1);
  j = lua_touserdata(L, 1); /* so_client_start made it */
  stepped = step_job(L, j);
  if (stepped == 1 && strcmp(lua_tostring(L, -1), "done") == 0) {
    lua_settop(L, 1);
    result_of(L, j);
    park(L, 1);
    return 2;
  }
  /* the step's values are the top `stepped`: the client and the job go
     below them */
  lua_getiuservalue(L, 1, UV_CLIENT);
  lua_insert(L, -(stepped + 1));
  lua_pushvalue(L, 1);
  lua_insert(L, -(stepped + 1));
  return stepped + 2;
}

void so_job_metatable(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"step", job_step},
    {"ready", job_ready},
    {"result", job_result},
    {"interrupt", job_interrupt},
    {"on_result", job_on_result},
    {"_limit", job_limit},
    {"_grant", job_grant},
    {NULL, NULL}
  };
  /* the module state is on the top: results decode with its cjson */
  luaL_newmetatable(L, SO_JOB_MT);
  lua_pushcfunction(L, job_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlibtable(L, methods);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
