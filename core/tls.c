/*
 * tls.c - one SSL_CTX per virtual host, certificates from certfiles or
 * generated once (self-signed, ECDSA P-256) into DATA_DIR/certs/HOST.pem.
 * SNI picks the host's context; without SNI the first host's is used.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <fcntl.h>

#include "core/cfg.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/tls.h"

struct tls_host {
	char *host;
	SSL_CTX *ctx;
};

static struct tls_host *tls_hosts;
static size_t ntls_hosts;

static void tls_err(char *err, size_t errlen, const char *what)
{
	char reason[256] = "";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, reason[0] ? ": " : "", reason);
}

static int tls_generate(const char *host, const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int rc = PL_ERR;
	FILE *f = NULL;
	if (!key || !x) {
		tls_err(err, errlen, "cannot generate a key");
		goto out;
	}
	X509_set_version(x, 2);
	uint8_t serial[16];
	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Parley", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)host, -1, -1, 0);
	X509_set_issuer_name(x, name);
	char san[600];
	snprintf(san, sizeof(san), "DNS:%s,DNS:*.%s", host, host);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (!ext) {
		tls_err(err, errlen, "cannot build subjectAltName");
		goto out;
	}
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!X509_sign(x, key, EVP_sha256())) {
		tls_err(err, errlen, "cannot sign certificate");
		goto out;
	}
	char tmp[4400];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (!PEM_write_X509(f, x) || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errlen, "cannot write %s", tmp);
		goto out;
	}
	fclose(f);
	f = NULL;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	log_info("tls: generated a self-signed certificate for %s in %s", host, path);
	rc = PL_OK;
out:
	if (f)
		fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* Does the certificate in PEM file `path` name `host` (SAN DNS or CN)? */
static bool tls_file_names_host(const char *path, const char *host)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	if (!x)
		return false;
	bool match = X509_check_host(x, host, 0, 0, NULL) == 1;
	X509_free(x);
	return match;
}

static int tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	PL_UNUSED(alert);
	PL_UNUSED(arg);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (!name)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < ntls_hosts; i++) {
		if (strcasecmp(tls_hosts[i].host, name) == 0) {
			if (SSL_get_SSL_CTX(ssl) != tls_hosts[i].ctx)
				SSL_set_SSL_CTX(ssl, tls_hosts[i].ctx);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *tls_ctx_new(const char *pem, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_err(err, errlen, "cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle sessions give their record buffers back (49 KB -> 16 KB each). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_sni_cb);
	if (SSL_CTX_use_certificate_chain_file(ctx, pem) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, pem, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char what[4400];
		snprintf(what, sizeof(what), "tls: cannot load certificate and key from %s", pem);
		tls_err(err, errlen, what);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_init(char *err, size_t errlen)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/certs", cfg->data_dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "tls: cannot create %s: %s", dir, strerror(errno));
		return PL_ERR;
	}
	tls_hosts = pl_calloc(cfg->nhosts, sizeof(*tls_hosts));
	for (size_t h = 0; h < cfg->nhosts; h++) {
		const char *host = cfg->hosts[h];
		const char *pem = NULL;
		for (size_t i = 0; i < cfg->ncertfiles && !pem; i++)
			if (tls_file_names_host(cfg->certfiles[i], host))
				pem = cfg->certfiles[i];
		char gen[4200];
		if (!pem) {
			snprintf(gen, sizeof(gen), "%s/%s.pem", dir, host);
			if (access(gen, R_OK) != 0 && tls_generate(host, gen, err, errlen) != PL_OK)
				return PL_ERR;
			pem = gen;
		}
		SSL_CTX *ctx = tls_ctx_new(pem, err, errlen);
		if (!ctx)
			return PL_ERR;
		tls_hosts[ntls_hosts].host = pl_strdup(host);
		tls_hosts[ntls_hosts].ctx = ctx;
		ntls_hosts++;
	}
	return PL_OK;
}

SSL_CTX *tls_ctx_for(const char *host)
{
	if (ntls_hosts == 0)
		return NULL;
	for (size_t i = 0; host && i < ntls_hosts; i++)
		if (strcasecmp(tls_hosts[i].host, host) == 0)
			return tls_hosts[i].ctx;
	return tls_hosts[0].ctx;
}

void tls_shutdown(void)
{
	for (size_t i = 0; i < ntls_hosts; i++) {
		SSL_CTX_free(tls_hosts[i].ctx);
		free(tls_hosts[i].host);
	}
	free(tls_hosts);
	tls_hosts = NULL;
	ntls_hosts = 0;
}

/* RFC 5929 §4.1: the certificate's hash, upgraded to SHA-256 when it is
 * signed with MD5 or SHA-1. */
static size_t tls_cb_end_point(SSL *ssl, uint8_t *out, size_t outlen)
{
	X509 *cert = SSL_get_certificate(ssl);
	int mdnid = NID_undef;
	if (!cert || !X509_get_signature_info(cert, &mdnid, NULL, NULL, NULL))
		return 0;
	const EVP_MD *md = (mdnid == NID_md5 || mdnid == NID_sha1 || mdnid == NID_undef)
		? EVP_sha256() : EVP_get_digestbynid(mdnid);
	unsigned int len = 0;
	if (!md || (size_t)EVP_MD_get_size(md) > outlen || !X509_digest(cert, md, out, &len))
		return 0;
	return len;
}

bool tls_binding_usable(SSL *ssl, const char *type)
{
	if (!ssl)
		return false;
	if (strcmp(type, "tls-server-end-point") == 0)
		return true;
	if (strcmp(type, "tls-exporter") != 0 && strcmp(type, "tls-unique") != 0)
		return false;
	/* Without Extended Master Secret a TLS 1.2 master secret can be made
	 * equal on two connections (RFC 7627), so neither binding is unique
	 * there (RFC 9266 §2). */
	return SSL_version(ssl) >= TLS1_3_VERSION || SSL_get_extms_support(ssl) == 1;
}

size_t tls_channel_binding(SSL *ssl, const char *type, uint8_t *out, size_t outlen)
{
	if (!tls_binding_usable(ssl, type))
		return 0;
	if (strcmp(type, "tls-exporter") == 0) {
		static const char label[] = "EXPORTER-Channel-Binding";
		if (outlen < 32 ||
		    SSL_export_keying_material(ssl, out, 32, label, sizeof(label) - 1, NULL, 0, 0) != 1)
			return 0;
		return 32;
	}
	if (strcmp(type, "tls-server-end-point") == 0)
		return tls_cb_end_point(ssl, out, outlen);
	if (strcmp(type, "tls-unique") == 0) {
		/* The first Finished of the handshake: the client's, in a full
		 * handshake. Some clients also compute it this way under TLS 1.3
		 * (where RFC 9266 says to use tls-exporter instead). */
		if (SSL_session_reused(ssl))
			return 0;
		size_t n = SSL_get_peer_finished(ssl, out, outlen);
		return n <= outlen ? n : 0;
	}
	return 0;
}
