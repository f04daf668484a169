/*
 * test_stun.c - STUN codec and Binding server (RFC 8489, RFC 5769 vectors).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "core/pl.h"
#include "ice/stun.h"

/* RFC 5769 2.1: sample request (short-term credentials, ICE attributes). */
static const uint8_t rfc5769_request[108] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
	0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
	0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
	0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
	0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
	0x59, 0x20, 0x20, 0x20,
	0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56,
	0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
	0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 2.2: sample IPv4 response, 192.0.2.1:32853. */
static const uint8_t rfc5769_response_v4[80] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
	0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
	0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
	0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 2.3: sample IPv6 response, [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t rfc5769_response_v6[92] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
	0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
	0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
	0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

static const uint8_t rfc5769_tid[12] = {
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
};
static const char rfc5769_password[] = "VOkJxbRl1RmTxUk/WvJxBt";

/* What stun-client 0.97 (RFC 3489) sends: no cookie, CHANGE-REQUEST 0. */
static const uint8_t rfc3489_request[28] = {
	0x00, 0x01, 0x00, 0x08, 0x01, 0xba, 0x83, 0x37,
	0x87, 0xd9, 0xa9, 0x4a, 0xd3, 0x02, 0x3c, 0x64, 0x4f, 0x8a, 0x14, 0x09,
	0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
};

static const uint8_t key_ok[] = "VOkJxbRl1RmTxUk/WvJxBt";

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return sin;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	return sin6;
}

/* A Binding request with the given extra attributes; returns its length. */
static size_t binding_request(uint8_t *out, size_t cap, bool fingerprint,
			      const uint16_t *extra, size_t nextra)
{
	static const uint8_t tid[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	struct stun_builder b;
	stun_build_start(&b, out, cap, stun_type(STUN_BINDING, STUN_REQUEST), STUN_MAGIC, tid);
	for (size_t i = 0; i < nextra; i++)
		stun_put_u32(&b, extra[i], 0);
	if (fingerprint)
		stun_put_fingerprint(&b);
	size_t n = stun_build_finish(&b);
	assert_true(n > 0);
	return n;
}

static void rfc8489_5_message_type_encoding(void **state)
{
	(void)state;
	assert_int_equal(stun_type(STUN_BINDING, STUN_REQUEST), 0x0001);
	assert_int_equal(stun_type(STUN_BINDING, STUN_INDICATION), 0x0011);
	assert_int_equal(stun_type(STUN_BINDING, STUN_SUCCESS), 0x0101);
	assert_int_equal(stun_type(STUN_BINDING, STUN_ERROR), 0x0111);
	assert_int_equal(stun_type(STUN_ALLOCATE, STUN_REQUEST), 0x0003);
	for (uint16_t m = 0; m < 0x1000; m++)
		for (int c = 0; c < 4; c++) {
			uint16_t t = stun_type(m, (enum stun_class)c);
			assert_int_equal(t & 0xC000, 0);
			assert_int_equal(stun_method(t), m);
			assert_int_equal(stun_class_of(t), c);
		}
}

static void rfc5769_2_1_sample_request_parses(void **state)
{
	(void)state;
	struct stun_msg m;
	struct stun_attr a;
	assert_int_equal(stun_parse(rfc5769_request, sizeof rfc5769_request, 0, &m), STUN_PARSE_OK);
	assert_int_equal(m.type, 0x0001);
	assert_false(m.classic);
	assert_true(m.fingerprint);
	assert_memory_equal(m.tid, rfc5769_tid, 12);
	assert_true(stun_attr_find(&m, STUN_A_SOFTWARE, &a));
	assert_int_equal(a.len, 16);
	assert_memory_equal(a.val, "STUN test client", 16);
	assert_true(stun_attr_find(&m, STUN_A_USERNAME, &a));
	assert_int_equal(a.len, 9);
	assert_memory_equal(a.val, "evtj:h6vY", 9);
	assert_true(stun_attr_find(&m, STUN_A_PRIORITY, &a));
	assert_int_equal(a.len, 4);
	assert_true(m.integrity_off > 0);
	assert_true(stun_check_integrity(&m, key_ok, strlen(rfc5769_password)));
	assert_false(stun_check_integrity(&m, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBr", 22));
}

static void rfc5769_2_1_sample_request_builds(void **state)
{
	(void)state;
	uint8_t out[256];
	struct stun_builder b;
	stun_build_start(&b, out, sizeof out, 0x0001, STUN_MAGIC, rfc5769_tid);
	b.pad = 0x20;
	stun_put_attr(&b, STUN_A_SOFTWARE, "STUN test client", 16);
	stun_put_u32(&b, STUN_A_PRIORITY, 0x6e0001ff);
	stun_put_u64(&b, STUN_A_ICE_CONTROLLED, 0x932ff9b151263b36ULL);
	stun_put_attr(&b, STUN_A_USERNAME, "evtj:h6vY", 9);
	stun_put_integrity(&b, key_ok, strlen(rfc5769_password));
	stun_put_fingerprint(&b);
	assert_int_equal(stun_build_finish(&b), sizeof rfc5769_request);
	assert_memory_equal(out, rfc5769_request, sizeof rfc5769_request);
}

static void rfc5769_2_2_ipv4_response_parses(void **state)
{
	(void)state;
	struct stun_msg m;
	struct stun_attr a;
	struct sockaddr_storage ss;
	socklen_t len;
	assert_int_equal(stun_parse(rfc5769_response_v4, sizeof rfc5769_response_v4, 0, &m),
			 STUN_PARSE_OK);
	assert_int_equal(stun_class_of(m.type), STUN_SUCCESS);
	assert_true(m.fingerprint);
	assert_true(stun_check_integrity(&m, key_ok, strlen(rfc5769_password)));
	assert_true(stun_attr_find(&m, STUN_A_XOR_MAPPED_ADDRESS, &a));
	assert_int_equal(stun_attr_addr(&m, &a, true, &ss, &len), PL_OK);
	struct sockaddr_in want = v4("192.0.2.1", 32853);
	assert_int_equal(len, sizeof want);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, want.sin_port);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, want.sin_addr.s_addr);
}

static void rfc5769_2_2_ipv4_response_builds(void **state)
{
	(void)state;
	uint8_t out[256];
	struct stun_builder b;
	struct sockaddr_in peer = v4("192.0.2.1", 32853);
	stun_build_start(&b, out, sizeof out, 0x0101, STUN_MAGIC, rfc5769_tid);
	b.pad = 0x20;
	stun_put_attr(&b, STUN_A_SOFTWARE, "test vector", 11);
	stun_put_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&peer, true);
	stun_put_integrity(&b, key_ok, strlen(rfc5769_password));
	stun_put_fingerprint(&b);
	assert_int_equal(stun_build_finish(&b), sizeof rfc5769_response_v4);
	assert_memory_equal(out, rfc5769_response_v4, sizeof rfc5769_response_v4);
}

