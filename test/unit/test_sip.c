/*
 * test_sip.c - SIP request handling (RFC 3261, RFC 3581) and stream framing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/pl.h"
#include "sip/sip.h"

static char *test_hosts[] = { "localhost", "example.test" };
static struct cfg test_cfg = { .hosts = test_hosts, .nhosts = 2 };

struct result {
	enum sip_verdict v;
	char text[4096];
	struct sip_origin o;
};

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static struct sockaddr_in default_peer;

static void handle_ex(struct result *r, const char *msg, enum sip_transport tp,
		      const struct sockaddr *peer, socklen_t plen, const char *listen_ip,
		      int err_code, const char *err_reason)
{
	struct buf out = { 0 };
	memset(r, 0, sizeof *r);
	r->o.tp = tp;
	r->o.peer = peer;
	r->o.peer_len = plen;
	r->o.listen_ip = listen_ip;
	r->v = sip_handle(msg, strlen(msg), err_code, err_reason, &r->o, &out);
	assert_true(buf_used(&out) < sizeof r->text);
	if (buf_used(&out))
		memcpy(r->text, buf_head(&out), buf_used(&out));
	r->text[buf_used(&out)] = '\0';
	if (r->v != SIP_ANSWER)
		assert_int_equal(buf_used(&out), 0);
	buf_free(&out);
}

static void handle(struct result *r, const char *msg)
{
	default_peer = loopback(5061);
	handle_ex(r, msg, SIP_TP_UDP, (struct sockaddr *)&default_peer, sizeof default_peer,
		  NULL, 0, NULL);
}

/* The value of the n-th header `name` in a response, or NULL. */
static const char *header(const struct result *r, const char *name, int nth, char *out,
			  size_t outlen)
{
	char key[64];
	snprintf(key, sizeof key, "\r\n%s: ", name);
	const char *p = r->text;
	for (int i = 0; i <= nth; i++) {
		p = strstr(p, key);
		if (!p)
			return NULL;
		p += strlen(key);
	}
	const char *e = strstr(p, "\r\n");
	assert_non_null(e);
	size_t n = (size_t)(e - p);
	assert_true(n < outlen);
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static void assert_status(const struct result *r, const char *line)
{
	assert_int_equal(r->v, SIP_ANSWER);
	size_t n = strlen(line);
	if (strncmp(r->text, line, n) != 0 || strncmp(r->text + n, "\r\n", 2) != 0)
		fail_msg("expected status line '%s', got:\n%s", line, r->text);
	/* Every response ends its headers and has no body. */
	size_t tl = strlen(r->text);
	assert_true(tl > 4);
	assert_string_equal(r->text + tl - 4, "\r\n\r\n");
	assert_non_null(strstr(r->text, "\r\nContent-Length: 0\r\n"));
}

#define OPTIONS_HDRS(uri, via) \
	"OPTIONS " uri " SIP/2.0\r\n" \
	"Via: " via "\r\n" \
	"Max-Forwards: 70\r\n" \
	"From: \"Bob\" <sip:bob@example.org>;tag=from1\r\n" \
	"To: <" uri ">\r\n" \
	"Call-ID: c1@client.example.org\r\n" \
	"CSeq: 7 OPTIONS\r\n" \
	"Accept: application/sdp\r\n"

#define OPTIONS(uri) \
	OPTIONS_HDRS(uri, "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1") \
	"Content-Length: 0\r\n\r\n"

static void rfc3261_11_2_options_for_our_host_200(void **state)
{
	(void)state;
	struct result r;
	char v[512];
	handle(&r, OPTIONS("sip:example.test"));
	assert_status(&r, "SIP/2.0 200 OK");
	assert_string_equal(header(&r, "Allow", 0, v, sizeof v), sip_allow);
	assert_string_equal(header(&r, "Accept", 0, v, sizeof v), "application/sdp");
	assert_non_null(header(&r, "Supported", 0, v, sizeof v));
	assert_string_equal(header(&r, "Server", 0, v, sizeof v), "parley/0.1.0");
	/* RFC 3261 8.2.6.2: From, Call-ID, CSeq and Via copied. */
	assert_string_equal(header(&r, "From", 0, v, sizeof v),
			    "\"Bob\" <sip:bob@example.org>;tag=from1");
	assert_string_equal(header(&r, "Call-ID", 0, v, sizeof v), "c1@client.example.org");
	assert_string_equal(header(&r, "CSeq", 0, v, sizeof v), "7 OPTIONS");
	assert_string_equal(header(&r, "Via", 0, v, sizeof v),
			    "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1");
	/* To gets our tag. */
	assert_non_null(header(&r, "To", 0, v, sizeof v));
	assert_true(strncmp(v, "<sip:example.test>;tag=", 23) == 0);
	assert_true(strlen(v) > 23);
	/* Sent-by matches the source and there is no rport: the response goes
	 * to the source address, sent-by port. */
	struct sockaddr_in *to = (struct sockaddr_in *)&r.o.reply_to;
	assert_int_equal(to->sin_port, htons(5061));
	assert_int_equal(to->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}

static void rfc3261_11_options_any_user_part_and_case(void **state)
{
	(void)state;
	struct result r;
	handle(&r, OPTIONS("sip:alice@localhost"));
	assert_status(&r, "SIP/2.0 200 OK");
	handle(&r, OPTIONS("sip:anyone@EXAMPLE.TEST;transport=udp"));
	assert_status(&r, "SIP/2.0 200 OK");
	handle(&r, OPTIONS("sips:localhost:5061"));
	assert_status(&r, "SIP/2.0 200 OK");
}

static void rfc3261_11_options_for_our_addresses_200(void **state)
{
	(void)state;
	struct result r;
	handle(&r, OPTIONS("sip:127.0.0.1"));
	assert_status(&r, "SIP/2.0 200 OK");
	handle(&r, OPTIONS("sip:127.0.0.2:5060"));
	assert_status(&r, "SIP/2.0 200 OK");
	handle(&r, OPTIONS("sip:user@[::1]:5060"));
	assert_status(&r, "SIP/2.0 200 OK");

	/* The listener's own address counts even if no interface has it. */
	struct sockaddr_in peer = loopback(5061);
	handle_ex(&r, OPTIONS("sip:192.0.2.55"), SIP_TP_UDP, (struct sockaddr *)&peer,
		  sizeof peer, "192.0.2.55", 0, NULL);
	assert_status(&r, "SIP/2.0 200 OK");
	handle_ex(&r, OPTIONS("sip:192.0.2.55"), SIP_TP_UDP, (struct sockaddr *)&peer,
		  sizeof peer, "::", 0, NULL);
	assert_status(&r, "SIP/2.0 404 Not Found");
}

static void rfc3261_host_is_local(void **state)
{
	(void)state;
	assert_true(sip_host_is_local("localhost", NULL));
	assert_true(sip_host_is_local("127.0.0.1", NULL));
	assert_true(sip_host_is_local("::1", NULL));
	assert_true(sip_host_is_local("[::1]", NULL));
	assert_true(sip_host_is_local("::ffff:127.0.0.1", NULL));
	assert_true(sip_host_is_local("198.51.100.7", "198.51.100.7"));
	assert_false(sip_host_is_local("198.51.100.7", "0.0.0.0"));
	assert_false(sip_host_is_local("0.0.0.0", "0.0.0.0"));
	assert_false(sip_host_is_local("example.org", NULL));
	assert_false(sip_host_is_local("203.0.113.1", NULL));
	assert_false(sip_host_is_local("", NULL));
	assert_false(sip_host_is_local(NULL, NULL));
	assert_false(sip_host_is_local("[::1", NULL));
}

static void rfc3261_foreign_domain_options_404(void **state)
{
	(void)state;
	struct result r;
	char v[512];
	handle(&r, OPTIONS("sip:bob@example.org"));
	assert_status(&r, "SIP/2.0 404 Not Found");
	assert_string_equal(header(&r, "CSeq", 0, v, sizeof v), "7 OPTIONS");
	assert_null(header(&r, "Allow", 0, v, sizeof v));
	handle(&r, OPTIONS("sip:203.0.113.9"));
	assert_status(&r, "SIP/2.0 404 Not Found");
}

static void rfc3261_8_2_1_other_methods_501_with_allow(void **state)
{
	(void)state;
	struct result r;
	char v[512];
	const char *methods[] = { "INVITE", "REGISTER", "MESSAGE", "SUBSCRIBE", "FOO" };
	for (size_t i = 0; i < PL_ARRAY_LEN(methods); i++) {
		char msg[1024];
		snprintf(msg, sizeof msg,
			 "%s sip:alice@localhost SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2\r\n"
			 "From: <sip:bob@example.org>;tag=a\r\n"
			 "To: <sip:alice@localhost>\r\n"
			 "Call-ID: m%zu\r\n"
			 "CSeq: 1 %s\r\n"
			 "Content-Length: 0\r\n\r\n", methods[i], i, methods[i]);
		handle(&r, msg);
		assert_status(&r, "SIP/2.0 501 Not Implemented");
		assert_string_equal(header(&r, "Allow", 0, v, sizeof v), sip_allow);
	}
}

static void rfc3261_17_2_1_ack_is_never_answered(void **state)
{
	(void)state;
	struct result r;
	handle(&r, "ACK sip:alice@localhost SIP/2.0\r\n"
		   "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-3\r\n"
		   "From: <sip:bob@example.org>;tag=a\r\n"
		   "To: <sip:alice@localhost>;tag=b\r\n"
		   "Call-ID: ack1\r\n"
		   "CSeq: 1 ACK\r\n\r\n");
	assert_int_equal(r.v, SIP_IGNORE);
	/* Even a malformed one. */
	handle(&r, "ACK sip:alice@localhost SIP/2.0\r\n"
		   "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-3\r\n"
		   "CSeq: 1 INVITE\r\n\r\n");
	assert_int_equal(r.v, SIP_IGNORE);
}

static void rfc3261_responses_are_ignored(void **state)
{
	(void)state;
	struct result r;
	handle(&r, "SIP/2.0 200 OK\r\n"
		   "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4\r\n"
		   "From: <sip:bob@example.org>;tag=a\r\n"
		   "To: <sip:alice@localhost>;tag=b\r\n"
		   "Call-ID: r1\r\n"
		   "CSeq: 1 OPTIONS\r\n"
		   "Content-Length: 0\r\n\r\n");
	assert_int_equal(r.v, SIP_IGNORE);
}

static void rfc3261_8_2_6_2_to_tag_stable_for_retransmissions(void **state)
{
	(void)state;
	struct result r;
	char a[512], b[512], c[512];
	handle(&r, OPTIONS("sip:localhost"));
	header(&r, "To", 0, a, sizeof a);
	handle(&r, OPTIONS("sip:localhost"));
	header(&r, "To", 0, b, sizeof b);
	assert_string_equal(a, b);
	handle(&r, OPTIONS_HDRS("sip:localhost", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-other")
		   "Content-Length: 0\r\n\r\n");
	header(&r, "To", 0, c, sizeof c);
	assert_string_not_equal(a, c);

	/* A To that already has a tag keeps it, and only it. */
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n"
		   "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-5\r\n"
		   "From: <sip:bob@example.org>;tag=a\r\n"
		   "To: <sip:localhost>;tag=existing\r\n"
		   "Call-ID: t1\r\n"
		   "CSeq: 2 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 200 OK");
	assert_string_equal(header(&r, "To", 0, a, sizeof a), "<sip:localhost>;tag=existing");
}

static void rfc3261_18_2_1_received_when_sent_by_differs(void **state)
{
	(void)state;
	struct result r;
	char v[512];
	struct sockaddr_in peer = loopback(5062);
	handle_ex(&r, OPTIONS_HDRS("sip:localhost", "SIP/2.0/UDP client.invalid:5070;branch=z9hG4bK-6")
		  "Content-Length: 0\r\n\r\n",
		  SIP_TP_UDP, (struct sockaddr *)&peer, sizeof peer, NULL, 0, NULL);
	assert_status(&r, "SIP/2.0 200 OK");
	assert_string_equal(header(&r, "Via", 0, v, sizeof v),
			    "SIP/2.0/UDP client.invalid:5070;branch=z9hG4bK-6;received=127.0.0.1");
	/* 18.2.2: the received address, the sent-by port. */
	assert_int_equal(((struct sockaddr_in *)&r.o.reply_to)->sin_port, htons(5070));

	/* No port in sent-by: 5060. */
	handle_ex(&r, OPTIONS_HDRS("sip:localhost", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-7")
		  "Content-Length: 0\r\n\r\n",
		  SIP_TP_UDP, (struct sockaddr *)&peer, sizeof peer, NULL, 0, NULL);
	assert_status(&r, "SIP/2.0 200 OK");
	assert_string_equal(header(&r, "Via", 0, v, sizeof v),
			    "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-7");
	assert_int_equal(((struct sockaddr_in *)&r.o.reply_to)->sin_port, htons(5060));
}

static void rfc3581_4_rport_filled_and_used(void **state)
{
	(void)state;
	struct result r;
	char v[512];
	struct sockaddr_in peer = loopback(40000);
	handle_ex(&r, OPTIONS_HDRS("sip:localhost", "SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK-8")
		  "Content-Length: 0\r\n\r\n",
		  SIP_TP_UDP, (struct sockaddr *)&peer, sizeof peer, NULL, 0, NULL);
	assert_status(&r, "SIP/2.0 200 OK");
	assert_string_equal(header(&r, "Via", 0, v, sizeof v),
			    "SIP/2.0/UDP 127.0.0.1:5070;rport=40000;branch=z9hG4bK-8;received=127.0.0.1");
	assert_int_equal(((struct sockaddr_in *)&r.o.reply_to)->sin_port, htons(40000));

	/* IPv6 source. */
	struct sockaddr_in6 p6 = { .sin6_family = AF_INET6, .sin6_port = htons(40001) };
	p6.sin6_addr = in6addr_loopback;
	handle_ex(&r, OPTIONS_HDRS("sip:localhost", "SIP/2.0/TCP [::1]:5070;rport;branch=z9hG4bK-9")
		  "Content-Length: 0\r\n\r\n",
		  SIP_TP_TCP, (struct sockaddr *)&p6, sizeof p6, NULL, 0, NULL);
	assert_status(&r, "SIP/2.0 200 OK");
	assert_string_equal(header(&r, "Via", 0, v, sizeof v),
			    "SIP/2.0/TCP [::1]:5070;rport=40001;branch=z9hG4bK-9;received=::1");
}

static void rfc3261_8_2_6_2_all_vias_copied_in_order(void **state)
{
	(void)state;
	struct result r;
	char v[512];
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n"
		   "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-top\r\n"
		   "Via: SIP/2.0/UDP proxy.example.org;branch=z9hG4bK-mid,"
		   " SIP/2.0/TCP 192.0.2.1:5080;branch=z9hG4bK-low\r\n"
		   "From: <sip:bob@example.org>;tag=a\r\n"
		   "To: <sip:localhost>\r\n"
		   "Call-ID: v1\r\n"
		   "CSeq: 3 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 200 OK");
	assert_string_equal(header(&r, "Via", 0, v, sizeof v),
			    "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-top");
	assert_string_equal(header(&r, "Via", 1, v, sizeof v),
			    "SIP/2.0/UDP proxy.example.org;branch=z9hG4bK-mid");
	assert_string_equal(header(&r, "Via", 2, v, sizeof v),
			    "SIP/2.0/TCP 192.0.2.1:5080;branch=z9hG4bK-low");
	assert_null(header(&r, "Via", 3, v, sizeof v));
}

#define BASE_VIA "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-bad\r\n"
#define BASE_FROM "From: <sip:bob@example.org>;tag=a\r\n"
#define BASE_TO "To: <sip:localhost>\r\n"
#define BASE_CALLID "Call-ID: bad1\r\n"

static void rfc3261_8_2_400_missing_mandatory_headers(void **state)
{
	(void)state;
	struct result r;
	char v[512];
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA BASE_TO BASE_CALLID
		   "CSeq: 1 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 400 Missing From Header");
	assert_null(header(&r, "From", 0, v, sizeof v));
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_CALLID
		   "CSeq: 1 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 400 Missing To Header");
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_TO
		   "CSeq: 1 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 400 Missing Call-ID Header");
	assert_string_equal(header(&r, "CSeq", 0, v, sizeof v), "1 OPTIONS");
}

