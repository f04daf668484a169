/*
 * http_shard.c - libwebsockets inside a shard's reactor: the "http" listen
 * module.
 *
 * Debian's libwebsockets 4.1 has no external-poll support, but it can run on
 * a libuv loop it does not own (a "foreign loop"). So each shard owns a
 * uv_loop_t and one lws_context on it; the shard's epoll watches the uv
 * loop's own epoll fd and, when it is readable or uv's next timer is due,
 * runs one non-blocking uv iteration. libwebsockets then has no thread and
 * no loop of its own, and all its callbacks run on the shard's thread.
 *
 * The listening sockets are ours, not lws': lws 4.1 sets SO_REUSEPORT only
 * when it runs several service threads itself, so every shard binds the
 * port with SO_REUSEPORT (the kernel spreads connections), accepts, and
 * hands each connection to its vhost with lws_adopt_socket_vhost().
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/http.h"
#include "core/http_int.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"

#define HTTP_DRAIN_ROUNDS 1000    /* uv iterations allowed for closing at stop */
#define HTTP_ACCEPT_BATCH 64      /* accepts per readiness, so others get a turn */
#define HTTP_GOODBYE_MS 500       /* how long stop waits for WebSocket peers */
#define HTTP_EVLIB_HINT \
	"http: libwebsockets' libuv event library is missing: apt-get install libwebsockets-evlib-uv"

/* Context creation and destruction touch lws' process-wide state (plugin
 * list, OpenSSL setup): one shard at a time, at startup and stop only. */
static pthread_mutex_t lws_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static __thread int evlib_missing;

/* ---- the uv loop inside the reactor ---- */

static void http_arm(struct http_shard *hs)
{
	int t = hs->again ? 0 : uv_backend_timeout(&hs->uv);
	hs->again = 0;
	if (t < 0)
		ev_timer_stop(hs->loop, &hs->timer);
	else
		ev_timer_start(hs->loop, &hs->timer, (uint64_t)t);
}

static void http_pump(struct http_shard *hs)
{
	hs->in_uv = 1;
	uv_run(&hs->uv, UV_RUN_NOWAIT);
	hs->in_uv = 0;
	if (hs->reap) {
		http_ws_reap(hs);
		hs->again = 1;    /* the close frames wait for POLLOUT */
	}
	http_arm(hs);
}

void http_kick(struct http_shard *hs)
{
	if (hs->in_uv)
		hs->again = 1;
	else
		ev_timer_start(hs->loop, &hs->timer, 0);
}

static void http_uv_ready(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(loop);
	PL_UNUSED(events);
	http_pump(io->data);
}

static void http_uv_due(struct ev_loop *loop, struct ev_timer *t)
{
	PL_UNUSED(loop);
	http_pump(t->data);
}

/* ---- lws' log, routed to ours ---- */

static void http_lws_log(int level, const char *line)
{
	PL_UNUSED(level);
	/* "[2026/11/25 23:59:01:1234] E: text\n": keep the text. */
	const char *p = line;
	if (*p == '[') {
		const char *q = strchr(p, ']');
		if (q)
			p = q + 1;
	}
	while (*p == ' ')
		p++;
	if (p[0] && p[1] == ':' && p[2] == ' ')
		p += 3;
	size_t n = strlen(p);
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (strstr(p, "evlib plugin"))
		evlib_missing = 1;
	/* lws' errors are mostly about one bad peer, not about the server. */
	log_warning("http: libwebsockets: %.*s", (int)n, p);
}

static void http_log_init(void)
{
	lws_set_log_level(LLL_ERR, http_lws_log);
}

/* ---- listening sockets ---- */

static void http_accept(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(events);
	struct http_listener *l = PL_CONTAINER_OF(io, struct http_listener, acc.io);
	int adopted = 0;
	for (int i = 0; i < HTTP_ACCEPT_BATCH; i++) {
		int fd = listen_accept(loop, &l->acc, NULL, NULL);
		if (fd < 0)
			break;
		/* On failure lws closes the fd itself. */
		if (lws_adopt_socket_vhost(l->vh, fd))
			adopted++;
	}
	if (adopted)
		http_kick(l->hs);   /* lws' new uv_poll handles start in uv_run */
}

