/* pl.c - allocation wrappers and the clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pl.h"

static void pl_oom(size_t n)
{
	fprintf(stderr, "parley: out of memory allocating %zu bytes\n", n);
	abort();
}

void *pl_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		pl_oom(n);
	return p;
}

void *pl_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		pl_oom(n * size);
	return p;
}

void *pl_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		pl_oom(n);
	return q;
}

char *pl_strdup(const char *s)
{
	return pl_strndup(s, strlen(s));
}

char *pl_strndup(const char *s, size_t n)
{
	char *d = pl_malloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

uint64_t pl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
