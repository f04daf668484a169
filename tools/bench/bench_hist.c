/*
 * bench_hist.c - log-linear latency histogram (see bench_hist.h).
 */
#include <math.h>
#include <string.h>

#include "tools/bench/bench_hist.h"

#define SUB (1u << HIST_SUB_BITS)

unsigned hist_index(uint64_t v)
{
	if (v < SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);
	return ((e - HIST_SUB_BITS + 1) << HIST_SUB_BITS) |
	       (unsigned)((v >> (e - HIST_SUB_BITS)) & (SUB - 1));
}

uint64_t hist_bucket_low(unsigned idx)
{
	if (idx < SUB)
		return idx;
	unsigned e = (idx >> HIST_SUB_BITS) + HIST_SUB_BITS - 1;
	uint64_t sub = idx & (SUB - 1);
	return (SUB + sub) << (e - HIST_SUB_BITS);
}

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

void hist_add(struct hist *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	uint64_t rank = (uint64_t)ceil(q * (double)h->count);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			/* The bucket's top, unless that overshoots what was seen. */
			uint64_t top = i + 1 < HIST_BUCKETS ? hist_bucket_low(i + 1) - 1 : UINT64_MAX;
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}