static void rfc3261_8_2_400_bad_cseq(void **state)
{
	(void)state;
	struct result r;
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_TO BASE_CALLID
		   "CSeq: 1 INVITE\r\n\r\n");
	assert_status(&r, "SIP/2.0 400 CSeq Method Mismatch");
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_TO BASE_CALLID
		   "CSeq: 1x2 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 400 Invalid CSeq Number");
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_TO BASE_CALLID
		   "CSeq: 2147483648 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 400 Invalid CSeq Number");
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_TO BASE_CALLID
		   "CSeq: 2147483647 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 200 OK");
}

static void rfc3261_8_2_400_malformed_header(void **state)
{
	(void)state;
	struct result r;
	/* Routable (Via and CSeq come first), but a later header is garbage. */
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA "CSeq: 1 OPTIONS\r\n"
		   BASE_FROM "To: <<<garbage\r\n" BASE_CALLID "\r\n");
	assert_status(&r, "SIP/2.0 400 Bad Request (malformed header)");
}

static void rfc3261_8_2_unanswerable_is_dropped(void **state)
{
	(void)state;
	struct result r;
	/* No Via: nowhere to send a response. */
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_FROM BASE_TO BASE_CALLID
		   "CSeq: 1 OPTIONS\r\n\r\n");
	assert_int_equal(r.v, SIP_DROP);
	/* No CSeq: no client could match a response. */
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_TO BASE_CALLID "\r\n");
	assert_int_equal(r.v, SIP_DROP);
	/* Unparseable Via. */
	handle(&r, "OPTIONS sip:localhost SIP/2.0\r\nVia: garbage\r\n" BASE_FROM BASE_TO
		   BASE_CALLID "CSeq: 1 OPTIONS\r\n\r\n");
	assert_int_equal(r.v, SIP_DROP);
	const char *junk[] = { "", "hello world\r\n\r\n", "\x01\x02\x03\r\n\r\n",
			       "OPTIONS\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n" };
	for (size_t i = 0; i < PL_ARRAY_LEN(junk); i++) {
		handle(&r, junk[i]);
		assert_int_equal(r.v, SIP_DROP);
	}
}

