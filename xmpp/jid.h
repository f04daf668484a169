/*
 * jid.h - XMPP addresses (RFC 7622): parsing, normalisation, comparison.
 *
 * A parsed JID is normalised, so two JIDs for the same entity compare equal
 * with strcmp on each part:
 *   localpart  PRECIS UsernameCaseMapped (RFC 8265 §3.3): width mapping,
 *              lower case, NFC, IdentifierClass, Bidi rule; and none of
 *              " & ' / : < > @ (RFC 7622 §3.3.1).
 *   domainpart IDNA2008 via libidn2 (UTS #46 non-transitional), lower case,
 *              kept in U-label form, the trailing dot removed; IPv4 and
 *              bracketed IPv6 literals allowed (IPv6 in canonical form).
 *   resource   PRECIS OpaqueString (RFC 8265 §4.2): non-ASCII spaces mapped
 *              to U+0020, NFC, FreeformClass; otherwise kept as is.
 * Each part is 1..1023 bytes. Pure functions: any thread may call them.
 */
#ifndef PL_XMPP_JID_H
#define PL_XMPP_JID_H

#include <stddef.h>

#define JID_PART_MAX 1023

struct jid {
	char *local;      /* NULL when absent */
	char *domain;
	char *resource;   /* NULL when absent */
};

/* Parse and normalise s (len bytes, need not be NUL-terminated). On
 * PL_ERR *out is all NULL and needs no jid_free. Each part is its own
 * allocation, so a caller may swap one (e.g. the resource) and still
 * jid_free the whole. */
int jid_parse(const char *s, size_t len, struct jid *out);
void jid_free(struct jid *j);
/* Deep copy (PL_OK), or PL_ERR if src has no domain. */
int jid_copy(struct jid *dst, const struct jid *src);

/* "local@domain" or "domain"; malloc'd. */
char *jid_bare(const struct jid *j);
/* "local@domain/resource" (parts present only); malloc'd. */
char *jid_full(const struct jid *j);
/* All three parts equal. */
int jid_eq(const struct jid *a, const struct jid *b);
/* Local and domain parts equal. */
int jid_eq_bare(const struct jid *a, const struct jid *b);

/* One part normalised on its own (account names at registration, the
 * resource a client asks for at bind, configured host names): a malloc'd
 * string, or NULL if the part is not valid. */
char *jid_prep_local(const char *s, size_t len);
char *jid_prep_domain(const char *s, size_t len);
char *jid_prep_resource(const char *s, size_t len);

#endif
