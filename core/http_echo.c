/*
 * http_echo.c - the WebSocket echo endpoint at /echo.
 *
 * The walking skeleton of every WebSocket service to come (XMPP at /ws, SIP
 * over WebSocket): every text or binary message goes back unchanged. It
 * proves the listener, the upgrade, framing both ways and the shard's
 * reactor driving libwebsockets; it keeps no state of its own.
 */
#include "core/http.h"
#include "core/log.h"
#include "core/pl.h"

static void echo_message(struct http_ws *ws, const uint8_t *data, size_t len, int binary)
{
	if (http_ws_send(ws, data, len, binary) != PL_OK)
		http_ws_close(ws, 1011);
}

static const struct http_ws_ops echo_ws = {
	.protocol = "echo",
	.protocol_required = 0,
	.on_message = echo_message,
};

static const struct http_route echo_route = {
	.name = "echo",
	.ws = &echo_ws,
};

int http_echo_register(void)
{
	return http_route_add("/echo", &echo_route);
}
