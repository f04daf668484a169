/*
 * test_bench.c - parley-bench's stream scanner and latency histogram: what
 * the benchmark's numbers rest on. A scanner that splits a stanza wrongly
 * loses messages; a histogram that misplaces a sample reports the wrong
 * p99.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tools/bench/bench_hist.h"
#include "tools/bench/bench_scan.h"
#include "tools/bench/bench_scram.h"

#define HEADER "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
	"xmlns:stream='http://etherx.jabber.org/streams' id='x1' from='localhost' version='1.0'>"

struct collected {
	int opens, closes, errors;
	int n;
	char els[16][256];
};

/* Feed text in chunks of `chunk` bytes, carrying unfinished bytes over the
 * way bench_net.c does, and collect the events. */
static void feed(const char *text, size_t chunk, struct collected *out)
{
	struct scan s = { 0 };
	char carry[4096];
	size_t carry_len = 0, off = 0, total = strlen(text);
	memset(out, 0, sizeof(*out));
	while (off < total) {
		size_t n = total - off < chunk ? total - off : chunk;
		memcpy(carry + carry_len, text + off, n);
		carry_len += n;
		off += n;
		size_t pos = 0, st, en;
		for (;;) {
			enum scan_event ev = scan_next(&s, carry, carry_len, &pos, &st, &en);
			if (ev == SCAN_NEED_MORE)
				break;
			if (ev == SCAN_ERROR) {
				out->errors++;
				return;
			}
			if (ev == SCAN_STREAM_OPEN)
				out->opens++;
			else if (ev == SCAN_STREAM_CLOSE)
				out->closes++;
			else if (out->n < 16)
				snprintf(out->els[out->n++], 256, "%.*s", (int)(en - st), carry + st);
		}
		memmove(carry, carry + pos, carry_len - pos);
		carry_len -= pos;
	}
}

static void rfc6120_stream_cut_into_stanzas_at_any_chunk_size(void **state)
{
	(void)state;
	const char *text = HEADER
		"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
		"<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
		" \n"
		"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
		"<message from='a@localhost/r' to='b@localhost/r' type=\"chat\">"
		"<body>b 1 2 3 a&gt;b x > y</body></message>"
		"<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
		"<jid>b@localhost/r</jid></bind></iq>"
		"</stream:stream>";
	static const size_t chunks[] = { 1, 2, 3, 7, 64, 100000 };
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct collected c;
		feed(text, chunks[i], &c);
		assert_int_equal(c.errors, 0);
		assert_int_equal(c.opens, 1);
		assert_int_equal(c.closes, 1);
		assert_int_equal(c.n, 4);
		assert_true(strncmp(c.els[0], "<stream:features>", 17) == 0);
		assert_string_equal(c.els[1], "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
		assert_true(strstr(c.els[2], "</body></message>") != NULL);
		assert_true(strncmp(c.els[3], "<iq type='result'", 17) == 0);
	}
}

static void scan_quoted_gt_and_slash_do_not_end_a_tag(void **state)
{
	(void)state;
	struct collected c;
	feed(HEADER "<message id='a>b' to=\"x/>y\"><body>hi</body></message>", 5, &c);
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.els[0], "<message id='a>b' to=\"x/>y\"><body>hi</body></message>");
}

static void scan_comments_cdata_and_pis_are_skipped(void **state)
{
	(void)state;
	struct collected c;
	feed(HEADER "<!-- a <b> -->" "<message><body><![CDATA[<x></y>]]></body></message><?pi x?>",
	     3, &c);
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.n, 1);
	assert_true(strstr(c.els[0], "CDATA") != NULL);
}

static void scan_unfinished_element_waits_for_more(void **state)
{
	(void)state;
	struct scan s = { 1 };
	const char *part = "<message><body>hel";
	size_t pos = 0, st, en;
	assert_int_equal(scan_next(&s, part, strlen(part), &pos, &st, &en), SCAN_NEED_MORE);
	assert_int_equal(pos, 0);   /* keep everything from the element's start */
	const char *ws = "   ";
	pos = 0;
	assert_int_equal(scan_next(&s, ws, 3, &pos, &st, &en), SCAN_NEED_MORE);
	assert_int_equal(pos, 3);   /* keepalive whitespace is consumed */
}

