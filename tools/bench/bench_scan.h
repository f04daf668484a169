/*
 * bench_scan.h - cut an XMPP stream into its top-level elements, without
 * building a tree.
 *
 * The load generator reads tens of thousands of stanzas per second and only
 * needs a few facts from each (its name, one attribute, the body text), so
 * it finds element boundaries by counting tags instead of parsing XML. The
 * scanner trusts the server to send well-formed XML; anything it cannot make
 * sense of is SCAN_ERROR, never a crash or a read past the buffer.
 */
#ifndef BENCH_SCAN_H
#define BENCH_SCAN_H

#include <stddef.h>

enum scan_event {
	SCAN_NEED_MORE,     /* keep the bytes from *pos on and read more */
	SCAN_STREAM_OPEN,   /* [start, end) is the <stream:stream ...> tag */
	SCAN_ELEMENT,       /* [start, end) is one whole top-level element */
	SCAN_STREAM_CLOSE,  /* [start, end) is </stream:stream> */
	SCAN_ERROR,         /* not an XMPP stream */
};

struct scan {
	int depth;          /* 0: before the stream header; 1: inside it */
};

/* Next event in buf[*pos, len). On an event *pos moves past it; on
 * SCAN_NEED_MORE *pos is where the unfinished part begins. After a stream
 * restart (SASL success, STARTTLS) the caller sets depth back to 0. */
enum scan_event scan_next(struct scan *s, const char *buf, size_t len, size_t *pos,
			  size_t *start, size_t *end);

/* The local name of an element (after any prefix); *n gets its length. */
const char *scan_name(const char *el, size_t len, size_t *n);
/* Whether the element's local name is name. */
int scan_is(const char *el, size_t len, const char *name);
/* Value of attribute attr in the element's start tag (raw, not unescaped),
 * or NULL; *n gets its length. */
const char *scan_attr(const char *el, size_t len, const char *attr, size_t *n);
/* Text between the first <tag> (no attributes) and the next '<', or NULL. */
const char *scan_child_text(const char *el, size_t len, const char *tag, size_t *n);

#endif
