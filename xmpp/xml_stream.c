/*
 * xml_stream.c - the XMPP stream parser: libxml2's SAX2 push parser with
 * RFC 6120's restrictions, building one tree per top-level stanza.
 *
 * Byte accounting. Every limit is counted in bytes of input, as offsets in
 * the current libxml2 context (xmlByteConsumed, exact for UTF-8 without an
 * encoder, which XML_PARSE_IGNORE_ENC guarantees). `mark` is where the
 * pending stanza began: the end of the previous stanza, of whitespace
 * between stanzas, or of the stream header. Inside callbacks the parser's
 * position is checked against it; after each slice fed to libxml2 the bytes
 * it holds unparsed are too, since an unterminated attribute value or start
 * tag produces no callback at all.
 *
 * Re-entrancy. A callback may call xml_stream_restart() or
 * xml_stream_free(): we only note it, stop libxml2 (xmlStopParser) and act
 * once xmlParseChunk has returned, remembering where the input was cut.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "core/buf.h"
#include "core/pl.h"
#include "xmpp/xml.h"

#define DEFAULT_MAX_STANZA 65536
/* Bytes handed to libxml2 per xmlParseChunk: bounds how far past a limit
 * it can get before we look. */
#define SLICE 4096
/* An idle parser whose name dictionary grew past this (a peer inventing
 * element names) is recreated. */
#define DICT_RESET 4096
/* The stream header has its own floor so a tiny stanza limit still lets
 * a normal header through. */
#define HEADER_MIN_LIMIT 4096

enum stream_state { ST_HEADER, ST_OPEN, ST_CLOSED, ST_ERROR };