static void scan_doctype_and_stray_lt_are_errors(void **state)
{
	(void)state;
	struct collected c;
	feed(HEADER "<!DOCTYPE x [<!ENTITY a 'b'>]>", 100, &c);
	assert_int_equal(c.errors, 1);
	feed(HEADER "<message <body>", 100, &c);
	assert_int_equal(c.errors, 1);
	feed("</stream:stream>", 100, &c);   /* a close before any open */
	assert_int_equal(c.errors, 1);
}

static void rfc6120_4_3_2_restart_after_success(void **state)
{
	(void)state;
	/* After <success/> the caller resets depth: the next header opens a
	 * new stream instead of being taken for a stanza. */
	const char *text = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" HEADER
		"<stream:features/>";
	struct scan s = { 1 };
	size_t pos = 0, st, en, len = strlen(text);
	assert_int_equal(scan_next(&s, text, len, &pos, &st, &en), SCAN_ELEMENT);
	s.depth = 0;
	assert_int_equal(scan_next(&s, text, len, &pos, &st, &en), SCAN_STREAM_OPEN);
	assert_int_equal(scan_next(&s, text, len, &pos, &st, &en), SCAN_ELEMENT);
	assert_string_equal(text + st, "<stream:features/>");
}

static void scan_names_attrs_and_child_text(void **state)
{
	(void)state;
	const char *el = "<stream:error><conflict xmlns='x'/></stream:error>";
	size_t n;
	const char *name = scan_name(el, strlen(el), &n);
	assert_int_equal(n, 5);
	assert_memory_equal(name, "error", 5);
	assert_true(scan_is(el, strlen(el), "error"));
	assert_false(scan_is(el, strlen(el), "err"));

	const char *m = "<message  to = 'b@l/r' type=\"chat\" id='1' xml:lang='en'><body>b 7 8 9</body>"
		"<x type='nested'/></message>";
	const char *v = scan_attr(m, strlen(m), "type", &n);
	assert_non_null(v);
	assert_int_equal(n, 4);
	assert_memory_equal(v, "chat", 4);
	v = scan_attr(m, strlen(m), "to", &n);
	assert_non_null(v);
	assert_memory_equal(v, "b@l/r", n);
	assert_null(scan_attr(m, strlen(m), "from", &n));   /* not the child's */
	assert_null(scan_attr(m, strlen(m), "lang", &n));   /* xml:lang is not lang */
	v = scan_child_text(m, strlen(m), "body", &n);
	assert_non_null(v);
	assert_int_equal(n, 7);
	assert_memory_equal(v, "b 7 8 9", 7);
	assert_null(scan_child_text(m, strlen(m), "subject", &n));

	const char *bad = "<iq type='res";   /* unterminated value */
	assert_null(scan_attr(bad, strlen(bad), "type", &n));
}

static void hist_buckets_are_contiguous_and_monotonic(void **state)
{
	(void)state;
	/* Every bucket starts right after the previous one ends. */
	for (unsigned i = 1; i < HIST_BUCKETS; i++) {
		assert_true(hist_bucket_low(i) > hist_bucket_low(i - 1));
		assert_int_equal(hist_index(hist_bucket_low(i)), i);
		assert_int_equal(hist_index(hist_bucket_low(i) - 1), i - 1);
	}
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	/* Relative width stays under 1/64 above the exact range. */
	for (unsigned i = 64; i + 1 < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_low(i), hi = hist_bucket_low(i + 1);
		assert_true((hi - lo) * 64 <= lo);
	}
}

static void hist_quantiles_of_known_samples(void **state)
{
	(void)state;
	static struct hist h;
	hist_reset(&h);
	assert_int_equal(hist_quantile(&h, 0.99), 0);
	/* 1..10000 us in ns: p50 near 5 ms, p99 near 9.9 ms, max exact. */
	for (uint64_t v = 1; v <= 10000; v++)
		hist_add(&h, v * 1000);
	assert_int_equal(h.count, 10000);
	uint64_t p50 = hist_quantile(&h, 0.5), p99 = hist_quantile(&h, 0.99);
	assert_true(p50 >= 5000000 && p50 <= 5000000 + 5000000 / 64);
	assert_true(p99 >= 9900000 && p99 <= 9900000 + 9900000 / 64);
	assert_int_equal(hist_quantile(&h, 1.0), 10000000);
	assert_true(hist_quantile(&h, 0.0) <= 1000 + 1000 / 64);

	/* One slow outlier among fast samples moves max and p999, not p99. */
	static struct hist k;
	hist_reset(&k);
	for (int i = 0; i < 999; i++)
		hist_add(&k, 100000);
	hist_add(&k, 50000000);
	assert_true(hist_quantile(&k, 0.99) < 110000);
	assert_int_equal(hist_quantile(&k, 1.0), 50000000);
	assert_int_equal(k.max, 50000000);

	static struct hist m;
	hist_reset(&m);
	hist_add(&m, 7);
	hist_merge(&m, &k);
	assert_int_equal(m.count, 1001);
	assert_int_equal(m.max, 50000000);
	assert_int_equal(hist_quantile(&m, 0.0), 7);
}

