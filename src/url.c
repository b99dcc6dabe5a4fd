/*
** url.c: the base URL check, request paths with percent-encoded ids, and
** query strings (fields lists, filter[...] and proxy[...][...] deep
** objects). Nothing a caller passes can change which endpoint is called.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

/* percent-encodes s; `keep` names extra characters left as they are */
static void add_encoded(so_buf *b, const char *s, size_t len,
                        const char *keep) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c) || (keep && c && strchr(keep, c))) {
      so_buf_append(b, &s[i], 1);
    } else {
      char esc[3];
      esc[0] = '%';
      esc[1] = hex[c >> 4];
      esc[2] = hex[c & 15];
      so_buf_append(b, esc, 3);
    }
  }
}

static void add_char(so_buf *b, char c) {
  so_buf_append(b, &c, 1);
}

static void add_string(so_buf *b, const char *s) {
  so_buf_append(b, s, strlen(s));
}

/* 127.x.y.z, the form libcurl gives numeric IPv4 hosts in; a name such
   as 127.0.0.1.example.com is not loopback */
static int is_ipv4_loopback(const char *host) {
  const char *p = host + 4;
  int parts = 1;
  if (strncmp(host, "127.", 4) != 0) return 0;
  for (;;) {
    int digits = 0, value = 0;
    while (*p >= '0' && *p <= '9' && digits < 3) {
      value = value * 10 + (*p++ - '0');
      digits++;
    }
    if (digits == 0 || value > 255) return 0;
    parts++;
    if (*p == '\0') return parts == 4;
    if (*p++ != '.') return 0;
  }
}

static int is_loopback(const char *host) {
  return strcmp(host, "localhost") == 0 || is_ipv4_loopback(host) ||
         strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* checks base_url; on success *normalized is a malloc'd copy without a
   trailing '/' */
int so_check_base_url(const char *url, int allow_insecure_http, char *err,
                      size_t errlen, char **normalized) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *part = NULL, *full = NULL;
  int ok = 0;
  *normalized = NULL;
  if (u == NULL) {
    snprintf(err, errlen, "out of memory");
    return 0;
  }
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    snprintf(err, errlen, "base_url is not a valid absolute URL");
    goto done;
  }
  if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
    snprintf(err, errlen, "base_url must be an http or https URL");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
      curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
    snprintf(err, errlen, "base_url must not hold credentials "
                          "(use the api_key option)");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
      curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK ||
      strchr(url, '#') || strchr(url, '?')) {
    snprintf(err, errlen, "base_url must not have a query or a fragment");
    goto done;
  }
  if (strcmp(scheme, "http") == 0 && !allow_insecure_http &&
      !is_loopback(host)) {
    snprintf(err, errlen, "base_url uses http:// to a host other than "
             "loopback; the API key would travel in clear text (use https, "
             "or set allow_insecure_http = true)");
    goto done;
  }
  /* the normalized URL must parse again: libcurl decodes %XX in a host
     name, so http://%7F7 gives http://\x7F7, which it then refuses */
  if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_URL, full, 0) != CURLUE_OK) {
    snprintf(err, errlen, "base_url is not a valid absolute URL");
    goto done;
  }
  {
    size_t len = strlen(full);
    while (len > 0 && full[len - 1] == '/') len--;
    *normalized = malloc(len + 1);
    if (*normalized == NULL) {
      snprintf(err, errlen, "out of memory");
      goto done;
    }
    memcpy(*normalized, full, len);
    (*normalized)[len] = '\0';
  }
  ok = 1;
done:
  curl_free(part);
  curl_free(scheme);
  curl_free(host);
  curl_free(full);
  curl_url_cleanup(u);
  return ok;
}

/* appends path with "{id}" replaced by the percent-encoded id */
int so_add_path(so_buf *b, const char *path, const char *id, size_t idlen,
                char *err, size_t errlen) {
  const char *slot = strstr(path, "{id}");
  if (slot == NULL) {
    add_string(b, path);
    return 1;
  }
  if (id == NULL || idlen == 0 || (idlen == 1 && id[0] == '.') ||
      (idlen == 2 && id[0] == '.' && id[1] == '.')) {
    snprintf(err, errlen, "id must be a non-empty string other than "
             "'.' and '..'");
    return 0;
  }
  so_buf_append(b, path, (size_t)(slot - path));
  add_encoded(b, id, idlen, NULL);
  add_string(b, slot + 4);
  return 1;
}

