/*
 * test_scram.c - SCRAM server side against the RFC example exchanges
 * (RFC 5802 section 5, RFC 7677 section 3) and malformed client messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/pl.h"
#include "core/scram.h"

struct rfc_example {
	enum scram_hash hash;
	const char *password;
	const char *salt64;
	int iterations;
	const char *client_first;
	const char *server_nonce;
	const char *server_first;
	const char *client_final;
	const char *server_final;
};

static const struct rfc_example rfc5802 = {
	SCRAM_SHA1, "pencil", "QSXCR+Q6sek8bf92", 4096,
	"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	"3rfcNHYJY1ZVvWVs7j",
	"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

static const struct rfc_example rfc7677 = {
	SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096,
	"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

static void example_creds(const struct rfc_example *ex, struct scram_creds *c)
{
	uint8_t salt[SCRAM_MAX_SALT];
	long n = base64_decode(ex->salt64, strlen(ex->salt64), salt, sizeof(salt));

	assert_true(n > 0);
	assert_int_equal(scram_make_creds(ex->hash, ex->password, salt, (size_t)n,
					  ex->iterations, c), PL_OK);
}

/* Runs the exchange up to server-first with the example's nonce. */
static void start_exchange(const struct rfc_example *ex, struct scram_server *s,
			   struct scram_creds *c)
{
	const char *why = "unset";
	struct buf out = {0};

	memset(s, 0, sizeof(*s));
	example_creds(ex, c);
	scram_server_set_nonce_for_test(s, ex->server_nonce);
	assert_int_equal(scram_server_client_first(s, ex->hash, ex->client_first,
						   strlen(ex->client_first), &why), PL_OK);
	assert_null(why);
	assert_string_equal(s->username, "user");
	assert_null(s->authzid);
	assert_string_equal(s->gs2_header, "n,,");
	assert_int_equal(scram_server_first(s, c, &out), PL_OK);
	assert_string_equal(buf_cstr(&out), ex->server_first);
	buf_free(&out);
}

static void run_example(const struct rfc_example *ex)
{
	struct scram_server s;
	struct scram_creds c;
	struct buf out = {0};
	const char *why = "unset";

	start_exchange(ex, &s, &c);
	assert_int_equal(scram_server_final(&s, ex->client_final, strlen(ex->client_final),
					    &out, &why), PL_OK);
	assert_null(why);
	assert_string_equal(buf_cstr(&out), ex->server_final);
	buf_free(&out);
	scram_server_clear(&s);
}

static void rfc5802_5_sha1_example_exchange(void **state)
{
	(void)state;
	run_example(&rfc5802);
}

static void rfc7677_3_sha256_example_exchange(void **state)
{
	(void)state;
	run_example(&rfc7677);
}

static void expect_keys(const struct rfc_example *ex, const char *stored64,
			const char *server64)
{
	struct scram_creds c;
	char b64[64];

	example_creds(ex, &c);
	assert_int_equal(c.key_len, scram_hash_len(ex->hash));
	assert_int_equal(c.iterations, ex->iterations);
	base64_encode(c.stored_key, c.key_len, b64, sizeof(b64));
	assert_string_equal(b64, stored64);
	base64_encode(c.server_key, c.key_len, b64, sizeof(b64));
	assert_string_equal(b64, server64);
}

/* StoredKey = H(HMAC(SaltedPassword, "Client Key")),
 * ServerKey = HMAC(SaltedPassword, "Server Key"), for the examples' inputs */
