/*
** transport.c: one easy handle of the engine and what its attempt
** collects. No Lua runs in here: the callbacks only record into C memory.
*/
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "stackone.h"

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  so_exchange *c = ud;
  size_t len = size * n;
  if (c->body.len + len > c->body_room) return so_chunks_receive(c, p, len);
  return so_buf_append(&c->body, p, len) ? len : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  so_exchange *c = ud;
  size_t len = size * n;
  /* a new status line starts a new response (after 100 Continue) */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) so_buf_reset(&c->head);
  if (c->head.len + len > 1024 * 1024) return 0;
  return so_buf_append(&c->head, p, len) ? len : 0;
}

/* debug trace: request and response headers, Authorization redacted
   here, before the text ever reaches Lua */
/* whether a line mentions authorization anywhere: over HTTP/2 libcurl
   also reports request headers inside its own text lines */
static int mentions_auth(const char *p, size_t len) {
  static const char word[] = "authorization";
  size_t i, n = sizeof(word) - 1;
  for (i = 0; i + n <= len; i++)
    if (strncasecmp(p + i, word, n) == 0) return 1;
  return 0;
}

static void trace(so_buf *out, char prefix, const char *p, size_t n) {
  const char *end = p + n;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    size_t len = (size_t)((eol ? eol : end) - p);
    if (len && p[len - 1] == '\r') len--;
    if (len > 0) {
      so_buf_append(out, &prefix, 1);
      so_buf_append(out, " ", 1);
      if (mentions_auth(p, len)) {
        const char *colon = memchr(p, ':', len);
        size_t keep = colon && strncasecmp(p, "authorization", 13) == 0
                          ? (size_t)(colon - p) + 1 : 0;
        const char *note = keep ? " [REDACTED]"
                                : "[a line about Authorization, redacted]";
        so_buf_append(out, p, keep);
        so_buf_append(out, note, strlen(note));
      } else {
        so_buf_append(out, p, len);
      }
      so_buf_append(out, "\n", 1);
    }
    p = next;
  }
}

/* p + the length of `word` when p[0..n) starts with it, or NULL */
static const char *past(const char *p, size_t n, const char *word) {
  size_t w = strlen(word);
  return n >= w && memcmp(p, word, w) == 0 ? p + w : NULL;
}

/* the decimal number at p, up to end */
static unsigned long number_at(const char *p, const char *end) {
  unsigned long v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; p++)
    v = v * 10 + (unsigned long)(*p - '0');
  return v;
}

/* what libcurl 7.88 says about HTTP/2 streams it will send again: a
   stream the server refused, or one above a GOAWAY's last stream id, was
   never processed (RFC 9113 section 8.7); libcurl tells it only in its
   text. Each call is one line; only a line that starts with what libcurl
   writes counts (a request header, which libcurl writes out too, cannot
   pass for one), and the first byte turns the other lines away */
static void note_text(so_exchange *x, const char *p, size_t n) {
  const char *end = p + n, *at;
  switch (n > 0 ? p[0] : '\0') {
    case 'U':
      if ((at = past(p, n, "Using Stream ID: ")) != NULL)
        x->stream_id = number_at(at, end);
      break;
    case 'R':
      if (past(p, n, "REFUSED_STREAM")) x->stream_refused = 1;
      break;
    case 'r': /* "recveived GOAWAY, error=0, last_stream=1" (sic) */
      if (!past(p, n, "recveived GOAWAY, ") && !past(p, n, "received GOAWAY, "))
        break;
      for (at = p; (at = memchr(at, 'l', (size_t)(end - at))) != NULL; at++) {
        const char *last = past(at, (size_t)(end - at), "last_stream=");
        if (last) {
          x->goaway = 1;
          x->goaway_last = number_at(last, end);
          break;
        }
      }
      break;
    default:
      break;
  }
}

static int on_debug(CURL *h, curl_infotype type, char *p, size_t n,
                    void *ud) {
  so_exchange *x = ud;
  (void)h;
  if (type == CURLINFO_TEXT) note_text(x, p, n);
  if (!x->want_trace || x->trace.len > 256 * 1024) return 0;
  if (type == CURLINFO_HEADER_OUT) trace(&x->trace, '>', p, n);
  else if (type == CURLINFO_HEADER_IN) trace(&x->trace, '<', p, n);
  else if (type == CURLINFO_TEXT) trace(&x->trace, '*', p, n);
  return 0;
}

