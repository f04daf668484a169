/*
 * status.c - the status page at "/": what `parleyctl status` says, as HTML.
 *
 * The page runs the registry's `status` command with a reply callback of its
 * own, exactly as the control socket does, so the page and parleyctl cannot
 * disagree. The command's line carries the version, shard and host counts
 * and the uptime; the host names come from the configuration, which no
 * command lists yet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cmd.h"
#include "core/http.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"
#include "webadmin/webadmin.h"

/* A command may answer after its handler returned (a storage job): then
 * the page is already gone and the late reply frees the call itself. */
struct status_call {
	struct cmd_req req;
	int done;
	int abandoned;
	int status;
	char *text;
};

static void status_reply(struct cmd_req *req, int status, const char *text)
{
	struct status_call *c = PL_CONTAINER_OF(req, struct status_call, req);
	if (c->abandoned) {
		free(c);
		return;
	}
	c->done = 1;
	c->status = status;
	c->text = pl_strdup(text ? text : "");
}

static void html_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': buf_append_str(b, "&lt;"); break;
		case '>': buf_append_str(b, "&gt;"); break;
		case '&': buf_append_str(b, "&amp;"); break;
		case '"': buf_append_str(b, "&quot;"); break;
		case '\'': buf_append_str(b, "&#39;"); break;
		default: buf_append(b, s, 1);
		}
	}
}

/* "... uptime 3723 s" -> "1 h 2 min 3 s"; 0 if the line has no uptime. */
static int uptime_from_status(const char *text, char *out, size_t outlen)
{
	const char *u = strstr(text, "uptime ");
	unsigned long long secs;
	if (!u || sscanf(u, "uptime %llu s", &secs) != 1)
		return 0;
	unsigned long long d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60, s = secs % 60;
	if (d)
		snprintf(out, outlen, "%llu d %llu h %llu min %llu s", d, h, m, s);
	else if (h)
		snprintf(out, outlen, "%llu h %llu min %llu s", h, m, s);
	else if (m)
		snprintf(out, outlen, "%llu min %llu s", m, s);
	else
		snprintf(out, outlen, "%llu s", s);
	return 1;
}

static void row(struct buf *b, const char *name, const char *value)
{
	buf_printf(b, "<tr><th>%s</th><td>", name);
	html_escaped(b, value);
	buf_append_str(b, "</td></tr>\n");
}

static void page(struct buf *b, int cmd_status, const char *text)
{
	buf_append_str(b,
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<title>Parley</title>\n<style>\n"
		"body{font-family:sans-serif;margin:2em auto;max-width:42em;color:#222}\n"
		"th{text-align:left;padding-right:1.5em;vertical-align:top}\n"
		"td,th{padding-bottom:.3em}\npre{background:#f4f4f4;padding:.6em}\n"
		"</style>\n</head>\n<body>\n<h1>Parley</h1>\n<table>\n");
	row(b, "Version", PACKAGE_VERSION);
	char up[64];
	if (cmd_status == CMD_OK && uptime_from_status(text, up, sizeof(up)))
		row(b, "Uptime", up);
	char n[16];
	snprintf(n, sizeof(n), "%d", shards_count());
	row(b, "Shards", n);
	buf_append_str(b, "<tr><th>Hosts</th><td>");
	for (size_t i = 0; cfg && i < cfg->nhosts; i++) {
		if (i)
			buf_append_str(b, "<br>");
		html_escaped(b, cfg->hosts[i]);
	}
	buf_append_str(b, "</td></tr>\n</table>\n<h2>Status</h2>\n<pre>");
	html_escaped(b, text);
	buf_append_str(b, "</pre>\n</body>\n</html>\n");
}

static int status_page(const struct http_request *req, struct http_response *resp)
{
	const struct cmd_def *def = cmd_find("status");
	if (!def) {
		resp->status = 503;
		buf_append_str(&resp->body, "503 the status command is not registered\n");
		return PL_OK;
	}
	struct status_call *c = pl_calloc(1, sizeof(*c));
	c->req.def = def;
	c->req.argv = NULL;
	c->req.argc = 0;
	c->req.shard = req->shard;
	c->req.reply = status_reply;
	c->req.transport = c;
	cmd_dispatch(&c->req);
	if (!c->done) {
		/* Pages answer synchronously for now: give up on this one. */
		c->abandoned = 1;
		resp->status = 503;
		buf_append_str(&resp->body, "503 status is not available right now\n");
		return PL_OK;
	}
	resp->status = c->status == CMD_OK ? 200 : 500;
	resp->content_type = "text/html; charset=utf-8";
	page(&resp->body, c->status, c->text);
	free(c->text);
	free(c);
	return PL_OK;
}

static const struct http_route status_route = {
	.name = "status",
	.methods = HTTP_GET,
	.handler = status_page,
};

void webadmin_register(void)
{
	if (http_route_add("/", &status_route) != PL_OK)
		log_error("webadmin: the status page cannot be registered at /");
}
