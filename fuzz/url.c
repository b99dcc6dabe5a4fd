/*
** url.c: fuzzes the URL building of url.c: so_check_base_url on any
** string, so_add_path with any id bytes, and so_add_query with a query
** table built from the input for one of so_operations. The first byte
** picks which; the rest is the input of that function.
** Invariants:
** - base URL: an accepted URL is http(s), without spaces, control bytes,
**   a trailing '/', a query, a fragment or credentials; plain http goes
**   only to a loopback host unless allowed; checking it again accepts
**   it, and gives it back unchanged unless it had %XX escapes;
** - path: the id becomes exactly one path segment, unreserved bytes and
**   %XX escapes that decode back to the id, never "." or "..";
** - query: refused with a message, or "?name=value&..." where names are
**   unreserved bytes and %XX escapes, values may also hold ','; the Lua
**   stack is as it was.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

static int hexdigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static int hexval(char c) {
  return c <= '9' ? c - '0' : c - 'A' + 10;
}

/* ---- base URL ---- */

/* host[:port] of an accepted http:// URL is loopback: localhost, [::1]
   (with a zone id too: [::1%25eth0]) or a dotted quad 127.x.x.x */
static int loopback_authority(const char *a, size_t len) {
  size_t hlen = len, i;
  int parts = 0, digits = 0, value = 0;
  const char *colon;
  if (len >= 5 && memcmp(a, "[::1]", 5) == 0) return len == 5 || a[5] == ':';
  if (len >= 7 && memcmp(a, "[::1%25", 7) == 0) return 1;
  colon = memchr(a, ':', len);
  if (colon) hlen = (size_t)(colon - a);
  if (hlen == 9 && strncasecmp(a, "localhost", 9) == 0) return 1;
  if (hlen < 4 || memcmp(a, "127.", 4) != 0) return 0;
  for (i = 0; i <= hlen; i++) {
    if (i == hlen || a[i] == '.') {
      if (digits == 0 || value > 255) return 0;
      parts++;
      digits = value = 0;
    } else if (a[i] >= '0' && a[i] <= '9' && digits < 3) {
      value = value * 10 + (a[i] - '0');
      digits++;
    } else {
      return 0;
    }
  }
  return parts == 4;
}

static void fuzz_base_url(const uint8_t *data, size_t size) {
  int allow = size > 0 && (data[0] & 1);
  char *url, *normalized = NULL, err[256];
  const char *rest, *slash;
  size_t len, i;
  if (size > 0) data++, size--;
  url = malloc(size + 1);
  if (url == NULL) return;
  memcpy(url, data, size);
  url[size] = '\0';
  err[0] = '\0';
  if (!so_check_base_url(url, allow, err, sizeof(err), &normalized)) {
    if (getenv("FUZZ_DEBUG"))
      fprintf(stderr, "base_url '%s' refused: %s\n", url, err);
    if (normalized) fz_fail("a refused base_url left a normalized copy");
    if (err[0] == '\0') fz_fail("base_url '%s' refused without a message",
                                url);
    free(url);
    return;
  }
  if (normalized == NULL) fz_fail("no normalized base_url");
  if (getenv("FUZZ_DEBUG"))
    fprintf(stderr, "base_url '%s' accepted as '%s'\n", url, normalized);
  len = strlen(normalized);
  if (strncmp(normalized, "https://", 8) == 0) rest = normalized + 8;
  else if (strncmp(normalized, "http://", 7) == 0) rest = normalized + 7;
  else fz_fail("base_url '%s' became '%s'", url, normalized);
  if (len > 0 && normalized[len - 1] == '/')
    fz_fail("normalized base_url '%s' ends in '/'", normalized);
  /* bytes past 0x7F stay: libcurl takes UTF-8 host names (IDN) */
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)normalized[i];
    if (c <= 0x20 || c == 0x7F || c == '?' || c == '#')
      fz_fail("normalized base_url '%s' has byte 0x%02x", normalized, c);
  }
  slash = strchr(rest, '/');
  if (memchr(rest, '@', slash ? (size_t)(slash - rest) : strlen(rest)))
    fz_fail("base_url '%s' kept credentials", normalized);
  if (!allow && rest == normalized + 7 &&
      !loopback_authority(rest, slash ? (size_t)(slash - rest) : strlen(rest)))
    fz_fail("plain http to a host that is not loopback: '%s' (from '%s')",
            normalized, url);
  {
    char *again = NULL;
    if (!so_check_base_url(normalized, allow, err, sizeof(err), &again))
      fz_fail("normalized base_url '%s' (from '%s') is refused: %s",
              normalized, url, err);
    /* libcurl decodes %XX in a host name and reads a numeric host as
       IPv4 only on the next parse: http://0%2e50 gives http://0.50, then
       http://0.0.0.50. Harmless: the loopback check sees decoded names */
    if (strcmp(again, normalized) != 0 && strchr(url, '%') == NULL)
      fz_fail("base_url '%s' normalizes to '%s', then to '%s'", url,
              normalized, again);
    free(again);
  }
  free(normalized);
  free(url);
}

