/*
 * log.h - structured log lines to stderr.
 *
 * Thread-safe: any shard or worker may log. A line is written with a single
 * write(2) so lines from different threads never interleave.
 * Format: "2026-11-25T23:59:01.123Z info  c2s: alice@example.test/phone: ..."
 */
#ifndef PL_LOG_H
#define PL_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARNING, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

int log_level_parse(const char *name, enum log_level *out);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) \
	do { if (log_threshold >= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) \
	do { if (log_threshold >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
