/* Unit tests of connections: echo, back-pressure, flush-then-close, output
 * coalesced into one write per loop iteration, and
 * hand-over of a live connection to another shard. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/conn.h"
#include "core/pl.h"
#include "core/shard.h"

struct proto {
	size_t got;
	int closes;
	int data_shard[2];      /* shard of the first data before/after move */
	int moved;
	int move_arrivals;
	int peer_fd;
};

static struct proto P;

static void echo_data(struct conn *c, const uint8_t *data, size_t len)
{
	struct proto *p = c->proto;
	p->got += len;
	if (!p->moved)
		p->data_shard[0] = shard_self()->id;
	else
		p->data_shard[1] = shard_self()->id;
	conn_write(c, data, len);
}

static void on_close_count(struct conn *c, int err)
{
	(void)err;
	struct proto *p = c->proto;
	p->closes++;
	shards_stop();
}

static const struct conn_handler echo_handler = {
	.on_data = echo_data,
	.on_close = on_close_count,
};

static void set_blocking(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

static void read_exact(int fd, uint8_t *out, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, out + got, n - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

static int srv_fd;

static void start_conn(void *arg)
{
	(void)arg;
	struct conn *c = conn_new(srv_fd, NULL, 0, &echo_handler, &P);
	assert_non_null(c);
}

/* A client thread writes a lot and reads it all back; the echo must
 * survive the socket buffer filling up (EV_WRITE path). */
static void *bulk_client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	set_blocking(fd);
	size_t total = 4u << 20;
	uint8_t *chunk = pl_malloc(65536), *back = pl_malloc(65536);
	for (size_t i = 0; i < 65536; i++)
		chunk[i] = (uint8_t)(i * 7);
	size_t sent = 0, recvd = 0;
	int ok = 1;
	while (recvd < total) {
		if (sent < total) {
			size_t off = sent % 65536;
			ssize_t w = send(fd, chunk + off, 65536 - off, MSG_DONTWAIT);
			if (w > 0)
				sent += (size_t)w;
		}
		ssize_t r = recv(fd, back, 65536, sent < total ? MSG_DONTWAIT : 0);
		if (r > 0) {
			for (ssize_t i = 0; i < r; i++)
				if (back[i] != (uint8_t)(((recvd + (size_t)i) % 65536) * 7))
					ok = 0;
			recvd += (size_t)r;
		} else if (r == 0) {
			break;
		}
	}
	free(chunk);
	free(back);
	close(fd);
	return (void *)(intptr_t)(ok && recvd == total);
}

static void echo_survives_back_pressure_and_close_is_reported_once(void **state)
{
	(void)state;
	memset(&P, 0, sizeof(P));
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	srv_fd = sv[0];
	assert_int_equal(shards_create(1), PL_OK);
	start_conn(NULL);
	pthread_t th;
	pthread_create(&th, NULL, bulk_client, (void *)(intptr_t)sv[1]);
	shards_run();   /* stops when the client closes */
	void *ok;
	pthread_join(th, &ok);
	assert_true((intptr_t)ok);
	assert_int_equal(P.got, 4u << 20);
	assert_int_equal(P.closes, 1);
	shards_destroy();
}

/* ---- output coalescing ---- */

static struct conn *coalesce_conn;
static int coalesce_peer;
static struct ev_timer coalesce_check;

static void coalesce_checked(struct ev_loop *loop, struct ev_timer *t)
{
	(void)loop;
	(void)t;
	/* The loop slept since the writes: one write() carried all three. */
	assert_int_equal(coalesce_conn->writes, 1);
	char got[64] = "";
	ssize_t n = recv(coalesce_peer, got, sizeof(got) - 1, MSG_DONTWAIT);
	assert_int_equal(n, 15);
	assert_string_equal(got, "<a/><b/><c/>end");
	/* Then a close with output still queued: the bytes go out first. */
	conn_write(coalesce_conn, "bye", 3);
	conn_close(coalesce_conn);
}

static void coalesce_writes(void *arg)
{
	(void)arg;
	struct conn *c = coalesce_conn = conn_new(srv_fd, NULL, 0, &echo_handler, &P);
	assert_non_null(c);
	conn_write_str(c, "<a/>");
	conn_write_str(c, "<b/>");
	conn_write(c, "<c/>end", 7);
	/* Nothing is written inside the batch that queued it. */
	char tmp[8];
	assert_int_equal(recv(coalesce_peer, tmp, sizeof(tmp), MSG_DONTWAIT), -1);
	assert_int_equal(c->writes, 0);
	ev_timer_init(&coalesce_check, coalesce_checked, NULL);
	ev_timer_start(c->loop, &coalesce_check, 1);   /* after the loop slept */
}

static void writes_in_one_batch_become_one_write_and_close_flushes_first(void **state)
{
	(void)state;
	memset(&P, 0, sizeof(P));
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	srv_fd = sv[0];
	coalesce_peer = sv[1];
	assert_int_equal(shards_create(1), PL_OK);
	shard_post(0, coalesce_writes, NULL);
	shards_run();   /* stops when the conn closes */
	char got[8] = "";
	assert_int_equal(recv(sv[1], got, sizeof(got) - 1, MSG_DONTWAIT), 3);
	assert_string_equal(got, "bye");
	assert_int_equal(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), 0);   /* EOF */
	assert_int_equal(P.closes, 1);
	close(sv[1]);
	shards_destroy();
}

/* ---- hand-over ---- */

static void moved_here(struct conn *c)
{
	struct proto *p = c->proto;
	p->move_arrivals++;
	p->moved = 1;
	assert_int_equal(c->shard, shard_self()->id);
	conn_write_str(c, "moved");
}

