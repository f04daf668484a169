/*
 * conn.c - TCP and TLS stream connections on the reactor.
 *
 * Reads go through one buffer per thread, so an idle conn holds no read
 * buffer. Output is queued in c->out and written by conn_flush_soon() just
 * before the loop sleeps: a recipient of many stanzas in one batch of
 * events gets one write(), and one wake-up, for all of them. c->out is
 * freed once it drains, so an idle conn holds no write buffer either. OpenSSL talks to the non-blocking fd directly (SSL_set_fd).
 * Teardown is always deferred: on_close() and the free run after the
 * current batch of events, so no callback ever frees the conn it runs in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"

#define CONN_READ_CHUNK 16384
#define CONN_READS_PER_EVENT 8
#define CONN_CLOSE_FLUSH_MS 5000

static __thread uint8_t conn_rbuf[CONN_READ_CHUNK];

static void conn_io_cb(struct ev_loop *loop, struct ev_io *io, int events);
static void conn_flush(struct conn *c);
static void conn_finalize(struct conn *c, int err);
static void conn_flush_soon(struct ev_pending *p);

static void conn_update_mask(struct conn *c)
{
	if (c->state == CONN_CLOSED || c->moving)
		return;
	int mask = 0;
	if (c->state == CONN_OPEN)
		mask |= EV_READ;
	/* A flush queued for before-sleep needs no EV_WRITE: only output the
	 * socket refused waits for writability. */
	if ((buf_used(&c->out) > 0 && !ev_pending_queued(&c->flush_soon)) || c->tls_want_write)
		mask |= EV_WRITE;
	if (c->ssl && c->tls_handshaking)
		mask |= EV_READ;
	ev_io_set(c->loop, &c->io, mask);
}

struct conn *conn_new(int fd, const struct sockaddr *peer, socklen_t plen,
		      const struct conn_handler *h, void *proto)
{
	struct shard *sh = shard_self();
	struct conn *c = pl_calloc(1, sizeof(*c));
	c->h = h;
	c->proto = proto;
	c->loop = sh->loop;
	c->shard = sh->id;
	if (peer && plen <= sizeof(c->peer)) {
		memcpy(&c->peer, peer, plen);
		c->peer_len = plen;
	}
	c->state = CONN_OPEN;
	ev_timer_init(&c->close_timer, NULL, c);
	ev_pending_init(&c->flush_soon, conn_flush_soon);
	ev_io_init(&c->io, fd, conn_io_cb, c);
	if (ev_io_start(c->loop, &c->io, EV_READ) != PL_OK) {
		close(fd);
		free(c);
		return NULL;
	}
	return c;
}

const char *conn_peer_str(const struct conn *c, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (c->peer.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&c->peer;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, outlen, "%s:%d", host, port);
	} else if (c->peer.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&c->peer;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, outlen, "[%s]:%d", host, port);
	} else {
		snprintf(out, outlen, "unknown");
	}
	return out;
}

static void conn_log_tls_error(struct conn *c, const char *what)
{
	char peer[64];
	unsigned long e = ERR_get_error();
	char reason[256] = "";
	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	log_info("conn: %s: TLS %s failed%s%s", conn_peer_str(c, peer, sizeof(peer)), what,
		 reason[0] ? ": " : "", reason);
}

/* Returns PL_OK when the handshake finished, PL_AGAIN when it waits for the
 * socket, PL_ERR when it failed (conn finalized). */
static int conn_tls_handshake(struct conn *c)
{
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->tls_handshaking = 0;
		c->tls_want_write = 0;
		if (c->h->on_tls)
			c->h->on_tls(c);
		return PL_OK;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		c->tls_want_write = 0;
		return PL_AGAIN;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		c->tls_want_write = 1;
		return PL_AGAIN;
	}
	conn_log_tls_error(c, "handshake");
	conn_finalize(c, EPROTO);
	return PL_ERR;
}

static void conn_start_tls_now(struct conn *c, SSL_CTX *ctx)
{
	c->tls_pending = NULL;
	c->ssl = SSL_new(ctx);
	if (!c->ssl) {
		conn_log_tls_error(c, "setup");
		conn_finalize(c, ENOMEM);
		return;
	}
	SSL_set_fd(c->ssl, c->io.fd);
	SSL_set_accept_state(c->ssl);
	c->tls_handshaking = 1;
	if (conn_tls_handshake(c) != PL_ERR)
		conn_update_mask(c);
}

