/*
** raw_curl.c: the floor for case 1. A plain C loop that POSTs the same
** pre-encoded JSON body N times on one reused libcurl easy handle
** (keep-alive), with the headers the SDK sends, reading each response into
** a buffer and checking its status. No JSON work at all.
**
**   raw_curl BASE_URL API_KEY ACCOUNT_ID BODY_FILE N WARMUP [USER_AGENT]
**
** Makes WARMUP requests, then N measured ones, and prints one line:
**   RESULT n=N cpu_us=<getrusage user+sys of the N> wall_us=<wall of the N>
*/
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include <curl/curl.h>

#include "common.h"

static void base64(const char *in, size_t len, char *out) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i;
  for (i = 0; i + 2 < len; i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 |
                 (unsigned char)in[i + 2];
    *out++ = tab[v >> 18 & 63];
    *out++ = tab[v >> 12 & 63];
    *out++ = tab[v >> 6 & 63];
    *out++ = tab[v & 63];
  }
  if (i < len) {
    unsigned v = (unsigned char)in[i] << 16;
    if (i + 1 < len) v |= (unsigned char)in[i + 1] << 8;
    *out++ = tab[v >> 18 & 63];
    *out++ = tab[v >> 12 & 63];
    *out++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
    *out++ = '=';
  }
  *out = '\0';
}

static long long cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
         ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static long long wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int post(CURL *h, buf *b) {
  long status = 0;
  CURLcode rc;
  b->len = 0;
  rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    fprintf(stderr, "raw_curl: %s\n", curl_easy_strerror(rc));
    return 0;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    fprintf(stderr, "raw_curl: HTTP %ld: %.*s\n", status, (int)b->len,
            b->data ? b->data : "");
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  char url[1024], cred[512], auth[800], account[512];
  const char *ua = argc > 7 ? argv[7] : "raw_curl-bench";
  size_t body_len = 0;
  char *body;
  long n, warmup, i;
  long long c0, w0;
  struct curl_slist *headers = NULL;
  buf b = {NULL, 0, 0};
  CURL *h;

  if (argc < 7) {
    fprintf(stderr, "usage: raw_curl BASE_URL API_KEY ACCOUNT_ID BODY_FILE N "
            "WARMUP [USER_AGENT]\n");
    return 2;
  }
  n = strtol(argv[5], NULL, 10);
  warmup = strtol(argv[6], NULL, 10);
  body = read_file(argv[4], &body_len);
  if (body == NULL) {
    fprintf(stderr, "raw_curl: cannot read %s\n", argv[4]);
    return 2;
  }
  snprintf(url, sizeof(url), "%s/unified/crm/contacts", argv[1]);
  snprintf(cred, sizeof(cred), "%s:", argv[2]);
  strcpy(auth, "Authorization: Basic ");
  base64(cred, strlen(cred), auth + strlen(auth));
  snprintf(account, sizeof(account), "x-account-id: %s", argv[3]);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  h = curl_easy_init();
  headers = curl_slist_append(headers, auth);
  headers = curl_slist_append(headers, account);
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);

  for (i = 0; i < warmup; i++)
    if (!post(h, &b)) return 1;
  c0 = cpu_us();
  w0 = wall_us();
  for (i = 0; i < n; i++)
    if (!post(h, &b)) return 1;
  printf("RESULT n=%ld cpu_us=%lld wall_us=%lld\n", n, cpu_us() - c0,
         wall_us() - w0);

  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  curl_global_cleanup();
  free(body);
  free(b.data);
  return 0;
}
