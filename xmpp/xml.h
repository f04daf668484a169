/*
 * xml.h - XML element trees, their serializer, and the XMPP stream parser.
 *
 * Trees. A tree (a top-level stanza and everything under it) lives in one
 * arena: nodes, attributes and strings are bump-allocated in a few blocks and
 * xml_free(root) releases them all at once. Strings are unescaped UTF-8,
 * NUL-terminated. Namespaces are resolved: `ns` is the URI ("" for none) and
 * prefixes are gone; namespace declarations are not attributes. A tree is
 * owned by whoever holds its root and has no thread affinity, but it is not
 * thread-safe: to hand a stanza to another shard, give it away or xml_copy it.
 *
 * Stream parser. One per XMPP stream (c2s, s2s, component), owned by the
 * connection's shard. It runs libxml2's SAX2 push parser with RFC 6120's
 * restrictions (§11: no DTD, comments, PIs or entities; UTF-8 only) and
 * limits (stanza size, depth 64), and hands over each complete depth-1
 * element as its own tree. Callbacks run inside xml_stream_feed().
 */
#ifndef PL_XMPP_XML_H
#define PL_XMPP_XML_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define XML_NS_STREAMS "http://etherx.jabber.org/streams"
#define XML_NS_XML "http://www.w3.org/XML/1998/namespace"
/* Deepest element nesting inside the stream root (a stanza is depth 1). */
#define XML_MAX_DEPTH 64

enum xml_node_type { XML_ELEMENT = 1, XML_TEXT = 2 };

struct xml_attr {
	struct xml_attr *next;
	/* "to"; "xml:lang"; other namespaced attributes keep the qualified
	 * name they arrived with ("foo:bar") and their URI in ns. */
	const char *name;
	const char *ns;            /* NULL for unqualified attributes */
	const char *value;
};

struct xml_node {
	struct xml_node *parent;
	struct xml_node *next;     /* next sibling */
	struct xml_node *first;    /* children (elements only) */
	struct xml_node *last;
	enum xml_node_type type;
	union {
		struct {               /* XML_ELEMENT */
			const char *name;  /* local name */
			const char *ns;    /* namespace URI, "" if none */
			struct xml_attr *attrs;
		};
		struct {               /* XML_TEXT */
			const char *text;
			size_t len;
			size_t cap;        /* room at text (merging adjacent text) */
		};
	};
};

/* Call once on the main thread before any shard starts (initialises
 * libxml2). The stream parser also calls it, so tests need not. */
void xml_init(void);

/* --- building and reading trees ------------------------------------------ */

/* A new tree (new arena) with one element. ns NULL means "". */
struct xml_node *xml_new(const char *name, const char *ns);
/* Append an element; ns NULL inherits the parent's. */
struct xml_node *xml_add_child(struct xml_node *parent, const char *name, const char *ns);
/* Set or replace an attribute; value NULL removes it. */
void xml_set_attr(struct xml_node *el, const char *name, const char *value);
/* Append an attribute without looking for an existing one of that name
 * (the parser's path: libxml2 already rejected duplicates). value need not
 * be NUL-terminated; ns as in struct xml_attr. */
void xml_add_attr(struct xml_node *el, const char *name, const char *ns,
		  const char *value, size_t vlen);
/* Append text (merged with a preceding text child). len may be 0 to do nothing. */
void xml_add_text(struct xml_node *el, const char *text, size_t len);
/* Deep-copy src (and its subtree) into parent's tree as its last child:
 * how a stanza gets wrapped in <forwarded/> for carbons or MAM. */
struct xml_node *xml_add_copy(struct xml_node *parent, const struct xml_node *src);
/* Unlink a node from its parent (its memory stays in the arena). */
void xml_remove(struct xml_node *node);
/* Move el and every descendant that shared el's namespace to ns (e.g. a
 * stanza going from a jabber:client stream to a jabber:server one). */
void xml_set_ns(struct xml_node *el, const char *ns);

const char *xml_attr(const struct xml_node *el, const char *name);
/* First child element with that name (NULL: any name) and ns (NULL: any). */
struct xml_node *xml_child(const struct xml_node *el, const char *name, const char *ns);
struct xml_node *xml_first_child_el(const struct xml_node *el);
struct xml_node *xml_next_el(const struct xml_node *node);
/* Direct text children concatenated; "" if none. Lives in el's arena: do
 * not free or modify it. */
char *xml_text(const struct xml_node *el);
/* True if el is an element with that name and ns (ns NULL: any). */
int xml_is(const struct xml_node *el, const char *name, const char *ns);

/* Deep copy into a new arena (one allocation); the copy is a root. */
struct xml_node *xml_copy(const struct xml_node *el);
/* Free a whole tree. Only on a root (a node without parent); NULL is fine. */
void xml_free(struct xml_node *root);
/* Bytes the tree's arena holds (for accounting and tests). */
size_t xml_tree_size(const struct xml_node *root);

