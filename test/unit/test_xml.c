/*
 * test_xml.c - the XMPP stream parser, element trees and serializer
 * (RFC 6120 §4 streams, §4.9 stream errors, §11 XML usage).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/pl.h"
#include "xmpp/xml.h"

#define HDR "<stream:stream xmlns='jabber:client' " \
	"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"

/* --- a recorder: every callback appends one line to a log ------------------ */

struct rec {
	struct buf log;
	struct xml_stream *s;
	int errors;
	enum xml_stream_error last_err;
	int restart_on;            /* restart from stanza() when its name matches... */
	const char *restart_name;
	int free_on_stanza;
	int free_on_error;
	struct xml_node *kept;     /* last stanza, when keep is set */
	int keep;
};

static void on_open(void *ud, struct xml_node *el)
{
	struct rec *r = ud;
	const char *to = xml_attr(el, "to");

	buf_printf(&r->log, "open[%s|%s|to=%s]\n", el->name, el->ns, to ? to : "-");
	xml_free(el);
}

static void on_stanza(void *ud, struct xml_node *el)
{
	struct rec *r = ud;

	buf_append_str(&r->log, "stanza ");
	xml_serialize(el, "jabber:client", &r->log);
	buf_append_str(&r->log, "\n");
	if (r->restart_name && strcmp(el->name, r->restart_name) == 0)
		xml_stream_restart(r->s);
	if (r->free_on_stanza) {
		xml_stream_free(r->s);
		r->s = NULL;
	}
	if (r->keep) {
		xml_free(r->kept);
		r->kept = el;
		return;
	}
	xml_free(el);
}

static void on_close(void *ud)
{
	struct rec *r = ud;

	buf_append_str(&r->log, "close\n");
}

static void on_error(void *ud, enum xml_stream_error e, const char *detail)
{
	struct rec *r = ud;

	assert_non_null(detail);
	r->errors++;
	r->last_err = e;
	buf_printf(&r->log, "error %s\n", xml_stream_error_condition(e));
	if (r->free_on_error) {
		xml_stream_free(r->s);
		r->s = NULL;
	}
}

static const struct xml_stream_handler handler = {
	.stream_open = on_open,
	.stanza = on_stanza,
	.stream_close = on_close,
	.error = on_error,
};

static void rec_init(struct rec *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->s = xml_stream_new(&handler, r, max);
}

static void rec_done(struct rec *r)
{
	xml_stream_free(r->s);
	xml_free(r->kept);
	buf_free(&r->log);
}

static const char *rec_log(struct rec *r)
{
	return buf_cstr(&r->log);
}

/* Feed in pieces of `step` bytes (0: all at once); stops at the first
 * non-PL_OK and returns it. */
static int feed(struct rec *r, const char *data, size_t len, size_t step)
{
	if (step == 0)
		step = len ? len : 1;
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		int rc = xml_stream_feed(r->s, data + i, n);
		if (rc != PL_OK)
			return rc;
	}
	return PL_OK;
}

static int feeds(struct rec *r, const char *data)
{
	return feed(r, data, strlen(data), 0);
}

/* Parse a whole document and return the log (caller frees). */
static char *parse_log(const char *doc, size_t len, size_t step, size_t max)
{
	struct rec r;

	rec_init(&r, max);
	feed(&r, doc, len, step);
	char *out = pl_strdup(rec_log(&r));
	rec_done(&r);
	return out;
}

/* --- streams and stanzas ------------------------------------------------------ */

static const char conversation[] =
	"<?xml version='1.0'?>" HDR
	"<message to='juliet@example.com/balcony' xml:lang='en' type='chat' id='a&amp;b'>"
	"<body>Wherefore art thou, Romeo? &lt;3 caf\xc3\xa9 \xe2\x98\xba \xf0\x9f\x8d\xba"
	"&#x263A;&#9;<![CDATA[<not-a-tag/> & friends]]></body>"
	"<x:thread xmlns:x='jabber:client'>t1</x:thread>"
	"<active xmlns='http://jabber.org/protocol/chatstates'/>"
	"</message>\n  \t\r\n"
	"<iq type='get' id='1'><query xmlns='jabber:iq:roster' ver=''/></iq> "
	"<presence><show>away</show><c xmlns='http://jabber.org/protocol/caps' "
	"hash='sha-1' node='n' ver='v='/></presence>"
	"</stream:stream>";

static const char conversation_log[] =
	"open[stream|http://etherx.jabber.org/streams|to=example.com]\n"
	"stanza <message to='juliet@example.com/balcony' xml:lang='en' type='chat' id='a&amp;b'>"
	"<body>Wherefore art thou, Romeo? &lt;3 caf\xc3\xa9 \xe2\x98\xba \xf0\x9f\x8d\xba"
	"\xe2\x98\xba\t&lt;not-a-tag/&gt; &amp; friends</body>"
	"<thread>t1</thread>"
	"<active xmlns='http://jabber.org/protocol/chatstates'/>"
	"</message>\n"
	"stanza <iq type='get' id='1'><query xmlns='jabber:iq:roster' ver=''/></iq>\n"
	"stanza <presence><show>away</show><c xmlns='http://jabber.org/protocol/caps' "
	"hash='sha-1' node='n' ver='v='/></presence>\n"
	"close\n";

static void rfc6120_4_stream_whole_conversation(void **state)
{
	PL_UNUSED(state);
	char *log = parse_log(conversation, strlen(conversation), 0, 0);
	assert_string_equal(log, conversation_log);
	free(log);
}

