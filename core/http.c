/*
 * http.c - the route registry, and requests and WebSockets as libwebsockets
 * hands them to us (on the shard's thread: see http_shard.c).
 *
 * One lws protocol, "http", serves every plain request and WebSocket without
 * a subprotocol; each distinct WebSocket subprotocol of the routes gets an
 * entry of its own (lws picks protocols by Sec-WebSocket-Protocol), all with
 * the same callback, which finds the route by path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http.h"
#include "core/http_int.h"
#include "core/log.h"
#include "core/pl.h"

#define HTTP_PREFIX_MAX 128
#define HTTP_CHUNK 16384          /* body bytes written per writable event */
#define HTTP_RX_CHUNK 4096        /* lws' per-read WebSocket buffer */

/* ---- the route registry: written at startup, read-only afterwards ---- */

struct http_route_ent {
	char *prefix;
	size_t len;
	const struct http_route *r;
};

static struct http_route_ent routes[HTTP_MAX_ROUTES];
static size_t nroutes;

/* A WebSocket lives inside its connection's lws user data (http_sess), so
 * it is freed by lws right after on_close. Owned by the accepting shard. */
struct http_ws {
	struct lws *wsi;
	struct http_shard *hs;
	const struct http_route *route;
	struct buf rx;                /* fragments of the message arriving */
	struct buf tx;                /* queued records: header + payload */
	void *data;
	int rx_binary;
	int open;                     /* on_open succeeded: on_close is owed */
	int closing;
	int close_sent;               /* reason set, on hs->reap until closed */
	int close_code;
	struct http_ws *reap_next;
	struct http_ws *prev, *next;  /* the shard's open WebSockets */
	char peer[64];
};

/* Per connection: lws' user data for the wsi, zeroed by lws. HTTP requests
 * on a keep-alive connection reuse it. */
struct http_sess {
	const struct http_route *route;
	enum http_method method;
	char *path;                   /* kept while a body arrives */
	char *query;
	struct buf body;              /* request body */
	struct buf out;               /* response body left to write */
	int responding;               /* headers sent, body in out */
	int close_after;              /* the request's body cannot be skipped */
	struct http_ws ws;
};

/* A queued WebSocket message: this header sits in the LWS_PRE bytes that
 * lws_write() needs in front of the payload (it overwrites them with the
 * frame header, after we have read ours). */
struct http_tx_hdr {
	uint32_t len;
	uint8_t binary;
};
_Static_assert(sizeof(struct http_tx_hdr) <= LWS_PRE, "tx header must fit in LWS_PRE");

static struct lws_protocols *protocols;  /* built at first start */

/* ------------------------------------------------------------------ */
/* routes                                                              */

static int prefix_valid(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n >= HTTP_PREFIX_MAX || p[0] != '/')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%')
			return 0;
		if (c == '/' && p[i + 1] == '/')
			return 0;
	}
	return 1;
}

int http_route_add(const char *path_prefix, const struct http_route *r)
{
	if (!path_prefix || !r || !prefix_valid(path_prefix)) {
		log_error("http: route '%s': a path prefix starts with '/' and has no spaces, "
			  "'?', '#', '%%' or '//'", path_prefix ? path_prefix : "(null)");
		return PL_ERR;
	}
	if (!r->handler && !r->ws) {
		log_error("http: route '%s': neither a handler nor a WebSocket protocol", path_prefix);
		return PL_ERR;
	}
	if (r->ws && r->ws->protocol && strcmp(r->ws->protocol, "http") == 0) {
		log_error("http: route '%s': WebSocket subprotocol name 'http' is reserved", path_prefix);
		return PL_ERR;
	}
	if (nroutes >= HTTP_MAX_ROUTES) {
		log_error("http: route '%s': more than %d routes", path_prefix, HTTP_MAX_ROUTES);
		return PL_ERR;
	}
	size_t len = strlen(path_prefix);
	if (len > 1 && path_prefix[len - 1] == '/')
		len--;      /* "/api/" and "/api" are the same route */
	for (size_t i = 0; i < nroutes; i++) {
		if (routes[i].len == len && memcmp(routes[i].prefix, path_prefix, len) == 0) {
			log_error("http: route '%s' is already taken by '%s'", path_prefix,
				  routes[i].r->name ? routes[i].r->name : "?");
			return PL_ERR;
		}
	}
	routes[nroutes].prefix = pl_strndup(path_prefix, len);
	routes[nroutes].len = len;
	routes[nroutes].r = r;
	nroutes++;
	free(protocols);     /* rebuilt from the new table at next start */
	protocols = NULL;
	return PL_OK;
}

