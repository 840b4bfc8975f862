/*
 * types.h: the secret model of SPEC section 1: the three types with their fields, required
 * fields (in the order they are checked), redacted fields, default names and scopes, and
 * the secret_string column of duckdb_secrets() built from them.
 *
 * What it does not do: no validation of requests (handlers.c) and no I/O.
 *
 * Thread safety: immutable tables and pure functions.
 */
#ifndef SECRETD_SERVER_TYPES_H
#define SECRETD_SERVER_TYPES_H

#include <stdbool.h>

#include "arena.h"
#include "store.h"

#define MAX_TYPE_FIELDS 4

/* One secret type of SPEC section 1. */
struct type_def {
	const char *type;
	const char *default_name;
	const char *default_scope;
	const char *fields[MAX_TYPE_FIELDS];   /* every declared field */
	const char *required[MAX_TYPE_FIELDS]; /* in the order they are checked */
	const char *redacted[MAX_TYPE_FIELDS]; /* printed as "redacted" in listings */
};

/* The type named lower (already lowercased), or NULL. */
const struct type_def *type_find(const char *lower);

/* Every type's name, in the table's order, joined by ", " ("openai, ollama, azure_llm"), in
 * a (freed with it); "the known types" when a is out of memory. */
const char *type_names(struct arena *a);

/* Whether td declares field key (lowercase). */
bool type_declares(const struct type_def *td, const char *key);

/*
 * The secret_string column for s: name=<n>;type=<t>;provider=config;serializable=true;
 * scope=<s1>,<s2>;<k>=<v>;... with fields in key order and redacted values printed as
 * "redacted" unless unredacted. Allocated in a; NULL when out of memory.
 */
char *type_secret_string(struct arena *a, const struct store_secret *s, bool unredacted);

#endif