static void rfc6120_4_stanzas_split_at_every_byte_boundary(void **state)
{
	PL_UNUSED(state);
	size_t n = strlen(conversation);

	for (size_t cut = 1; cut < n; cut++) {
		struct rec r;
		rec_init(&r, 0);
		assert_int_equal(feed(&r, conversation, cut, 0), PL_OK);
		assert_int_equal(feed(&r, conversation + cut, n - cut, 0), PL_OK);
		if (strcmp(rec_log(&r), conversation_log) != 0)
			fail_msg("split at %zu:\n%s", cut, rec_log(&r));
		rec_done(&r);
	}
	for (size_t step = 1; step <= 7; step++) {
		char *log = parse_log(conversation, n, step, 0);
		assert_string_equal(log, conversation_log);
		free(log);
	}
}

static void rfc6120_4_many_stanzas_in_one_chunk(void **state)
{
	PL_UNUSED(state);
	struct buf doc = { 0 };
	struct rec r;
	int count = 0;

	buf_append_str(&doc, HDR);
	for (int i = 0; i < 2000; i++)
		buf_printf(&doc, "<message id='m%d'><body>%d</body></message>%s", i, i,
			   i % 3 ? "" : " ");
	rec_init(&r, 1000);
	assert_int_equal(feed(&r, (const char *)buf_head(&doc), buf_used(&doc), 0), PL_OK);
	const char *log = rec_log(&r);
	for (const char *p = log; (p = strstr(p, "stanza <message")); p++)
		count++;
	assert_int_equal(count, 2000);
	assert_non_null(strstr(log, "stanza <message id='m1999'><body>1999</body></message>\n"));
	assert_int_equal(r.errors, 0);
	assert_true(xml_stream_idle(r.s));
	rec_done(&r);
	buf_free(&doc);
}

static void rfc6120_4_7_stream_header_attributes_and_content_ns(void **state)
{
	PL_UNUSED(state);
	struct rec r;

	rec_init(&r, 0);
	assert_string_equal(xml_stream_content_ns(r.s), "");
	assert_int_equal(feeds(&r, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
			      "xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
			      "to='example.net' from='example.com' xml:lang='en'>"), PL_OK);
	assert_string_equal(rec_log(&r), "open[stream|http://etherx.jabber.org/streams|to=example.net]\n");
	assert_string_equal(xml_stream_content_ns(r.s), "jabber:server");
	assert_int_equal(feeds(&r, "<db:result from='example.com' to='example.net'>key</db:result>"),
			 PL_OK);
	assert_non_null(strstr(rec_log(&r),
			       "stanza <result xmlns='jabber:server:dialback' from='example.com' "
			       "to='example.net'>key</result>\n"));
	rec_done(&r);
}

static void xml_names_prefixes_resolve_to_namespaces(void **state)
{
	PL_UNUSED(state);
	struct rec r;

	rec_init(&r, 0);
	r.keep = 1;
	assert_int_equal(feeds(&r, HDR
		"<iq type='set' id='p1' xmlns:ps='http://jabber.org/protocol/pubsub'>"
		"<ps:pubsub><ps:publish node='n'><item xmlns='urn:x' xmlns:y='urn:y' y:a='1'"
		" xml:lang='de'>v</item></ps:publish></ps:pubsub></iq>"), PL_OK);
	struct xml_node *iq = r.kept;
	assert_non_null(iq);
	assert_string_equal(iq->name, "iq");
	assert_string_equal(iq->ns, "jabber:client");
	struct xml_node *ps = xml_child(iq, "pubsub", "http://jabber.org/protocol/pubsub");
	assert_non_null(ps);
	struct xml_node *pub = xml_child(ps, "publish", NULL);
	assert_string_equal(pub->ns, "http://jabber.org/protocol/pubsub");
	assert_string_equal(xml_attr(pub, "node"), "n");
	struct xml_node *item = xml_first_child_el(pub);
	assert_true(xml_is(item, "item", "urn:x"));
	assert_string_equal(xml_attr(item, "y:a"), "1");
	assert_string_equal(item->attrs->ns, "urn:y");
	assert_string_equal(xml_attr(item, "xml:lang"), "de");
	assert_null(xml_attr(item, "xmlns"));
	assert_null(xml_attr(iq, "xmlns:ps"));
	assert_string_equal(xml_text(item), "v");
	/* and it serializes back with the declarations it needs */
	struct buf out = { 0 };
	xml_serialize(iq, "jabber:client", &out);
	assert_string_equal(buf_cstr(&out),
		"<iq type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
		"<publish node='n'><item xmlns='urn:x' xmlns:y='urn:y' y:a='1' xml:lang='de'>v"
		"</item></publish></pubsub></iq>");
	buf_free(&out);
	rec_done(&r);
}

static void xml_names_long_prefixed_attribute_name(void **state)
{
	PL_UNUSED(state);
	struct buf doc = { 0 }, name = { 0 };
	struct rec r;

	buf_append_str(&name, "p:");
	for (int i = 0; i < 300; i++)
		buf_append_str(&name, "n");
	buf_printf(&doc, HDR "<iq xmlns:p='urn:p' %s='v'/>", buf_cstr(&name));
	rec_init(&r, 0);
	r.keep = 1;
	assert_int_equal(feed(&r, (const char *)buf_head(&doc), buf_used(&doc), 0), PL_OK);
	assert_non_null(r.kept);
	assert_string_equal(xml_attr(r.kept, buf_cstr(&name)), "v");
	assert_string_equal(r.kept->attrs->ns, "urn:p");
	rec_done(&r);
	buf_free(&doc);
	buf_free(&name);
}

