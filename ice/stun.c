/*
 * stun.c - STUN message codec (RFC 8489): validate, read attributes, build.
 *
 * Nothing here allocates or keeps state: parsing leaves pointers into the
 * caller's bytes and building writes into the caller's buffer, so the server
 * answers a datagram entirely from the stack.
 */
#include "ice/stun.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "core/pl.h"

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

static uint32_t fingerprint_of(const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(0L, p, (uInt)n) ^ STUN_FINGERPRINT_XOR;
}

enum stun_parse_result stun_parse(const uint8_t *p, size_t n, unsigned flags,
				  struct stun_msg *m)
{
	memset(m, 0, sizeof *m);
	if (n < STUN_HDR_LEN)
		return STUN_PARSE_SHORT;
	if (p[0] & 0xC0)
		return STUN_PARSE_TYPE_BITS;
	uint16_t type = get16(p);
	size_t len = get16(p + 2);
	if (len % 4 != 0 || len + STUN_HDR_LEN != n)
		return STUN_PARSE_LENGTH;
	uint32_t cookie = get32(p + 4);
	if (cookie != STUN_MAGIC) {
		/* An RFC 3489 client puts random bits where the cookie is;
		 * only its Binding request is worth the benefit of the doubt. */
		if (!(flags & STUN_PARSE_CLASSIC) || type != 0x0001)
			return STUN_PARSE_COOKIE;
		m->classic = true;
	}

	size_t off = STUN_HDR_LEN;
	while (off < n) {
		if (n - off < 4)
			return STUN_PARSE_ATTR_OVERRUN;
		uint16_t at = get16(p + off);
		size_t alen = get16(p + off + 2);
		if (pad4(alen) > n - off - 4)
			return STUN_PARSE_ATTR_OVERRUN;
		if (at == STUN_A_FINGERPRINT) {
			/* Must be last (RFC 8489 14.7), so one check covers
			 * "present twice" and "followed by something". */
			if (alen != 4 || off + 8 != n)
				return STUN_PARSE_FINGERPRINT;
			if (get32(p + off + 4) != fingerprint_of(p, off))
				return STUN_PARSE_FINGERPRINT;
			m->fingerprint = true;
		}
		if ((at == STUN_A_MESSAGE_INTEGRITY ||
		     at == STUN_A_MESSAGE_INTEGRITY_SHA256) && m->integrity_off == 0)
			m->integrity_off = off;
		off += 4 + pad4(alen);
	}

	m->raw = p;
	m->len = n;
	m->type = type;
	m->cookie = cookie;
	m->tid = p + 8;
	return STUN_PARSE_OK;
}

const char *stun_parse_strerror(enum stun_parse_result r)
{
	switch (r) {
	case STUN_PARSE_OK: return "ok";
	case STUN_PARSE_SHORT: return "shorter than a STUN header";
	case STUN_PARSE_TYPE_BITS: return "first two bits not zero";
	case STUN_PARSE_LENGTH: return "length field does not match the message";
	case STUN_PARSE_COOKIE: return "wrong magic cookie";
	case STUN_PARSE_ATTR_OVERRUN: return "attribute runs past the end";
	case STUN_PARSE_FINGERPRINT: return "bad FINGERPRINT";
	}
	return "unknown error";
}

long stun_frame_len(const uint8_t *p, size_t n)
{
	/* Judge each header field as soon as it has arrived, so that a stream
	 * of garbage is refused at its first byte, not after 20. */
	if (n >= 1 && (p[0] & 0xC0))
		return -1;
	if (n >= 4 && get16(p + 2) % 4 != 0)
		return -1;
	if (n >= 8 && get32(p + 4) != STUN_MAGIC)
		return -1;
	if (n < STUN_HDR_LEN)
		return 0;
	return STUN_HDR_LEN + (long)get16(p + 2);
}

bool stun_attr_next(const struct stun_msg *m, size_t *pos, struct stun_attr *a)
{
	size_t off = *pos ? *pos : STUN_HDR_LEN;
	if (off + 4 > m->len)
		return false;
	a->type = get16(m->raw + off);
	a->len = get16(m->raw + off + 2);
	a->val = m->raw + off + 4;
	a->off = off;
	*pos = off + 4 + pad4(a->len);
	return true;
}

bool stun_attr_find(const struct stun_msg *m, uint16_t type, struct stun_attr *a)
{
	size_t pos = 0;
	while (stun_attr_next(m, &pos, a))
		if (a->type == type)
			return true;
	return false;
}

