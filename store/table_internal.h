/*
 * table_internal.h: the hash tables behind the memory store (names) and its scope index
 * (types, scope strings). Open addressing with linear probing; the hash is SipHash-2-4
 * keyed per store, so names chosen to collide cannot turn lookups into scans.
 *
 * Tables do not own their elements: each element begins with (or holds) a struct
 * store_table_key that points at its key, and a table holds pointers to those. Insertion
 * never allocates: store_table_reserve makes room first, so a caller can prepare a change
 * that may fail and then apply it with steps that cannot (what the sqlcipher backend needs
 * after its COMMIT). Tables never shrink.
 *
 * Thread safety: none of its own; the memory store's lock covers its tables.
 */
#ifndef SECRETD_STORE_TABLE_INTERNAL_H
#define SECRETD_STORE_TABLE_INTERNAL_H

#include "store.h"

/* The key of one element, and its hash under the table's seed. */
struct store_table_key {
	const char *key;
	uint32_t key_len;
	uint32_t hash;
};

/* slots holds NULL or an element; cap is 0 or a power of two; count stays at or below two
 * thirds of cap. */
struct store_table {
	struct store_table_key **slots;
	size_t cap;
	size_t count;
};

/* SipHash-2-4 of key[0..len) under seed, cut to 32 bits. */
uint32_t store_table_hash(const uint64_t seed[2], const void *key, size_t len);

/* Point k at key[0..len) (borrowed for as long as k is in a table) and hash it.
 * STORE_INVALID when len does not fit 32 bits. */
store_status store_table_key_init(
    struct store_table_key *k, const uint64_t seed[2], const char *key, size_t len);

/* The element with key[0..len), whose hash is hash, or NULL. */
struct store_table_key *store_table_find(
    const struct store_table *t, const char *key, size_t len, uint32_t hash);

/* Make room for extra more elements: that many inserts cannot fail. STORE_NO_MEMORY. */
store_status store_table_reserve(struct store_table *t, size_t extra);

/* Insert k, whose key is not in t, into room made by store_table_reserve. */
void store_table_insert(struct store_table *t, struct store_table_key *k);

/* Remove k, which is in t. */
void store_table_remove(struct store_table *t, struct store_table_key *k);

/* Put k in the place of old, which is in t and has the same key. */
void store_table_replace(
    struct store_table *t, struct store_table_key *old, struct store_table_key *k);

/* Free the slot array (not the elements) and empty t. */
void store_table_free(struct store_table *t);

#endif
