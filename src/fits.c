/*
** fits.c: the quick body check. cjson encodes the body first; this reads
** cjson's text against the operation's rows and says whether the body
** certainly passes the full check (json.c's walk over the Lua table). It
** decodes nothing: on anything it cannot be sure of it says no, and the
** walk then checks the table itself and says what is wrong, or copies it
** where cjson alone would not say it right. What sends a body to the walk:
** - a number: the text does not tell an exact value from one cjson
**   rounded to 14 digits (nor, on Lua 5.1, 1 from 1.0000000000000002);
** - an empty object: cjson writes every empty table so, an empty array
**   (one the row or stackone.array says is one) included;
** - a key that starts like a number: cjson writes a table mixing array
**   items and names as an object with keys "1", "2", ... which the walk
**   refuses; and a listed value written with an escape;
** - nesting deeper than the walk allows.
** Tables with holes never get here: the module's cjson is told to refuse
** sparse arrays (json.c), and so_json_encode_body falls back to the walk.
*/
#include <stdint.h>
#include <string.h>

#include "stackone.h"

#define MAX_DEPTH SO_BODY_MAX_DEPTH

typedef struct {
  const char *p, *end;
  int depth;
} reader;

static int value_fits(reader *r, const so_field *row);

/* past the string at r->p (a quote): to the quote that ends it, one
   not escaped (an even run of backslashes before it); its bytes between
   the quotes in *s, *n. 0 when it has no end */
static int skip_string(reader *r, const char **s, size_t *n) {
  const char *p = r->p + 1, *q = p, *end = r->end;
  while ((q = memchr(q, '"', (size_t)(end - q))) != NULL) {
    const char *b = q;
    while (b > p && b[-1] == '\\') b--;
    if ((q - b) % 2 == 0) break;
    q++;
  }
  if (q == NULL) return 0;
  *s = p;
  *n = (size_t)(q - p);
  r->p = q + 1;
  return 1;
}

static int literal(reader *r, const char *word, size_t n) {
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return 0;
  r->p += n;
  return 1;
}

/* a string, one of the row's `values` if it has them: the values need no
   escape, so the string is one exactly when its bytes are (one written
   with an escape goes to the walk) */
static int string_fits(reader *r, const so_field *row) {
  const char *s;
  size_t n;
  int i;
  if (r->p >= r->end || *r->p != '"' || !skip_string(r, &s, &n)) return 0;
  if (row == NULL || row->values == NULL) return 1;
  for (i = 0; row->values[i]; i++)
    if (strlen(row->values[i]) == n && memcmp(row->values[i], s, n) == 0)
      return 1;
  return 0;
}

/* the row of `fields` whose name is the key at r->p (a quote), read past
   it, and its index; NULL for any other key. Names need no escape, so a
   key is one exactly when its bytes are the name's, then a quote */
static const so_field *key_row(reader *r, const so_field *fields,
                               int *index) {
  const char *key = r->p + 1;
  size_t room = (size_t)(r->end - key);
  const so_field *f;
  if (room == 0) return NULL;
  for (f = fields; f->name; f++)
    if (f->name[0] == key[0]) {
      size_t n = strlen(f->name);
      if (n < room && key[n] == '"' && memcmp(f->name, key, n) == 0) {
        *index = (int)(f - fields);
        r->p = key + n + 1;
        return f;
      }
    }
  return NULL;
}

/* an object: with rows, of their names only and with every required one */
static int object_fits(reader *r, const so_field *fields) {
  uint64_t seen = 0;
  const so_field *f;
  if (++r->depth > MAX_DEPTH) return 0;
  r->p++; /* { */
  if (r->p < r->end && *r->p == '}') return 0; /* empty: see above */
  for (;;) {
    int index = 0;
    const so_field *row = NULL;
    if (r->p >= r->end || *r->p != '"') return 0;
    if (fields) {
      if ((row = key_row(r, fields, &index)) == NULL || index >= 64) return 0;
      seen |= (uint64_t)1 << index;
    } else {
      const char *key;
      size_t n;
      if (!skip_string(r, &key, &n) || n == 0 ||
          (key[0] >= '0' && key[0] <= '9') || key[0] == '-')
        return 0;
    }
    if (r->p >= r->end || *r->p++ != ':' || !value_fits(r, row)) return 0;
    if (r->p >= r->end) return 0;
    if (*r->p == '}') break;
    if (*r->p++ != ',') return 0;
  }
  r->p++;
  r->depth--;
  for (f = fields; f && f->name; f++)
    if (f->required &&
        ((f - fields) >= 64 || !(seen & (uint64_t)1 << (f - fields))))
      return 0;
  return 1;
}

/* a non-empty array whose items fit `item` (NULL: any value) */
static int array_fits(reader *r, const so_field *item) {
  if (++r->depth > MAX_DEPTH) return 0;
  r->p++; /* [ */
  for (;;) {
    if (!value_fits(r, item) || r->p >= r->end) return 0;
    if (*r->p == ']') break;
    if (*r->p++ != ',') return 0;
  }
  r->p++;
  r->depth--;
  return 1;
}

/* an array row's value: an array of its items (so_array_item) */
static int items_fit(reader *r, const so_field *row) {
  so_field item = so_array_item(row);
  return r->p < r->end && *r->p == '[' && array_fits(r, &item);
}

/* the value at r->p fits the row (NULL: any value); null fits every row,
   as stackone.null does in the walk */
static int value_fits(reader *r, const so_field *row) {
  if (r->p >= r->end) return 0;
  if (*r->p == 'n') return literal(r, "null", 4);
  switch (row ? row->type : SO_T_ANY) {
    case SO_T_STRING:
      return string_fits(r, row);
    case SO_T_BOOLEAN:
      return literal(r, "true", 4) || literal(r, "false", 5);
    case SO_T_STRING_ARRAY:
    case SO_T_OBJECT_ARRAY:
      return items_fit(r, row);
    case SO_T_OBJECT:
      return *r->p == '{' && object_fits(r, row->fields);
    case SO_T_NUMBER:
      return 0; /* see above */
    default:
      break;
  }
  switch (*r->p) {
    case '"': return string_fits(r, NULL);
    case '{': return object_fits(r, NULL);
    case '[': return array_fits(r, NULL);
    case 't': return literal(r, "true", 4);
    case 'f': return literal(r, "false", 5);
    default: return 0; /* a number, or not cjson's text */
  }
}

int so_json_fits(const char *text, size_t len, const so_field *schema) {
  reader r;
  r.p = text;
  r.end = text + len;
  r.depth = 0;
  return len > 0 && *text == '{' && object_fits(&r, schema) && r.p == r.end;
}