static void rfc5769_2_3_ipv6_response_parses(void **state)
{
	(void)state;
	struct stun_msg m;
	struct stun_attr a;
	struct sockaddr_storage ss;
	socklen_t len;
	assert_int_equal(stun_parse(rfc5769_response_v6, sizeof rfc5769_response_v6, 0, &m),
			 STUN_PARSE_OK);
	assert_true(m.fingerprint);
	assert_true(stun_check_integrity(&m, key_ok, strlen(rfc5769_password)));
	assert_true(stun_attr_find(&m, STUN_A_XOR_MAPPED_ADDRESS, &a));
	assert_int_equal(stun_attr_addr(&m, &a, true, &ss, &len), PL_OK);
	struct sockaddr_in6 want = v6("2001:db8:1234:5678:11:2233:4455:6677", 32853);
	assert_int_equal(len, sizeof want);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_port, want.sin6_port);
	assert_memory_equal(&((struct sockaddr_in6 *)&ss)->sin6_addr, &want.sin6_addr, 16);
}

static void rfc5769_2_3_ipv6_response_builds(void **state)
{
	(void)state;
	uint8_t out[256];
	struct stun_builder b;
	struct sockaddr_in6 peer = v6("2001:db8:1234:5678:11:2233:4455:6677", 32853);
	stun_build_start(&b, out, sizeof out, 0x0101, STUN_MAGIC, rfc5769_tid);
	b.pad = 0x20;
	stun_put_attr(&b, STUN_A_SOFTWARE, "test vector", 11);
	stun_put_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&peer, true);
	stun_put_integrity(&b, key_ok, strlen(rfc5769_password));
	stun_put_fingerprint(&b);
	assert_int_equal(stun_build_finish(&b), sizeof rfc5769_response_v6);
	assert_memory_equal(out, rfc5769_response_v6, sizeof rfc5769_response_v6);
}

