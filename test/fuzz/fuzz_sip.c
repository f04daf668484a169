/* fuzz-sources: sip/sip_options.c sip/sip_transport.c ice/stun.c ice/stun_server.c core/buf.c core/pl.c core/log.c */
/*
 * fuzz_sip.c - SIP over UDP (the listen module's datagram path, libosip2
 * included) and the TCP framing, on arbitrary bytes.
 *
 * Invariants beyond "no crash, no leak": every response we send parses as
 * a SIP response with a CSeq, and cutting a stream in two does not change
 * which messages it frames.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <osipparser2/osip_parser.h>

#include "core/cfg.h"
#include "core/conn.h"
#include "core/listen.h"
#include "core/pl.h"
#include "sip/sip.h"

/* Stand-ins for the daemon around the module. */
const struct cfg *cfg;
bool cfg_is_local_host(const char *host) { return host && strcmp(host, "localhost") == 0; }
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
	(void)u;
	if (!peer || plen == 0 || len == 0)
		abort();
	const uint8_t *p = data;
	if ((p[0] & 0xC0) == 0)
		return PL_OK;   /* a STUN answer on the SIP port */
	osip_message_t *m = NULL;
	if (osip_message_init(&m) != OSIP_SUCCESS)
		abort();
	if (osip_message_parse(m, data, len) != OSIP_SUCCESS || !MSG_IS_RESPONSE(m) ||
	    m->status_code < 100 || m->status_code > 699 || !m->cseq)
		abort();
	osip_message_free(m);
	return PL_OK;
}

struct framed {
	uint64_t hash;     /* of every message and error, in order */
	int count;
};

static int on_msg(void *arg, const char *msg, size_t len, int code, const char *why)
{
	struct framed *f = arg;
	(void)why;
	f->count++;
	f->hash = (f->hash ^ (uint64_t)code ^ len) * 0x100000001b3ULL;
	for (size_t i = 0; i < len; i++)
		f->hash = (f->hash ^ (uint8_t)msg[i]) * 0x100000001b3ULL;
	return PL_OK;
}

static int feed(const uint8_t *data, size_t size, size_t cut, struct framed *f)
{
	struct sip_stream s = { 0 };
	int rc = sip_stream_feed(&s, data, cut, on_msg, f);
	if (rc == PL_OK)
		rc = sip_stream_feed(&s, data + cut, size - cut, on_msg, f);
	sip_stream_free(&s);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct listen_cfg lc = { .module = "sip", .ip = "::", .port = 5060 };
	struct listen_udp u = { .lc = &lc };
	struct sockaddr_in6 peer = { .sin6_family = AF_INET6, .sin6_port = htons(5062) };
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &peer.sin6_addr);

	sip_listen_module.datagram(&u, data, size, (struct sockaddr *)&peer, sizeof peer);

	struct framed whole = { 0 }, split = { 0 };
	size_t cut = size ? data[size - 1] * size / 256 : 0;
	int rw = feed(data, size, size, &whole);
	int rs = feed(data, size, cut, &split);
	if (rw != rs || whole.count != split.count || whole.hash != split.hash)
		abort();

	size_t cl;
	sip_content_length((const char *)data, size, &cl);
	return 0;
}
