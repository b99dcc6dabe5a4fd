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
**   refuses; and a key or a listed value written with an escape;
** - nesting deeper than the walk allows.
** Tables with holes never get here: the module's cjson is told to refuse
** sparse arrays (json.c), and so_json_encode_body falls back to the walk.
*/
#include <stdint.h>
#include <string.h>

#include "stackone.h"

#define MAX_DEPTH 64 /* json.c's */

typedef struct {
  const char *p, *end;
  int depth;
} reader;

static int value_fits(reader *r, const so_field *row);

/* the string at r->p (a quote): its bytes between the quotes in *s, *n;
   *escaped when it has a backslash. Byte by byte: a body's strings are
   short, where a library search costs more to set up than it saves */
static int string_at(reader *r, const char **s, size_t *n, int *escaped) {
  const char *p = r->p + 1, *q, *end = r->end;
  int esc = 0;
  for (q = p; q < end && *q != '"'; q++)
    if (*q == '\\') {
      esc = 1;
      q++;
    }
  if (q >= end) return 0;
  *escaped = esc;
  *s = p;
  *n = (size_t)(q - p);
  r->p = q + 1;
  return 1;
}

/* whether the NUL-ended name is the n bytes at s (which hold no NUL) */
static int named(const char *name, const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (name[i] != s[i]) return 0;
  return name[n] == '\0';
}

static int literal(reader *r, const char *word, size_t n) {
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return 0;
  r->p += n;
  return 1;
}

/* a string, one of the row's `values` if it has them */
static int string_fits(reader *r, const so_field *row) {
  const char *s;
  size_t n;
  int escaped, i;
  if (r->p >= r->end || *r->p != '"' || !string_at(r, &s, &n, &escaped))
    return 0;
  if (row == NULL || row->values == NULL) return 1;
  if (escaped) return 0;
  for (i = 0; row->values[i]; i++)
    if (named(row->values[i], s, n)) return 1;
  return 0;
}

/* the row of `fields` named by s[0..n), and its index */
static const so_field *row_named(const so_field *fields, const char *s,
                                 size_t n, int *index) {
  const so_field *f;
  for (f = fields; f->name; f++)
    if (f->name[0] == s[0] && named(f->name, s, n)) {
      *index = (int)(f - fields);
      return f;
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
    const char *key;
    size_t n;
    int escaped, index = 0;
    const so_field *row = NULL;
    if (r->p >= r->end || *r->p != '"' || !string_at(r, &key, &n, &escaped))
      return 0;
    if (escaped || n == 0 || (key[0] >= '0' && key[0] <= '9') ||
        key[0] == '-')
      return 0;
    if (fields) {
      if ((row = row_named(fields, key, n, &index)) == NULL || index >= 64)
        return 0;
      seen |= (uint64_t)1 << index;
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

/* the item row of an array row, as json.c's array_item makes it */
static int items_fit(reader *r, const so_field *row) {
  so_field item = {NULL, SO_T_ANY, NULL, NULL, 0, NULL};
  item.type = row->type == SO_T_STRING_ARRAY ? SO_T_STRING : SO_T_OBJECT;
  item.fields = row->fields;
  item.values = row->values;
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
