/*
 * row.h: the encoding of one secret's body in a database row (scope list and fields;
 * the name and type have columns of their own).
 *
 * Format, version 1, every integer a little-endian uint32:
 *   u8 version (1)
 *   n_scope, then per scope entry: len, len bytes (the string and its NUL)
 *   n_fields, then per field: key_len, key_len bytes (the key and its NUL),
 *                             value_len, value_len bytes (the value, no NUL)
 * Strings may not hold a NUL before their last byte; nothing may follow the last field.
 *
 * What this module does not do: no I/O, no validation of what the strings say (types,
 * field names) beyond what the format needs. The decoder is meant to take arbitrary
 * bytes (it is a fuzz target): anything malformed is STORE_CORRUPT, never a crash or a
 * read past len.
 *
 * Thread safety: pure functions of their arguments.
 */
#ifndef SECRETD_STORE_ROW_H
#define SECRETD_STORE_ROW_H

#include "store.h"

/* Version byte written by store_row_encode. */
#define STORE_ROW_VERSION 1

/*
 * Encode the scope list and fields of s (borrowed). STORE_OK with *bodyp and *lenp
 * (caller wipes and frees with store_row_free(*bodyp, *lenp)), STORE_NO_MEMORY, or
 * STORE_INVALID when a length does not fit the format.
 */
store_status store_row_encode(const struct store_secret *s, uint8_t **bodyp, size_t *lenp);

/*
 * Decode body[0..len) (borrowed, arbitrary bytes) into a secret named name of type type
 * (both borrowed, NUL-terminated). STORE_OK with *outp (caller frees with
 * store_secret_free), STORE_CORRUPT for any malformed input (also a NULL name or type),
 * or STORE_NO_MEMORY.
 */
store_status store_row_decode(const uint8_t *body, size_t len, const char *name, const char *type,
    struct store_secret **outp);

/* Wipe and free a body from store_row_encode. NULL-safe. */
void store_row_free(uint8_t *body, size_t len);

#endif
