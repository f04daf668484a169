/*
 * xml_tree.c - element trees in one arena per tree, and their serializer.
 *
 * A tree's root node sits inside its arena header (struct xml_doc), so any
 * node finds its arena by walking up to the root: depth is small (the parser
 * caps it at 64) and this keeps every node free of an arena pointer.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/pl.h"
#include "xmpp/xml.h"

#define FIRST_BLOCK 1024          /* most stanzas fit: one malloc per tree */
#define MAX_BLOCK (64 * 1024)

struct xml_doc {
	char *ptr;                     /* free space in the current block */
	char *end;
	void **blocks;                 /* extra blocks, newest first; each
					* starts with the pointer to the next */
	size_t size;                   /* bytes malloc'd for this tree */
	size_t next_block;
	struct xml_node root;
	/* the first block's space follows */
};

static const char empty[] = "";

static struct xml_doc *doc_new(size_t space)
{
	struct xml_doc *d = pl_malloc(sizeof(*d) + space);

	memset(d, 0, sizeof(*d));
	d->ptr = (char *)(d + 1);
	d->end = d->ptr + space;
	d->size = sizeof(*d) + space;
	d->next_block = space * 2 < FIRST_BLOCK * 2 ? FIRST_BLOCK * 2 : space * 2;
	d->root.type = XML_ELEMENT;
	return d;
}

static struct xml_doc *doc_of(const struct xml_node *n)
{
	while (n->parent)
		n = n->parent;
	return PL_CONTAINER_OF(n, struct xml_doc, root);
}

static void *arena_alloc(struct xml_doc *d, size_t n, size_t align)
{
	uintptr_t p = ((uintptr_t)d->ptr + align - 1) & ~(uintptr_t)(align - 1);

	if (p + n <= (uintptr_t)d->end) {
		d->ptr = (char *)(p + n);
		return (void *)p;
	}
	size_t want = n + align + sizeof(void *);
	size_t cap = d->next_block > want ? d->next_block : want;
	void **blk = pl_malloc(cap);
	*blk = d->blocks;
	d->blocks = blk;
	d->size += cap;
	if (d->next_block < MAX_BLOCK)
		d->next_block *= 2;
	d->ptr = (char *)(blk + 1);
	d->end = (char *)blk + cap;
	return arena_alloc(d, n, align);
}

