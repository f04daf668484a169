/*
 * http.h - the shared HTTP/WebSocket listener (libwebsockets on the reactor).
 *
 * Every HTTP-ish endpoint (the status page, XMPP over WebSocket, BOSH, SIP
 * over WebSocket, the admin API, metrics...) is a route on one listener, so
 * a subsystem adds an endpoint without touching http.c:
 *
 *   - at startup, before the shards start, it calls http_route_add() with a
 *     path prefix and a const struct http_route (a plain-HTTP handler, a
 *     WebSocket protocol, or both);
 *   - the core opens the `module: http` listen entries through
 *     http_listen_module: on each shard's thread, start() creates that
 *     shard's lws_context on a libuv loop that the shard's reactor drives
 *     (no thread or loop of libwebsockets' own), listening with SO_REUSEPORT
 *     so the kernel spreads connections over the shards.
 *
 * Routes match whole path segments: "/api" matches "/api" and "/api/x" but
 * not "/apix"; the root "/" matches only "/" itself. The longest match wins.
 * Unknown paths answer 404 (WebSocket upgrades too), a method the route does
 * not take 405, a body over the route's limit 413, a chunked request body
 * 411 (libwebsockets 4.1 cannot decode one), a plain GET on a WebSocket-only
 * route 426. Request line and headers are limited to HTTP_MAX_HEADER_BYTES.
 * At shutdown every WebSocket is closed with 1001 (going away).
 *
 * Threads: handlers and WebSocket callbacks run on the shard that accepted
 * the connection; a struct http_ws belongs to that shard and http_ws_*()
 * must be called there (other shards shard_post() to it).
 */
#ifndef PL_HTTP_H
#define PL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/listen.h"

enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_POST = 1 << 1,
	HTTP_PUT = 1 << 2,
	HTTP_DELETE = 1 << 3,
	HTTP_PATCH = 1 << 4,
	HTTP_OPTIONS = 1 << 5,
	HTTP_HEAD = 1 << 6,    /* answered as GET without the body */
};

/* Defaults when a route leaves its limits at 0. */
#define HTTP_DEFAULT_MAX_BODY ((size_t)64 * 1024)
#define HTTP_DEFAULT_MAX_MESSAGE ((size_t)256 * 1024)
/* Request line plus headers, per request. */
#define HTTP_MAX_HEADER_BYTES 8192
#define HTTP_MAX_ROUTES 32

/* A request as the handler sees it; valid only during the handler call. */
struct http_request {
	enum http_method method;
	const char *path;           /* decoded, without the query */
	const char *query;          /* "a=1&b=2", or "" */
	const uint8_t *body;        /* POST/PUT/PATCH body, NUL-terminated */
	size_t body_len;
	const char *peer;           /* "127.0.0.1" or "::1" */
	int shard;
};

/* What the handler fills in. status 0 means 200; content_type NULL means
 * "text/plain; charset=utf-8". The body is freed by http.c once sent. */
struct http_response {
	int status;
	const char *content_type;   /* static string */
	struct buf body;
};

/* Returns PL_OK with *resp filled, or PL_ERR for a 500. */
typedef int http_handler_fn(const struct http_request *req, struct http_response *resp);

struct http_ws;

struct http_ws_ops {
	/* Sec-WebSocket-Protocol this route speaks ("xmpp", "sip", "echo"),
	 * or NULL for none. A client offering a different one is refused. */
	const char *protocol;
	/* 1: refuse clients that offer no subprotocol (RFC 7395, RFC 7118). */
	int protocol_required;
	/* Handshake done. Return PL_ERR to close at once. */
	int (*on_open)(struct http_ws *ws);
	/* One whole message (fragments are joined), up to max_message bytes.
	 * The data is valid only during the call. */
	void (*on_message)(struct http_ws *ws, const uint8_t *data, size_t len, int binary);
	/* The connection is gone; ws is invalid once this returns. */
	void (*on_close)(struct http_ws *ws);
};

struct http_route {
	const char *name;                 /* for logs: "status", "echo", "bosh" */
	unsigned methods;                 /* HTTP_GET | HTTP_POST ...; 0 = GET */
	http_handler_fn *handler;         /* NULL: WebSocket only */
	const struct http_ws_ops *ws;     /* NULL: no WebSocket */
	size_t max_body;                  /* 0: HTTP_DEFAULT_MAX_BODY */
	size_t max_message;               /* 0: HTTP_DEFAULT_MAX_MESSAGE */
	void *data;                       /* free for the route's owner */
};

/* Startup only (before the shards start). r must outlive the server; the
 * prefix is copied. PL_ERR if the prefix is malformed, taken or the table
 * is full. */
int http_route_add(const char *path_prefix, const struct http_route *r);
/* For tests: forget every route. */
void http_routes_clear(void);

/* Queue one WebSocket message; written when the socket is writable. PL_ERR
 * if the connection is closing or more than HTTP_WS_MAX_QUEUED bytes wait. */
#define HTTP_WS_MAX_QUEUED ((size_t)4 * 1024 * 1024)
int http_ws_send(struct http_ws *ws, const void *data, size_t len, int binary);
/* Send a close frame (after what is queued) and drop the connection;
 * on_close follows. code: RFC 6455 status, e.g. 1000. */
void http_ws_close(struct http_ws *ws, int code);
const struct http_route *http_ws_route(const struct http_ws *ws);
void *http_ws_get_data(const struct http_ws *ws);
void http_ws_set_data(struct http_ws *ws, void *data);
int http_ws_shard(const struct http_ws *ws);
const char *http_ws_peer(const struct http_ws *ws);

/* The WebSocket echo endpoint at /echo (subprotocol "echo" optional). */
int http_echo_register(void);

/* The "http" listen module; registered by the server at startup. */
extern const struct listen_module http_listen_module;

#endif
