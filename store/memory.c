/*
 * memory.c: the "memory" backend. Secrets live in a hash table keyed by name; an index
 * keyed by (type, scope string) answers resolve without looking at every secret; a sorted
 * array of entries, rebuilt lazily, gives list its name order.
 *
 * What it does not do: no persistence, no validation of names, types or fields (the
 * server does that), and the tables never shrink after deletions (their slot arrays stay
 * at their largest size until close).
 *
 * Thread safety: one rwlock per store. get, contains, count, resolve and list take it for
 * reading, put and remove for writing, so a put's conflict check and its write are atomic.
 * list rebuilds the sorted array under a separate mutex while holding the read lock: a
 * writer cannot run then, so readers iterating an array never see it change.
 *
 * Why not uthash: the sqlcipher backend must update this mirror after its COMMIT with no
 * step that can fail (else disk and memory would disagree). uthash allocates inside its
 * add macros and cannot reserve capacity; these open-addressing tables can (reserve, then
 * insert). They also cost 8 bytes per slot where uthash adds a 56-byte handle to each
 * element, and their hash is SipHash keyed per store, so names chosen to collide cannot
 * turn lookups into scans.
 *
 * The tables are in table.c, the resolve index in scope.c.
 *
 * Memory per secret, beyond the secret's own allocation: one entry (24 bytes + 16 per
 * scope entry), a name-table slot, a slot in the sorted array, a heap slot per scope entry,
 * and per distinct (type, scope) one bucket (56 bytes + the scope string) with its slot.
 * Measured at 1,000,000 secrets with one field and a scope each: about 145 bytes per
 * secret beyond the secrets' own allocations when every scope differs, 61 when all share.
 */
/* For pthread_rwlockattr_setkind_np (glibc only): see memory_open_with. */
#define _GNU_SOURCE

#include "memory_internal.h"
#include "scope_internal.h"
#include "store.h"
#include "table_internal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MEMORY_DEFAULT_MAX 1000000

/* One secret held. nodes[i] places scope entry i in the resolve index. */
struct entry {
	struct store_table_key k; /* s->name */
	struct store_secret *s;
	struct store_scope_node nodes[];
};

struct store_memory {
	pthread_rwlock_t lock;
	pthread_mutex_t order_lock; /* guards the rebuild of order under the read lock */
	uint64_t seed[2];           /* SipHash key of every table of this store */
	size_t max_secrets;
	struct store_table names; /* of struct entry */
	struct store_scope_index scopes;
	struct entry **order; /* every entry in name order when !order_dirty */
	size_t order_cap;
	bool order_dirty;
	/* store_config.on_change: called after each change is visible (NULL for a mirror). */
	void (*on_change)(void *arg, const char *name);
	void *on_change_arg;
};

struct store_memory_prep {
	struct entry *e;
	struct store_scope_spare *spare;
	struct entry *old; /* during a batch publish: the entry e replaced */
};

static struct entry *
entry_find(const struct store_memory *m, const char *name)
{
	size_t len = strlen(name);

	return (struct entry *)store_table_find(
	    &m->names, name, len, store_table_hash(m->seed, name, len));
}

/* Free an entry and wipe its secret. */
static void
entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	store_secret_free(e->s);
	free(e);
}

static void
prep_free(struct store_memory_prep *prep)
{
	if (prep == NULL)
		return;
	free(prep->e); /* not its secret: that is still the caller's */
	store_scope_spare_free(prep->spare);
	free(prep);
}

/* prepare's work, under the write lock. */
static store_status
prepare_locked(struct store_memory *m, struct store_secret *s, size_t batch_secrets,
    size_t batch_scopes, struct store_memory_prep **prepp)
{
	struct store_memory_prep *prep = NULL;
	size_t k = s->n_scope;
	store_status rc = STORE_NO_MEMORY;

	*prepp = NULL;
	if (k > (SIZE_MAX - sizeof(struct entry)) / sizeof(struct store_scope_node))
		goto fail;
	prep = calloc(1, sizeof(*prep));
	if (prep == NULL)
		goto fail;
	prep->e = calloc(1, sizeof(*prep->e) + k * sizeof(struct store_scope_node));
	if (prep->e == NULL)
		goto fail;
	prep->e->s = s;
	rc = store_table_key_init(&prep->e->k, m->seed, s->name, strlen(s->name));
	if (rc == STORE_OK)
		rc = store_table_reserve(&m->names, batch_secrets > 0 ? batch_secrets : 1);
	if (rc == STORE_OK)
		rc = store_scope_reserve(&m->scopes, s, batch_scopes, &prep->spare);
	if (rc != STORE_OK)
		goto fail;
	*prepp = prep;
	prep = NULL;
fail:
	prep_free(prep);
	return rc;
}

