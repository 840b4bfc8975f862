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

#include "service.h"

struct auth;

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

#endif
