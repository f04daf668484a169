/*
 * bench_scram.h - the client half of SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802,
 * RFC 7677) without channel binding ("n,,").
 *
 * The load generator logs in with SCRAM when the figure wanted is what an
 * idle session costs a server after the login real clients use: with PLAIN
 * the server runs PBKDF2 itself, and some servers keep the memory that took.
 * Messages in and out are base64 text as carried in <auth/>, <challenge/>,
 * <response/> and <success/>.
 */
#ifndef BENCH_SCRAM_H
#define BENCH_SCRAM_H

#include <stddef.h>

struct bscram;

/* Start an exchange; writes the base64 client-first message to out.
 * nonce may be NULL (random) or fixed (tests). NULL on failure. */
struct bscram *bscram_start(int sha256, const char *user, const char *nonce,
			    char *out, size_t cap);
/* Answer the server-first message (base64) with the client-final message
 * (base64 into out). 0 on success, -1 if the challenge is malformed, the
 * server nonce does not extend ours, or the iteration count is absurd. */
int bscram_respond(struct bscram *s, const char *password, const char *challenge,
		   size_t len, char *out, size_t cap);
/* Check the server-final message (base64 "v=..."): 0 if the server proved
 * it knows the password's keys. */
int bscram_verify(const struct bscram *s, const char *final, size_t len);
void bscram_free(struct bscram *s);

#endif
