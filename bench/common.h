/*
** bench/common.h: what the benchmark's C subjects (raw_curl.c, multi_h2.c,
** floor.c) share: a growing body buffer with libcurl's write callback for
** it, and a whole file in memory.
*/
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
  char *data;
  size_t len, cap;
} buf;

/* CURLOPT_WRITEFUNCTION into the buf given as CURLOPT_WRITEDATA */
static inline size_t on_body(char *p, size_t size, size_t n, void *ud) {
  buf *b = ud;
  size_t len = size * n;
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *d;
    while (cap < b->len + len) cap *= 2;
    d = realloc(b->data, cap);
    if (d == NULL) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, len);
  b->len += len;
  return len;
}

/* the file's bytes, NUL-terminated, its length in *len; NULL on failure */
static inline char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *data;
  long size;
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = malloc((size_t)size + 1);
  if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    free(data);
    return NULL;
  }
  fclose(f);
  data[size] = '\0';
  *len = (size_t)size;
  return data;
}

#endif
