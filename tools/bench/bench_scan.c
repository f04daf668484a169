/*
 * bench_scan.c - top-level element boundaries of an XMPP stream.
 *
 * An unfinished element is scanned again from its start when more bytes
 * arrive. Stanzas in a benchmark are a few hundred bytes, so that costs less
 * than keeping resumable state for every tag and quote.
 */
#include <string.h>

#include "tools/bench/bench_scan.h"

enum tag_kind { TAG_OPEN, TAG_CLOSE, TAG_EMPTY, TAG_SKIP, TAG_PARTIAL, TAG_BAD };

static const char *find2(const char *p, const char *end, const char *pat)
{
	size_t n = strlen(pat);
	if ((size_t)(end - p) < n)
		return NULL;
	return memmem(p, (size_t)(end - p), pat, n);
}

/* buf[i] is '<'. Sets *next past the construct. */
static enum tag_kind tag_at(const char *buf, size_t len, size_t i, size_t *next)
{
	const char *p = buf + i, *end = buf + len;
	if (p + 1 >= end)
		return TAG_PARTIAL;
	const char *close = NULL;
	if (p[1] == '?') {
		close = find2(p + 2, end, "?>");
		if (!close)
			return TAG_PARTIAL;
		*next = (size_t)(close + 2 - buf);
		return TAG_SKIP;
	}
	if (p[1] == '!') {
		if (end - p < 4)
			return TAG_PARTIAL;
		if (p[2] == '-' && p[3] == '-')
			close = find2(p + 4, end, "-->");
		else if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0)
			close = find2(p + 9, end, "]]>");
		else if (end - p < 9 && memcmp(p, "<![CDATA[", (size_t)(end - p)) == 0)
			return TAG_PARTIAL;
		else
			return TAG_BAD;   /* DOCTYPE and friends have no place in XMPP */
		if (!close)
			return TAG_PARTIAL;
		*next = (size_t)(close + 3 - buf);
		return TAG_SKIP;
	}
	char quote = 0;
	for (const char *q = p + 1; q < end; q++) {
		if (quote) {
			if (*q == quote)
				quote = 0;
		} else if (*q == '\'' || *q == '"') {
			quote = *q;
		} else if (*q == '<') {
			return TAG_BAD;
		} else if (*q == '>') {
			*next = (size_t)(q + 1 - buf);
			if (p[1] == '/')
				return TAG_CLOSE;
			return q[-1] == '/' ? TAG_EMPTY : TAG_OPEN;
		}
	}
	return TAG_PARTIAL;
}

enum scan_event scan_next(struct scan *s, const char *buf, size_t len, size_t *pos,
			  size_t *start, size_t *end)
{
	size_t i = *pos;
	for (;;) {
		/* Between stanzas only whitespace (keepalives) belongs. */
		while (i < len && buf[i] != '<')
			i++;
		if (i >= len) {
			*pos = len;
			return SCAN_NEED_MORE;
		}
		size_t next = 0;
		enum tag_kind k = tag_at(buf, len, i, &next);
		if (k == TAG_PARTIAL) {
			*pos = i;
			return SCAN_NEED_MORE;
		}
		if (k == TAG_BAD)
			return SCAN_ERROR;
		if (k == TAG_SKIP) {
			i = next;
			continue;
		}
		if (s->depth == 0) {
			if (k != TAG_OPEN)
				return SCAN_ERROR;
			*start = i;
			*end = *pos = next;
			s->depth = 1;
			return SCAN_STREAM_OPEN;
		}
		if (k == TAG_CLOSE) {
			*start = i;
			*end = *pos = next;
			s->depth = 0;
			return SCAN_STREAM_CLOSE;
		}
		if (k == TAG_EMPTY) {
			*start = i;
			*end = *pos = next;
			return SCAN_ELEMENT;
		}
		/* An element with content: find where its depth returns to 0. */
		size_t el = i;
		int depth = 1;
		i = next;
		while (depth > 0) {
			while (i < len && buf[i] != '<')
				i++;
			if (i >= len) {
				*pos = el;
				return SCAN_NEED_MORE;
			}
			k = tag_at(buf, len, i, &next);
			if (k == TAG_PARTIAL) {
				*pos = el;
				return SCAN_NEED_MORE;
			}
			if (k == TAG_BAD)
				return SCAN_ERROR;
			if (k == TAG_OPEN)
				depth++;
			else if (k == TAG_CLOSE)
				depth--;
			i = next;
		}
		*start = el;
		*end = *pos = i;
		return SCAN_ELEMENT;
	}
}

static int name_char(char c)
{
	return c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '/' && c != '>';
}

const char *scan_name(const char *el, size_t len, size_t *n)
{
	size_t i = 1, from = 1;
	if (len < 2 || el[0] != '<') {
		*n = 0;
		return el;
	}
	for (; i < len && name_char(el[i]); i++)
		if (el[i] == ':')
			from = i + 1;
	*n = i - from;
	return el + from;
}

int scan_is(const char *el, size_t len, const char *name)
{
	size_t n;
	const char *p = scan_name(el, len, &n);
	return n == strlen(name) && memcmp(p, name, n) == 0;
}

const char *scan_attr(const char *el, size_t len, const char *attr, size_t *n)
{
	size_t alen = strlen(attr);
	size_t i = 1;
	while (i < len && name_char(el[i]))
		i++;
	while (i < len && el[i] != '>') {
		while (i < len && (el[i] == ' ' || el[i] == '\t' || el[i] == '\r' || el[i] == '\n'))
			i++;
		size_t name = i;
		while (i < len && el[i] != '=' && el[i] != '>' && el[i] != '/' && el[i] != ' ')
			i++;
		size_t name_len = i - name;
		while (i < len && el[i] == ' ')
			i++;
		if (i >= len || el[i] != '=') {
			if (i < len && el[i] == '/')
				i++;
			if (name_len == 0 && i < len && el[i] != '>')
				i++;   /* stray byte: step over it rather than loop */
			continue;
		}
		i++;
		while (i < len && el[i] == ' ')
			i++;
		if (i >= len || (el[i] != '\'' && el[i] != '"'))
			return NULL;
		char quote = el[i++];
		size_t val = i;
		while (i < len && el[i] != quote)
			i++;
		if (i >= len)
			return NULL;
		if (name_len == alen && memcmp(el + name, attr, alen) == 0) {
			*n = i - val;
			return el + val;
		}
		i++;
	}
	return NULL;
}

const char *scan_child_text(const char *el, size_t len, const char *tag, size_t *n)
{
	char open[64];
	size_t tl = strlen(tag);
	if (tl + 3 > sizeof(open))
		return NULL;
	open[0] = '<';
	memcpy(open + 1, tag, tl);
	open[tl + 1] = '>';
	const char *p = memmem(el, len, open, tl + 2);
	if (!p)
		return NULL;
	p += tl + 2;
	const char *lt = memchr(p, '<', (size_t)(el + len - p));
	if (!lt)
		return NULL;
	*n = (size_t)(lt - p);
	return p;
}
