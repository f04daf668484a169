/*
 * jid.c - XMPP addresses (RFC 7622) with PRECIS (RFC 8264/8265) and IDNA2008.
 *
 * Nearly every JID on the wire is ASCII, so each part has an ASCII path that
 * needs no Unicode tables; the general path decodes to UCS-4 and applies the
 * PRECIS rules with libunistring's character properties.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "core/pl.h"
#include "xmpp/jid.h"

/* Bounds the work done on hostile input before normalisation can shrink
 * it below the part limit. */
#define INPUT_MAX (4 * JID_PART_MAX)
#define DOMAIN_MAX 253   /* what DNS can carry, after IDNA */

static int is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

static int utf8_ok(const char *s, size_t n)
{
	return n > 0 && n <= INPUT_MAX && !memchr(s, '\0', n) &&
	       u8_check((const uint8_t *)s, n) == NULL;
}

static char *dup_u32(const uint32_t *u, size_t n)
{
	size_t n8 = 0;
	uint8_t *r = u32_to_u8(u, n, NULL, &n8);

	if (!r)
		return NULL;
	if (n8 == 0 || n8 > JID_PART_MAX) {
		free(r);
		return NULL;
	}
	char *out = pl_strndup((const char *)r, n8);
	free(r);
	return out;
}

/* --- PRECIS code point classes (RFC 8264 §8, RFC 5892 §2.6) ------------------ */

enum precis { P_DISALLOWED, P_PVALID, P_FREE, P_CONTEXTJ, P_CONTEXTO };

static int has_compat(ucs4_t cp)
{
	int tag;
	ucs4_t dec[UC_DECOMPOSITION_MAX_LENGTH];
	uint32_t buf[UC_DECOMPOSITION_MAX_LENGTH * 4];
	size_t n = PL_ARRAY_LEN(buf);

	if (uc_decomposition(cp, &tag, dec) < 0)
		return 0;   /* nothing to decompose: NFKC leaves it alone */
	uint32_t *r = u32_normalize(UNINORM_NFKC, &cp, 1, buf, &n);
	int changed = !r || n != 1 || r[0] != cp;
	if (r != buf)
		free(r);
	return changed;
}

static int old_hangul_jamo(ucs4_t cp)
{
	return (cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0xA960 && cp <= 0xA97F) ||
	       (cp >= 0xD7B0 && cp <= 0xD7FF);
}

