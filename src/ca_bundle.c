/*
** ca_bundle.c: where a client's trust comes from, parsed once per client.
** libcurl keeps the parsed CA store on the multi handle (7.87 and later)
** only when its CA file is the one source: a CA directory as well (Debian's
** libcurl has one built in, holding the same certificates as its file)
** turns that cache off, and each new connection parses the bundle again.
** So the CA directory goes whenever libcurl's built-in file can be read.
** A ca_file of the client's own is an extra bundle, added to the system's
** trust: its client gets one anonymous in-memory file (never on disk)
** holding the built-in file and then the user's, named /proc/self/fd/N.
*/
#define _GNU_SOURCE /* memfd_create, O_TMPFILE, memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "stackone.h"

/* libcurl's built-in CA file when it can be read, else NULL; the string
   is the handle's */
const char *so_builtin_ca(CURL *h) {
  char *ca = NULL;
#if LIBCURL_VERSION_NUM >= 0x075400
  if (curl_easy_getinfo(h, CURLINFO_CAINFO, &ca) != CURLE_OK) ca = NULL;
#else
  (void)h;
#endif
  return ca != NULL && access(ca, R_OK) == 0 ? ca : NULL;
}

#if defined(__linux__) && LIBCURL_VERSION_NUM >= 0x075700
#define PEM_MARK "-----BEGIN "

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 0;
    p += w;
    n -= (size_t)w;
  }
  return 1;
}

/* copies all of `from` to `to`; *pem (when given) tells whether a PEM
   block starts in it, its mark looked for across the reads */
static int copy_all(int to, int from, int *pem) {
  char buf[16384];
  size_t keep = 0, mark = sizeof(PEM_MARK) - 1;
  for (;;) {
    ssize_t n = read(from, buf + keep, sizeof(buf) - keep);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0;
    if (!write_all(to, buf + keep, (size_t)n)) return 0;
    if (pem && !*pem) {
      size_t len = keep + (size_t)n;
      *pem = memmem(buf, len, PEM_MARK, mark) != NULL;
      keep = len < mark - 1 ? len : mark - 1;
      memmove(buf, buf + len - keep, keep);
    }
  }
}

/* an anonymous file in memory, closed on exec; -1 when there is none */
static int anonymous_file(void) {
  int fd = -1;
#ifdef MFD_CLOEXEC
  fd = memfd_create("stackone-ca", MFD_CLOEXEC | MFD_ALLOW_SEALING);
#endif
#ifdef O_TMPFILE
  if (fd < 0) fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
  if (fd >= 0 && fd < 3) { /* a host that sets its stdio up later would
                              put something else under this number */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    fd = high;
  }
  return fd;
}

/* the built-in file, a line break, the user's: 1 when all of it is
   there and the user's file has a PEM block (a file without one fails
   the way it did alone, through today's path) */
static int fill(int fd, const char *extra) {
  CURL *h = curl_easy_init();
  const char *ca = h ? so_builtin_ca(h) : NULL;
  int builtin = ca ? open(ca, O_RDONLY | O_CLOEXEC) : -1;
  int user = open(extra, O_RDONLY | O_CLOEXEC), pem = 0;
  int ok = builtin >= 0 && user >= 0 && copy_all(fd, builtin, NULL) &&
           write_all(fd, "\n", 1) && copy_all(fd, user, &pem) && pem;
  if (h) curl_easy_cleanup(h);
  if (builtin >= 0) close(builtin);
  if (user >= 0) close(user);
#ifdef F_ADD_SEALS
  /* nothing changes the client's trust behind its back */
  if (ok) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
                F_SEAL_SEAL);
#endif
  return ok;
}
#endif

/* the combined bundle for a client whose ca_file is `extra`; where it
   cannot be made (not Linux, no /proc, libcurl before 7.87, either file
   unreadable) b stays empty and the client keeps libcurl's CA directory
   beside the user's file, parsed for each connection */
void so_ca_bundle_make(so_ca_bundle *b, const char *extra) {
#if defined(__linux__) && LIBCURL_VERSION_NUM >= 0x075700
  int fd;
  b->path[0] = '\0';
  if (curl_version_info(CURLVERSION_NOW)->version_num < 0x075700) return;
  fd = anonymous_file();
  if (fd < 0) return;
  if (fill(fd, extra) &&
      snprintf(b->path, sizeof(b->path), "/proc/self/fd/%d", fd) <
          (int)sizeof(b->path) &&
      access(b->path, R_OK) == 0) {
    b->fd = fd;
    return;
  }
  b->path[0] = '\0';
  close(fd);
#else
  (void)extra;
  b->path[0] = '\0';
#endif
}

/* after fork the child's descriptor is the same file under the same
   number: each process closes its own */
void so_ca_bundle_close(so_ca_bundle *b) {
  if (b->path[0]) close(b->fd);
  b->path[0] = '\0';
}
