/*
 * stun.h - STUN messages (RFC 8489) and the `stun` listen module.
 *
 * The codec is pure: stun_parse() validates a message in place (it keeps
 * pointers into the caller's bytes, copies nothing, allocates nothing) and a
 * stun_builder writes a message into a caller-provided buffer. Any thread may
 * call any of it.
 *
 * The server side (stun_server.c) answers Binding requests over UDP and TCP.
 * stun_server_respond() is the whole protocol decision as a pure function
 * (request bytes + source address -> response bytes), so that it is testable
 * without sockets; the listen module only moves bytes.
 */
#ifndef PL_STUN_H
#define PL_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/listen.h"

#define STUN_MAGIC 0x2112A442u
#define STUN_HDR_LEN 20
#define STUN_TID_LEN 12
#define STUN_FINGERPRINT_XOR 0x5354554eu
/* The length field is 16 bits: no message is longer than this. */
#define STUN_MAX_MSG (STUN_HDR_LEN + 0xFFFF)

/* Message classes (RFC 8489 section 5: C1 is bit 8, C0 bit 4 of the type). */
enum stun_class {
	STUN_REQUEST = 0,
	STUN_INDICATION = 1,
	STUN_SUCCESS = 2,
	STUN_ERROR = 3,
};

enum {
	STUN_BINDING = 0x001,
	/* TURN methods (RFC 8656), recognised so they can be told apart. */
	STUN_ALLOCATE = 0x003,
	STUN_REFRESH = 0x004,
};

enum stun_attr_type {
	STUN_A_MAPPED_ADDRESS = 0x0001,
	STUN_A_CHANGE_REQUEST = 0x0003,        /* RFC 5780 (and RFC 3489) */
	STUN_A_USERNAME = 0x0006,
	STUN_A_MESSAGE_INTEGRITY = 0x0008,
	STUN_A_ERROR_CODE = 0x0009,
	STUN_A_UNKNOWN_ATTRIBUTES = 0x000A,
	STUN_A_REALM = 0x0014,
	STUN_A_NONCE = 0x0015,
	STUN_A_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	STUN_A_PASSWORD_ALGORITHM = 0x001D,
	STUN_A_USERHASH = 0x001E,
	STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
	STUN_A_PRIORITY = 0x0024,              /* ICE (RFC 8445) */
	STUN_A_USE_CANDIDATE = 0x0025,
	STUN_A_PASSWORD_ALGORITHMS = 0x8002,
	STUN_A_ALTERNATE_DOMAIN = 0x8003,
	STUN_A_SOFTWARE = 0x8022,
	STUN_A_ALTERNATE_SERVER = 0x8023,
	STUN_A_FINGERPRINT = 0x8028,
	STUN_A_ICE_CONTROLLED = 0x8029,
	STUN_A_ICE_CONTROLLING = 0x802A,
};

static inline uint16_t stun_type(uint16_t method, enum stun_class cls)
{
	return (uint16_t)((method & 0x000F) | ((method & 0x0070) << 1) |
			  ((method & 0x0F80) << 2) |
			  ((cls & 1) << 4) | ((cls & 2) << 7));
}
static inline uint16_t stun_method(uint16_t type)
{
	return (uint16_t)((type & 0x000F) | ((type & 0x00E0) >> 1) |
			  ((type & 0x3E00) >> 2));
}
static inline enum stun_class stun_class_of(uint16_t type)
{
	return (enum stun_class)(((type >> 4) & 1) | ((type >> 7) & 2));
}
/* Attributes 0x0000-0x7FFF must be understood or the request is refused. */
static inline bool stun_attr_required(uint16_t type) { return type < 0x8000; }

/* Why stun_parse() refused a message; the server drops all of these. */
enum stun_parse_result {
	STUN_PARSE_OK = 0,
	STUN_PARSE_SHORT = -1,          /* fewer than 20 bytes */
	STUN_PARSE_TYPE_BITS = -2,      /* first two bits not zero */
	STUN_PARSE_LENGTH = -3,         /* length not a multiple of 4 or != datagram */
	STUN_PARSE_COOKIE = -4,         /* wrong magic cookie (and not RFC 3489) */
	STUN_PARSE_ATTR_OVERRUN = -5,   /* an attribute runs past the end */
	STUN_PARSE_FINGERPRINT = -6,    /* bad CRC, bad length, or not last */
};

/* Accept RFC 3489 ("classic") Binding requests, which carry no magic cookie.
 * Only type 0x0001 is accepted that way: everything else without the cookie
 * is indistinguishable from noise. */
