/*
 * bench_scram.c - SCRAM client (RFC 5802 §3, §5; RFC 7677) for the load
 * generator, on OpenSSL's PBKDF2 and HMAC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "tools/bench/bench_scram.h"

#define MAX_HASH 32
#define MAX_MSG 1024
/* A server asking for more makes every login a denial of service. */
#define MAX_ITERATIONS 1000000

struct bscram {
	const EVP_MD *md;
	size_t hlen;
	char nonce[64];
	char first_bare[MAX_MSG];
	unsigned char server_sig[MAX_HASH];
	int have_sig;
};

static int b64_enc(const unsigned char *in, size_t n, char *out, size_t cap)
{
	if (cap < 4 * ((n + 2) / 3) + 1)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Strict base64: whole quads, padding only at the end. */
static int b64_dec(const char *in, size_t n, unsigned char *out, size_t cap)
{
	if (n % 4 || n / 4 * 3 > cap)
		return -1;
	int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0)
		return -1;
	if (n >= 1 && in[n - 1] == '=')
		len--;
	if (n >= 2 && in[n - 2] == '=')
		len--;
	return len;
}

/* RFC 5802 §5.1: ',' and '=' in a user name are escaped. */
static int saslname(const char *user, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *p = user; *p; p++) {
		const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
		size_t n = rep ? 3 : 1;
		if (o + n >= cap)
			return -1;
		if (rep)
			memcpy(out + o, rep, 3);
		else
			out[o] = *p;
		o += n;
	}
	out[o] = '\0';
	return 0;
}

struct bscram *bscram_start(int sha256, const char *user, const char *nonce,
			    char *out, size_t cap)
{
	struct bscram *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->md = sha256 ? EVP_sha256() : EVP_sha1();
	s->hlen = sha256 ? 32 : 20;
	if (nonce) {
		if (strlen(nonce) >= sizeof(s->nonce))
			goto fail;
		strcpy(s->nonce, nonce);
	} else {
		unsigned char raw[18];
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			goto fail;
		b64_enc(raw, sizeof(raw), s->nonce, sizeof(s->nonce));
	}
	char name[512];
	if (saslname(user, name, sizeof(name)) < 0)
		goto fail;
	int n = snprintf(s->first_bare, sizeof(s->first_bare), "n=%s,r=%s", name, s->nonce);
	if (n < 0 || (size_t)n >= sizeof(s->first_bare))
		goto fail;
	char first[MAX_MSG + 4];
	n = snprintf(first, sizeof(first), "n,,%s", s->first_bare);
	if (b64_enc((const unsigned char *)first, (size_t)n, out, cap) < 0)
		goto fail;
	return s;
fail:
	free(s);
	return NULL;
}

/* The value of attribute `key` ("r", "s", "i") in a SCRAM message. */
static const char *attr(const char *msg, char key, size_t *len)
{
	const char *p = msg;
	while (p && *p) {
		if (p[0] == key && p[1] == '=') {
			const char *v = p + 2, *e = strchr(v, ',');
			*len = e ? (size_t)(e - v) : strlen(v);
			return v;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return NULL;
}

static int hmac(const struct bscram *s, const unsigned char *key, const void *msg, size_t len,
		unsigned char *out)
{
	unsigned int olen = 0;
	return HMAC(s->md, key, (int)s->hlen, msg, len, out, &olen) ? 0 : -1;
}

int bscram_respond(struct bscram *s, const char *password, const char *challenge,
		   size_t len, char *out, size_t cap)
{
	char sf[MAX_MSG];
	int n = b64_dec(challenge, len, (unsigned char *)sf, sizeof(sf) - 1);
	if (n <= 0)
		return -1;
	sf[n] = '\0';
	if (memchr(sf, '\0', (size_t)n))
		return -1;
	size_t rl, sl, il;
	const char *r = attr(sf, 'r', &rl), *salt64 = attr(sf, 's', &sl), *it = attr(sf, 'i', &il);
	/* The server's nonce must extend ours (RFC 5802 §5.1, r=). */
	size_t cl = strlen(s->nonce);
	if (!r || !salt64 || !it || sf[0] == 'm' || rl <= cl || memcmp(r, s->nonce, cl) != 0)
		return -1;
	char *end;
	long iters = strtol(it, &end, 10);
	if (end != it + il || iters < 1 || iters > MAX_ITERATIONS)
		return -1;
	unsigned char salt[256];
	int saltn = b64_dec(salt64, sl, salt, sizeof(salt));
	if (saltn <= 0)
		return -1;
	unsigned char salted[MAX_HASH], ckey[MAX_HASH], stored[MAX_HASH], csig[MAX_HASH],
		proof[MAX_HASH], skey[MAX_HASH];
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, saltn, (int)iters, s->md,
			      (int)s->hlen, salted) != 1)
		return -1;
	char without_proof[MAX_MSG];
	int wn = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)rl, r);
	char auth_msg[3 * MAX_MSG];
	int an = snprintf(auth_msg, sizeof(auth_msg), "%s,%s,%s", s->first_bare, sf, without_proof);
	if (wn < 0 || (size_t)wn >= sizeof(without_proof) || an < 0 || (size_t)an >= sizeof(auth_msg))
		return -1;
	unsigned int dl = 0;
	if (hmac(s, salted, "Client Key", 10, ckey) < 0 ||
	    EVP_Digest(ckey, s->hlen, stored, &dl, s->md, NULL) != 1 ||
	    hmac(s, stored, auth_msg, (size_t)an, csig) < 0 ||
	    hmac(s, salted, "Server Key", 10, skey) < 0 ||
	    hmac(s, skey, auth_msg, (size_t)an, s->server_sig) < 0)
		return -1;
	for (size_t i = 0; i < s->hlen; i++)
		proof[i] = ckey[i] ^ csig[i];
	s->have_sig = 1;
	char proof64[64], final[MAX_MSG + 80];
	b64_enc(proof, s->hlen, proof64, sizeof(proof64));
	int fn = snprintf(final, sizeof(final), "%s,p=%s", without_proof, proof64);
	if (fn < 0 || (size_t)fn >= sizeof(final))
		return -1;
	return b64_enc((const unsigned char *)final, (size_t)fn, out, cap) < 0 ? -1 : 0;
}

int bscram_verify(const struct bscram *s, const char *final, size_t len)
{
	char msg[256];
	int n = b64_dec(final, len, (unsigned char *)msg, sizeof(msg) - 1);
	if (n <= 2 || !s->have_sig)
		return -1;
	msg[n] = '\0';
	size_t vl;
	const char *v = attr(msg, 'v', &vl);
	unsigned char sig[MAX_HASH + 3];
	if (!v || vl > 64)
		return -1;
	int sn = b64_dec(v, vl, sig, sizeof(sig));
	if (sn != (int)s->hlen)
		return -1;
	return CRYPTO_memcmp(sig, s->server_sig, s->hlen) == 0 ? 0 : -1;
}

void bscram_free(struct bscram *s)
{
	if (s)
		OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}
