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
 * Memory per secret, beyond the secret's own allocation: one entry (32 bytes + 24 per
 * scope entry), a name-table slot, a slot in the sorted array, and per distinct
 * (type, scope) one bucket (32 bytes + the scope string) with its slot.
 */
/* For pthread_rwlockattr_setkind_np (glibc only): see memory_open_with. */
#define _GNU_SOURCE

#include "memory_internal.h"
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MEMORY_DEFAULT_MAX 1000000

/* Every element of a hash table starts with its key, the key's length and its hash. */
struct key_head {
	const char *key;
	uint32_t key_len;
	uint32_t hash;
};

/* Open addressing with linear probing; slots holds NULL or an element; cap is 0 or a
 * power of two, and count stays at or below two thirds of cap. */
struct table {
	struct key_head **slots;
	size_t cap;
	size_t count;
};

/* A secret's membership in one bucket of the scope index. */
struct node {
	struct node *next;
	struct node *prev;
	struct entry *entry;
};

/* One secret held. nodes[i] links scope entry i into its bucket. */
struct entry {
	struct key_head h; /* key: s->name */
	struct store_secret *s;
	size_t n_nodes;
	struct node nodes[];
};

/* The secrets of one type that have one scope string. */
struct bucket {
	struct key_head h; /* key: the scope string, kept in key[] */
	struct node *head;
	struct node *min; /* the member with the smallest name */
	char key[];
};

/* How many buckets of one type have scope strings of length len. */
struct scope_len {
	size_t len;
	size_t n_buckets;
};

/* The scope index of one type. */
struct type_index {
	struct key_head h; /* key: the type name, kept in key[] */
	struct table buckets;
	struct scope_len *lens; /* distinct lengths, longest first */
	size_t n_lens;
	size_t cap_lens;
	char key[];
};

struct store_memory {
	pthread_rwlock_t lock;
	pthread_mutex_t order_lock; /* guards the rebuild of order under the read lock */
	uint64_t seed[2];
	size_t max_secrets;
	struct table names; /* of struct entry */
	struct table types; /* of struct type_index */
	struct entry **order; /* every entry in name order when !order_dirty */
	size_t order_cap;
	bool order_dirty;
};

struct store_memory_prep {
	struct entry *e;
	struct type_index *new_type; /* for e's type when it has no index yet */
	struct bucket *new_buckets[]; /* [i]: for scope i when its bucket was missing */
};

/* SipHash-2-4 (Aumasson and Bernstein), keyed per store. */
static uint64_t
rotl64(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static void
sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl64(v[2], 32);
}

static uint64_t
siphash(const uint64_t k[2], const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t v[4] = {
		0x736f6d6570736575ULL ^ k[0],
		0x646f72616e646f6dULL ^ k[1],
		0x6c7967656e657261ULL ^ k[0],
		0x7465646279746573ULL ^ k[1],
	};
	uint64_t b = (uint64_t)len << 56;
	size_t whole = len - (len & 7);

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = 0;

		for (unsigned j = 0; j < 8; j++)
			m |= (uint64_t)in[i + j] << (8 * j);
		v[3] ^= m;
		sipround(v);
		sipround(v);
		v[0] ^= m;
	}
	for (unsigned j = 0; j < (len & 7); j++)
		b |= (uint64_t)in[whole + j] << (8 * j);
	v[3] ^= b;
	sipround(v);
	sipround(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint32_t
key_hash(const struct store_memory *m, const char *key, size_t len)
{
	return (uint32_t)siphash(m->seed, key, len);
}

/* Fill h for key; STORE_INVALID when the key is longer than a table can index. */
static store_status
key_head_init(const struct store_memory *m, struct key_head *h, const char *key, size_t len)
{
	if (len > UINT32_MAX)
		return STORE_INVALID;
	h->key = key;
	h->key_len = (uint32_t)len;
	h->hash = key_hash(m, key, len);
	return STORE_OK;
}

static struct key_head *
table_find(const struct table *t, const char *key, size_t len, uint32_t hash)
{
	size_t mask = t->cap - 1;

	if (t->cap == 0)
		return NULL;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct key_head *h = t->slots[i];

		if (h == NULL)
			return NULL;
		if (h->hash == hash && h->key_len == len && memcmp(h->key, key, len) == 0)
			return h;
	}
}