static char *arena_strndup(struct xml_doc *d, const char *s, size_t n)
{
	char *p = arena_alloc(d, n + 1, 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static const char *arena_str(struct xml_doc *d, const char *s)
{
	if (!s || !*s)
		return empty;
	return arena_strndup(d, s, strlen(s));
}

static struct xml_node *node_new(struct xml_doc *d, enum xml_node_type type)
{
	struct xml_node *n = arena_alloc(d, sizeof(*n), alignof(struct xml_node));

	memset(n, 0, sizeof(*n));
	n->type = type;
	return n;
}

static void link_child(struct xml_node *parent, struct xml_node *child)
{
	child->parent = parent;
	child->next = NULL;
	if (parent->last)
		parent->last->next = child;
	else
		parent->first = child;
	parent->last = child;
}

/* A child's ns usually equals its parent's: share the string. */
static const char *child_ns(struct xml_doc *d, const struct xml_node *parent, const char *ns)
{
	if (!ns)
		return parent->ns;
	if (strcmp(ns, parent->ns) == 0)
		return parent->ns;
	return arena_str(d, ns);
}

struct xml_node *xml_new(const char *name, const char *ns)
{
	struct xml_doc *d = doc_new(FIRST_BLOCK - sizeof(struct xml_doc));

	d->root.name = arena_str(d, name);
	d->root.ns = arena_str(d, ns);
	return &d->root;
}

struct xml_node *xml_add_child(struct xml_node *parent, const char *name, const char *ns)
{
	struct xml_doc *d = doc_of(parent);
	struct xml_node *n = node_new(d, XML_ELEMENT);

	n->name = arena_str(d, name);
	n->ns = child_ns(d, parent, ns);
	link_child(parent, n);
	return n;
}

void xml_add_attr(struct xml_node *el, const char *name, const char *ns,
		  const char *value, size_t vlen)
{
	struct xml_doc *d = doc_of(el);
	struct xml_attr *a = arena_alloc(d, sizeof(*a), alignof(struct xml_attr));
	struct xml_attr **tail = &el->attrs;

	a->next = NULL;
	a->name = arena_str(d, name);
	a->ns = ns && *ns ? arena_str(d, ns) : NULL;
	a->value = arena_strndup(d, value, vlen);
	while (*tail)
		tail = &(*tail)->next;
	*tail = a;
}

void xml_set_attr(struct xml_node *el, const char *name, const char *value)
{
	for (struct xml_attr **pa = &el->attrs; *pa; pa = &(*pa)->next) {
		if (strcmp((*pa)->name, name) != 0)
			continue;
		if (!value) {
			*pa = (*pa)->next;
			return;
		}
		(*pa)->value = arena_strndup(doc_of(el), value, strlen(value));
		return;
	}
	if (!value)
		return;
	const char *ns = strncmp(name, "xml:", 4) == 0 ? XML_NS_XML : NULL;
	xml_add_attr(el, name, ns, value, strlen(value));
}

void xml_add_text(struct xml_node *el, const char *text, size_t len)
{
	if (len == 0)
		return;
	struct xml_doc *d = doc_of(el);
	struct xml_node *t = el->last;

	if (!t || t->type != XML_TEXT) {
		t = node_new(d, XML_TEXT);
		t->cap = len < 32 ? 32 : len;
		t->text = arena_alloc(d, t->cap + 1, 1);
		link_child(el, t);
	}
	char *buf = (char *)t->text;
	if (t->len + len > t->cap) {
		/* Text arrives in pieces (one byte at a time, at worst): grow in
		 * place when it is the arena's last allocation, else double. */
		char *tail = buf + t->cap + 1;
		size_t extra = t->len + len - t->cap;
		if (tail == d->ptr && (size_t)(d->end - d->ptr) >= extra) {
			d->ptr += extra;
			t->cap += extra;
		} else {
			size_t cap = t->cap * 2 > t->len + len ? t->cap * 2 : t->len + len;
			char *nb = arena_alloc(d, cap + 1, 1);
			memcpy(nb, buf, t->len);
			t->text = buf = nb;
			t->cap = cap;
		}
	}
	memcpy(buf + t->len, text, len);
	t->len += len;
	buf[t->len] = '\0';
}

void xml_remove(struct xml_node *node)
{
	struct xml_node *p = node->parent;

	if (!p)
		return;
	struct xml_node *prev = NULL;
	for (struct xml_node *c = p->first; c; prev = c, c = c->next) {
		if (c != node)
			continue;
		if (prev)
			prev->next = c->next;
		else
			p->first = c->next;
		if (p->last == c)
			p->last = prev;
		break;
	}
	/* parent stays set: the node still lives in (and finds) that arena,
	 * and xml_free() refuses it. */
	node->next = NULL;
}

static void set_ns_rec(struct xml_node *el, const char *old, const char *ns)
{
	if (strcmp(el->ns, old) != 0)
		return;
	el->ns = ns;
	for (struct xml_node *c = el->first; c; c = c->next)
		if (c->type == XML_ELEMENT)
			set_ns_rec(c, old, ns);
}

void xml_set_ns(struct xml_node *el, const char *ns)
{
	const char *old = el->ns;

	if (strcmp(old, ns ? ns : "") == 0)
		return;
	set_ns_rec(el, old, arena_str(doc_of(el), ns));
}

const char *xml_attr(const struct xml_node *el, const char *name)
{
	if (!el || el->type != XML_ELEMENT)
		return NULL;
	for (const struct xml_attr *a = el->attrs; a; a = a->next)
		if (strcmp(a->name, name) == 0)
			return a->value;
	return NULL;
}

int xml_is(const struct xml_node *el, const char *name, const char *ns)
{
	return el && el->type == XML_ELEMENT && strcmp(el->name, name) == 0 &&
	       (!ns || strcmp(el->ns, ns) == 0);
}

struct xml_node *xml_child(const struct xml_node *el, const char *name, const char *ns)
{
	for (struct xml_node *c = xml_first_child_el(el); c; c = xml_next_el(c))
		if ((!name || strcmp(c->name, name) == 0) && (!ns || strcmp(c->ns, ns) == 0))
			return c;
	return NULL;
}

struct xml_node *xml_first_child_el(const struct xml_node *el)
{
	if (!el || el->type != XML_ELEMENT)
		return NULL;
	struct xml_node *c = el->first;
	while (c && c->type != XML_ELEMENT)
		c = c->next;
	return c;
}

struct xml_node *xml_next_el(const struct xml_node *node)
{
	if (!node)
		return NULL;
	struct xml_node *c = node->next;
	while (c && c->type != XML_ELEMENT)
		c = c->next;
	return c;
}

char *xml_text(const struct xml_node *el)
{
	size_t total = 0, pieces = 0;
	const struct xml_node *only = NULL;

	if (!el || el->type != XML_ELEMENT)
		return (char *)empty;
	for (const struct xml_node *c = el->first; c; c = c->next) {
		if (c->type != XML_TEXT)
			continue;
		total += c->len;
		pieces++;
		only = c;
	}
	if (pieces == 0)
		return (char *)empty;
	if (pieces == 1)
		return (char *)only->text;
	char *out = arena_alloc(doc_of(el), total + 1, 1), *p = out;
	for (const struct xml_node *c = el->first; c; c = c->next) {
		if (c->type != XML_TEXT)
			continue;
		memcpy(p, c->text, c->len);
		p += c->len;
	}
	*p = '\0';
	return out;
}

/* --- copies ------------------------------------------------------------------ */

#define SLACK 8   /* worst alignment padding per struct */

static size_t copy_size(const struct xml_node *n, const struct xml_node *parent)
{
	if (n->type == XML_TEXT)
		return sizeof(*n) + SLACK + n->len + 1;
	size_t sz = sizeof(*n) + SLACK + strlen(n->name) + 1;
	if (!parent || strcmp(n->ns, parent->ns) != 0)
		sz += strlen(n->ns) + 1;
	for (const struct xml_attr *a = n->attrs; a; a = a->next)
		sz += sizeof(*a) + SLACK + strlen(a->name) + 1 + strlen(a->value) + 1 +
		      (a->ns ? strlen(a->ns) + 1 : 0);
	for (const struct xml_node *c = n->first; c; c = c->next)
		sz += copy_size(c, n);
	return sz;
}

static void copy_into(struct xml_doc *d, struct xml_node *dst, const struct xml_node *src)
{
	for (const struct xml_attr *a = src->attrs; a; a = a->next)
		xml_add_attr(dst, a->name, a->ns, a->value, strlen(a->value));
	for (const struct xml_node *c = src->first; c; c = c->next) {
		if (c->type == XML_TEXT) {
			struct xml_node *t = node_new(d, XML_TEXT);
			t->text = arena_strndup(d, c->text, c->len);
			t->len = t->cap = c->len;
			link_child(dst, t);
			continue;
		}
		copy_into(d, xml_add_child(dst, c->name, c->ns), c);
	}
}

struct xml_node *xml_copy(const struct xml_node *el)
{
	if (!el)
		return NULL;
	if (el->type != XML_ELEMENT)
		return NULL;   /* only an element can be a root */
	struct xml_doc *d = doc_new(copy_size(el, NULL));
	d->root.name = arena_str(d, el->name);
	d->root.ns = arena_str(d, el->ns);
	copy_into(d, &d->root, el);
	return &d->root;
}

struct xml_node *xml_add_copy(struct xml_node *parent, const struct xml_node *src)
{
	struct xml_doc *d = doc_of(parent);

	if (src->type == XML_TEXT) {
		xml_add_text(parent, src->text, src->len);
		return parent->last;
	}
	struct xml_node *n = xml_add_child(parent, src->name, src->ns);
	copy_into(d, n, src);
	return n;
}

void xml_free(struct xml_node *root)
{
	if (!root || root->parent)
		return;
	struct xml_doc *d = PL_CONTAINER_OF(root, struct xml_doc, root);
	void **b = d->blocks;
	while (b) {
		void **next = *b;
		free(b);
		b = next;
	}
	free(d);
}

size_t xml_tree_size(const struct xml_node *root)
{
	return doc_of(root)->size;
}

/* --- serializer ----------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left) that XML 1.0 can
 * carry, 0 if invalid or not allowed. */
static size_t utf8_char(const unsigned char *s, size_t n, int *allowed)
{
	uint32_t cp;
	size_t len;

	*allowed = 1;
	if (s[0] < 0xC2)
		return 0;
	if (s[0] < 0xE0) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if (s[0] < 0xF0) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if (s[0] < 0xF5) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return 0;
	if (cp == 0xFFFE || cp == 0xFFFF)
		*allowed = 0;
	return len;
}

void xml_escape(struct buf *out, const char *str, size_t n, int in_attr)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run = 0;   /* bytes before i copied verbatim in one go */
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		const char *rep = NULL;
		size_t adv = 1;

		if (c >= 0x80) {
			int allowed;
			adv = utf8_char(s + i, n - i, &allowed);
			if (adv && allowed) {
				i += adv;
				continue;
			}
			rep = adv ? "" : "\xEF\xBF\xBD";
			if (!adv)
				adv = 1;
		} else if (c == '&') {
			rep = "&amp;";
		} else if (c == '<') {
			rep = "&lt;";
		} else if (c == '>') {
			rep = "&gt;";
		} else if (c == '\r') {
			rep = "&#13;";
		} else if (in_attr && c == '\'') {
			rep = "&apos;";
		} else if (in_attr && c == '"') {
			rep = "&quot;";
		} else if (in_attr && c == '\t') {
			rep = "&#9;";
		} else if (in_attr && c == '\n') {
			rep = "&#10;";
		} else if (c < 0x20 && c != '\t' && c != '\n') {
			rep = "";   /* XML 1.0 cannot carry it at all */
		} else {
			i++;
			continue;
		}
		if (i > run)
			buf_append(out, s + run, i - run);
		buf_append_str(out, rep);
		i += adv;
		run = i;
	}
	if (n > run)
		buf_append(out, s + run, n - run);
}

