/*
 * test_jid.c - XMPP addresses: RFC 7622 §3.5 examples, PRECIS (RFC 8265)
 * and IDNA2008 normalisation, limits and helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/pl.h"
#include "xmpp/jid.h"

struct good {
	const char *in, *local, *domain, *resource;
};

/* RFC 7622 §3.5.1 (Table 1), with what each normalises to */
static const struct good rfc7622_valid[] = {
	{ "juliet@example.com", "juliet", "example.com", NULL },
	{ "juliet@example.com/foo", "juliet", "example.com", "foo" },
	{ "juliet@example.com/foo bar", "juliet", "example.com", "foo bar" },
	{ "juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar" },
	{ "foo\\20bar@example.com", "foo\\20bar", "example.com", NULL },
	{ "fussball@example.com", "fussball", "example.com", NULL },
	{ "fu\xc3\x9f" "ball@example.com", "fu\xc3\x9f" "ball", "example.com", NULL },
	{ "\xcf\x80@example.com", "\xcf\x80", "example.com", NULL },
	{ "\xce\xa3@example.com/foo", "\xcf\x83", "example.com", "foo" },
	{ "\xcf\x83@example.com/foo", "\xcf\x83", "example.com", "foo" },
	{ "\xcf\x82@example.com/foo", "\xcf\x82", "example.com", "foo" },
	{ "king@example.com/\xe2\x99\x9a", "king", "example.com", "\xe2\x99\x9a" },
	{ "example.com", NULL, "example.com", NULL },
	{ "example.com/foobar", NULL, "example.com", "foobar" },
	{ "a.example.com/b@example.net", NULL, "a.example.com", "b@example.net" },
};

/* RFC 7622 §3.5.2 (Table 2) */
static const char *const rfc7622_invalid[] = {
	"\"juliet\"@example.com",
	"foo bar@example.com",
	"juliet@example.com/",
	"@example.com/",
	"henry\xe2\x85\xa3@example.com",   /* ROMAN NUMERAL FOUR */
	"\xe2\x99\x9a@example.com",         /* BLACK CHESS KING */
	"juliet@",
	"/foobar",
};

static void check_good(const struct good *g)
{
	struct jid j;

	if (jid_parse(g->in, strlen(g->in), &j) != PL_OK)
		fail_msg("rejected valid JID %s", g->in);
	if (g->local)
		assert_string_equal(j.local, g->local);
	else
		assert_null(j.local);
	assert_string_equal(j.domain, g->domain);
	if (g->resource)
		assert_string_equal(j.resource, g->resource);
	else
		assert_null(j.resource);
	jid_free(&j);
}

static void check_bad(const char *in, size_t len)
{
	struct jid j;

	if (jid_parse(in, len, &j) != PL_ERR)
		fail_msg("accepted invalid JID %.*s", (int)len, in);
	assert_null(j.local);
	assert_null(j.domain);
	assert_null(j.resource);
}

static void rfc7622_3_5_1_valid_jids(void **state)
{
	PL_UNUSED(state);
	for (size_t i = 0; i < PL_ARRAY_LEN(rfc7622_valid); i++)
		check_good(&rfc7622_valid[i]);
}

static void rfc7622_3_5_2_invalid_jids(void **state)
{
	PL_UNUSED(state);
	for (size_t i = 0; i < PL_ARRAY_LEN(rfc7622_invalid); i++)
		check_bad(rfc7622_invalid[i], strlen(rfc7622_invalid[i]));
}

