/*
** forkwatch.c: whether the process forked since an engine last looked,
** without a system call on every look. A private page that fork() hands
** the child zero-filled (MADV_WIPEONFORK, Linux 4.14 and later) holds a
** 1 in the process that owns the engine; where there is no such page,
** getpid() is compared with the owner's.
*/
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MADV_WIPEONFORK */
#include <sys/mman.h>
#include <unistd.h>

#include "stackone.h"

void so_forkwatch_start(so_forkwatch *w) {
  w->pid = getpid();
  w->page = NULL;
  w->size = 0;
#ifdef MADV_WIPEONFORK
  {
    long size = sysconf(_SC_PAGESIZE);
    void *p = size > 0 ? mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                       : MAP_FAILED;
    if (p == MAP_FAILED) return;
    if (madvise(p, (size_t)size, MADV_WIPEONFORK) != 0) { /* older kernel */
      munmap(p, (size_t)size);
      return;
    }
    w->page = p;
    w->size = (size_t)size;
    *w->page = 1;
  }
#endif
}

/* 1 at the first look in a process forked since the last one (which
   then owns the watch), else 0 */
int so_forkwatch_forked(so_forkwatch *w) {
  if (w->page) {
    if (*w->page) return 0;
    *w->page = 1;
  } else if (w->pid == getpid()) {
    return 0;
  }
  w->pid = getpid();
  return 1;
}

/* the page goes; later looks compare process ids */
void so_forkwatch_stop(so_forkwatch *w) {
  if (w->page) munmap((void *)w->page, w->size);
  w->page = NULL;
}
