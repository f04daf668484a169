/*
 * scram.c - SCRAM-SHA-1 / SCRAM-SHA-256 server side (RFC 5802, RFC 7677).
 *
 * The exchange is three steps: parse client-first, answer server-first,
 * verify client-final and answer server-final. Failure conditions are the
 * SASL ones of RFC 6120 section 6.5 so that c2s can put them on the wire as
 * they are. Passwords are expected already prepared (SASLprep is the
 * caller's, like username normalisation).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/pl.h"
#include "core/scram.h"

#define SERVER_NONCE_BYTES 18
/* client-first and client-final are small; anything larger is an attack */
#define SCRAM_MAX_MSG 4096

static const EVP_MD *scram_md(enum scram_hash h)
{
	return h == SCRAM_SHA256 ? EVP_sha256() : EVP_sha1();
}

size_t scram_hash_len(enum scram_hash h)
{
	return h == SCRAM_SHA256 ? 32 : 20;
}

static int scram_hmac(enum scram_hash h, const uint8_t *key, size_t klen,
		      const void *data, size_t n, uint8_t *out)
{
	unsigned int olen = 0;

	if (!HMAC(scram_md(h), key, (int)klen, data, n, out, &olen))
		return PL_ERR;
	return olen == scram_hash_len(h) ? PL_OK : PL_ERR;
}

static int scram_digest(enum scram_hash h, const uint8_t *in, size_t n, uint8_t *out)
{
	unsigned int olen = 0;

	if (!EVP_Digest(in, n, out, &olen, scram_md(h), NULL))
		return PL_ERR;
	return olen == scram_hash_len(h) ? PL_OK : PL_ERR;
}

int scram_make_creds(enum scram_hash h, const char *password, const uint8_t *salt,
		     size_t salt_len, int iterations, struct scram_creds *out)
{
	size_t hl = scram_hash_len(h);
	uint8_t salted[SCRAM_MAX_KEY], client_key[SCRAM_MAX_KEY];
	int rc = PL_ERR;

	if (!password || iterations < 1 || salt_len == 0 || salt_len > SCRAM_MAX_SALT)
		return PL_ERR;
	memset(out, 0, sizeof(*out));
	if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
			       iterations, scram_md(h), (int)hl, salted))
		goto out;
	if (scram_hmac(h, salted, hl, "Client Key", 10, client_key) != PL_OK ||
	    scram_digest(h, client_key, hl, out->stored_key) != PL_OK ||
	    scram_hmac(h, salted, hl, "Server Key", 10, out->server_key) != PL_OK)
		goto out;
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	out->iterations = iterations;
	out->key_len = hl;
	rc = PL_OK;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return rc;
}

/* ---- base64 (RFC 4648, with padding, no line breaks, nothing lenient) ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	size_t need = (n + 2) / 3 * 4, o = 0;

	if (outlen < need + 1) {
		if (outlen)
			out[0] = '\0';
		return 0;
	}
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long base64_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
	size_t o = 0;

	if (n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		bool last = i + 4 == n;

		for (int k = 0; k < 4; k++) {
			char c = in[i + k];

			if (c == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)
				return -1;      /* data after padding */
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		size_t take = 3 - (size_t)pad;

		/* non-canonical: bits set in the padding part of the last symbol */
		if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
			return -1;
		if (o + take > outlen)
			return -1;
		out[o++] = (uint8_t)(w >> 16);
		if (take > 1)
			out[o++] = (uint8_t)(w >> 8);
		if (take > 2)
			out[o++] = (uint8_t)w;
	}
	return (long)o;
}

/* ---- message parsing ---- */

/* saslname = 1*(value-safe-char / "=2C" / "=3D"); returns a decoded copy. */
static char *scram_decode_name(const char *p, size_t n)
{
	char *out, *o;

	if (n == 0)
		return NULL;
	out = o = pl_malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == ',' || c == '\0') {
			free(out);
			return NULL;
		}
		if (c != '=') {
			*o++ = c;
			continue;
		}
		if (i + 2 >= n) {
			free(out);
			return NULL;
		}
		if (p[i + 1] == '2' && p[i + 2] == 'C')
			*o++ = ',';
		else if (p[i + 1] == '3' && p[i + 2] == 'D')
			*o++ = '=';
		else {
			free(out);
			return NULL;
		}
		i += 2;
	}
	*o = '\0';
	return out;
}

/* printable = %x21-2B / %x2D-7E: what a nonce may be made of */
static bool scram_printable(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x21 || c > 0x7e || c == ',')
			return false;
	}
	return true;
}

/* Length of the attribute starting at p (up to the next ',' or the end). */
static size_t scram_field_len(const char *p, const char *end)
{
	const char *c = memchr(p, ',', (size_t)(end - p));

	return c ? (size_t)(c - p) : (size_t)(end - p);
}