struct xml_stream {
	const struct xml_stream_handler *h;
	void *ud;
	size_t max;
	xmlParserCtxtPtr ctxt;          /* NULL before the first feed or shrunk */
	uint8_t state;
	uint8_t in_feed;
	uint8_t replaying;              /* feeding our own copy of the header */
	uint8_t restart_pending;
	uint8_t free_pending;
	uint8_t stopped;                /* xmlStopParser called on ctxt */
	unsigned depth;                 /* open elements, the stream root included */
	struct xml_node *stanza;        /* tree being built */
	struct xml_node *cur;
	uint64_t fed;                   /* bytes given to ctxt, replayed header included */
	uint64_t mark;
	uint64_t stop_at;               /* ctxt offset where a callback cut the input */
	size_t consumed;
	char *header;                   /* namespace-equivalent stream header to replay */
	size_t header_len;
	char *content_ns;
	/* Bytes the serialiser adds to this stanza beyond what was read:
	 * namespace declarations it repeats where the input used prefixes. */
	size_t decl_bytes;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml(void)
{
	xmlInitParser();
}

void xml_init(void)
{
	pthread_once(&init_once, init_libxml);
}

const char *xml_stream_error_condition(enum xml_stream_error e)
{
	switch (e) {
	case XML_ERR_NOT_WELL_FORMED: return "not-well-formed";
	case XML_ERR_POLICY_VIOLATION: return "policy-violation";
	case XML_ERR_RESTRICTED_XML: return "restricted-xml";
	case XML_ERR_INVALID_NAMESPACE: return "invalid-namespace";
	case XML_ERR_BAD_FORMAT: return "bad-format";
	}
	return "internal-server-error";
}

/* --- positions and failure ------------------------------------------------ */

static uint64_t pos_now(const struct xml_stream *s)
{
	long n = xmlByteConsumed(s->ctxt);

	return n < 0 ? 0 : (uint64_t)n;
}

/* The offset just past p, if p points into libxml2's input buffer. */
static int pos_of(const struct xml_stream *s, const xmlChar *p, uint64_t *out)
{
	xmlParserInputPtr in = s->ctxt->input;

	if (!in || p < in->base || p > in->end)
		return 0;
	*out = (uint64_t)in->consumed + (uint64_t)(p - in->base);
	return 1;
}

static void stop(struct xml_stream *s)
{
	if (s->stopped)
		return;
	s->stopped = 1;
	xmlStopParser(s->ctxt);
}

static void drop_stanza(struct xml_stream *s)
{
	xml_free(s->stanza);
	s->stanza = s->cur = NULL;
}

static void fail(struct xml_stream *s, enum xml_stream_error e, const char *detail)
{
	if (s->state == ST_ERROR)
		return;
	s->state = ST_ERROR;
	if (s->ctxt)
		stop(s);
	drop_stanza(s);
	s->h->error(s->ud, e, detail);
}

static int live(const struct xml_stream *s)
{
	return (s->state == ST_HEADER || s->state == ST_OPEN) && !s->stopped;
}

static uint64_t limit(const struct xml_stream *s)
{
	if (s->depth == 0 && s->max < HEADER_MIN_LIMIT)
		return HEADER_MIN_LIMIT;
	return s->max;
}

static int over_limit(struct xml_stream *s, uint64_t pos)
{
	if (pos < s->mark || pos - s->mark <= limit(s))
		return 0;
	fail(s, XML_ERR_POLICY_VIOLATION, s->depth == 0 ? "stream header too big" : "stanza too big");
	return 1;
}

/* After handing something to the user: a restart or free requested from
 * there cuts the input right here. */
static void after_callback(struct xml_stream *s, uint64_t pos)
{
	if (!(s->restart_pending || s->free_pending) || !s->ctxt || s->stopped)
		return;
	s->stop_at = pos;
	stop(s);
}

/* --- SAX handlers ------------------------------------------------------------ */

static void add_attrs(struct xml_node *el, int n, const xmlChar **a)
{
	for (int i = 0; i < n; i++, a += 5) {
		const char *local = (const char *)a[0], *prefix = (const char *)a[1];
		const char *uri = (const char *)a[2];
		const char *v = (const char *)a[3], *vend = (const char *)a[4];
		char buf[128], *qname = NULL;

		if (prefix) {
			size_t pl = strlen(prefix), ll = strlen(local);
			qname = pl + ll + 2 <= sizeof(buf) ? buf : pl_malloc(pl + ll + 2);
			memcpy(qname, prefix, pl);
			qname[pl] = ':';
			memcpy(qname + pl + 1, local, ll + 1);
			local = qname;
		}
		xml_add_attr(el, local, uri, v, (size_t)(vend - v));
		if (qname != buf)
			free(qname);
	}
}

static void build_header(struct xml_stream *s, const char *prefix, int nns, const xmlChar **ns)
{
	struct buf b = { 0 };

	buf_printf(&b, "<%s%sstream", prefix ? prefix : "", prefix ? ":" : "");
	for (int i = 0; i < nns; i++) {
		const char *p = (const char *)ns[2 * i], *uri = (const char *)ns[2 * i + 1];
		buf_printf(&b, " xmlns%s%s='", p ? ":" : "", p ? p : "");
		xml_escape(&b, uri, strlen(uri), 1);
		buf_append_str(&b, "'");
		if (!p) {
			free(s->content_ns);
			s->content_ns = pl_strdup(uri);
		}
	}
	buf_append_str(&b, ">");
	free(s->header);
	s->header_len = buf_used(&b);
	s->header = pl_strndup(buf_cstr(&b), s->header_len);
	buf_free(&b);
}

static void stream_root(struct xml_stream *s, const char *name, const char *prefix,
			const char *uri, int nns, const xmlChar **ns, int nattr,
			const xmlChar **attrs)
{
	s->depth = 1;
	s->mark = pos_now(s) + 1;   /* the callback comes before the '>' */
	if (s->replaying)
		return;
	if (!uri || strcmp(uri, XML_NS_STREAMS) != 0) {
		fail(s, XML_ERR_INVALID_NAMESPACE, "stream root not in " XML_NS_STREAMS);
		return;
	}
	if (strcmp(name, "stream") != 0) {
		fail(s, XML_ERR_BAD_FORMAT, "stream root is not <stream>");
		return;
	}
	s->state = ST_OPEN;
	build_header(s, prefix, nns, ns);
	struct xml_node *el = xml_new(name, uri);
	add_attrs(el, nattr, attrs);
	uint64_t pos = s->mark;
	s->h->stream_open(s->ud, el);
	after_callback(s, pos);
}

/*
 * The tree keeps namespaces, not prefixes, so the serialiser declares a
 * default namespace on every element whose namespace differs from its
 * parent's, and the prefix of every namespaced attribute: a stanza that
 * alternates a long prefixed namespace with another could be written out
 * many times larger than it was read (a 64 KiB stanza, megabytes).
 * Counted as the stanza is read, and refused like an oversize stanza.
 */
static int declarations_over_limit(struct xml_stream *s, const char *nsuri, int nattr,
				   const xmlChar **attrs)
{
	if (s->depth == 1)
		s->decl_bytes = 0;
	const char *parent_ns = s->depth == 1 ? (s->content_ns ? s->content_ns : "") : s->cur->ns;
	if (strcmp(nsuri, parent_ns) != 0)
		s->decl_bytes += strlen(nsuri) + sizeof(" xmlns=''");
	for (int i = 0; i < nattr; i++, attrs += 5) {
		const char *prefix = (const char *)attrs[1], *uri = (const char *)attrs[2];
		if (prefix && uri && strcmp(prefix, "xml") != 0)
			s->decl_bytes += strlen(prefix) + strlen(uri) + sizeof(" xmlns:=''");
	}
	if (s->decl_bytes <= limit(s))
		return 0;
	fail(s, XML_ERR_POLICY_VIOLATION, "stanza too big once its namespaces are declared");
	return 1;
}

static void on_start(void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri,
		     int nns, const xmlChar **ns, int nattr, int ndefaulted, const xmlChar **attrs)
{
	struct xml_stream *s = ctx;

	PL_UNUSED(ndefaulted);
	if (!live(s))
		return;
	if (s->depth == 0) {
		stream_root(s, (const char *)name, (const char *)prefix, (const char *)uri,
			    nns, ns, nattr, attrs);
		return;
	}
	if (s->depth > XML_MAX_DEPTH) {
		fail(s, XML_ERR_POLICY_VIOLATION, "elements nested too deep");
		return;
	}
	if (over_limit(s, pos_now(s)))
		return;
	const char *nsuri = uri ? (const char *)uri : "";
	if (strcmp(nsuri, XML_NS_XML) == 0) {
		/* <xml:foo/>: nothing in XMPP, and not serialisable (the xml
		 * namespace can never be the default one). */
		fail(s, XML_ERR_INVALID_NAMESPACE, "element in the xml namespace");
		return;
	}
	if (declarations_over_limit(s, nsuri, nattr, attrs))
		return;
	struct xml_node *el;
	if (s->depth == 1)
		el = s->stanza = xml_new((const char *)name, nsuri);
	else
		el = xml_add_child(s->cur, (const char *)name, nsuri);
	add_attrs(el, nattr, attrs);
	s->cur = el;
	s->depth++;
}

static void on_end(void *ctx, const xmlChar *name, const xmlChar *prefix, const xmlChar *uri)
{
	struct xml_stream *s = ctx;

	PL_UNUSED(name);
	PL_UNUSED(prefix);
	PL_UNUSED(uri);
	if (!live(s) || s->depth == 0)
		return;
	uint64_t pos = pos_now(s);   /* the end tag's '>' is consumed by now */
	if (s->depth == 1) {
		s->depth = 0;
		s->state = ST_CLOSED;
		s->h->stream_close(s->ud);
		after_callback(s, pos);
		return;
	}
	if (over_limit(s, pos))
		return;
	s->depth--;
	if (s->depth > 1) {
		s->cur = s->cur->parent;
		return;
	}
	struct xml_node *el = s->stanza;
	s->stanza = s->cur = NULL;
	s->mark = pos;
	s->h->stanza(s->ud, el);
	after_callback(s, pos);
}

static int all_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return 0;
	return 1;
}

