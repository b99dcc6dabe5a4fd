/*
** engine.c: the one place where requests go on the wire. Each client
** has a multi handle (its connection cache), a pool of easy handles and
** the list of handles out of the pool. Blocking calls drive it with
** curl_multi_poll; a host loop drives it with curl_multi_socket_action.
** The libcurl callbacks here only record what happened, in C. After a
** fork, the child's engine lets go of its parent's connections without a
** byte on them (adopt) and starts afresh.
*/
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stackone.h"

#ifdef __linux__
#include <errno.h>
#include <sys/epoll.h>
#endif

static void record_change(so_engine *e, int fd, int what) {
  int record[2];
  record[0] = fd;
  record[1] = what;
  so_buf_append(&e->changes, record, sizeof(record)); /* oom: changes.oom */
}

/* Gathered: libcurl's sockets live in one epoll set, and the host loop
   watches only the set's descriptor, while the set is not empty. The
   loop then never holds a socket that libcurl closes, nor one that
   fails (luv 1.44 prints an error for a failed socket it polls). */
#ifdef __linux__
static void gather_count(so_engine *e, int delta) {
  int before = e->gathered;
  e->gathered += delta;
  if (before == 0 && e->gathered > 0) record_change(e, e->gather_fd, CURL_POLL_IN);
  if (before > 0 && e->gathered == 0) record_change(e, e->gather_fd, CURL_POLL_REMOVE);
}

static void gather_remove(so_engine *e, int fd) {
  if (epoll_ctl(e->gather_fd, EPOLL_CTL_DEL, fd, NULL) == 0) gather_count(e, -1);
}

static void gather_socket(so_engine *e, int fd, int what) {
  struct epoll_event ev;
  if (what == CURL_POLL_REMOVE) {
    gather_remove(e, fd);
    return;
  }
  memset(&ev, 0, sizeof(ev));
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  if (epoll_ctl(e->gather_fd, EPOLL_CTL_MOD, fd, &ev) == 0) return;
  if (errno == ENOENT && epoll_ctl(e->gather_fd, EPOLL_CTL_ADD, fd, &ev) == 0) {
    gather_count(e, 1);
    return;
  }
  e->gather_errno = errno;
}

