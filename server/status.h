/*
 * status.h: the server's status codes. Values are the gRPC canonical codes, exactly as
 * libsecretd's secretd_status and the wire's Reply.status; never renumbered. Foreign codes
 * (NNG_E*, store_status, SQLITE_*) are translated into these at the module that calls the
 * foreign library.
 */
#ifndef SECRETD_SERVER_STATUS_H
#define SECRETD_SERVER_STATUS_H

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

/* The outcome of a call: a status, a machine-readable reason and a message. The message
 * never holds a secret value. */
struct outcome {
	enum status status;
	const char *reason; /* static string, "" when none */
	char message[512];
};

/* Set an outcome's status, reason and printf-formatted message; returns status. */
enum status outcome_set(struct outcome *out, enum status st, const char *reason, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

/* Set out to RESOURCE_EXHAUSTED, reason NO_MEMORY, "out of memory"; returns that status. */
enum status outcome_no_memory(struct outcome *out);

#endif
