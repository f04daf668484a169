/*
 * bench.h - parley-bench, an XMPP c2s load generator: shared state.
 *
 * One thread, one epoll set, one connection per simulated user. The files:
 *   bench_main.c  options, the run's phases, progress and the summary line
 *   bench_net.c   sockets, source addresses, TLS, buffered output
 *   bench_xmpp.c  the client side of login, messaging and XEP-0077
 *   bench_ctl.c   creating accounts through parleyd's control socket
 *   bench_scan.c  top-level element boundaries; bench_hist.c  latencies
 *   bench_scram.c the client half of SCRAM
 * Everything is single-threaded, so state is plain globals in `B`.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "tools/bench/bench_hist.h"
#include "tools/bench/bench_scan.h"
#include "tools/bench/bench_scram.h"

enum bench_mode { MODE_IDLE, MODE_CHAT, MODE_REGISTER };
enum bench_tls { TLS_NONE, TLS_STARTTLS, TLS_DIRECT };
enum bench_sasl { SASL_PLAIN, SASL_SCRAM_SHA1, SASL_SCRAM_SHA256 };

/* Where a connection is in its life. */
enum bconn_state {
	BC_FREE,
	BC_CONNECTING,      /* TCP connect in progress */
	BC_HANDSHAKE,       /* TLS handshake (direct TLS or after <proceed/>) */
	BC_WAIT_PROCEED,    /* <starttls/> sent */
	BC_WAIT_FEATURES,   /* unpipelined: header sent, features expected */
	BC_WAIT_CHALLENGE,  /* SCRAM: <auth/> sent, server-first expected */
	BC_WAIT_SUCCESS,    /* PLAIN <auth/> or SCRAM <response/> sent */
	BC_WAIT_FEATURES2,  /* unpipelined: restart sent, features expected */
	BC_WAIT_BIND,       /* bind iq sent */
	BC_ONLINE,          /* a session: messages flow */
	BC_WAIT_REGISTER,   /* XEP-0077 iq sent */
	BC_CLOSING,         /* </stream:stream> sent; waiting for the server */
	BC_DEAD,
};

struct bconn {
	int fd;
	uint32_t idx;           /* user index, 0-based: user (first + idx) */
	uint8_t state;          /* enum bconn_state */
	uint8_t want_out;       /* EPOLLOUT armed */
	uint8_t dirty;          /* on the flush list */
	uint8_t tls_started;
	SSL *ssl;
	struct bscram *scram;   /* during a SCRAM exchange only */
	struct scan scan;
	char *in;               /* an unfinished element carried to the next read */
	uint32_t in_len, in_cap;
	char *out;              /* bytes not yet written */
	uint32_t out_off, out_len, out_cap;
	uint32_t inflight;      /* closed loop: my messages not yet delivered */
	uint32_t tx_seq;        /* next sequence number I send */
	uint32_t rx_seq;        /* next one expected from my partner */
	uint64_t t_start;       /* when the login began */
	struct bconn *next_dirty;
};

struct bench_opts {
	enum bench_mode mode;
	const char *server;     /* IPv4 address to dial */
	int port;
	const char *domain;     /* XMPP domain: stream 'to', JIDs, SNI */
	const char *prefix;     /* user name prefix: prefix1..prefixN */
	const char *password;
	const char *resource;
	uint32_t users;
	uint32_t first;         /* number of the first user */
	uint32_t concurrency;   /* logins (or registrations) in flight */
	enum bench_tls tls;
	enum bench_sasl sasl;
	bool pipeline;
	bool presence;
	double duration;        /* idle: hold time; chat: measurement window */
	double warmup;          /* chat: before measuring */
	double drain;           /* chat: wait for late messages after the window */
	double timeout;         /* hard limit for the whole run */
	uint32_t inflight;      /* closed loop: messages in flight per sender */
	double rate;            /* open loop: messages/s in total; 0 = closed */
	uint32_t body;          /* body size in bytes (at least the header) */
	int server_pid;
	uint32_t src_addrs;     /* how many 127.0.0.x source addresses */
	uint32_t src_base;      /* first x */
	const char *ctl;        /* register through parleyd's control socket */
	bool ibr;               /* register with XEP-0077 */
	bool quiet;
};

struct bench_stats {
	uint64_t logins_ok, logins_failed;
	uint64_t dropped;       /* sessions lost after login */
	uint64_t registered, reg_exists, reg_failed;
	uint64_t sent, received;            /* all messages */
	uint64_t win_sent, win_received;    /* sent / received in the window */
	uint64_t stanza_errors, stream_errors, seq_errors, bad_messages;
	uint64_t backlog_max;               /* largest unsent output, bytes */
	struct hist lat;        /* messages sent in the window, ns */
	struct hist tick_lat;   /* the last progress interval, ns */
	struct hist login_lat;  /* login durations, ns */
	char first_error[160];
};

enum bench_phase { PH_LOGIN, PH_HOLD, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };

struct bench {
	struct bench_opts o;
	struct bench_stats st;
	int ep;                 /* epoll */
	SSL_CTX *ssl_ctx;
	struct bconn *conns;    /* o.users of them */
	uint32_t next_login;    /* next idx to start */
	uint32_t in_progress;   /* logins/registrations in flight */
	uint32_t online;
	struct bconn *dirty;    /* flush list */
	enum bench_phase phase;
	uint64_t t0, t_phase, t_win_start, t_win_end;
	uint64_t t_rate0;       /* open loop: when message 0 was due */
	uint64_t rate_next;     /* open loop: index of the next message */
	uint32_t rate_rr;       /* open loop: next sender */
	uint64_t out_pending;   /* bytes queued in all output buffers */
};

extern struct bench B;

/* bench_net.c */
uint64_t bench_now(void);
int net_init(void);
int net_connect(struct bconn *c);
/* Queue bytes; written when the flush list is drained. */
void net_send(struct bconn *c, const char *data, size_t len);
void net_sendf(struct bconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void net_flush_all(void);
void net_close(struct bconn *c);
int net_start_tls(struct bconn *c);
void net_event(struct bconn *c, uint32_t events);

/* bench_xmpp.c */
void xmpp_on_connected(struct bconn *c);
void xmpp_on_tls_ready(struct bconn *c);
/* Scan what arrived; returns -1 if the connection must close. */
int xmpp_on_data(struct bconn *c, const char *data, size_t len);
void xmpp_on_closed(struct bconn *c, const char *why);
/* Closed loop: send the next message(s) from c up to its window. */
void xmpp_chat_fill(struct bconn *c, uint64_t now);
/* Open loop: one message from c stamped with its scheduled time. */
void xmpp_chat_send(struct bconn *c, uint64_t stamp);
void xmpp_note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* bench_main.c: a login (or registration) finished either way. */
void bench_login_done(struct bconn *c, bool ok);

/* bench_ctl.c */
int ctl_register_all(void);

#endif