static void rfc8489_6_3_rejects_short_and_type_bits(void **state)
{
	(void)state;
	struct stun_msg m;
	uint8_t msg[128];
	for (size_t n = 0; n < STUN_HDR_LEN; n++)
		assert_int_equal(stun_parse(rfc5769_request, n, 0, &m), STUN_PARSE_SHORT);
	memcpy(msg, rfc5769_request, sizeof rfc5769_request);
	msg[0] |= 0x80;
	assert_int_equal(stun_parse(msg, sizeof rfc5769_request, 0, &m), STUN_PARSE_TYPE_BITS);
	msg[0] = 0x40;
	assert_int_equal(stun_parse(msg, sizeof rfc5769_request, 0, &m), STUN_PARSE_TYPE_BITS);
}

static void rfc8489_6_3_rejects_bad_length(void **state)
{
	(void)state;
	struct stun_msg m;
	uint8_t msg[128];
	memcpy(msg, rfc5769_request, sizeof rfc5769_request);
	/* The datagram is longer, or shorter, than the length field says. */
	assert_int_equal(stun_parse(msg, sizeof rfc5769_request - 4, 0, &m), STUN_PARSE_LENGTH);
	memset(msg + sizeof rfc5769_request, 0, 4);
	assert_int_equal(stun_parse(msg, sizeof rfc5769_request + 4, 0, &m), STUN_PARSE_LENGTH);
	/* Not a multiple of 4, even when it matches the datagram. */
	msg[3] = 0x57;
	assert_int_equal(stun_parse(msg, 20 + 0x57, 0, &m), STUN_PARSE_LENGTH);
}

static void rfc8489_6_3_rejects_wrong_cookie(void **state)
{
	(void)state;
	struct stun_msg m;
	uint8_t msg[64];
	size_t n = binding_request(msg, sizeof msg, false, NULL, 0);
	msg[7] ^= 0xff;
	assert_int_equal(stun_parse(msg, n, 0, &m), STUN_PARSE_COOKIE);
	/* Only a Binding request may be RFC 3489 style. */
	assert_int_equal(stun_parse(msg, n, STUN_PARSE_CLASSIC, &m), STUN_PARSE_OK);
	assert_true(m.classic);
	msg[1] = 0x11;  /* Binding indication */
	assert_int_equal(stun_parse(msg, n, STUN_PARSE_CLASSIC, &m), STUN_PARSE_COOKIE);
	msg[1] = 0x03;  /* Allocate */
	assert_int_equal(stun_parse(msg, n, STUN_PARSE_CLASSIC, &m), STUN_PARSE_COOKIE);
}

static void rfc8489_14_attribute_overrun(void **state)
{
	(void)state;
	struct stun_msg m;
	uint8_t msg[64];
	size_t n = binding_request(msg, sizeof msg, false, (const uint16_t[]){ 0x8001 }, 1);
	assert_int_equal(n, 28);
	msg[23] = 5;    /* value length 5 pads to 8: past the end */
	assert_int_equal(stun_parse(msg, n, 0, &m), STUN_PARSE_ATTR_OVERRUN);
	msg[22] = 0xff;
	assert_int_equal(stun_parse(msg, n, 0, &m), STUN_PARSE_ATTR_OVERRUN);

	/* A second attribute header at the very end, claiming a value. */
	msg[22] = 0;
	msg[23] = 4;
	msg[3] = 12;
	msg[28] = 0x80;
	msg[29] = 0x00;
	msg[30] = 0x00;
	msg[31] = 0x00;
	assert_int_equal(stun_parse(msg, 32, 0, &m), STUN_PARSE_OK);
	msg[31] = 1;
	assert_int_equal(stun_parse(msg, 32, 0, &m), STUN_PARSE_ATTR_OVERRUN);
}