static void rfc6120_4_4_stream_close_then_no_more_input(void **state)
{
	PL_UNUSED(state);
	struct rec r;

	rec_init(&r, 0);
	assert_int_equal(feeds(&r, HDR "<presence/></stream:stream>"), PL_OK);
	assert_non_null(strstr(rec_log(&r), "stanza <presence/>\nclose\n"));
	assert_int_equal(feeds(&r, "<presence/>"), PL_ERR);
	assert_int_equal(r.errors, 0);
	rec_done(&r);
}

static void rfc6120_4_6_whitespace_keepalives_ignored(void **state)
{
	PL_UNUSED(state);
	struct rec r;

	rec_init(&r, 64);
	assert_int_equal(feeds(&r, HDR), PL_OK);
	/* far more whitespace than the stanza limit, in keepalive-sized pieces */
	for (int i = 0; i < 500; i++)
		assert_int_equal(feeds(&r, " "), PL_OK);
	assert_int_equal(feeds(&r, "\n\r\t  <presence/>  "), PL_OK);
	assert_true(xml_stream_idle(r.s));
	assert_int_equal(r.errors, 0);
	assert_non_null(strstr(rec_log(&r), "stanza <presence/>\n"));
	rec_done(&r);
}

/* --- stream errors (RFC 6120 §4.9.3, §11) --------------------------------------- */

struct bad_case {
	const char *name;
	const char *input;
	enum xml_stream_error err;
};

static const struct bad_case bad_cases[] = {
	{ "internal subset", "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>" HDR,
	  XML_ERR_RESTRICTED_XML },
	{ "doctype", "<!DOCTYPE stream>" HDR, XML_ERR_RESTRICTED_XML },
	{ "processing instruction", HDR "<?evil x?>", XML_ERR_RESTRICTED_XML },
	{ "PI inside a stanza", HDR "<message><?evil x?></message>", XML_ERR_RESTRICTED_XML },
	{ "comment", HDR "<!-- hi -->", XML_ERR_RESTRICTED_XML },
	{ "comment inside a stanza", HDR "<message><!-- hi --></message>", XML_ERR_RESTRICTED_XML },
	{ "entity reference in text", HDR "<message><body>&nbsp;</body></message>",
	  XML_ERR_RESTRICTED_XML },
	{ "entity reference in attribute", HDR "<message to='&x;'/>", XML_ERR_RESTRICTED_XML },
	{ "invalid UTF-8 in text", HDR "<message><body>\xc3\x28</body></message>",
	  XML_ERR_NOT_WELL_FORMED },
	{ "overlong UTF-8 in attribute", HDR "<message to='\xc0\xaf'/>", XML_ERR_NOT_WELL_FORMED },
	{ "UTF-8 surrogate", HDR "<message><body>\xed\xa0\x80</body></message>",
	  XML_ERR_NOT_WELL_FORMED },
	{ "Latin-1 despite an encoding declaration",
	  "<?xml version='1.0' encoding='ISO-8859-1'?>" HDR "<message><body>caf\xe9</body></message>",
	  XML_ERR_NOT_WELL_FORMED },
	{ "control character", HDR "<message><body>\x01</body></message>", XML_ERR_NOT_WELL_FORMED },
	{ "mismatched end tag", HDR "<message><body></message>", XML_ERR_NOT_WELL_FORMED },
	{ "duplicate attribute", HDR "<message to='a' to='b'/>", XML_ERR_NOT_WELL_FORMED },
	{ "unbound prefix", HDR "<foo:message/>", XML_ERR_NOT_WELL_FORMED },
	{ "bare ampersand", HDR "<message><body>a & b</body></message>", XML_ERR_NOT_WELL_FORMED },
	{ "ampersand without semicolon", HDR "<message><body>a &b</body></message>",
	  XML_ERR_NOT_WELL_FORMED },
	{ "wrong stream namespace",
	  "<stream:stream xmlns:stream='http://example.com/streams' xmlns='jabber:client'>",
	  XML_ERR_INVALID_NAMESPACE },
	{ "unbound stream prefix", "<stream:stream xmlns='jabber:client'>",
	  XML_ERR_INVALID_NAMESPACE },
	/* No XMPP element lives there, and none could be written back out:
	 * the xml namespace may not be declared as a default namespace. */
	{ "element in the xml namespace", HDR "<xml:s/>", XML_ERR_INVALID_NAMESPACE },
	{ "child in the xml namespace", HDR "<message><xml:lang/></message>",
	  XML_ERR_INVALID_NAMESPACE },
	{ "root is not stream", "<features xmlns='http://etherx.jabber.org/streams'>",
	  XML_ERR_BAD_FORMAT },
	{ "text between stanzas", HDR "hello <presence/>", XML_ERR_BAD_FORMAT },
	{ "text between stanzas, no tag after it", HDR "  hello", XML_ERR_BAD_FORMAT },
};

static void rfc6120_4_9_3_errors_reported_once_then_dead(void **state)
{
	PL_UNUSED(state);
	for (size_t i = 0; i < PL_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		for (size_t step = 0; step <= 1; step++) {
			struct rec r;
			rec_init(&r, 0);
			int rc = feed(&r, c->input, strlen(c->input), step);
			if (rc != PL_ERR || r.errors != 1 || r.last_err != c->err)
				fail_msg("%s (step %zu): rc %d errors %d got %s want %s", c->name, step,
					 rc, r.errors, xml_stream_error_condition(r.last_err),
					 xml_stream_error_condition(c->err));
			assert_null(strstr(rec_log(&r), "stanza"));
			/* the stream stays dead, silently */
			assert_int_equal(feeds(&r, "<presence/>"), PL_ERR);
			assert_int_equal(r.errors, 1);
			rec_done(&r);
		}
	}
}