int stun_attr_addr(const struct stun_msg *m, const struct stun_attr *a, bool xor,
		   struct sockaddr_storage *ss, socklen_t *len)
{
	if (a->len < 4)
		return PL_ERR;
	uint8_t family = a->val[1];
	uint16_t port = get16(a->val + 2);
	if (xor)
		port ^= (uint16_t)(STUN_MAGIC >> 16);
	memset(ss, 0, sizeof *ss);

	if (family == 0x01 && a->len == 8) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		uint32_t addr = get32(a->val + 4);
		if (xor)
			addr ^= STUN_MAGIC;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(addr);
		*len = sizeof *sin;
		return PL_OK;
	}
	if (family == 0x02 && a->len == 20) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		uint8_t key[16];
		put32(key, STUN_MAGIC);
		memcpy(key + 4, m->tid, STUN_TID_LEN);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		for (int i = 0; i < 16; i++)
			sin6->sin6_addr.s6_addr[i] = a->val[4 + i] ^ (xor ? key[i] : 0);
		*len = sizeof *sin6;
		return PL_OK;
	}
	return PL_ERR;
}

int stun_attr_error_code(const struct stun_attr *a, int *code,
			 const char **reason, size_t *reason_len)
{
	if (a->len < 4)
		return PL_ERR;
	int cls = a->val[2] & 0x07, num = a->val[3];
	if (cls < 3 || cls > 6 || num > 99)
		return PL_ERR;
	*code = cls * 100 + num;
	*reason = (const char *)a->val + 4;
	*reason_len = a->len - 4u;
	return PL_OK;
}

/* HMAC-SHA1 over two pieces (the patched header, then the body), written
 * out with plain digests because the message must not be copied to patch
 * its length field. */
static void hmac_sha1_2(const uint8_t *key, size_t keylen,
			const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
			uint8_t out[20])
{
	uint8_t k[64] = { 0 }, pad[64], inner[20];
	unsigned int olen;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		abort();

	if (keylen > sizeof k)
		EVP_Digest(key, keylen, k, &olen, EVP_sha1(), NULL);
	else
		memcpy(k, key, keylen);

	for (size_t i = 0; i < sizeof pad; i++)
		pad[i] = k[i] ^ 0x36;
	EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
	EVP_DigestUpdate(ctx, pad, sizeof pad);
	EVP_DigestUpdate(ctx, a, alen);
	EVP_DigestUpdate(ctx, b, blen);
	EVP_DigestFinal_ex(ctx, inner, &olen);

	for (size_t i = 0; i < sizeof pad; i++)
		pad[i] = k[i] ^ 0x5c;
	EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
	EVP_DigestUpdate(ctx, pad, sizeof pad);
	EVP_DigestUpdate(ctx, inner, sizeof inner);
	EVP_DigestFinal_ex(ctx, out, &olen);
	EVP_MD_CTX_free(ctx);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(pad, sizeof pad);
}

bool stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen)
{
	size_t off = m->integrity_off;
	if (off == 0 || get16(m->raw + off) != STUN_A_MESSAGE_INTEGRITY ||
	    get16(m->raw + off + 2) != 20)
		return false;
	/* The length covers the message up to and including this attribute,
	 * as if nothing (FINGERPRINT) followed it. */
	uint8_t hdr[STUN_HDR_LEN], mac[20];
	memcpy(hdr, m->raw, sizeof hdr);
	put16(hdr + 2, (uint16_t)(off + 24 - STUN_HDR_LEN));
	hmac_sha1_2(key, keylen, hdr, sizeof hdr, m->raw + STUN_HDR_LEN,
		    off - STUN_HDR_LEN, mac);
	return CRYPTO_memcmp(mac, m->raw + off + 4, sizeof mac) == 0;
}

void stun_build_start(struct stun_builder *b, uint8_t *out, size_t cap,
		      uint16_t type, uint32_t cookie, const uint8_t tid[STUN_TID_LEN])
{
	memset(b, 0, sizeof *b);
	b->p = out;
	b->cap = cap;
	b->cookie = cookie;
	if (cap < STUN_HDR_LEN) {
		b->overflow = true;
		return;
	}
	put16(out, type);
	put16(out + 2, 0);
	put32(out + 4, cookie);
	memmove(out + 8, tid, STUN_TID_LEN);
	b->tid = out + 8;
	b->len = STUN_HDR_LEN;
}

