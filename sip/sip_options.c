/*
 * sip_options.c - what the server answers to a SIP request (RFC 3261 8.2).
 *
 * Stateless for now: every request is answered from itself alone, so a
 * retransmission gets the same response (the To-tag is derived from the
 * request, RFC 3261 8.2.7). Checks run in the order of RFC 3261 8.2: can we
 * route a response at all, is the request well formed, do we handle the
 * method, is the Request-URI ours.
 */
#include "sip/sip.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <osipparser2/osip_parser.h>

#include "core/cfg.h"
#include "core/log.h"
#include "core/pl.h"

/* The methods answered by something other than 501: exactly what Allow
 * says, so a client never tries what would only be refused. */
const char sip_allow[] = "OPTIONS";

#define SIP_MAX_LOCAL_ADDRS 64

static pthread_once_t sip_once = PTHREAD_ONCE_INIT;
static struct in6_addr local_addrs[SIP_MAX_LOCAL_ADDRS];
static size_t nlocal_addrs;
static uint8_t tag_secret[16];

/* libosip2 reports every parse failure through its trace: strangers' bad
 * packets belong at debug level, not on stderr. */
static void osip_trace_to_log(const char *fi, int li, osip_trace_level_t level,
			      const char *fmt, va_list ap)
{
	PL_UNUSED(level);
	if (log_threshold < LOG_DEBUG)
		return;
	char line[256];
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("sip: libosip2 %s:%d: %s", fi, li, line);
}

static void to_in6(const struct sockaddr *sa, struct in6_addr *a)
{
	memset(a, 0, sizeof *a);
	if (sa->sa_family == AF_INET6) {
		*a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
	} else if (sa->sa_family == AF_INET) {
		a->s6_addr[10] = a->s6_addr[11] = 0xff;
		memcpy(a->s6_addr + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static void sip_init_once(void)
{
	parser_init();
	osip_trace_initialize_func(END_TRACE_LEVEL, osip_trace_to_log);

	if (getrandom(tag_secret, sizeof tag_secret, 0) != (ssize_t)sizeof tag_secret) {
		/* Tags need to be unguessable-ish, not secret: time and pid do. */
		uint64_t x = pl_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
		memcpy(tag_secret, &x, sizeof x);
	}

	/* Interface addresses are read once: a Request-URI naming an address
	 * added later is treated as foreign until restart. */
	struct ifaddrs *ifa0;
	if (getifaddrs(&ifa0) != 0) {
		log_warning("sip: getifaddrs: cannot list local addresses");
		return;
	}
	for (struct ifaddrs *ifa = ifa0; ifa && nlocal_addrs < SIP_MAX_LOCAL_ADDRS;
	     ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || (ifa->ifa_addr->sa_family != AF_INET &&
				       ifa->ifa_addr->sa_family != AF_INET6))
			continue;
		to_in6(ifa->ifa_addr, &local_addrs[nlocal_addrs++]);
	}
	freeifaddrs(ifa0);
}

void sip_init(void)
{
	pthread_once(&sip_once, sip_init_once);
}

/* An IP literal (IPv6 with or without brackets) as an IPv6 address, IPv4
 * mapped; false for a domain name. */
static bool host_addr(const char *host, struct in6_addr *a)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof tmp)
		return false;
	memcpy(tmp, host, n);
	tmp[n] = '\0';

	struct in_addr v4;
	if (inet_pton(AF_INET, tmp, &v4) == 1) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = v4 };
		to_in6((const struct sockaddr *)&sin, a);
		return true;
	}
	return inet_pton(AF_INET6, tmp, a) == 1;
}

static bool addr_is_unspecified(const struct in6_addr *a)
{
	static const uint8_t v4any[16] = { [10] = 0xff, [11] = 0xff };
	return IN6_IS_ADDR_UNSPECIFIED(a) || memcmp(a, v4any, sizeof v4any) == 0;
}

static bool addr_is_local(const struct in6_addr *a)
{
	if (IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127))
		return true;
	for (size_t i = 0; i < nlocal_addrs; i++)
		if (memcmp(&local_addrs[i], a, sizeof *a) == 0)
			return true;
	return false;
}

bool sip_host_is_local(const char *host, const char *listen_ip)
{
	if (!host || !*host)
		return false;
	sip_init();
	if (cfg && cfg_is_local_host(host))
		return true;
	struct in6_addr a, l;
	if (!host_addr(host, &a) || addr_is_unspecified(&a))
		return false;
	if (addr_is_local(&a))
		return true;
	return listen_ip && host_addr(listen_ip, &l) && memcmp(&a, &l, sizeof a) == 0;
}

