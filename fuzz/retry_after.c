/*
** retry_after.c: fuzzes so_parse_retry_after (retry.c), the Retry-After
** value as a server sent it: delay-seconds or an HTTP-date, read with a
** fixed clock.
** Invariants: a value it accepts is a finite, non-negative number of
** seconds (delay-seconds exactly, leading zeros allowed, capped at 1e8);
** a value it refuses leaves *seconds alone.
*/
#include <ctype.h>
#include <math.h>

#include "common.h"

/* Wed, 21 Oct 2015 07:28:00 GMT */
#define NOW ((time_t)1445412480)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data, *e = s + size;
  double seconds = -1;
  int digits = 1;
  const char *p;
  if (!so_parse_retry_after(s, size, NOW, &seconds)) {
    if (seconds != -1) fz_fail("a refused value changed *seconds");
    return 0;
  }
  if (!isfinite(seconds) || seconds < 0)
    fz_fail("Retry-After gave %g seconds", seconds);
  /* delay-seconds: the trimmed value is all digits */
  while (s < e && isspace((unsigned char)*s)) s++;
  while (e > s && isspace((unsigned char)e[-1])) e--;
  if (s == e) fz_fail("an empty value was accepted");
  for (p = s; p < e; p++)
    if (!isdigit((unsigned char)*p)) digits = 0;
  if (digits) {
    double want = 0;
    while (e - s > 1 && *s == '0') s++; /* 000000002 is 2 */
    if (e - s > 8) {
      want = 1e8;
    } else {
      for (p = s; p < e; p++) want = want * 10 + (*p - '0');
    }
    if (seconds != want)
      fz_fail("delay-seconds '%.*s' gave %g", (int)(e - s), s, seconds);
  }
  return 0;
}
