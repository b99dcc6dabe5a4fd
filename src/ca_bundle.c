/*
** ca_bundle.c: where a client's trust comes from, parsed once per client.
** libcurl keeps the parsed CA store on the multi handle (7.87 and later)
** only when its CA file is the one source: a CA directory as well (Debian's
** libcurl has one built in, holding the same certificates as its file)
** turns that cache off, and each new connection parses the bundle again.
** So the CA directory goes whenever libcurl's built-in file can be read.
** A ca_file of the client's own is an extra bundle, added to the system's
** trust: its client gets one anonymous in-memory file (never on disk)
** holding the built-in file's certificates that the user's lacks, then
** the user's file, named /proc/self/fd/N. Made when the client is: a few
** hundred microseconds, no parsing.
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

/* the whole file at path, appended to b; 0 when it cannot be read or
   memory ran out */
static int read_all(const char *path, so_buf *b) {
  char chunk[16384];
  int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1, ok = fd >= 0;
  while (ok) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    ok = so_buf_append(b, chunk, (size_t)n);
  }
  if (fd >= 0) close(fd);
  return ok;
}

/* a PEM block: "-----BEGIN X-----" to the end of its "-----END X-----" */
typedef struct pem_block {
  const char *at;
  size_t len;
} pem_block;

/* the next block of [*p, end), *p moved past it; 0 when there is none */
static int next_block(const char **p, const char *end, pem_block *b) {
  const char *begin = memmem(*p, (size_t)(end - *p), "-----BEGIN ", 11);
  const char *stop = begin ? memmem(begin, (size_t)(end - begin), "-----END ", 9)
                           : NULL;
  stop = stop ? memmem(stop + 9, (size_t)(end - stop - 9), "-----", 5) : NULL;
  if (stop == NULL) return 0;
  b->at = begin;
  b->len = (size_t)(stop + 5 - begin);
  *p = stop + 5;
  return 1;
}

/* certificates differ within their first bytes: a linear search is cheap */
static int has_block(const so_buf *index, const pem_block *b) {
  const pem_block *k = (const pem_block *)(void *)index->data;
  size_t i, n = index->len / sizeof(pem_block);
  for (i = 0; i < n; i++)
    if (k[i].len == b->len && memcmp(k[i].at, b->at, b->len) == 0)
      return 1;
  return 0;
}

/* the built-in file's blocks that the user's file does not hold (a
   user's bundle is often a whole system bundle: each certificate is then
   parsed once, not twice), then the user's file as it is. 0 unless both
   were read and the user's file has a block (a file without one fails
   the way it did alone, through today's path) */
static int fill(int fd, const char *extra) {
  CURL *h = curl_easy_init();
  so_buf builtin = {0}, user = {0}, index = {0}, out = {0};
  const char *p, *end;
  pem_block b;
  int ok = h && read_all(so_builtin_ca(h), &builtin) && read_all(extra, &user);
  if (h) curl_easy_cleanup(h);
  for (p = user.data, end = p + user.len; ok && p && next_block(&p, end, &b);)
    ok = so_buf_append(&index, &b, sizeof(b));
  ok = ok && index.len > 0;
  for (p = builtin.data, end = p + builtin.len; ok && p && next_block(&p, end, &b);)
    if (!has_block(&index, &b))
      ok = so_buf_append(&out, b.at, b.len) && so_buf_append(&out, "\n", 1);
  ok = ok && write_all(fd, out.data, out.len) &&
       write_all(fd, user.data, user.len);
  so_buf_free(&builtin);
  so_buf_free(&user);
  so_buf_free(&index);
  so_buf_free(&out);
#ifdef F_ADD_SEALS
  /* nothing changes the client's trust behind its back */
  if (ok) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
                F_SEAL_SEAL);
#endif
  return ok;
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
