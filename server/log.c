/*
 * log.c: log lines and audit trail. See log.h.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int
log_level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

int
log_open(struct logger *lg, int fd, enum log_level level, const char *audit_path)
{
	lg->level = level;
	lg->fd = fd;
	lg->audit_fd = -1;
	lg->audit_failures = 0;
	if (pthread_mutex_init(&lg->lock, NULL) != 0)
		return -1;
	if (audit_path != NULL) {
		lg->audit_fd = open(audit_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (lg->audit_fd < 0) {
			int e = errno;

			(void)pthread_mutex_destroy(&lg->lock);
			errno = e;
			return -1;
		}
	}
	return 0;
}

void
log_close(struct logger *lg)
{
	if (lg->audit_fd >= 0)
		(void)close(lg->audit_fd);
	lg->audit_fd = -1;
	(void)pthread_mutex_destroy(&lg->lock);
}

/* UTC time as 2026-11-26T14:19:23.123Z into buf[32]. */
static void
timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	(void)gmtime_r(&ts.tv_sec, &tm);
	(void)snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* Write all of buf to fd; false on any error. */
static bool
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

void
log_msg(struct logger *lg, enum log_level level, const char *fmt, ...)
{
	char line[1024];
	char ts[64];
	va_list ap;
	int n;
	size_t len;

	if (level > lg->level)
		return;
	timestamp(ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "%s %s ", ts, level_names[level]);
	if (n < 0)
		return;
	len = (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n : sizeof(line) - len - 2;
	line[len++] = '\n';
	(void)pthread_mutex_lock(&lg->lock);
	(void)write_all(lg->fd, line, len);
	(void)pthread_mutex_unlock(&lg->lock);
}

bool
log_audit(struct logger *lg, const struct audit_record *rec)
{
	char ts[64];
	char line[2048];
	json_t *obj;
	size_t n = 0;
	bool ok = false;

	if (lg->audit_fd < 0)
		return true;
	timestamp(ts, sizeof(ts));
	obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "time", ts, "event",
	    rec->event, "peer", rec->peer, "token_id", rec->token_id, "role", rec->role, "method",
	    rec->method, "name", rec->name, "storage", rec->storage, "status", rec->status);
	/* Into a stack buffer: jansson's blocks come from the wiping allocator of text.c and
	 * must not be handed to free(). */
	if (obj != NULL)
		n = json_dumpb(obj, line, sizeof(line) - 1, JSON_COMPACT);
	json_decref(obj);
	if (n > 0 && n < sizeof(line) - 1) {
		line[n] = '\n';
		(void)pthread_mutex_lock(&lg->lock);
		ok = write_all(lg->audit_fd, line, n + 1);
		(void)pthread_mutex_unlock(&lg->lock);
	}
	if (!ok) {
		(void)pthread_mutex_lock(&lg->lock);
		lg->audit_failures++;
		(void)pthread_mutex_unlock(&lg->lock);
		log_msg(lg, LOG_ERROR, "audit: cannot write the audit line for %s %s", rec->method,
		    rec->name);
	}
	return ok;
}
