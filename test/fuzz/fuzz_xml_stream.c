/* fuzz-sources: xmpp/xml_stream.c xmpp/xml_tree.c core/buf.c core/pl.c */
/*
 * fuzz_xml_stream.c - the XMPP stream parser and serializer on arbitrary
 * bytes, fed in arbitrary pieces.
 *
 * Input: byte 0 holds options (bit 0: start with a valid stream header so
 * the stanza paths get explored; bit 1: restart the stream from inside the
 * callback of any stanza named "starttls"; bit 2: shrink whenever idle;
 * bits 3-7: a small stanza limit), byte 1 the piece size, the rest is fed.
 *
 * Beyond "no crash", every stanza must survive serialize -> parse ->
 * serialize unchanged, a copy must serialize like the original, error()
 * comes at most once, and a dead stream stays dead.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/pl.h"
#include "xmpp/xml.h"

#define HDR "<stream:stream xmlns='jabber:client' " \
	"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>"

struct run {
	struct xml_stream *s;
	int restart_on_starttls;
	int errors;
	int stanzas;
	struct buf reparsed;   /* what the nested parse of a stanza produced */
};

static void ignore_open(void *ud, struct xml_node *el)
{
	PL_UNUSED(ud);
	xml_free(el);
}

static void ignore_close(void *ud)
{
	PL_UNUSED(ud);
}

static void count_error(void *ud, enum xml_stream_error e, const char *detail)
{
	struct run *r = ud;

	if (!detail || !*xml_stream_error_condition(e))
		abort();
	r->errors++;
}

static void nested_stanza(void *ud, struct xml_node *el)
{
	struct run *r = ud;

	r->stanzas++;
	xml_serialize(el, "jabber:client", &r->reparsed);
	xml_free(el);
}

static const struct xml_stream_handler nested = {
	ignore_open, nested_stanza, ignore_close, count_error,
};

/* serialize -> parse -> serialize must be a fixed point */
static void check_round_trip(const struct xml_node *el)
{
	struct buf once = { 0 }, doc = { 0 };
	struct run r = { 0 };

	xml_serialize(el, "jabber:client", &once);
	buf_append_str(&doc, HDR);
	buf_append(&doc, buf_head(&once), buf_used(&once));
	r.s = xml_stream_new(&nested, &r, buf_used(&doc) + 1);
	if (xml_stream_feed(r.s, (const char *)buf_head(&doc), buf_used(&doc)) != PL_OK ||
	    r.errors || r.stanzas != 1 || buf_used(&r.reparsed) != buf_used(&once) ||
	    memcmp(buf_head(&r.reparsed), buf_head(&once), buf_used(&once)) != 0)
		abort();
	xml_stream_free(r.s);
	buf_free(&r.reparsed);

	struct xml_node *copy = xml_copy(el);
	struct buf again = { 0 };
	xml_serialize(copy, "jabber:client", &again);
	if (buf_used(&again) != buf_used(&once) ||
	    memcmp(buf_head(&again), buf_head(&once), buf_used(&once)) != 0)
		abort();
	xml_free(copy);
	buf_free(&again);
	buf_free(&once);
	buf_free(&doc);
}

static void on_stanza(void *ud, struct xml_node *el)
{
	struct run *r = ud;

	r->stanzas++;
	check_round_trip(el);
	(void)xml_text(el);
	if (r->restart_on_starttls && strcmp(el->name, "starttls") == 0)
		xml_stream_restart(r->s);
	xml_free(el);
}

static const struct xml_stream_handler top = {
	ignore_open, on_stanza, ignore_close, count_error,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t opt = data[0];
	size_t piece = data[1] ? data[1] : 4096;
	struct run r = { 0 };

	data += 2;
	size -= 2;
	r.restart_on_starttls = opt & 2;
	r.s = xml_stream_new(&top, &r, (opt >> 3) ? (size_t)(opt >> 3) * 64 : 0);
	int dead = 0;
	if (opt & 1 && xml_stream_feed(r.s, HDR, strlen(HDR)) != PL_OK)
		abort();
	size_t off = 0;
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece;
		int rc = xml_stream_feed(r.s, (const char *)data + off, n);
		if (rc == PL_AGAIN) {
			size_t used = xml_stream_consumed(r.s);
			if (used > n)
				abort();
			off += used;
			continue;
		}
		if (rc == PL_ERR) {
			dead = 1;
			break;
		}
		if (xml_stream_consumed(r.s) != n)
			abort();
		off += n;
		if (opt & 4)
			xml_stream_shrink(r.s);
	}
	if (r.errors > 1)
		abort();
	if (dead && xml_stream_feed(r.s, "<a/>", 4) != PL_ERR)
		abort();
	if (dead && r.errors > 1)
		abort();
	xml_stream_free(r.s);
	return 0;
}