typedef struct query {
  lua_State *L;
  so_buf *b;
  int first;
  char *err;
  size_t errlen;
} query;

static void add_name_len(query *q, const char *name, size_t len) {
  add_char(q->b, q->first ? '?' : '&');
  q->first = 0;
  add_encoded(q->b, name, len, NULL);
}

static void add_name(query *q, const char *name) {
  add_name_len(q, name, strlen(name));
}

/* a scalar at idx as query text; 0 when it is not a scalar */
static int add_scalar(query *q, int idx) {
  lua_State *L = q->L;
  size_t len;
  const char *s;
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
      add_string(q->b, lua_toboolean(L, idx) ? "true" : "false");
      return 1;
    case LUA_TNUMBER:
    case LUA_TSTRING:
      lua_pushvalue(L, idx);
      s = lua_tolstring(L, -1, &len);
      add_encoded(q->b, s, len, ",");
      lua_pop(L, 1);
      return 1;
    default:
      return 0;
  }
}

/* "id,first_name" or { "id", "first_name" } */
static int add_list(query *q, const char *name, int idx) {
  lua_State *L = q->L;
  lua_Integer i, n;
  if (lua_type(L, idx) == LUA_TSTRING) {
    add_name(q, name);
    add_char(q->b, '=');
    return add_scalar(q, idx);
  }
  if (lua_type(L, idx) != LUA_TTABLE) {
    snprintf(q->err, q->errlen, "query '%s' must be a string or an array "
             "of field names", name);
    return 0;
  }
  n = (lua_Integer)lua_rawlen(L, idx);
  add_name(q, name);
  add_char(q->b, '=');
  for (i = 1; i <= n; i++) {
    int ok;
    if (i > 1) add_char(q->b, ',');
    lua_rawgeti(L, idx, i);
    ok = lua_type(L, -1) == LUA_TSTRING && add_scalar(q, lua_gettop(L));
    lua_pop(L, 1);
    if (!ok) {
      snprintf(q->err, q->errlen, "query '%s' must hold only strings", name);
      return 0;
    }
  }
  return 1;
}

/* sorted string keys of the table at idx, as a new array on the stack */
static int sorted_keys(query *q, int idx, const char *name) {
  lua_State *L = q->L;
  lua_Integer n = 0;
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      snprintf(q->err, q->errlen, "query '%s' must have string keys", name);
      lua_pop(L, 2);
      return 0;
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, ++n);
  }
  {
    /* insertion sort: proxy tables are small */
    int keys = lua_gettop(L);
    lua_Integer i, j;
    for (i = 2; i <= n; i++) {
      lua_rawgeti(L, keys, i);
      for (j = i - 1; j >= 1; j--) {
        lua_rawgeti(L, keys, j);
        if (!lua_compare(L, -2, -1, LUA_OPLT)) {
          lua_pop(L, 1);
          break;
        }
        lua_rawseti(L, keys, j + 1);
      }
      lua_rawseti(L, keys, j + 1);
    }
  }
  return 1;
}

/* proxy = { a = { b = "c" } } -> proxy[a][b]=c (deepObject); arrays
   repeat the name. The name is the string at stack index `name`. */
