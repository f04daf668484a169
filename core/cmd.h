/*
 * cmd.h - the one registry of admin commands.
 *
 * A command is declared once (name, typed arguments, handler) and reached
 * every way an administrator can: parleyctl over the control socket now; the
 * JSON API, the web admin and XEP-0050 ad-hoc commands later. Handlers run on
 * a shard thread and may answer later (after a storage job): they keep the
 * request and call exactly one cmd_reply_*() when done.
 */
#ifndef PL_CMD_H
#define PL_CMD_H

#include <stddef.h>

enum cmd_arg_type { CMD_ARG_STRING, CMD_ARG_HOST, CMD_ARG_USER, CMD_ARG_PASSWORD, CMD_ARG_INT };

struct cmd_arg {
	const char *name;
	enum cmd_arg_type type;
};

struct cmd_req;
typedef void cmd_handler_fn(struct cmd_req *req);

struct cmd_def {
	const char *name;
	const char *desc;
	const struct cmd_arg *args;
	size_t nargs;
	cmd_handler_fn *handler;
};

/* Exit statuses a command answers with (parleyctl exits with them). */
enum cmd_status {
	CMD_OK = 0,
	CMD_ERROR = 1,        /* the command failed (no such user, ...) */
	CMD_USAGE = 2,        /* wrong arguments */
	CMD_UNAVAILABLE = 3,  /* server not running (parleyctl's own) */
};

typedef void cmd_reply_fn(struct cmd_req *req, int status, const char *text);

struct cmd_req {
	const struct cmd_def *def;
	char **argv;              /* argv[0..argc) are the command's arguments */
	size_t argc;
	int shard;                /* where the handler runs */
	cmd_reply_fn *reply;      /* the transport's; called once by cmd_reply_* */
	void *transport;          /* the transport's */
};

void cmd_register(const struct cmd_def *def);
const struct cmd_def *cmd_find(const char *name);
/* All commands, sorted by name (for help). */
size_t cmd_all(const struct cmd_def **out, size_t max);
/* Validate arguments against the definition; runs the handler or answers
 * CMD_USAGE. Must be called on a shard thread. */
void cmd_dispatch(struct cmd_req *req);

void cmd_reply_ok(struct cmd_req *req, const char *text);
void cmd_reply_error(struct cmd_req *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* One item per line. */
void cmd_reply_list(struct cmd_req *req, char *const *items, size_t n);

#endif