/* Extensions are attr=value with a letter attribute; unknown ones are
 * ignored as RFC 5802 section 5.1 allows (only m= is mandatory-to-fail). */
static bool scram_valid_ext(const char *p, size_t n)
{
	if (n < 2 || p[1] != '=')
		return false;
	if (!((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')))
		return false;
	return true;
}

static void scram_reset(struct scram_server *s)
{
	const char *test_nonce = s->test_server_nonce;
	bool plus = s->plus, offered = s->cb_offered;

	scram_server_clear(s);
	s->test_server_nonce = test_nonce;
	s->plus = plus;
	s->cb_offered = offered;
}

int scram_server_client_first(struct scram_server *s, enum scram_hash h,
			      const char *msg, size_t len, const char **why)
{
	const char *p = msg, *end = msg + len, *bare;
	size_t n;

	*why = "malformed-request";
	scram_reset(s);
	s->hash = h;
	if (len == 0 || len > SCRAM_MAX_MSG || memchr(msg, '\0', len))
		return PL_ERR;

	/* gs2-cbind-flag (RFC 5802 §6): "p=" binds and is only for -PLUS;
	 * "y" means "I could bind but you offered nothing", which is a
	 * downgrade if we did offer; "n" cannot pair with -PLUS. */
	if (*p == 'p') {
		if (!s->plus || p + 2 >= end || p[1] != '=')
			return PL_ERR;
		n = scram_field_len(p + 2, end);
		if (n == 0 || n >= sizeof(s->cb_name) || p + 2 + n >= end)
			return PL_ERR;
		for (size_t i = 0; i < n; i++) {
			char c = p[2 + i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '.' || c == '-'))
				return PL_ERR;
		}
		memcpy(s->cb_name, p + 2, n);
		s->cb_name[n] = '\0';
		p += 2 + n;
	} else if (*p == 'y' || *p == 'n') {
		if (s->plus)
			return PL_ERR;
		if (*p == 'y' && s->cb_offered) {
			*why = "not-authorized";
			return PL_ERR;
		}
		p++;
	} else {
		return PL_ERR;
	}
	if (p >= end || *p != ',')
		return PL_ERR;
	p++;

	/* [ "a=" saslname ] "," */
	n = scram_field_len(p, end);
	if (p + n >= end)
		return PL_ERR;
	if (n > 0) {
		if (n < 3 || p[0] != 'a' || p[1] != '=') {
			*why = n >= 2 && p[0] == 'a' && p[1] == '=' ? "invalid-authzid"
								    : "malformed-request";
			return PL_ERR;
		}
		s->authzid = scram_decode_name(p + 2, n - 2);
		if (!s->authzid) {
			*why = "invalid-authzid";
			return PL_ERR;
		}
	}
	p += n + 1;
	s->gs2_header = pl_strndup(msg, (size_t)(p - msg));
	bare = p;

	/* m= is a mandatory extension nobody defines: refuse it (RFC 5802 5.1) */
	if (p < end && *p == 'm')
		return PL_ERR;
	n = scram_field_len(p, end);
	if (n < 3 || p[0] != 'n' || p[1] != '=' || p + n >= end)
		return PL_ERR;
	s->username = scram_decode_name(p + 2, n - 2);
	if (!s->username)
		return PL_ERR;
	p += n + 1;

	n = scram_field_len(p, end);
	if (n < 3 || p[0] != 'r' || p[1] != '=' || !scram_printable(p + 2, n - 2))
		return PL_ERR;
	s->nonce = pl_strndup(p + 2, n - 2);
	p += n;
	while (p < end) {
		p++;    /* the ',' */
		n = scram_field_len(p, end);
		if (!scram_valid_ext(p, n))
			return PL_ERR;
		p += n;
	}
	s->client_first_bare = pl_strndup(bare, (size_t)(end - bare));
	*why = NULL;
	return PL_OK;
}

int scram_server_first(struct scram_server *s, const struct scram_creds *c, struct buf *out)
{
	char salt64[SCRAM_MAX_SALT * 2], snonce[SERVER_NONCE_BYTES * 2];
	uint8_t rnd[SERVER_NONCE_BYTES];
	struct buf b = {0};
	char *nonce;

	if (!s->nonce || !s->client_first_bare || s->server_first)
		return PL_ERR;
	if (c->key_len != scram_hash_len(s->hash) || c->salt_len == 0 ||
	    c->salt_len > SCRAM_MAX_SALT || c->iterations < 1)
		return PL_ERR;
	if (s->test_server_nonce) {
		snprintf(snonce, sizeof(snonce), "%s", s->test_server_nonce);
	} else {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return PL_ERR;
		base64_encode(rnd, sizeof(rnd), snonce, sizeof(snonce));
	}
	base64_encode(c->salt, c->salt_len, salt64, sizeof(salt64));

	buf_printf(&b, "%s%s", s->nonce, snonce);
	nonce = pl_strdup(buf_cstr(&b));
	buf_reset(&b);
	buf_printf(&b, "r=%s,s=%s,i=%d", nonce, salt64, c->iterations);
	free(s->nonce);
	s->nonce = nonce;
	s->server_first = pl_strdup(buf_cstr(&b));
	buf_free(&b);
	s->creds = *c;
	buf_append_str(out, s->server_first);
	return PL_OK;
}

/* Does the decoded c= value equal the gs2 header we were given, followed
 * by the channel binding data when the client chose to bind? */
static bool scram_cbind_ok(const struct scram_server *s, const char *p, size_t n)
{
	uint8_t raw[SCRAM_MAX_MSG];
	size_t hl = strlen(s->gs2_header);
	size_t cl = s->cb_name[0] ? s->cb_len : 0;
	long got = base64_decode(p, n, raw, sizeof(raw));

	if (s->cb_name[0] && s->cb_len == 0)
		return false;   /* the caller could not produce the binding */
	return got >= 0 && (size_t)got == hl + cl && memcmp(raw, s->gs2_header, hl) == 0 &&
	       CRYPTO_memcmp(raw + hl, s->cb_data, cl) == 0;
}

int scram_server_final(struct scram_server *s, const char *msg, size_t len,
		       struct buf *out, const char **why)
{
	const char *p = msg, *end = msg + len, *proof_at;
	size_t n, hl = scram_hash_len(s->hash);
	uint8_t proof[2 * SCRAM_MAX_KEY], sig[SCRAM_MAX_KEY], key[SCRAM_MAX_KEY];
	uint8_t check[SCRAM_MAX_KEY];
	char v64[SCRAM_MAX_KEY * 2];
	struct buf auth = {0};
	long plen;
	int rc = PL_ERR;

	*why = "malformed-request";
	if (!s->server_first)
		return PL_ERR;
	if (len == 0 || len > SCRAM_MAX_MSG || memchr(msg, '\0', len))
		return PL_ERR;

	/* channel-binding "," nonce ["," extensions] "," proof */
	n = scram_field_len(p, end);
	if (n < 2 || p[0] != 'c' || p[1] != '=' || p + n >= end)
		return PL_ERR;
	if (!scram_cbind_ok(s, p + 2, n - 2)) {
		*why = "not-authorized";
		return PL_ERR;
	}
	p += n + 1;
	n = scram_field_len(p, end);
	if (n < 3 || p[0] != 'r' || p[1] != '=' || p + n >= end)
		return PL_ERR;
	if (n - 2 != strlen(s->nonce) || memcmp(p + 2, s->nonce, n - 2) != 0) {
		*why = "not-authorized";
		return PL_ERR;
	}
	p += n + 1;
	for (;;) {
		n = scram_field_len(p, end);
		if (n >= 2 && p[0] == 'p' && p[1] == '=')
			break;
		if (!scram_valid_ext(p, n) || p + n >= end)
			return PL_ERR;
		p += n + 1;
	}
	if (p + n != end)
		return PL_ERR;   /* the proof must be the last attribute */
	proof_at = p;
	plen = base64_decode(p + 2, n - 2, proof, sizeof(proof));
	if (plen < 0) {
		*why = "incorrect-encoding";
		return PL_ERR;
	}
	if ((size_t)plen != hl)
		return PL_ERR;

	/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
	buf_printf(&auth, "%s,%s,", s->client_first_bare, s->server_first);
	buf_append(&auth, msg, (size_t)(proof_at - 1 - msg));

	*why = "temporary-auth-failure";
	if (scram_hmac(s->hash, s->creds.stored_key, hl, buf_head(&auth), buf_used(&auth),
		       sig) != PL_OK)
		goto done;
	for (size_t i = 0; i < hl; i++)
		key[i] = proof[i] ^ sig[i];
	if (scram_digest(s->hash, key, hl, check) != PL_OK)
		goto done;
	if (CRYPTO_memcmp(check, s->creds.stored_key, hl) != 0) {
		*why = "not-authorized";
		goto done;
	}
	if (scram_hmac(s->hash, s->creds.server_key, hl, buf_head(&auth), buf_used(&auth),
		       sig) != PL_OK)
		goto done;
	base64_encode(sig, hl, v64, sizeof(v64));
	buf_append_str(out, "v=");
	buf_append_str(out, v64);
	*why = NULL;
	rc = PL_OK;
done:
	OPENSSL_cleanse(key, sizeof(key));
	buf_free(&auth);
	return rc;
}

void scram_server_clear(struct scram_server *s)
{
	free(s->username);
	free(s->authzid);
	free(s->gs2_header);
	free(s->client_first_bare);
	free(s->server_first);
	free(s->nonce);
	OPENSSL_cleanse(s, sizeof(*s));
}

void scram_server_set_nonce_for_test(struct scram_server *s, const char *server_nonce)
{
	s->test_server_nonce = server_nonce;
}
