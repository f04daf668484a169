/*
 * ctl.c - the control socket: parleyctl's requests into the command registry.
 *
 * Everything here runs on shard 0's reactor. A client connects, sends its
 * netstrings, and waits; the command may answer at once or after a storage
 * job. A client that hangs up meanwhile is forgotten but its record stays
 * until the pending reply arrives, since the handler still holds the request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#include "core/buf.h"
#include "core/cfg.h"
#include "core/cmd.h"
#include "core/ctl.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/pl.h"
#include "core/shard.h"
#include "core/users.h"

#define CTL_MAX_CLIENTS 64
#define CTL_READ_TIMEOUT_MS 10000
#define CTL_WRITE_TIMEOUT_MS 30000

enum ctl_state { CTL_READING, CTL_RUNNING, CTL_WRITING };

struct ctl_part {
	size_t off, len;
};

struct ctl_client {
	struct ev_io io;
	struct ev_timer timer;
	struct buf in, out;
	enum ctl_state state;
	bool gone;                 /* socket closed while the command runs */
	size_t scan;               /* parsed up to here */
	struct ctl_part parts[CTL_MAX_ARGS + 1];
	size_t nparts;
	char *argv[CTL_MAX_ARGS + 1];
	struct cmd_req req;
	struct ctl_client *prev, *next;
};

static struct {
	struct ev_io io;
	struct ev_loop *loop;
	char *path;
	ino_t ino;
	bool open;
	struct ctl_client *clients;
	size_t nclients;
	void (*stop_handler)(void);
	uint64_t started_ms;
} ctl = { .io = { .fd = -1 } };