/* ---- path ---- */

static void fuzz_path(const uint8_t *data, size_t size) {
  fz_reader r;
  const so_operation *op;
  const char *path, *slot, *id, *seg;
  size_t idlen, prefix, suffix, seglen, i, j;
  so_buf b = {NULL, 0, 0, 0};
  char err[256];
  int null_id, ok;
  r.p = data;
  r.n = size;
  op = &so_operations[fz_byte(&r) % so_operation_count];
  null_id = (fz_byte(&r) & 7) == 7;
  idlen = fz_take(&r, r.n, (const uint8_t **)&id);
  path = op->path;
  slot = strstr(path, "{id}");
  err[0] = '\0';
  ok = so_add_path(&b, path, null_id ? NULL : id, null_id ? 0 : idlen, err,
                   sizeof(err));
  if (getenv("FUZZ_DEBUG"))
    fprintf(stderr, "path %s: '%.*s' %s\n", ok ? "built" : "refused",
            (int)b.len, b.data ? b.data : "", ok ? "" : err);
  if (slot == NULL) {
    if (!ok || b.len != strlen(path) || memcmp(b.data, path, b.len) != 0)
      fz_fail("path '%s' without {id} changed", path);
    so_buf_free(&b);
    return;
  }
  if (!ok) {
    if (!(null_id || idlen == 0 || (idlen == 1 && id[0] == '.') ||
          (idlen == 2 && id[0] == '.' && id[1] == '.')))
      fz_fail("id of %zu bytes refused: %s", idlen, err);
    if (err[0] == '\0') fz_fail("id refused without a message");
    so_buf_free(&b);
    return;
  }
  if (null_id) fz_fail("a NULL id was accepted");
  if (b.oom) fz_fail("out of memory");
  prefix = (size_t)(slot - path);
  suffix = strlen(slot + 4);
  if (b.len < prefix + suffix || memcmp(b.data, path, prefix) != 0 ||
      memcmp(b.data + b.len - suffix, slot + 4, suffix) != 0)
    fz_fail("the fixed parts of '%s' changed", path);
  seg = b.data + prefix;
  seglen = b.len - prefix - suffix;
  if ((seglen == 1 && seg[0] == '.') ||
      (seglen == 2 && seg[0] == '.' && seg[1] == '.'))
    fz_fail("the id became the segment '%.*s'", (int)seglen, seg);
  /* every byte unreserved or an escape, and the escapes decode to id */
  for (i = j = 0; i < seglen; j++) {
    unsigned char c;
    if (seg[i] == '%') {
      if (seglen - i < 3 || !hexdigit(seg[i + 1]) || !hexdigit(seg[i + 2]))
        fz_fail("a bad escape in the id segment");
      c = (unsigned char)(hexval(seg[i + 1]) * 16 + hexval(seg[i + 2]));
      if (unreserved(c)) fz_fail("unreserved byte '%c' was escaped", c);
      i += 3;
    } else if (unreserved((unsigned char)seg[i])) {
      c = (unsigned char)seg[i];
      i++;
    } else {
      fz_fail("the id segment has byte 0x%02x", (unsigned char)seg[i]);
    }
    if (j >= idlen || (unsigned char)id[j] != c)
      fz_fail("the id segment does not decode to the id");
  }
  if (j != idlen) fz_fail("the id segment does not decode to the id");
  so_buf_free(&b);
}

/* ---- query ---- */

