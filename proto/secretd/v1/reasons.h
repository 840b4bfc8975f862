/*
 * reasons.h: every reason a secretd reply can carry (Reply.reason on the wire, "reason" in
 * a text frame's JSON, secretd_error.reason in libsecretd), written once. Clients match
 * on these strings, so a reason is never renamed; one spelling per condition.
 *
 * It sits beside secretd.proto because it is part of the same contract: the server
 * (server/status.h: enum reason, reason_str) expands it, and any C code that speaks the
 * wire may include it (proto/ is below both server/ and client/ in the dependency order).
 * The .proto (Reply.reason) and client/include/secretd.h (the section "Reasons") list the
 * same names for readers; tests/unit/test_reasons.c checks they match this list.
 *
 * X(NAME, STATUS, when): the reason's string is NAME; STATUS is the status (enum status,
 * the gRPC code) it comes with; "when" is the condition, for readers.
 */
#ifndef SECRETD_PROTO_REASONS_H
#define SECRETD_PROTO_REASONS_H

/* Bytes a reason may take, its NUL included: sizeof(secretd_error.reason) in secretd.h
 * (server/status.c checks every reason against it at compile time). */
#define SECRETD_REASON_SIZE 32

/* clang-format off */
#define SECRETD_REASONS(X) \
	/* The frame */ \
	X(BAD_HEADER,        INVALID_ARGUMENT,    "a binary frame does not start with 00 53 44 <version>") \
	X(VERSION,           UNIMPLEMENTED,       "a protocol version the server does not speak") \
	X(FRAME_TOO_LARGE,   RESOURCE_EXHAUSTED,  "a frame over the server's frame limit") \
	X(BAD_FRAME,         INVALID_ARGUMENT,    "the envelope is not a valid secretd.v1.Request, or a string in it holds a NUL") \
	X(UNKNOWN_METHOD,    UNIMPLEMENTED,       "Request.method names no rpc of service Secrets") \
	X(BAD_BODY,          INVALID_ARGUMENT,    "Request.body is not a valid message of the method's input type") \
	X(BAD_TEXT,          INVALID_ARGUMENT,    "a text frame holds a NUL byte or is not valid UTF-8") \
	X(SYNTAX,            INVALID_ARGUMENT,    "a statement (or a text frame's AUTH line) does not parse") \
	/* The caller */ \
	X(NO_TOKEN,          UNAUTHENTICATED,     "the connection needs a token and none was sent") \
	X(BAD_TOKEN,         UNAUTHENTICATED,     "the token sent is not valid") \
	X(NO_CREDENTIALS,    UNAUTHENTICATED,     "a call that needs a role came with none") \
	X(ROLE,              PERMISSION_DENIED,   "the caller's role may not make this call") \
	X(STALE,             UNAVAILABLE,         "this node is behind Request.min_store_rev; try another node") \
	X(DUPLICATE,         OK,                  "a resent request answered with its first reply (server log only)") \
	/* The secret */ \
	X(MISSING_TYPE,      INVALID_ARGUMENT,    "no TYPE given") \
	X(UNKNOWN_TYPE,      INVALID_ARGUMENT,    "a TYPE that is not openai, ollama or azure_llm") \
	X(UNKNOWN_PROVIDER,  INVALID_ARGUMENT,    "a PROVIDER other than config") \
	X(UNKNOWN_FIELD,     INVALID_ARGUMENT,    "a field the type does not declare") \
	X(DUPLICATE_FIELD,   INVALID_ARGUMENT,    "a field given twice") \
	X(MISSING_FIELD,     INVALID_ARGUMENT,    "a required field absent or empty") \
	X(BAD_VALUE,         INVALID_ARGUMENT,    "a field value that is not UTF-8 text") \
	X(BAD_NAME,          INVALID_ARGUMENT,    "an empty name, or one not UTF-8 or holding a control character") \
	X(BAD_SCOPE,         INVALID_ARGUMENT,    "a scope entry that is not UTF-8") \
	X(TOO_LARGE,         INVALID_ARGUMENT,    "a name, field value or scope entry over its limit") \
	X(TOO_MANY_FIELDS,   INVALID_ARGUMENT,    "more fields than the limit") \
	X(TOO_MANY_SCOPES,   INVALID_ARGUMENT,    "more scope entries than the limit") \
	X(INVALID_STORAGE,   INVALID_ARGUMENT,    "an unknown storage, or one the statement cannot use") \
	X(ALREADY_EXISTS,    ALREADY_EXISTS,      "Create (on conflict: error) of a name the storage holds") \
	X(NOT_FOUND,         NOT_FOUND,           "Drop or Get of a name no allowed storage holds") \
	X(AMBIGUOUS,         FAILED_PRECONDITION, "a name in both storages and no storage given") \
	/* The stores */ \
	X(AUDIT,             UNAVAILABLE,         "the audit trail cannot be written; nothing was changed") \
	X(STORE_FULL,        RESOURCE_EXHAUSTED,  "the storage holds its maximum number of secrets") \
	X(DISK_FULL,         RESOURCE_EXHAUSTED,  "the disk is full; nothing was changed") \
	X(READ_ONLY,         UNAVAILABLE,         "the database cannot be written; nothing was changed") \
	X(IO,                UNAVAILABLE,         "an I/O error; nothing was changed") \
	X(NO_QUORUM,         UNAVAILABLE,         "etcd cannot commit (no quorum, no member reachable); nothing was changed") \
	X(CORRUPT,           DATA_LOSS,           "the storage is corrupt") \
	X(BAD_KEY,           FAILED_PRECONDITION, "the key does not open the database") \
	X(STORE,             INTERNAL,            "any other failure of a storage") \
	X(NO_MEMORY,         RESOURCE_EXHAUSTED,  "the server ran out of memory") \
	/* Key rotation, notifications */ \
	X(NO_REKEY,          UNIMPLEMENTED,       "this server cannot rotate its key") \
	X(CLUSTER,           FAILED_PRECONDITION, "online key rotation asked of a cluster node (rotate offline)") \
	X(PASSPHRASE_MODE,   FAILED_PRECONDITION, "online key rotation asked of a server keyed with a passphrase") \
	X(REKEY,             UNAVAILABLE,         "key rotation failed; every secret is intact under the key in use") \
	X(NO_NOTIFY,         UNIMPLEMENTED,       "Subscribe asked of a server without a notify socket") \
	/* Server faults */ \
	X(UNKNOWN_STATEMENT, INTERNAL,            "the parser made a statement the server cannot run") \
	X(RENDER,            INTERNAL,            "a successful reply could not be written as a text frame's JSON")
/* clang-format on */

#endif