/*
 * publish's work for a batch, under the write lock: link every new secret first (replacing
 * the old one's name entry), then unlink and free the old ones and the removed names.
 */
static void
publish_locked(struct store_memory *m, struct store_memory_prep *const *preps, size_t n,
    const char *const *removes, size_t n_removes)
{
	for (size_t i = 0; i < n; i++) {
		struct entry *e = preps[i]->e;
		struct entry *old = entry_find(m, e->s->name);

		store_scope_link(&m->scopes, e->s, e->nodes, preps[i]->spare);
		if (old != NULL)
			store_table_replace(&m->names, &old->k, &e->k);
		else
			store_table_insert(&m->names, &e->k);
		preps[i]->old = old;
		preps[i]->e = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct entry *old = preps[i]->old;

		if (old != NULL) {
			store_scope_unlink(&m->scopes, old->s, old->nodes);
			entry_free(old);
			preps[i]->old = NULL;
		}
		prep_free(preps[i]);
	}
	for (size_t i = 0; i < n_removes; i++) {
		struct entry *e = entry_find(m, removes[i]);

		if (e == NULL)
			continue;
		store_scope_unlink(&m->scopes, e->s, e->nodes);
		store_table_remove(&m->names, &e->k);
		entry_free(e);
	}
	m->order_dirty = true;
}

static store_status
memory_open_with(size_t max_secrets, void **implp)
{
	struct store_memory *m = NULL;
	pthread_rwlockattr_t attr;
	bool attr_ok = false;
	bool lock_ok = false;
	store_status rc = STORE_NO_MEMORY;

	*implp = NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto fail;
	m->max_secrets = max_secrets;
	store_scope_init(&m->scopes, m->seed);
	rc = STORE_IO;
	if (getrandom(m->seed, sizeof(m->seed), 0) != (ssize_t)sizeof(m->seed))
		goto fail;
	rc = STORE_NO_MEMORY;
	if (pthread_rwlockattr_init(&attr) != 0)
		goto fail;
	attr_ok = true;
#ifdef __GLIBC__
	/* glibc prefers readers by default, so a steady stream of readers would starve put.
	 * No reader here takes the lock twice, which this kind forbids. */
	if (pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) != 0)
		goto fail;
#endif
	if (pthread_rwlock_init(&m->lock, &attr) != 0)
		goto fail;
	lock_ok = true;
	if (pthread_mutex_init(&m->order_lock, NULL) != 0)
		goto fail;
	*implp = m;
	m = NULL;
	rc = STORE_OK;
fail:
	if (attr_ok)
		(void)pthread_rwlockattr_destroy(&attr);
	if (m != NULL) {
		if (lock_ok)
			(void)pthread_rwlock_destroy(&m->lock);
		explicit_bzero(m->seed, sizeof(m->seed));
		free(m);
	}
	return rc;
}

static store_status
memory_open(const struct store_config *cfg, void **implp)
{
	store_status rc =
	    memory_open_with(cfg->max_secrets == 0 ? MEMORY_DEFAULT_MAX : cfg->max_secrets, implp);

	if (rc == STORE_OK) {
		struct store_memory *m = *implp;

		m->on_change = cfg->on_change;
		m->on_change_arg = cfg->on_change_arg;
	}
	return rc;
}

store_status
store_memory_open_unlimited(void **implp)
{
	return memory_open_with(SIZE_MAX, implp);
}

static void
memory_close(void *impl)
{
	struct store_memory *m = impl;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->names.cap; i++)
		entry_free((struct entry *)m->names.slots[i]);
	store_scope_free(&m->scopes);
	store_table_free(&m->names);
	free(m->order);
	(void)pthread_mutex_destroy(&m->order_lock);
	(void)pthread_rwlock_destroy(&m->lock);
	explicit_bzero(m->seed, sizeof(m->seed));
	free(m);
}

