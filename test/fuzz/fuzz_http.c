/* fuzz-sources: core/http.c core/http_shard.c core/http_echo.c core/listen.c core/ev.c core/buf.c core/pl.c core/log.c */
/*
 * fuzz_http.c - arbitrary bytes from a client of the HTTP/WebSocket listener:
 * libwebsockets' parsers and, behind them, our routing, request bodies,
 * WebSocket reassembly, limits and closes.
 *
 * One listener runs on an ev loop for the whole process, as on a shard. Each
 * input goes down one end of a socketpair whose other end the listener
 * adopts like an accepted connection; the write side is then shut, and the
 * loop runs until the server hangs up (or 2 s pass, which counts as a hang).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/http.h"
#include "core/http_int.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"

#define FUZZ_WAIT_MS 2000

static struct ev_loop *loop;
static struct shard sh;
static struct listen_cfg lc;
static int server_gone, timed_out;

static int echo_post(const struct http_request *req, struct http_response *resp)
{
	buf_append(&resp->body, req->body, req->body_len);
	buf_append_str(&resp->body, req->query);
	return req->body_len == 3 && memcmp(req->body, "err", 3) == 0 ? PL_ERR : PL_OK;
}

static const struct http_route post_route = {
	.name = "post", .methods = HTTP_GET | HTTP_POST | HTTP_PUT, .handler = echo_post,
	.max_body = 256,
};

static void small_echo(struct http_ws *ws, const uint8_t *d, size_t n, int binary)
{
	if (n == 5 && memcmp(d, "close", 5) == 0)
		http_ws_close(ws, 1000);
	else
		http_ws_send(ws, d, n, binary);
}

static const struct http_ws_ops small_ops = { .protocol = "small", .on_message = small_echo };
static const struct http_route small_route = {
	.name = "small", .ws = &small_ops, .max_message = 64,
};

static void client_cb(struct ev_loop *l, struct ev_io *io, int events)
{
	PL_UNUSED(events);
	uint8_t sink[16384];
	for (;;) {
		ssize_t n = read(io->fd, sink, sizeof(sink));
		if (n > 0)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			server_gone = 1;
			ev_loop_stop(l);
		}
		return;
	}
}

static void deadline_cb(struct ev_loop *l, struct ev_timer *t)
{
	PL_UNUSED(t);
	timed_out = 1;
	ev_loop_stop(l);
}

static int setup(void)
{
	log_threshold = LOG_ERROR;
	loop = ev_loop_new();
	sh.loop = loop;
	if (http_echo_register() != PL_OK || http_route_add("/post", &post_route) != PL_OK ||
	    http_route_add("/small", &small_route) != PL_OK)
		return -1;
	/* Port 0: the kernel picks one; nothing connects over TCP anyway. */
	lc.module = "http";
	lc.ip = "127.0.0.1";
	lc.port = 0;
	lc.lm = &http_listen_module;
	return http_listen_module.start(&lc, &sh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (setup() != PL_OK)
			abort();
		ready = 1;
	}
	struct http_shard *hs = sh.subsys[SHARD_SLOT_HTTP];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	/* Loopback buffers hold far more than libFuzzer's inputs (4 kB). */
	size_t off = 0;
	while (off < size) {
		ssize_t n = write(sv[0], data + off, size - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(sv[0], SHUT_WR);
	if (!lws_adopt_socket_vhost(hs->ls[0].vh, sv[1])) {
		close(sv[0]);
		return 0;     /* lws closed sv[1] itself */
	}
	http_kick(hs);

	struct ev_io io;
	struct ev_timer deadline;
	server_gone = timed_out = 0;
	ev_io_init(&io, sv[0], client_cb, NULL);
	ev_io_start(loop, &io, EV_READ);
	ev_timer_init(&deadline, deadline_cb, NULL);
	ev_timer_start(loop, &deadline, FUZZ_WAIT_MS);
	ev_loop_run(loop);
	ev_timer_stop(loop, &deadline);
	ev_io_stop(loop, &io);
	close(sv[0]);
	if (timed_out && !server_gone) {
		fprintf(stderr, "fuzz_http: the server kept a half-closed connection for %d ms\n",
			FUZZ_WAIT_MS);
		abort();
	}
	return 0;
}