static void ctl_client_free(void *arg)
{
	struct ctl_client *c = arg;

	for (size_t i = 0; i < c->nparts; i++)
		free(c->argv[i]);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* Close the socket; the record goes now, or when the pending reply comes. */
static void ctl_client_close(struct ctl_client *c)
{
	if (c->io.fd >= 0) {
		ev_io_stop(ctl.loop, &c->io);
		ev_timer_stop(ctl.loop, &c->timer);
		close(c->io.fd);
		c->io.fd = -1;
		if (c->prev)
			c->prev->next = c->next;
		else
			ctl.clients = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->prev = c->next = NULL;
		ctl.nclients--;
	}
	if (c->state == CTL_RUNNING) {
		c->gone = true;
		return;
	}
	ev_defer(ctl.loop, ctl_client_free, c);
}

static void ctl_flush(struct ctl_client *c)
{
	while (buf_used(&c->out) > 0) {
		ssize_t n = send(c->io.fd, buf_head(&c->out), buf_used(&c->out), MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ev_io_set(ctl.loop, &c->io, EV_WRITE);
			return;
		}
		if (n <= 0) {
			ctl_client_close(c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	ctl_client_close(c);
}

static void ctl_reply(struct cmd_req *req, int status, const char *text)
{
	struct ctl_client *c = req->transport;
	size_t tl = text ? strlen(text) : 0;

	if (c->state != CTL_RUNNING) {
		log_error("ctl: command '%s' answered twice", req->def ? req->def->name : "?");
		return;
	}
	c->state = CTL_WRITING;
	if (c->gone) {
		ev_defer(ctl.loop, ctl_client_free, c);
		return;
	}
	buf_printf(&c->out, "%d\n", status);
	if (tl) {
		buf_append(&c->out, text, tl);
		if (text[tl - 1] != '\n')
			buf_append(&c->out, "\n", 1);
	}
	ev_timer_start(ctl.loop, &c->timer, CTL_WRITE_TIMEOUT_MS);
	ctl_flush(c);
}

/* A transport-level refusal, before any command runs. */
static void ctl_refuse(struct ctl_client *c, int status, const char *text)
{
	c->state = CTL_RUNNING;
	c->req.transport = c;
	c->req.def = NULL;
	ctl_reply(&c->req, status, text);
}

/* 1: a whole request, 0: need more bytes, -1: not our protocol. */
static int ctl_parse(struct ctl_client *c)
{
	const char *p = (const char *)c->in.data;
	size_t n = c->in.len;

	while (c->scan < n) {
		size_t i = c->scan, len = 0, digits = 0;

		for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, digits++) {
			len = len * 10 + (size_t)(p[i] - '0');
			if (len > CTL_MAX_REQUEST)
				return -1;
		}
		if (i == n)
			return 0;
		if (digits == 0 || p[i] != ':' || (digits > 1 && p[c->scan] == '0'))
			return -1;
		i++;
		if (n - i < len + 1)
			return 0;
		if (p[i + len] != ',' || memchr(p + i, '\0', len))
			return -1;
		/* the end; bytes after it are never looked at, whether they
		 * came in the same read or not, so how the stream was cut
		 * cannot change the verdict */
		if (len == 0)
			return c->nparts > 0 ? 1 : -1;
		if (c->nparts == PL_ARRAY_LEN(c->parts))
			return -1;
		c->parts[c->nparts].off = i;
		c->parts[c->nparts].len = len;
		c->nparts++;
		c->scan = i + len + 1;
	}
	return 0;
}

static void ctl_run(struct ctl_client *c)
{
	const char *p = (const char *)c->in.data;
	const struct cmd_def *def;
	struct shard *self = shard_self();

	for (size_t i = 0; i < c->nparts; i++)
		c->argv[i] = pl_strndup(p + c->parts[i].off, c->parts[i].len);
	buf_free(&c->in);
	ev_timer_stop(ctl.loop, &c->timer);
	/* idle: from now on only a hang-up wakes us */
	ev_io_set(ctl.loop, &c->io, 0);

	def = cmd_find(c->argv[0]);
	if (!def) {
		struct buf b = {0};

		buf_printf(&b, "unknown command '%s' (parleyctl help lists them)", c->argv[0]);
		ctl_refuse(c, CMD_USAGE, buf_cstr(&b));
		buf_free(&b);
		return;
	}
	c->state = CTL_RUNNING;
	c->req.def = def;
	c->req.argv = c->argv + 1;
	c->req.argc = c->nparts - 1;
	c->req.shard = self ? self->id : 0;
	c->req.reply = ctl_reply;
	c->req.transport = c;
	log_info("ctl: %s", def->name);
	cmd_dispatch(&c->req);
}

static void ctl_read(struct ctl_client *c)
{
	for (;;) {
		uint8_t *w = buf_reserve(&c->in, 4096);
		ssize_t n = recv(c->io.fd, w, 4096, 0);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* gone before finishing its request: nothing to answer */
			ctl_client_close(c);
			return;
		}
		buf_commit(&c->in, (size_t)n);
		rc = ctl_parse(c);
		if (rc == 0 && c->in.len > CTL_MAX_REQUEST)
			rc = -1;
		if (rc < 0) {
			ctl_refuse(c, CMD_USAGE, "malformed request (expected netstrings"
				   " ending with 0:, within 64 KiB and 32 arguments)");
			return;
		}
		if (rc == 1) {
			ctl_run(c);
			return;
		}
	}
}

static void ctl_client_io(struct ev_loop *loop, struct ev_io *io, int events)
{
	struct ctl_client *c = io->data;

	PL_UNUSED(loop);
	switch (c->state) {
	case CTL_READING:
		ctl_read(c);
		break;
	case CTL_RUNNING:
		/* the only event an idle watcher gets is a hang-up */
		ctl_client_close(c);
		break;
	case CTL_WRITING:
		if (events & EV_WRITE)
			ctl_flush(c);
		else
			ctl_client_close(c);
		break;
	}
}

static void ctl_client_timeout(struct ev_loop *loop, struct ev_timer *t)
{
	struct ctl_client *c = t->data;

	PL_UNUSED(loop);
	log_info("ctl: client too slow (%s), closed",
		 c->state == CTL_READING ? "request" : "reply");
	ctl_client_close(c);
}

static void ctl_accept(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(events);
	for (int budget = 16; budget > 0; budget--) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warning("ctl: accept: %s", strerror(errno));
			return;
		}
		if (ctl.nclients >= CTL_MAX_CLIENTS) {
			log_warning("ctl: %d clients already, connection refused", CTL_MAX_CLIENTS);
			close(fd);
			continue;
		}
		c = pl_calloc(1, sizeof(*c));
		ev_io_init(&c->io, fd, ctl_client_io, c);
		ev_timer_init(&c->timer, ctl_client_timeout, c);
		if (ev_io_start(loop, &c->io, EV_READ) != PL_OK) {
			close(fd);
			free(c);
			continue;
		}
		ev_timer_start(loop, &c->timer, CTL_READ_TIMEOUT_MS);
		c->next = ctl.clients;
		if (ctl.clients)
			ctl.clients->prev = c;
		ctl.clients = c;
		ctl.nclients++;
	}
}

