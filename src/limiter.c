/*
** limiter.c: the client's own rate limiter, at most `capacity` requests
** in any window of `per` seconds, counted when they go on the wire.
** Nothing else reads or writes its places: a request takes one
** (so_limiter_take), and then either goes out (so_limiter_sent) or never
** does (so_limiter_unsent).
*/
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <unistd.h>

#include "stackone.h"

/* `capacity` places, each free (FREE), taken by a request not sent yet
   (TAKEN), or holding the time its request was sent. A request may
   start when some place was sent from `per` ago or more (or is free); it
   takes that place. After a fork the child keeps the sends; a place its
   parent's request held unsent counts as sent when the child first takes
   a place. */
struct so_limiter {
  int capacity;
  int next;        /* where the search for a place starts: the place after
                      the last one taken, in steady use the oldest */
  pid_t pid;       /* the process whose requests hold the places */
  double per;
  double times[1]; /* capacity entries */
};

#define FREE (-HUGE_VAL)
#define TAKEN HUGE_VAL

so_limiter *so_limiter_push(lua_State *L, int capacity, double per) {
  so_limiter *b = lua_newuserdatauv(
      L, sizeof(so_limiter) + (size_t)(capacity - 1) * sizeof(double), 0);
  int i;
  b->capacity = capacity;
  b->next = 0;
  b->pid = getpid();
  b->per = per;
  for (i = 0; i < capacity; i++) b->times[i] = FREE;
  return b;
}

/* takes a place for a request about to start (*place; 0 returned), or
   says how long to wait. Why this keeps every window of `per` to
   `capacity` sends: of any capacity + 1 sends in one window, the last to
   start found the other capacity ones unsent or sent within `per`, all
   still holding their places (a place is given up only once its send is
   `per` old), so it found no place and did not start. Any free place
   will do: the search starts after the last one taken, where places are
   taken in turn, so it usually ends at once. `pid` is the calling
   process (the engine's, checked at each call's entry) */
double so_limiter_take(so_limiter *b, pid_t pid, double now, int *place) {
  int i, k, oldest = 0;
  if (b->pid != pid) { /* the first take after a fork, in the child */
    /* the parent may send the requests that hold places unsent any
       moment, on the same key: the child counts them as sent now, and
       its requests never give those places back (engine.c) */
    b->pid = pid;
    for (i = 0; i < b->capacity; i++)
      if (b->times[i] == TAKEN) b->times[i] = now;
  }
  for (k = 0, i = b->next; k < b->capacity; k++, i++) {
    if (i == b->capacity) i = 0;
    if (b->times[i] + b->per <= now) { /* free, or sent `per` ago */
      b->times[i] = TAKEN;
      b->next = i + 1 == b->capacity ? 0 : i + 1;
      *place = i;
      return 0;
    }
  }
  for (i = 1; i < b->capacity; i++)
    if (b->times[i] < b->times[oldest]) oldest = i;
  /* all unsent: each goes on the wire now or later */
  if (b->times[oldest] == TAKEN) return b->per;
  return b->times[oldest] + b->per - now;
}

/* the request of `place` goes on the wire now: its place counts from
   here */
void so_limiter_sent(so_limiter *b, int place, double now) {
  if (place >= 0) b->times[place] = now;
}

/* the request of `place` never went on the wire: the place is free */
void so_limiter_unsent(so_limiter *b, int place) {
  if (place >= 0) b->times[place] = FREE;
}
