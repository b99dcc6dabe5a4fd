/*
** bench/read_file.h: a whole file in memory, for the benchmark's C
** programs (raw_curl.c, multi_h2.c) that send a request body from a file.
*/
#ifndef BENCH_READ_FILE_H
#define BENCH_READ_FILE_H

#include <stdio.h>
#include <stdlib.h>

/* the file's bytes, NUL-terminated, its length in *len; NULL on failure */
static char *read_file(const char *path, size_t *len) {
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