static void rfc8489_14_7_fingerprint_checked(void **state)
{
	(void)state;
	struct stun_msg m;
	uint8_t msg[128];
	memcpy(msg, rfc5769_request, sizeof rfc5769_request);
	msg[sizeof rfc5769_request - 1] ^= 1;
	assert_int_equal(stun_parse(msg, sizeof rfc5769_request, 0, &m), STUN_PARSE_FINGERPRINT);
	/* Any change to covered bytes breaks it too. */
	memcpy(msg, rfc5769_request, sizeof rfc5769_request);
	msg[30] ^= 1;
	assert_int_equal(stun_parse(msg, sizeof rfc5769_request, 0, &m), STUN_PARSE_FINGERPRINT);
}

static void rfc8489_14_7_fingerprint_must_be_last(void **state)
{
	(void)state;
	struct stun_msg m;
	uint8_t msg[128];
	struct stun_builder b;
	static const uint8_t tid[12] = { 0 };
	stun_build_start(&b, msg, sizeof msg, 0x0001, STUN_MAGIC, tid);
	stun_put_fingerprint(&b);
	stun_put_attr(&b, STUN_A_SOFTWARE, "x", 1);
	size_t n = stun_build_finish(&b);
	assert_int_equal(stun_parse(msg, n, 0, &m), STUN_PARSE_FINGERPRINT);

	/* Twice: the first is not last. */
	stun_build_start(&b, msg, sizeof msg, 0x0001, STUN_MAGIC, tid);
	stun_put_fingerprint(&b);
	stun_put_fingerprint(&b);
	n = stun_build_finish(&b);
	assert_int_equal(stun_parse(msg, n, 0, &m), STUN_PARSE_FINGERPRINT);

	/* Wrong length. */
	stun_build_start(&b, msg, sizeof msg, 0x0001, STUN_MAGIC, tid);
	stun_put_u64(&b, STUN_A_FINGERPRINT, 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_parse(msg, n, 0, &m), STUN_PARSE_FINGERPRINT);
}

static void rfc8489_6_2_2_tcp_frame_length(void **state)
{
	(void)state;
	uint8_t msg[64];
	size_t n = binding_request(msg, sizeof msg, true, NULL, 0);
	for (size_t i = 0; i < STUN_HDR_LEN; i++)
		assert_int_equal(stun_frame_len(msg, i), 0);
	assert_int_equal(stun_frame_len(msg, STUN_HDR_LEN), (long)n);
	assert_int_equal(stun_frame_len((const uint8_t *)"G", 1), -1);
	assert_int_equal(stun_frame_len((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18), -1);
	msg[5] ^= 1;
	assert_int_equal(stun_frame_len(msg, 7), 0);
	assert_int_equal(stun_frame_len(msg, 8), -1);
	msg[5] ^= 1;
	msg[3] = 2;
	assert_int_equal(stun_frame_len(msg, 4), -1);
}

static void rfc8489_15_error_code_roundtrip(void **state)
{
	(void)state;
	uint8_t out[128];
	struct stun_builder b;
	struct stun_msg m;
	struct stun_attr a;
	int code;
	const char *reason;
	size_t rlen;
	stun_build_start(&b, out, sizeof out, 0x0111, STUN_MAGIC, rfc5769_tid);
	stun_put_error(&b, 420, "Unknown Attribute");
	size_t n = stun_build_finish(&b);
	assert_int_equal(stun_parse(out, n, 0, &m), STUN_PARSE_OK);
	assert_true(stun_attr_find(&m, STUN_A_ERROR_CODE, &a));
	assert_int_equal(stun_attr_error_code(&a, &code, &reason, &rlen), PL_OK);
	assert_int_equal(code, 420);
	assert_int_equal(rlen, 17);
	assert_memory_equal(reason, "Unknown Attribute", 17);
	/* Codes outside 300-699 are not representable. */
	stun_build_start(&b, out, sizeof out, 0x0111, STUN_MAGIC, rfc5769_tid);
	stun_put_error(&b, 200, "OK");
	assert_int_equal(stun_build_finish(&b), 0);
}

static void builder_overflow_is_reported(void **state)
{
	(void)state;
	uint8_t out[32];
	struct stun_builder b;
	stun_build_start(&b, out, sizeof out, 0x0001, STUN_MAGIC, rfc5769_tid);
	stun_put_attr(&b, STUN_A_SOFTWARE, "0123456789", 10);
	assert_int_equal(stun_build_finish(&b), 0);
	stun_build_start(&b, out, 10, 0x0001, STUN_MAGIC, rfc5769_tid);
	assert_int_equal(stun_build_finish(&b), 0);
}

/* Parse a server response and return its mapped address attributes. */
static void check_success(const uint8_t *resp, int n, const uint8_t *req,
			  const struct sockaddr *want, bool want_fp)
{
	struct stun_msg m;
	struct stun_attr a;
	struct sockaddr_storage ss;
	socklen_t len;
	assert_true(n > 0);
	assert_int_equal(stun_parse(resp, (size_t)n, 0, &m), STUN_PARSE_OK);
	assert_int_equal(m.type, 0x0101);
	assert_memory_equal(m.tid, req + 8, 12);
	assert_int_equal(m.fingerprint, want_fp);
	assert_true(stun_attr_find(&m, STUN_A_SOFTWARE, &a));
	assert_int_equal(a.len, strlen(STUN_SOFTWARE));
	for (int xor = 0; xor < 2; xor++) {
		assert_true(stun_attr_find(&m, xor ? STUN_A_XOR_MAPPED_ADDRESS
						   : STUN_A_MAPPED_ADDRESS, &a));
		assert_int_equal(stun_attr_addr(&m, &a, xor, &ss, &len), PL_OK);
		assert_int_equal(ss.ss_family, want->sa_family);
		if (want->sa_family == AF_INET) {
			const struct sockaddr_in *w = (const void *)want;
			assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, w->sin_port);
			assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr,
					 w->sin_addr.s_addr);
		} else {
			const struct sockaddr_in6 *w = (const void *)want;
			assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_port, w->sin6_port);
			assert_memory_equal(&((struct sockaddr_in6 *)&ss)->sin6_addr,
					    &w->sin6_addr, 16);
		}
	}
}