static int ctl_fail(char *err, size_t errlen, int fd, const char *fmt, const char *path)
{
	int e = errno;

	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, fmt, path, strerror(e));
	return PL_ERR;
}

/* Is a server answering on path? (A stale file just refuses.) */
static bool ctl_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
	       errno == EAGAIN;     /* backlog full: very much alive */
	close(fd);
	return live;
}

int ctl_open(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct shard *self = shard_self();
	struct stat sb;
	mode_t old;
	int fd;

	if (ctl.open) {
		snprintf(err, errlen, "control socket already open");
		return PL_ERR;
	}
	if (!self) {
		snprintf(err, errlen, "control socket: must be opened on a shard thread");
		return PL_ERR;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path %s is too long (max %zu bytes)", path,
			 sizeof(sa.sun_path) - 1);
		return PL_ERR;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			snprintf(err, errlen, "control socket %s exists and is not a socket", path);
			return PL_ERR;
		}
		if (ctl_live(&sa)) {
			snprintf(err, errlen, "control socket %s is in use", path);
			return PL_ERR;
		}
		if (unlink(path) < 0 && errno != ENOENT)
			return ctl_fail(err, errlen, -1, "cannot remove stale control socket %s: %s",
					path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ctl_fail(err, errlen, -1, "control socket %s: %s", path);
	/* the socket is created with the umask's mode: make it owner-only
	 * from the first instant, not after a chmod race */
	old = umask(077);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		return ctl_fail(err, errlen, fd, "cannot bind control socket %s: %s", path);
	}
	umask(old);
	if (chmod(path, 0600) < 0 || listen(fd, 16) < 0 || lstat(path, &sb) < 0) {
		unlink(path);
		return ctl_fail(err, errlen, fd, "control socket %s: %s", path);
	}
	ctl.loop = self->loop;
	ev_io_init(&ctl.io, fd, ctl_accept, NULL);
	if (ev_io_start(ctl.loop, &ctl.io, EV_READ) != PL_OK) {
		unlink(path);
		close(fd);
		snprintf(err, errlen, "control socket %s: cannot watch it", path);
		return PL_ERR;
	}
	ctl.path = pl_strdup(path);
	ctl.ino = sb.st_ino;
	ctl.open = true;
	log_info("ctl: listening on %s", path);
	return PL_OK;
}

void ctl_close(void)
{
	struct stat sb;

	if (!ctl.open)
		return;
	ev_io_stop(ctl.loop, &ctl.io);
	close(ctl.io.fd);
	ctl.io.fd = -1;
	while (ctl.clients)
		ctl_client_close(ctl.clients);
	/* remove the file only if it is still ours */
	if (lstat(ctl.path, &sb) == 0 && sb.st_ino == ctl.ino)
		unlink(ctl.path);
	free(ctl.path);
	ctl.path = NULL;
	ctl.open = false;
}

void ctl_set_stop_handler(void (*fn)(void))
{
	ctl.stop_handler = fn;
}

/* ---- built-in commands ---- */

static void cmd_status(struct cmd_req *req)
{
	char text[256];
	uint64_t up = (pl_now_ms() - ctl.started_ms) / 1000;

	snprintf(text, sizeof(text), "parleyd %s running: %d shards, %zu hosts, uptime %llu s",
		 PACKAGE_VERSION, shards_count(), cfg ? cfg->nhosts : (size_t)0,
		 (unsigned long long)up);
	cmd_reply_ok(req, text);
}

static void cmd_help(struct cmd_req *req)
{
	const struct cmd_def *all[128];
	size_t n = cmd_all(all, PL_ARRAY_LEN(all));
	struct buf b = {0};

	for (size_t i = 0; i < n; i++) {
		buf_append_str(&b, all[i]->name);
		for (size_t k = 0; k < all[i]->nargs; k++)
			buf_printf(&b, " %s", all[i]->args[k].name);
		buf_printf(&b, " - %s\n", all[i]->desc ? all[i]->desc : "");
	}
	cmd_reply_ok(req, buf_cstr(&b));
	buf_free(&b);
}

/* The users_* callbacks: one per command, so each says what happened in
 * its own words. argv is the request's, still alive until we reply. */
