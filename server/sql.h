/*
 * sql.h: the parser of secretd's statement dialect (SPEC §3).
 *
 * sql_parse turns one statement (CREATE SECRET, DROP SECRET, FROM duckdb_secrets(),
 * FROM which_secret(), GET SECRET) into the same request message a binary client would
 * send, so the SQL path and the RPC path share one set of handlers.
 *
 * What it deliberately does not do: no semantic checks that the handlers make (type names,
 * field names, duplicate or missing fields, required TYPE, name length and characters,
 * provider values), no lowercasing (names, types and keys come out as written, unquoted),
 * no I/O. It checks only the grammar and what the grammar alone decides: storage names,
 * TEMPORARY/PERSISTENT against the storage, OR REPLACE against IF NOT EXISTS, TYPE/PROVIDER/
 * SCOPE given twice.
 *
 * Error messages name the offending token and its byte offset but never echo a string
 * literal, a quoted identifier, a number, or a word glued to a closing quote (the tail of a
 * value like 'it's'): any of them may be part of a secret value. Bare identifiers and
 * punctuation are echoed, identifiers cut to 64 bytes (and not at all unless valid UTF-8).
 * A value may be a bare word, so a mistyped unquoted value can still be echoed: quote values.
 *
 * Dialect choices beyond SPEC §3: TEMP is accepted in DROP as in CREATE; storage names may be
 * double-quoted ("memory"); option keys are bare identifiers; a double-quoted option value
 * ("x") is an error, as in DuckDB where "x" is an identifier; a name may not be a bare
 * keyword of the grammar, which includes TYPE, PROVIDER and SCOPE; only `--` comments.
 *
 * Thread-safety: no global state; concurrent calls are safe as long as each uses its own
 * arena, statement and outcome.
 */
#ifndef SECRETD_SERVER_SQL_H
#define SECRETD_SERVER_SQL_H

#include <stddef.h>

#include "arena.h"
#include "secretd.pb-c.h"
#include "status.h"

/* Which statement was parsed, and so which member of struct sql_statement is filled. */
enum sql_kind {
	SQL_CREATE = 1, /* CREATE [OR REPLACE] [TEMPORARY|TEMP|PERSISTENT] SECRET ... */
	SQL_DROP,    /* DROP [TEMPORARY|TEMP|PERSISTENT] SECRET [IF EXISTS] name [FROM storage] */
	SQL_LIST,    /* [SELECT *] FROM duckdb_secrets([redact [:]= true|false]) */
	SQL_RESOLVE, /* [SELECT *] FROM which_secret('path', 'type') */
	SQL_GET,     /* GET SECRET name [FROM storage] */
};

/* A parsed statement. Every member is an initialised message (its __INIT value); only the
 * one named by kind carries the statement. Strings, arrays and field values point into the
 * arena given to sql_parse and live until its next reset (which wipes them). */
struct sql_statement {
	enum sql_kind kind;
	Secretd__V1__SecretCreate create;
	Secretd__V1__SecretDrop drop;
	Secretd__V1__SecretList list;
	Secretd__V1__SecretResolve resolve;
	Secretd__V1__SecretGet get;
	/* Offset of a storage written as etcd (IN etcd, FROM etcd), parsed as the persistent
	 * storage; SIZE_MAX when none. The caller refuses it where persistent secrets are not
	 * in etcd. */
	size_t etcd_off;
};

/*
 * Parse the one statement text[0..len). text need not be NUL-terminated and is never read
 * at or past len; it is borrowed for the call only. Surrounding white space, `--` comments
 * and one trailing `;` are allowed.
 *
 * Everything the statement holds is allocated from arena a (borrowed); nothing needs to be
 * freed by the caller beyond resetting the arena. *stmt is always initialised: on success
 * kind names the filled member; on failure kind is 0 and every member is empty.
 *
 * Returns ST_OK, leaving *out untouched. Otherwise returns the status and sets *out (via
 * outcome_set) to it, a reason and a message that says what is wrong and at which byte offset:
 *   ST_INVALID_ARGUMENT, reason "SYNTAX": any grammar error (including a NUL byte, an empty
 *     statement, an unterminated quote, OR REPLACE with IF NOT EXISTS, an empty option list,
 *     TYPE/PROVIDER/SCOPE given twice, a double-quoted value, a second statement);
 *   ST_INVALID_ARGUMENT, reason "INVALID_STORAGE": an unknown storage, or a storage that
 *     contradicts TEMPORARY/PERSISTENT (TEMPORARY ... IN sqlcipher, PERSISTENT ... IN memory,
 *     DROP TEMPORARY ... FROM x, DROP PERSISTENT ... FROM memory);
 *   ST_RESOURCE_EXHAUSTED, reason "NO_MEMORY": the arena could not allocate.
 */
enum status sql_parse(
    const char *text, size_t len, struct arena *a, struct sql_statement *stmt, struct outcome *out);

#endif