/* Index of h, which is in t. */
static size_t
table_slot(const struct table *t, const struct key_head *h)
{
	size_t mask = t->cap - 1;
	size_t i = h->hash & mask;

	while (t->slots[i] != h)
		i = (i + 1) & mask;
	return i;
}

/* Place h in slots (of cap entries, a power of two) at its first free probe position. */
static void
slots_place(struct key_head **slots, size_t cap, struct key_head *h)
{
	size_t mask = cap - 1;
	size_t i = h->hash & mask;

	while (slots[i] != NULL)
		i = (i + 1) & mask;
	slots[i] = h;
}

/* Make room for extra more elements, so that that many table_insert calls cannot fail. */
static store_status
table_reserve(struct table *t, size_t extra)
{
	struct key_head **slots;
	size_t cap = t->cap == 0 ? 16 : t->cap;
	size_t need;

	if (extra > SIZE_MAX - t->count)
		return STORE_NO_MEMORY;
	need = t->count + extra;
	while (need > cap / 3 * 2) {
		if (cap > SIZE_MAX / 2 / sizeof(*slots))
			return STORE_NO_MEMORY;
		cap *= 2;
	}
	if (cap == t->cap)
		return STORE_OK;
	slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return STORE_NO_MEMORY;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i] != NULL)
			slots_place(slots, cap, t->slots[i]);
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return STORE_OK;
}

/* Insert h (whose key is not in t) into room made by table_reserve. */
static void
table_insert(struct table *t, struct key_head *h)
{
	assert(t->count < t->cap / 3 * 2 + 1 && t->cap > 0);
	slots_place(t->slots, t->cap, h);
	t->count++;
}

/* Remove h, which is in t, shifting later members of its probe run back. */
static void
table_remove(struct table *t, struct key_head *h)
{
	size_t mask = t->cap - 1;
	size_t i = table_slot(t, h);
	size_t j = i;

	t->slots[i] = NULL;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (t->slots[j] == NULL)
			break;
		home = t->slots[j]->hash & mask;
		/* Move slots[j] into the hole unless its home lies cyclically in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			t->slots[i] = t->slots[j];
			t->slots[j] = NULL;
			i = j;
		}
	}
	t->count--;
}

static void
table_free(struct table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = 0;
	t->count = 0;
}

/* A type index for type (copied), with room for n_buckets buckets; NULL when out of
 * memory. */
static struct type_index *
type_index_new(const struct store_memory *m, const char *type, size_t n_buckets)
{
	struct type_index *ti = NULL;
	size_t len = strlen(type);

	if (len > UINT32_MAX || len > SIZE_MAX - sizeof(*ti) - 1 ||
	    n_buckets > SIZE_MAX / sizeof(*ti->lens))
		return NULL;
	ti = calloc(1, sizeof(*ti) + len + 1);
	if (ti == NULL)
		goto fail;
	memcpy(ti->key, type, len + 1);
	if (key_head_init(m, &ti->h, ti->key, len) != STORE_OK)
		goto fail;
	if (table_reserve(&ti->buckets, n_buckets) != STORE_OK)
		goto fail;
	ti->lens = calloc(n_buckets, sizeof(*ti->lens));
	if (ti->lens == NULL)
		goto fail;
	ti->cap_lens = n_buckets;
	return ti;
fail:
	if (ti != NULL)
		table_free(&ti->buckets);
	free(ti);
	return NULL;
}

static void
type_index_free(struct type_index *ti)
{
	if (ti == NULL)
		return;
	for (size_t i = 0; i < ti->buckets.cap; i++) {
		struct bucket *b = (struct bucket *)ti->buckets.slots[i];

		if (b != NULL) {
			explicit_bzero(b->key, b->h.key_len);
			free(b);
		}
	}
	table_free(&ti->buckets);
	free(ti->lens);
	explicit_bzero(ti->key, ti->h.key_len);
	free(ti);
}

/* Make room for extra more distinct lengths in ti. */
static store_status
lens_reserve(struct type_index *ti, size_t extra)
{
	struct scope_len *lens;
	size_t cap;

	if (extra > SIZE_MAX - ti->n_lens)
		return STORE_NO_MEMORY;
	if (ti->n_lens + extra <= ti->cap_lens)
		return STORE_OK;
	cap = ti->n_lens + extra;
	if (cap < ti->cap_lens * 2)
		cap = ti->cap_lens * 2;
	if (cap > SIZE_MAX / sizeof(*lens))
		return STORE_NO_MEMORY;
	lens = realloc(ti->lens, cap * sizeof(*lens));
	if (lens == NULL)
		return STORE_NO_MEMORY;
	ti->lens = lens;
	ti->cap_lens = cap;
	return STORE_OK;
}

/* Position of len in ti->lens (longest first), or where it would go. */
static size_t
lens_search(const struct type_index *ti, size_t len, bool *foundp)
{
	size_t lo = 0;
	size_t hi = ti->n_lens;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ti->lens[mid].len == len) {
			*foundp = true;
			return mid;
		}
		if (ti->lens[mid].len > len)
			lo = mid + 1;
		else
			hi = mid;
	}
	*foundp = false;
	return lo;
}