static void rfc6120_11_predefined_entities_and_char_refs_allowed(void **state)
{
	PL_UNUSED(state);
	const char *doc = HDR "<message to='&lt;&gt;&amp;&apos;&quot;&#65;'>"
			  "<body>&lt;&gt;&amp;&apos;&quot;&#65;&#x42;</body></message>";
	char *log = parse_log(doc, strlen(doc), 0, 0);
	assert_non_null(strstr(log, "stanza <message to='&lt;&gt;&amp;&apos;&quot;A'>"
				    "<body>&lt;&gt;&amp;'\"AB</body></message>\n"));
	free(log);
}

static void rfc6120_4_9_3_12_policy_violation_exact_stanza_size(void **state)
{
	PL_UNUSED(state);
	/* <a>...</a> of exactly 40 bytes passes a 40-byte limit, 41 does not,
	 * however the input is split and whatever whitespace precedes it */
	const char *fits = "<a>012345678901234567890123456789012</a>";
	const char *over = "<a>0123456789012345678901234567890123</a>";
	assert_int_equal(strlen(fits), 40);
	for (size_t step = 0; step <= 3; step++) {
		struct rec r;
		rec_init(&r, 40);
		assert_int_equal(feeds(&r, HDR), PL_OK);
		assert_int_equal(feed(&r, fits, strlen(fits), step), PL_OK);
		assert_int_equal(feeds(&r, "   \n"), PL_OK);
		assert_int_equal(feed(&r, fits, strlen(fits), step), PL_OK);
		assert_int_equal(r.errors, 0);
		assert_int_equal(feed(&r, over, strlen(over), step), PL_ERR);
		assert_int_equal(r.last_err, XML_ERR_POLICY_VIOLATION);
		rec_done(&r);
	}
}

static void rfc6120_4_9_3_12_policy_violation_unterminated_attribute(void **state)
{
	PL_UNUSED(state);
	/* an attribute value that never ends produces no SAX event at all:
	 * the limit must still trip while the bytes pile up */
	struct rec r;
	char chunk[100];

	rec_init(&r, 1000);
	memset(chunk, 'x', sizeof(chunk));
	assert_int_equal(feeds(&r, HDR "<message to='"), PL_OK);
	int rc = PL_OK, sent = 0;
	while (rc == PL_OK && sent < 100)
		rc = xml_stream_feed(r.s, chunk, sizeof(chunk)), sent++;
	assert_int_equal(rc, PL_ERR);
	assert_int_equal(r.last_err, XML_ERR_POLICY_VIOLATION);
	assert_true(sent * 100 + 13 > 1000 && sent * 100 + 13 <= 1100);
	rec_done(&r);

	/* the same with an unterminated start tag name and with one huge
	 * chunk (the check runs inside the feed, not only between feeds) */
	rec_init(&r, 1000);
	char *big = pl_malloc(100000);
	memset(big, 'a', 100000);
	big[0] = '<';
	assert_int_equal(feeds(&r, HDR), PL_OK);
	assert_int_equal(xml_stream_feed(r.s, big, 100000), PL_ERR);
	assert_int_equal(r.last_err, XML_ERR_POLICY_VIOLATION);
	free(big);
	rec_done(&r);

	/* and an over-long stream header */
	rec_init(&r, 1000);
	big = pl_malloc(100000);
	memset(big, 'a', 100000);
	memcpy(big, "<stream:stream to='", 19);
	assert_int_equal(xml_stream_feed(r.s, big, 100000), PL_ERR);
	assert_int_equal(r.last_err, XML_ERR_POLICY_VIOLATION);
	free(big);
	rec_done(&r);
}

static void rfc6120_4_9_3_12_policy_violation_huge_text_in_one_chunk(void **state)
{
	PL_UNUSED(state);
	struct buf doc = { 0 };
	struct rec r;

	buf_append_str(&doc, HDR "<message><body>");
	for (int i = 0; i < 20000; i++)
		buf_append_str(&doc, "0123456789");
	buf_append_str(&doc, "</body></message>");
	rec_init(&r, 65536);
	assert_int_equal(feed(&r, (const char *)buf_head(&doc), buf_used(&doc), 0), PL_ERR);
	assert_int_equal(r.last_err, XML_ERR_POLICY_VIOLATION);
	assert_null(strstr(rec_log(&r), "stanza"));
	rec_done(&r);
	buf_free(&doc);
}

static void nest(struct buf *b, int depth)
{
	for (int i = 0; i < depth; i++)
		buf_append_str(b, "<a>");
	for (int i = 0; i < depth; i++)
		buf_append_str(b, "</a>");
}

static void rfc6120_4_9_3_12_policy_violation_too_deep(void **state)
{
	PL_UNUSED(state);
	struct buf ok = { 0 }, deep = { 0 };
	struct rec r;

	buf_append_str(&ok, HDR);
	nest(&ok, XML_MAX_DEPTH);
	rec_init(&r, 0);
	assert_int_equal(feed(&r, (const char *)buf_head(&ok), buf_used(&ok), 0), PL_OK);
	assert_int_equal(r.errors, 0);
	assert_non_null(strstr(rec_log(&r), "stanza <a><a>"));
	rec_done(&r);

	buf_append_str(&deep, HDR);
	nest(&deep, XML_MAX_DEPTH + 1);
	rec_init(&r, 0);
	assert_int_equal(feed(&r, (const char *)buf_head(&deep), buf_used(&deep), 1), PL_ERR);
	assert_int_equal(r.last_err, XML_ERR_POLICY_VIOLATION);
	rec_done(&r);
	buf_free(&ok);
	buf_free(&deep);
}