static void write_start(const struct xml_node *el, const char *scope, int in_stream,
			struct buf *out, const char **new_scope)
{
	int prefixed = in_stream && strcmp(el->ns, XML_NS_STREAMS) == 0;

	buf_append_str(out, prefixed ? "<stream:" : "<");
	buf_append_str(out, el->name);
	*new_scope = scope;
	if (!prefixed && strcmp(el->ns, scope) != 0) {
		buf_append_str(out, " xmlns='");
		xml_escape(out, el->ns, strlen(el->ns), 1);
		buf_append_str(out, "'");
		*new_scope = el->ns;
	}
	for (const struct xml_attr *a = el->attrs; a; a = a->next) {
		const char *colon = strchr(a->name, ':');
		if (a->ns && colon && strncmp(a->name, "xml:", 4) != 0) {
			/* declare the attribute's prefix here unless an earlier
			 * attribute of this element already did */
			size_t plen = (size_t)(colon - a->name);
			int seen = 0;
			for (const struct xml_attr *b = el->attrs; b != a; b = b->next)
				if (b->ns && strncmp(b->name, a->name, plen + 1) == 0)
					seen = 1;
			if (!seen) {
				buf_append_str(out, " xmlns:");
				buf_append(out, a->name, plen);
				buf_append_str(out, "='");
				xml_escape(out, a->ns, strlen(a->ns), 1);
				buf_append_str(out, "'");
			}
		}
		buf_append_str(out, " ");
		buf_append_str(out, a->name);
		buf_append_str(out, "='");
		xml_escape(out, a->value, strlen(a->value), 1);
		buf_append_str(out, "'");
	}
}

static void serialize_rec(const struct xml_node *n, const char *scope, int in_stream,
			  struct buf *out)
{
	if (n->type == XML_TEXT) {
		xml_escape(out, n->text, n->len, 0);
		return;
	}
	const char *inner;
	write_start(n, scope, in_stream, out, &inner);
	if (!n->first) {
		buf_append_str(out, "/>");
		return;
	}
	buf_append_str(out, ">");
	for (const struct xml_node *c = n->first; c; c = c->next)
		serialize_rec(c, inner, in_stream, out);
	buf_append_str(out, in_stream && strcmp(n->ns, XML_NS_STREAMS) == 0 ? "</stream:" : "</");
	buf_append_str(out, n->name);
	buf_append_str(out, ">");
}

void xml_serialize(const struct xml_node *el, const char *default_ns, struct buf *out)
{
	if (!el)
		return;
	int in_stream = default_ns && *default_ns;
	serialize_rec(el, in_stream ? default_ns : "", in_stream, out);
}
