/*
** retry.c: when to try a request again and how long to wait. Pure C:
** the caller does the waiting.
*/
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stackone.h"

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

/* whether a request of this method is safe to send again when the server
   may have processed it: GET and PATCH are; POST (a second record) and
   DELETE (a 404 the second time) are not */
int so_method_repeatable(const char *method) {
  return strcmp(method, "POST") != 0 && strcmp(method, "DELETE") != 0;
}

/* may this attempt be tried again? A method that is repeatable is; POST
   and DELETE only when they provably never reached the server (`sent` is
   0: no connection, or a refused HTTP/2 stream), or when the caller opts
   in */
int so_retryable(const char *method, CURLcode rc, long status, int sent,
                 int too_large, const so_retry *r) {
  int safe = so_method_repeatable(method) || r->maybe_applied;
  if (!r->enabled || too_large) return 0;
  if (rc != CURLE_OK) {
    if (permanent(rc)) return 0;
    return !sent || safe;
  }
  switch (so_status_of(status)->retry) {
    case SO_RETRY_ALWAYS: return 1;
    case SO_RETRY_SAFE: return safe;
    default: return 0;
  }
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
    /* digits only, leading zeros allowed; past a year is as good as
       forever */
    const char *d = text;
    while (d[0] == '0' && d[1] != '\0') d++;
    *seconds = strlen(d) > 8 ? 1e8 : strtod(d, NULL);
    return 1;
  }
  {
    time_t when = curl_getdate(text, &now);
    if (when == (time_t)-1) return 0;
    *seconds = when > now ? difftime(when, now) : 0;
    return 1;
  }
}