static void error_conditions_are_rfc6120_names(void **state)
{
	PL_UNUSED(state);
	assert_string_equal(xml_stream_error_condition(XML_ERR_NOT_WELL_FORMED), "not-well-formed");
	assert_string_equal(xml_stream_error_condition(XML_ERR_POLICY_VIOLATION), "policy-violation");
	assert_string_equal(xml_stream_error_condition(XML_ERR_RESTRICTED_XML), "restricted-xml");
	assert_string_equal(xml_stream_error_condition(XML_ERR_INVALID_NAMESPACE), "invalid-namespace");
	assert_string_equal(xml_stream_error_condition(XML_ERR_BAD_FORMAT), "bad-format");
}

/* --- restarts (STARTTLS, SASL) and frees from inside callbacks ---------------------- */

static void rfc6120_5_4_3_3_restart_inside_starttls_callback(void **state)
{
	PL_UNUSED(state);
	/* the TLS ClientHello may follow <starttls/> in the same read: the
	 * parser must stop right after the element and say where */
	static const char first[] = HDR "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
	static const char after[] = "\x16\x03\x01\x02\x00<presence/>";
	char data[sizeof(first) + sizeof(after)];
	size_t flen = strlen(first), alen = sizeof(after) - 1;

	memcpy(data, first, flen);
	memcpy(data + flen, after, alen);
	for (size_t step = 0; step <= 1; step++) {
		struct rec r;
		rec_init(&r, 0);
		r.restart_name = "starttls";
		size_t off = 0;
		int rc = PL_OK;
		size_t n = step ? 1 : flen + alen;
		while (rc == PL_OK && off < flen + alen) {
			size_t k = flen + alen - off < n ? flen + alen - off : n;
			rc = xml_stream_feed(r.s, data + off, k);
			off += rc == PL_AGAIN ? xml_stream_consumed(r.s) : k;
		}
		assert_int_equal(rc, PL_AGAIN);
		assert_int_equal(off, flen);
		assert_null(strstr(rec_log(&r), "presence"));
		assert_int_equal(r.errors, 0);
		/* the next bytes are a new stream */
		assert_string_equal(xml_stream_content_ns(r.s), "");
		assert_int_equal(feeds(&r, "<?xml version='1.0'?>" HDR "<presence/>"), PL_OK);
		assert_non_null(strstr(rec_log(&r), "open[stream|http://etherx.jabber.org/streams|"
					       "to=example.com]\nstanza <presence/>\n"));
		rec_done(&r);
	}
}

static void rfc6120_6_4_6_restart_after_sasl_success_pipelined(void **state)
{
	PL_UNUSED(state);
	/* a restart in the middle of a chunk holding many stanzas: the bytes
	 * after the cut are fed again and parsed as the new stream */
	static const char doc[] = HDR "<iq id='1'/><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
		HDR "<iq id='2'/><iq id='3'/>";
	struct rec r;

	rec_init(&r, 0);
	r.restart_name = "auth";
	size_t len = strlen(doc);
	assert_int_equal(xml_stream_feed(r.s, doc, len), PL_AGAIN);
	size_t used = xml_stream_consumed(r.s);
	assert_memory_equal(doc + used, HDR, strlen(HDR));
	r.restart_name = NULL;
	assert_int_equal(xml_stream_feed(r.s, doc + used, len - used), PL_OK);
	assert_int_equal(xml_stream_consumed(r.s), len - used);
	const char *log = rec_log(&r);
	assert_non_null(strstr(log, "stanza <iq id='1'/>\nstanza <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\n"
				    "open[stream|http://etherx.jabber.org/streams|to=example.com]\n"
				    "stanza <iq id='2'/>\nstanza <iq id='3'/>\n"));
	rec_done(&r);
}

static void restart_outside_a_callback_expects_a_new_header(void **state)
{
	PL_UNUSED(state);
	struct rec r;

	rec_init(&r, 0);
	assert_int_equal(feeds(&r, HDR "<presence/>"), PL_OK);
	xml_stream_restart(r.s);
	assert_false(xml_stream_idle(r.s));
	assert_int_equal(feeds(&r, "<presence/>"), PL_ERR);
	assert_int_equal(r.last_err, XML_ERR_INVALID_NAMESPACE);
	rec_done(&r);
}

static void free_inside_a_callback_is_deferred(void **state)
{
	PL_UNUSED(state);
	struct rec r;

	rec_init(&r, 0);
	r.free_on_stanza = 1;
	assert_int_equal(feeds(&r, HDR "<presence/><presence id='never'/>"), PL_ERR);
	assert_null(r.s);
	assert_null(strstr(rec_log(&r), "never"));
	rec_done(&r);
}

static void free_inside_the_error_callback_is_deferred(void **state)
{
	PL_UNUSED(state);
	/* errors come from inside libxml2 (a comment) and from the checks
	 * after it returns (an unterminated start tag): both paths */
	static const char *const inputs[] = { HDR "<!-- x -->", HDR "<message to='xxxxxxxxxxxxxx" };
	for (size_t i = 0; i < PL_ARRAY_LEN(inputs); i++) {
		struct rec r;
		rec_init(&r, 10);
		r.free_on_error = 1;
		assert_int_equal(feeds(&r, inputs[i]), PL_ERR);
		assert_null(r.s);
		assert_int_equal(r.errors, 1);
		rec_done(&r);
	}
}