static void rfc8489_binding_request_xor_mapped_ipv4(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	size_t n = binding_request(req, sizeof req, false, NULL, 0);
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	check_success(resp, rn, req, (struct sockaddr *)&peer, false);
}

static void rfc8489_binding_request_xor_mapped_ipv6(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct sockaddr_in6 peer = v6("2001:db8::7", 5555);
	size_t n = binding_request(req, sizeof req, true, NULL, 0);
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	check_success(resp, rn, req, (struct sockaddr *)&peer, true);
}

static void rfc8489_binding_v4_mapped_peer_is_ipv4(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct sockaddr_in6 peer = v6("::ffff:192.0.2.9", 6000);
	struct sockaddr_in want = v4("192.0.2.9", 6000);
	size_t n = binding_request(req, sizeof req, false, NULL, 0);
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	check_success(resp, rn, req, (struct sockaddr *)&want, false);
}

static void rfc8489_14_7_fingerprint_only_when_asked(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct stun_msg m;
	struct stun_attr a;
	struct sockaddr_in peer = v4("10.0.0.1", 1);
	size_t n = binding_request(req, sizeof req, true, NULL, 0);
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	assert_true(rn > 0);
	assert_int_equal(stun_parse(resp, (size_t)rn, 0, &m), STUN_PARSE_OK);
	assert_true(m.fingerprint);
	/* FINGERPRINT is the last attribute. */
	size_t pos = 0;
	uint16_t last = 0;
	while (stun_attr_next(&m, &pos, &a))
		last = a.type;
	assert_int_equal(last, STUN_A_FINGERPRINT);
}