static int add_deep(query *q, int name, int idx, int depth) {
  lua_State *L = q->L;
  lua_Integer i, n;
  int keys;
  size_t nlen;
  const char *ntext = lua_tolstring(L, name, &nlen);
  /* each level keeps three values on the stack and briefly four more */
  if (depth > 8 || !lua_checkstack(L, 8)) {
    snprintf(q->err, q->errlen, "query '%s' is nested too deeply", ntext);
    return 0;
  }
  if (lua_type(L, idx) != LUA_TTABLE) {
    add_name_len(q, ntext, nlen);
    add_char(q->b, '=');
    if (add_scalar(q, idx)) return 1;
    snprintf(q->err, q->errlen, "query '%s' holds a %s", ntext,
             luaL_typename(L, idx));
    return 0;
  }
  n = (lua_Integer)lua_rawlen(L, idx);
  if (n > 0) {
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      count++;
    }
    if (count != n) {
      snprintf(q->err, q->errlen, "query '%s' mixes a list with named "
               "values", ntext);
      return 0;
    }
    for (i = 1; i <= n; i++) {
      int ok;
      lua_rawgeti(L, idx, i);
      ok = add_deep(q, name, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
      if (!ok) return 0;
    }
    return 1;
  }
  if (!sorted_keys(q, idx, ntext)) return 0;
  keys = lua_gettop(L);
  n = (lua_Integer)lua_rawlen(L, keys);
  for (i = 1; i <= n; i++) {
    int ok;
    lua_pushvalue(L, name);
    lua_pushliteral(L, "[");
    lua_rawgeti(L, keys, i);
    lua_pushliteral(L, "]");
    lua_concat(L, 4); /* keeps every byte, NULs too */
    lua_rawgeti(L, keys, i);
    lua_rawget(L, idx);
    ok = add_deep(q, lua_gettop(L) - 1, lua_gettop(L), depth + 1);
    lua_pop(L, 2);
    if (!ok) return 0;
  }
  lua_pop(L, 1);
  return 1;
}

static int add_param(query *q, const char *name, const so_param *p,
                     int idx);

/* filter = { updated_after = "..." } -> filter[updated_after]=...: only
   the keys its description names, each of its own type */
static int add_filter(query *q, const so_param *p, int idx) {
  lua_State *L = q->L;
  size_t i;
  if (lua_type(L, idx) != LUA_TTABLE) {
    snprintf(q->err, q->errlen, "query '%s' must be a table such as "
             "{ %s = ... }", p->name, p->keys[0].name);
    return 0;
  }
  if (!so_known_names(L, idx, &p->keys[0].name, sizeof(so_param), p->name,
                      q->err, q->errlen))
    return 0;
  for (i = 0; p->keys[i].name; i++) {
    int ok;
    so_rawfield(L, idx, p->keys[i].name);
    lua_pushfstring(L, "%s[%s]", p->name, p->keys[i].name);
    ok = lua_isnil(L, -2) ||
         add_param(q, lua_tostring(L, -1), &p->keys[i], lua_gettop(L) - 1);
    lua_pop(L, 2);
    if (!ok) return 0;
  }
  return 1;
}

