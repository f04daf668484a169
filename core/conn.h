/*
 * conn.h - a stream connection (TCP or TLS) on a shard's reactor.
 *
 * The protocol above (c2s, SIP over TCP, ...) sees plaintext only: it gets
 * on_data() with bytes read and calls conn_write(); whether TLS is in between
 * is the conn's business (ops table, after Redis' connection.h).
 * A conn is owned by one shard at a time; conn_move() hands it to another
 * shard (the fd is re-registered there). conn_close() flushes what is queued
 * and frees the conn after the current batch of events (never inside a
 * callback), calling on_close() once.
 * Output is coalesced: conn_write() only queues, and the conn writes what it
 * holds once before its loop sleeps.
 * Memory: no buffer is held while idle; reads go through a per-shard buffer,
 * and OpenSSL runs with SSL_MODE_RELEASE_BUFFERS.
 */
#ifndef PL_CONN_H
#define PL_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "core/buf.h"
#include "core/ev.h"

struct conn;

struct conn_handler {
	/* Plaintext bytes arrived. The buffer is only valid during the call. */
	void (*on_data)(struct conn *c, const uint8_t *data, size_t len);
	/* The conn is going away (peer closed, error or conn_close); the
	 * protocol drops its references. err is 0 for an orderly close. */
	void (*on_close)(struct conn *c, int err);
	/* Optional: TLS handshake finished (after conn_starttls). */
	void (*on_tls)(struct conn *c);
};

enum conn_state { CONN_OPEN, CONN_CLOSING, CONN_CLOSED };

struct conn {
	struct ev_io io;
	const struct conn_handler *h;
	void *proto;                   /* the protocol's state */
	struct ev_loop *loop;          /* owning shard's loop */
	int shard;
	SSL *ssl;
	struct buf out;                /* plaintext queued (TCP) or not yet taken by SSL_write */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	uint8_t state;
	uint8_t tls_handshaking;
	uint8_t tls_want_write;        /* SSL_read needs the socket writable */
	uint8_t moving;                /* conn_move() called: stop reading here */
	uint8_t close_err;             /* errno-ish reason for on_close */
	SSL_CTX *tls_pending;          /* STARTTLS: handshake once output is flushed */
	struct ev_timer close_timer;   /* bounds the flush of a closing conn */
	struct ev_pending flush_soon;  /* queued output written before the loop sleeps */
	void (*move_then)(struct conn *c);
	int move_to;
	uint64_t bytes_in, bytes_out;
	uint64_t writes;               /* write()/SSL_write() calls that sent bytes */
};

/* Take ownership of an accepted, non-blocking fd on the calling shard. */
struct conn *conn_new(int fd, const struct sockaddr *peer, socklen_t plen,
		      const struct conn_handler *h, void *proto);
/* Start a server-side TLS handshake once the output queued so far is
 * flushed (STARTTLS: queue <proceed/> first) and the current read is over;
 * bytes after the current chunk are read through TLS. on_tls() runs when
 * it completes, never from inside on_data(). */
int conn_starttls(struct conn *c, SSL_CTX *ctx);
static inline int conn_is_tls(const struct conn *c) { return c->ssl != NULL; }
/* Queue bytes; written once per loop iteration, before the loop sleeps, so
 * every stanza a batch of events sends to this conn costs one write(). */
void conn_write(struct conn *c, const void *data, size_t len);
void conn_write_str(struct conn *c, const char *s);
/* Flush queued output, then close and free (deferred). */
void conn_close(struct conn *c);
/* Hand the conn to shard `to`; `then(c)` runs there once it is attached.
 * The caller must not touch c after this call. */
void conn_move(struct conn *c, int to, void (*then)(struct conn *c));
/* "1.2.3.4:5678" or "[::1]:5678" */
const char *conn_peer_str(const struct conn *c, char *out, size_t outlen);

#endif