static void move_on_first_data(struct conn *c, const uint8_t *data, size_t len)
{
	struct proto *p = c->proto;
	if (!p->moved && p->move_arrivals == 0 && !c->moving) {
		p->data_shard[0] = shard_self()->id;
		p->got += len;
		conn_write(c, data, len);
		conn_move(c, 1, moved_here);
		return;
	}
	p->data_shard[1] = shard_self()->id;
	p->got += len;
	conn_close(c);
}

static const struct conn_handler move_handler = {
	.on_data = move_on_first_data,
	.on_close = on_close_count,
};

static void start_move_conn(void *arg)
{
	(void)arg;
	assert_non_null(conn_new(srv_fd, NULL, 0, &move_handler, &P));
}

static void *move_client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	set_blocking(fd);
	uint8_t b[16];
	assert_int_equal(write(fd, "ping", 4), 4);
	read_exact(fd, b, 4);            /* echoed by shard 0 */
	read_exact(fd, b + 4, 5);        /* "moved", written on shard 1 */
	int ok = memcmp(b, "pingmoved", 9) == 0;
	assert_int_equal(write(fd, "bye", 3), 3);
	ssize_t r = read(fd, b, sizeof(b));   /* server closes: EOF */
	close(fd);
	return (void *)(intptr_t)(ok && r == 0);
}

static void conn_move_hands_a_live_connection_to_another_shard(void **state)
{
	(void)state;
	memset(&P, 0, sizeof(P));
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	srv_fd = sv[0];
	assert_int_equal(shards_create(2), PL_OK);
	assert_int_equal(shards_start(), PL_OK);
	start_move_conn(NULL);   /* on shard 0: the main thread */
	pthread_t th;
	pthread_create(&th, NULL, move_client, (void *)(intptr_t)sv[1]);
	shards_run();
	void *ok;
	pthread_join(th, &ok);
	assert_true((intptr_t)ok);
	assert_int_equal(P.move_arrivals, 1);
	assert_int_equal(P.data_shard[0], 0);
	assert_int_equal(P.data_shard[1], 1);
	assert_int_equal(P.closes, 1);
	shards_destroy();
}

/* ---- STARTTLS from inside on_data ---- */

struct tlsproto {
	int in_data;
	int tls_inside_data;     /* on_tls ran while on_data was running: the bug */
	int tls_done;
	char after[64];          /* plaintext received after the handshake */
	size_t nafter;
	SSL_CTX *ctx;
};

static struct tlsproto T;

static void tls_data(struct conn *c, const uint8_t *data, size_t len)
{
	T.in_data = 1;
	if (!T.tls_done && !c->ssl && !c->tls_pending) {
		/* "STARTTLS\n" and maybe more bytes the client pipelined. */
		conn_write_str(c, "GO\n");
		conn_starttls(c, T.ctx);
		assert_null(c->ssl);            /* deferred until this read is over */
	} else if (T.tls_done) {
		memcpy(T.after + T.nafter, data, len < sizeof(T.after) - T.nafter ? len : 0);
		T.nafter += len;
		if (T.nafter >= 5)
			conn_close(c);
	}
	T.in_data = 0;
}

static void tls_on_tls(struct conn *c)
{
	(void)c;
	if (T.in_data)
		T.tls_inside_data = 1;
	T.tls_done = 1;
}

static void tls_close(struct conn *c, int err)
{
	(void)c;
	(void)err;
	shards_stop();
}

static const struct conn_handler tls_handler = {
	.on_data = tls_data,
	.on_close = tls_close,
	.on_tls = tls_on_tls,
};

static SSL_CTX *make_server_ctx(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, key, EVP_sha256());
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_use_certificate(ctx, x);
	SSL_CTX_use_PrivateKey(ctx, key);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

static void *tls_client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	set_blocking(fd);
	/* STARTTLS, then the ClientHello at once and data right after the
	 * handshake: as eager a client as there can be. */
	assert_int_equal(write(fd, "STARTTLS\n", 9), 9);
	uint8_t go[3];
	read_exact(fd, go, 3);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(cctx);
	SSL_set_fd(ssl, fd);
	int ok = SSL_connect(ssl) == 1 && SSL_write(ssl, "hello", 5) == 5;
	char b[8];
	while (SSL_read(ssl, b, sizeof(b)) > 0)
		;
	SSL_free(ssl);
	SSL_CTX_free(cctx);
	close(fd);
	return (void *)(intptr_t)ok;
}

static void starttls_from_on_data_never_reenters_and_keeps_the_stream(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++) {
		memset(&T, 0, sizeof(T));
		T.ctx = make_server_ctx();
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
		srv_fd = sv[0];
		assert_int_equal(shards_create(1), PL_OK);
		assert_non_null(conn_new(srv_fd, NULL, 0, &tls_handler, NULL));
		pthread_t th;
		pthread_create(&th, NULL, tls_client, (void *)(intptr_t)sv[1]);
		shards_run();
		void *ok;
		pthread_join(th, &ok);
		assert_true((intptr_t)ok);
		assert_int_equal(T.tls_done, 1);
		assert_int_equal(T.tls_inside_data, 0);
		assert_int_equal(T.nafter, 5);
		assert_memory_equal(T.after, "hello", 5);
		shards_destroy();
		SSL_CTX_free(T.ctx);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(echo_survives_back_pressure_and_close_is_reported_once),
		cmocka_unit_test(writes_in_one_batch_become_one_write_and_close_flushes_first),
		cmocka_unit_test(conn_move_hands_a_live_connection_to_another_shard),
		cmocka_unit_test(starttls_from_on_data_never_reenters_and_keeps_the_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
