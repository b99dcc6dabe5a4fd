/*
** multi_h2.c: the floor for case 8. libcurl's multi interface alone
** sends N POSTs of the same body, at most C at once, over HTTPS with
** CURLOPT_PIPEWAIT (HTTP/2 streams on as few connections as the server
** allows), trusting the CA bundle given. No JSON work at all.
**
**   multi_h2 BASE_URL API_KEY ACCOUNT_ID BODY_FILE CA_FILE N C
**
** Prints one line:
**   RESULT n=N cpu_us=<getrusage user+sys of the batch> wall_us=<wall>
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

static size_t discard_body(char *p, size_t size, size_t n, void *ud) {
  (void)p, (void)ud;
  return size * n; /* the answer is not read: only its status */
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static CURL *new_transfer(const char *url, struct curl_slist *headers,
                          const char *body, size_t len, const char *ca) {
  CURL *h = curl_easy_init();
  if (h == NULL) return NULL;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(h, CURLOPT_CAINFO, ca);
  curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  return h;
}

int main(int argc, char **argv) {
  char url[1024], auth[512], account[512];
  struct curl_slist *headers = NULL;
  size_t len;
  char *body;
  long n, c, started = 0, ok = 0, failed = 0;
  int running = 1;
  CURLM *multi;
  double t0, c0;
  if (argc != 8) {
    fprintf(stderr, "usage: multi_h2 BASE_URL API_KEY ACCOUNT_ID BODY_FILE "
                    "CA_FILE N C\n");
    return 2;
  }
  body = read_file(argv[4], &len);
  n = atol(argv[6]);
  c = atol(argv[7]);
  if (body == NULL || n < 1 || c < 1) {
    fprintf(stderr, "multi_h2: bad arguments\n");
    return 2;
  }
  snprintf(url, sizeof(url), "%s/unified/crm/contacts", argv[1]);
  snprintf(auth, sizeof(auth), "Authorization: Bearer %s", argv[2]);
  snprintf(account, sizeof(account), "x-account-id: %s", argv[3]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, auth);
  headers = curl_slist_append(headers, account);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  t0 = now();
  c0 = cpu();
  while (running || started < n) {
    CURLMsg *msg;
    int left;
    while (started < n && started - ok - failed < c) {
      CURL *h = new_transfer(url, headers, body, len, argv[5]);
      if (h == NULL || curl_multi_add_handle(multi, h) != CURLM_OK) return 1;
      started++;
    }
    curl_multi_perform(multi, &running);
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
      long status = 0;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result == CURLE_OK && status >= 200 && status < 300) ok++;
      else failed++;
      curl_multi_remove_handle(multi, msg->easy_handle);
      curl_easy_cleanup(msg->easy_handle);
    }
    if (running) curl_multi_poll(multi, NULL, 0, 1000, NULL);
  }
  printf("RESULT n=%ld cpu_us=%.0f wall_us=%.0f failed=%ld\n", n,
         (cpu() - c0) * 1e6, (now() - t0) * 1e6, failed);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  free(body);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