void http_routes_clear(void)
{
	for (size_t i = 0; i < nroutes; i++)
		free(routes[i].prefix);
	nroutes = 0;
	free(protocols);
	protocols = NULL;
}

static const struct http_route *route_find(const char *path)
{
	const struct http_route_ent *best = NULL;
	for (size_t i = 0; i < nroutes; i++) {
		const struct http_route_ent *e = &routes[i];
		if (strncmp(path, e->prefix, e->len) != 0)
			continue;
		char next = path[e->len];
		int whole = e->len == 1 ? next == '\0' : (next == '\0' || next == '/');
		if (whole && (!best || e->len > best->len))
			best = e;
	}
	return best ? best->r : NULL;
}

/* ------------------------------------------------------------------ */
/* responses                                                           */

static const char *status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 426: return "Upgrade Required";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

static const struct {
	unsigned bit;
	const char *name;
} method_names[] = {
	{ HTTP_GET, "GET" }, { HTTP_POST, "POST" }, { HTTP_PUT, "PUT" },
	{ HTTP_DELETE, "DELETE" }, { HTTP_PATCH, "PATCH" }, { HTTP_OPTIONS, "OPTIONS" },
	{ HTTP_HEAD, "HEAD" },
};

static unsigned route_methods(const struct http_route *r)
{
	unsigned m = r->methods ? r->methods : HTTP_GET;
	if (m & HTTP_GET)
		m |= HTTP_HEAD;
	return m;
}

static void allow_header(const struct http_route *r, char *out, size_t outlen)
{
	unsigned m = route_methods(r);
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < PL_ARRAY_LEN(method_names); i++) {
		if (!(m & method_names[i].bit))
			continue;
		int w = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "",
				 method_names[i].name);
		if (w < 0 || (size_t)w >= outlen - used)
			break;
		used += (size_t)w;
	}
}

/* Write the status line and headers now; the body (moved out of *body)
 * follows on writable events. Returns non-zero if the connection must go. */
static int http_respond(struct lws *wsi, struct http_sess *s, int status,
			const char *ctype, struct buf *body, const char *hname, const char *hval)
{
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
	size_t len = body ? buf_used(body) : 0;

	if (lws_add_http_common_headers(wsi, (unsigned)status,
					ctype ? ctype : "text/plain; charset=utf-8",
					len, &p, end))
		return 1;
	if (hname && lws_add_http_header_by_name(wsi, (const unsigned char *)hname,
						 (const unsigned char *)hval, (int)strlen(hval), &p, end))
		return 1;
	if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end))
		return 1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	buf_free(&s->out);
	if (body && s->method != HTTP_HEAD) {
		s->out = *body;
		memset(body, 0, sizeof(*body));
	} else if (body) {
		buf_free(body);
	}
	s->responding = 1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int http_respond_error(struct lws *wsi, struct http_sess *s, int status,
			      const char *hname, const char *hval)
{
	struct buf b = { 0 };
	buf_printf(&b, "%d %s\n", status, status_text(status));
	return http_respond(wsi, s, status, NULL, &b, hname, hval);
}

static void sess_reset_http(struct http_sess *s)
{
	free(s->path);
	free(s->query);
	s->path = s->query = NULL;
	buf_free(&s->body);
	buf_free(&s->out);
	s->responding = 0;
	s->close_after = 0;
	s->route = NULL;
}