/*
 * The lock calls can fail only on misuse (EDEADLK, EAGAIN past the reader limit); they are
 * checked, and a failure is reported as STORE_IO by the callers that return a status.
 */
static bool
read_lock(struct store_memory *m)
{
	return pthread_rwlock_rdlock(&m->lock) == 0;
}

static bool
write_lock(struct store_memory *m)
{
	return pthread_rwlock_wrlock(&m->lock) == 0;
}

static void
unlock(struct store_memory *m)
{
	(void)pthread_rwlock_unlock(&m->lock);
}

static store_status
memory_put(void *impl, struct store_secret *s, enum store_conflict mode, bool *createdp)
{
	struct store_memory *m = impl;
	struct store_memory_prep *prep = NULL;
	store_status rc = STORE_IO;

	*createdp = false;
	if (!write_lock(m))
		goto fail;
	if (entry_find(m, s->name) != NULL) {
		if (mode == STORE_CONFLICT_ERROR)
			rc = STORE_EXISTS;
		else if (mode == STORE_CONFLICT_IGNORE)
			rc = STORE_OK;
		if (mode != STORE_CONFLICT_REPLACE)
			goto unlock;
	} else if (m->names.count >= m->max_secrets) {
		rc = STORE_FULL;
		goto unlock;
	}
	rc = prepare_locked(m, s, 1, s->n_scope, &prep);
	if (rc != STORE_OK)
		goto unlock;
	publish_locked(m, &prep, 1, NULL, 0);
	/* Under the write lock: the name belongs to the store now, and a later write to it
	 * cannot be observed before this one. */
	if (m->on_change != NULL)
		m->on_change(m->on_change_arg, s->name);
	s = NULL;
	*createdp = true;
unlock:
	unlock(m);
fail:
	store_secret_free(s);
	return rc;
}

store_status
store_memory_prepare(void *impl, struct store_secret *s, size_t batch_secrets, size_t batch_scopes,
    struct store_memory_prep **prepp)
{
	struct store_memory *m = impl;
	store_status rc;

	*prepp = NULL;
	if (!write_lock(m))
		return STORE_IO;
	rc = prepare_locked(m, s, batch_secrets, batch_scopes, prepp);
	unlock(m);
	return rc;
}

void
store_memory_publish(void *impl, struct store_memory_prep *prep)
{
	store_memory_publish_batch(impl, &prep, 1, NULL, 0);
}

void
store_memory_publish_batch(void *impl, struct store_memory_prep *const *preps, size_t n,
    const char *const *removes, size_t n_removes)
{
	struct store_memory *m = impl;

	bool locked = write_lock(m);

	/* wrlock fails only on misuse (this thread already holds the lock): an invariant. */
	assert(locked);
	(void)locked;
	publish_locked(m, preps, n, removes, n_removes);
	unlock(m);
}

void
store_memory_abort(void *impl, struct store_memory_prep *prep)
{
	(void)impl;
	prep_free(prep);
}

static store_status
memory_get(void *impl, const char *name, struct store_secret **outp)
{
	struct store_memory *m = impl;
	struct entry *e;
	store_status rc = STORE_NOT_FOUND;

	*outp = NULL;
	if (!read_lock(m))
		return STORE_IO;
	e = entry_find(m, name);
	if (e != NULL)
		rc = store_secret_dup(e->s, outp);
	unlock(m);
	return rc;
}

static store_status
memory_read(void *impl, const char *name, store_visit_fn visit, void *arg)
{
	struct store_memory *m = impl;
	struct entry *e;

	if (!read_lock(m))
		return STORE_IO;
	e = entry_find(m, name);
	if (e != NULL)
		(void)visit(e->s, arg);
	unlock(m);
	return e != NULL ? STORE_OK : STORE_NOT_FOUND;
}

static bool
memory_contains(void *impl, const char *name)
{
	struct store_memory *m = impl;
	bool found;

	if (!read_lock(m))
		return false;
	found = entry_find(m, name) != NULL;
	unlock(m);
	return found;
}