/* Count one more bucket of length len; room was made by lens_reserve. */
static void
lens_add(struct type_index *ti, size_t len)
{
	bool found;
	size_t i = lens_search(ti, len, &found);

	if (found) {
		ti->lens[i].n_buckets++;
		return;
	}
	assert(ti->n_lens < ti->cap_lens);
	memmove(&ti->lens[i + 1], &ti->lens[i], (ti->n_lens - i) * sizeof(*ti->lens));
	ti->lens[i].len = len;
	ti->lens[i].n_buckets = 1;
	ti->n_lens++;
}

static void
lens_remove(struct type_index *ti, size_t len)
{
	bool found;
	size_t i = lens_search(ti, len, &found);

	assert(found);
	if (--ti->lens[i].n_buckets > 0)
		return;
	memmove(&ti->lens[i], &ti->lens[i + 1], (ti->n_lens - i - 1) * sizeof(*ti->lens));
	ti->n_lens--;
}

static struct type_index *
type_find(const struct store_memory *m, const char *type, size_t len)
{
	return (struct type_index *)table_find(&m->types, type, len, key_hash(m, type, len));
}

static struct bucket *
bucket_find(const struct store_memory *m, const struct type_index *ti, const char *scope,
    size_t len)
{
	return (struct bucket *)table_find(&ti->buckets, scope, len, key_hash(m, scope, len));
}

static struct entry *
entry_find(const struct store_memory *m, const char *name)
{
	size_t len = strlen(name);

	return (struct entry *)table_find(&m->names, name, len, key_hash(m, name, len));
}

/* Link scope entry i of e into its bucket, taking the prepared bucket when missing. */
static void
node_link(struct store_memory *m, struct type_index *ti, struct entry *e, size_t i,
    struct store_memory_prep *prep)
{
	const char *scope = e->s->scope[i];
	size_t len = strlen(scope);
	struct bucket *b = bucket_find(m, ti, scope, len);
	struct node *n = &e->nodes[i];

	if (b == NULL) {
		b = prep->new_buckets[i];
		prep->new_buckets[i] = NULL;
		assert(b != NULL);
		table_insert(&ti->buckets, &b->h);
		lens_add(ti, len);
	}
	n->prev = NULL;
	n->next = b->head;
	if (b->head != NULL)
		b->head->prev = n;
	b->head = n;
	/* <=: a replacing entry has the old one's name and should take over as min, so
	 * unlinking the old one does not rescan the bucket. */
	if (b->min == NULL || strcmp(e->s->name, b->min->entry->s->name) <= 0)
		b->min = n;
}

