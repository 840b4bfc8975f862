/*
 * status.c: names of the gRPC canonical status codes, the reasons of reasons.h, and
 * outcome helpers.
 */
#include "status.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

/* Every reason fits libsecretd's secretd_error.reason (SECRETD_REASON_SIZE bytes with its
 * NUL; tests/unit/test_reasons.c checks that this is that buffer's size). */
#define SECRETD_REASON_FITS(name, status, when)                                                    \
	static_assert(sizeof(#name) <= SECRETD_REASON_SIZE,                                        \
	    "reason " #name " does not fit secretd_error.reason");
SECRETD_REASONS(SECRETD_REASON_FITS)
#undef SECRETD_REASON_FITS

static const struct {
	const char *name;
	enum status status;
} reasons[REASON_COUNT] = {[REASON_NONE] = {"", ST_OK},
#define SECRETD_REASON_ENTRY(name, status, when) [REASON_##name] = {#name, ST_##status},
    SECRETD_REASONS(SECRETD_REASON_ENTRY)
#undef SECRETD_REASON_ENTRY
};

const char *
reason_str(enum reason r)
{
	if ((unsigned)r >= REASON_COUNT)
		return "";
	return reasons[r].name;
}

enum status
reason_status(enum reason r)
{
	if ((unsigned)r >= REASON_COUNT)
		return ST_OK;
	return reasons[r].status;
}

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
outcome_set(struct outcome *out, enum status st, enum reason reason, const char *fmt, ...)
{
	va_list ap;

	assert(reason == REASON_NONE || reason_status(reason) == st);
	out->status = st;
	out->reason = reason_str(reason);
	va_start(ap, fmt);
	(void)vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
	return st;
}

enum status
outcome_no_memory(struct outcome *out)
{
	return outcome_set(out, ST_RESOURCE_EXHAUSTED, REASON_NO_MEMORY, "out of memory");
}
