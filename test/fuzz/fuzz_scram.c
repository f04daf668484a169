/* fuzz-sources: core/scram.c core/buf.c core/pl.c core/log.c */
/*
 * fuzz_scram.c - SCRAM server messages and base64 from untrusted bytes.
 *
 * Input: one byte picks the hash, then client-first up to the first '\n',
 * then client-final. A message that is accepted must leave the exchange in
 * a consistent state; base64 must round-trip whatever it accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/pl.h"
#include "core/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_base64(const uint8_t *data, size_t size)
{
	uint8_t raw[512];
	char again[1024];
	long n;

	if (size > 600)
		size = 600;
	n = base64_decode((const char *)data, size, raw, sizeof(raw));
	if (n < 0)
		return;
	/* strict decoding accepts only canonical text: it must come back equal */
	base64_encode(raw, (size_t)n, again, sizeof(again));
	if (strlen(again) != size || memcmp(again, data, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct scram_creds creds[2];
	static int ready;
	struct scram_server s;
	struct buf out = {0};
	const char *why = NULL, *msg, *nl;
	enum scram_hash h;
	size_t first_len;

	if (!ready) {
		static const uint8_t salt[] = "fuzzsalt";

		scram_make_creds(SCRAM_SHA1, "pencil", salt, 8, 1, &creds[0]);
		scram_make_creds(SCRAM_SHA256, "pencil", salt, 8, 1, &creds[1]);
		ready = 1;
	}
	if (size < 1)
		return 0;
	check_base64(data + 1, size - 1);
	h = (data[0] & 1) ? SCRAM_SHA256 : SCRAM_SHA1;
	msg = (const char *)data + 1;
	size--;
	nl = memchr(msg, '\n', size);
	first_len = nl ? (size_t)(nl - msg) : size;

	memset(&s, 0, sizeof(s));
	/* a known server nonce lets the fuzzer reach the proof check */
	scram_server_set_nonce_for_test(&s, "3rfcNHYJY1ZVvWVs7j");
	if (scram_server_client_first(&s, h, msg, first_len, &why) != PL_OK) {
		if (!why)
			abort();
		scram_server_clear(&s);
		return 0;
	}
	if (why || !s.username || !*s.username || !s.nonce || !s.gs2_header)
		abort();
	if (scram_server_first(&s, &creds[h == SCRAM_SHA256], &out) != PL_OK)
		abort();
	if (strncmp(buf_cstr(&out), "r=", 2) != 0)
		abort();
	buf_reset(&out);
	if (nl) {
		size_t rest = size - first_len - 1;
		int rc = scram_server_final(&s, nl + 1, rest, &out, &why);

		if ((rc == PL_OK) != (why == NULL))
			abort();
		if (rc == PL_OK && strncmp(buf_cstr(&out), "v=", 2) != 0)
			abort();
	}
	buf_free(&out);
	scram_server_clear(&s);
	return 0;
}