/* Unlink scope entry i of e; frees its bucket when it empties. */
static void
node_unlink(struct store_memory *m, struct type_index *ti, struct entry *e, size_t i)
{
	const char *scope = e->s->scope[i];
	size_t len = strlen(scope);
	struct bucket *b = bucket_find(m, ti, scope, len);
	struct node *n = &e->nodes[i];

	assert(b != NULL);
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		b->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	n->next = n->prev = NULL;
	if (b->head == NULL) {
		table_remove(&ti->buckets, &b->h);
		lens_remove(ti, len);
		explicit_bzero(b->key, len);
		free(b);
		return;
	}
	if (b->min != n)
		return;
	b->min = b->head;
	for (struct node *o = b->head->next; o != NULL; o = o->next) {
		if (strcmp(o->entry->s->name, b->min->entry->s->name) < 0)
			b->min = o;
	}
}

/* Take e out of the scope index (not out of the name table). */
static void
entry_unindex(struct store_memory *m, struct entry *e)
{
	struct type_index *ti;

	if (e->n_nodes == 0)
		return;
	ti = type_find(m, e->s->type, strlen(e->s->type));
	assert(ti != NULL);
	for (size_t i = 0; i < e->n_nodes; i++)
		node_unlink(m, ti, e, i);
	if (ti->buckets.count == 0) {
		table_remove(&m->types, &ti->h);
		type_index_free(ti);
	}
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
	if (prep->e != NULL) {
		for (size_t i = 0; i < prep->e->n_nodes; i++)
			free(prep->new_buckets[i]);
		free(prep->e);
	}
	type_index_free(prep->new_type);
	free(prep);
}

/* A bucket for scope (copied) with no members; NULL when out of memory. */
static struct bucket *
bucket_new(const struct store_memory *m, const char *scope, size_t len)
{
	struct bucket *b;

	if (len > UINT32_MAX || len > SIZE_MAX - sizeof(*b) - 1)
		return NULL;
	b = calloc(1, sizeof(*b) + len + 1);
	if (b == NULL)
		return NULL;
	memcpy(b->key, scope, len + 1);
	(void)key_head_init(m, &b->h, b->key, len);
	return b;
}

/* prepare's work, under the write lock. */
static store_status
prepare_locked(struct store_memory *m, struct store_secret *s, struct store_memory_prep **prepp)
{
	struct store_memory_prep *prep = NULL;
	struct type_index *ti = NULL;
	size_t k = s->n_scope;
	store_status rc = STORE_NO_MEMORY;

	*prepp = NULL;
	if (k > (SIZE_MAX - sizeof(struct entry)) / sizeof(struct node) ||
	    k > (SIZE_MAX - sizeof(*prep)) / sizeof(prep->new_buckets[0]))
		goto done;
	prep = calloc(1, sizeof(*prep) + k * sizeof(prep->new_buckets[0]));
	if (prep == NULL)
		goto done;
	prep->e = calloc(1, sizeof(*prep->e) + k * sizeof(struct node));
	if (prep->e == NULL)
		goto done;
	prep->e->s = s;
	prep->e->n_nodes = k;
	for (size_t i = 0; i < k; i++)
		prep->e->nodes[i].entry = prep->e;
	rc = key_head_init(m, &prep->e->h, s->name, strlen(s->name));
	if (rc != STORE_OK)
		goto done;
	rc = table_reserve(&m->names, 1);
	if (rc != STORE_OK || k == 0)
		goto done;

	rc = STORE_NO_MEMORY;
	ti = type_find(m, s->type, strlen(s->type));
	if (ti == NULL) {
		prep->new_type = type_index_new(m, s->type, k);
		if (prep->new_type == NULL)
			goto done;
		ti = prep->new_type;
		rc = table_reserve(&m->types, 1);
	} else {
		rc = table_reserve(&ti->buckets, k);
		if (rc == STORE_OK)
			rc = lens_reserve(ti, k);
	}
	if (rc != STORE_OK)
		goto done;
	for (size_t i = 0; i < k; i++) {
		size_t len = strlen(s->scope[i]);

		if (bucket_find(m, ti, s->scope[i], len) != NULL)
			continue;
		prep->new_buckets[i] = bucket_new(m, s->scope[i], len);
		if (prep->new_buckets[i] == NULL) {
			rc = STORE_NO_MEMORY;
			goto done;
		}
	}
	rc = STORE_OK;
done:
	if (rc == STORE_OK) {
		*prepp = prep;
		prep = NULL;
	}
	prep_free(prep);
	return rc;
}