/* Room for an attribute of value length n? Marks overflow if not. */
static bool room(struct stun_builder *b, size_t n)
{
	if (b->overflow || n > 0xFFFF || b->len + 4 + pad4(n) > b->cap ||
	    b->len + 4 + pad4(n) - STUN_HDR_LEN > 0xFFFF) {
		b->overflow = true;
		return false;
	}
	return true;
}

void stun_put_attr(struct stun_builder *b, uint16_t type, const void *val, size_t len)
{
	if (!room(b, len))
		return;
	uint8_t *p = b->p + b->len;
	put16(p, type);
	put16(p + 2, (uint16_t)len);
	if (len)
		memcpy(p + 4, val, len);
	memset(p + 4 + len, b->pad, pad4(len) - len);
	b->len += 4 + pad4(len);
	put16(b->p + 2, (uint16_t)(b->len - STUN_HDR_LEN));
}

void stun_put_u32(struct stun_builder *b, uint16_t type, uint32_t v)
{
	uint8_t val[4];
	put32(val, v);
	stun_put_attr(b, type, val, sizeof val);
}

void stun_put_u64(struct stun_builder *b, uint16_t type, uint64_t v)
{
	uint8_t val[8];
	put32(val, (uint32_t)(v >> 32));
	put32(val + 4, (uint32_t)v);
	stun_put_attr(b, type, val, sizeof val);
}

void stun_put_addr(struct stun_builder *b, uint16_t type, const struct sockaddr *sa,
		   bool xor)
{
	uint8_t val[20] = { 0 };
	uint16_t port;
	size_t len;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		port = ntohs(sin6->sin6_port);
		/* A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d; the
		 * client knows itself as a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			val[1] = 0x01;
			memcpy(val + 4, sin6->sin6_addr.s6_addr + 12, 4);
			len = 8;
		} else {
			val[1] = 0x02;
			memcpy(val + 4, sin6->sin6_addr.s6_addr, 16);
			len = 20;
		}
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		port = ntohs(sin->sin_port);
		val[1] = 0x01;
		memcpy(val + 4, &sin->sin_addr.s_addr, 4);
		len = 8;
	} else {
		b->overflow = true;
		return;
	}

	if (xor) {
		uint8_t key[16];
		put32(key, STUN_MAGIC);
		if (b->tid)
			memcpy(key + 4, b->tid, STUN_TID_LEN);
		port ^= (uint16_t)(STUN_MAGIC >> 16);
		for (size_t i = 0; i < len - 4; i++)
			val[4 + i] ^= key[i];
	}
	put16(val + 2, port);
	stun_put_attr(b, type, val, len);
}

void stun_put_error(struct stun_builder *b, int code, const char *reason)
{
	uint8_t val[4 + 128];
	size_t rlen = strlen(reason);
	if (code < 300 || code > 699 || rlen > sizeof val - 4) {
		b->overflow = true;
		return;
	}
	val[0] = val[1] = 0;
	val[2] = (uint8_t)(code / 100);
	val[3] = (uint8_t)(code % 100);
	memcpy(val + 4, reason, rlen);
	stun_put_attr(b, STUN_A_ERROR_CODE, val, 4 + rlen);
}

void stun_put_unknown(struct stun_builder *b, const uint16_t *types, size_t n)
{
	uint8_t val[2 * 32];
	if (n > PL_ARRAY_LEN(val) / 2) {
		b->overflow = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		put16(val + 2 * i, types[i]);
	stun_put_attr(b, STUN_A_UNKNOWN_ATTRIBUTES, val, 2 * n);
}

void stun_put_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen)
{
	uint8_t mac[20];
	if (!room(b, sizeof mac))
		return;
	/* The HMAC covers a header whose length already counts this attribute. */
	put16(b->p + 2, (uint16_t)(b->len + 24 - STUN_HDR_LEN));
	hmac_sha1_2(key, keylen, b->p, STUN_HDR_LEN, b->p + STUN_HDR_LEN,
		    b->len - STUN_HDR_LEN, mac);
	stun_put_attr(b, STUN_A_MESSAGE_INTEGRITY, mac, sizeof mac);
}

void stun_put_fingerprint(struct stun_builder *b)
{
	if (!room(b, 4))
		return;
	put16(b->p + 2, (uint16_t)(b->len + 8 - STUN_HDR_LEN));
	stun_put_u32(b, STUN_A_FINGERPRINT, fingerprint_of(b->p, b->len));
}

size_t stun_build_finish(struct stun_builder *b)
{
	return b->overflow ? 0 : b->len;
}
