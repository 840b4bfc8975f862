/*
 * status.h: the server's status codes. Values are the gRPC canonical codes, exactly as
 * libsecretd's secretd_status and the wire's Reply.status; never renumbered. Foreign codes
 * (NNG_E*, store_status, SQLITE_*) are translated into these at the module that calls the
 * foreign library.
 */
#ifndef SECRETD_SERVER_STATUS_H
#define SECRETD_SERVER_STATUS_H

#include "secretd/v1/reasons.h"

enum status {
	ST_OK = 0,
	ST_CANCELLED = 1,
	ST_UNKNOWN = 2,
	ST_INVALID_ARGUMENT = 3,
	ST_DEADLINE_EXCEEDED = 4,
	ST_NOT_FOUND = 5,
	ST_ALREADY_EXISTS = 6,
	ST_PERMISSION_DENIED = 7,
	ST_RESOURCE_EXHAUSTED = 8,
	ST_FAILED_PRECONDITION = 9,
	ST_ABORTED = 10,
	ST_OUT_OF_RANGE = 11,
	ST_UNIMPLEMENTED = 12,
	ST_INTERNAL = 13,
	ST_UNAVAILABLE = 14,
	ST_DATA_LOSS = 15,
	ST_UNAUTHENTICATED = 16,
};

/* Canonical name of a status ("NOT_FOUND"); "UNKNOWN_STATUS" outside the range. */
const char *status_str(enum status st);

/* The reasons of proto/secretd/v1/reasons.h: REASON_AMBIGUOUS, ...; REASON_NONE is "". */
enum reason {
	REASON_NONE = 0,
#define SECRETD_REASON_ENUM(name, status, when) REASON_##name,
	SECRETD_REASONS(SECRETD_REASON_ENUM)
#undef SECRETD_REASON_ENUM
	    REASON_COUNT
};

/* The reason's string ("AMBIGUOUS"); "" for REASON_NONE or a value outside the list. */
const char *reason_str(enum reason r);

/* The status a reason comes with (reasons.h); ST_OK for REASON_NONE. */
enum status reason_status(enum reason r);

/* The outcome of a call: a status, a machine-readable reason and a message. The message
 * never holds a secret value. */
struct outcome {
	enum status status;
	const char *reason; /* reason_str of one of reasons.h, "" when none */
	char message[512];
};

/* Set an outcome's status, reason and printf-formatted message; returns status. st is the
 * reason's status in reasons.h (asserted: a call site that disagrees with the list is a
 * bug). */
enum status outcome_set(struct outcome *out, enum status st, enum reason reason, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

/* Set out to RESOURCE_EXHAUSTED, reason NO_MEMORY, "out of memory"; returns that status. */
enum status outcome_no_memory(struct outcome *out);

#endif
