/*
 * sip.h - SIP (RFC 3261): transports and request handling.
 *
 * libosip2 parses; transports (UDP datagrams, TCP streams) and every
 * decision are ours. sip_handle() is the whole request logic as a function
 * of (message bytes, where it came from) -> response bytes, so it is tested
 * without sockets; sip_transport.c only frames and moves bytes.
 *
 * Threads: any shard may call anything here. The parser tables, the cached
 * interface addresses and the tag secret are set up once (sip_init(), also
 * run lazily) and read-only afterwards. A TCP connection's sip_stream is
 * owned by the connection's shard.
 *
 * Served now: OPTIONS for our hosts and addresses (200), 404 for other
 * domains (no relaying yet), 501 for every other method, 400 for malformed
 * requests that carry enough to route a response. sip_allow lists exactly
 * the methods answered by something other than 501, so it stays honest as
 * handlers are added.
 */
#ifndef PL_SIP_H
#define PL_SIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/listen.h"

#define SIP_SERVER "parley/0.1.0"
/* Bound on one message on a stream (headers and body). */
#define SIP_MAX_MSG 65536

extern const char sip_allow[];

enum sip_transport { SIP_TP_UDP, SIP_TP_TCP };

/* Where a message came from, and (filled by sip_handle) where a UDP
 * response must go (RFC 3261 18.2.2, RFC 3581 4). */
struct sip_origin {
	enum sip_transport tp;
	const struct sockaddr *peer;
	socklen_t peer_len;
	const char *listen_ip;          /* the listener's `ip:`, may be NULL */
	struct sockaddr_storage reply_to;
	socklen_t reply_len;
};

enum sip_verdict {
	SIP_ANSWER = 0,     /* a response is in out */
	SIP_IGNORE,         /* valid, nothing to send (a response, an ACK) */
	SIP_DROP,           /* malformed and not answerable */
};

/* Handle one message. A transport that already knows the message is bad
 * (framing: missing Content-Length, too large) passes that status and
 * reason; the request is then answered with it if it can be. */
enum sip_verdict sip_handle(const char *msg, size_t len, int err_code,
			    const char *err_reason, struct sip_origin *o, struct buf *out);

/* Is host (a Request-URI host) one of ours: a configured virtual host, a
 * loopback address, the listener's address or a local interface's? */
bool sip_host_is_local(const char *host, const char *listen_ip);

/* Parser and address cache; idempotent and thread-safe. */
void sip_init(void);

/* Stream framing (RFC 3261 18.3): a message ends Content-Length bytes after
 * the blank line; CRLFs between messages are keepalives and skipped. */
struct sip_stream {
	struct buf in;          /* a partial message; empty between messages */
	size_t scanned;         /* bytes of `in` known to hold no CRLFCRLF */
	size_t total;           /* the message's length once its headers are in */
};
/* A complete message (err_code 0), or the head of a bad one with the status
 * to answer (len may be 0: nothing parseable). Returns PL_ERR to stop. */
typedef int sip_stream_msg_fn(void *arg, const char *msg, size_t len,
			      int err_code, const char *err_reason);
/* Returns PL_OK, or PL_ERR after a framing error or a callback's PL_ERR: the
 * stream is then unusable and the connection must close. */
int sip_stream_feed(struct sip_stream *s, const uint8_t *data, size_t n,
		    sip_stream_msg_fn *fn, void *arg);
void sip_stream_free(struct sip_stream *s);

/* Content-Length from a header block: PL_OK with *len, PL_DECLINED when
 * absent, PL_ERR when malformed or given twice with different values. */
int sip_content_length(const char *hdrs, size_t n, size_t *len);

extern const struct listen_module sip_listen_module;

#endif
