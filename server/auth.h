/*
 * auth.h: bearer tokens and roles.
 *
 * The tokens file holds one token per line: `<role> <id> <sha256-hex-of-token>`, with
 * `#` comments and blank lines allowed. Only hashes are stored; a presented token is
 * hashed and compared in constant time against every entry, so timing reveals neither
 * which entry matched nor how much of a hash did.
 *
 * What it does not do: it does not decide what a role may do (the handlers do) and never
 * logs a token.
 *
 * Thread safety: auth_check may run on many threads while auth_reload replaces the
 * table (a read/write lock guards it).
 */
#ifndef SECRETD_SERVER_AUTH_H
#define SECRETD_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct auth;

/* Who is calling. */
enum role {
	ROLE_NONE = 0,   /* no valid credentials */
	ROLE_READER = 1, /* list redacted, get, resolve */
	ROLE_ADMIN = 2,  /* everything */
};

/* "none", "reader", "admin". */
const char *role_str(enum role r);

struct caller {
	/* Role granted by the transport alone (an ipc peer with our uid is admin); ROLE_NONE
	 * when the request's token must decide. */
	enum role transport_role;
	/* The transport's connection id and, on ipc, the peer's uid. */
	uint32_t conn;
	bool ipc;
	uint64_t uid;
	/* Printable peer ("uid:1000", "tcp:127.0.0.1:5555"), formatted by the transport only
	 * when a log line or an audit record needs it: "" until then. */
	char peer[80];
	/* Filled by auth_authenticate once the token is checked. */
	enum role role;
	char token_id[64];
};

#define AUTH_HASH_HEX 64 /* hex digits of a SHA-256 */

/*
 * Load the tokens file at path (NULL: an empty table that accepts no token). The file
 * must not be writable by group or others. Caller frees *authp with auth_free. On failure
 * returns ST_INVALID_ARGUMENT / ST_FAILED_PRECONDITION with a message in err.
 */
enum status auth_open(const char *path, struct auth **authp, char *err, size_t errlen);

/* Re-read the file; on failure the old table stays in force and err says why. */
enum status auth_reload(struct auth *a, char *err, size_t errlen);

/* Free the table. NULL-safe. */
void auth_free(struct auth *a);

/* Number of tokens configured. */
size_t auth_count(struct auth *a);

/*
 * The role of token (ROLE_NONE when it matches no entry or is empty); copies the matching
 * entry's id into id[idlen] (or "" when none). a may be NULL (no tokens).
 */
enum role auth_check(struct auth *a, const char *token, char *id, size_t idlen);

/* Hex SHA-256 of token into hex[AUTH_HASH_HEX + 1]. */
void auth_hash_token(const char *token, char *hex);

/* Parse "reader"/"admin"; ROLE_NONE otherwise. */
enum role role_parse(const char *s);

/*
 * Authenticate a call: set caller->role (and caller->token_id) from the transport's role
 * and the presented token (borrowed; may be NULL or ""). A token that matches no entry
 * gives ROLE_NONE even where the transport alone would grant a role: the caller meant to
 * use it. a may be NULL (no tokens). The front door (service.c) calls it once per call.
 */
void auth_authenticate(struct auth *a, struct caller *caller, const char *token);

#endif