static int http_run_handler(struct lws *wsi, struct http_sess *s)
{
	struct http_shard *hs = lws_context_user(lws_get_context(wsi));
	char peer[64] = "?";
	struct http_request req = {
		.method = s->method == HTTP_HEAD ? HTTP_GET : s->method,
		.path = s->path,
		.query = s->query ? s->query : "",
		.body = (const uint8_t *)buf_cstr(&s->body),
		.body_len = buf_used(&s->body),
		.peer = lws_get_peer_simple(wsi, peer, sizeof(peer)),
		.shard = hs->shard,
	};
	if (!req.peer)
		req.peer = "?";
	struct http_response resp = { 0 };
	int rc = s->route->handler(&req, &resp);
	buf_free(&s->body);
	if (rc != PL_OK) {
		buf_free(&resp.body);
		log_warning("http: %s %s: handler '%s' failed", peer, s->path,
			    s->route->name ? s->route->name : "?");
		return http_respond_error(wsi, s, 500, NULL, NULL);
	}
	return http_respond(wsi, s, resp.status ? resp.status : 200, resp.content_type,
			    &resp.body, NULL, NULL);
}

static enum http_method method_of(int lws_method)
{
	switch (lws_method) {
	case LWSHUMETH_GET: return HTTP_GET;
	case LWSHUMETH_POST: return HTTP_POST;
	case LWSHUMETH_PUT: return HTTP_PUT;
	case LWSHUMETH_DELETE: return HTTP_DELETE;
	case LWSHUMETH_PATCH: return HTTP_PATCH;
	case LWSHUMETH_OPTIONS: return HTTP_OPTIONS;
	case LWSHUMETH_HEAD: return HTTP_HEAD;
	default: return 0;
	}
}

/* lws splits the query at '&' into fragments (decoded); join them again. */
static char *query_of(struct lws *wsi)
{
	struct buf q = { 0 };
	for (int i = 0;; i++) {
		int n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n <= 0)
			break;
		char *p = (char *)buf_reserve(&q, (size_t)n + 2);
		if (i)
			*p++ = '&';
		if (lws_hdr_copy_fragment(wsi, p, n + 1, WSI_TOKEN_HTTP_URI_ARGS, i) != n)
			break;
		buf_commit(&q, (size_t)n + (i ? 1 : 0));
	}
	char *out = pl_strndup((const char *)(q.data ? buf_head(&q) : (const uint8_t *)""),
			       buf_used(&q));
	buf_free(&q);
	return out;
}

static size_t route_max_body(const struct http_route *r)
{
	return r->max_body ? r->max_body : HTTP_DEFAULT_MAX_BODY;
}

/* LWS_CALLBACK_HTTP: a request line and its headers have arrived. */
static int http_on_request(struct lws *wsi, struct http_sess *s, const char *path)
{
	char *uri;
	int urilen;

	sess_reset_http(s);
	s->method = method_of(lws_http_get_uri_and_method(wsi, &uri, &urilen));
	s->route = route_find(path);
	if (!s->route)
		return http_respond_error(wsi, s, 404, NULL, NULL);
	if (!s->route->handler) {
		if (s->method == HTTP_GET || s->method == HTTP_HEAD)
			return http_respond_error(wsi, s, 426, "upgrade:", "websocket");
		return http_respond_error(wsi, s, 405, "allow:", "GET");
	}
	if (!s->method || !(route_methods(s->route) & s->method)) {
		char allow[96];
		allow_header(s->route, allow, sizeof(allow));
		return http_respond_error(wsi, s, 405, "allow:", allow);
	}

	s->path = pl_strdup(path);
	s->query = query_of(wsi);

	int cl_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	int chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	if (cl_len > 0) {
		char cl[32];
		if (cl_len >= (int)sizeof(cl) ||
		    lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0)
			return http_respond_error(wsi, s, 413, NULL, NULL);
		char *endp;
		errno = 0;
		unsigned long long n = strtoull(cl, &endp, 10);
		if (errno || *endp || endp == cl)
			return http_respond_error(wsi, s, 400, NULL, NULL);
		if (n > route_max_body(s->route))
			return http_respond_error(wsi, s, 413, NULL, NULL);
		if (n > 0)
			return 0;    /* the handler runs at LWS_CALLBACK_HTTP_BODY_COMPLETION */
	} else if (chunked) {
		/* lws 4.1 does not decode chunked request bodies (they never
		 * arrive), and the chunks would be parsed as the next request. */
		s->close_after = 1;
		return http_respond_error(wsi, s, 411, "connection:", "close");
	}
	return http_run_handler(wsi, s);
}

