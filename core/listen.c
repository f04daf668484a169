/*
 * listen.c - listening sockets, one set per shard (SO_REUSEPORT).
 *
 * Every shard binds every listen entry itself, so the kernel balances
 * accepts and datagrams across shards and no lock is taken on the way in.
 * State is per shard (shard->subsys[SHARD_SLOT_LISTEN]) and touched only by
 * that shard's thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/listen.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"

#define LISTEN_MODULES_MAX 16
#define UDP_BATCH 16
#define UDP_MAX_DGRAM 8192

static const struct listen_module *modules[LISTEN_MODULES_MAX];
static size_t nmodules;


#define LISTEN_EMFILE_PAUSE_MS 100

struct listen_shard {
	struct listen_acceptor *tcp;
	size_t ntcp;
	struct listen_udp *udp;
	size_t nudp;
	const struct listen_cfg *started[32];   /* entries opened through start() */
	size_t nstarted;
};

void listen_register(const struct listen_module *m)
{
	if (listen_find(m->name))
		return;
	if (nmodules < LISTEN_MODULES_MAX)
		modules[nmodules++] = m;
}

const struct listen_module *listen_find(const char *name)
{
	for (size_t i = 0; i < nmodules; i++)
		if (strcmp(modules[i]->name, name) == 0)
			return modules[i];
	return NULL;
}

static int listen_sockaddr(const struct listen_cfg *lc, struct sockaddr_storage *ss,
			   socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, lc->ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)lc->port);
		*len = sizeof(*a4);
		return PL_OK;
	}
	if (inet_pton(AF_INET6, lc->ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)lc->port);
		*len = sizeof(*a6);
		return PL_OK;
	}
	return PL_ERR;
}

int listen_socket(const struct listen_cfg *lc, int type, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (listen_sockaddr(lc, &ss, &sl) != PL_OK) {
		snprintf(err, errlen, "listen %s: bad address '%s'", lc->module, lc->ip);
		return -1;
	}
	const char *proto = type == SOCK_STREAM ? "tcp" : "udp";
	int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && ss.ss_family == AF_INET6 && strcmp(lc->ip, "::") == 0) {
		/* No IPv6 on this machine: "::" means "everything", so IPv4 it is. */
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		memset(&ss, 0, sizeof(ss));
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)lc->port);
		sl = sizeof(*a4);
		fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		snprintf(err, errlen, "listen %s %s port %d: socket: %s", lc->module, proto,
			 lc->port, strerror(errno));
		return -1;
	}
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		snprintf(err, errlen, "listen %s: cannot bind %s port %d on %s: %s", lc->module,
			 proto, lc->port, lc->ip, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void listen_resume(struct ev_loop *loop, struct ev_timer *t)
{
	struct listen_acceptor *a = t->data;
	ev_io_set(loop, &a->io, EV_READ);
}

int listen_acceptor_start(struct ev_loop *loop, struct listen_acceptor *a,
			  const struct listen_cfg *lc, int fd, ev_io_fn *cb)
{
	a->lc = lc;
	ev_timer_init(&a->pause, listen_resume, a);
	ev_io_init(&a->io, fd, cb, a);
	return ev_io_start(loop, &a->io, EV_READ);
}

void listen_acceptor_stop(struct ev_loop *loop, struct listen_acceptor *a)
{
	ev_timer_stop(loop, &a->pause);
	ev_io_stop(loop, &a->io);
}

int listen_accept(struct ev_loop *loop, struct listen_acceptor *a,
		  struct sockaddr_storage *peer, socklen_t *plen)
{
	int fd = accept4(a->io.fd, (struct sockaddr *)peer, peer ? plen : NULL,
			 SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			log_warning("listen %s port %d: out of file descriptors; "
				    "pausing accepts for %d ms", a->lc->module,
				    a->lc->port, LISTEN_EMFILE_PAUSE_MS);
			ev_io_set(loop, &a->io, 0);
			ev_timer_start(loop, &a->pause, LISTEN_EMFILE_PAUSE_MS);
		}
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void listen_accept_cb(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(events);
	struct listen_acceptor *a = io->data;
	/* Bounded so one busy listener cannot starve the shard's sessions. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = listen_accept(loop, a, &peer, &plen);
		if (fd < 0)
			return;
		a->lc->lm->accept(a->lc, fd, (struct sockaddr *)&peer, plen);
	}
}

static __thread uint8_t udp_bufs[UDP_BATCH][UDP_MAX_DGRAM];

static void listen_udp_cb(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(loop);
	PL_UNUSED(events);
	struct listen_udp *u = io->data;
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage peers[UDP_BATCH];
	for (int round = 0; round < 4; round++) {
		memset(msgs, 0, sizeof(msgs));
		for (int i = 0; i < UDP_BATCH; i++) {
			iov[i].iov_base = udp_bufs[i];
			iov[i].iov_len = UDP_MAX_DGRAM;
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &peers[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
		}
		int n = recvmmsg(io->fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;   /* larger than any datagram we serve */
			u->lc->lm->datagram(u, udp_bufs[i], msgs[i].msg_len,
					    (struct sockaddr *)&peers[i], msgs[i].msg_hdr.msg_namelen);
		}
		if (n < UDP_BATCH)
			return;
	}
}