static const struct good normalised[] = {
	/* case, trailing dot (§3.2), resource case kept */
	{ "Juliet@Example.COM./Balcony", "juliet", "example.com", "Balcony" },
	/* IDNA2008: U-label form whether it came as U-label or A-label */
	{ "juliet@B\xc3\xbc" "cher.Example", "juliet", "b\xc3\xbc" "cher.example", NULL },
	{ "juliet@xn--bcher-kva.example", "juliet", "b\xc3\xbc" "cher.example", NULL },
	{ "b\xc3\xbc" "cher.example\xe3\x80\x82", NULL, "b\xc3\xbc" "cher.example", NULL },
	/* width mapping and lower case in the localpart (RFC 8265 §3.3) */
	{ "\xef\xbc\xaa\xef\xbc\xb5\xef\xbc\xac\xef\xbc\xa9\xef\xbc\xa5\xef\xbc\xb4@example.com",
	  "juliet", "example.com", NULL },
	/* NFC */
	{ "cafe\xcc\x81@example.com/re\xcc\x81sume\xcc\x81", "caf\xc3\xa9", "example.com",
	  "r\xc3\xa9sum\xc3\xa9" },
	/* OpaqueString maps non-ASCII spaces to U+0020 (RFC 8265 §4.2.1) */
	{ "a@example.com/x\xc2\xa0y", "a", "example.com", "x y" },
	/* IP literals (RFC 7622 §3.2) */
	{ "juliet@192.0.2.1", "juliet", "192.0.2.1", NULL },
	{ "juliet@[::1]/r", "juliet", "[::1]", "r" },
	{ "juliet@[0:0:0:0:0:0:0:1]", "juliet", "[::1]", NULL },
	{ "juliet@[2001:DB8::1]", "juliet", "[2001:db8::1]", NULL },
	/* right-to-left localparts that satisfy the Bidi rule */
	{ "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d@example.com", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
	  "example.com", NULL },
	{ "\xd7\xa9" "1@example.com", "\xd7\xa9" "1", "example.com", NULL },
	/* the resource keeps '/' and '@'; the first '/' ends the domain */
	{ "a@b.c/d/e@f", "a", "b.c", "d/e@f" },
	{ "jul/iet@example.com", NULL, "jul", "iet@example.com" },
	/* Catalan middle dot between two l (CONTEXTO) */
	{ "col\xc2\xb7la@example.com", "col\xc2\xb7la", "example.com", NULL },
};

static void rfc8265_precis_and_idna_normalisation(void **state)
{
	PL_UNUSED(state);
	for (size_t i = 0; i < PL_ARRAY_LEN(normalised); i++)
		check_good(&normalised[i]);
}

static const char *const more_invalid[] = {
	"juliet@exa mple.com",
	"juliet@a@b",
	"juliet@ex_ample.com",
	"juliet@example..com",
	"juliet@.example.com",
	"juliet@-example.com",
	"juliet@example-.com",
	"juliet@ab--cd.com",
	"juliet@xn--abc.example",           /* not a valid A-label */
	"juliet@xn--n--dduf.example",       /* decodes to symbols IDNA2008 disallows */
	"juliet@b\xc3\xbc" "cher.exa mple",
	"juliet@a\xef\xbc\xa0" "b\xc3\xbc",   /* FULLWIDTH @ maps to '@' */
	"juliet@example.com.." ,
	"juliet@[::1",
	"juliet@[not:an:ip]",
	"juliet@\xe2\x99\x9a.example",
	"jul:iet@example.com",
	"a<b@example.com",
	"caf\xc3\xa9:x@example.com",         /* forbidden ASCII on the Unicode path */
	"caf\xc3\xa9 x@example.com",
	"a\xe2\x80\x8d" "b@example.com",    /* ZWJ not after a virama */
	"a\xd7\xa9@example.com",             /* Bidi: LTR start, RTL inside */
	"\xd7\xa9" "1\xd9\xa1@example.com",  /* Bidi: EN and AN together */
	"co\xc2\xb7la@example.com",           /* middle dot not between l and l */
	"juliet@example.com/\x01",
	"juliet@example.com/a\x7f",
	"juliet@example.com/a\xe2\x80\x8b",  /* ZERO WIDTH SPACE: default ignorable */
	"jul\xc3\x28iet@example.com",         /* invalid UTF-8 */
	"juliet@exa\xff.com",
	"juliet@example.com/\xc0\xaf",
	"@",
	"/",
	"@/",
	"a@/b",
};

static void rfc7622_invalid_parts(void **state)
{
	PL_UNUSED(state);
	for (size_t i = 0; i < PL_ARRAY_LEN(more_invalid); i++)
		check_bad(more_invalid[i], strlen(more_invalid[i]));
	check_bad("", 0);
	check_bad("jul\0iet@example.com", 19);
	check_bad("juliet@example.com/a\0b", 22);
}

static char *repeat(char c, size_t n, const char *prefix, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = pl_malloc(pl + n + sl + 1);

	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	return s;
}