static void rfc3261_8_2_2_1_non_sip_uri_416(void **state)
{
	(void)state;
	struct result r;
	handle(&r, "OPTIONS tel:+15551234 SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_TO BASE_CALLID
		   "CSeq: 1 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 416 Unsupported URI Scheme");
}

static void rfc3261_8_2_version_not_supported_505(void **state)
{
	(void)state;
	struct result r;
	handle(&r, "OPTIONS sip:localhost SIP/3.0\r\n" BASE_VIA BASE_FROM BASE_TO BASE_CALLID
		   "CSeq: 1 OPTIONS\r\n\r\n");
	assert_status(&r, "SIP/2.0 505 Version Not Supported");
}

static void rfc3261_18_3_transport_error_answered(void **state)
{
	(void)state;
	struct result r;
	struct sockaddr_in peer = loopback(5061);
	handle_ex(&r, OPTIONS_HDRS("sip:localhost", "SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK-10")
		  "\r\n", SIP_TP_TCP, (struct sockaddr *)&peer, sizeof peer, NULL, 400,
		  "Missing Content-Length");
	assert_status(&r, "SIP/2.0 400 Missing Content-Length");
}

static void rfc3261_18_3_content_length_header(void **state)
{
	(void)state;
	size_t n = 99;
#define CL(s, rc) do { const char *h_ = "INVITE sip:x SIP/2.0\r\n" s "\r\n\r\n"; \
		assert_int_equal(sip_content_length(h_, strlen(h_), &n), rc); } while (0)
	CL("Content-Length: 12", PL_OK);
	assert_int_equal(n, 12);
	CL("l: 5", PL_OK);
	assert_int_equal(n, 5);
	CL("content-length  :   0   ", PL_OK);
	assert_int_equal(n, 0);
	CL("Via: x\r\nCONTENT-LENGTH:7\r\nTo: y", PL_OK);
	assert_int_equal(n, 7);
	CL("Content-Length: 3\r\nl: 3", PL_OK);
	assert_int_equal(n, 3);
	CL("Via: x", PL_DECLINED);
	CL("X-Content-Length: 3", PL_DECLINED);
	CL("Content-Length-X: 3", PL_DECLINED);
	CL("Content-Length: 3\r\nContent-Length: 4", PL_ERR);
	CL("Content-Length: abc", PL_ERR);
	CL("Content-Length: ", PL_ERR);
	CL("Content-Length: -1", PL_ERR);
	CL("Content-Length: 1 2", PL_ERR);
	CL("Content-Length: 99999999999999999999", PL_ERR);
	/* The start line is never a header. */
	const char *h = "l: 5 SIP/2.0\r\n\r\n";
	assert_int_equal(sip_content_length(h, strlen(h), &n), PL_DECLINED);