static int http_on_writeable(struct lws *wsi, struct http_sess *s)
{
	if (!s->responding)
		return 0;
	size_t left = buf_used(&s->out);
	if (left > 0) {
		unsigned char chunk[LWS_PRE + HTTP_CHUNK];
		size_t n = left < HTTP_CHUNK ? left : HTTP_CHUNK;
		int final = n == left;
		memcpy(chunk + LWS_PRE, buf_head(&s->out), n);
		if (lws_write(wsi, chunk + LWS_PRE, n,
			      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
			return -1;
		buf_consume(&s->out, n);
		if (!final) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	int close_after = s->close_after;
	sess_reset_http(s);
	if (close_after)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* WebSocket                                                           */

static int header_path(struct lws *wsi, char *out, int outlen)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
		return -1;
	return lws_hdr_copy(wsi, out, outlen, WSI_TOKEN_GET_URI) < 0 ? -1 : 0;
}

/* An upgrade request: only to a route that speaks WebSocket. */
static int http_on_confirm_upgrade(struct lws *wsi, struct http_sess *s)
{
	char path[HTTP_PREFIX_MAX * 4];
	const struct http_route *r = NULL;
	if (header_path(wsi, path, sizeof(path)) == 0)
		r = route_find(path);
	if (r && r->ws)
		return 0;
	/* Headers only: lws completes the transaction when we return 1. */
	unsigned char hdr[LWS_PRE + 512];
	unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
	PL_UNUSED(s);
	if (lws_add_http_common_headers(wsi, 404, "text/plain; charset=utf-8", 0, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 1;
}

/* The handshake is parsed; lws has picked our protocol entry from the
 * client's Sec-WebSocket-Protocol (or "http" when it offered none). */
static int http_on_filter_ws(struct lws *wsi, struct http_sess *s)
{
	char path[HTTP_PREFIX_MAX * 4];
	if (header_path(wsi, path, sizeof(path)) < 0)
		return 1;
	const struct http_route *r = route_find(path);
	if (!r || !r->ws)
		return 1;
	const char *chosen = lws_get_protocol(wsi)->name;
	int offered = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0;
	const char *want = r->ws->protocol;
	if (strcmp(chosen, "http") != 0 && (!want || strcmp(chosen, want) != 0))
		return 1;     /* a subprotocol of another route */
	if (want && !offered && r->ws->protocol_required)
		return 1;
	memset(&s->ws, 0, sizeof(s->ws));
	s->ws.wsi = wsi;
	s->ws.hs = lws_context_user(lws_get_context(wsi));
	s->ws.route = r;
	return 0;
}

static size_t route_max_message(const struct http_route *r)
{
	return r->max_message ? r->max_message : HTTP_DEFAULT_MAX_MESSAGE;
}

static int http_ws_established(struct lws *wsi, struct http_ws *ws)
{
	if (!ws->route)
		return -1;
	if (!lws_get_peer_simple(wsi, ws->peer, sizeof(ws->peer)))
		snprintf(ws->peer, sizeof(ws->peer), "?");
	if (ws->route->ws->on_open && ws->route->ws->on_open(ws) != PL_OK)
		return -1;
	ws->open = 1;
	ws->prev = NULL;
	ws->next = ws->hs->open_ws;
	if (ws->next)
		ws->next->prev = ws;
	ws->hs->open_ws = ws;
	log_debug("http: shard %d: %s opened WebSocket '%s'", ws->hs->shard, ws->peer,
		  ws->route->name ? ws->route->name : "?");
	return 0;
}

/* Close after what is queued has been written (see http_ws_writeable). */
static void ws_start_close(struct http_ws *ws, int code)
{
	ws->closing = 1;
	ws->close_code = code;
	buf_free(&ws->rx);
	lws_callback_on_writable(ws->wsi);
	http_kick(ws->hs);
}

static int http_ws_receive(struct lws *wsi, struct http_ws *ws, const uint8_t *in, size_t len)
{
	if (!ws->open)
		return -1;
	if (ws->closing)
		return 0;      /* the close is on its way: ignore the rest */
	int first = lws_is_first_fragment(wsi);
	int last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
	if (first && buf_used(&ws->rx) == 0)
		ws->rx_binary = lws_frame_is_binary(wsi);
	if (buf_used(&ws->rx) + len > route_max_message(ws->route)) {
		log_info("http: %s: WebSocket message over %zu bytes on '%s'", ws->peer,
			 route_max_message(ws->route), ws->route->name ? ws->route->name : "?");
		ws_start_close(ws, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
		return 0;
	}
	if (last && buf_used(&ws->rx) == 0) {
		/* The common case: a whole message in one read, no copy. */
		ws->route->ws->on_message(ws, in, len, ws->rx_binary);
		return 0;
	}
	buf_append(&ws->rx, in, len);
	if (!last)
		return 0;
	ws->route->ws->on_message(ws, buf_head(&ws->rx), buf_used(&ws->rx), ws->rx_binary);
	buf_free(&ws->rx);
	return 0;
}

static int http_ws_writeable(struct lws *wsi, struct http_ws *ws)
{
	if (buf_used(&ws->tx) >= LWS_PRE) {
		struct http_tx_hdr h;
		uint8_t *rec = ws->tx.data + ws->tx.off;
		memcpy(&h, rec, sizeof(h));
		if (lws_write(wsi, rec + LWS_PRE, h.len,
			      h.binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)h.len)
			return -1;
		buf_consume(&ws->tx, LWS_PRE + (size_t)h.len);
		if (buf_used(&ws->tx) > 0 || ws->closing)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (ws->closing && !ws->close_sent) {
		/* Not "return -1": lws takes that (and its own timeouts) as a dead
		 * socket and hangs up without a close frame. Closed from outside
		 * its callbacks, it sends our reason and waits for the peer's
		 * close: see http_ws_reap(). */
		ws->close_sent = 1;
		lws_close_reason(wsi, (enum lws_close_status)ws->close_code, NULL, 0);
		ws->reap_next = ws->hs->reap;
		ws->hs->reap = ws;
		http_kick(ws->hs);
	}
	return 0;
}

void http_ws_reap(struct http_shard *hs)
{
	while (hs->reap) {
		struct http_ws *ws = hs->reap;
		hs->reap = ws->reap_next;
		ws->reap_next = NULL;
		/* Sends the close frame; the wsi lives on until the peer answers. */
		lws_set_timeout(ws->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
	}
}

static void http_ws_closed(struct http_ws *ws)
{
	for (struct http_ws **pp = ws->hs ? &ws->hs->reap : NULL; pp && *pp; pp = &(*pp)->reap_next) {
		if (*pp == ws) {
			*pp = ws->reap_next;
			break;
		}
	}
	if (ws->open) {
		if (ws->prev)
			ws->prev->next = ws->next;
		else
			ws->hs->open_ws = ws->next;
		if (ws->next)
			ws->next->prev = ws->prev;
		if (ws->route->ws->on_close)
			ws->route->ws->on_close(ws);
	}
	ws->open = 0;
	buf_free(&ws->rx);
	buf_free(&ws->tx);
}

int http_ws_send(struct http_ws *ws, const void *data, size_t len, int binary)
{
	if (!ws->open || ws->closing || len > UINT32_MAX)
		return PL_ERR;
	if (buf_used(&ws->tx) + len > HTTP_WS_MAX_QUEUED) {
		log_info("http: %s: more than %zu bytes queued on '%s'", ws->peer,
			 (size_t)HTTP_WS_MAX_QUEUED, ws->route->name ? ws->route->name : "?");
		return PL_ERR;
	}
	struct http_tx_hdr h = { .len = (uint32_t)len, .binary = binary ? 1 : 0 };
	uint8_t *rec = buf_reserve(&ws->tx, LWS_PRE + len);
	memset(rec, 0, LWS_PRE);
	memcpy(rec, &h, sizeof(h));
	if (len)
		memcpy(rec + LWS_PRE, data, len);
	buf_commit(&ws->tx, LWS_PRE + len);
	lws_callback_on_writable(ws->wsi);
	http_kick(ws->hs);
	return PL_OK;
}

int http_ws_close_all(struct http_shard *hs, int code)
{
	int n = 0;
	for (struct http_ws *ws = hs->open_ws; ws; ws = ws->next, n++)
		if (!ws->closing)
			ws_start_close(ws, code);
	return n;
}

void http_ws_close(struct http_ws *ws, int code)
{
	if (!ws->open || ws->closing)
		return;
	ws_start_close(ws, code ? code : LWS_CLOSE_STATUS_NORMAL);
}

const struct http_route *http_ws_route(const struct http_ws *ws) { return ws->route; }
void *http_ws_get_data(const struct http_ws *ws) { return ws->data; }
void http_ws_set_data(struct http_ws *ws, void *data) { ws->data = data; }
int http_ws_shard(const struct http_ws *ws) { return ws->hs->shard; }
const char *http_ws_peer(const struct http_ws *ws) { return ws->peer; }

/* ------------------------------------------------------------------ */
/* the one lws callback                                                */

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct http_sess *s = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return http_on_request(wsi, s, in ? (const char *)in : "/");
	case LWS_CALLBACK_HTTP_BODY:
		if (!s->route || s->responding)
			return -1;
		if (buf_used(&s->body) + len > route_max_body(s->route))
			return -1;   /* chunked past the limit: no polite answer */
		buf_append(&s->body, in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!s->route || s->responding)
			return -1;
		return http_run_handler(wsi, s) ? -1 : 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return http_on_writeable(wsi, s);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (s)
			sess_reset_http(s);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return http_on_confirm_upgrade(wsi, s);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return http_on_filter_ws(wsi, s);
	case LWS_CALLBACK_ESTABLISHED:
		return http_ws_established(wsi, &s->ws);
	case LWS_CALLBACK_RECEIVE:
		return http_ws_receive(wsi, &s->ws, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return http_ws_writeable(wsi, &s->ws);
	case LWS_CALLBACK_CLOSED:
		http_ws_closed(&s->ws);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* "http" first (plain HTTP, WebSockets without a subprotocol), then one entry
 * per distinct subprotocol of the routes. */
const struct lws_protocols *http_protocols(void)
{
	if (protocols)
		return protocols;
	size_t n = 1;
	struct lws_protocols *p = pl_calloc(nroutes + 2, sizeof(*p));
	p[0].name = "http";
	for (size_t i = 0; i < nroutes; i++) {
		const struct http_ws_ops *ws = routes[i].r->ws;
		if (!ws || !ws->protocol)
			continue;
		size_t j;
		for (j = 1; j < n; j++)
			if (strcmp(p[j].name, ws->protocol) == 0)
				break;
		if (j == n)
			p[n++].name = ws->protocol;
	}
	for (size_t i = 0; i < n; i++) {
		p[i].callback = http_callback;
		p[i].per_session_data_size = sizeof(struct http_sess);
		p[i].rx_buffer_size = HTTP_RX_CHUNK;
		p[i].id = (unsigned)i;
	}
	protocols = p;
	return p;
}