/* called before each request goes on the wire: the engine's own
   attempts pass, a resend libcurl starts by itself on a fresh connection
   (after a reused one died, or an HTTP/2 stream was refused) does not.
   The server may hold the first one: only the engine may decide to send
   again. */
static int on_prereq(void *ud, char *ip, char *local_ip, int port,
                     int local_port) {
  so_exchange *x = ud;
  (void)ip, (void)local_ip, (void)port, (void)local_port;
  if (x->requests > 0) {
    x->resend_refused = 1;
    return CURL_PREREQFUNC_ABORT;
  }
  x->requests++;
  x->sent_at = so_now();
  so_limiter_sent(x->limiter, x->place, x->sent_at);
  x->place = -1;
  return CURL_PREREQFUNC_OK;
}

/* options that stay the same for every request of the client */
CURLcode so_setup_handle(const so_client *c, so_exchange *x) {
  CURL *h = x->curl;
  CURLcode rc = CURLE_OK;
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, x);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, x);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_DEBUGDATA, x);
  SET(CURLOPT_PREREQFUNCTION, on_prereq);
  SET(CURLOPT_PREREQDATA, x);
  SET(CURLOPT_USERAGENT, c->user_agent);
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_PATH_AS_IS, 1L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  /* over https a transfer waits for a connection that may multiplex it
     (HTTP/2) rather than open one of its own; TLS settles that at the
     handshake (ALPN). Over plain http libcurl 7.88 settles it only from
     the first response's status line, and one that fails there (out of
     memory) left every later transfer waiting for ever */
  SET(CURLOPT_PIPEWAIT, strncmp(c->base_url, "https:", 6) == 0 ? 1L : 0L);
  SET(CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
  SET(CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
  /* a CA file alone, no directory: libcurl's CA cache (ca_bundle.c) */
  if (c->ca.path[0]) {
    SET(CURLOPT_CAINFO, c->ca.path);
    SET(CURLOPT_CAPATH, NULL);
  } else if (c->ca_file) {
    SET(CURLOPT_CAINFO, c->ca_file);
  } else if (rc == CURLE_OK && !c->insecure && so_builtin_ca(h)) {
    rc = curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
  }
  if (c->proxy) SET(CURLOPT_PROXY, c->proxy);
  if (c->no_proxy) SET(CURLOPT_NOPROXY, "*");
#undef SET
  x->max_response_bytes = c->max_response_bytes;
  x->body_room = c->max_response_bytes < SO_WHOLE_BODY ? c->max_response_bytes
                                                        : SO_WHOLE_BODY;
  /* HTTP/2 only comes over TLS (ALPN): only there may a stream be refused */
  x->https = strncmp(c->base_url, "https:", 6) == 0;
  /* no proxy sees an http request in absolute form: over https a proxy
     tunnels, and plain http goes through none (loopback only) */
  x->origin_form = x->https || c->no_proxy;
  return rc;
}

/* "/path?query" of "scheme://authority/path?query" (the URLs built here
   always have a path) */
static const char *origin_form(const char *url) {
  const char *p = strstr(url, "://");
  p = p ? strchr(p + 3, '/') : NULL;
  return p ? p : "/";
}

/* whether this attempt may go over HTTP/2: over https, unless the
   handle's last transfer spoke HTTP/1 (the server did not offer h2). If
   the server later does, a refused stream is taken as a lost connection:
   a request that may have been processed, retried only when safe */
static int may_be_http2(so_exchange *x) {
  long version = 0;
  if (!x->https) return 0;
  if (curl_easy_getinfo(x->curl, CURLINFO_HTTP_VERSION, &version) != CURLE_OK)
    return 1;
  return version != CURL_HTTP_VERSION_1_0 && version != CURL_HTTP_VERSION_1_1;
}

/* sets one attempt up on the handle; the strings must outlive it */
CURLcode so_prepare(so_exchange *x, const char *method, const char *url,
                    struct curl_slist *headers, const char *body,
                    size_t body_len, long timeout_ms, int want_trace) {
  CURL *h = x->curl;
  CURLcode rc = CURLE_OK;
  size_t url_len = strlen(url);
  int verbose;
  so_buf_reset(&x->body);
  if (x->rest.head) so_chunks_free(&x->rest); /* an earlier attempt's */
  so_buf_reset(&x->head);
  so_buf_reset(&x->trace);
  x->too_large = 0;
  x->want_trace = want_trace;
  x->requests = x->resend_refused = x->stream_refused = x->goaway = 0;
  x->stream_id = x->goaway_last = 0;
  x->errbuf[0] = '\0';
#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
  /* options the handle has from its last request are not set again: each
     is a call through libcurl's option switch, the URL a copy too */
  if (x->url.len != url_len || memcmp(x->url.data, url, url_len) != 0) {
    so_buf_reset(&x->url);
    SET(CURLOPT_URL, url);
    /* the request line's target is ours, path and query as built:
       libcurl 7.88 sends the path alone when it runs out of memory
       copying the query (a page request would then read the first page
       again) */
    if (x->origin_form) SET(CURLOPT_REQUEST_TARGET, origin_form(url));
    if (rc == CURLE_OK && !so_buf_append(&x->url, url, url_len))
      so_buf_reset(&x->url); /* not known: set next time */
  }
  SET(CURLOPT_HTTPHEADER, headers);
  if (!x->known || x->timeout_ms != timeout_ms)
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
  /* libcurl tells a refused HTTP/2 stream from a lost connection only in
     its verbose text, which costs about 25k instructions a request
     (docs/performance.md): it is asked for only where the answer decides
     whether to send again, a POST or DELETE. Any other request is safe
     to send again: without the text it is only reported as after a lost
     connection (maybe applied). The debug function goes with it: libcurl
     traces each TLS record to the function of the transfer at hand, and
     without one it does not */
  verbose = want_trace || (!so_method_repeatable(method) && may_be_http2(x));
  if (!x->known || x->verbose != verbose) {
    SET(CURLOPT_VERBOSE, verbose ? 1L : 0L);
    SET(CURLOPT_DEBUGFUNCTION, verbose ? on_debug : NULL);
  }
  if (body) {
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    /* not copied: the job keeps the body string alive (in a user value)
       until the transfer is over */
    SET(CURLOPT_POSTFIELDS, body);
    SET(CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
  } else {
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
  }
#undef SET
  x->known = rc == CURLE_OK;
  x->timeout_ms = timeout_ms;
  x->verbose = verbose;
  if (rc != CURLE_OK) so_buf_reset(&x->url);
  return rc;
}

/* the request never went on the wire: the rate limiter place it held is
   free again */
void so_exchange_unsent(so_exchange *x) {
  so_limiter_unsent(x->limiter, x->place);
  x->place = -1;
}

void so_exchange_free(so_exchange *x) {
  so_exchange_unsent(x);
  if (x->curl) curl_easy_cleanup(x->curl);
  x->curl = NULL;
  so_buf_free(&x->body);
  so_chunks_free(&x->rest);
  so_buf_free(&x->head);
  so_buf_free(&x->trace);
  so_buf_free(&x->url);
}

/* the next "Name: value" line of a header block from *p (status lines
   and lines without a name are passed over); 0 at the end */
typedef struct header {
  const char *name, *value;
  size_t name_len, value_len;
} header;

static int next_header(const char **p, const char *end, header *h) {
  while (*p && *p < end) {
    const char *line = *p;
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    const char *line_end = eol ? eol : end;
    const char *colon = memchr(line, ':', (size_t)(line_end - line));
    *p = eol ? eol + 1 : end;
    if (colon && colon > line &&
        !(line_end - line >= 5 && memcmp(line, "HTTP/", 5) == 0)) {
      const char *v = colon + 1, *ve = line_end;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      h->name = line;
      h->name_len = (size_t)(colon - line);
      h->value = v;
      h->value_len = (size_t)(ve - v);
      return 1;
    }
  }
  return 0;
}

/* the header block as { [lower-case name] = value }; repeated names are
   joined with ", " */
void so_push_headers(lua_State *L, const so_buf *head) {
  const char *p = head->data, *end = p ? p + head->len : p;
  header h;
  lua_newtable(L);
  while (next_header(&p, end, &h)) {
    char name[256];
    size_t i;
    if (h.name_len >= sizeof(name)) continue;
    for (i = 0; i < h.name_len; i++)
      name[i] = (char)tolower((unsigned char)h.name[i]);
    lua_pushlstring(L, name, h.name_len);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, h.value, h.value_len);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, h.value, h.value_len);
    }
    lua_rawset(L, -3);
  }
}

/* the value of the first header called `name` (lower case), or NULL */
const char *so_find_header(const so_buf *head, const char *name,
                           size_t *len) {
  const char *p = head->data, *end = p ? p + head->len : p;
  size_t nlen = strlen(name);
  header h;
  while (next_header(&p, end, &h)) {
    if (h.name_len == nlen && strncasecmp(h.name, name, nlen) == 0) {
      *len = h.value_len;
      return h.value;
    }
  }
  return NULL;
}