#define STUN_PARSE_CLASSIC 1u

/* A validated message. Points into the caller's bytes. */
struct stun_msg {
	const uint8_t *raw;
	size_t len;                 /* header + attributes */
	uint16_t type;
	uint32_t cookie;            /* STUN_MAGIC unless classic */
	const uint8_t *tid;         /* 12 bytes after the cookie */
	bool classic;               /* RFC 3489 request: reply in kind */
	bool fingerprint;           /* carried a valid FINGERPRINT */
	size_t integrity_off;       /* offset of MESSAGE-INTEGRITY(-SHA256), 0: none */
};

struct stun_attr {
	uint16_t type;
	uint16_t len;               /* value length, without padding */
	const uint8_t *val;
	size_t off;                 /* offset of the attribute header in the message */
};

enum stun_parse_result stun_parse(const uint8_t *p, size_t n, unsigned flags,
				  struct stun_msg *m);
const char *stun_parse_strerror(enum stun_parse_result r);
/* For stream framing: 0 if more bytes are needed, the message's full length
 * once the header is in, -1 if the header cannot start a STUN message. */
long stun_frame_len(const uint8_t *p, size_t n);

/* Iterate attributes: *pos starts at 0. Only for a parsed message. */
bool stun_attr_next(const struct stun_msg *m, size_t *pos, struct stun_attr *a);
bool stun_attr_find(const struct stun_msg *m, uint16_t type, struct stun_attr *a);
/* Decode (XOR-)MAPPED-ADDRESS-shaped values into a sockaddr_in/_in6. */
int stun_attr_addr(const struct stun_msg *m, const struct stun_attr *a, bool xor,
		   struct sockaddr_storage *ss, socklen_t *len);
int stun_attr_error_code(const struct stun_attr *a, int *code,
			 const char **reason, size_t *reason_len);
/* HMAC-SHA1 MESSAGE-INTEGRITY check with the given key (RFC 8489 14.5). */
bool stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen);

/* Builder: writes into out; any overflow is remembered and makes
 * stun_build_finish() return 0, so callers check once at the end. */
struct stun_builder {
	uint8_t *p;
	size_t cap;
	size_t len;
	uint32_t cookie;
	const uint8_t *tid;         /* points into p */
	uint8_t pad;                /* padding byte value (0; RFC 5769 uses 0x20) */
	bool overflow;
};

void stun_build_start(struct stun_builder *b, uint8_t *out, size_t cap,
		      uint16_t type, uint32_t cookie, const uint8_t tid[STUN_TID_LEN]);
void stun_put_attr(struct stun_builder *b, uint16_t type, const void *val, size_t len);
void stun_put_u32(struct stun_builder *b, uint16_t type, uint32_t v);
void stun_put_u64(struct stun_builder *b, uint16_t type, uint64_t v);
void stun_put_addr(struct stun_builder *b, uint16_t type, const struct sockaddr *sa,
		   bool xor);
void stun_put_error(struct stun_builder *b, int code, const char *reason);
void stun_put_unknown(struct stun_builder *b, const uint16_t *types, size_t n);
void stun_put_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen);
void stun_put_fingerprint(struct stun_builder *b);
/* Returns the message length, or 0 if it did not fit. */
size_t stun_build_finish(struct stun_builder *b);

/* The server's answer to one message from `peer`. Returns the response
 * length written to out (> 0), 0 for a valid message that gets no answer
 * (indication, response), or -1 for bytes that are not STUN at all (a UDP
 * datagram is then dropped, a TCP stream closed). */
#define STUN_SOFTWARE "parley 0.1.0"
int stun_server_respond(const uint8_t *req, size_t n, const struct sockaddr *peer,
			uint8_t *out, size_t cap);

/* A TCP stream's reassembly (RFC 8489 6.2.2: messages are framed by their
 * length field). Exposed for tests; the listen module owns one per conn. */
struct stun_stream {
	struct buf in;              /* a partial message; empty between messages */
};
typedef void stun_stream_reply_fn(void *arg, const uint8_t *resp, size_t n);
/* Feed stream bytes; every response goes to reply(). Returns PL_OK, or
 * PL_ERR once the stream carried something that is not STUN. */
int stun_stream_feed(struct stun_stream *s, const uint8_t *data, size_t n,
		     const struct sockaddr *peer, stun_stream_reply_fn *reply, void *arg);
void stun_stream_free(struct stun_stream *s);

extern const struct listen_module stun_listen_module;

#endif