static void on_text(void *ctx, const xmlChar *ch, int len)
{
	struct xml_stream *s = ctx;

	if (!live(s) || len <= 0 || s->depth == 0)
		return;
	if (s->depth == 1) {
		if (!all_space((const char *)ch, (size_t)len)) {
			fail(s, XML_ERR_BAD_FORMAT, "text between stanzas");
			return;
		}
		/* whitespace keepalives belong to no stanza */
		uint64_t end;
		if (!pos_of(s, ch + len, &end))
			end = pos_now(s);
		if (end > s->mark)
			s->mark = end;
		return;
	}
	if (over_limit(s, pos_now(s)))
		return;
	xml_add_text(s->cur, (const char *)ch, (size_t)len);
}

static void on_cdata(void *ctx, const xmlChar *ch, int len)
{
	struct xml_stream *s = ctx;

	if (live(s) && s->depth == 1) {
		fail(s, XML_ERR_BAD_FORMAT, "CDATA between stanzas");
		return;
	}
	on_text(ctx, ch, len);
}

static void restricted(struct xml_stream *s, const char *what)
{
	if (live(s))
		fail(s, XML_ERR_RESTRICTED_XML, what);
}

static void on_comment(void *ctx, const xmlChar *v)
{
	PL_UNUSED(v);
	restricted(ctx, "comment");
}

