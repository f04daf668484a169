/*
 * caps.c - XEP-0115 §5.1: the verification string of a disco#info answer
 * (identities, features and XEP-0128 forms, each sorted, '<'-terminated),
 * its SHA-1 in base64. Pure: the server hashes its own disco#info with it,
 * and the unit tests the XEP's examples.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "core/buf.h"
#include "core/pl.h"
#include "core/scram.h"
#include "xmpp/modules.h"
#include "xmpp/xml.h"
#include "xmpp/xmpp.h"

struct caps_ident {
	const char *category, *type, *lang, *name;
};

struct caps_field {
	const char *var;
	const char **values;
	size_t nvalues;
};

struct caps_form {
	const char *form_type;
	struct caps_field *fields;
	size_t nfields;
};

static const char *attr_or_empty(const struct xml_node *el, const char *name)
{
	const char *v = xml_attr(el, name);
	return v ? v : "";
}

static int cmp_ident(const void *a, const void *b)
{
	const struct caps_ident *x = a, *y = b;
	int c = strcmp(x->category, y->category);
	if (!c)
		c = strcmp(x->type, y->type);
	if (!c)
		c = strcmp(x->lang, y->lang);
	if (!c)
		c = strcmp(x->name, y->name);
	return c;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_field(const void *a, const void *b)
{
	return strcmp(((const struct caps_field *)a)->var, ((const struct caps_field *)b)->var);
}

static int cmp_form(const void *a, const void *b)
{
	return strcmp(((const struct caps_form *)a)->form_type,
		      ((const struct caps_form *)b)->form_type);
}

static size_t count_children(const struct xml_node *el, const char *name, const char *ns)
{
	size_t n = 0;
	for (const struct xml_node *c = xml_first_child_el(el); c; c = xml_next_el(c))
		if (xml_is(c, name, ns))
			n++;
	return n;
}

/* A form's fields other than FORM_TYPE; its FORM_TYPE, or NULL when the
 * form has none or it is not hidden (§5.4: such a form is ignored). */
static const char *caps_read_form(const struct xml_node *x, struct caps_form *f)
{
	size_t nf = count_children(x, "field", NS_XDATA);
	f->fields = pl_calloc(nf ? nf : 1, sizeof(*f->fields));
	f->form_type = NULL;
	for (const struct xml_node *c = xml_first_child_el(x); c; c = xml_next_el(c)) {
		if (!xml_is(c, "field", NS_XDATA))
			continue;
		const char *var = attr_or_empty(c, "var");
		if (strcmp(var, "FORM_TYPE") == 0) {
			const struct xml_node *v = xml_child(c, "value", NS_XDATA);
			const char *type = xml_attr(c, "type");
			if (v && type && strcmp(type, "hidden") == 0)
				f->form_type = xml_text(v);
			continue;
		}
		struct caps_field *fl = &f->fields[f->nfields++];
		fl->var = var;
		size_t nv = count_children(c, "value", NS_XDATA);
		fl->values = pl_calloc(nv ? nv : 1, sizeof(char *));
		for (const struct xml_node *v = xml_first_child_el(c); v; v = xml_next_el(v))
			if (xml_is(v, "value", NS_XDATA))
				fl->values[fl->nvalues++] = xml_text(v);
		qsort(fl->values, fl->nvalues, sizeof(char *), cmp_cstr);
	}
	qsort(f->fields, f->nfields, sizeof(*f->fields), cmp_field);
	return f->form_type;
}

static void caps_free_form(struct caps_form *f)
{
	for (size_t i = 0; i < f->nfields; i++)
		free(f->fields[i].values);
	free(f->fields);
}

static void caps_append(struct buf *b, const char *s)
{
	buf_append_str(b, s);
	buf_append(b, "<", 1);
}

int caps_ver(const struct xml_node *query, char *out, size_t outlen)
{
	size_t nid = count_children(query, "identity", NS_DISCO_INFO);
	size_t nfeat = count_children(query, "feature", NS_DISCO_INFO);
	size_t nforms = count_children(query, "x", NS_XDATA);
	struct caps_ident *ids = pl_calloc(nid + 1, sizeof(*ids));
	const char **feats = pl_calloc(nfeat + 1, sizeof(char *));
	struct caps_form *forms = pl_calloc(nforms + 1, sizeof(*forms));
	size_t ni = 0, nf = 0, nx = 0;
	struct buf s = { 0 };
	int rc = PL_ERR;

	for (const struct xml_node *c = xml_first_child_el(query); c; c = xml_next_el(c)) {
		if (xml_is(c, "identity", NS_DISCO_INFO)) {
			ids[ni].category = attr_or_empty(c, "category");
			ids[ni].type = attr_or_empty(c, "type");
			ids[ni].lang = attr_or_empty(c, "xml:lang");
			ids[ni].name = attr_or_empty(c, "name");
			ni++;
		} else if (xml_is(c, "feature", NS_DISCO_INFO)) {
			feats[nf++] = attr_or_empty(c, "var");
		} else if (xml_is(c, "x", NS_XDATA)) {
			if (caps_read_form(c, &forms[nx]))
				nx++;
			else
				caps_free_form(&forms[nx]);
		}
	}
	qsort(ids, ni, sizeof(*ids), cmp_ident);
	qsort(feats, nf, sizeof(char *), cmp_cstr);
	qsort(forms, nx, sizeof(*forms), cmp_form);
	/* §5.4: duplicates make the whole answer ill-formed. */
	for (size_t i = 1; i < ni; i++)
		if (cmp_ident(&ids[i - 1], &ids[i]) == 0)
			goto out;
	for (size_t i = 1; i < nf; i++)
		if (strcmp(feats[i - 1], feats[i]) == 0)
			goto out;
	for (size_t i = 1; i < nx; i++)
		if (strcmp(forms[i - 1].form_type, forms[i].form_type) == 0)
			goto out;
	for (size_t i = 0; i < ni; i++) {
		buf_printf(&s, "%s/%s/%s/", ids[i].category, ids[i].type, ids[i].lang);
		caps_append(&s, ids[i].name);
	}
	for (size_t i = 0; i < nf; i++)
		caps_append(&s, feats[i]);
	for (size_t i = 0; i < nx; i++) {
		caps_append(&s, forms[i].form_type);
		for (size_t j = 0; j < forms[i].nfields; j++) {
			caps_append(&s, forms[i].fields[j].var);
			for (size_t k = 0; k < forms[i].fields[j].nvalues; k++)
				caps_append(&s, forms[i].fields[j].values[k]);
		}
	}
	uint8_t md[SHA_DIGEST_LENGTH];
	SHA1(buf_head(&s), buf_used(&s), md);
	if (outlen >= 29 && base64_encode(md, sizeof(md), out, outlen) > 0)
		rc = PL_OK;
out:
	for (size_t i = 0; i < nx; i++)
		caps_free_form(&forms[i]);
	free(forms);
	free(feats);
	free(ids);
	buf_free(&s);
	return rc;
}
