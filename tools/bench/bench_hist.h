/*
 * bench_hist.h - latency histogram with bounded relative error.
 *
 * Log-linear buckets (64 per power of two, about 1.6% apart) over the whole
 * uint64 range, so recording is two shifts and an increment and quantiles
 * need no sorting of samples however many messages a run delivers.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1): an upper bound within one bucket of the
 * true sample, and never above the largest sample. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* Bucket arithmetic, exposed for the unit test. */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_low(unsigned idx);

#endif
