/*
 * test_tls.c - channel binding data of a server-side TLS session
 * (RFC 5929 tls-unique and tls-server-end-point, RFC 9266 tls-exporter),
 * checked against what the client side of the same handshake computes.
 *
 * Client and server are two OpenSSL SSL objects joined by a BIO pair, so a
 * full handshake runs in memory; the server's key and self-signed
 * certificate are made here, one per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/tls.h"

#define EXPORTER_LABEL "EXPORTER-Channel-Binding"

struct pair {
	SSL_CTX *sctx, *cctx;
	SSL *server, *client;
	X509 *cert;
	EVP_PKEY *key;
};

/* A self-signed certificate for "localhost", signed with md. */
static void make_cert(struct pair *p, const EVP_MD *md)
{
	p->key = EVP_EC_gen("P-256");
	assert_non_null(p->key);
	p->cert = X509_new();
	assert_non_null(p->cert);
	X509_set_version(p->cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(p->cert), 4711);
	X509_gmtime_adj(X509_getm_notBefore(p->cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(p->cert), 3600);
	X509_set_pubkey(p->cert, p->key);
	X509_NAME *name = X509_get_subject_name(p->cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
				   -1, -1, 0);
	X509_set_issuer_name(p->cert, name);
	assert_true(X509_sign(p->cert, p->key, md) > 0);
}

/* Drive both ends until both finished the handshake (bounded: a handshake
 * is a few flights; hundreds of rounds means it is stuck). */
static void handshake(struct pair *p)
{
	int cdone = 0, sdone = 0;

	for (int round = 0; round < 200 && !(cdone && sdone); round++) {
		if (!cdone) {
			int rc = SSL_do_handshake(p->client);
			if (rc == 1)
				cdone = 1;
			else
				assert_int_equal(SSL_get_error(p->client, rc), SSL_ERROR_WANT_READ);
		}
		if (!sdone) {
			int rc = SSL_do_handshake(p->server);
			if (rc == 1)
				sdone = 1;
			else
				assert_int_equal(SSL_get_error(p->server, rc), SSL_ERROR_WANT_READ);
		}
	}
	assert_true(cdone && sdone);
}

/* Contexts for one protocol version; the certificate is signed with md. */
static void pair_setup(struct pair *p, int version, const EVP_MD *md)
{
	memset(p, 0, sizeof(*p));
	make_cert(p, md);
	p->sctx = SSL_CTX_new(TLS_server_method());
	p->cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(p->sctx);
	assert_non_null(p->cctx);
	/* A SHA-1 signed certificate is refused at the distribution's default
	 * security level; the digest is what is under test, not the policy. */
	SSL_CTX_set_security_level(p->sctx, 0);
	SSL_CTX_set_security_level(p->cctx, 0);
	assert_int_equal(SSL_CTX_set_min_proto_version(p->sctx, version), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(p->sctx, version), 1);
	assert_int_equal(SSL_CTX_set_min_proto_version(p->cctx, version), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(p->cctx, version), 1);
	assert_int_equal(SSL_CTX_use_certificate(p->sctx, p->cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(p->sctx, p->key), 1);
	SSL_CTX_set_verify(p->cctx, SSL_VERIFY_NONE, NULL);
}

static void pair_connect(struct pair *p, SSL_SESSION *resume)
{
	BIO *cbio = NULL, *sbio = NULL;

	p->server = SSL_new(p->sctx);
	p->client = SSL_new(p->cctx);
	assert_non_null(p->server);
	assert_non_null(p->client);
	assert_int_equal(BIO_new_bio_pair(&cbio, 0, &sbio, 0), 1);
	SSL_set_bio(p->client, cbio, cbio);
	SSL_set_bio(p->server, sbio, sbio);
	SSL_set_connect_state(p->client);
	SSL_set_accept_state(p->server);
	if (resume)
		assert_int_equal(SSL_set_session(p->client, resume), 1);
	handshake(p);
}

/* A close_notify from each end: a session torn down without one is
 * treated as bad and never resumed. */
static void pair_disconnect(struct pair *p)
{
	if (p->client && p->server) {
		SSL_shutdown(p->client);
		SSL_shutdown(p->server);
	}
	SSL_free(p->client);
	SSL_free(p->server);
	p->client = p->server = NULL;
}

static void pair_free(struct pair *p)
{
	pair_disconnect(p);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
	X509_free(p->cert);
	EVP_PKEY_free(p->key);
	ERR_clear_error();
}

static void client_exporter(SSL *client, uint8_t out[32])
{
	assert_int_equal(SSL_export_keying_material(client, out, 32, EXPORTER_LABEL,
						    strlen(EXPORTER_LABEL), NULL, 0, 0), 1);
}

static size_t cert_digest(X509 *cert, const EVP_MD *md, uint8_t *out)
{
	unsigned int len = 0;
	uint8_t *der = NULL;
	int dlen = i2d_X509(cert, &der);

	assert_true(dlen > 0);
	assert_int_equal(EVP_Digest(der, (size_t)dlen, out, &len, md, NULL), 1);
	OPENSSL_free(der);
	return len;
}

/* ---- tls-exporter (RFC 9266 section 2) ---- */

static void exporter_matches_client(int version)
{
	struct pair p;
	uint8_t got[64], want[32], first[32];

	pair_setup(&p, version, EVP_sha256());
	pair_connect(&p, NULL);
	assert_int_equal(SSL_version(p.server), version);
	assert_int_equal(tls_channel_binding(p.server, "tls-exporter", got, sizeof(got)), 32);
	client_exporter(p.client, want);
	assert_memory_equal(got, want, 32);
	memcpy(first, got, 32);
	pair_disconnect(&p);

	/* Another connection has other keys: the binding is not a constant. */
	pair_connect(&p, NULL);
	assert_int_equal(tls_channel_binding(p.server, "tls-exporter", got, sizeof(got)), 32);
	client_exporter(p.client, want);
	assert_memory_equal(got, want, 32);
	assert_memory_not_equal(got, first, 32);
	pair_free(&p);
}

static void rfc9266_2_tls_exporter_tls13_equals_client_export(void **state)
{
	(void)state;
	exporter_matches_client(TLS1_3_VERSION);
}

static void rfc9266_2_tls_exporter_tls12_equals_client_export(void **state)
{
	(void)state;
	exporter_matches_client(TLS1_2_VERSION);
}

/* RFC 9266 §2, RFC 7627: without Extended Master Secret a TLS 1.2 session's
 * exporter and Finished values are not unique, so neither binds. */
static void rfc9266_2_no_exporter_or_unique_on_tls12_without_ems(void **state)
{
	struct pair p;
	uint8_t out[64];

	(void)state;
	pair_setup(&p, TLS1_2_VERSION, EVP_sha256());
	SSL_CTX_set_options(p.cctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
	pair_connect(&p, NULL);
	assert_int_equal(SSL_get_extms_support(p.server), 0);
	assert_false(tls_binding_usable(p.server, "tls-exporter"));
	assert_false(tls_binding_usable(p.server, "tls-unique"));
	assert_true(tls_binding_usable(p.server, "tls-server-end-point"));
	assert_int_equal(tls_channel_binding(p.server, "tls-exporter", out, sizeof(out)), 0);
	assert_int_equal(tls_channel_binding(p.server, "tls-unique", out, sizeof(out)), 0);
	assert_int_equal(tls_channel_binding(p.server, "tls-server-end-point", out, sizeof(out)), 32);
	pair_free(&p);
}

static void rfc9266_2_tls_exporter_needs_32_bytes_of_room(void **state)
{
	struct pair p;
	uint8_t got[31];

	(void)state;
	pair_setup(&p, TLS1_3_VERSION, EVP_sha256());
	pair_connect(&p, NULL);
	memset(got, 0xa5, sizeof(got));
	assert_int_equal(tls_channel_binding(p.server, "tls-exporter", got, sizeof(got)), 0);
	pair_free(&p);
}

/* ---- tls-server-end-point (RFC 5929 section 4) ---- */

static void end_point(int version, const EVP_MD *sig_md, const EVP_MD *want_md)
{
	struct pair p;
	uint8_t got[64], want[EVP_MAX_MD_SIZE], peer[EVP_MAX_MD_SIZE];

	pair_setup(&p, version, sig_md);
	pair_connect(&p, NULL);
	size_t wlen = cert_digest(p.cert, want_md, want);
	size_t glen = tls_channel_binding(p.server, "tls-server-end-point", got, sizeof(got));
	assert_int_equal(glen, wlen);
	assert_memory_equal(got, want, wlen);
	/* The client hashes the certificate it was sent: the same bytes. */
	X509 *seen = SSL_get0_peer_certificate(p.client);
	assert_non_null(seen);
	assert_int_equal(cert_digest(seen, want_md, peer), wlen);
	assert_memory_equal(got, peer, wlen);
	pair_free(&p);
}

static void rfc5929_4_1_end_point_ecdsa_sha256_certificate(void **state)
{
	(void)state;
	end_point(TLS1_3_VERSION, EVP_sha256(), EVP_sha256());
	end_point(TLS1_2_VERSION, EVP_sha256(), EVP_sha256());
}

static void rfc5929_4_1_end_point_uses_the_signature_hash_sha384(void **state)
{
	(void)state;
	end_point(TLS1_3_VERSION, EVP_sha384(), EVP_sha384());
}

static void rfc5929_4_1_end_point_sha1_signature_upgraded_to_sha256(void **state)
{
	(void)state;
	end_point(TLS1_2_VERSION, EVP_sha1(), EVP_sha256());
}

static void rfc5929_4_end_point_needs_a_certificate(void **state)
{
	struct pair p;
	uint8_t got[64];

	(void)state;
	pair_setup(&p, TLS1_3_VERSION, EVP_sha256());
	pair_connect(&p, NULL);
	/* The client end has no certificate of its own to bind to. */
	assert_int_equal(tls_channel_binding(p.client, "tls-server-end-point", got, sizeof(got)), 0);
	/* No room for a SHA-256 digest. */
	assert_int_equal(tls_channel_binding(p.server, "tls-server-end-point", got, 16), 0);
	pair_free(&p);
}

/* ---- tls-unique (RFC 5929 section 3) ---- */

static void rfc5929_3_1_tls_unique_tls12_is_the_client_finished(void **state)
{
	struct pair p;
	uint8_t got[64], want[64], other[64];

	(void)state;
	pair_setup(&p, TLS1_2_VERSION, EVP_sha256());
	pair_connect(&p, NULL);
	size_t wlen = SSL_get_finished(p.client, want, sizeof(want));
	assert_int_equal(wlen, 12);       /* verify_data_length in TLS 1.2 */
	assert_int_equal(tls_channel_binding(p.server, "tls-unique", got, sizeof(got)), wlen);
	assert_memory_equal(got, want, wlen);
	/* Not the server's Finished: that one is second in a full handshake. */
	assert_int_equal(SSL_get_finished(p.server, other, sizeof(other)), 12);
	assert_memory_not_equal(got, other, 12);
	/* Too small a buffer gives nothing rather than a truncated value. */
	assert_int_equal(tls_channel_binding(p.server, "tls-unique", got, 8), 0);
	pair_free(&p);
}

/* Not defined for TLS 1.3 (RFC 9266 section 3) but computed by some
 * clients from the client Finished: the server must agree with them. */
static void tls_unique_tls13_is_the_client_finished_as_clients_compute_it(void **state)
{
	struct pair p;
	uint8_t got[64], want[64];

	(void)state;
	pair_setup(&p, TLS1_3_VERSION, EVP_sha256());
	pair_connect(&p, NULL);
	size_t wlen = SSL_get_finished(p.client, want, sizeof(want));
	assert_true(wlen >= 32 && wlen <= 48);
	assert_int_equal(tls_channel_binding(p.server, "tls-unique", got, sizeof(got)), wlen);
	assert_memory_equal(got, want, wlen);
	pair_free(&p);
}

/* In an abbreviated handshake the first Finished is the server's
 * (RFC 5929 section 3.1): either that, or nothing at all. Never the
 * client's, which an attacker relaying a resumption could line up. */
static void rfc5929_3_1_tls_unique_after_resumption(void **state)
{
	struct pair p;
	uint8_t got[64], server_fin[64], client_fin[64];

	(void)state;
	pair_setup(&p, TLS1_2_VERSION, EVP_sha256());
	SSL_CTX_set_session_cache_mode(p.sctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(p.sctx, (const unsigned char *)"test", 4);
	pair_connect(&p, NULL);
	SSL_SESSION *sess = SSL_get1_session(p.client);
	assert_non_null(sess);
	pair_disconnect(&p);
	pair_connect(&p, sess);
	SSL_SESSION_free(sess);
	assert_true(SSL_session_reused(p.server));
	size_t slen = SSL_get_finished(p.server, server_fin, sizeof(server_fin));
	size_t clen = SSL_get_finished(p.client, client_fin, sizeof(client_fin));
	assert_int_equal(slen, 12);
	assert_int_equal(clen, 12);
	size_t n = tls_channel_binding(p.server, "tls-unique", got, sizeof(got));
	if (n != 0) {
		assert_int_equal(n, slen);
		assert_memory_equal(got, server_fin, slen);
	}
	assert_false(n == clen && memcmp(got, client_fin, clen) == 0);
	pair_free(&p);
}

/* ---- what is not a binding ---- */

static void rfc5056_unknown_binding_types_give_nothing(void **state)
{
	struct pair p;
	uint8_t got[64];
	static const char *const bad[] = {
		"unknown-type", "", "TLS-EXPORTER", "tls-exporter ", "tls-unique-for-telnet",
		"tls-server-end-point\n",
	};

	(void)state;
	pair_setup(&p, TLS1_2_VERSION, EVP_sha256());
	pair_connect(&p, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(got, 0x5a, sizeof(got));
		assert_int_equal(tls_channel_binding(p.server, bad[i], got, sizeof(got)), 0);
	}
	/* No session at all. */
	assert_int_equal(tls_channel_binding(NULL, "tls-exporter", got, sizeof(got)), 0);
	assert_int_equal(tls_channel_binding(NULL, "tls-server-end-point", got, sizeof(got)), 0);
	assert_int_equal(tls_channel_binding(NULL, "tls-unique", got, sizeof(got)), 0);
	pair_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc9266_2_tls_exporter_tls13_equals_client_export),
		cmocka_unit_test(rfc9266_2_tls_exporter_tls12_equals_client_export),
		cmocka_unit_test(rfc9266_2_tls_exporter_needs_32_bytes_of_room),
		cmocka_unit_test(rfc9266_2_no_exporter_or_unique_on_tls12_without_ems),
		cmocka_unit_test(rfc5929_4_1_end_point_ecdsa_sha256_certificate),
		cmocka_unit_test(rfc5929_4_1_end_point_uses_the_signature_hash_sha384),
		cmocka_unit_test(rfc5929_4_1_end_point_sha1_signature_upgraded_to_sha256),
		cmocka_unit_test(rfc5929_4_end_point_needs_a_certificate),
		cmocka_unit_test(rfc5929_3_1_tls_unique_tls12_is_the_client_finished),
		cmocka_unit_test(tls_unique_tls13_is_the_client_finished_as_clients_compute_it),
		cmocka_unit_test(rfc5929_3_1_tls_unique_after_resumption),
		cmocka_unit_test(rfc5056_unknown_binding_types_give_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
