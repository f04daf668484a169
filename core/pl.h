/*
 * pl.h - what every Parley file needs: return codes and small helpers.
 *
 * Return codes are few and uniform (after nginx): a function returns PL_OK or
 * PL_ERR, and event handlers may also say PL_AGAIN (try later), PL_DECLINED
 * (not mine, ask the next handler) or PL_DONE (handled, stop the chain).
 */
#ifndef PL_H
#define PL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum {
	PL_OK = 0,
	PL_ERR = -1,
	PL_AGAIN = -2,
	PL_DECLINED = -3,
	PL_DONE = -4,
};

#define PL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PL_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define PL_UNUSED(x) ((void)(x))

/* Allocation failure is fatal: a server that cannot allocate a few bytes
 * cannot do anything useful, and checking at every call site hides logic. */
void *pl_malloc(size_t n);
void *pl_calloc(size_t n, size_t size);
void *pl_realloc(void *p, size_t n);
char *pl_strdup(const char *s);
char *pl_strndup(const char *s, size_t n);

/* Monotonic clock in milliseconds. */
uint64_t pl_now_ms(void);

#endif
