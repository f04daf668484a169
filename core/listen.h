/*
 * listen.h - listeners from the config's `listen:` entries.
 *
 * A listen module (c2s, sip, stun, http, ...) registers its callbacks once at
 * startup. For every listen entry the core opens the socket with SO_REUSEPORT
 * on every shard, so the kernel spreads connections and datagrams across
 * shards without a lock; callbacks run on the shard that received.
 * A module that must own its sockets (http: libwebsockets does) sets start().
 */
#ifndef PL_LISTEN_H
#define PL_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/ev.h"

struct cfg_node;
struct shard;

enum { LISTEN_TCP = 1, LISTEN_UDP = 2 };

struct listen_cfg {
	const char *module;
	const char *ip;            /* "::" for all addresses by default */
	int port;
	int line;                  /* where the entry is in the config file */
	size_t max_stanza_size;    /* c2s; default 65536 */
	const struct cfg_node *node;  /* the whole entry, for module options */
	const struct listen_module *lm;
};

/* One UDP socket of one listen entry on one shard. */
struct listen_udp {
	struct ev_io io;
	const struct listen_cfg *lc;
	int shard;
};

struct listen_module {
	const char *name;
	unsigned transports;                    /* LISTEN_TCP | LISTEN_UDP */
	const char *const *options;             /* extra keys allowed, NULL-terminated */
	void (*accept)(const struct listen_cfg *lc, int fd,
		       const struct sockaddr *peer, socklen_t plen);
	void (*datagram)(struct listen_udp *u, const uint8_t *data, size_t len,
			 const struct sockaddr *peer, socklen_t plen);
	int (*start)(const struct listen_cfg *lc, struct shard *sh);
	void (*stop)(const struct listen_cfg *lc, struct shard *sh);
	int implemented;                        /* 0: accepted in config, not served yet */
};

/* A listening TCP socket's watcher with its pause for when the process is
 * out of descriptors: the pending connection then stays in the backlog and
 * the level-triggered watcher would wake at once, so accepting stops for a
 * moment instead of spinning. Embedded in whoever accepts (the core's
 * listeners, http's, which hands its sockets to libwebsockets). */
struct listen_acceptor {
	struct ev_io io;
	struct ev_timer pause;
	const struct listen_cfg *lc;
};

void listen_register(const struct listen_module *m);
const struct listen_module *listen_find(const char *name);
/* Bind every entry on every shard (called on each shard's thread by the core).
 * Returns PL_ERR with a message in err if a socket cannot be bound. */
int listen_open_all(struct shard *sh, const struct listen_cfg *entries, size_t n,
		    char *err, size_t errlen);
void listen_close_all(struct shard *sh);
/* lc's socket: non-blocking, SO_REUSEPORT, bound (and listening for
 * SOCK_STREAM); "::" falls back to IPv4 on a machine without IPv6. -1 with
 * the reason in err. */
int listen_socket(const struct listen_cfg *lc, int type, char *err, size_t errlen);
/* Watch fd (from listen_socket) for connections: cb runs with a->io. */
int listen_acceptor_start(struct ev_loop *loop, struct listen_acceptor *a,
			  const struct listen_cfg *lc, int fd, ev_io_fn *cb);
void listen_acceptor_stop(struct ev_loop *loop, struct listen_acceptor *a);
/* One waiting connection (non-blocking, close-on-exec, TCP_NODELAY), or -1
 * when none is left or the process is out of descriptors (then accepting
 * pauses, with a warning). peer may be NULL. */
int listen_accept(struct ev_loop *loop, struct listen_acceptor *a,
		  struct sockaddr_storage *peer, socklen_t *plen);
int listen_udp_send(struct listen_udp *u, const void *data, size_t len,
		    const struct sockaddr *peer, socklen_t plen);

#endif