/* publish's work, under the write lock. */
static void
publish_locked(struct store_memory *m, struct store_memory_prep *prep)
{
	struct entry *e = prep->e;
	struct entry *old = entry_find(m, e->s->name);

	if (e->n_nodes > 0) {
		struct type_index *ti = type_find(m, e->s->type, strlen(e->s->type));

		if (ti == NULL) {
			ti = prep->new_type;
			prep->new_type = NULL;
			assert(ti != NULL);
			table_insert(&m->types, &ti->h);
		}
		/* New links first, so buckets the old secret shares with the new one are not
		 * freed and re-made. */
		for (size_t i = 0; i < e->n_nodes; i++)
			node_link(m, ti, e, i, prep);
	}
	if (old != NULL) {
		entry_unindex(m, old);
		m->names.slots[table_slot(&m->names, &old->h)] = &e->h;
		entry_free(old);
	} else {
		table_insert(&m->names, &e->h);
	}
	m->order_dirty = true;
	prep->e = NULL;
	/* Buckets prepared for a scope that appeared twice in e are still here. */
	for (size_t i = 0; i < e->n_nodes; i++)
		free(prep->new_buckets[i]);
	type_index_free(prep->new_type);
	free(prep);
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
	if (pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) !=
	    0)
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
	return memory_open_with(cfg->max_secrets == 0 ? MEMORY_DEFAULT_MAX : cfg->max_secrets,
	    implp);
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
	for (size_t i = 0; i < m->types.cap; i++)
		type_index_free((struct type_index *)m->types.slots[i]);
	table_free(&m->names);
	table_free(&m->types);
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
	rc = prepare_locked(m, s, &prep);
	if (rc != STORE_OK)
		goto unlock;
	publish_locked(m, prep);
	s = NULL;
	*createdp = true;
unlock:
	unlock(m);
fail:
	store_secret_free(s);
	return rc;
}

store_status
store_memory_prepare(void *impl, struct store_secret *s, struct store_memory_prep **prepp)
{
	struct store_memory *m = impl;
	store_status rc;

	*prepp = NULL;
	if (!write_lock(m))
		return STORE_IO;
	rc = prepare_locked(m, s, prepp);
	unlock(m);
	return rc;
}

void
store_memory_publish(void *impl, struct store_memory_prep *prep)
{
	struct store_memory *m = impl;

	bool locked = write_lock(m);

	/* wrlock fails only on misuse (this thread already holds the lock): an invariant. */
	assert(locked);
	(void)locked;
	publish_locked(m, prep);
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
		entry_unindex(m, e);
		table_remove(&m->names, &e->h);
		m->order_dirty = true;
	}
	unlock(m);
	if (e == NULL)
		return STORE_NOT_FOUND;
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
	const struct type_index *ti;
	store_status rc = STORE_NOT_FOUND;

	*outp = NULL;
	*match_lenp = 0;
	if (!read_lock(m))
		return STORE_IO;
	ti = type_find(m, type, strlen(type));
	/* Longest length first: the first bucket found holds the longest matching scope,
	 * and its cached min is the smallest name among the secrets with that scope. */
	for (size_t i = 0; ti != NULL && i < ti->n_lens; i++) {
		size_t len = ti->lens[i].len;
		const struct bucket *b;

		if (len > path_len)
			continue;
		b = bucket_find(m, ti, path, len);
		if (b == NULL)
			continue;
		rc = store_secret_dup(b->min->entry->s, outp);
		if (rc == STORE_OK)
			*match_lenp = len;
		break;
	}
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
	(void)impl;
	(void)key;
	(void)key_len;
	return STORE_OK;
}

const struct store_ops store_memory_ops = {
	.name = "memory",
	.open = memory_open,
	.close = memory_close,
	.put = memory_put,
	.get = memory_get,
	.contains = memory_contains,
	.remove = memory_remove,
	.list = memory_list,
	.resolve = memory_resolve,
	.count = memory_count,
	.rekey = memory_rekey,
};