static void ctl_user_error(struct cmd_req *req, int status)
{
	const char *user = req->argv[0], *host = req->argv[1];

	switch (status) {
	case USERS_EXISTS:
		cmd_reply_error(req, CMD_ERROR, "user %s@%s already exists", user, host);
		break;
	case USERS_NOT_FOUND:
		cmd_reply_error(req, CMD_ERROR, "user %s@%s does not exist", user, host);
		break;
	case USERS_FAILED:
		cmd_reply_error(req, CMD_ERROR, "storage error (see the server log)");
		break;
	default:
		cmd_reply_error(req, CMD_ERROR, "%s", users_status_str(status));
		break;
	}
}

static void ctl_registered(void *arg, int status)
{
	struct cmd_req *req = arg;

	if (status != USERS_OK) {
		ctl_user_error(req, status);
		return;
	}
	cmd_reply_error(req, CMD_OK, "user %s@%s registered", req->argv[0], req->argv[1]);
}

static void ctl_unregistered(void *arg, int status)
{
	struct cmd_req *req = arg;

	if (status != USERS_OK) {
		ctl_user_error(req, status);
		return;
	}
	cmd_reply_error(req, CMD_OK, "user %s@%s unregistered", req->argv[0], req->argv[1]);
}

static void ctl_password_changed(void *arg, int status)
{
	struct cmd_req *req = arg;

	if (status != USERS_OK) {
		ctl_user_error(req, status);
		return;
	}
	cmd_reply_error(req, CMD_OK, "password of %s@%s changed", req->argv[0], req->argv[1]);
}

static void ctl_listed(void *arg, int status, char **names, size_t n)
{
	struct cmd_req *req = arg;

	if (status != USERS_OK) {
		cmd_reply_error(req, CMD_ERROR, "%s", users_status_str(status));
		return;
	}
	cmd_reply_list(req, names, n);
}

static void cmd_register_user(struct cmd_req *req)
{
	users_register(req->argv[1], req->argv[0], req->argv[2], ctl_registered, req);
}

static void cmd_unregister_user(struct cmd_req *req)
{
	users_unregister(req->argv[1], req->argv[0], ctl_unregistered, req);
}

static void cmd_change_password(struct cmd_req *req)
{
	users_set_password(req->argv[1], req->argv[0], req->argv[2], ctl_password_changed, req);
}

static void cmd_registered_users(struct cmd_req *req)
{
	users_list(req->argv[0], ctl_listed, req);
}

static void ctl_call_stop(void *arg)
{
	PL_UNUSED(arg);
	if (ctl.stop_handler)
		ctl.stop_handler();
}

static void cmd_stop(struct cmd_req *req)
{
	struct shard *self = shard_self();

	cmd_reply_ok(req, "stopping");
	/* after this batch: the reply is on its way (or queued) by then */
	if (self)
		ev_defer(self->loop, ctl_call_stop, NULL);
	else
		ctl_call_stop(NULL);
}

static const struct cmd_arg args_user_host_password[] = {
	{ "USER", CMD_ARG_USER }, { "HOST", CMD_ARG_HOST }, { "PASSWORD", CMD_ARG_PASSWORD },
};
static const struct cmd_arg args_user_host[] = {
	{ "USER", CMD_ARG_USER }, { "HOST", CMD_ARG_HOST },
};
static const struct cmd_arg args_host[] = {
	{ "HOST", CMD_ARG_HOST },
};

static const struct cmd_def builtin_commands[] = {
	{ "status", "show that the server runs, with its shards, hosts and uptime",
	  NULL, 0, cmd_status },
	{ "help", "list the commands", NULL, 0, cmd_help },
	{ "register", "create an account", args_user_host_password, 3, cmd_register_user },
	{ "unregister", "delete an account", args_user_host, 2, cmd_unregister_user },
	{ "change_password", "set an account's password", args_user_host_password, 3,
	  cmd_change_password },
	{ "registered_users", "list the accounts of a host, sorted", args_host, 1,
	  cmd_registered_users },
	{ "stop", "stop the server", NULL, 0, cmd_stop },
};

void ctl_register_builtin_commands(void)
{
	ctl.started_ms = pl_now_ms();
	for (size_t i = 0; i < PL_ARRAY_LEN(builtin_commands); i++)
		cmd_register(&builtin_commands[i]);
}