#undef CL
}

struct framed {
	int n;
	char msgs[4][1024];
	size_t lens[4];
	int err_code;
	const char *err_reason;
	size_t err_len;
};

static int on_msg(void *arg, const char *msg, size_t len, int code, const char *why)
{
	struct framed *f = arg;
	if (code) {
		f->err_code = code;
		f->err_reason = why;
		f->err_len = len;
		return PL_OK;
	}
	assert_true(f->n < 4);
	assert_true(len < sizeof f->msgs[0]);
	memcpy(f->msgs[f->n], msg, len);
	f->lens[f->n++] = len;
	return PL_OK;
}

#define MSG1 OPTIONS("sip:localhost")
#define MSG2 "MESSAGE sip:alice@localhost SIP/2.0\r\n" BASE_VIA BASE_FROM BASE_TO \
	BASE_CALLID "CSeq: 2 MESSAGE\r\nContent-Type: text/plain\r\nl: 14\r\n\r\n" \
	"hello\r\n\r\nthere"

static void rfc3261_18_3_stream_split_at_every_byte(void **state)
{
	(void)state;
	/* Keepalive CRLFs before, between and after the messages (RFC 5626
	 * 4.4.1 pings, RFC 3261 7.5). */
	const char *stream = "\r\n\r\n" MSG1 "\r\n" MSG2 "\r\n\r\n";
	size_t total = strlen(stream);
	for (size_t cut1 = 0; cut1 <= total; cut1++) {
		for (size_t cut2 = cut1; cut2 <= total; cut2 += 7) {
			struct sip_stream s = { 0 };
			struct framed f = { 0 };
			const uint8_t *p = (const uint8_t *)stream;
			assert_int_equal(sip_stream_feed(&s, p, cut1, on_msg, &f), PL_OK);
			assert_int_equal(sip_stream_feed(&s, p + cut1, cut2 - cut1, on_msg, &f), PL_OK);
			assert_int_equal(sip_stream_feed(&s, p + cut2, total - cut2, on_msg, &f), PL_OK);
			assert_int_equal(f.err_code, 0);
			assert_int_equal(f.n, 2);
			assert_int_equal(f.lens[0], strlen(MSG1));
			assert_memory_equal(f.msgs[0], MSG1, strlen(MSG1));
			assert_int_equal(f.lens[1], strlen(MSG2));
			assert_memory_equal(f.msgs[1], MSG2, strlen(MSG2));
			assert_int_equal(buf_used(&s.in), 0);
			assert_null(s.in.data);
			sip_stream_free(&s);
		}
	}
	/* And one byte at a time. */
	struct sip_stream s = { 0 };
	struct framed f = { 0 };
	for (size_t i = 0; i < total; i++)
		assert_int_equal(sip_stream_feed(&s, (const uint8_t *)stream + i, 1, on_msg, &f), PL_OK);
	assert_int_equal(f.n, 2);
	sip_stream_free(&s);
}