/* ---- one shard's context ---- */

/* Shutdown: tell WebSocket peers we are going away (1001) and give them a
 * moment to answer, so browsers see a clean close, not a dropped line.
 * The reactor no longer runs for us here, so wait on uv's fd directly. */
static void http_goodbye(struct http_shard *hs)
{
	if (!hs->ctx || http_ws_close_all(hs, 1001) == 0)
		return;
	uint64_t deadline = pl_now_ms() + HTTP_GOODBYE_MS;
	while (hs->open_ws) {
		http_pump(hs);
		uint64_t now = pl_now_ms();
		if (now >= deadline)
			break;
		int t = hs->again ? 0 : uv_backend_timeout(&hs->uv);
		if (t < 0 || (uint64_t)t > deadline - now)
			t = (int)(deadline - now);
		struct pollfd p = { .fd = uv_backend_fd(&hs->uv), .events = POLLIN };
		poll(&p, 1, t);
	}
}

static void http_shard_free(struct http_shard *hs)
{
	for (int i = 0; i < hs->nls; i++) {
		listen_acceptor_stop(hs->loop, &hs->ls[i].acc);
		close(hs->ls[i].acc.io.fd);
	}
	hs->nls = 0;
	http_goodbye(hs);
	/* On a foreign loop lws 4.1 destroys in steps: the first call closes
	 * every connection and uv handle (that completes inside uv iterations),
	 * the next ones finish what the closes left and free the context,
	 * which clears hs->ctx through info.pcontext. */
	for (int step = 0; hs->ctx && step < 3; step++) {
		lws_context_destroy(hs->ctx);
		for (int i = 0; i < HTTP_DRAIN_ROUNDS && hs->ctx; i++)
			if (uv_run(&hs->uv, UV_RUN_NOWAIT) == 0)
				break;
	}
	if (hs->ctx)
		log_warning("http: shard %d: libwebsockets did not finish closing", hs->shard);
	ev_timer_stop(hs->loop, &hs->timer);
	ev_io_stop(hs->loop, &hs->io);
	for (int i = 0; i < HTTP_DRAIN_ROUNDS && uv_run(&hs->uv, UV_RUN_NOWAIT); i++)
		;
	if (uv_loop_close(&hs->uv) != 0)
		log_warning("http: shard %d: uv loop still has handles at stop", hs->shard);
	free(hs);
}

static struct http_shard *http_shard_new(struct shard *sh)
{
	struct http_shard *hs = pl_calloc(1, sizeof(*hs));
	hs->loop = sh->loop;
	hs->shard = sh->id;
	int rc = uv_loop_init(&hs->uv);
	if (rc != 0) {
		log_error("http: shard %d: uv_loop_init: %s", sh->id, uv_strerror(rc));
		free(hs);
		return NULL;
	}
	ev_io_init(&hs->io, uv_backend_fd(&hs->uv), http_uv_ready, hs);
	ev_timer_init(&hs->timer, http_uv_due, hs);
	if (ev_io_start(hs->loop, &hs->io, EV_READ) != PL_OK) {
		uv_loop_close(&hs->uv);
		free(hs);
		return NULL;
	}

	void *loops[1] = { &hs->uv };
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.foreign_loops = loops;
	info.pcontext = &hs->ctx;
	info.user = hs;
	info.gid = -1;
	info.uid = -1;
	info.max_http_header_data = HTTP_MAX_HEADER_BYTES;
	info.server_string = "Parley";

	evlib_missing = 0;
	hs->ctx = lws_create_context(&info);
	if (!hs->ctx) {
		if (evlib_missing || access(LWS_INSTALL_LIBDIR "/libwebsockets-evlib_uv.so", F_OK) != 0) {
			static atomic_int said;     /* every shard fails alike: say it once */
			if (atomic_exchange(&said, 1) == 0)
				log_error(HTTP_EVLIB_HINT);
		} else
			log_error("http: shard %d: cannot create the libwebsockets context", sh->id);
		http_shard_free(hs);
		return NULL;
	}
	return hs;
}