/* "1.2.3.4" for IPv4 peers even on a dual-stack socket. */
static void peer_ip(const struct sockaddr *sa, char *ip, size_t iplen, unsigned *port)
{
	struct in6_addr a;
	to_in6(sa, &a);
	if (IN6_IS_ADDR_V4MAPPED(&a))
		inet_ntop(AF_INET, a.s6_addr + 12, ip, (socklen_t)iplen);
	else
		inet_ntop(AF_INET6, &a, ip, (socklen_t)iplen);
	*port = sa->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
					  : ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

static void set_param(osip_via_t *via, const char *name, const char *value)
{
	osip_generic_param_t *p = NULL;
	if (osip_via_param_get_byname(via, (char *)name, &p) == OSIP_SUCCESS && p) {
		osip_free(p->gvalue);
		p->gvalue = osip_strdup(value);
		return;
	}
	osip_generic_param_add(&via->via_params, osip_strdup(name), osip_strdup(value));
}

/* RFC 3261 18.2.1 and RFC 3581 4: tell the client where its request came
 * from, and work out where a UDP response goes (18.2.2). */
static int via_received(osip_via_t *via, struct sip_origin *o)
{
	char ip[INET6_ADDRSTRLEN], port_s[8];
	unsigned port;
	peer_ip(o->peer, ip, sizeof ip, &port);

	osip_generic_param_t *rport = NULL;
	if (osip_via_param_get_byname(via, "rport", &rport) != OSIP_SUCCESS)
		rport = NULL;
	struct in6_addr sent_by, src;
	to_in6(o->peer, &src);
	if (rport || !host_addr(via->host, &sent_by) || memcmp(&sent_by, &src, sizeof src) != 0)
		set_param(via, "received", ip);
	if (rport && !rport->gvalue) {
		snprintf(port_s, sizeof port_s, "%u", port);
		rport->gvalue = osip_strdup(port_s);
	}

	memset(&o->reply_to, 0, sizeof o->reply_to);
	memcpy(&o->reply_to, o->peer, o->peer_len);
	o->reply_len = o->peer_len;
	if (o->tp != SIP_TP_UDP || rport)
		return PL_OK;
	/* No rport: the source address, at the port the client said it
	 * listens on. */
	unsigned long p = 5060;
	if (via->port) {
		char *end;
		p = strtoul(via->port, &end, 10);
		if (*end || p == 0 || p > 65535)
			return PL_ERR;
	}
	set_port(&o->reply_to, (unsigned)p);
	return PL_OK;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	/* The terminating NUL separates fields: "ab"+"c" != "a"+"bc". */
	return s ? fnv1a(h, s, strlen(s) + 1) : fnv1a(h, "", 1);
}

/* The same request (and its retransmissions) gets the same tag. */
static void make_tag(osip_message_t *m, osip_via_t *via, char tag[17])
{
	osip_generic_param_t *from_tag = NULL, *branch = NULL;
	uint64_t h = fnv1a(0xcbf29ce484222325ULL, tag_secret, sizeof tag_secret);
	if (m->from)
		osip_from_get_tag(m->from, &from_tag);
	osip_via_param_get_byname(via, "branch", &branch);
	h = fnv_str(h, m->call_id ? m->call_id->number : NULL);
	h = fnv_str(h, m->call_id ? m->call_id->host : NULL);
	h = fnv_str(h, from_tag ? from_tag->gvalue : NULL);
	h = fnv_str(h, branch ? branch->gvalue : NULL);
	h = fnv_str(h, m->cseq->number);
	h = fnv_str(h, m->cseq->method);
	snprintf(tag, 17, "%016llx", (unsigned long long)h);
}

/* One header from a libosip2 serializer; false if it failed. */
static bool put_header(struct buf *out, const char *name, const void *hdr,
		       int (*to_str)(const void *, char **))
{
	char *value = NULL;
	if (to_str(hdr, &value) != OSIP_SUCCESS || !value) {
		osip_free(value);
		return false;
	}
	buf_printf(out, "%s: %s\r\n", name, value);
	osip_free(value);
	return true;
}

/* libosip2's serializers take their own header type; these adapt them to
 * one signature so put_header() can own the string's lifetime. */
static int via_str(const void *h, char **d) { return osip_via_to_str(h, d); }
static int from_str(const void *h, char **d) { return osip_from_to_str(h, d); }
static int call_id_str(const void *h, char **d) { return osip_call_id_to_str(h, d); }
static int cseq_str(const void *h, char **d) { return osip_cseq_to_str(h, d); }

static enum sip_verdict build_response(osip_message_t *m, int code, const char *reason,
				       struct sip_origin *o, struct buf *out)
{
	osip_via_t *top = osip_list_get(&m->vias, 0);
	if (via_received(top, o) != PL_OK)
		return SIP_DROP;

	buf_printf(out, "SIP/2.0 %d %s\r\n", code, reason);
	for (int i = 0; i < osip_list_size(&m->vias); i++)
		if (!put_header(out, "Via", osip_list_get(&m->vias, i), via_str))
			goto fail;
	if (m->from && !put_header(out, "From", m->from, from_str))
		goto fail;
	if (m->to) {
		osip_generic_param_t *tag = NULL;
		if (osip_to_get_tag(m->to, &tag) != OSIP_SUCCESS || !tag) {
			char t[17];
			make_tag(m, top, t);
			osip_to_set_tag(m->to, osip_strdup(t));
		}
		if (!put_header(out, "To", m->to, from_str))
			goto fail;
	}
	if (m->call_id && !put_header(out, "Call-ID", m->call_id, call_id_str))
		goto fail;
	if (!put_header(out, "CSeq", m->cseq, cseq_str))
		goto fail;

	bool options_ok = code == 200 && strcmp(m->sip_method, "OPTIONS") == 0;
	if (options_ok || code == 405 || code == 501)
		buf_printf(out, "Allow: %s\r\n", sip_allow);
	if (options_ok) {
		/* RFC 3261 11.2: what a call with us could use. No option
		 * tags are supported yet, which an empty Supported says. */
		buf_append_str(out, "Accept: application/sdp\r\n"
				    "Accept-Encoding: identity\r\n"
				    "Accept-Language: en\r\n"
				    "Supported: \r\n");
	}
	buf_append_str(out, "Server: " SIP_SERVER "\r\nContent-Length: 0\r\n\r\n");
	return SIP_ANSWER;
fail:
	buf_reset(out);
	return SIP_DROP;
}

/* CSeq number: 32 bits unsigned, less than 2**31 (RFC 3261 8.1.1.5). */
static bool cseq_number_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 10 || strspn(s, "0123456789") != n)
		return false;
	return strtoull(s, NULL, 10) < 0x80000000ULL;
}