static void rfc5626_4_4_1_crlf_keepalives_ignored(void **state)
{
	(void)state;
	struct sip_stream s = { 0 };
	struct framed f = { 0 };
	for (int i = 0; i < 100; i++)
		assert_int_equal(sip_stream_feed(&s, (const uint8_t *)"\r\n\r\n", 4, on_msg, &f), PL_OK);
	assert_int_equal(sip_stream_feed(&s, (const uint8_t *)"\r\n", 2, on_msg, &f), PL_OK);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.err_code, 0);
	assert_int_equal(buf_used(&s.in), 0);
	sip_stream_free(&s);
}

static void rfc3261_18_3_stream_without_content_length_400(void **state)
{
	(void)state;
	const char *msg = OPTIONS_HDRS("sip:localhost", "SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK-11") "\r\n";
	struct sip_stream s = { 0 };
	struct framed f = { 0 };
	assert_int_equal(sip_stream_feed(&s, (const uint8_t *)msg, strlen(msg), on_msg, &f), PL_ERR);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.err_code, 400);
	assert_string_equal(f.err_reason, "Missing Content-Length");
	assert_int_equal(f.err_len, strlen(msg));
	sip_stream_free(&s);

	/* Bad value, delivered in pieces. */
	const char *bad = "OPTIONS sip:localhost SIP/2.0\r\nContent-Length: x\r\n\r\n";
	memset(&f, 0, sizeof f);
	memset(&s, 0, sizeof s);
	int rc = PL_OK;
	for (size_t i = 0; i < strlen(bad) && rc == PL_OK; i++)
		rc = sip_stream_feed(&s, (const uint8_t *)bad + i, 1, on_msg, &f);
	assert_int_equal(rc, PL_ERR);
	assert_int_equal(f.err_code, 400);
	assert_string_equal(f.err_reason, "Invalid Content-Length");
	sip_stream_free(&s);
}

