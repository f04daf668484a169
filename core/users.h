/*
 * users.h - user accounts (per virtual host) and their SCRAM credentials.
 *
 * Passwords are never stored: only salted SCRAM-SHA-1 and SCRAM-SHA-256
 * keys (RFC 5802 / RFC 7677). All calls are asynchronous (store.h); the
 * callback runs on the calling shard. Hashing a password (PBKDF2) happens on
 * a storage worker, never on a reactor thread. `user` is the node part as
 * given (normalisation is the caller's), `host` a configured host.
 */
#ifndef PL_USERS_H
#define PL_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/scram.h"

enum users_status {
	USERS_OK = 0,
	USERS_EXISTS,        /* register: the account exists */
	USERS_NOT_FOUND,     /* no such user */
	USERS_BAD_PASSWORD,  /* check_password: wrong password */
	USERS_INVALID,       /* empty user or password, unknown host */
	USERS_FAILED,        /* storage error (logged) */
};

struct user_creds {
	struct scram_creds sha1;
	struct scram_creds sha256;
};

typedef void users_done_fn(void *arg, int status);
typedef void users_creds_fn(void *arg, int status, const struct user_creds *creds);
typedef void users_list_fn(void *arg, int status, char **names, size_t n);

const char *users_status_str(int status);
void users_register(const char *host, const char *user, const char *password,
		    users_done_fn *cb, void *arg);
void users_unregister(const char *host, const char *user, users_done_fn *cb, void *arg);
void users_set_password(const char *host, const char *user, const char *password,
			users_done_fn *cb, void *arg);
void users_get_creds(const char *host, const char *user, users_creds_fn *cb, void *arg);
/* SASL PLAIN: verify against the stored SCRAM-SHA-256 keys (worker thread). */
void users_check_password(const char *host, const char *user, const char *password,
			  users_done_fn *cb, void *arg);
/* Sorted by name; names are freed by the store after the callback returns. */
void users_list(const char *host, users_list_fn *cb, void *arg);

#endif
