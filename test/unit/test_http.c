/*
 * test_http.c - the HTTP/WebSocket listener on a reactor, over raw sockets.
 *
 * One thread: the test owns an ev loop standing in for a shard, starts the
 * http listen module on it, and talks to it through plain sockets watched by
 * the same loop (hand-made HTTP requests, RFC 6455 handshakes and frames),
 * running the loop until the answer is complete or 5 s have passed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "core/buf.h"
#include "core/cmd.h"
#include "core/ev.h"
#include "core/http.h"
#include "core/listen.h"
#include "core/pl.h"
#include "core/shard.h"
#include "webadmin/webadmin.h"

#define WAIT_MS 5000

static struct ev_loop *loop;
static struct shard sh;
static struct listen_cfg lc;

/* ------------------------------------------------------------------ */
/* routes and commands the tests serve                                 */

static void status_now(struct cmd_req *req)
{
	cmd_reply_ok(req, "parleyd 0.1.0 running: 1 shards, 1 hosts, uptime 3723 s");
}

static struct cmd_req *held_req;

static void status_later(struct cmd_req *req)
{
	held_req = req;    /* answers after the page has given up */
}

static const struct cmd_def status_sync = { "status", "test", NULL, 0, status_now };
static const struct cmd_def status_async = { "status", "test", NULL, 0, status_later };

static int echo_body(const struct http_request *req, struct http_response *resp)
{
	resp->content_type = "application/octet-stream";
	buf_printf(&resp->body, "%s %s?%s %zu:", req->method == HTTP_POST ? "POST" : "GET",
		   req->path, req->query, req->body_len);
	buf_append(&resp->body, req->body, req->body_len);
	return PL_OK;
}

static const struct http_route post_route = {
	.name = "post", .methods = HTTP_GET | HTTP_POST, .handler = echo_body, .max_body = 32,
};

static int big_body(const struct http_request *req, struct http_response *resp)
{
	PL_UNUSED(req);
	for (int i = 0; i < 100000; i++)
		buf_append(&resp->body, &"0123456789"[i % 10], 1);
	return PL_OK;
}

static const struct http_route big_route = { .name = "big", .handler = big_body };

static int failing(const struct http_request *req, struct http_response *resp)
{
	PL_UNUSED(req);
	buf_append_str(&resp->body, "half a page");
	return PL_ERR;
}

static const struct http_route fail_route = { .name = "fail", .handler = failing };

static void small_echo(struct http_ws *ws, const uint8_t *d, size_t n, int binary)
{
	http_ws_send(ws, d, n, binary);
}

static const struct http_ws_ops small_ops = { .protocol = NULL, .on_message = small_echo };
static const struct http_route small_route = {
	.name = "small", .ws = &small_ops, .max_message = 16,
};

/* /push: keeps the ws so the test can send from outside any lws callback. */
static struct http_ws *pushed_ws;
static int push_closed;

static int push_open(struct http_ws *ws)
{
	pushed_ws = ws;
	return PL_OK;
}

static void push_close(struct http_ws *ws)
{
	PL_UNUSED(ws);
	pushed_ws = NULL;
	push_closed++;
}

static const struct http_ws_ops push_ops = {
	.protocol = "push-test", .protocol_required = 1,
	.on_open = push_open, .on_message = small_echo, .on_close = push_close,
};
static const struct http_route push_route = { .name = "push", .ws = &push_ops };

/* ------------------------------------------------------------------ */
/* a raw client on the test's loop                                     */

struct client {
	int in_use;
	int fd;
	struct ev_io io;
	struct buf in;
	int eof;
	int (*done)(struct client *c);
};

static int timed_out;
/* Static, not on the stack: an assertion failing inside a callback leaves
 * ev_loop_run() by longjmp with the timer still armed. */
static struct ev_timer deadline;

