/*
 * log.h: the server's log lines and audit trail.
 *
 * Log lines go to stderr as `time level key=value ...`. The audit trail is one JSON object
 * per line (time, event, peer, token id, role, method, name, storage, status) in
 * --audit-file: an "attempt" line before each state change (if it cannot be written the
 * change is refused) and a "result" line after each state-changing or denied call.
 * Callers pass names, statuses and peers only: nothing here is ever handed a secret value
 * or a token.
 *
 * Thread safety: every function may be called from many threads; each line is written
 * with one write(2) under a mutex, so lines never interleave.
 */
#ifndef SECRETD_SERVER_LOG_H
#define SECRETD_SERVER_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

struct logger {
	enum log_level level;
	int fd;       /* stderr */
	int audit_fd; /* -1: no audit file */
	pthread_mutex_t lock;
	uint64_t audit_failures;
};

/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *s);

/* Set up a logger writing to fd at level, with an optional audit file (opened for
 * append, created 0600). Returns 0, or -1 with errno when the audit file cannot be
 * opened. */
int log_open(struct logger *lg, int fd, enum log_level level, const char *audit_path);

/* Close the audit file. */
void log_close(struct logger *lg);

/* Write one log line at level (dropped when above the logger's level). */
void log_msg(struct logger *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One audit record; strings borrowed, none of them a value or a token. */
struct audit_record {
	const char *event; /* "attempt" (before a state change) or "result" */
	const char *peer;
	const char *token_id;
	const char *role;
	const char *method;
	const char *name;
	const char *storage;
	const char *status;
};

/* Append an audit line (O_APPEND, one write). Returns true when it was written whole, or
 * when there is no audit file; on failure the failure is counted and logged. */
bool log_audit(struct logger *lg, const struct audit_record *rec);

#endif