/* a whole number from 1 to `most` (0: no most), or its digits */
static int add_count(query *q, const char *name, int idx, lua_Integer most) {
  lua_State *L = q->L;
  lua_Integer n = 0;
  int ok = 0;
  if (lua_type(L, idx) == LUA_TNUMBER || lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx);
    if (lua_stringtonumber(L, lua_tostring(L, -1))) {
      if (lua_isinteger(L, -1)) {
        n = lua_tointeger(L, -1);
        ok = n >= 1 && (most == 0 || n <= most);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (!ok && most) {
    snprintf(q->err, q->errlen, "query '%s' must be a whole number "
             "from 1 to %lld", name, (long long)most);
    return 0;
  }
  if (!ok) {
    snprintf(q->err, q->errlen, "query '%s' must be a whole number from 1",
             name);
    return 0;
  }
  add_name(q, name);
  {
    char text[32];
    snprintf(text, sizeof(text), "=%lld", (long long)n);
    add_string(q->b, text);
  }
  return 1;
}

/* "a" or { "a", "b" } as name=a&name=b: the key repeated */
static int add_repeated(query *q, const char *name, int idx) {
  lua_State *L = q->L;
  lua_Integer i, n;
  if (lua_type(L, idx) == LUA_TSTRING) {
    add_name(q, name);
    add_char(q->b, '=');
    return add_scalar(q, idx);
  }
  if (lua_type(L, idx) == LUA_TTABLE) {
    n = (lua_Integer)lua_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
      int ok;
      lua_rawgeti(L, idx, i);
      ok = lua_type(L, -1) == LUA_TSTRING;
      if (ok) {
        add_name(q, name);
        add_char(q->b, '=');
        add_scalar(q, lua_gettop(L));
      }
      lua_pop(L, 1);
      if (!ok) break;
    }
    if (i > n) return 1;
  }
  snprintf(q->err, q->errlen, "query '%s' must be a string or an array of "
           "strings", name);
  return 0;
}

/* a string of a parameter with `values` must be one of them */
static int one_of(query *q, const char *name, const so_param *p, int idx) {
  const char *s = lua_tostring(q->L, idx), *near;
  size_t i;
  for (i = 0; p->values[i]; i++)
    if (strcmp(s, p->values[i]) == 0) return 1;
  near = so_closest(s, p->values, (size_t)-1, sizeof(char *));
  if (near)
    snprintf(q->err, q->errlen, "query '%s' must be one of the values the "
             "API takes (did you mean '%s'?)", name, near);
  else
    snprintf(q->err, q->errlen, "query '%s' must be one of the values the "
             "API takes", name);
  return 0;
}

/* name=value for the value at idx, checked against p's type */
static int add_param(query *q, const char *name, const so_param *p,
                     int idx) {
  lua_State *L = q->L;
  const char *want = NULL;
  int t = lua_type(L, idx);
  switch (p->type) {
    case SO_Q_NAMES: return add_list(q, name, idx);
    case SO_Q_FILTER: return add_filter(q, p, idx);
    case SO_Q_PAGE_SIZE:
    case SO_Q_NUMBER_SIZE: return add_count(q, name, idx, 100);
    case SO_Q_NUMBER: return add_count(q, name, idx, 0);
    case SO_Q_STRINGS: return add_repeated(q, name, idx);
    case SO_Q_OBJECT: {
      int ok;
      if (t != LUA_TTABLE) {
        snprintf(q->err, q->errlen, "query '%s' must be a table", name);
        return 0;
      }
      lua_pushstring(L, name);
      ok = add_deep(q, lua_gettop(L), idx, 0);
      lua_pop(L, 1);
      return ok;
    }
    case SO_Q_BOOLEAN:
      if (t != LUA_TBOOLEAN) want = "true or false";
      break;
    case SO_Q_PAGE:
      if (t != LUA_TSTRING && !lua_isinteger(L, idx))
        want = "a string or a whole number";
      break;
    case SO_Q_DATE_TIME:
      if (t != LUA_TSTRING) want = "a date-time string";
      break;
    case SO_Q_CURSOR:
      if (t != LUA_TSTRING) want = "a string";
      else if (lua_rawlen(L, idx) == 0) return 1; /* no cursor */
      break;
    case SO_Q_STRING:
      if (t != LUA_TSTRING) want = "a string";
      else if (p->values && !one_of(q, name, p, idx)) return 0;
      break;
  }
  if (want) {
    snprintf(q->err, q->errlen, "query '%s' must be %s", name, want);
    return 0;
  }
  add_name(q, name);
  add_char(q->b, '=');
  return add_scalar(q, idx);
}

/* appends "?a=b&..." for the query table at `query_idx` (may be nil) */
int so_add_query(lua_State *L, so_buf *b, int query_idx,
                 const so_operation *op, char *err, size_t errlen) {
  query q;
  size_t i;
  if (lua_isnoneornil(L, query_idx)) return 1;
  q.L = L;
  q.b = b;
  q.first = 1;
  q.err = err;
  q.errlen = errlen;
  /* every key must be known before anything is built */
  if (!so_known_names(L, query_idx, &op->query[0].name, sizeof(so_param),
                      "query parameter", err, errlen))
    return 0;
  for (i = 0; op->query[i].name; i++) {
    int ok;
    so_rawfield(L, query_idx, op->query[i].name);
    ok = lua_isnil(L, -1) ||
         add_param(&q, op->query[i].name, &op->query[i], lua_gettop(L));
    lua_pop(L, 1);
    if (!ok) return 0;
  }
  return 1;
}

/* no CR, LF, NUL or other control characters but tab */
int so_header_value_ok(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7F) return 0;
  }
  return 1;
}

int so_header_name_ok(const char *s, size_t len) {
  size_t i;
  if (len == 0) return 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(unreserved(c) || strchr("!#$%&'*+^`|", c)) || c == 0) return 0;
  }
  return 1;
}