static void rfc8489_6_3_1_unknown_required_attribute_420(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct stun_msg m;
	struct stun_attr a;
	int code;
	const char *reason;
	size_t rlen;
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	/* 0x7ff0 and 0x0024 (PRIORITY: ICE, not ours) are required and
	 * unknown; 0xc001 is optional and must be ignored. */
	const uint16_t extra[] = { 0x7ff0, 0xc001, 0x0024 };
	size_t n = binding_request(req, sizeof req, true, extra, 3);
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	assert_true(rn > 0);
	assert_int_equal(stun_parse(resp, (size_t)rn, 0, &m), STUN_PARSE_OK);
	assert_int_equal(m.type, 0x0111);
	assert_true(m.fingerprint);
	assert_true(stun_attr_find(&m, STUN_A_ERROR_CODE, &a));
	assert_int_equal(stun_attr_error_code(&a, &code, &reason, &rlen), PL_OK);
	assert_int_equal(code, 420);
	assert_true(stun_attr_find(&m, STUN_A_UNKNOWN_ATTRIBUTES, &a));
	assert_int_equal(a.len, 4);
	assert_int_equal(a.val[0] << 8 | a.val[1], 0x7ff0);
	assert_int_equal(a.val[2] << 8 | a.val[3], 0x0024);
	assert_false(stun_attr_find(&m, STUN_A_XOR_MAPPED_ADDRESS, &a));
}

static void rfc8489_15_unknown_optional_attribute_ignored(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	const uint16_t extra[] = { 0xc001, STUN_A_USERNAME };
	size_t n = binding_request(req, sizeof req, false, extra, 2);
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	check_success(resp, rn, req, (struct sockaddr *)&peer, false);
}

static void rfc8489_14_5_attributes_after_integrity_ignored(void **state)
{
	(void)state;
	uint8_t req[128], resp[512];
	struct stun_builder b;
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	stun_build_start(&b, req, sizeof req, 0x0001, STUN_MAGIC, rfc5769_tid);
	stun_put_attr(&b, STUN_A_USERNAME, "evtj:h6vY", 9);
	stun_put_integrity(&b, key_ok, 22);
	stun_put_u32(&b, 0x7ff0, 0);
	size_t n = stun_build_finish(&b);
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	check_success(resp, rn, req, (struct sockaddr *)&peer, false);
}

static void rfc5780_change_request_refused_with_420(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct stun_msg m;
	struct stun_attr a;
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	struct stun_builder b;
	stun_build_start(&b, req, sizeof req, 0x0001, STUN_MAGIC, rfc5769_tid);
	stun_put_u32(&b, STUN_A_CHANGE_REQUEST, 0x06);  /* change IP and port */
	size_t n = stun_build_finish(&b);
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	assert_true(rn > 0);
	assert_int_equal(stun_parse(resp, (size_t)rn, 0, &m), STUN_PARSE_OK);
	assert_int_equal(m.type, 0x0111);
	assert_true(stun_attr_find(&m, STUN_A_UNKNOWN_ATTRIBUTES, &a));
	assert_int_equal(a.val[0] << 8 | a.val[1], STUN_A_CHANGE_REQUEST);
}

static void rfc8489_12_2_rfc3489_client_gets_mapped_address(void **state)
{
	(void)state;
	uint8_t resp[512];
	struct stun_msg m;
	struct stun_attr a;
	struct sockaddr_storage ss;
	socklen_t len;
	struct sockaddr_in peer = v4("127.0.0.1", 24744);
	int rn = stun_server_respond(rfc3489_request, sizeof rfc3489_request,
				     (struct sockaddr *)&peer, resp, sizeof resp);
	assert_true(rn > 0);
	assert_int_equal(stun_parse(resp, (size_t)rn, 0, &m), STUN_PARSE_COOKIE);
	assert_int_equal(resp[0] << 8 | resp[1], 0x0101);
	/* The whole 128-bit RFC 3489 transaction id comes back. */
	assert_memory_equal(resp + 4, rfc3489_request + 4, 16);
	/* Read it the way we read classic requests (type 0x0001): it holds
	 * MAPPED-ADDRESS only. */
	resp[0] = 0x00;
	assert_int_equal(stun_parse(resp, (size_t)rn, STUN_PARSE_CLASSIC, &m), STUN_PARSE_OK);
	assert_true(m.classic);
	assert_false(stun_attr_find(&m, STUN_A_XOR_MAPPED_ADDRESS, &a));
	assert_true(stun_attr_find(&m, STUN_A_MAPPED_ADDRESS, &a));
	assert_int_equal(stun_attr_addr(&m, &a, false, &ss, &len), PL_OK);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, peer.sin_port);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, peer.sin_addr.s_addr);
}