static void b64(const char *text, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(text), o = 0;
	const unsigned char *in = (const unsigned char *)text;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

/* One exchange of a published example: client-first, client-final and the
 * server signature must be byte for byte the RFC's. */
static void scram_exchange(int sha256, const char *nonce, const char *server_first,
			   const char *client_final, const char *server_final)
{
	char out[1024], want[1024], in[1024];
	struct bscram *s = bscram_start(sha256, "user", nonce, out, sizeof(out));
	assert_non_null(s);
	char first[256];
	snprintf(first, sizeof(first), "n,,n=user,r=%s", nonce);
	b64(first, want);
	assert_string_equal(out, want);
	b64(server_first, in);
	assert_int_equal(bscram_respond(s, "pencil", in, strlen(in), out, sizeof(out)), 0);
	b64(client_final, want);
	assert_string_equal(out, want);
	b64(server_final, in);
	assert_int_equal(bscram_verify(s, in, strlen(in)), 0);
	/* A server that does not know the keys is caught. */
	char forged[128];
	snprintf(forged, sizeof(forged), "%s", server_final);
	forged[3] = forged[3] == 'A' ? 'B' : 'A';
	b64(forged, in);
	assert_int_equal(bscram_verify(s, in, strlen(in)), -1);
	bscram_free(s);
}

static void rfc5802_5_scram_sha1_example(void **state)
{
	(void)state;
	scram_exchange(0, "fyko+d2lbbFgONRv9qkxdawL",
		       "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
		       "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
		       "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		       "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void rfc7677_3_scram_sha256_example(void **state)
{
	(void)state;
	scram_exchange(1, "rOprNGfwEbeRWgbNEkqO",
		       "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		       "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		       "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		       "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		       "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

static void rfc5802_5_1_bad_server_first_is_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"r=someoneelse123,s=QSXCR+Q6sek8bf92,i=4096",   /* nonce not ours */
		"r=abc,s=QSXCR+Q6sek8bf92,i=4096",              /* not extended */
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=0",              /* no iterations */
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999",       /* absurd count */
		"r=abcdef,s=!!!!,i=4096",                       /* salt not base64 */
		"r=abcdef,i=4096",                              /* no salt */
		"m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096",     /* mandatory extension */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char out[1024], in[256];
		struct bscram *s = bscram_start(0, "us,er=", "abc", out, sizeof(out));
		assert_non_null(s);
		b64(bad[i], in);
		assert_int_equal(bscram_respond(s, "pencil", in, strlen(in), out, sizeof(out)), -1);
		/* Nothing verified before a valid challenge. */
		b64("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", in);
		assert_int_equal(bscram_verify(s, in, strlen(in)), -1);
		bscram_free(s);
	}
	/* The user name is escaped in client-first (RFC 5802 §5.1 n=). */
	char out[256], want[256];
	struct bscram *s = bscram_start(0, "us,er=", "abc", out, sizeof(out));
	b64("n,,n=us=2Cer=3D,r=abc", want);
	assert_string_equal(out, want);
	bscram_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc6120_stream_cut_into_stanzas_at_any_chunk_size),
		cmocka_unit_test(scan_quoted_gt_and_slash_do_not_end_a_tag),
		cmocka_unit_test(scan_comments_cdata_and_pis_are_skipped),
		cmocka_unit_test(scan_unfinished_element_waits_for_more),
		cmocka_unit_test(scan_doctype_and_stray_lt_are_errors),
		cmocka_unit_test(rfc6120_4_3_2_restart_after_success),
		cmocka_unit_test(scan_names_attrs_and_child_text),
		cmocka_unit_test(hist_buckets_are_contiguous_and_monotonic),
		cmocka_unit_test(hist_quantiles_of_known_samples),
		cmocka_unit_test(rfc5802_5_scram_sha1_example),
		cmocka_unit_test(rfc7677_3_scram_sha256_example),
		cmocka_unit_test(rfc5802_5_1_bad_server_first_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
