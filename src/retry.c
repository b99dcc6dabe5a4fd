/*
** retry.c: when to try a request again, how long to wait, and the
** client-side rate limiter. Pure C: the caller does the waiting.
*/
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stackone.h"

void so_retry_defaults(so_retry *r) {
  r->enabled = 1;
  r->max_attempts = 4;
  r->base_delay = 0.5;
  r->factor = 2;
  r->max_delay = 30;
  r->max_wait = 120;
  r->maybe_applied = 0;
}

double so_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void so_sleep(double seconds) {
  struct timespec ts;
  if (!(seconds > 0)) return;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0) {} /* resumes after signals */
}

/* xorshift64*: jitter needs no quality, only independence from the
   user's math.random sequence */
double so_random(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ULL;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* whether libcurl failed before anything reached the server */
static int never_sent(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_SSL_CONNECT_ERROR:
      return 1;
    default:
      return 0;
  }
}

/* failures that trying again cannot mend */
static int permanent(CURLcode rc) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER:
    case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_URL_MALFORMAT:
    case CURLE_OUT_OF_MEMORY: case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_WRITE_ERROR: case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_FILESIZE_EXCEEDED: case CURLE_BAD_CONTENT_ENCODING:
      return 1;
    default:
      return 0;
  }
}

/* the outcome of one attempt: may the server have acted on it? */
int so_maybe_applied(CURLcode rc, long status, long request_bytes) {
  if (rc != CURLE_OK) return !never_sent(rc) && request_bytes > 0;
  return status == 408 || status >= 500;
}

/* may this attempt be tried again? GET and PATCH are safe to repeat;
   POST only when it provably never arrived, or when the caller opts in */
int so_retryable(const char *method, CURLcode rc, long status,
                 long request_bytes, int too_large, const so_retry *r) {
  int safe = strcmp(method, "POST") != 0 || r->maybe_applied;
  if (!r->enabled || too_large) return 0;
  if (rc != CURLE_OK) {
    if (permanent(rc)) return 0;
    if (never_sent(rc) || request_bytes == 0) return 1;
    return safe;
  }
  if (status == 429) return 1; /* not processed: every method */
  if (status == 408 || status == 500 || status == 502 || status == 503 ||
      status == 504)
    return safe;
  return 0;
}

/* exponential backoff with full jitter for attempt n (1 = the first) */
double so_backoff(const so_retry *r, int attempt, uint64_t *rng) {
  double cap = r->base_delay * pow(r->factor, (double)(attempt - 1));
  if (cap > r->max_delay) cap = r->max_delay;
  return cap * so_random(rng);
}

/* Retry-After: delay-seconds or an HTTP-date; returns 0 when absent or
   unreadable */
int so_parse_retry_after(const char *value, size_t len, time_t now,
                         double *seconds) {
  char text[128];
  size_t i;
  while (len > 0 && isspace((unsigned char)*value)) value++, len--;
  while (len > 0 && isspace((unsigned char)value[len - 1])) len--;
  if (len == 0 || len >= sizeof(text)) return 0;
  memcpy(text, value, len);
  text[len] = '\0';
  for (i = 0; i < len && isdigit((unsigned char)text[i]); i++) {}
  if (i == len) {
    /* digits only; anything past a year is as good as forever */
    *seconds = len > 8 ? 1e8 : strtod(text, NULL);
    return 1;
  }
  {
    time_t when = curl_getdate(text, &now);
    if (when == (time_t)-1) return 0;
    *seconds = when > now ? difftime(when, now) : 0;
    return 1;
  }
}

/* token bucket: takes one token, or says how long to wait for it */
double so_bucket_take(so_bucket *b, double now) {
  double wait;
  if (b->last > 0) {
    b->tokens += (now - b->last) * b->rate;
    if (b->tokens > b->capacity) b->tokens = b->capacity;
  } else {
    b->tokens = b->capacity;
  }
  b->last = now;
  if (b->tokens >= 1) {
    b->tokens -= 1;
    return 0;
  }
  wait = (1 - b->tokens) / b->rate;
  /* the token that comes in during the wait is this caller's */
  b->tokens -= 1;
  return wait;
}
