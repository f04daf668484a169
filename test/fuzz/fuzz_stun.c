/* fuzz-sources: ice/stun.c ice/stun_server.c core/buf.c core/pl.c core/log.c */
/*
 * fuzz_stun.c - the STUN codec and Binding server on arbitrary bytes.
 *
 * Invariants checked beyond "no crash": whatever the server answers is
 * itself a valid STUN message for the same transaction, and feeding the
 * same bytes to the TCP reassembly in two pieces gives the same answers as
 * in one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/conn.h"
#include "core/listen.h"
#include "core/pl.h"
#include "ice/stun.h"

/* The listen module's socket glue is never reached from here. */
void conn_write(struct conn *c, const void *data, size_t len) { (void)c; (void)data; (void)len; abort(); }
void conn_close(struct conn *c) { (void)c; abort(); }
const char *conn_peer_str(const struct conn *c, char *out, size_t outlen)
{
	(void)c; (void)out; (void)outlen;
	abort();
}
struct conn *conn_new(int fd, const struct sockaddr *peer, socklen_t plen,
		      const struct conn_handler *h, void *proto)
{
	(void)fd; (void)peer; (void)plen; (void)h; (void)proto;
	abort();
}
int listen_udp_send(struct listen_udp *u, const void *data, size_t len,
		    const struct sockaddr *peer, socklen_t plen)
{
	(void)u; (void)data; (void)len; (void)peer; (void)plen;
	abort();
}

static void check_response(const uint8_t *req, size_t reqlen, const uint8_t *resp, int n)
{
	struct stun_msg m;
	if (n <= 0)
		return;
	if (reqlen >= 8 && memcmp(req + 4, "\x21\x12\xa4\x42", 4) != 0) {
		/* An RFC 3489 answer: same 128-bit id, no cookie to check. */
		if (memcmp(resp + 4, req + 4, 16) != 0)
			abort();
		return;
	}
	if (stun_parse(resp, (size_t)n, 0, &m) != STUN_PARSE_OK)
		abort();
	if (memcmp(m.tid, req + 8, STUN_TID_LEN) != 0)
		abort();
	enum stun_class c = stun_class_of(m.type);
	if (c != STUN_SUCCESS && c != STUN_ERROR)
		abort();
}

struct collected {
	uint8_t bytes[8192];
	size_t len;
	int count;
};

static void collect(void *arg, const uint8_t *resp, size_t n)
{
	struct collected *c = arg;
	c->count++;
	if (c->len + n <= sizeof c->bytes) {
		memcpy(c->bytes + c->len, resp, n);
		c->len += n;
	}
}

static int feed(const uint8_t *data, size_t size, size_t cut, const struct sockaddr *peer,
		struct collected *out)
{
	struct stun_stream s = { 0 };
	int rc = stun_stream_feed(&s, data, cut, peer, collect, out);
	if (rc == PL_OK)
		rc = stun_stream_feed(&s, data + cut, size - cut, peer, collect, out);
	stun_stream_free(&s);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stun_msg m;
	struct stun_attr a;
	uint8_t resp[512];
	struct sockaddr_in p4 = { .sin_family = AF_INET, .sin_port = htons(40000) };
	struct sockaddr_in6 p6 = { .sin6_family = AF_INET6, .sin6_port = htons(40001) };
	p4.sin_addr.s_addr = htonl(0x7f000001);
	p6.sin6_addr = in6addr_loopback;

	if (stun_parse(data, size, STUN_PARSE_CLASSIC, &m) == STUN_PARSE_OK) {
		size_t pos = 0;
		while (stun_attr_next(&m, &pos, &a)) {
			struct sockaddr_storage ss;
			socklen_t len;
			int code;
			const char *reason;
			size_t rlen;
			stun_attr_addr(&m, &a, true, &ss, &len);
			stun_attr_addr(&m, &a, false, &ss, &len);
			stun_attr_error_code(&a, &code, &reason, &rlen);
			if (a.off + 4 + a.len > m.len)
				abort();
		}
		stun_check_integrity(&m, (const uint8_t *)"key", 3);
	}
	stun_frame_len(data, size);

	int n4 = stun_server_respond(data, size, (struct sockaddr *)&p4, resp, sizeof resp);
	check_response(data, size, resp, n4);
	int n6 = stun_server_respond(data, size, (struct sockaddr *)&p6, resp, sizeof resp);
	check_response(data, size, resp, n6);

	/* Stream: the cut point must not change the outcome. */
	static struct collected whole, split;
	whole.len = split.len = 0;
	whole.count = split.count = 0;
	size_t cut = size ? data[0] % (size + 1) : 0;
	int rw = feed(data, size, size, (struct sockaddr *)&p4, &whole);
	int rs = feed(data, size, cut, (struct sockaddr *)&p4, &split);
	if (rw != rs || whole.count != split.count || whole.len != split.len ||
	    memcmp(whole.bytes, split.bytes, whole.len) != 0)
		abort();
	return 0;
}
