/*
 * scram.h - SCRAM (RFC 5802, RFC 7677) server side and key derivation.
 *
 * Pure functions and a small per-exchange state; no I/O, any thread.
 * A struct scram_server starts zeroed; scram_server_clear() frees what it
 * holds and leaves it zeroed again.
 * Channel binding (RFC 5802 §6): the caller says whether the mechanism is a
 * -PLUS one (s->plus) and whether it offered any -PLUS mechanism
 * (s->cb_offered) before scram_server_client_first(); afterwards, if the
 * client chose a binding (s->cb_name), the caller fills s->cb_data from the
 * TLS session before scram_server_final() checks c=.
 */
#ifndef PL_SCRAM_H
#define PL_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum scram_hash { SCRAM_SHA1 = 0, SCRAM_SHA256 = 1 };

#define SCRAM_MAX_KEY 32
#define SCRAM_MAX_SALT 32

struct scram_creds {
	int iterations;
	uint8_t salt[SCRAM_MAX_SALT];
	size_t salt_len;
	uint8_t stored_key[SCRAM_MAX_KEY];
	uint8_t server_key[SCRAM_MAX_KEY];
	size_t key_len;            /* 20 (SHA-1) or 32 (SHA-256) */
};

size_t scram_hash_len(enum scram_hash h);
/* Derive salted credentials for a password (PBKDF2: slow on purpose). */
int scram_make_creds(enum scram_hash h, const char *password, const uint8_t *salt,
		     size_t salt_len, int iterations, struct scram_creds *out);

struct scram_server {
	enum scram_hash hash;
	char *username;           /* saslname decoded (=2C, =3D) */
	char *authzid;            /* NULL if none */
	char *gs2_header;         /* "n,," etc., for the c= check */
	char *client_first_bare;
	char *server_first;
	char *nonce;              /* client nonce + server nonce */
	struct scram_creds creds;
	const char *test_server_nonce;  /* tests only: replaces the random one */
	bool plus;                /* the mechanism is SCRAM-*-PLUS */
	bool cb_offered;          /* the server offered -PLUS mechanisms */
	char cb_name[32];         /* "tls-exporter"... from "p=", "" if none */
	uint8_t cb_data[64];      /* the binding's data, set by the caller */
	size_t cb_len;
};

/* Parse client-first-message. On error returns PL_ERR and sets *why to a
 * SASL failure condition ("malformed-request", "invalid-authzid", ...). */
int scram_server_client_first(struct scram_server *s, enum scram_hash h,
			      const char *msg, size_t len, const char **why);
/* With the user's credentials, produce server-first-message into out. */
int scram_server_first(struct scram_server *s, const struct scram_creds *c, struct buf *out);
/* Verify client-final-message; on success write server-final ("v=...") to out. */
int scram_server_final(struct scram_server *s, const char *msg, size_t len,
		       struct buf *out, const char **why);
void scram_server_clear(struct scram_server *s);
/* Tests only: make scram_server_first() use this server nonce (the RFC
 * examples' exchanges can then be replayed byte for byte). */
void scram_server_set_nonce_for_test(struct scram_server *s, const char *server_nonce);

/* base64 (RFC 4648) helpers used by SASL. out is NUL-terminated;
 * decode returns -1 on invalid input, else the decoded length. */
size_t base64_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
long base64_decode(const char *in, size_t n, uint8_t *out, size_t outlen);

#endif
