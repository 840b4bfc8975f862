/*
 * scope_internal.h: the memory store's index for resolve. Per type, a hash table from
 * scope string to the bucket of secrets having that scope entry, and the distinct scope
 * lengths present, longest first. resolve tries each length L <= path_len once (a hash
 * lookup of path[0..L)), so its cost grows with the number of distinct lengths, never with
 * the number of secrets. A bucket is a min-heap by name: its top is the secret that wins a
 * tie. A secret with several scope entries is in several buckets; the longest entry that
 * matches is found first. The empty scope "" is a bucket of length 0 matching every path.
 *
 * Like the tables, linking never allocates: store_scope_reserve makes everything a link
 * needs beforehand, so the memory store can prepare a change that may fail and apply it
 * with steps that cannot. Unlinking never allocates.
 *
 * Thread safety: none of its own; the memory store's lock covers it.
 */
#ifndef SECRETD_STORE_SCOPE_INTERNAL_H
#define SECRETD_STORE_SCOPE_INTERNAL_H

#include "store.h"
#include "table_internal.h"

/* One scope entry of a secret in its bucket; the caller keeps s->n_scope of these per
 * secret, untouched between link and unlink. */
struct store_scope_node {
	const struct store_secret *s;
	size_t pos; /* index in the bucket's heap */
};

struct store_scope_index {
	const uint64_t *seed; /* borrowed: the store's hash key (2 words) */
	struct store_table types;
};

/* What linking one secret needs made ahead: opaque. */
struct store_scope_spare;

/* Start an empty index whose tables hash with seed (borrowed for the index's life). */
void store_scope_init(struct store_scope_index *idx, const uint64_t *seed);

/* Free everything the index holds (not the secrets). */
void store_scope_free(struct store_scope_index *idx);

/*
 * Make room for linking s (borrowed): table and heap room in the index, and new buckets
 * and a new type index in *sparep where s needs them. Nothing visible changes.
 * batch_scopes is the number of scope entries of all the secrets that will be linked
 * before anything is unlinked (s->n_scope when s is alone): the room made is enough for
 * all of them, whichever of them is linked first. STORE_OK with *sparep (free with
 * store_scope_spare_free after linking, or instead of it), STORE_NO_MEMORY or
 * STORE_INVALID.
 */
store_status store_scope_reserve(struct store_scope_index *idx, const struct store_secret *s,
    size_t batch_scopes, struct store_scope_spare **sparep);

/* Link s's scope entries, using nodes[0..s->n_scope) and what spare holds. Between the
 * reserve that made spare and this link, the index may only have gained links of the same
 * batch (unlink what s replaces after every link of the batch). */
void store_scope_link(struct store_scope_index *idx, const struct store_secret *s,
    struct store_scope_node *nodes, struct store_scope_spare *spare);

/* Unlink s's scope entries (nodes as given to link). */
void store_scope_unlink(
    struct store_scope_index *idx, const struct store_secret *s, struct store_scope_node *nodes);

/* Free a spare and whatever linking did not use. NULL-safe. */
void store_scope_spare_free(struct store_scope_spare *spare);

/* The secret resolve picks among those of type for path[0..path_len) (borrowed from the
 * index; valid while the caller's lock is held), with its match length; NULL when none. */
const struct store_secret *store_scope_lookup(const struct store_scope_index *idx, const char *type,
    const char *path, size_t path_len, size_t *match_lenp);

#endif
