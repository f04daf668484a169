/*
 * bench_net.c - the load generator's sockets: non-blocking connects from
 * spread 127.0.0.x source addresses, optional TLS, and output buffers that
 * are written once per loop iteration so that a burst of stanzas to one
 * server connection costs one system call, as a real client library would.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>

#include "tools/bench/bench.h"

#define READ_CHUNK 65536
/* An element still unfinished after this many bytes is not a stanza we
 * sent or expect: the connection is broken. */
#define MAX_CARRY (1u << 20)
/* An output buffer that held a burst shrinks back once written. */
#define KEEP_OUT_CAP 4096

static char rbuf[READ_CHUNK];

uint64_t bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int net_init(void)
{
	B.ep = epoll_create1(EPOLL_CLOEXEC);
	if (B.ep < 0) {
		perror("epoll_create1");
		return -1;
	}
	if (B.o.tls == TLS_NONE)
		return 0;
	B.ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!B.ssl_ctx)
		return -1;
	SSL_CTX_set_min_proto_version(B.ssl_ctx, TLS1_2_VERSION);
	/* Benchmarks dial self-signed test servers: the handshake's cost is
	 * what we measure, not the certificate's trust. */
	SSL_CTX_set_verify(B.ssl_ctx, SSL_VERIFY_NONE, NULL);
	/* 19,000 idle client sessions would otherwise hold 19,000 pairs of
	 * 16 KB record buffers in this process too. */
	SSL_CTX_set_mode(B.ssl_ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return 0;
}

static void net_watch(struct bconn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
	if (epoll_ctl(B.ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = out;
}

int net_connect(struct bconn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		xmpp_note_error("socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Choose the port at connect() time from the full 4-tuple, so each
	 * source address offers the whole ephemeral range. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	struct sockaddr_in src = { .sin_family = AF_INET };
	uint32_t host = (127u << 24) | (B.o.src_base + c->idx % B.o.src_addrs);
	src.sin_addr.s_addr = htonl(host);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		xmpp_note_error("bind 127.0.0.%u: %s", B.o.src_base + c->idx % B.o.src_addrs,
				strerror(errno));
		close(fd);
		return -1;
	}
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)B.o.port) };
	inet_pton(AF_INET, B.o.server, &dst.sin_addr);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) {
		xmpp_note_error("connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->state = BC_CONNECTING;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(B.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		xmpp_note_error("epoll_ctl: %s", strerror(errno));
		close(fd);
		c->fd = -1;
		return -1;
	}
	c->want_out = 1;
	return 0;
}

void net_send(struct bconn *c, const char *data, size_t len)
{
	if (c->fd < 0)
		return;
	size_t need = c->out_len + len;
	if (need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 512;
		while (cap < need)
			cap *= 2;
		c->out = realloc(c->out, cap);
		if (!c->out) {
			perror("realloc");
			exit(2);
		}
		c->out_cap = (uint32_t)cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += (uint32_t)len;
	B.out_pending += len;
	if (!c->dirty) {
		c->dirty = 1;
		c->next_dirty = B.dirty;
		B.dirty = c;
	}
}

void net_sendf(struct bconn *c, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(tmp)) {
		char *big = malloc((size_t)n + 1);
		if (!big)
			exit(2);
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		net_send(c, big, (size_t)n);
		free(big);
		return;
	}
	net_send(c, tmp, (size_t)n);
}

static void net_out_consumed(struct bconn *c, size_t n)
{
	c->out_off += (uint32_t)n;
	B.out_pending -= n;
	if (c->out_off < c->out_len)
		return;
	c->out_off = c->out_len = 0;
	if (c->out_cap > KEEP_OUT_CAP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
}

static void net_fail(struct bconn *c, const char *why)
{
	xmpp_on_closed(c, why);
}

/* Write what is queued; returns -1 if the connection died. */
static int net_write_out(struct bconn *c)
{
	while (c->out_off < c->out_len) {
		size_t n = c->out_len - c->out_off;
		if (c->ssl) {
			ERR_clear_error();
			int w = SSL_write(c->ssl, c->out + c->out_off, (int)n);
			if (w <= 0) {
				int e = SSL_get_error(c->ssl, w);
				if (e == SSL_ERROR_WANT_WRITE) {
					if (!c->want_out)
						net_watch(c, true);
					return 0;
				}
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				net_fail(c, "TLS write failed");
				return -1;
			}
			net_out_consumed(c, (size_t)w);
			continue;
		}
		ssize_t w = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!c->want_out)
					net_watch(c, true);
				return 0;
			}
			net_fail(c, strerror(errno));
			return -1;
		}
		net_out_consumed(c, (size_t)w);
	}
	if (c->want_out && c->state != BC_CONNECTING && c->state != BC_HANDSHAKE)
		net_watch(c, false);
	return 0;
}