int conn_starttls(struct conn *c, SSL_CTX *ctx)
{
	if (c->ssl || c->state != CONN_OPEN)
		return PL_ERR;
	/* Begun by conn_flush() once queued output is out and the current
	 * read is over: a fast peer can complete the whole handshake inside
	 * one SSL_do_handshake() call, and on_tls() must never run inside the
	 * protocol's on_data(). */
	c->tls_pending = ctx;
	if (!c->moving)
		ev_pending_add(c->loop, &c->flush_soon);
	conn_update_mask(c);
	return PL_OK;
}

/* Reads until the socket is drained (bounded), handing plaintext up. */
static void conn_read(struct conn *c)
{
	for (int i = 0; i < CONN_READS_PER_EVENT; i++) {
		/* A handshake begun from on_data (STARTTLS) is driven by
		 * conn_tls_handshake(): SSL_read would finish it silently and
		 * hand over the client's next bytes before on_tls() ran. */
		if (c->state != CONN_OPEN || c->moving || c->tls_pending ||
		    (c->ssl && c->tls_handshaking))
			return;
		ssize_t n;
		if (c->ssl) {
			int r = SSL_read(c->ssl, conn_rbuf, sizeof(conn_rbuf));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					return;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->tls_want_write = 1;
					return;
				}
				if (e == SSL_ERROR_ZERO_RETURN) {
					conn_finalize(c, 0);
					return;
				}
				if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
					conn_finalize(c, errno ? errno : ECONNRESET);
					return;
				}
				conn_log_tls_error(c, "read");
				conn_finalize(c, EPROTO);
				return;
			}
			n = r;
		} else {
			n = read(c->io.fd, conn_rbuf, sizeof(conn_rbuf));
			if (n == 0) {
				conn_finalize(c, 0);
				return;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				conn_finalize(c, errno);
				return;
			}
		}
		c->bytes_in += (uint64_t)n;
		c->h->on_data(c, conn_rbuf, (size_t)n);
		if (!c->ssl && (size_t)n < sizeof(conn_rbuf))
			return;   /* drained; TLS may hold more decrypted data */
	}
}

static void conn_flush(struct conn *c)
{
	while (buf_used(&c->out) > 0) {
		ssize_t n;
		if (c->ssl) {
			if (c->tls_handshaking)
				return;
			size_t len = buf_used(&c->out);
			int r = SSL_write(c->ssl, buf_head(&c->out), len > INT32_MAX ? INT32_MAX : (int)len);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE) {
					c->tls_want_write = 1;
					return;
				}
				if (e == SSL_ERROR_WANT_READ)
					return;
				conn_log_tls_error(c, "write");
				conn_finalize(c, EPIPE);
				return;
			}
			c->tls_want_write = 0;
			n = r;
		} else {
			n = write(c->io.fd, buf_head(&c->out), buf_used(&c->out));
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				conn_finalize(c, errno);
				return;
			}
		}
		c->bytes_out += (uint64_t)n;
		c->writes++;
		buf_consume(&c->out, (size_t)n);
	}
	/* Output drained: a pending STARTTLS can begin, a closing conn ends. */
	if (c->tls_pending && c->state == CONN_OPEN)
		conn_start_tls_now(c, c->tls_pending);
	else if (c->state == CONN_CLOSING)
		conn_finalize(c, 0);
}

static void conn_io_cb(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(loop);
	struct conn *c = io->data;
	if (c->state == CONN_CLOSED)
		return;
	if (c->ssl && c->tls_handshaking) {
		if (conn_tls_handshake(c) != PL_OK) {
			if (c->state != CONN_CLOSED)
				conn_update_mask(c);
			return;
		}
	}
	if (events & EV_WRITE || (c->tls_want_write && (events & EV_READ))) {
		c->tls_want_write = 0;
		conn_flush(c);
		if (c->state == CONN_CLOSED)
			return;
	}
	if (events & EV_READ) {
		if (c->state == CONN_CLOSING) {
			/* Draining input we no longer want, so the peer's close is seen. */
			ssize_t n = c->ssl ? SSL_read(c->ssl, conn_rbuf, sizeof(conn_rbuf))
					   : read(c->io.fd, conn_rbuf, sizeof(conn_rbuf));
			if (n == 0) {
				conn_finalize(c, 0);
				return;
			}
		} else {
			conn_read(c);
			if (c->state == CONN_CLOSED)
				return;
		}
	}
	/* Replies join whatever else this batch sends to c. A STARTTLS
	 * begins from the flush too, after its <proceed/> is out. */
	if (c->state != CONN_CLOSED && !c->moving &&
	    (buf_used(&c->out) > 0 || c->tls_pending))
		ev_pending_add(c->loop, &c->flush_soon);
	if (c->state != CONN_CLOSED)
		conn_update_mask(c);
}

