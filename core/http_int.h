/*
 * http_int.h - what http.c (requests, WebSockets, routes) and http_shard.c
 * (libwebsockets on the shard's reactor, listening sockets) share. Not for
 * other subsystems: they use core/http.h.
 */
#ifndef PL_HTTP_INT_H
#define PL_HTTP_INT_H

#include <libwebsockets.h>
#include <uv.h>

#include "core/ev.h"
#include "core/listen.h"

#define HTTP_MAX_LISTEN 8         /* http listen entries per server */

struct http_shard;

/* One http listen entry on one shard: our socket, lws' vhost. */
struct http_listener {
	struct listen_acceptor acc;   /* the listening socket, paused when out of fds */
	struct http_shard *hs;
	struct lws_vhost *vh;
	char vhost_name[24];          /* lws keeps the pointer */
};

/* One shard's libwebsockets: owned and touched by that shard's thread. */
struct http_shard {
	struct ev_loop *loop;
	int shard;
	uv_loop_t uv;
	struct lws_context *ctx;      /* lws writes NULL here once destroyed */
	struct ev_io io;              /* uv_backend_fd(&uv) */
	struct ev_timer timer;        /* uv's next timeout, or "again soon" */
	struct http_listener ls[HTTP_MAX_LISTEN];
	int nls;
	struct http_ws *reap;         /* WebSockets to close after uv_run */
	struct http_ws *open_ws;      /* every open WebSocket, for shutdown */
	int in_uv;                    /* inside uv_run: re-arm happens after */
	int again;                    /* something asked for a uv run meanwhile */
};

/* Ask for a uv iteration soon: libuv applies new poll interest (a wsi that
 * now wants POLLOUT) only inside uv_run. */
void http_kick(struct http_shard *hs);

/* Start closing every open WebSocket with `code`; returns how many are
 * open (they leave the list once their peers have answered). */
int http_ws_close_all(struct http_shard *hs, int code);

/* Close the WebSockets that asked to, outside any lws callback. */
void http_ws_reap(struct http_shard *hs);

/* The lws protocol table built from the routes (called under the startup
 * lock, before any context uses it). */
const struct lws_protocols *http_protocols(void);

#endif