static void rfc5802_3_stored_and_server_keys(void **state)
{
	struct scram_creds c;
	uint8_t salt[4] = { 1, 2, 3, 4 };

	(void)state;
	expect_keys(&rfc5802, "6dlGYMOdZcOPutkcNY8U2g7vK9Y=", "D+CSWLOshSulAsxiupA+qs2/fTE=");
	expect_keys(&rfc7677, "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
		    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
	/* no iterations, no salt, an oversized salt: refused */
	assert_int_equal(scram_make_creds(SCRAM_SHA256, "pencil", salt, sizeof(salt), 0, &c),
			 PL_ERR);
	assert_int_equal(scram_make_creds(SCRAM_SHA256, "pencil", salt, 0, 4096, &c), PL_ERR);
	assert_int_equal(scram_make_creds(SCRAM_SHA256, "pencil", salt, SCRAM_MAX_SALT + 1,
					  4096, &c), PL_ERR);
}

/* Feeds a final message after a good start and expects a refusal. */
static void expect_final_refused(const struct rfc_example *ex, const char *final,
				 const char *want_why)
{
	struct scram_server s;
	struct scram_creds c;
	struct buf out = {0};
	const char *why = NULL;

	start_exchange(ex, &s, &c);
	assert_int_equal(scram_server_final(&s, final, strlen(final), &out, &why), PL_ERR);
	assert_non_null(why);
	assert_string_equal(why, want_why);
	assert_int_equal(buf_used(&out), 0);
	buf_free(&out);
	scram_server_clear(&s);
}

static void rfc5802_5_wrong_proof_not_authorized(void **state)
{
	(void)state;
	/* the RFC 5802 proof with its last symbol changed */
	expect_final_refused(&rfc5802,
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Tw=",
		"not-authorized");
	/* a proof made with another password: the other example's, same length */
	expect_final_refused(&rfc7677,
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		"p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"not-authorized");
}

static void rfc5802_5_nonce_mismatch_not_authorized(void **state)
{
	(void)state;
	expect_final_refused(&rfc5802,
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawLXXXXXXXXXXXXXXXXXX,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"not-authorized");
	/* the client nonce alone is not enough */
	expect_final_refused(&rfc5802,
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"not-authorized");
}

static void rfc5802_7_channel_binding_must_echo_gs2_header(void **state)
{
	(void)state;
	/* "eSws" is "y,,": not the header the client sent ("n,,") */
	expect_final_refused(&rfc5802,
		"c=eSws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"not-authorized");
}

static void rfc5802_7_client_final_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"c=biws,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=",
		/* proof of the wrong length for SHA-1 */
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAAA",
		/* the proof must be last */
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=,x=1",
		/* an attribute that is not attr=value */
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,junk,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	};

	(void)state;
	for (size_t i = 0; i < PL_ARRAY_LEN(bad); i++)
		expect_final_refused(&rfc5802, bad[i], "malformed-request");
	expect_final_refused(&rfc5802,
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0C*GbJQyF0X+HI4Ts=",
		"incorrect-encoding");
}

static void rfc5802_5_1_extension_before_proof_accepted(void **state)
{
	struct scram_server s;
	struct scram_creds c;
	struct buf out = {0};
	const char *why = "unset";
	/* an extension changes the AuthMessage, so the RFC proof no longer
	 * matches: it must be refused for the proof, not for the syntax */
	const char *final =
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,x=y,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";

	(void)state;
	start_exchange(&rfc5802, &s, &c);
	assert_int_equal(scram_server_final(&s, final, strlen(final), &out, &why), PL_ERR);
	assert_string_equal(why, "not-authorized");
	buf_free(&out);
	scram_server_clear(&s);
}

static void expect_first(const char *msg, int want_rc, const char *want_why)
{
	struct scram_server s;
	const char *why = NULL;

	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_server_client_first(&s, SCRAM_SHA256, msg, strlen(msg), &why),
			 want_rc);
	if (want_why)
		assert_string_equal(why, want_why);
	else
		assert_null(why);
	scram_server_clear(&s);
}

static void rfc5802_7_client_first_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"n",
		"n,",
		"n,,",
		"x,,n=user,r=abc",
		"n,,r=abc",                 /* no username */
		"n,,n=,r=abc",              /* empty username */
		"n,,n=user",                /* no nonce */
		"n,,n=user,r=",             /* empty nonce */
		"n,,n=user,r=a b",          /* nonce not printable */
		"n,,n=us=2Xer,r=abc",       /* only =2C and =3D escapes exist */
		"n,,n=user=,r=abc",         /* dangling escape */
		"n,,n=user=2,r=abc",
		"n,,m=ext,n=user,r=abc",    /* mandatory extension we do not know */
		"n,,n=user,r=abc,junk",     /* extension that is not attr=value */
		"nn,,n=user,r=abc",
	};

	(void)state;
	for (size_t i = 0; i < PL_ARRAY_LEN(bad); i++)
		expect_first(bad[i], PL_ERR, "malformed-request");
}

static void rfc5802_7_channel_binding_p_refused(void **state)
{
	(void)state;
	expect_first("p=tls-exporter,,n=user,r=abc", PL_ERR, "malformed-request");
}

static void rfc5802_7_flag_y_accepted(void **state)
{
	struct scram_server s;
	const char *why = "unset";
	const char *msg = "y,,n=user,r=abc";

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_server_client_first(&s, SCRAM_SHA1, msg, strlen(msg), &why), PL_OK);
	assert_string_equal(s.gs2_header, "y,,");
	assert_string_equal(s.client_first_bare, "n=user,r=abc");
	scram_server_clear(&s);
}

static void rfc5802_5_1_saslname_escapes_decoded(void **state)
{
	struct scram_server s;
	const char *why = "unset";
	const char *msg = "n,a=admin=2Cx=3Dy,n=a=2Cb=3Dc,r=abc,e=1";

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_server_client_first(&s, SCRAM_SHA1, msg, strlen(msg), &why), PL_OK);
	assert_string_equal(s.username, "a,b=c");
	assert_string_equal(s.authzid, "admin,x=y");
	assert_string_equal(s.gs2_header, "n,a=admin=2Cx=3Dy,");
	assert_string_equal(s.client_first_bare, "n=a=2Cb=3Dc,r=abc,e=1");
	scram_server_clear(&s);
}

static void rfc6120_6_5_bad_authzid_invalid_authzid(void **state)
{
	(void)state;
	expect_first("n,a=,n=user,r=abc", PL_ERR, "invalid-authzid");
	expect_first("n,a=bad=ZZ,n=user,r=abc", PL_ERR, "invalid-authzid");
	expect_first("n,b=x,n=user,r=abc", PL_ERR, "malformed-request");
}