/* --- idle streams shrink ------------------------------------------------------------ */

static void idle_stream_shrinks_and_resumes_with_its_namespaces(void **state)
{
	PL_UNUSED(state);
	struct rec r;

	rec_init(&r, 0);
	assert_false(xml_stream_idle(r.s));
	assert_int_equal(feeds(&r, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
			      "xmlns='jabber:server' xmlns:db='jabber:server:dialback'>"), PL_OK);
	assert_true(xml_stream_idle(r.s));
	assert_int_equal(feeds(&r, "<db:result"), PL_OK);
	assert_false(xml_stream_idle(r.s));
	assert_int_equal(feeds(&r, ">k1</db:result>  "), PL_OK);
	assert_true(xml_stream_idle(r.s));
	xml_stream_shrink(r.s);
	assert_true(xml_stream_idle(r.s));
	/* the declarations of the header are in force after the shrink */
	assert_int_equal(feeds(&r, "<db:result>k2</db:result><message/>"), PL_OK);
	xml_stream_shrink(r.s);
	assert_int_equal(feeds(&r, "</stream:stream>"), PL_OK);
	assert_int_equal(r.errors, 0);
	assert_string_equal(rec_log(&r),
		"open[stream|http://etherx.jabber.org/streams|to=-]\n"
		"stanza <result xmlns='jabber:server:dialback'>k1</result>\n"
		"stanza <result xmlns='jabber:server:dialback'>k2</result>\n"
		"stanza <message xmlns='jabber:server'/>\n"
		"close\n");
	rec_done(&r);
}

static void shrink_is_refused_mid_stanza(void **state)
{
	PL_UNUSED(state);
	struct rec r;

	rec_init(&r, 0);
	assert_int_equal(feeds(&r, HDR "<message><body>hel"), PL_OK);
	assert_false(xml_stream_idle(r.s));
	xml_stream_shrink(r.s);
	assert_int_equal(feeds(&r, "lo</body></message>"), PL_OK);
	assert_non_null(strstr(rec_log(&r), "stanza <message><body>hello</body></message>\n"));
	rec_done(&r);
}

/* --- trees and the serializer ----------------------------------------------------------- */