static int noncharacter(ucs4_t cp)
{
	return (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
}

static enum precis precis_class(ucs4_t cp)
{
	switch (cp) {   /* the exceptions come first */
	case 0x00DF: case 0x03C2: case 0x06FD: case 0x06FE: case 0x0F0B: case 0x3007:
		return P_PVALID;
	case 0x00B7: case 0x0375: case 0x05F3: case 0x05F4: case 0x30FB:
		return P_CONTEXTO;
	case 0x0640: case 0x07FA: case 0x302E: case 0x302F: case 0x303B:
		return P_DISALLOWED;
	}
	if ((cp >= 0x0660 && cp <= 0x0669) || (cp >= 0x06F0 && cp <= 0x06F9))
		return P_CONTEXTO;
	if (cp >= 0x3031 && cp <= 0x3035)
		return P_DISALLOWED;
	if (uc_is_general_category_withtable(cp, UC_CATEGORY_MASK_Cn))
		return P_DISALLOWED;   /* unassigned */
	if (cp >= 0x21 && cp <= 0x7E)
		return P_PVALID;       /* ASCII7 */
	if (cp == 0x200C || cp == 0x200D)
		return P_CONTEXTJ;
	if (old_hangul_jamo(cp) || noncharacter(cp) ||
	    uc_is_property_default_ignorable_code_point(cp) ||
	    uc_is_general_category_withtable(cp, UC_CATEGORY_MASK_Cc))
		return P_DISALLOWED;
	if (has_compat(cp))
		return P_FREE;
	if (uc_is_general_category_withtable(cp, UC_CATEGORY_MASK_Ll | UC_CATEGORY_MASK_Lu |
			UC_CATEGORY_MASK_Lo | UC_CATEGORY_MASK_Nd | UC_CATEGORY_MASK_Lm |
			UC_CATEGORY_MASK_Mn | UC_CATEGORY_MASK_Mc))
		return P_PVALID;       /* LetterDigits */
	if (uc_is_general_category_withtable(cp, UC_CATEGORY_MASK_Lt | UC_CATEGORY_MASK_Nl |
			UC_CATEGORY_MASK_No | UC_CATEGORY_MASK_Me | UC_CATEGORY_MASK_Zs |
			UC_CATEGORY_MASK_Sm | UC_CATEGORY_MASK_Sc | UC_CATEGORY_MASK_Sk |
			UC_CATEGORY_MASK_So | UC_CATEGORY_MASK_Pc | UC_CATEGORY_MASK_Pd |
			UC_CATEGORY_MASK_Ps | UC_CATEGORY_MASK_Pe | UC_CATEGORY_MASK_Pi |
			UC_CATEGORY_MASK_Pf | UC_CATEGORY_MASK_Po))
		return P_FREE;         /* other letters/digits, spaces, symbols, punctuation */
	return P_DISALLOWED;
}

static int script_is(ucs4_t cp, const char *name)
{
	const uc_script_t *sc = uc_script(cp);

	return sc && strcmp(sc->name, name) == 0;
}

/* The contextual rules of RFC 5892 Appendix A for s[i]. */
static int context_ok(const uint32_t *s, size_t n, size_t i)
{
	ucs4_t cp = s[i];

	switch (cp) {
	case 0x200C:
	case 0x200D:
		/* after a virama; ZWNJ's joining-type alternative is not
		 * supported, which only rejects more */
		return i > 0 && uc_combining_class(s[i - 1]) == UC_CCC_VR;
	case 0x00B7:
		return i > 0 && i + 1 < n && s[i - 1] == 'l' && s[i + 1] == 'l';
	case 0x0375:
		return i + 1 < n && script_is(s[i + 1], "Greek");
	case 0x05F3:
	case 0x05F4:
		return i > 0 && script_is(s[i - 1], "Hebrew");
	case 0x30FB:
		for (size_t k = 0; k < n; k++)
			if (script_is(s[k], "Hiragana") || script_is(s[k], "Katakana") ||
			    script_is(s[k], "Han"))
				return 1;
		return 0;
	}
	int arabic = cp >= 0x0660 && cp <= 0x0669;
	for (size_t k = 0; k < n; k++) {
		if (arabic && s[k] >= 0x06F0 && s[k] <= 0x06F9)
			return 0;
		if (!arabic && s[k] >= 0x0660 && s[k] <= 0x0669)
			return 0;
	}
	return 1;
}

/* Every code point allowed: PVALID only (identifier) or FREE too. */
static int precis_ok(const uint32_t *s, size_t n, int freeform)
{
	for (size_t i = 0; i < n; i++) {
		switch (precis_class(s[i])) {
		case P_PVALID:
			break;
		case P_FREE:
			if (!freeform)
				return 0;
			break;
		case P_CONTEXTJ:
		case P_CONTEXTO:
			if (!context_ok(s, n, i))
				return 0;
			break;
		case P_DISALLOWED:
			return 0;
		}
	}
	return 1;
}

/* RFC 5893 §2, for strings holding right-to-left characters. */
static int bidi_ok(const uint32_t *s, size_t n)
{
	int rtl = 0, en = 0, an = 0;

	for (size_t i = 0; i < n; i++) {
		int c = uc_bidi_class(s[i]);
		if (c == UC_BIDI_R || c == UC_BIDI_AL || c == UC_BIDI_AN)
			rtl = 1;
	}
	if (!rtl)
		return 1;
	int first = uc_bidi_class(s[0]);
	if (first != UC_BIDI_R && first != UC_BIDI_AL)
		return 0;   /* an LTR string may hold no R, AL or AN at all */
	int last = -1;
	for (size_t i = 0; i < n; i++) {
		int c = uc_bidi_class(s[i]);
		switch (c) {
		case UC_BIDI_EN: en = 1; break;
		case UC_BIDI_AN: an = 1; break;
		case UC_BIDI_R: case UC_BIDI_AL: case UC_BIDI_ES: case UC_BIDI_CS:
		case UC_BIDI_ET: case UC_BIDI_ON: case UC_BIDI_BN: case UC_BIDI_NSM:
			break;
		default:
			return 0;
		}
		if (c != UC_BIDI_NSM)
			last = c;
	}
	if (en && an)
		return 0;
	return last == UC_BIDI_R || last == UC_BIDI_AL || last == UC_BIDI_EN || last == UC_BIDI_AN;
}

/* --- the three parts -------------------------------------------------------------- */

static int local_forbidden(uint32_t c)
{
	return c == '"' || c == '&' || c == '\'' || c == '/' || c == ':' || c == '<' ||
	       c == '>' || c == '@';
}

char *jid_prep_local(const char *s, size_t len)
{
	if (!utf8_ok(s, len))
		return NULL;
	if (is_ascii(s, len)) {
		if (len > JID_PART_MAX)
			return NULL;
		char *out = pl_malloc(len + 1);
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c <= 0x20 || c >= 0x7F || local_forbidden(c)) {
				free(out);
				return NULL;
			}
			out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		out[len] = '\0';
		return out;
	}
	size_t n = 0, nl = 0;
	uint32_t *u = u8_to_u32((const uint8_t *)s, len, NULL, &n);
	if (!u)
		return NULL;
	for (size_t i = 0; i < n; i++) {   /* width mapping (RFC 8265 §3.3.1) */
		int tag;
		ucs4_t dec[UC_DECOMPOSITION_MAX_LENGTH];
		if (uc_decomposition(u[i], &tag, dec) == 1 &&
		    (tag == UC_DECOMP_WIDE || tag == UC_DECOMP_NARROW))
			u[i] = dec[0];
	}
	/* RFC 8265 maps with toLowerCase, not case folding: "ß" stays */
	uint32_t *low = u32_tolower(u, n, NULL, UNINORM_NFC, NULL, &nl);
	free(u);
	char *out = NULL;
	if (low && nl > 0 && precis_ok(low, nl, 0) && bidi_ok(low, nl)) {
		int bad = 0;
		for (size_t i = 0; i < nl; i++)
			bad |= local_forbidden(low[i]);
		if (!bad)
			out = dup_u32(low, nl);
	}
	free(low);
	return out;
}