int listen_udp_send(struct listen_udp *u, const void *data, size_t len,
		    const struct sockaddr *peer, socklen_t plen)
{
	ssize_t n = sendto(u->io.fd, data, len, MSG_DONTWAIT, peer, plen);
	return n == (ssize_t)len ? PL_OK : PL_ERR;
}

int listen_open_all(struct shard *sh, const struct listen_cfg *entries, size_t n,
		    char *err, size_t errlen)
{
	struct listen_shard *ls = pl_calloc(1, sizeof(*ls));
	ls->tcp = pl_calloc(n, sizeof(*ls->tcp));
	ls->udp = pl_calloc(n, sizeof(*ls->udp));
	sh->subsys[SHARD_SLOT_LISTEN] = ls;
	for (size_t i = 0; i < n; i++) {
		const struct listen_cfg *lc = &entries[i];
		const struct listen_module *lm = lc->lm;
		if (!lm || !lm->implemented)
			continue;
		if (lm->start) {
			if (lm->start(lc, sh) != PL_OK) {
				snprintf(err, errlen, "listen %s: cannot start on port %d (see above)",
					 lc->module, lc->port);
				return PL_ERR;
			}
			if (ls->nstarted < PL_ARRAY_LEN(ls->started))
				ls->started[ls->nstarted++] = lc;
			continue;
		}
		if (lm->transports & LISTEN_TCP) {
			int fd = listen_socket(lc, SOCK_STREAM, err, errlen);
			if (fd < 0)
				return PL_ERR;
			listen_acceptor_start(sh->loop, &ls->tcp[ls->ntcp++], lc, fd, listen_accept_cb);
		}
		if (lm->transports & LISTEN_UDP) {
			int fd = listen_socket(lc, SOCK_DGRAM, err, errlen);
			if (fd < 0)
				return PL_ERR;
			struct listen_udp *u = &ls->udp[ls->nudp++];
			u->lc = lc;
			u->shard = sh->id;
			ev_io_init(&u->io, fd, listen_udp_cb, u);
			ev_io_start(sh->loop, &u->io, EV_READ);
		}
	}
	return PL_OK;
}

void listen_close_all(struct shard *sh)
{
	struct listen_shard *ls = sh->subsys[SHARD_SLOT_LISTEN];
	if (!ls)
		return;
	for (size_t i = 0; i < ls->ntcp; i++) {
		listen_acceptor_stop(sh->loop, &ls->tcp[i]);
		close(ls->tcp[i].io.fd);
	}
	for (size_t i = 0; i < ls->nudp; i++) {
		ev_io_stop(sh->loop, &ls->udp[i].io);
		close(ls->udp[i].io.fd);
	}
	for (size_t i = 0; i < ls->nstarted; i++)
		if (ls->started[i]->lm->stop)
			ls->started[i]->lm->stop(ls->started[i], sh);
	free(ls->tcp);
	free(ls->udp);
	free(ls);
	sh->subsys[SHARD_SLOT_LISTEN] = NULL;
}
