/* fuzz-sources: tools/bench/bench_scan.c */
/*
 * fuzz_bench_scan.c - parley-bench's stream scanner on arbitrary bytes.
 *
 * Beyond "no crash": every event's range lies inside what was scanned,
 * ranges come in order without overlap, an element starts with '<' and ends
 * with '>', the position only moves forward, and the scanner always either
 * makes progress or asks for more (no loop on hostile input). The input is
 * fed in two pieces split at a point taken from its first byte, carrying the
 * unfinished part over as the load generator does; the element accessors run
 * on every element found.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench/bench_scan.h"

static void check_accessors(const char *el, size_t len)
{
	size_t n = 0;
	const char *p = scan_name(el, len, &n);
	if (p < el || p + n > el + len)
		abort();
	static const char *const attrs[] = { "type", "id", "to", "from", "xmlns" };
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		p = scan_attr(el, len, attrs[i], &n);
		if (p && (p < el || p + n > el + len))
			abort();
	}
	p = scan_child_text(el, len, "body", &n);
	if (p && (p < el || p + n > el + len))
		abort();
	(void)scan_is(el, len, "message");
}

/* Scan buf[0, len); returns where the unfinished part begins, or -1 on a
 * scanner error (the rest is then dropped). */
static long scan_all(struct scan *s, const char *buf, size_t len)
{
	size_t pos = 0, last_end = 0;
	for (int guard = 0; guard <= (int)len + 1; guard++) {
		size_t start = (size_t)-1, end = (size_t)-1, before = pos;
		enum scan_event ev = scan_next(s, buf, len, &pos, &start, &end);
		if (pos < before || pos > len)
			abort();
		if (ev == SCAN_NEED_MORE)
			return (long)pos;
		if (ev == SCAN_ERROR)
			return -1;
		if (start < last_end || start >= end || end > len || end != pos)
			abort();
		if (buf[start] != '<' || buf[end - 1] != '>')
			abort();
		if (ev == SCAN_ELEMENT)
			check_accessors(buf + start, end - start);
		last_end = end;
	}
	abort();   /* an event per byte at most: more means no progress */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	size_t split = 1 + (data[0] % (size));
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	if (split > len)
		split = len;
	struct scan s = { data[0] & 1 };
	char *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, in, split);
	long keep = scan_all(&s, buf, split);
	if (keep >= 0) {
		size_t carry = split - (size_t)keep;
		memmove(buf, buf + keep, carry);
		memcpy(buf + carry, in + split, len - split);
		/* An exact-size copy lets ASan see any read past the end. */
		char *exact = malloc(carry + len - split ? carry + len - split : 1);
		if (exact) {
			memcpy(exact, buf, carry + len - split);
			scan_all(&s, exact, carry + len - split);
			free(exact);
		}
	}
	free(buf);
	return 0;
}