static void on_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
	PL_UNUSED(target);
	PL_UNUSED(data);
	restricted(ctx, "processing instruction");
}

static void on_subset(void *ctx, const xmlChar *name, const xmlChar *eid, const xmlChar *sid)
{
	PL_UNUSED(name);
	PL_UNUSED(eid);
	PL_UNUSED(sid);
	restricted(ctx, "document type declaration");
}

static xmlEntityPtr on_get_entity(void *ctx, const xmlChar *name)
{
	PL_UNUSED(name);
	restricted(ctx, "entity reference");
	return NULL;
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pid,
			   const xmlChar *sid, xmlChar *content)
{
	PL_UNUSED(name);
	PL_UNUSED(type);
	PL_UNUSED(pid);
	PL_UNUSED(sid);
	PL_UNUSED(content);
	restricted(ctx, "entity declaration");
}

static void on_reference(void *ctx, const xmlChar *name)
{
	PL_UNUSED(name);
	restricted(ctx, "entity reference");
}

static void on_error(void *ctx, xmlErrorPtr err)
{
	struct xml_stream *s = ctx;
	char detail[160];

	if (!live(s) || !err || err->level < XML_ERR_ERROR)
		return;
	snprintf(detail, sizeof(detail), "%s", err->message ? err->message : "malformed XML");
	detail[strcspn(detail, "\n")] = '\0';
	/* an unbound prefix on the header means it is not in the streams
	 * namespace; elsewhere XML-Names violations are not-well-formed */
	if (err->domain == XML_FROM_NAMESPACE && s->depth == 0)
		fail(s, XML_ERR_INVALID_NAMESPACE, detail);
	else
		fail(s, XML_ERR_NOT_WELL_FORMED, detail);
}

static xmlSAXHandler sax_handler = {
	.initialized = XML_SAX2_MAGIC,
	.startElementNs = on_start,
	.endElementNs = on_end,
	.characters = on_text,
	.ignorableWhitespace = on_text,
	.cdataBlock = on_cdata,
	.comment = on_comment,
	.processingInstruction = on_pi,
	.internalSubset = on_subset,
	.externalSubset = on_subset,
	.getEntity = on_get_entity,
	.getParameterEntity = on_get_entity,
	.entityDecl = on_entity_decl,
	.reference = on_reference,
	.serror = on_error,
};