static void rfc7622_3_part_lengths_1_to_1023_bytes(void **state)
{
	PL_UNUSED(state);
	struct jid j;
	char *s;

	s = repeat('a', 1023, "", "@example.com");
	assert_int_equal(jid_parse(s, strlen(s), &j), PL_OK);
	assert_int_equal(strlen(j.local), 1023);
	jid_free(&j);
	free(s);
	s = repeat('a', 1024, "", "@example.com");
	check_bad(s, strlen(s));
	free(s);

	s = repeat('r', 1023, "a@example.com/", "");
	assert_int_equal(jid_parse(s, strlen(s), &j), PL_OK);
	assert_int_equal(strlen(j.resource), 1023);
	jid_free(&j);
	free(s);
	s = repeat('r', 1024, "a@example.com/", "");
	check_bad(s, strlen(s));
	free(s);

	/* a 2-byte character repeated 512 times is 1024 bytes */
	struct buf_like { char b[2048]; } big;
	for (int i = 0; i < 512; i++)
		memcpy(big.b + 2 * i, "\xc3\xa9", 2);
	assert_null(jid_prep_local(big.b, 1024));
	assert_null(jid_prep_resource(big.b, 1024));
	char *ok = jid_prep_resource(big.b, 1022);
	assert_non_null(ok);
	assert_int_equal(strlen(ok), 1022);
	free(ok);

	s = repeat('d', 63, "a@", ".example");
	assert_int_equal(jid_parse(s, strlen(s), &j), PL_OK);
	jid_free(&j);
	free(s);
	s = repeat('d', 64, "a@", ".example");
	check_bad(s, strlen(s));
	free(s);
}

static void rfc7622_3_helpers_bare_full_equal_copy(void **state)
{
	PL_UNUSED(state);
	struct jid a, b, c, d;

	assert_int_equal(jid_parse("Juliet@Example.com/Balcony", 26, &a), PL_OK);
	assert_int_equal(jid_parse("juliet@example.com./Balcony", 27, &b), PL_OK);
	assert_int_equal(jid_parse("juliet@example.com/balcony", 26, &c), PL_OK);
	assert_int_equal(jid_parse("example.com", 11, &d), PL_OK);
	assert_true(jid_eq(&a, &b));
	assert_false(jid_eq(&a, &c));
	assert_true(jid_eq_bare(&a, &c));
	assert_false(jid_eq_bare(&a, &d));
	assert_false(jid_eq(&d, &a));

	char *bare = jid_bare(&a), *full = jid_full(&a);
	assert_string_equal(bare, "juliet@example.com");
	assert_string_equal(full, "juliet@example.com/Balcony");
	free(bare);
	free(full);
	bare = jid_bare(&d);
	full = jid_full(&d);
	assert_string_equal(bare, "example.com");
	assert_string_equal(full, "example.com");
	free(bare);
	free(full);

	struct jid e;
	assert_int_equal(jid_copy(&e, &a), PL_OK);
	jid_free(&a);
	assert_true(jid_eq(&e, &b));
	/* parts are separate allocations: swapping one is fine */
	free(e.resource);
	e.resource = jid_prep_resource("phone", 5);
	full = jid_full(&e);
	assert_string_equal(full, "juliet@example.com/phone");
	free(full);
	jid_free(&e);
	jid_free(&e);   /* idempotent */

	struct jid none = { 0 };
	assert_int_equal(jid_copy(&e, &none), PL_ERR);
	jid_free(&b);
	jid_free(&c);
	jid_free(&d);
}

static void rfc8265_parts_prepared_alone(void **state)
{
	PL_UNUSED(state);
	char *p;

	p = jid_prep_local("Romeo", 5);
	assert_string_equal(p, "romeo");
	free(p);
	assert_null(jid_prep_local("ro meo", 6));
	assert_null(jid_prep_local("", 0));
	p = jid_prep_domain("LOCALHOST", 9);
	assert_string_equal(p, "localhost");
	free(p);
	assert_null(jid_prep_domain(".", 1));
	p = jid_prep_resource("Pho ne", 6);
	assert_string_equal(p, "Pho ne");
	free(p);
	assert_null(jid_prep_resource("", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc7622_3_5_1_valid_jids),
		cmocka_unit_test(rfc7622_3_5_2_invalid_jids),
		cmocka_unit_test(rfc8265_precis_and_idna_normalisation),
		cmocka_unit_test(rfc7622_invalid_parts),
		cmocka_unit_test(rfc7622_3_part_lengths_1_to_1023_bytes),
		cmocka_unit_test(rfc7622_3_helpers_bare_full_equal_copy),
		cmocka_unit_test(rfc8265_parts_prepared_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