static void rfc8489_other_method_gets_400(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct stun_msg m;
	struct stun_attr a;
	int code;
	const char *reason;
	size_t rlen;
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	size_t n = binding_request(req, sizeof req, false, NULL, 0);
	req[1] = 0x03;  /* Allocate request */
	int rn = stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp);
	assert_true(rn > 0);
	assert_int_equal(stun_parse(resp, (size_t)rn, 0, &m), STUN_PARSE_OK);
	assert_int_equal(m.type, stun_type(STUN_ALLOCATE, STUN_ERROR));
	assert_true(stun_attr_find(&m, STUN_A_ERROR_CODE, &a));
	assert_int_equal(stun_attr_error_code(&a, &code, &reason, &rlen), PL_OK);
	assert_int_equal(code, 400);
}

static void rfc8489_indications_and_responses_unanswered(void **state)
{
	(void)state;
	uint8_t req[64], resp[512];
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	size_t n = binding_request(req, sizeof req, false, NULL, 0);
	req[1] = 0x11;  /* Binding indication */
	assert_int_equal(stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp), 0);
	req[0] = 0x01;
	req[1] = 0x01;  /* Binding success */
	assert_int_equal(stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp), 0);
	req[1] = 0x11;  /* Binding error */
	assert_int_equal(stun_server_respond(req, n, (struct sockaddr *)&peer, resp, sizeof resp), 0);
}

static void garbage_is_dropped(void **state)
{
	(void)state;
	uint8_t resp[512], junk[64];
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	const char *texts[] = { "", "hello", "GET / HTTP/1.1\r\n\r\n",
				"OPTIONS sip:x SIP/2.0\r\n\r\n" };
	for (size_t i = 0; i < PL_ARRAY_LEN(texts); i++)
		assert_int_equal(stun_server_respond((const uint8_t *)texts[i], strlen(texts[i]),
						     (struct sockaddr *)&peer, resp, sizeof resp), -1);
	/* A bad FINGERPRINT is garbage even when all else looks right. */
	size_t n = binding_request(junk, sizeof junk, true, NULL, 0);
	junk[n - 1] ^= 0x55;
	assert_int_equal(stun_server_respond(junk, n, (struct sockaddr *)&peer, resp, sizeof resp), -1);
	/* Zeroes: cookie wrong, type 0 is not a Binding request. */
	memset(junk, 0, sizeof junk);
	assert_int_equal(stun_server_respond(junk, 20, (struct sockaddr *)&peer, resp, sizeof resp), -1);
}

struct replies {
	int n;
	uint8_t last[512];
	size_t last_len;
};

static void collect(void *arg, const uint8_t *resp, size_t n)
{
	struct replies *r = arg;
	r->n++;
	assert_true(n <= sizeof r->last);
	memcpy(r->last, resp, n);
	r->last_len = n;
}

static void rfc8489_6_2_2_tcp_stream_split_at_every_byte(void **state)
{
	(void)state;
	uint8_t two[128];
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	size_t a = binding_request(two, sizeof two, true, NULL, 0);
	size_t b = binding_request(two + a, sizeof two - a, false,
				   (const uint16_t[]){ 0xc001 }, 1);
	size_t total = a + b;

	for (size_t cut1 = 0; cut1 <= total; cut1++) {
		for (size_t cut2 = cut1; cut2 <= total; cut2++) {
			struct stun_stream s = { 0 };
			struct replies r = { 0 };
			assert_int_equal(stun_stream_feed(&s, two, cut1, (struct sockaddr *)&peer,
							  collect, &r), PL_OK);
			assert_int_equal(stun_stream_feed(&s, two + cut1, cut2 - cut1,
							  (struct sockaddr *)&peer, collect, &r), PL_OK);
			assert_int_equal(stun_stream_feed(&s, two + cut2, total - cut2,
							  (struct sockaddr *)&peer, collect, &r), PL_OK);
			assert_int_equal(r.n, 2);
			check_success(r.last, (int)r.last_len, two + a, (struct sockaddr *)&peer, false);
			/* Nothing left over: an idle stream holds no memory. */
			assert_int_equal(buf_used(&s.in), 0);
			assert_null(s.in.data);
			stun_stream_free(&s);
		}
	}
}