static const char *const query_words[] = {
  "fields", "filter", "page_size", "next", "include", "raw", "proxy", "page",
  "updated_after", "id", "first_name", "emails", "a", "b", "", " ", "x y",
  "a&b=c", "[", "]", "%", "%41", "#", "?", "/", ",", "=", "&", "+",
  "\xc3\xa9", "true", "2024-01-01T00:00:00Z", "50", "100", "0", "101", "-1",
  "1.5", "1e2", "0x10", " 7 ", "c3VyZQ==", "id,first_name", NULL
};

typedef struct query_case {
  so_buf *b;
  const so_operation *op;
  char *err;
  size_t errlen;
  int ok, before, after;
} query_case;

static int add_query(lua_State *L) {
  query_case *qc = lua_touserdata(L, 1);
  int entry = lua_gettop(L);
  lua_remove(L, 1); /* the query table (or nil) is now at 1 */
  qc->before = lua_gettop(L);
  fz_guard_begin(L, entry);
  qc->ok = so_add_query(L, qc->b, 1, qc->op, qc->err, qc->errlen);
  fz_guard_end();
  qc->after = lua_gettop(L);
  return 0;
}

/* name=value: names are unreserved bytes and escapes, values may have ',' */
static size_t check_part(const char *s, size_t i, size_t len, int value) {
  while (i < len && s[i] != '&' && (value || s[i] != '=')) {
    if (s[i] == '%') {
      if (len - i < 3 || !hexdigit(s[i + 1]) || !hexdigit(s[i + 2]))
        fz_fail("query '%.*s': a bad escape", (int)len, s);
      i += 3;
    } else if (unreserved((unsigned char)s[i]) || (value && s[i] == ',')) {
      i++;
    } else {
      fz_fail("query '%.*s' has byte 0x%02x", (int)len, s,
              (unsigned char)s[i]);
    }
  }
  return i;
}

static void check_query(const char *s, size_t len) {
  size_t i = 1, start;
  if (len == 0) return;
  if (s[0] != '?') fz_fail("query '%.*s' starts without '?'", (int)len, s);
  for (;;) {
    start = i;
    i = check_part(s, i, len, 0);
    if (i == start) fz_fail("query '%.*s': an empty name", (int)len, s);
    if (i == len || s[i] != '=')
      fz_fail("query '%.*s': a name without '='", (int)len, s);
    i = check_part(s, i + 1, len, 1);
    if (i == len) return;
    i++; /* '&' */
  }
}

static void fuzz_query(const uint8_t *data, size_t size) {
  lua_State *L = fz_lua();
  fz_reader r;
  fz_builder fb;
  query_case qc;
  so_buf b = {NULL, 0, 0, 0};
  char err[256];
  r.p = data;
  r.n = size;
  qc.op = &so_operations[fz_byte(&r) % so_operation_count];
  qc.b = &b;
  qc.err = err;
  qc.errlen = sizeof(err);
  err[0] = '\0';
  lua_pushcfunction(L, add_query);
  lua_pushlightuserdata(L, &qc);
  if ((fz_byte(&r) & 15) == 15) {
    lua_pushnil(L);
  } else {
    fb.L = L;
    fb.r = &r;
    fb.words = query_words;
    fb.max_depth = 12; /* past the limit of 8 */
    fb.nchain = 0;
    fz_push_object(&fb, 0);
  }
  if (lua_pcall(L, 2, 0, 0) != LUA_OK)
    fz_fail("so_add_query raised: %s", lua_tostring(L, -1));
  if (getenv("FUZZ_DEBUG"))
    fprintf(stderr, "%s query: %s '%.*s' %s\n", qc.op->operation_id,
            qc.ok ? "built" : "refused", (int)b.len, b.data ? b.data : "",
            qc.ok ? "" : err);
  if (qc.ok) {
    if (qc.after != qc.before)
      fz_fail("so_add_query left the stack at %d, not %d", qc.after,
              qc.before);
    if (b.oom) fz_fail("out of memory");
    check_query(b.data, b.len);
  } else if (err[0] == '\0') {
    fz_fail("a query was refused without a message");
  }
  so_buf_free(&b);
  fz_reset(L);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  switch (data[0] % 3) {
    case 0: fuzz_base_url(data + 1, size - 1); break;
    case 1: fuzz_path(data + 1, size - 1); break;
    default: fuzz_query(data + 1, size - 1); break;
  }
  return 0;
}