char *jid_prep_resource(const char *s, size_t len)
{
	if (!utf8_ok(s, len))
		return NULL;
	if (is_ascii(s, len)) {
		if (len > JID_PART_MAX)
			return NULL;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
				return NULL;
		return pl_strndup(s, len);
	}
	size_t n = 0, nn = 0;
	uint32_t *u = u8_to_u32((const uint8_t *)s, len, NULL, &n);
	if (!u)
		return NULL;
	for (size_t i = 0; i < n; i++)   /* non-ASCII spaces become U+0020 */
		if (u[i] >= 0x80 && uc_is_general_category_withtable(u[i], UC_CATEGORY_MASK_Zs))
			u[i] = ' ';
	uint32_t *norm = u32_normalize(UNINORM_NFC, u, n, NULL, &nn);
	free(u);
	char *out = NULL;
	if (norm && nn > 0 && precis_ok(norm, nn, 1))
		out = dup_u32(norm, nn);
	free(norm);
	return out;
}

/* Lower-case LDH labels (what an A-label string must be), without the
 * trailing dot; "??--" only as "xn--". */
static int ldh_ok(const char *d, size_t n)
{
	if (n == 0 || n > DOMAIN_MAX)
		return 0;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && d[i] != '.') {
			char c = d[i];
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
				return 0;
			continue;
		}
		size_t ll = i - start;
		const char *l = d + start;
		if (ll == 0 || ll > 63 || l[0] == '-' || l[ll - 1] == '-')
			return 0;
		if (ll >= 4 && l[2] == '-' && l[3] == '-' && !(l[0] == 'x' && l[1] == 'n'))
			return 0;
		start = i + 1;
	}
	return 1;
}

static char *prep_ip6(const char *s, size_t len)
{
	char in[INET6_ADDRSTRLEN + 1], out[INET6_ADDRSTRLEN + 2];
	struct in6_addr a;

	if (len < 3 || len - 2 >= sizeof(in))
		return NULL;
	memcpy(in, s + 1, len - 2);
	in[len - 2] = '\0';
	if (inet_pton(AF_INET6, in, &a) != 1 || !inet_ntop(AF_INET6, &a, out + 1, sizeof(out) - 2))
		return NULL;
	out[0] = '[';
	size_t n = strlen(out);
	out[n] = ']';
	return pl_strndup(out, n + 1);
}

static int has_alabel(const char *d, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++)
		if ((i == 0 || d[i - 1] == '.') && strncmp(d + i, "xn--", 4) == 0)
			return 1;
	return 0;
}

/* libidn2 passes A-labels through without checking what they decode to
 * ("xn--n--dduf" is "\u208Cn-\u208A"): the U-labels must map back to the
 * very same A-labels. */
static int same_alabels(const char *uni, const char *ace)
{
	uint8_t *again = NULL;

	if (idn2_lookup_u8((const uint8_t *)uni, &again, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) !=
	    IDN2_OK)
		return 0;
	int same = strcmp((char *)again, ace) == 0;
	idn2_free(again);
	return same;
}

