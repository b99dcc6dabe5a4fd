/*
** chunks.c: a large response body as a chain of blocks. The first
** SO_WHOLE_BODY bytes grow in the exchange's one buffer as every body
** does; what comes after goes into blocks of SO_CHUNK_BYTES, so that the
** piecewise decode (json_pieces.c) can give each block back as soon as
** it is decoded, and no body is ever copied whole while it grows.
*/
#include <stdlib.h>
#include <string.h>

#include "stackone.h"

/* returns 0 when out of memory; what did fit stays */
static int chunks_append(so_chunks *c, const char *p, size_t n) {
  while (n > 0) {
    so_chunk *b = c->tail;
    size_t room, take;
    if (b == NULL || b->len == SO_CHUNK_BYTES) {
      b = malloc(sizeof(so_chunk));
      if (b == NULL) return 0;
      b->next = NULL;
      b->len = 0;
      if (c->tail) c->tail->next = b;
      else c->head = b;
      c->tail = b;
    }
    room = SO_CHUNK_BYTES - b->len;
    take = n < room ? n : room;
    memcpy(b->data + b->len, p, take);
    b->len += take;
    c->len += take;
    p += take;
    n -= take;
  }
  return 1;
}

/* the first block goes back to the system */
void so_chunks_drop_head(so_chunks *c) {
  so_chunk *b = c->head;
  if (b == NULL) return;
  c->head = b->next;
  if (c->head == NULL) c->tail = NULL;
  c->len -= b->len;
  free(b);
}

void so_chunks_free(so_chunks *c) {
  while (c->head) so_chunks_drop_head(c);
}

/* the write callback's way for bytes past the exchange's buffer room:
   the body's size is checked against max_response_bytes as for every
   body, the buffer is filled to its room, the rest goes into blocks */
size_t so_chunks_receive(so_exchange *x, const char *p, size_t len) {
  size_t fits = x->body_room - x->body.len;
  if (x->body.len + x->rest.len + len > x->max_response_bytes) {
    x->too_large = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  if (!so_buf_append(&x->body, p, fits)) return 0;
  return chunks_append(&x->rest, p + fits, len - fits) ? len : 0;
}