/* --- the parser's life --------------------------------------------------------- */

static int feed_raw(struct xml_stream *s, const char *data, size_t len)
{
	s->fed += len;
	return xmlParseChunk(s->ctxt, data, (int)len, 0);
}

static void ctxt_free(struct xml_stream *s)
{
	if (!s->ctxt)
		return;
	xmlFreeParserCtxt(s->ctxt);
	s->ctxt = NULL;
	s->stopped = 0;
}

/* A fresh libxml2 context; mid-stream (after a shrink) it is first fed the
 * saved header so prefixes and the default namespace are bound again. */
static void ctxt_new(struct xml_stream *s)
{
	s->ctxt = xmlCreatePushParserCtxt(&sax_handler, s, NULL, 0, NULL);
	if (!s->ctxt) {
		fputs("xml: out of memory creating a parser\n", stderr);
		abort();
	}
	xmlCtxtUseOptions(s->ctxt, XML_PARSE_NONET | XML_PARSE_NOENT | XML_PARSE_IGNORE_ENC |
				   XML_PARSE_NOWARNING);
	s->fed = 0;
	s->mark = 0;
	s->stopped = 0;
	if (s->state != ST_OPEN)
		return;
	s->depth = 0;
	s->replaying = 1;
	feed_raw(s, s->header, s->header_len);
	s->replaying = 0;
}

static void reset(struct xml_stream *s)
{
	ctxt_free(s);
	drop_stanza(s);
	free(s->header);
	free(s->content_ns);
	s->header = s->content_ns = NULL;
	s->header_len = 0;
	s->state = ST_HEADER;
	s->depth = 0;
	s->restart_pending = 0;
}

struct xml_stream *xml_stream_new(const struct xml_stream_handler *h, void *ud,
				  size_t max_stanza_size)
{
	struct xml_stream *s = pl_calloc(1, sizeof(*s));

	xml_init();
	s->h = h;
	s->ud = ud;
	s->max = max_stanza_size ? max_stanza_size : DEFAULT_MAX_STANZA;
	s->state = ST_HEADER;
	return s;
}

static void destroy(struct xml_stream *s)
{
	reset(s);
	free(s);
}

void xml_stream_free(struct xml_stream *s)
{
	if (!s)
		return;
	if (s->in_feed) {
		s->free_pending = 1;
		return;
	}
	destroy(s);
}

void xml_stream_restart(struct xml_stream *s)
{
	if (s->state == ST_ERROR)
		return;   /* an error is final */
	if (s->in_feed) {
		s->restart_pending = 1;
		return;
	}
	reset(s);
}

/* Bytes libxml2 holds that it has not parsed yet, from the first
 * non-whitespace one (whitespace between stanzas belongs to none). */
static const xmlChar *first_nonspace(const struct xml_stream *s, size_t *pending)
{
	xmlParserInputPtr in = s->ctxt->input;

	*pending = 0;
	if (!in || !in->cur || in->end <= in->cur)
		return NULL;
	const xmlChar *p = in->cur;
	while (p < in->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	*pending = (size_t)(in->end - p);
	return *pending ? p : NULL;
}

static size_t pending_nonspace(const struct xml_stream *s)
{
	size_t n;

	first_nonspace(s, &n);
	return n;
}

/* libxml2 waits for a ';' before it looks at a reference in text, so
 * "a & b" sits in its buffer without an error. No ';' follows in the
 * buffer when it is stuck there: a byte no reference can hold settles it. */
static int stuck_on_bad_reference(const struct xml_stream *s)
{
	xmlParserInputPtr in = s->ctxt->input;

	if (!in || !in->cur || in->cur >= in->end || *in->cur != '&')
		return 0;
	for (const xmlChar *p = in->cur + 1; p < in->end; p++) {
		xmlChar c = *p;
		if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == ':' ||
		    c == '#' || c == ';')
			continue;
		return 1;
	}
	return 0;
}