static void rfc3261_18_3_stream_size_bound(void **state)
{
	(void)state;
	struct sip_stream s = { 0 };
	struct framed f = { 0 };
	const char *big = "MESSAGE sip:localhost SIP/2.0\r\nContent-Length: 70000\r\n\r\n";
	assert_int_equal(sip_stream_feed(&s, (const uint8_t *)big, strlen(big), on_msg, &f), PL_ERR);
	assert_int_equal(f.err_code, 513);
	assert_int_equal(f.err_len, strlen(big));
	sip_stream_free(&s);

	/* Headers that never end: refused once the bound is reached, with
	 * nothing to answer, however the bytes are cut. */
	size_t n = SIP_MAX_MSG + 10;
	char *flood = malloc(n);
	assert_non_null(flood);
	memcpy(flood, "OPTIONS sip:localhost SIP/2.0\r\nX: ", 34);
	memset(flood + 34, 'a', n - 34);
	for (size_t chunk = 1000; chunk <= n; chunk *= 8) {
		memset(&f, 0, sizeof f);
		memset(&s, 0, sizeof s);
		int rc = PL_OK;
		size_t fed = 0;
		while (fed < n && rc == PL_OK) {
			size_t k = n - fed < chunk ? n - fed : chunk;
			rc = sip_stream_feed(&s, (const uint8_t *)flood + fed, k, on_msg, &f);
			fed += k;
		}
		assert_int_equal(rc, PL_ERR);
		assert_true(fed >= SIP_MAX_MSG);
		assert_int_equal(f.err_code, 513);
		assert_int_equal(f.err_len, 0);
		sip_stream_free(&s);
	}
	free(flood);
}