static void rfc8489_6_2_2_tcp_garbage_closes(void **state)
{
	(void)state;
	uint8_t msg[128];
	struct sockaddr_in peer = v4("127.0.0.1", 40001);
	struct stun_stream s = { 0 };
	struct replies r = { 0 };
	const char *http = "GET / HTTP/1.1\r\n";
	assert_int_equal(stun_stream_feed(&s, (const uint8_t *)http, strlen(http),
					  (struct sockaddr *)&peer, collect, &r), PL_ERR);
	assert_int_equal(r.n, 0);
	stun_stream_free(&s);

	/* A good message, then a frame whose contents are not STUN (bad
	 * FINGERPRINT): the first is answered, then the stream is refused. */
	size_t a = binding_request(msg, sizeof msg, false, NULL, 0);
	size_t b = binding_request(msg + a, sizeof msg - a, true, NULL, 0);
	msg[a + b - 1] ^= 1;
	memset(&s, 0, sizeof s);
	for (size_t i = 0; i < a + b; i++) {
		int rc = stun_stream_feed(&s, msg + i, 1, (struct sockaddr *)&peer, collect, &r);
		assert_int_equal(rc, i == a + b - 1 ? PL_ERR : PL_OK);
	}
	assert_int_equal(r.n, 1);
	stun_stream_free(&s);

	/* A header cut short by the wrong cookie is refused at byte 8. */
	memset(&s, 0, sizeof s);
	r.n = 0;
	a = binding_request(msg, sizeof msg, false, NULL, 0);
	msg[6] ^= 1;
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(stun_stream_feed(&s, msg + i, 1, (struct sockaddr *)&peer,
						  collect, &r), PL_OK);
	assert_int_equal(stun_stream_feed(&s, msg + 7, 1, (struct sockaddr *)&peer, collect, &r),
			 PL_ERR);
	stun_stream_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc8489_5_message_type_encoding),
		cmocka_unit_test(rfc5769_2_1_sample_request_parses),
		cmocka_unit_test(rfc5769_2_1_sample_request_builds),
		cmocka_unit_test(rfc5769_2_2_ipv4_response_parses),
		cmocka_unit_test(rfc5769_2_2_ipv4_response_builds),
		cmocka_unit_test(rfc5769_2_3_ipv6_response_parses),
		cmocka_unit_test(rfc5769_2_3_ipv6_response_builds),
		cmocka_unit_test(rfc8489_6_3_rejects_short_and_type_bits),
		cmocka_unit_test(rfc8489_6_3_rejects_bad_length),
		cmocka_unit_test(rfc8489_6_3_rejects_wrong_cookie),
		cmocka_unit_test(rfc8489_14_attribute_overrun),
		cmocka_unit_test(rfc8489_14_7_fingerprint_checked),
		cmocka_unit_test(rfc8489_14_7_fingerprint_must_be_last),
		cmocka_unit_test(rfc8489_6_2_2_tcp_frame_length),
		cmocka_unit_test(rfc8489_15_error_code_roundtrip),
		cmocka_unit_test(builder_overflow_is_reported),
		cmocka_unit_test(rfc8489_binding_request_xor_mapped_ipv4),
		cmocka_unit_test(rfc8489_binding_request_xor_mapped_ipv6),
		cmocka_unit_test(rfc8489_binding_v4_mapped_peer_is_ipv4),
		cmocka_unit_test(rfc8489_14_7_fingerprint_only_when_asked),
		cmocka_unit_test(rfc8489_6_3_1_unknown_required_attribute_420),
		cmocka_unit_test(rfc8489_15_unknown_optional_attribute_ignored),
		cmocka_unit_test(rfc8489_14_5_attributes_after_integrity_ignored),
		cmocka_unit_test(rfc5780_change_request_refused_with_420),
		cmocka_unit_test(rfc8489_12_2_rfc3489_client_gets_mapped_address),
		cmocka_unit_test(rfc8489_other_method_gets_400),
		cmocka_unit_test(rfc8489_indications_and_responses_unanswered),
		cmocka_unit_test(garbage_is_dropped),
		cmocka_unit_test(rfc8489_6_2_2_tcp_stream_split_at_every_byte),
		cmocka_unit_test(rfc8489_6_2_2_tcp_garbage_closes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
