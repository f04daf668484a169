/*
 * cmd.c - the admin command registry and argument checking.
 *
 * Commands are registered on the main thread before the shards start and
 * the table is read-only afterwards, so lookups need no lock. The table is
 * kept sorted by name: help lists it as is and lookups are a binary search.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/cmd.h"
#include "core/log.h"
#include "core/pl.h"

#define CMD_MAX 128

static const struct cmd_def *cmd_table[CMD_MAX];
static size_t cmd_count;

static size_t cmd_search(const char *name, bool *found)
{
	size_t lo = 0, hi = cmd_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(cmd_table[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

void cmd_register(const struct cmd_def *def)
{
	bool found;
	size_t at = cmd_search(def->name, &found);

	if (found) {
		/* a later registration wins, so a module can override a built-in */
		log_warning("cmd: command '%s' registered twice; the last one wins", def->name);
		cmd_table[at] = def;
		return;
	}
	if (cmd_count == CMD_MAX) {
		log_error("cmd: too many commands, '%s' not registered", def->name);
		return;
	}
	memmove(&cmd_table[at + 1], &cmd_table[at], (cmd_count - at) * sizeof(cmd_table[0]));
	cmd_table[at] = def;
	cmd_count++;
}

const struct cmd_def *cmd_find(const char *name)
{
	bool found;
	size_t at = cmd_search(name, &found);

	return found ? cmd_table[at] : NULL;
}

size_t cmd_all(const struct cmd_def **out, size_t max)
{
	size_t n = cmd_count < max ? cmd_count : max;

	memcpy(out, cmd_table, n * sizeof(out[0]));
	return n;
}

static bool cmd_is_int(const char *s)
{
	char *end;
	long v;

	if (!*s)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	PL_UNUSED(v);
	return errno == 0 && *end == '\0' && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'));
}

/* Why the value v is unacceptable for a, or NULL. */
static const char *cmd_check_arg(const struct cmd_arg *a, const char *v, char *why, size_t n)
{
	switch (a->type) {
	case CMD_ARG_STRING:
		return NULL;
	case CMD_ARG_HOST:
		if (!*v)
			break;
		if (cfg && !cfg_is_local_host(v)) {
			snprintf(why, n, "host '%s' is not served here", v);
			return why;
		}
		return NULL;
	case CMD_ARG_USER:
	case CMD_ARG_PASSWORD:
		if (*v)
			return NULL;
		break;
	case CMD_ARG_INT:
		if (cmd_is_int(v))
			return NULL;
		snprintf(why, n, "%s must be a number, not '%s'", a->name, v);
		return why;
	}
	snprintf(why, n, "%s must not be empty", a->name);
	return why;
}

static void cmd_usage(struct cmd_req *req, const char *why)
{
	const struct cmd_def *d = req->def;
	struct buf b = {0};

	if (why)
		buf_printf(&b, "%s: %s\n", d->name, why);
	buf_printf(&b, "usage: %s", d->name);
	for (size_t i = 0; i < d->nargs; i++)
		buf_printf(&b, " %s", d->args[i].name);
	req->reply(req, CMD_USAGE, buf_cstr(&b));
	buf_free(&b);
}

void cmd_dispatch(struct cmd_req *req)
{
	const struct cmd_def *d = req->def;
	char why[256];

	if (req->argc != d->nargs) {
		snprintf(why, sizeof(why), "expects %zu argument%s, got %zu", d->nargs,
			 d->nargs == 1 ? "" : "s", req->argc);
		cmd_usage(req, why);
		return;
	}
	for (size_t i = 0; i < d->nargs; i++) {
		const char *bad = cmd_check_arg(&d->args[i], req->argv[i], why, sizeof(why));

		if (bad) {
			cmd_usage(req, bad);
			return;
		}
	}
	d->handler(req);
}

void cmd_reply_ok(struct cmd_req *req, const char *text)
{
	req->reply(req, CMD_OK, text ? text : "");
}

void cmd_reply_error(struct cmd_req *req, int status, const char *fmt, ...)
{
	struct buf b = {0};
	char small[512], *w;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n < sizeof(small)) {
		req->reply(req, status, n < 0 ? "" : small);
		return;
	}
	w = (char *)buf_reserve(&b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(w, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_commit(&b, (size_t)n);
	req->reply(req, status, buf_cstr(&b));
	buf_free(&b);
}

void cmd_reply_list(struct cmd_req *req, char *const *items, size_t n)
{
	struct buf b = {0};

	for (size_t i = 0; i < n; i++) {
		buf_append_str(&b, items[i]);
		buf_append(&b, "\n", 1);
	}
	req->reply(req, CMD_OK, n ? buf_cstr(&b) : "");
	buf_free(&b);
}