void net_flush_all(void)
{
	if (B.out_pending > B.st.backlog_max)
		B.st.backlog_max = B.out_pending;
	while (B.dirty) {
		struct bconn *c = B.dirty;
		B.dirty = c->next_dirty;
		c->dirty = 0;
		c->next_dirty = NULL;
		if (c->fd >= 0 && c->state != BC_CONNECTING && c->state != BC_HANDSHAKE)
			net_write_out(c);
	}
}

void net_close(struct bconn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(B.ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	bscram_free(c->scram);
	c->scram = NULL;
	B.out_pending -= c->out_len - c->out_off;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->in_len = c->in_cap = 0;
	c->out_off = c->out_len = c->out_cap = 0;
	c->state = BC_DEAD;
}

int net_start_tls(struct bconn *c)
{
	c->ssl = SSL_new(B.ssl_ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		net_fail(c, "TLS setup failed");
		return -1;
	}
	SSL_set_tlsext_host_name(c->ssl, B.o.domain);
	SSL_set_connect_state(c->ssl);
	c->state = BC_HANDSHAKE;
	c->tls_started = 1;
	/* Bytes that came in the clear before the handshake are not part of
	 * the new stream. The handshake starts from the event loop (the
	 * socket is writable at once), never inside the caller's scan. */
	c->in_len = 0;
	net_watch(c, true);
	return 0;
}

static void net_handshake(struct bconn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		net_watch(c, false);
		xmpp_on_tls_ready(c);
		if (c->fd >= 0)
			net_write_out(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		if (c->want_out)
			net_watch(c, false);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		if (!c->want_out)
			net_watch(c, true);
		return;
	}
	unsigned long err = ERR_peek_last_error();
	char why[160];
	snprintf(why, sizeof(why), "TLS handshake failed: %s",
		 err ? ERR_reason_error_string(err) : "connection closed");
	net_fail(c, why);
}

/* Hand bytes to the XMPP layer, joining them to an unfinished element. */
static int net_deliver(struct bconn *c, const char *data, size_t len)
{
	if (c->in_len == 0)
		return xmpp_on_data(c, data, len);
	size_t need = c->in_len + len;
	if (need > MAX_CARRY) {
		net_fail(c, "stanza larger than 1 MiB or unterminated");
		return -1;
	}
	if (need > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap : 1024;
		while (cap < need)
			cap *= 2;
		char *p = realloc(c->in, cap);
		if (!p)
			exit(2);
		c->in = p;
		c->in_cap = (uint32_t)cap;
	}
	memcpy(c->in + c->in_len, data, len);
	c->in_len = (uint32_t)need;
	/* xmpp_on_data keeps what stays unfinished: hand it a stable copy. */
	uint32_t n = c->in_len;
	char *whole = c->in;
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	int r = xmpp_on_data(c, whole, n);
	free(whole);
	return r;
}

static void net_readable(struct bconn *c)
{
	if (!c->ssl) {
		ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), 0);
		if (n > 0) {
			net_deliver(c, rbuf, (size_t)n);
			return;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		net_fail(c, n == 0 ? "closed by the server" : strerror(errno));
		return;
	}
	/* A TLS record can hold more than one read's worth, and what
	 * OpenSSL has buffered never wakes epoll: read until it wants more. */
	for (int rounds = 0; rounds < 16 && c->fd >= 0; rounds++) {
		ERR_clear_error();
		int n = SSL_read(c->ssl, rbuf, sizeof(rbuf));
		if (n > 0) {
			if (net_deliver(c, rbuf, (size_t)n) < 0)
				return;
			continue;
		}
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return;
		if (e == SSL_ERROR_WANT_WRITE) {
			if (!c->want_out)
				net_watch(c, true);
			return;
		}
		net_fail(c, e == SSL_ERROR_ZERO_RETURN ? "closed by the server" : "TLS read failed");
		return;
	}
}

void net_event(struct bconn *c, uint32_t events)
{
	if (c->state == BC_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			net_fail(c, strerror(err));
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN)))
			return;
		net_watch(c, false);
		xmpp_on_connected(c);
		if (c->fd >= 0 && c->state != BC_HANDSHAKE)
			net_write_out(c);
		else if (c->fd >= 0)
			net_handshake(c);
		return;
	}
	if (c->state == BC_HANDSHAKE) {
		net_handshake(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		net_readable(c);
		if (c->fd < 0)
			return;
	}
	if ((events & EPOLLOUT) || (c->ssl && c->out_off < c->out_len))
		net_write_out(c);
}