static void check_buffered(struct xml_stream *s)
{
	if (!live(s))
		return;
	if (s->depth >= 2 && stuck_on_bad_reference(s)) {
		fail(s, XML_ERR_NOT_WELL_FORMED, "'&' does not start a reference");
		return;
	}
	uint64_t pending = s->fed - s->mark;
	if (s->depth == 1) {
		/* between stanzas only whitespace or the next tag may wait;
		 * libxml2 sits on text until a '<' comes, so say it now */
		size_t n;
		const xmlChar *p = first_nonspace(s, &n);
		if (p && *p != '<') {
			fail(s, XML_ERR_BAD_FORMAT, "text between stanzas");
			return;
		}
		pending = n;
	}
	if (pending > limit(s))
		fail(s, XML_ERR_POLICY_VIOLATION,
		     s->depth == 0 ? "stream header too big" : "stanza too big");
}

static int end_of_feed(struct xml_stream *s, int rc)
{
	if (s->state == ST_ERROR)
		return PL_ERR;
	if (rc != 0 && s->state != ST_CLOSED) {
		const xmlError *e = xmlCtxtGetLastError(s->ctxt);
		fail(s, XML_ERR_NOT_WELL_FORMED, e && e->message ? e->message : "malformed XML");
		return PL_ERR;
	}
	return PL_OK;
}

/* The slices of one feed; any callback may have asked for a restart or a
 * free, and fail() may run from here too (so in_feed covers it all). */
static int feed_slices(struct xml_stream *s, const char *data, size_t len)
{
	if (!s->ctxt)
		ctxt_new(s);
	uint64_t start = s->fed;   /* parser offset of data[0] */
	size_t off = 0;
	while (off < len && s->state != ST_ERROR) {
		size_t n = len - off < SLICE ? len - off : SLICE;
		int rc = feed_raw(s, data + off, n);
		if (s->free_pending)
			return PL_ERR;
		if (s->restart_pending) {
			/* libxml2 reports an element once its last byte is in,
			 * so the cut lies within this call's bytes */
			uint64_t cut = s->stop_at > start ? s->stop_at - start : 0;
			s->consumed = cut < off + n ? (size_t)cut : off + n;
			return PL_AGAIN;
		}
		if (end_of_feed(s, rc) != PL_OK)
			return PL_ERR;
		check_buffered(s);
		off += n;
	}
	if (s->state == ST_ERROR)
		return PL_ERR;
	s->consumed = len;
	return PL_OK;
}

int xml_stream_feed(struct xml_stream *s, const char *data, size_t len)
{
	s->consumed = 0;
	if (s->state == ST_ERROR || s->state == ST_CLOSED)
		return PL_ERR;
	s->in_feed = 1;
	int rc = feed_slices(s, data, len);
	s->in_feed = 0;
	if (s->free_pending) {
		destroy(s);
		return PL_ERR;
	}
	if (rc == PL_AGAIN) {
		reset(s);
		return PL_AGAIN;
	}
	s->restart_pending = 0;
	if (rc == PL_OK && s->ctxt && xml_stream_idle(s) && xmlDictSize(s->ctxt->dict) > DICT_RESET)
		ctxt_free(s);
	return rc;
}

size_t xml_stream_consumed(const struct xml_stream *s)
{
	return s->consumed;
}

const char *xml_stream_content_ns(const struct xml_stream *s)
{
	return s->content_ns ? s->content_ns : "";
}

int xml_stream_idle(const struct xml_stream *s)
{
	if (s->state != ST_OPEN || s->depth != 1 || s->in_feed)
		return 0;
	return !s->ctxt || pending_nonspace(s) == 0;
}

void xml_stream_shrink(struct xml_stream *s)
{
	if (xml_stream_idle(s))
		ctxt_free(s);
}