static void rfc5802_client_first_embedded_nul_refused(void **state)
{
	struct scram_server s;
	const char *why = NULL;
	static const char msg[] = "n,,n=us\0er,r=abc";

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_server_client_first(&s, SCRAM_SHA1, msg, sizeof(msg) - 1, &why),
			 PL_ERR);
	assert_string_equal(why, "malformed-request");
	scram_server_clear(&s);
}

static void scram_final_before_first_refused(void **state)
{
	struct scram_server s;
	struct buf out = {0};
	const char *why = NULL;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(scram_server_final(&s, rfc5802.client_final,
					    strlen(rfc5802.client_final), &out, &why), PL_ERR);
	assert_non_null(why);
}

static void scram_random_server_nonce_is_fresh(void **state)
{
	struct scram_server a, b;
	struct scram_creds c;
	struct buf oa = {0}, ob = {0};
	const char *why;
	const char *msg = "n,,n=user,r=abc";

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	example_creds(&rfc7677, &c);
	assert_int_equal(scram_server_client_first(&a, SCRAM_SHA256, msg, strlen(msg), &why), PL_OK);
	assert_int_equal(scram_server_client_first(&b, SCRAM_SHA256, msg, strlen(msg), &why), PL_OK);
	assert_int_equal(scram_server_first(&a, &c, &oa), PL_OK);
	assert_int_equal(scram_server_first(&b, &c, &ob), PL_OK);
	assert_true(strncmp(buf_cstr(&oa), "r=abc", 5) == 0);
	/* 18 random bytes are 24 base64 characters after the client's nonce */
	assert_int_equal(strlen(a.nonce), 3 + 24);
	assert_string_not_equal(a.nonce, b.nonce);
	assert_null(strchr(a.nonce, ','));
	/* keys of the wrong hash are refused */
	scram_server_clear(&b);
	assert_int_equal(scram_server_client_first(&b, SCRAM_SHA1, msg, strlen(msg), &why), PL_OK);
	assert_int_equal(scram_server_first(&b, &c, &ob), PL_ERR);
	buf_free(&oa);
	buf_free(&ob);
	scram_server_clear(&a);
	scram_server_clear(&b);
}

static void rfc4648_base64_vectors(void **state)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };
	char out[32];
	uint8_t raw[32];

	(void)state;
	for (size_t i = 0; i < PL_ARRAY_LEN(plain); i++) {
		base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out, sizeof(out));
		assert_string_equal(out, enc[i]);
		assert_int_equal(base64_decode(enc[i], strlen(enc[i]), raw, sizeof(raw)),
				 (long)strlen(plain[i]));
		assert_memory_equal(raw, plain[i], strlen(plain[i]));
	}
	/* strict: no missing padding, no junk, no data after '=', canonical */
	assert_int_equal(base64_decode("Zg", 2, raw, sizeof(raw)), -1);
	assert_int_equal(base64_decode("Zg=a", 4, raw, sizeof(raw)), -1);
	assert_int_equal(base64_decode("Z===", 4, raw, sizeof(raw)), -1);
	assert_int_equal(base64_decode("Zh==", 4, raw, sizeof(raw)), -1);
	assert_int_equal(base64_decode("Zm9v\n", 5, raw, sizeof(raw)), -1);
	assert_int_equal(base64_decode("Zg==Zg==", 8, raw, sizeof(raw)), -1);
	/* output too small */
	assert_int_equal(base64_decode("Zm9vYmFy", 8, raw, 5), -1);
	assert_int_equal(base64_encode((const uint8_t *)"foo", 3, out, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc5802_5_sha1_example_exchange),
		cmocka_unit_test(rfc7677_3_sha256_example_exchange),
		cmocka_unit_test(rfc5802_3_stored_and_server_keys),
		cmocka_unit_test(rfc5802_5_wrong_proof_not_authorized),
		cmocka_unit_test(rfc5802_5_nonce_mismatch_not_authorized),
		cmocka_unit_test(rfc5802_7_channel_binding_must_echo_gs2_header),
		cmocka_unit_test(rfc5802_7_client_final_malformed),
		cmocka_unit_test(rfc5802_5_1_extension_before_proof_accepted),
		cmocka_unit_test(rfc5802_7_client_first_malformed),
		cmocka_unit_test(rfc5802_7_channel_binding_p_refused),
		cmocka_unit_test(rfc5802_7_flag_y_accepted),
		cmocka_unit_test(rfc5802_5_1_saslname_escapes_decoded),
		cmocka_unit_test(rfc6120_6_5_bad_authzid_invalid_authzid),
		cmocka_unit_test(rfc5802_client_first_embedded_nul_refused),
		cmocka_unit_test(scram_final_before_first_refused),
		cmocka_unit_test(scram_random_server_nonce_is_fresh),
		cmocka_unit_test(rfc4648_base64_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