/* --- serializing ------------------------------------------------------------ */

/* Write el and its subtree. An element gets xmlns='...' only where its ns
 * differs from the default namespace in scope (default_ns at the top).
 * When default_ns is non-empty the output is taken to be inside a stream
 * whose header bound the `stream` prefix, so elements in XML_NS_STREAMS are
 * written as <stream:features>...; with default_ns NULL or "" the output
 * stands alone and every namespace is declared. Attribute values are
 * single-quoted. Invalid UTF-8 is replaced by U+FFFD and characters XML
 * cannot carry are dropped, so the output is always well-formed. */
void xml_serialize(const struct xml_node *el, const char *default_ns, struct buf *out);
/* Escape n bytes: & < > (and \r) in text; also ' " \t \n in attributes. */
void xml_escape(struct buf *out, const char *s, size_t n, int in_attr);

/* --- the stream parser ------------------------------------------------------ */

enum xml_stream_error {
	XML_ERR_NOT_WELL_FORMED = 1,   /* malformed XML, invalid UTF-8 */
	XML_ERR_POLICY_VIOLATION,      /* stanza too big, nesting too deep */
	XML_ERR_RESTRICTED_XML,        /* DTD, PI, comment, entity reference */
	XML_ERR_INVALID_NAMESPACE,     /* stream root not in XML_NS_STREAMS; element in XML_NS_XML */
	XML_ERR_BAD_FORMAT,            /* root not <stream>, text between stanzas */
};

struct xml_stream_handler {
	/* <stream:stream ...> arrived: an element with its attributes and ns
	 * (no children). The callee owns it (xml_free). The default namespace
	 * it declared is xml_stream_content_ns(). */
	void (*stream_open)(void *ud, struct xml_node *stream_el);
	/* A complete depth-1 element. The callee owns it. */
	void (*stanza)(void *ud, struct xml_node *el);
	/* </stream:stream> */
	void (*stream_close)(void *ud);
	/* Called once; the stream accepts no input afterwards. */
	void (*error)(void *ud, enum xml_stream_error e, const char *detail);
};

struct xml_stream;

/* max_stanza_size: the most bytes of input one stanza may take, counted
 * from the start of its start tag to the end of its end tag, including what
 * libxml2 holds buffered before it can report anything. 0: 65536. */
struct xml_stream *xml_stream_new(const struct xml_stream_handler *h, void *ud,
				  size_t max_stanza_size);
/*
 * Parse len bytes (any split: one byte at a time or many stanzas at once).
 * Returns
 *   PL_OK     all len bytes were taken.
 *   PL_ERR    error() was called (now or earlier); the stream is dead.
 *             Also returned, without a callback, for input after
 *             </stream:stream>, and after xml_stream_free() was called from
 *             a callback (the stream is then freed: do not touch it).
 *   PL_AGAIN  a callback called xml_stream_restart(): parsing stopped right
 *             after the element (or stream header) during which it did, and
 *             the stream now expects a new stream header.
 *             xml_stream_consumed() tells how many of the len bytes were
 *             parsed; the rest were not looked at and belong to whatever
 *             comes next: after STARTTLS they are TLS records (or, since the
 *             client must wait for <proceed/>, an attack to discard), after
 *             SASL success they are the new stream header - feed them again.
 * Callbacks must not call xml_stream_feed() on the same stream.
 */
int xml_stream_feed(struct xml_stream *s, const char *data, size_t len);
/* Bytes of the last xml_stream_feed() that were parsed (see PL_AGAIN). */
size_t xml_stream_consumed(const struct xml_stream *s);
/* Expect a new stream header (after STARTTLS or SASL success). Safe from
 * inside a callback: takes effect when the current element is done. */
void xml_stream_restart(struct xml_stream *s);
/* Safe from inside a callback (freed when xml_stream_feed returns). */
void xml_stream_free(struct xml_stream *s);
/* The default namespace the stream header declared ("jabber:client"...),
 * "" if none or if no header has arrived yet. */
const char *xml_stream_content_ns(const struct xml_stream *s);
/* True between stanzas: header seen, no element open, nothing but
 * whitespace buffered. */
int xml_stream_idle(const struct xml_stream *s);
/* If idle, free the libxml2 parser; the next feed recreates it behind the
 * scenes (replaying the stream header's namespace declarations). An idle
 * stream then costs a few hundred bytes instead of tens of KB. */
void xml_stream_shrink(struct xml_stream *s);
/* The RFC 6120 §4.9.3 condition name: "not-well-formed", ... */
const char *xml_stream_error_condition(enum xml_stream_error e);

#endif