static int stop_at_first(void *arg, const char *msg, size_t len, int code, const char *why)
{
	on_msg(arg, msg, len, code, why);
	return PL_ERR;
}

static void stream_stops_when_handler_refuses(void **state)
{
	(void)state;
	const char *two = MSG1 MSG1;
	struct sip_stream s = { 0 };
	struct framed f = { 0 };
	assert_int_equal(sip_stream_feed(&s, (const uint8_t *)two, strlen(two), stop_at_first, &f),
			 PL_ERR);
	assert_int_equal(f.n, 1);
	sip_stream_free(&s);
}

static int setup(void **state)
{
	(void)state;
	cfg_set_current(&test_cfg);
	sip_init();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc3261_11_2_options_for_our_host_200),
		cmocka_unit_test(rfc3261_11_options_any_user_part_and_case),
		cmocka_unit_test(rfc3261_11_options_for_our_addresses_200),
		cmocka_unit_test(rfc3261_host_is_local),
		cmocka_unit_test(rfc3261_foreign_domain_options_404),
		cmocka_unit_test(rfc3261_8_2_1_other_methods_501_with_allow),
		cmocka_unit_test(rfc3261_17_2_1_ack_is_never_answered),
		cmocka_unit_test(rfc3261_responses_are_ignored),
		cmocka_unit_test(rfc3261_8_2_6_2_to_tag_stable_for_retransmissions),
		cmocka_unit_test(rfc3261_18_2_1_received_when_sent_by_differs),
		cmocka_unit_test(rfc3581_4_rport_filled_and_used),
		cmocka_unit_test(rfc3261_8_2_6_2_all_vias_copied_in_order),
		cmocka_unit_test(rfc3261_8_2_400_missing_mandatory_headers),
		cmocka_unit_test(rfc3261_8_2_400_bad_cseq),
		cmocka_unit_test(rfc3261_8_2_400_malformed_header),
		cmocka_unit_test(rfc3261_8_2_unanswerable_is_dropped),
		cmocka_unit_test(rfc3261_8_2_2_1_non_sip_uri_416),
		cmocka_unit_test(rfc3261_8_2_version_not_supported_505),
		cmocka_unit_test(rfc3261_18_3_transport_error_answered),
		cmocka_unit_test(rfc3261_18_3_content_length_header),
		cmocka_unit_test(rfc3261_18_3_stream_split_at_every_byte),
		cmocka_unit_test(rfc5626_4_4_1_crlf_keepalives_ignored),
		cmocka_unit_test(rfc3261_18_3_stream_without_content_length_400),
		cmocka_unit_test(rfc3261_18_3_stream_size_bound),
		cmocka_unit_test(stream_stops_when_handler_refuses),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