static bool uri_scheme_ok(const osip_uri_t *u)
{
	return u && u->scheme &&
	       (strcasecmp(u->scheme, "sip") == 0 || strcasecmp(u->scheme, "sips") == 0);
}

/* Status for a request that can be answered; 0 to stay silent. */
static int decide(const osip_message_t *m, bool parsed, int err_code,
		  const char **reason, const struct sip_origin *o)
{
	if (err_code) {
		return err_code;
	}
	if (!parsed) {
		*reason = "Bad Request (malformed header)";
		return 400;
	}
	if (!m->sip_version || strcmp(m->sip_version, "SIP/2.0") != 0) {
		*reason = "Version Not Supported";
		return 505;
	}
	if (!m->from) {
		*reason = "Missing From Header";
		return 400;
	}
	if (!m->to) {
		*reason = "Missing To Header";
		return 400;
	}
	if (!m->call_id) {
		*reason = "Missing Call-ID Header";
		return 400;
	}
	if (!cseq_number_ok(m->cseq->number)) {
		*reason = "Invalid CSeq Number";
		return 400;
	}
	if (strcmp(m->cseq->method, m->sip_method) != 0) {
		*reason = "CSeq Method Mismatch";
		return 400;
	}
	if (!uri_scheme_ok(m->req_uri)) {
		*reason = "Unsupported URI Scheme";
		return 416;
	}
	if (strcmp(m->sip_method, "OPTIONS") != 0) {
		*reason = "Not Implemented";
		return 501;
	}
	if (!sip_host_is_local(m->req_uri->host, o->listen_ip)) {
		/* Not ours, and we do not relay (yet). */
		*reason = "Not Found";
		return 404;
	}
	*reason = "OK";
	return 200;
}

enum sip_verdict sip_handle(const char *msg, size_t len, int err_code,
			    const char *err_reason, struct sip_origin *o, struct buf *out)
{
	sip_init();
	osip_message_t *m = NULL;
	if (len == 0 || osip_message_init(&m) != OSIP_SUCCESS)
		return SIP_DROP;
	bool parsed = osip_message_parse(m, msg, len) == OSIP_SUCCESS;
	enum sip_verdict v = SIP_DROP;

	/* Responses are for client transactions, and we have none yet. */
	if (MSG_IS_RESPONSE(m)) {
		v = parsed ? SIP_IGNORE : SIP_DROP;
		goto done;
	}
	/* Without a top Via and a CSeq no client could match a response to
	 * its request (RFC 3261 17.1.3): stay silent. */
	osip_via_t *via = osip_list_get(&m->vias, 0);
	if (!m->sip_method || !via || !via->host || !via->protocol || !m->cseq ||
	    !m->cseq->number || !m->cseq->method)
		goto done;
	/* An ACK is never answered (RFC 3261 17.2.1). */
	if (strcmp(m->sip_method, "ACK") == 0) {
		v = SIP_IGNORE;
		goto done;
	}

	const char *reason = err_reason ? err_reason : "Bad Request";
	int code = decide(m, parsed, err_code, &reason, o);
	v = build_response(m, code, reason, o, out);
	if (code >= 400 && code != 404 && code != 501)
		log_debug("sip: %s %s: %d %s", m->sip_method,
			  m->call_id && m->call_id->number ? m->call_id->number : "-",
			  code, reason);
done:
	osip_message_free(m);
	return v;
}
