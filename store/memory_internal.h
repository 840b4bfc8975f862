/*
 * memory_internal.h: the memory backend's two-phase put, for a backend (sqlcipher) that
 * mirrors its data in a memory store and must change that mirror only after its own write
 * succeeded, with no step left that can fail after that write.
 *
 * Use: store_memory_prepare (may fail: nothing changed), then the durable write, then
 * either store_memory_publish (cannot fail) or store_memory_abort. Between prepare and
 * publish/abort the caller must not change the memory store in any other way (the
 * sqlcipher backend holds its write mutex across the three steps); readers may run
 * throughout and see the old state until publish.
 *
 * Not part of store.h: only backends inside store/ use it.
 */
#ifndef SECRETD_STORE_MEMORY_INTERNAL_H
#define SECRETD_STORE_MEMORY_INTERNAL_H

#include "store.h"

struct store_memory_prep;

/*
 * Reserve everything that publishing secret s (insert, or replace of the secret with the
 * same name) will need, as one of a batch of batch_secrets secrets with batch_scopes scope
 * entries in all (1 and s->n_scope alone) that will be published together. s is borrowed
 * until publish or abort. Conflict modes and max_secrets are not checked here: the caller
 * decides. STORE_OK with *prepp, or STORE_NO_MEMORY / STORE_INVALID with nothing changed.
 */
store_status store_memory_prepare(void *impl, struct store_secret *s, size_t batch_secrets,
    size_t batch_scopes, struct store_memory_prep **prepp);

/* Make the prepared secret visible, replacing (and wiping) any secret of the same name.
 * Takes ownership of the secret given to prepare, and frees prep. Cannot fail. */
void store_memory_publish(void *impl, struct store_memory_prep *prep);

/*
 * Publish the n prepared secrets of one batch (distinct names) and remove the names in
 * removes[0..n_removes) (distinct from those), under one lock so readers see all or none:
 * every new secret is linked before any old one is unlinked, so no room reserved for the
 * batch is freed under a later link. Takes the secrets and frees the preps. Cannot fail.
 */
void store_memory_publish_batch(void *impl, struct store_memory_prep *const *preps, size_t n,
    const char *const *removes, size_t n_removes);

/* Drop a reservation. The secret given to prepare stays the caller's. NULL-safe. */
void store_memory_abort(void *impl, struct store_memory_prep *prep);

/* Open a memory store with no limit on its size (for a backend enforcing its own). */
store_status store_memory_open_unlimited(void **implp);

#endif