static int http_listener_new(struct http_shard *hs, const struct listen_cfg *lc)
{
	struct http_listener *l = &hs->ls[hs->nls];
	memset(l, 0, sizeof(*l));
	l->hs = hs;
	snprintf(l->vhost_name, sizeof(l->vhost_name), "parley-%d", lc->port);

	char err[256];
	int fd = listen_socket(lc, SOCK_STREAM, err, sizeof(err));
	if (fd < 0) {
		log_error("http: %s", err);
		return PL_ERR;
	}
	struct lws_context_creation_info vi;
	memset(&vi, 0, sizeof(vi));
	vi.vhost_name = l->vhost_name;
	vi.port = CONTEXT_PORT_NO_LISTEN_SERVER;    /* we accept, lws serves */
	vi.protocols = http_protocols();
	vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	vi.keepalive_timeout = 30;
	vi.timeout_secs = 20;
	vi.timeout_secs_ah_idle = 10;
	l->vh = lws_create_vhost(hs->ctx, &vi);
	if (!l->vh) {
		log_error("http: shard %d: cannot create the libwebsockets vhost for port %d",
			  hs->shard, lc->port);
		close(fd);
		return PL_ERR;
	}
	/* From here the entry is counted: lws keeps pointing at its name. */
	hs->nls++;
	if (listen_acceptor_start(hs->loop, &l->acc, lc, fd, http_accept) != PL_OK)
		return PL_ERR;
	return PL_OK;
}

/* ---- the listen module ---- */

static int http_start(const struct listen_cfg *lc, struct shard *sh)
{
	struct http_shard *hs = sh->subsys[SHARD_SLOT_HTTP];
	int created = 0, rc = PL_ERR;

	pthread_once(&log_once, http_log_init);
	pthread_mutex_lock(&lws_mu);
	if (!hs) {
		hs = http_shard_new(sh);
		if (!hs)
			goto out;
		created = 1;
	}
	if (hs->nls >= HTTP_MAX_LISTEN) {
		log_error("http: more than %d http listeners", HTTP_MAX_LISTEN);
		goto fail;
	}
	if (http_listener_new(hs, lc) != PL_OK)
		goto fail;
	sh->subsys[SHARD_SLOT_HTTP] = hs;
	if (sh->id == 0)
		log_info("http: listening on %s port %d", lc->ip ? lc->ip : "::", lc->port);
	http_arm(hs);
	rc = PL_OK;
	goto out;
fail:
	if (created)
		http_shard_free(hs);
out:
	pthread_mutex_unlock(&lws_mu);
	return rc;
}

static void http_stop(const struct listen_cfg *lc, struct shard *sh)
{
	struct http_shard *hs = sh->subsys[SHARD_SLOT_HTTP];
	if (!hs)
		return;
	int found = 0;
	for (int i = 0; i < hs->nls; i++)
		if (hs->ls[i].acc.lc == lc && hs->ls[i].acc.io.active) {
			/* Stop accepting now; the vhost and the connections already
			 * adopted go with the context, at the shard's last listener. */
			listen_acceptor_stop(hs->loop, &hs->ls[i].acc);
			found = 1;
		}
	if (!found)
		return;
	for (int i = 0; i < hs->nls; i++)
		if (hs->ls[i].acc.io.active)
			return;
	sh->subsys[SHARD_SLOT_HTTP] = NULL;
	pthread_mutex_lock(&lws_mu);
	http_shard_free(hs);
	pthread_mutex_unlock(&lws_mu);
}

const struct listen_module http_listen_module = {
	.name = "http",
	.transports = LISTEN_TCP,
	.options = NULL,
	.accept = NULL,
	.datagram = NULL,
	.start = http_start,
	.stop = http_stop,
	.implemented = 1,
};
