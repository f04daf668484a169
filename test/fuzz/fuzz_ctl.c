/* fuzz-sources: core/cmd.c core/users.c core/store.c core/scram.c core/cfg.c core/listen.c core/module.c core/shard.c core/ev.c core/buf.c core/pl.c core/log.c */
/*
 * fuzz_ctl.c - the control socket's request parser (netstrings) fed in
 * arbitrary pieces, as a socket would deliver them.
 *
 * Input: byte 0 is the piece size (1..256); the rest is the stream. The
 * parser must give the same verdict however the stream is cut, and what it
 * accepts must be within its bounds.
 */
#include "core/ctl.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed the stream piece by piece; returns the verdict (1, 0 or -1). */
static int feed(struct ctl_client *c, const uint8_t *p, size_t n, size_t piece)
{
	int rc = 0;

	for (size_t off = 0; off < n && rc == 0; off += piece) {
		size_t take = n - off < piece ? n - off : piece;

		buf_append(&c->in, p + off, take);
		rc = ctl_parse(c);
		if (rc == 0 && c->in.len > CTL_MAX_REQUEST)
			rc = -1;
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_client a, b;
	size_t piece;
	int ra, rb;

	if (size < 1 || size > CTL_MAX_REQUEST + 1024)
		return 0;
	piece = (size_t)data[0] + 1;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	ra = feed(&a, data + 1, size - 1, piece);
	rb = feed(&b, data + 1, size - 1, size);
	/* a whole request ends exactly at its "0:,", so cutting cannot
	 * change the answer */
	if (ra != rb)
		abort();
	if (ra == 1) {
		if (a.nparts < 1 || a.nparts > CTL_MAX_ARGS + 1 || a.nparts != b.nparts)
			abort();
		for (size_t i = 0; i < a.nparts; i++) {
			const struct ctl_part *pt = &a.parts[i];

			if (pt->len == 0 || pt->off + pt->len > a.in.len ||
			    memchr(a.in.data + pt->off, '\0', pt->len) ||
			    pt->off != b.parts[i].off || pt->len != b.parts[i].len)
				abort();
		}
	}
	buf_free(&a.in);
	buf_free(&b.in);
	return 0;
}
