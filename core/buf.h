/*
 * buf.h - a growable byte buffer with a read offset.
 *
 * Owned by whoever embeds it; not thread-safe. An empty buffer holds no heap
 * memory, so an idle connection's output buffer costs nothing.
 */
#ifndef PL_BUF_H
#define PL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t off;   /* first unread byte */
	size_t len;   /* end of valid data */
	size_t cap;
};

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline const uint8_t *buf_head(const struct buf *b) { return b->data + b->off; }

void buf_append(struct buf *b, const void *data, size_t n);
void buf_append_str(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Room for at least n more bytes; returns where to write them. */
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);
/* Drop n bytes from the front; frees the memory when it becomes empty. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* NUL-terminated view of the contents (adds a NUL after len, not counted). */
const char *buf_cstr(struct buf *b);

#endif
