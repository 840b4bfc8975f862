/*
 * status.c: names of the gRPC canonical status codes, and outcome helpers.
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_names[] = {
    [ST_OK] = "OK",
    [ST_CANCELLED] = "CANCELLED",
    [ST_UNKNOWN] = "UNKNOWN",
    [ST_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [ST_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
    [ST_NOT_FOUND] = "NOT_FOUND",
    [ST_ALREADY_EXISTS] = "ALREADY_EXISTS",
    [ST_PERMISSION_DENIED] = "PERMISSION_DENIED",
    [ST_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
    [ST_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
    [ST_ABORTED] = "ABORTED",
    [ST_OUT_OF_RANGE] = "OUT_OF_RANGE",
    [ST_UNIMPLEMENTED] = "UNIMPLEMENTED",
    [ST_INTERNAL] = "INTERNAL",
    [ST_UNAVAILABLE] = "UNAVAILABLE",
    [ST_DATA_LOSS] = "DATA_LOSS",
    [ST_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *
status_str(enum status st)
{
	if ((unsigned)st >= sizeof(status_names) / sizeof(status_names[0]))
		return "UNKNOWN_STATUS";
	return status_names[st];
}

enum status
outcome_set(struct outcome *out, enum status st, const char *reason, const char *fmt, ...)
{
	va_list ap;

	out->status = st;
	out->reason = reason != NULL ? reason : "";
	va_start(ap, fmt);
	(void)vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
	return st;
}

enum status
outcome_no_memory(struct outcome *out)
{
	return outcome_set(out, ST_RESOURCE_EXHAUSTED, "NO_MEMORY", "out of memory");
}