static char *prep_idna(const char *s, size_t len)
{
	char *in = pl_strndup(s, len);
	uint8_t *ace = NULL;
	char *uni = NULL, *out = NULL;

	/* without STD3 rules: libidn2 2.3 drops STD3-disallowed characters
	 * ("a@b" -> "ab") when asked to apply them; we check LDH ourselves */
	int rc = idn2_lookup_u8((const uint8_t *)in, &ace, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	free(in);
	if (rc != IDN2_OK)
		return NULL;
	size_t n = strlen((char *)ace);
	if (n > 0 && ace[n - 1] == '.')
		ace[--n] = '\0';
	if (ldh_ok((char *)ace, n) && idn2_to_unicode_8z8z((char *)ace, &uni, 0) == IDN2_OK &&
	    strlen(uni) <= JID_PART_MAX && same_alabels(uni, (char *)ace))
		out = pl_strdup(uni);
	idn2_free(ace);
	idn2_free(uni);
	return out;
}

char *jid_prep_domain(const char *s, size_t len)
{
	if (!utf8_ok(s, len))
		return NULL;
	if (s[0] == '[')
		return s[len - 1] == ']' ? prep_ip6(s, len) : NULL;
	if (!is_ascii(s, len))
		return prep_idna(s, len);
	if (len > 0 && s[len - 1] == '.')
		len--;   /* RFC 7622 §3.2: the final dot goes */
	if (len == 0)
		return NULL;
	char *out = pl_strndup(s, len);
	for (size_t i = 0; i < len; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] += 32;
	if (has_alabel(out, len)) {
		char *u = prep_idna(out, len);
		free(out);
		return u;
	}
	if (!ldh_ok(out, len)) {
		free(out);
		return NULL;
	}
	return out;
}

/* --- whole JIDs ------------------------------------------------------------------- */

int jid_parse(const char *s, size_t len, struct jid *out)
{
	memset(out, 0, sizeof(*out));
	if (!s || len == 0 || memchr(s, '\0', len))
		return PL_ERR;
	/* RFC 7622 §3.1: the first '/' starts the resource (which may hold
	 * '@' and '/'), then the first '@' ends the localpart */
	const char *slash = memchr(s, '/', len);
	size_t blen = slash ? (size_t)(slash - s) : len;
	const char *at = memchr(s, '@', blen);
	const char *dom = at ? at + 1 : s;
	size_t dlen = (size_t)(s + blen - dom);

	if (at && at == s)
		return PL_ERR;
	if (slash && slash + 1 == s + len)
		return PL_ERR;
	if (dlen == 0)
		return PL_ERR;
	out->domain = jid_prep_domain(dom, dlen);
	if (!out->domain)
		goto fail;
	if (at && !(out->local = jid_prep_local(s, (size_t)(at - s))))
		goto fail;
	if (slash && !(out->resource = jid_prep_resource(slash + 1, (size_t)(s + len - slash - 1))))
		goto fail;
	return PL_OK;
fail:
	jid_free(out);
	return PL_ERR;
}

void jid_free(struct jid *j)
{
	if (!j)
		return;
	free(j->local);
	free(j->domain);
	free(j->resource);
	j->local = j->domain = j->resource = NULL;
}

int jid_copy(struct jid *dst, const struct jid *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src || !src->domain)
		return PL_ERR;
	dst->domain = pl_strdup(src->domain);
	dst->local = src->local ? pl_strdup(src->local) : NULL;
	dst->resource = src->resource ? pl_strdup(src->resource) : NULL;
	return PL_OK;
}

static char *join(const struct jid *j, int with_resource)
{
	size_t ll = j->local ? strlen(j->local) + 1 : 0;
	size_t dl = strlen(j->domain);
	size_t rl = with_resource && j->resource ? strlen(j->resource) + 1 : 0;
	char *out = pl_malloc(ll + dl + rl + 1), *p = out;

	if (ll) {
		memcpy(p, j->local, ll - 1);
		p[ll - 1] = '@';
		p += ll;
	}
	memcpy(p, j->domain, dl);
	p += dl;
	if (rl) {
		*p = '/';
		memcpy(p + 1, j->resource, rl - 1);
		p += rl;
	}
	*p = '\0';
	return out;
}

char *jid_bare(const struct jid *j)
{
	return join(j, 0);
}

char *jid_full(const struct jid *j)
{
	return join(j, 1);
}

static int part_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int jid_eq_bare(const struct jid *a, const struct jid *b)
{
	return part_eq(a->domain, b->domain) && part_eq(a->local, b->local);
}

int jid_eq(const struct jid *a, const struct jid *b)
{
	return jid_eq_bare(a, b) && part_eq(a->resource, b->resource);
}