static char *ser(const struct xml_node *el, const char *default_ns)
{
	struct buf b = { 0 };

	xml_serialize(el, default_ns, &b);
	char *s = pl_strdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

static void serializer_exact_output(void **state)
{
	PL_UNUSED(state);
	struct xml_node *m = xml_new("message", "jabber:client");
	xml_set_attr(m, "to", "romeo@example.net");
	xml_set_attr(m, "type", "chat");
	xml_set_attr(m, "xml:lang", "en");
	struct xml_node *body = xml_add_child(m, "body", NULL);
	xml_add_text(body, "a < b & c > d 'q' \"dq\"", 22);
	struct xml_node *sent = xml_add_child(m, "sent", "urn:xmpp:carbons:2");
	struct xml_node *fwd = xml_add_child(sent, "forwarded", "urn:xmpp:forward:0");
	struct xml_node *inner = xml_add_child(fwd, "message", "jabber:client");
	xml_add_child(inner, "body", NULL);

	char *s = ser(m, "jabber:client");
	assert_string_equal(s,
		"<message to='romeo@example.net' type='chat' xml:lang='en'>"
		"<body>a &lt; b &amp; c &gt; d 'q' \"dq\"</body>"
		"<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
		"<message xmlns='jabber:client'><body/></message></forwarded></sent></message>");
	free(s);
	/* standalone: the top element declares its namespace */
	s = ser(body, NULL);
	assert_string_equal(s, "<body xmlns='jabber:client'>a &lt; b &amp; c &gt; d 'q' \"dq\"</body>");
	free(s);
	/* from a jabber:server stream everything jabber:client is declared */
	s = ser(inner, "jabber:server");
	assert_string_equal(s, "<message xmlns='jabber:client'><body/></message>");
	free(s);
	xml_free(m);

	/* stream-level elements take the stream: prefix inside a stream */
	struct xml_node *f = xml_new("features", XML_NS_STREAMS);
	struct xml_node *mech = xml_add_child(f, "mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl");
	struct xml_node *m1 = xml_add_child(mech, "mechanism", NULL);
	xml_add_text(m1, "SCRAM-SHA-1", 11);
	s = ser(f, "jabber:client");
	assert_string_equal(s, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
			       "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>");
	free(s);
	s = ser(f, NULL);
	assert_string_equal(s, "<features xmlns='http://etherx.jabber.org/streams'>"
			       "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
			       "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></features>");
	free(s);
	xml_free(f);

	struct xml_node *e = xml_new("error", XML_NS_STREAMS);
	xml_add_child(e, "not-well-formed", "urn:ietf:params:xml:ns:xmpp-streams");
	s = ser(e, "jabber:client");
	assert_string_equal(s, "<stream:error><not-well-formed "
			       "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
	free(s);
	xml_free(e);
}

static void serializer_escapes_attributes_and_repairs_bad_text(void **state)
{
	PL_UNUSED(state);
	struct xml_node *el = xml_new("x", "");
	xml_set_attr(el, "a", "<&>'\"\t\n\r");
	xml_add_text(el, "ok\r\x01\xff\xc3\xa9]]>", 11);
	char *s = ser(el, NULL);
	assert_string_equal(s, "<x a='&lt;&amp;&gt;&apos;&quot;&#9;&#10;&#13;'>ok&#13;"
			       "\xef\xbf\xbd\xc3\xa9]]&gt;</x>");
	free(s);
	xml_free(el);

	struct buf b = { 0 };
	xml_escape(&b, "a'b\"c", 5, 0);
	assert_string_equal(buf_cstr(&b), "a'b\"c");
	buf_free(&b);
}

static void escaping_round_trip_through_the_parser(void **state)
{
	PL_UNUSED(state);
	static const char nasty[] = "<>&'\" \t\n\r]]> caf\xc3\xa9 \xf0\x9f\x8d\xba";
	struct xml_node *m = xml_new("message", "jabber:client");
	xml_set_attr(m, "id", nasty);
	xml_add_text(xml_add_child(m, "body", NULL), nasty, strlen(nasty));
	struct buf doc = { 0 };
	buf_append_str(&doc, HDR);
	xml_serialize(m, "jabber:client", &doc);

	struct rec r;
	rec_init(&r, 0);
	r.keep = 1;
	assert_int_equal(feed(&r, (const char *)buf_head(&doc), buf_used(&doc), 0), PL_OK);
	assert_non_null(r.kept);
	assert_string_equal(xml_attr(r.kept, "id"), nasty);
	assert_string_equal(xml_text(xml_child(r.kept, "body", "jabber:client")), nasty);
	char *a = ser(m, "jabber:client"), *b = ser(r.kept, "jabber:client");
	assert_string_equal(a, b);
	free(a);
	free(b);
	rec_done(&r);
	buf_free(&doc);
	xml_free(m);
}

static void tree_builder_attrs_text_copy_remove(void **state)
{
	PL_UNUSED(state);
	struct xml_node *iq = xml_new("iq", "jabber:client");
	xml_set_attr(iq, "type", "get");
	xml_set_attr(iq, "id", "1");
	xml_set_attr(iq, "type", "result");
	assert_string_equal(xml_attr(iq, "type"), "result");
	xml_set_attr(iq, "id", NULL);
	assert_null(xml_attr(iq, "id"));
	xml_set_attr(iq, "nope", NULL);

	struct xml_node *q = xml_add_child(iq, "query", "jabber:iq:version");
	struct xml_node *name = xml_add_child(q, "name", NULL);
	assert_string_equal(name->ns, "jabber:iq:version");
	xml_add_text(name, "Par", 3);
	xml_add_text(name, "", 0);
	xml_add_text(name, "ley", 3);
	xml_add_child(name, "b", NULL);
	xml_add_text(name, "!", 1);
	assert_string_equal(xml_text(name), "Parley!");
	assert_string_equal(xml_text(q), "");
	assert_true(xml_is(q, "query", "jabber:iq:version"));
	assert_false(xml_is(q, "query", "jabber:client"));
	assert_null(xml_child(iq, "query", "jabber:client"));
	assert_ptr_equal(xml_child(iq, NULL, NULL), q);

	/* a long text grows across arena blocks */
	struct xml_node *big = xml_add_child(q, "os", NULL);
	for (int i = 0; i < 5000; i++)
		xml_add_text(big, "0123456789", 10);
	assert_int_equal(strlen(xml_text(big)), 50000);
	assert_true(xml_tree_size(iq) > 50000);

	struct xml_node *copy = xml_copy(iq);
	assert_null(copy->parent);
	char *a = ser(iq, "jabber:client"), *b = ser(copy, "jabber:client");
	assert_string_equal(a, b);
	free(b);
	xml_free(iq);   /* the copy owns its memory */
	b = ser(copy, "jabber:client");
	assert_string_equal(a, b);
	free(a);
	free(b);

	xml_remove(xml_child(xml_child(copy, "query", NULL), "os", NULL));
	xml_remove(xml_child(copy, "query", NULL));
	assert_null(xml_first_child_el(copy));
	xml_free(xml_child(copy, NULL, NULL));   /* refuses non-roots: no crash */
	a = ser(copy, "jabber:client");
	assert_string_equal(a, "<iq type='result'/>");
	free(a);
	xml_free(copy);
}

static void tree_wrap_copy_and_switch_namespace(void **state)
{
	PL_UNUSED(state);
	struct xml_node *msg = xml_new("message", "jabber:client");
	xml_set_attr(msg, "to", "a@b");
	xml_add_text(xml_add_child(msg, "body", NULL), "hi", 2);
	xml_add_child(msg, "x", "urn:x");

	struct xml_node *w = xml_new("message", "jabber:client");
	struct xml_node *fwd = xml_add_child(xml_add_child(w, "sent", "urn:xmpp:carbons:2"),
					     "forwarded", "urn:xmpp:forward:0");
	xml_add_copy(fwd, msg);
	xml_free(msg);
	char *s = ser(w, "jabber:client");
	assert_string_equal(s, "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded "
			       "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' to='a@b'>"
			       "<body>hi</body><x xmlns='urn:x'/></message></forwarded></sent></message>");
	free(s);

	xml_set_ns(w, "jabber:server");
	s = ser(w, "jabber:server");
	assert_string_equal(s, "<message><sent xmlns='urn:xmpp:carbons:2'><forwarded "
			       "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' to='a@b'>"
			       "<body>hi</body><x xmlns='urn:x'/></message></forwarded></sent></message>");
	free(s);
	assert_string_equal(w->ns, "jabber:server");
	xml_free(w);
}

static void one_allocation_for_a_small_stanza_copy(void **state)
{
	PL_UNUSED(state);
	struct xml_node *m = xml_new("message", "jabber:client");
	xml_set_attr(m, "to", "juliet@example.com");
	xml_add_text(xml_add_child(m, "body", NULL), "hello", 5);
	struct xml_node *c = xml_copy(m);
	/* an exact-size single block: header plus what the tree needs */
	assert_true(xml_tree_size(c) < 1024);
	xml_free(m);
	xml_free(c);
	xml_free(NULL);
}

/* A stanza that alternates a long prefixed namespace with the default one
 * is small as read and large as written (the tree keeps no prefixes): the
 * declarations the serialiser would add count against the stanza limit. */
static void namespace_declarations_cannot_inflate_a_stanza_past_the_limit(void **state)
{
	PL_UNUSED(state);
	struct rec r;
	char uri[201];
	memset(uri, 'u', 200);
	uri[200] = '\0';
	struct buf in = { 0 };
	buf_printf(&in, HDR "<message><p:x xmlns:p='urn:%s'>", uri);
	for (int i = 0; i < 20; i++)
		buf_append_str(&in, "<y><p:x>");
	for (int i = 0; i < 20; i++)
		buf_append_str(&in, "</p:x></y>");
	buf_append_str(&in, "</p:x></message>");
	/* 20 levels, each re-declaring the 204-byte URI: about 5 KB written
	 * from under 1 KB read, so a 4,000-byte limit refuses it... */
	rec_init(&r, 4000);
	r.keep = 1;
	assert_int_equal(feed(&r, (const char *)buf_head(&in), buf_used(&in), 0), PL_ERR);
	assert_int_equal(r.last_err, XML_ERR_POLICY_VIOLATION);
	assert_null(r.kept);
	rec_done(&r);
	/* ...and a limit above what it is written as lets it through, with the
	 * written form within that limit plus what was read. */
	rec_init(&r, 16000);
	r.keep = 1;
	assert_int_equal(feed(&r, (const char *)buf_head(&in), buf_used(&in), 0), PL_OK);
	assert_non_null(r.kept);
	struct buf out = { 0 };
	xml_serialize(r.kept, "jabber:client", &out);
	assert_true(buf_used(&out) > 4000);
	assert_true(buf_used(&out) <= 16000 + buf_used(&in));
	buf_free(&out);
	rec_done(&r);
	/* Attribute prefixes are declared on each element too. */
	buf_reset(&in);
	buf_printf(&in, HDR "<message xmlns:p='urn:%s'>", uri);
	for (int i = 0; i < 40; i++)
		buf_append_str(&in, "<y p:a='1'/>");
	buf_append_str(&in, "</message>");
	rec_init(&r, 4000);
	assert_int_equal(feed(&r, (const char *)buf_head(&in), buf_used(&in), 0), PL_ERR);
	assert_int_equal(r.last_err, XML_ERR_POLICY_VIOLATION);
	rec_done(&r);
	buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc6120_4_stream_whole_conversation),
		cmocka_unit_test(rfc6120_4_stanzas_split_at_every_byte_boundary),
		cmocka_unit_test(rfc6120_4_many_stanzas_in_one_chunk),
		cmocka_unit_test(rfc6120_4_7_stream_header_attributes_and_content_ns),
		cmocka_unit_test(xml_names_prefixes_resolve_to_namespaces),
		cmocka_unit_test(xml_names_long_prefixed_attribute_name),
		cmocka_unit_test(rfc6120_4_4_stream_close_then_no_more_input),
		cmocka_unit_test(rfc6120_4_6_whitespace_keepalives_ignored),
		cmocka_unit_test(rfc6120_4_9_3_errors_reported_once_then_dead),
		cmocka_unit_test(rfc6120_11_predefined_entities_and_char_refs_allowed),
		cmocka_unit_test(rfc6120_4_9_3_12_policy_violation_exact_stanza_size),
		cmocka_unit_test(rfc6120_4_9_3_12_policy_violation_unterminated_attribute),
		cmocka_unit_test(namespace_declarations_cannot_inflate_a_stanza_past_the_limit),
		cmocka_unit_test(rfc6120_4_9_3_12_policy_violation_huge_text_in_one_chunk),
		cmocka_unit_test(rfc6120_4_9_3_12_policy_violation_too_deep),
		cmocka_unit_test(error_conditions_are_rfc6120_names),
		cmocka_unit_test(rfc6120_5_4_3_3_restart_inside_starttls_callback),
		cmocka_unit_test(rfc6120_6_4_6_restart_after_sasl_success_pipelined),
		cmocka_unit_test(restart_outside_a_callback_expects_a_new_header),
		cmocka_unit_test(free_inside_a_callback_is_deferred),
		cmocka_unit_test(free_inside_the_error_callback_is_deferred),
		cmocka_unit_test(idle_stream_shrinks_and_resumes_with_its_namespaces),
		cmocka_unit_test(shrink_is_refused_mid_stanza),
		cmocka_unit_test(serializer_exact_output),
		cmocka_unit_test(serializer_escapes_attributes_and_repairs_bad_text),
		cmocka_unit_test(escaping_round_trip_through_the_parser),
		cmocka_unit_test(tree_builder_attrs_text_copy_remove),
		cmocka_unit_test(tree_wrap_copy_and_switch_namespace),
		cmocka_unit_test(one_allocation_for_a_small_stanza_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