static void client_cb(struct ev_loop *l, struct ev_io *io, int events)
{
	PL_UNUSED(events);
	struct client *c = io->data;
	for (;;) {
		uint8_t *p = buf_reserve(&c->in, 65536);
		ssize_t n = read(c->fd, p, 65536);
		if (n > 0) {
			buf_commit(&c->in, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			c->eof = 1;
			ev_io_stop(l, io);
		}
		break;
	}
	if (c->eof || (c->done && c->done(c)))
		ev_loop_stop(l);
}

static void deadline_cb(struct ev_loop *l, struct ev_timer *t)
{
	PL_UNUSED(t);
	timed_out = 1;
	ev_loop_stop(l);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Clients live in a pool, not on a test's stack: a failed assertion leaves
 * the test early, and the teardown must still find and close its sockets. */
static struct client pool[8];

static struct client *client_open_port(int port)
{
	size_t i = 0;
	while (i < PL_ARRAY_LEN(pool) - 1 && pool[i].in_use)
		i++;
	struct client *c = &pool[i];
	assert_false(c->in_use);
	memset(c, 0, sizeof(*c));
	c->in_use = 1;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	/* The kernel completes the handshake from the backlog: no loop needed. */
	assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	ev_io_init(&c->io, c->fd, client_cb, c);
	assert_int_equal(ev_io_start(loop, &c->io, EV_READ), PL_OK);
	return c;
}

static struct client *client_open(void)
{
	return client_open_port(lc.port);
}

static void client_send(struct client *c, const void *data, size_t len)
{
	/* The loop does not run here: this relies on loopback's socket
	 * buffers taking the largest request (200 kB). */
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(c->fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void client_close(struct client *c)
{
	if (!c || !c->in_use)
		return;
	if (c->io.active)
		ev_io_stop(loop, &c->io);
	close(c->fd);
	buf_free(&c->in);
	c->in_use = 0;
}

static int close_leftover_clients(void **state)
{
	PL_UNUSED(state);
	ev_timer_stop(loop, &deadline);
	for (size_t i = 0; i < PL_ARRAY_LEN(pool); i++)
		client_close(&pool[i]);
	return 0;
}

/* HTTP_TEST_DUMP=1 shows what each wait received (for debugging). */
static void client_dump(const struct client *c)
{
	fprintf(stderr, "client got %zu bytes, eof %d, timed out %d:\n", buf_used(&c->in),
		c->eof, timed_out);
	for (size_t i = 0; i < buf_used(&c->in) && i < 600; i++) {
		uint8_t ch = buf_head(&c->in)[i];
		if (ch >= 32 && ch < 127)
			fputc(ch, stderr);
		else
			fprintf(stderr, "\\x%02x", ch);
	}
	fputc('\n', stderr);
}

/* Run the loop until c->done says so, the peer closes, or WAIT_MS. */
static void client_wait(struct client *c, int (*done)(struct client *c))
{
	c->done = done;
	timed_out = 0;
	if (!c->eof && !(done && done(c))) {
		ev_timer_init(&deadline, deadline_cb, NULL);
		ev_timer_start(loop, &deadline, WAIT_MS);
		ev_loop_run(loop);
		ev_timer_stop(loop, &deadline);
	}
	c->done = NULL;
	if (getenv("HTTP_TEST_DUMP"))
		client_dump(c);
}

/* ---- HTTP/1.1 responses ---- */

static const char *resp_text(struct client *c)
{
	return buf_cstr(&c->in);
}

static int header_end(struct client *c)
{
	const char *t = resp_text(c);
	const char *e = strstr(t, "\r\n\r\n");
	return e ? (int)(e - t) + 4 : -1;
}

static long content_length(struct client *c)
{
	const char *t = resp_text(c);
	const char *h = strcasestr(t, "\r\ncontent-length:");
	return h ? strtol(h + 17, NULL, 10) : -1;
}

static int http_complete(struct client *c)
{
	int he = header_end(c);
	if (he < 0)
		return 0;
	long cl = content_length(c);
	return cl < 0 || buf_used(&c->in) >= (size_t)he + (size_t)cl;
}

static int status_of(struct client *c)
{
	int major, minor, code;
	if (sscanf(resp_text(c), "HTTP/%d.%d %d", &major, &minor, &code) != 3)
		return -1;
	return code;
}

static const char *body_of(struct client *c)
{
	int he = header_end(c);
	return he < 0 ? "" : resp_text(c) + he;
}

/* One request on a fresh connection; returns the status code. */
static int http_exchange(struct client **cp, const char *request)
{
	struct client *c = *cp = client_open();
	client_send(c, request, strlen(request));
	client_wait(c, http_complete);
	assert_false(timed_out);
	return status_of(c);
}

/* ---- RFC 6455 ---- */

static void ws_frame(struct buf *b, int fin, int opcode, const void *data, size_t len)
{
	static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	uint8_t h[14];
	size_t hl = 2;
	h[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		h[1] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	memcpy(h + hl, mask, 4);
	buf_append(b, h, hl + 4);
	uint8_t *p = buf_reserve(b, len);
	for (size_t i = 0; i < len; i++)
		p[i] = ((const uint8_t *)data)[i] ^ mask[i % 4];
	buf_commit(b, len);
}

struct frame {
	int fin, opcode;
	const uint8_t *data;
	size_t len;
};

/* Parse the server frame at *off of c->in (unmasked); 0 if incomplete. */
static int ws_parse(struct client *c, size_t *off, struct frame *f)
{
	const uint8_t *p = buf_head(&c->in) + *off;
	size_t avail = buf_used(&c->in) - *off, hl = 2, len;
	if (avail < 2)
		return 0;
	assert_int_equal(p[1] & 0x80, 0);    /* a server never masks */
	len = p[1] & 0x7f;
	if (len == 126) {
		if (avail < 4)
			return 0;
		len = (size_t)p[2] << 8 | p[3];
		hl = 4;
	} else if (len == 127) {
		if (avail < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		hl = 10;
	}
	if (avail < hl + len)
		return 0;
	f->fin = p[0] >> 7;
	f->opcode = p[0] & 0x0f;
	f->data = p + hl;
	f->len = len;
	*off += hl + len;
	return 1;
}

static int frames_wanted;

/* Done when the 101 headers and frames_wanted frames have arrived. */
static int ws_frames_complete(struct client *c)
{
	int he = header_end(c);
	if (he < 0)
		return 0;
	size_t off = (size_t)he;
	struct frame f;
	int n = 0;
	while (ws_parse(c, &off, &f))
		n++;
	return n >= frames_wanted;
}

static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ==";   /* RFC 6455 section 1.3 */

static void ws_upgrade_request(struct buf *b, const char *path, const char *proto)
{
	buf_printf(b, "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
		      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		      "Sec-WebSocket-Version: 13\r\n", path, ws_key);
	if (proto)
		buf_printf(b, "Sec-WebSocket-Protocol: %s\r\n", proto);
	buf_append_str(b, "\r\n");
}

/* Handshake on a fresh connection; returns the status code. */
static int ws_open(struct client **cp, const char *path, const char *proto)
{
	struct buf req = { 0 };
	ws_upgrade_request(&req, path, proto);
	struct client *c = *cp = client_open();
	client_send(c, buf_head(&req), buf_used(&req));
	buf_free(&req);
	client_wait(c, http_complete);
	assert_false(timed_out);
	return status_of(c);
}

/* The nth frame (from 0) after the handshake's headers. */
static struct frame ws_nth_frame(struct client *c, int nth)
{
	size_t off = (size_t)header_end(c);
	struct frame f = { 0 };
	for (int i = 0; i <= nth; i++)
		assert_true(ws_parse(c, &off, &f));
	return f;
}

static int has_close_frame(struct client *c)
{
	int he = header_end(c);
	if (he < 0)
		return 0;
	size_t off = (size_t)he;
	struct frame f;
	while (ws_parse(c, &off, &f))
		if (f.opcode == 0x8)
			return 1;
	return 0;
}

/* RFC 6455 section 5.5.1: wait for the server's close frame, answer it, and
 * wait for the server to drop the TCP connection. Returns the close code. */
static int ws_closing_handshake(struct client *c)
{
	client_wait(c, has_close_frame);
	assert_false(timed_out);
	size_t off = (size_t)header_end(c);
	struct frame f;
	int code = -1;
	while (ws_parse(c, &off, &f))
		if (f.opcode == 0x8)
			code = f.len >= 2 ? (f.data[0] << 8 | f.data[1]) : 0;
	assert_true(code > 0);
	struct buf out = { 0 };
	uint8_t reply[2] = { (uint8_t)(code >> 8), (uint8_t)code };
	ws_frame(&out, 1, 0x8, reply, sizeof(reply));
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	client_wait(c, NULL);
	assert_false(timed_out);
	assert_true(c->eof);
	return code;
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

static int group_setup(void **state)
{
	PL_UNUSED(state);
	loop = ev_loop_new();
	if (!loop)
		return -1;
	memset(&sh, 0, sizeof(sh));
	sh.id = 0;
	sh.loop = loop;
	cmd_register(&status_sync);
	webadmin_register();
	if (http_echo_register() != PL_OK || http_route_add("/post", &post_route) != PL_OK ||
	    http_route_add("/big", &big_route) != PL_OK || http_route_add("/fail", &fail_route) != PL_OK ||
	    http_route_add("/small", &small_route) != PL_OK ||
	    http_route_add("/push", &push_route) != PL_OK)
		return -1;
	lc.module = "http";
	lc.ip = "127.0.0.1";
	lc.port = free_port();
	lc.lm = &http_listen_module;
	return http_listen_module.start(&lc, &sh) == PL_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	PL_UNUSED(state);
	http_listen_module.stop(&lc, &sh);
	int ok = sh.subsys[SHARD_SLOT_HTTP] == NULL;
	http_routes_clear();
	ev_loop_free(loop);
	return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* plain HTTP                                                          */

static void status_page_is_html_with_version_uptime_shards(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(http_exchange(&c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), 200);
	assert_non_null(strcasestr(resp_text(c), "\r\ncontent-type: text/html"));
	assert_non_null(strstr(body_of(c), "<title>Parley</title>"));
	assert_non_null(strstr(body_of(c), "<th>Version</th><td>" PACKAGE_VERSION "</td>"));
	assert_non_null(strstr(body_of(c), "<th>Uptime</th><td>1 h 2 min 3 s</td>"));
	assert_non_null(strstr(body_of(c), "<th>Shards</th>"));
	assert_non_null(strstr(body_of(c), "uptime 3723 s"));
	assert_int_equal((long)strlen(body_of(c)), content_length(c));
	client_close(c);
}

static void status_page_late_command_reply_is_503_then_freed(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	cmd_register(&status_async);
	held_req = NULL;
	int code = http_exchange(&c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
	cmd_register(&status_sync);
	assert_int_equal(code, 503);
	assert_non_null(held_req);
	/* The page is gone; the late reply must free its request (ASan checks). */
	cmd_reply_ok(held_req, "late");
	client_close(c);
}

static void rfc9110_15_5_5_unknown_path_is_404(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(http_exchange(&c, "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n"), 404);
	client_close(c);
	/* Routes match whole segments: /postx is not /post, /echo2 not /echo. */
	assert_int_equal(http_exchange(&c, "GET /postx HTTP/1.1\r\nHost: localhost\r\n\r\n"), 404);
	client_close(c);
	assert_int_equal(http_exchange(&c, "GET /index.html HTTP/1.1\r\nHost: l\r\n\r\n"), 404);
	client_close(c);
}

static void rfc9110_15_5_6_wrong_method_is_405_with_allow(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	const char *req = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(http_exchange(&c, req), 405);
	assert_non_null(strcasestr(resp_text(c), "\r\nallow: GET, HEAD\r\n"));
	client_close(c);
	assert_int_equal(http_exchange(&c, "DELETE /post HTTP/1.1\r\nHost: l\r\n\r\n"), 405);
	assert_non_null(strcasestr(resp_text(c), "\r\nallow: GET, POST, HEAD\r\n"));
	client_close(c);
}

static int head_then_get(struct client *c)
{
	if (buf_used(&c->in) == 0)
		return 0;
	const char *second = strstr(resp_text(c) + 1, "HTTP/1.1 ");
	return second && strstr(second, "GET /post? 0:");
}

static void rfc9110_9_3_2_head_has_headers_only(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	c = client_open();
	/* If HEAD sent a body, the second response would not follow the
	 * first one's headers directly. */
	const char *req = "HEAD /big HTTP/1.1\r\nHost: localhost\r\n\r\n"
			  "GET /post HTTP/1.1\r\nHost: localhost\r\n\r\n";
	client_send(c, req, strlen(req));
	client_wait(c, head_then_get);
	assert_false(timed_out);
	assert_int_equal(status_of(c), 200);
	assert_int_equal(content_length(c), 100000);
	assert_memory_equal(resp_text(c) + header_end(c), "HTTP/1.1 200", 12);
	client_close(c);
}

static void websocket_only_route_plain_get_is_426(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(http_exchange(&c, "GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n"), 426);
	assert_non_null(strcasestr(resp_text(c), "\r\nupgrade: websocket\r\n"));
	client_close(c);
}

static void post_body_reaches_handler_with_query(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	const char *req = "POST /post/x?a=1&b=2 HTTP/1.1\r\nHost: localhost\r\n"
			  "Content-Length: 11\r\n\r\nhello world";
	assert_int_equal(http_exchange(&c, req), 200);
	assert_string_equal(body_of(c), "POST /post/x?a=1&b=2 11:hello world");
	client_close(c);
}

static void post_body_over_route_limit_is_413(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	const char *req = "POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 33\r\n\r\n"
			  "123456789012345678901234567890123";
	assert_int_equal(http_exchange(&c, req), 413);
	client_close(c);
	req = "POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 12x\r\n\r\n";
	assert_int_equal(http_exchange(&c, req), 400);
	client_close(c);
}

static void rfc9110_15_5_12_chunked_body_is_411_and_close(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	const char *req = "POST /post HTTP/1.1\r\nHost: localhost\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n"
			  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	assert_int_equal(http_exchange(&c, req), 411);
	/* the chunks must not be taken for a next request */
	client_wait(c, NULL);
	assert_false(timed_out);
	assert_true(c->eof);
	assert_null(strstr(resp_text(c) + 1, "HTTP/1.1"));
	client_close(c);
}

static void rfc9110_10_1_1_expect_100_continue(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	const char *req = "POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n"
			  "Expect: 100-continue\r\n\r\n";
	c = client_open();
	client_send(c, req, strlen(req));
	client_send(c, "abcd", 4);
	client_wait(c, http_complete);
	assert_false(timed_out);
	assert_non_null(strstr(resp_text(c), "POST /post? 4:abcd"));
	client_close(c);
}

static void handler_error_is_500_without_its_body(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(http_exchange(&c, "GET /fail HTTP/1.1\r\nHost: localhost\r\n\r\n"), 500);
	assert_null(strstr(body_of(c), "half a page"));
	client_close(c);
}

static void large_body_is_written_whole(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(http_exchange(&c, "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"), 200);
	assert_int_equal(content_length(c), 100000);
	const char *b = body_of(c);
	assert_int_equal(strlen(b), 100000);
	assert_memory_equal(b + 99990, "0123456789", 10);
	client_close(c);
}

static int two_responses(struct client *c)
{
	if (buf_used(&c->in) == 0)
		return 0;
	const char *t = resp_text(c);
	const char *second = strstr(t + 1, "HTTP/1.1 ");
	if (!second)
		return 0;
	const char *e = strstr(second, "\r\n\r\n");
	return e && strstr(e, "GET /post?");
}

static void rfc9112_9_3_keepalive_serves_two_requests(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	c = client_open();
	const char *req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
			  "GET /post?k=v HTTP/1.1\r\nHost: localhost\r\n\r\n";
	client_send(c, req, strlen(req));
	client_wait(c, two_responses);
	assert_false(timed_out);
	assert_int_equal(status_of(c), 200);
	assert_non_null(strstr(resp_text(c), "GET /post?k=v 0:"));
	client_close(c);
}

static void oversized_headers_are_refused(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	struct buf req = { 0 };
	buf_append_str(&req, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
	for (int i = 0; i < HTTP_MAX_HEADER_BYTES + 100; i++)
		buf_append(&req, "a", 1);
	buf_append_str(&req, "\r\n\r\n");
	c = client_open();
	client_send(c, buf_head(&req), buf_used(&req));
	buf_free(&req);
	client_wait(c, http_complete);
	assert_false(timed_out);
	/* Either an error status or a hang-up; never the page. */
	assert_true(c->eof || status_of(c) >= 400);
	assert_null(strstr(resp_text(c), "<title>Parley</title>"));
	client_close(c);
}

static void garbage_is_dropped_and_server_still_answers(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	static const uint8_t junk[] = { 0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d,
					0x0a, 'G', 'E', 0x00, 'T', ' ', '/', 0x80, 0xfe, 0x0d, 0x0a,
					0x0d, 0x0a };
	c = client_open();
	client_send(c, junk, sizeof(junk));
	client_wait(c, NULL);
	assert_false(timed_out);
	assert_true(c->eof);
	assert_null(strstr(resp_text(c), "200 OK"));
	client_close(c);
	assert_int_equal(http_exchange(&c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), 200);
	client_close(c);
}

/* ------------------------------------------------------------------ */
/* WebSocket                                                           */

static void rfc6455_4_2_2_handshake_accept_key(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(ws_open(&c, "/echo", NULL), 101);
	/* RFC 6455 section 1.3's own example key and answer. */
	assert_non_null(strcasestr(resp_text(c),
				   "\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	assert_null(strcasestr(resp_text(c), "\r\nsec-websocket-protocol:"));
	client_close(c);
}

static void echo_text_and_binary_messages(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(ws_open(&c, "/echo", NULL), 101);
	static const uint8_t bin[] = { 0x00, 0xff, 0x80, 0x01, 0x00 };
	struct buf out = { 0 };
	ws_frame(&out, 1, 0x1, "hello, parley", 13);
	ws_frame(&out, 1, 0x2, bin, sizeof(bin));
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	frames_wanted = 2;
	client_wait(c, ws_frames_complete);
	assert_false(timed_out);
	struct frame f = ws_nth_frame(c, 0);
	assert_int_equal(f.opcode, 0x1);
	assert_int_equal(f.fin, 1);
	assert_int_equal(f.len, 13);
	assert_memory_equal(f.data, "hello, parley", 13);
	f = ws_nth_frame(c, 1);
	assert_int_equal(f.opcode, 0x2);
	assert_int_equal(f.len, sizeof(bin));
	assert_memory_equal(f.data, bin, sizeof(bin));
	client_close(c);
}

static void rfc6455_1_9_subprotocol_echo_is_selected(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(ws_open(&c, "/echo", "echo"), 101);
	assert_non_null(strcasestr(resp_text(c), "\r\nsec-websocket-protocol: echo\r\n"));
	struct buf out = { 0 };
	ws_frame(&out, 1, 0x1, "x", 1);
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	frames_wanted = 1;
	client_wait(c, ws_frames_complete);
	assert_false(timed_out);
	assert_memory_equal(ws_nth_frame(c, 0).data, "x", 1);
	client_close(c);
}

static void subprotocol_of_another_route_is_refused(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	/* /echo speaks "echo"; "push-test" belongs to /push. */
	int code = ws_open(&c, "/echo", "push-test");
	assert_int_not_equal(code, 101);
	client_close(c);
	/* /push requires its subprotocol. */
	code = ws_open(&c, "/push", NULL);
	assert_int_not_equal(code, 101);
	client_close(c);
}

static void upgrade_to_unknown_path_is_404(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(ws_open(&c, "/nope", NULL), 404);
	client_close(c);
	/* the status page is not a WebSocket either */
	assert_int_equal(ws_open(&c, "/", NULL), 404);
	client_close(c);
}

static void rfc6455_5_4_fragments_are_joined(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(ws_open(&c, "/echo", NULL), 101);
	struct buf out = { 0 };
	ws_frame(&out, 0, 0x1, "frag", 4);
	ws_frame(&out, 1, 0x9, "ping", 4);       /* control frames may interleave */
	ws_frame(&out, 0, 0x0, "men", 3);
	ws_frame(&out, 1, 0x0, "ted", 3);
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	frames_wanted = 2;
	client_wait(c, ws_frames_complete);
	assert_false(timed_out);
	int saw_pong = 0, saw_text = 0;
	for (int i = 0; i < 2; i++) {
		struct frame f = ws_nth_frame(c, i);
		if (f.opcode == 0xa) {
			assert_memory_equal(f.data, "ping", 4);
			saw_pong = 1;
		} else {
			assert_int_equal(f.opcode, 0x1);
			assert_int_equal(f.len, 10);
			assert_memory_equal(f.data, "fragmented", 10);
			saw_text = 1;
		}
	}
	assert_true(saw_pong && saw_text);
	client_close(c);
}

static void large_binary_message_round_trip(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(ws_open(&c, "/echo", NULL), 101);
	size_t n = 200000;
	uint8_t *msg = pl_malloc(n);
	for (size_t i = 0; i < n; i++)
		msg[i] = (uint8_t)(i * 7);
	struct buf out = { 0 };
	ws_frame(&out, 1, 0x2, msg, n);
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	frames_wanted = 1;
	client_wait(c, ws_frames_complete);
	assert_false(timed_out);
	struct frame f = ws_nth_frame(c, 0);
	assert_int_equal(f.opcode, 0x2);
	assert_int_equal(f.len, n);
	assert_memory_equal(f.data, msg, n);
	free(msg);
	client_close(c);
}

static void rfc6455_7_4_1_message_over_limit_closes_1009(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(ws_open(&c, "/small", NULL), 101);
	struct buf out = { 0 };
	ws_frame(&out, 1, 0x1, "sixteen bytes ok", 16);
	ws_frame(&out, 0, 0x1, "0123456789", 10);
	ws_frame(&out, 1, 0x0, "0123456789", 10);
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	assert_int_equal(ws_closing_handshake(c), 1009);
	/* what was queued before the close still went first */
	struct frame f = ws_nth_frame(c, 0);
	assert_int_equal(f.opcode, 0x1);
	assert_memory_equal(f.data, "sixteen bytes ok", 16);
	assert_int_equal(ws_nth_frame(c, 1).opcode, 0x8);
	client_close(c);

	/* a single frame over the limit, too */
	assert_int_equal(ws_open(&c, "/small", NULL), 101);
	ws_frame(&out, 1, 0x2, "seventeen bytes!!", 17);
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	assert_int_equal(ws_closing_handshake(c), 1009);
	assert_int_equal(ws_nth_frame(c, 0).opcode, 0x8);
	client_close(c);
}

static void rfc6455_8_1_invalid_utf8_text_is_refused(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	assert_int_equal(ws_open(&c, "/echo", NULL), 101);
	struct buf out = { 0 };
	ws_frame(&out, 1, 0x1, "\xc3\x28", 2);
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	assert_int_equal(ws_closing_handshake(c), 1007);
	assert_int_equal(ws_nth_frame(c, 0).opcode, 0x8);    /* never echoed */
	client_close(c);
}

static void push_once(struct ev_loop *l, struct ev_timer *t)
{
	PL_UNUSED(l);
	PL_UNUSED(t);
	if (pushed_ws)
		http_ws_send(pushed_ws, "pushed", 6, 0);
}

static void send_from_outside_a_callback_is_delivered(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	pushed_ws = NULL;
	assert_int_equal(ws_open(&c, "/push", "push-test"), 101);
	assert_non_null(pushed_ws);
	assert_int_equal(http_ws_shard(pushed_ws), 0);
	assert_string_equal(http_ws_peer(pushed_ws), "127.0.0.1");
	static struct ev_timer t;     /* static: see deadline */
	ev_timer_init(&t, push_once, NULL);
	ev_timer_start(loop, &t, 20);
	frames_wanted = 1;
	client_wait(c, ws_frames_complete);
	ev_timer_stop(loop, &t);
	assert_false(timed_out);
	struct frame f = ws_nth_frame(c, 0);
	assert_int_equal(f.opcode, 0x1);
	assert_memory_equal(f.data, "pushed", 6);

	/* The server closes: a close frame with the code, then on_close. */
	int closed_before = push_closed;
	http_ws_close(pushed_ws, 1001);
	assert_int_equal(http_ws_send(pushed_ws, "late", 4, 0), PL_ERR);
	assert_int_equal(ws_closing_handshake(c), 1001);
	client_close(c);
	assert_int_equal(push_closed, closed_before + 1);
	assert_null(pushed_ws);
}

static void client_close_frame_calls_on_close(void **state)
{
	PL_UNUSED(state);
	struct client *c;
	pushed_ws = NULL;
	assert_int_equal(ws_open(&c, "/push", "push-test"), 101);
	int closed_before = push_closed;
	struct buf out = { 0 };
	static const uint8_t code[] = { 0x03, 0xe8 };    /* 1000 */
	ws_frame(&out, 1, 0x8, code, sizeof(code));
	client_send(c, buf_head(&out), buf_used(&out));
	buf_free(&out);
	client_wait(c, NULL);
	assert_false(timed_out);
	assert_true(c->eof);
	struct frame f = ws_nth_frame(c, 0);
	assert_int_equal(f.opcode, 0x8);      /* the close is echoed */
	client_close(c);
	assert_int_equal(push_closed, closed_before + 1);
}

/* ------------------------------------------------------------------ */
/* routes and the listen module                                        */

static void route_add_rejects_bad_and_taken_prefixes(void **state)
{
	PL_UNUSED(state);
	static const struct http_ws_ops http_named = { .protocol = "http" };
	static const struct http_route ws_http = { .name = "bad", .ws = &http_named };
	static const struct http_route empty = { .name = "empty" };
	assert_int_equal(http_route_add("nope", &post_route), PL_ERR);
	assert_int_equal(http_route_add("", &post_route), PL_ERR);
	assert_int_equal(http_route_add("/a b", &post_route), PL_ERR);
	assert_int_equal(http_route_add("/a?b", &post_route), PL_ERR);
	assert_int_equal(http_route_add("//x", &post_route), PL_ERR);
	assert_int_equal(http_route_add("/echo", &post_route), PL_ERR);
	assert_int_equal(http_route_add("/echo/", &post_route), PL_ERR);
	assert_int_equal(http_route_add("/", &post_route), PL_ERR);
	assert_int_equal(http_route_add("/fresh", &empty), PL_ERR);
	assert_int_equal(http_route_add("/fresh", &ws_http), PL_ERR);
	assert_int_equal(http_route_add("/fresh", NULL), PL_ERR);
}

static void listen_share_second_shard_binds_same_port(void **state)
{
	PL_UNUSED(state);
	struct shard sh2 = { .id = 1 };
	sh2.loop = ev_loop_new();
	assert_non_null(sh2.loop);
	assert_int_equal(http_listen_module.start(&lc, &sh2), PL_OK);
	assert_non_null(sh2.subsys[SHARD_SLOT_HTTP]);
	http_listen_module.stop(&lc, &sh2);
	assert_null(sh2.subsys[SHARD_SLOT_HTTP]);
	ev_loop_free(sh2.loop);
	/* the first shard still serves */
	struct client *c;
	assert_int_equal(http_exchange(&c, "GET / HTTP/1.1\r\nHost: l\r\n\r\n"), 200);
	client_close(c);
}

static void port_in_use_fails_start_cleanly(void **state)
{
	PL_UNUSED(state);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);    /* no SO_REUSEPORT: nobody may share */
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	struct listen_cfg taken = lc;
	taken.port = ntohs(a.sin_port);
	struct shard sh2 = { .id = 1 };
	sh2.loop = ev_loop_new();
	assert_int_equal(http_listen_module.start(&taken, &sh2), PL_ERR);
	assert_null(sh2.subsys[SHARD_SLOT_HTTP]);
	http_listen_module.stop(&taken, &sh2);     /* harmless */
	ev_loop_free(sh2.loop);
	close(fd);
}

static void stop_releases_the_port(void **state)
{
	PL_UNUSED(state);
	struct shard sh2 = { .id = 1 };
	struct listen_cfg other = lc;
	other.port = free_port();
	sh2.loop = ev_loop_new();
	assert_int_equal(http_listen_module.start(&other, &sh2), PL_OK);
	/* a connection open at stop time is closed with the context */
	struct client *c = client_open_port(other.port);
	http_listen_module.stop(&other, &sh2);
	assert_null(sh2.subsys[SHARD_SLOT_HTTP]);
	ev_loop_free(sh2.loop);
	client_close(c);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)other.port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	close(fd);
}

static void rfc6455_7_4_1_stop_says_going_away_1001(void **state)
{
	PL_UNUSED(state);
	struct shard sh2 = { .id = 1 };
	struct listen_cfg other = lc;
	other.port = free_port();
	sh2.loop = ev_loop_new();
	assert_int_equal(http_listen_module.start(&other, &sh2), PL_OK);
	/* the handshake needs sh2's loop to run: drive it by hand */
	struct client *c = client_open_port(other.port);
	struct buf req = { 0 };
	ws_upgrade_request(&req, "/echo", NULL);
	client_send(c, buf_head(&req), buf_used(&req));
	buf_free(&req);
	ev_io_stop(loop, &c->io);
	struct ev_timer serve_for;
	ev_timer_init(&serve_for, deadline_cb, NULL);
	ev_timer_start(sh2.loop, &serve_for, 300);
	ev_loop_run(sh2.loop);      /* serves the upgrade meanwhile */
	http_listen_module.stop(&other, &sh2);    /* waits up to 0.5 s for us */
	ev_loop_free(sh2.loop);
	ev_io_start(loop, &c->io, EV_READ);
	client_wait(c, NULL);
	assert_false(timed_out);
	assert_int_equal(status_of(c), 101);
	struct frame f = ws_nth_frame(c, 0);
	assert_int_equal(f.opcode, 0x8);
	assert_int_equal(f.data[0] << 8 | f.data[1], 1001);
	client_close(c);
}

/* Every test closes what a failed assertion left open. */
#define T(name) cmocka_unit_test_teardown(name, close_leftover_clients)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(status_page_is_html_with_version_uptime_shards),
		T(status_page_late_command_reply_is_503_then_freed),
		T(rfc9110_15_5_5_unknown_path_is_404),
		T(rfc9110_15_5_6_wrong_method_is_405_with_allow),
		T(rfc9110_9_3_2_head_has_headers_only),
		T(websocket_only_route_plain_get_is_426),
		T(post_body_reaches_handler_with_query),
		T(post_body_over_route_limit_is_413),
		T(rfc9110_15_5_12_chunked_body_is_411_and_close),
		T(rfc9110_10_1_1_expect_100_continue),
		T(handler_error_is_500_without_its_body),
		T(large_body_is_written_whole),
		T(rfc9112_9_3_keepalive_serves_two_requests),
		T(oversized_headers_are_refused),
		T(garbage_is_dropped_and_server_still_answers),
		T(rfc6455_4_2_2_handshake_accept_key),
		T(echo_text_and_binary_messages),
		T(rfc6455_1_9_subprotocol_echo_is_selected),
		T(subprotocol_of_another_route_is_refused),
		T(upgrade_to_unknown_path_is_404),
		T(rfc6455_5_4_fragments_are_joined),
		T(large_binary_message_round_trip),
		T(rfc6455_7_4_1_message_over_limit_closes_1009),
		T(rfc6455_8_1_invalid_utf8_text_is_refused),
		T(send_from_outside_a_callback_is_delivered),
		T(client_close_frame_calls_on_close),
		T(route_add_rejects_bad_and_taken_prefixes),
		T(listen_share_second_shard_binds_same_port),
		T(port_in_use_fails_start_cleanly),
		T(stop_releases_the_port),
		T(rfc6455_7_4_1_stop_says_going_away_1001),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
