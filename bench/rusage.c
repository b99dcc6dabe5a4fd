/*
** rusage.c: runs a command and reports what it cost, as the kernel counted
** it: CPU time (user + sys, all threads, microseconds, from wait4), peak
** resident set size (ru_maxrss, KiB) and wall time. GNU time's %U/%S print
** only centiseconds, too coarse for a few thousand loopback requests.
**
**   rusage [-n REPS] [-o FILE] -- command [args...]
**
** Runs the command REPS times (default 1), one after the other; stops at
** the first run that does not exit 0 and exits with its status. The
** command's stdin, stdout and stderr are this program's. Prints one line
** to FILE (default stderr):
**   reps=R user_us=U sys_us=S cpu_us=U+S wall_us=W maxrss_kb=M minflt=F
**   vcsw=V ivcsw=I status=X
** with sums over the runs, except maxrss_kb (the largest): minor page
** faults, voluntary and involuntary context switches.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long tv_us(struct timeval tv) {
  return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(void) {
  fprintf(stderr, "usage: rusage [-n REPS] [-o FILE] -- command [args...]\n");
  exit(2);
}

int main(int argc, char **argv) {
  long reps = 1, r;
  const char *out_path = NULL;
  int i = 1, status = 0, code = 0;
  long long user = 0, sys = 0, wall = 0;
  long maxrss = 0, minflt = 0, vcsw = 0, ivcsw = 0;
  FILE *out;

  while (i < argc && strcmp(argv[i], "--") != 0) {
    if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
      reps = strtol(argv[i + 1], NULL, 10);
      i += 2;
    } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      out_path = argv[i + 1];
      i += 2;
    } else {
      usage();
    }
  }
  if (i >= argc - 1 || reps < 1) usage();
  i++; /* skip "--" */

  for (r = 0; r < reps; r++) {
    struct rusage ru;
    long long t0 = now_us();
    pid_t pid = fork(), w;
    if (pid < 0) {
      perror("rusage: fork");
      return 2;
    }
    if (pid == 0) {
      execvp(argv[i], argv + i);
      fprintf(stderr, "rusage: cannot run %s: %s\n", argv[i], strerror(errno));
      _exit(127);
    }
    do {
      w = wait4(pid, &status, 0, &ru);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      perror("rusage: wait4");
      return 2;
    }
    wall += now_us() - t0;
    user += tv_us(ru.ru_utime);
    sys += tv_us(ru.ru_stime);
    if (ru.ru_maxrss > maxrss) maxrss = ru.ru_maxrss;
    minflt += ru.ru_minflt;
    vcsw += ru.ru_nvcsw;
    ivcsw += ru.ru_nivcsw;
    if (WIFEXITED(status)) {
      code = WEXITSTATUS(status);
    } else {
      code = 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    if (code != 0) {
      r++;
      break;
    }
  }

  out = out_path ? fopen(out_path, "w") : stderr;
  if (out == NULL) {
    perror("rusage: output file");
    return 2;
  }
  fprintf(out, "reps=%ld user_us=%lld sys_us=%lld cpu_us=%lld wall_us=%lld "
          "maxrss_kb=%ld minflt=%ld vcsw=%ld ivcsw=%ld status=%d\n", r, user,
          sys, user + sys, wall, maxrss, minflt, vcsw, ivcsw, code);
  if (out != stderr) fclose(out);
  return code;
}
