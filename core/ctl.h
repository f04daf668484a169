/*
 * ctl.h - the control socket that parleyctl talks to.
 *
 * A unix stream socket (mode 0600) served on shard 0's reactor. One request
 * per connection: netstrings ("LEN:BYTES,") naming the command and its
 * arguments, ended by an empty netstring "0:,"; the reply is "STATUS\n"
 * followed by text up to EOF. STATUS is a cmd_status (cmd.h).
 * All calls below are made on shard 0's thread, except the registration
 * functions, which run on the main thread before the shards start.
 */
#ifndef PL_CTL_H
#define PL_CTL_H

#include <stddef.h>

#define CTL_MAX_REQUEST 65536
#define CTL_MAX_ARGS 32

/* Open the socket once every listener is bound. A stale socket file is
 * replaced; one that answers belongs to a live server: PL_ERR with
 * "control socket PATH is in use" in err. */
int ctl_open(const char *path, char *err, size_t errlen);
/* Stop serving and remove the socket file. */
void ctl_close(void);

/* status, register, unregister, change_password, registered_users, stop, help */
void ctl_register_builtin_commands(void);
/* Called (on shard 0, after the reply is sent) when `stop` is requested. */
void ctl_set_stop_handler(void (*fn)(void));

#endif