/* the set's descriptor is ready: each ready socket, as libcurl's events */
static void gather_action(so_engine *e) {
  struct epoll_event evs[16];
  int still, k, n, rounds = 0;
  do {
    n = epoll_wait(e->gather_fd, evs, 16, 0);
    for (k = 0; k < n; k++) {
      int bits = (evs[k].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                 (evs[k].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                 (evs[k].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(e->multi, evs[k].data.fd, bits, &still);
    }
  } while (n == 16 && ++rounds < 8);
}
#endif

/* gathers libcurl's sockets into one descriptor (epoll, on Linux);
   0 where the platform has none: each socket is watched on its own */
int so_engine_gather(so_engine *e) {
#ifdef __linux__
  if (e->gather_fd < 0 && e->loop) e->gather_fd = epoll_create1(EPOLL_CLOEXEC);
  return e->gather_fd >= 0;
#else
  (void)e;
  return 0;
#endif
}

/* loop mode: what to watch, recorded in order for the Lua driver */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp) {
  so_engine *e = userp;
  (void)easy, (void)socketp;
#ifdef __linux__
  if (e->gather_fd >= 0) {
    gather_socket(e, (int)fd, what);
    return 0;
  }
#endif
  record_change(e, (int)fd, what);
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
  so_engine *e = userp;
  (void)multi;
  e->timer_ms = timeout_ms;
  e->timer_changed = 1;
  return 0;
}

/* every socket libcurl opens for a connection is known: after a fork
   the child makes each one harmless before libcurl lets it go; one the
   engine could not note is refused */
static int note_socket(void *engine, curl_socket_t fd, curlsocktype purpose) {
  so_engine *e = engine;
  int record = (int)fd;
  (void)purpose;
  return so_buf_append(&e->sockets, &record, sizeof(record))
             ? CURL_SOCKOPT_OK : CURL_SOCKOPT_ERROR;
}

/* libcurl is done with a socket. In loop mode a host loop may still
   watch it (cqueues and libuv keep it registered), so it is closed only
   after the loop driver has told the loop to let go:
   so_engine_close_sockets */
static int close_socket(void *engine, curl_socket_t fd) {
  so_engine *e = engine;
  int *fds = (int *)(void *)e->sockets.data, record = (int)fd;
  size_t k, n = e->sockets.len / sizeof(int);
  for (k = 0; k < n && fds[k] != record; k++) {}
  if (k < n) {
    fds[k] = fds[n - 1];
    e->sockets.len -= sizeof(int);
  }
#ifdef __linux__
  if (e->gather_fd >= 0) { /* the loop never watched it */
    gather_remove(e, record);
    close(fd);
    return 0;
  }
#endif
  if (!e->loop || !so_buf_append(&e->closing, &record, sizeof(record)))
    close(fd);
  return 0;
}

void so_engine_close_sockets(so_engine *e) {
  const int *fds;
  size_t k, n;
  so_engine_own(e);
  fds = (const int *)(void *)e->closing.data;
  n = e->closing.len / sizeof(int);
  for (k = 0; k < n; k++) close(fds[k]);
  so_buf_reset(&e->closing);
}

/* the share handle: a second connection resumes the first one's TLS
   session (one thread per client: no lock functions) */
static int start_share(so_engine *e) {
  e->share = curl_share_init();
  if (e->share == NULL) return 0;
  if (curl_share_setopt(e->share, CURLSHOPT_SHARE,
                        CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK)
    return 1;
  curl_share_cleanup(e->share);
  e->share = NULL;
  return 0;
}

static int start_multi(so_engine *e) {
  if (!start_share(e)) return 0;
  e->multi = curl_multi_init();
  if (e->multi == NULL) return 0;
  /* HTTP/2 streams share a connection (libcurl's default since 7.62) */
  curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (e->loop) {
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
  }
  return 1;
}

/* an engine that holds nothing, safe to close: what a client is made
   with before anything can fail (no descriptor, this process's) */
void so_engine_blank(so_engine *e) {
  memset(e, 0, sizeof(*e));
  e->timer_ms = -1;
  e->gather_fd = -1;
  e->forks.pid = getpid(); /* no page yet: so_engine_init starts the watch */
}

int so_engine_init(so_engine *e, int loop) {
  so_engine_blank(e);
  so_forkwatch_start(&e->forks);
  e->loop = loop;
  return start_multi(e);
}

static void unlink_slot(so_slot **list, so_slot *s) {
  if (s->prev) s->prev->next = s->next;
  else *list = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
}

static void push_slot(so_slot **list, so_slot *s) {
  s->prev = NULL;
  s->next = *list;
  if (*list) (*list)->prev = s;
  *list = s;
}

/* transfers in flight stop; every handle a job still holds becomes the
   job's own (an orphan), finished or not, so that a finished transfer's
   outcome is never lost; the pool's handles and the multi handle go.
   keep_curl: libcurl's handles are left as they are (never used again) */
static void let_go(so_engine *e, int keep_curl) {
  while (e->flying) {
    so_slot *s = e->flying;
    unlink_slot(&e->flying, s);
    if (!s->done) {
      if (!keep_curl) curl_multi_remove_handle(e->multi, s->x.curl);
      s->done = 1;
      s->closed = 1;
      s->rc = CURLE_ABORTED_BY_CALLBACK;
      e->completions++; /* a loop driver wakes its call */
    }
    if (keep_curl) s->x.curl = NULL;
    /* the share handle goes below: the orphan's handle lets go of it */
    else curl_easy_setopt(s->x.curl, CURLOPT_SHARE, NULL);
    s->orphan = 1;
  }
  e->active = 0;
  while (e->pool) {
    so_slot *s = e->pool;
    unlink_slot(&e->pool, s);
    if (keep_curl) s->x.curl = NULL;
    so_exchange_free(&s->x);
    free(s);
  }
  if (e->multi && !keep_curl) curl_multi_cleanup(e->multi);
  e->multi = NULL;
  if (e->share && !keep_curl) curl_share_cleanup(e->share);
  e->share = NULL;
}

/* closing the client; e->closing stays for the client's close to finish
   (client.c) */
void so_engine_close(so_engine *e) {
  so_engine_own(e);
  let_go(e, 0);
  so_buf_free(&e->changes);
  if (e->gather_fd >= 0) { /* closed once the loop has let go of it */
    int record = e->gather_fd;
    if (!so_buf_append(&e->closing, &record, sizeof(record))) close(record);
    e->gather_fd = -1;
  }
  so_buf_free(&e->sockets);
  so_forkwatch_stop(&e->forks);
}

/* The first use in a process made by fork(): the multi handle, the easy
   handles and the sockets are the parent's too. /dev/null is put in
   place (dup2) of every socket libcurl holds or the loop still watches,
   so that libcurl letting go of them writes nothing on the parent's
   connections (no TLS close_notify, no HTTP/2 GOAWAY, no request of the
   child on the parent's connection) and a host loop's epoll_ctl in the
   child reaches no registration of the parent's. Then the handles go as
   on close, and a new multi handle starts. The calls in flight are the
   parent's: their jobs end them with kind "forked" (job.c); the rate
   limiter places they hold are left to the child's limiter
   (so_limiter_take). Without /dev/null libcurl's handles are never
   touched again and the sockets are closed. */
static void adopt(so_engine *e) {
  int null = open("/dev/null", O_RDWR), *rec;
  const so_buf *sets[2];
  size_t k, i, n;
  so_slot *s;
  sets[0] = &e->sockets;
  sets[1] = &e->closing;
  for (i = 0; i < 2; i++) {
    const int *fds = (const int *)(void *)sets[i]->data;
    n = sets[i]->len / sizeof(int);
    for (k = 0; k < n; k++) {
      if (null >= 0) dup2(null, fds[k]);
      else if (sets[i] == &e->sockets) close(fds[k]); /* never libcurl's again */
    }
  }
  if (null < 0) so_buf_reset(&e->sockets);
  else close(null);
  /* their places are the parent's requests': not the child's to free */
  for (s = e->flying; s; s = s->next) s->x.place = -1;
  let_go(e, null < 0);
  /* whatever the loop was to hear of the old sockets: let them go */
  rec = (int *)(void *)e->changes.data;
  n = e->changes.len / (2 * sizeof(int));
  for (k = 0; k < n; k++) rec[2 * k + 1] = CURL_POLL_REMOVE;
  e->timer_ms = -1;
  e->timer_changed = 1;
#ifdef __linux__
  /* the epoll set is the parent's too: the child gets a set of its own
     under the same number, empty, and the loop lets go of it */
  if (e->gather_fd >= 0) {
    int fresh = epoll_create1(EPOLL_CLOEXEC);
    if (fresh >= 0) {
      dup2(fresh, e->gather_fd);
      close(fresh);
    }
    if (e->gathered > 0) record_change(e, e->gather_fd, CURL_POLL_REMOVE);
    e->gathered = 0;
  }
#endif
  start_multi(e); /* out of memory: calls fail to start, nothing worse */
}

/* at every entry: most calls cost no system call (forkwatch.c) */
void so_engine_own(so_engine *e) {
  if (so_forkwatch_forked(&e->forks)) adopt(e);
}

/* a handle for one attempt, from the pool or new; NULL when out of
   memory or libcurl refused an option */
so_slot *so_engine_acquire(so_engine *e, const so_client *c) {
  so_slot *s;
  so_engine_own(e);
  s = e->pool;
  if (s) {
    unlink_slot(&e->pool, s);
  } else {
    s = calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    s->x.place = -1;
    s->x.curl = curl_easy_init();
    if (s->x.curl == NULL || so_setup_handle(c, &s->x) != CURLE_OK ||
        curl_easy_setopt(s->x.curl, CURLOPT_PRIVATE, (void *)s) != CURLE_OK ||
        curl_easy_setopt(s->x.curl, CURLOPT_SHARE, e->share) != CURLE_OK ||
        curl_easy_setopt(s->x.curl, CURLOPT_SOCKOPTFUNCTION,
                         note_socket) != CURLE_OK ||
        curl_easy_setopt(s->x.curl, CURLOPT_SOCKOPTDATA, (void *)e) != CURLE_OK ||
        curl_easy_setopt(s->x.curl, CURLOPT_CLOSESOCKETFUNCTION,
                         close_socket) != CURLE_OK ||
        curl_easy_setopt(s->x.curl, CURLOPT_CLOSESOCKETDATA,
                         (void *)e) != CURLE_OK) {
      so_exchange_free(&s->x);
      free(s);
      return NULL;
    }
  }
  s->done = s->closed = s->orphan = 0;
  s->rc = CURLE_OK;
  push_slot(&e->flying, s);
  return s;
}

/* a finished or cancelled handle goes back to the pool; an orphan (its
   client closed) is freed */
void so_engine_release(so_engine *e, so_slot *s) {
  so_engine_own(e);
  so_exchange_unsent(&s->x);
  curl_easy_setopt(s->x.curl, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(s->x.curl, CURLOPT_POSTFIELDS, NULL);
  s->job = NULL;
  if (s->orphan || e->multi == NULL) {
    so_exchange_free(&s->x);
    free(s);
    return;
  }
  unlink_slot(&e->flying, s);
  push_slot(&e->pool, s);
}

int so_engine_add(so_engine *e, so_slot *s) {
  so_engine_own(e);
  if (curl_multi_add_handle(e->multi, s->x.curl) != CURLM_OK) return 0;
  e->active++;
  return 1;
}

/* stops an attempt in flight; the caller releases the handle */
void so_engine_cancel(so_engine *e, so_slot *s) {
  so_engine_own(e);
  if (!s->done && !s->orphan) {
    curl_multi_remove_handle(e->multi, s->x.curl);
    e->active--;
  }
  s->done = 1;
}

/* marks what libcurl finished; its job reads the outcome in its own time
   (whichever call drove the engine, the transfer belongs to its job) */
static void drain(so_engine *e) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
    so_slot *s = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
    s->rc = msg->data.result;
    curl_multi_remove_handle(e->multi, s->x.curl);
    s->done = 1;
    e->active--;
    e->completions++;
  }
}

/* blocking mode: moves every transfer on, waiting at most max_wait
   seconds for the network when none finished */
void so_engine_run(so_engine *e, double max_wait) {
  int still, ms;
  so_engine_own(e);
  curl_multi_perform(e->multi, &still);
  drain(e);
  if (e->completions > 0) return;
  ms = max_wait > 1 ? 1000 : max_wait <= 0 ? 0 : (int)(max_wait * 1000) + 1;
  curl_multi_poll(e->multi, NULL, 0, ms, NULL);
  curl_multi_perform(e->multi, &still);
  drain(e);
}

/* loop mode: the host says fd is ready (CURL_SOCKET_TIMEOUT: the timer
   fired); returns how many transfers finished */
int so_engine_action(so_engine *e, curl_socket_t fd, int events) {
  int still, before = e->completions;
  so_engine_own(e);
#ifdef __linux__
  if (e->gather_fd >= 0 && fd == e->gather_fd) gather_action(e);
  else
#endif
  curl_multi_socket_action(e->multi, fd, events, &still);
  drain(e);
  return e->completions - before;
}