static store_status
memory_remove(void *impl, const char *name)
{
	struct store_memory *m = impl;
	struct entry *e;

	if (!write_lock(m))
		return STORE_IO;
	e = entry_find(m, name);
	if (e != NULL) {
		store_scope_unlink(&m->scopes, e->s, e->nodes);
		store_table_remove(&m->names, &e->k);
		m->order_dirty = true;
	}
	unlock(m);
	if (e == NULL)
		return STORE_NOT_FOUND;
	/* e is unlinked and ours alone: its name stays valid until entry_free. */
	if (m->on_change != NULL)
		m->on_change(m->on_change_arg, e->s->name);
	entry_free(e);
	return STORE_OK;
}

static int
entry_name_cmp(const void *a, const void *b)
{
	const struct entry *const *ea = a;
	const struct entry *const *eb = b;

	return strcmp((*ea)->s->name, (*eb)->s->name);
}

/* Rebuild m->order; the caller holds the read lock and order_lock. */
static store_status
order_rebuild(struct store_memory *m)
{
	size_t n = 0;

	if (m->names.count > m->order_cap) {
		struct entry **order;
		/* Some slack, so a store growing between lists is not reallocated each time. */
		size_t cap = m->names.count + m->names.count / 8 + 16;

		if (cap < m->names.count || cap > SIZE_MAX / sizeof(*order))
			return STORE_NO_MEMORY;
		order = realloc(m->order, cap * sizeof(*order));
		if (order == NULL)
			return STORE_NO_MEMORY;
		m->order = order;
		m->order_cap = cap;
	}
	for (size_t i = 0; i < m->names.cap; i++) {
		if (m->names.slots[i] != NULL)
			m->order[n++] = (struct entry *)m->names.slots[i];
	}
	if (n > 1)
		qsort(m->order, n, sizeof(*m->order), entry_name_cmp);
	m->order_dirty = false;
	return STORE_OK;
}

static store_status
memory_list(void *impl, const char *type, store_visit_fn visit, void *arg)
{
	struct store_memory *m = impl;
	store_status rc = STORE_OK;

	if (!read_lock(m))
		return STORE_IO;
	if (pthread_mutex_lock(&m->order_lock) != 0) {
		rc = STORE_IO;
		goto unlock;
	}
	if (m->order_dirty)
		rc = order_rebuild(m);
	(void)pthread_mutex_unlock(&m->order_lock);
	if (rc != STORE_OK)
		goto unlock;
	/* No writer can run while we hold the read lock, so order stays as rebuilt. */
	for (size_t i = 0; i < m->names.count; i++) {
		const struct store_secret *s = m->order[i]->s;

		if (type != NULL && strcmp(s->type, type) != 0)
			continue;
		if (!visit(s, arg))
			break;
	}
unlock:
	unlock(m);
	return rc;
}

static store_status
memory_resolve(void *impl, const char *type, const char *path, size_t path_len,
    struct store_secret **outp, size_t *match_lenp)
{
	struct store_memory *m = impl;
	const struct store_secret *found;
	store_status rc = STORE_NOT_FOUND;

	*outp = NULL;
	*match_lenp = 0;
	if (!read_lock(m))
		return STORE_IO;
	found = store_scope_lookup(&m->scopes, type, path, path_len, match_lenp);
	if (found != NULL)
		rc = store_secret_dup(found, outp);
	if (rc != STORE_OK)
		*match_lenp = 0;
	unlock(m);
	return rc;
}

static size_t
memory_count(void *impl)
{
	struct store_memory *m = impl;
	size_t n = 0;

	if (!read_lock(m))
		return 0;
	n = m->names.count;
	unlock(m);
	return n;
}

static store_status
memory_rekey(void *impl, const uint8_t *key, size_t key_len)
{
	/* Nothing at rest to re-encrypt; the argument is checked as for a raw key. */
	(void)impl;
	(void)key;
	return key_len == STORE_KEY_LEN ? STORE_OK : STORE_INVALID;
}

const struct store_ops store_memory_ops = {
    .name = "memory",
    .open = memory_open,
    .close = memory_close,
    .put = memory_put,
    .get = memory_get,
    .contains = memory_contains,
    .read = memory_read,
    .remove = memory_remove,
    .list = memory_list,
    .resolve = memory_resolve,
    .count = memory_count,
    .rekey = memory_rekey,
};