static void conn_flush_soon(struct ev_pending *p)
{
	struct conn *c = PL_CONTAINER_OF(p, struct conn, flush_soon);
	if (c->state == CONN_CLOSED || c->moving)
		return;
	conn_flush(c);
	if (c->state != CONN_CLOSED)
		conn_update_mask(c);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->state != CONN_OPEN || len == 0)
		return;
	int was_empty = buf_used(&c->out) == 0;
	buf_append(&c->out, data, len);
	/* Output that was already waiting has a flush queued or EV_WRITE
	 * armed; during a move the new shard flushes. */
	if (was_empty && !c->moving)
		ev_pending_add(c->loop, &c->flush_soon);
}

void conn_write_str(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}

static void conn_close_timeout(struct ev_loop *loop, struct ev_timer *t)
{
	PL_UNUSED(loop);
	conn_finalize(t->data, ETIMEDOUT);
}

void conn_close(struct conn *c)
{
	if (c->state != CONN_OPEN)
		return;
	c->state = CONN_CLOSING;
	if (c->moving)
		goto wait;
	/* Closing is rare: write what is queued now rather than before sleep,
	 * so the conn goes away in this batch, ahead of anything the caller
	 * defers after it (a shard's teardown does). */
	ev_pending_cancel(&c->flush_soon);
	conn_flush(c);
	if (c->state == CONN_CLOSED)
		return;
	if (buf_used(&c->out) == 0 && !c->tls_pending) {
		conn_finalize(c, 0);
		return;
	}
wait:
	c->close_timer.cb = conn_close_timeout;
	if (!c->moving)
		ev_timer_start(c->loop, &c->close_timer, CONN_CLOSE_FLUSH_MS);
	if (!c->moving)
		conn_update_mask(c);
}

static void conn_release(void *arg)
{
	struct conn *c = arg;
	if (c->h->on_close)
		c->h->on_close(c, c->close_err);
	if (c->ssl)
		SSL_free(c->ssl);
	buf_free(&c->out);
	free(c);
}

static void conn_finalize(struct conn *c, int err)
{
	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSED;
	c->close_err = (uint8_t)(err > 255 ? 255 : err);
	ev_pending_cancel(&c->flush_soon);
	ev_timer_stop(c->loop, &c->close_timer);
	ev_io_stop(c->loop, &c->io);
	if (c->ssl && err == 0 && !c->tls_handshaking)
		SSL_shutdown(c->ssl);   /* best effort close_notify */
	ERR_clear_error();
	close(c->io.fd);
	c->io.fd = -1;
	ev_defer(c->loop, conn_release, c);
}

/* ---- hand-over between shards ---- */

static void conn_move_arrive(void *arg)
{
	struct conn *c = arg;
	struct shard *sh = shard_self();
	c->loop = sh->loop;
	c->shard = sh->id;
	c->moving = 0;
	if (ev_io_start(c->loop, &c->io, 0) != PL_OK) {
		conn_finalize(c, EBADF);
		return;
	}
	if (c->state == CONN_CLOSING)
		ev_timer_start(c->loop, &c->close_timer, CONN_CLOSE_FLUSH_MS);
	void (*then)(struct conn *) = c->move_then;
	c->move_then = NULL;
	if (then)
		then(c);
	if (c->state == CONN_CLOSED)
		return;
	conn_flush(c);
	if (c->state != CONN_CLOSED)
		conn_update_mask(c);
}

static void conn_move_depart(void *arg)
{
	struct conn *c = arg;
	/* After the batch: no stale event of this shard can reach c now. */
	shard_post(c->move_to, conn_move_arrive, c);
}

void conn_move(struct conn *c, int to, void (*then)(struct conn *c))
{
	if (c->state == CONN_CLOSED)
		return;
	if (to == c->shard) {
		if (then)
			then(c);
		return;
	}
	c->moving = 1;
	c->move_to = to;
	c->move_then = then;
	ev_pending_cancel(&c->flush_soon);
	ev_timer_stop(c->loop, &c->close_timer);
	ev_io_stop(c->loop, &c->io);
	ev_defer(c->loop, conn_move_depart, c);
}
