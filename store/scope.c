/*
 * scope.c: the (type, scope string) index behind resolve. See scope_internal.h.
 *
 * Thread safety: none; the memory store's lock covers every call.
 */
#include "scope_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/*
 * The secrets of one type that have one scope string, in a binary min-heap by name:
 * heap[0] is the member resolve answers with. A heap rather than a cached minimum with a
 * rescan when it leaves: removing secrets in name order from a bucket they all share (the
 * default scope) would rescan the bucket each time.
 */
struct bucket {
	struct store_table_key k; /* the scope string, kept in key[] */
	struct store_scope_node **heap;
	size_t n;
	size_t cap;
	struct store_scope_node *first; /* the heap's storage while cap is 1 */
	char key[];
};

/* How many buckets of one type have scope strings of length len. */
struct scope_len {
	size_t len;
	size_t n_buckets;
};

/* The index of one type. */
struct type_index {
	struct store_table_key k; /* the type name, kept in key[] */
	struct store_table buckets;
	struct scope_len *lens; /* distinct lengths, longest first */
	size_t n_lens;
	size_t cap_lens;
	char key[];
};

struct store_scope_spare {
	struct type_index *new_type; /* for the secret's type when it has no index yet */
	size_t n;
	struct bucket *new_buckets[]; /* [i]: for scope entry i when its bucket was missing */
};

static void
bucket_free(struct bucket *b)
{
	if (b == NULL)
		return;
	if (b->heap != &b->first)
		free(b->heap);
	explicit_bzero(b->key, b->k.key_len);
	free(b);
}

/* A bucket for scope[0..len) (copied) with no members and room for cap; NULL when out of
 * memory. */
static struct bucket *
bucket_new(const uint64_t *seed, const char *scope, size_t len, size_t cap)
{
	struct bucket *b;

	if (len > UINT32_MAX || len > SIZE_MAX - sizeof(*b) - 1 || cap == 0 ||
	    cap > SIZE_MAX / sizeof(*b->heap))
		return NULL;
	b = calloc(1, sizeof(*b) + len + 1);
	if (b == NULL)
		return NULL;
	memcpy(b->key, scope, len + 1);
	(void)store_table_key_init(&b->k, seed, b->key, len);
	b->cap = cap;
	b->heap = &b->first;
	if (cap > 1) {
		b->heap = calloc(cap, sizeof(*b->heap));
		if (b->heap == NULL) {
			free(b);
			return NULL;
		}
	}
	return b;
}

/* Make room for extra more members in b's heap. */
static store_status
heap_reserve(struct bucket *b, size_t extra)
{
	struct store_scope_node **heap;
	size_t cap;

	if (extra > SIZE_MAX - b->n)
		return STORE_NO_MEMORY;
	if (b->n + extra <= b->cap)
		return STORE_OK;
	cap = b->n + extra;
	if (cap < b->cap * 2)
		cap = b->cap * 2;
	if (cap > SIZE_MAX / sizeof(*heap))
		return STORE_NO_MEMORY;
	heap = malloc(cap * sizeof(*heap));
	if (heap == NULL)
		return STORE_NO_MEMORY;
	memcpy(heap, b->heap, b->n * sizeof(*heap));
	if (b->heap != &b->first)
		free(b->heap);
	b->heap = heap;
	b->cap = cap;
	return STORE_OK;
}

static bool
node_less(const struct store_scope_node *a, const struct store_scope_node *b)
{
	return strcmp(a->s->name, b->s->name) < 0;
}

static void
heap_set(struct bucket *b, size_t i, struct store_scope_node *n)
{
	b->heap[i] = n;
	n->pos = i;
}

static void
heap_up(struct bucket *b, size_t i)
{
	struct store_scope_node *n = b->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!node_less(n, b->heap[parent]))
			break;
		heap_set(b, i, b->heap[parent]);
		i = parent;
	}
	heap_set(b, i, n);
}

static void
heap_down(struct bucket *b, size_t i)
{
	struct store_scope_node *n = b->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= b->n)
			break;
		if (child + 1 < b->n && node_less(b->heap[child + 1], b->heap[child]))
			child++;
		if (!node_less(b->heap[child], n))
			break;
		heap_set(b, i, b->heap[child]);
		i = child;
	}
	heap_set(b, i, n);
}

static void
type_index_free(struct type_index *ti)
{
	if (ti == NULL)
		return;
	for (size_t i = 0; i < ti->buckets.cap; i++)
		bucket_free((struct bucket *)ti->buckets.slots[i]);
	store_table_free(&ti->buckets);
	free(ti->lens);
	explicit_bzero(ti->key, ti->k.key_len);
	free(ti);
}

/* A type index for type (copied) with room for n_buckets buckets; NULL when out of memory. */
static struct type_index *
type_index_new(const uint64_t *seed, const char *type, size_t n_buckets)
{
	struct type_index *ti;
	size_t len = strlen(type);

	if (len > UINT32_MAX || len > SIZE_MAX - sizeof(*ti) - 1 || n_buckets == 0 ||
	    n_buckets > SIZE_MAX / sizeof(*ti->lens))
		return NULL;
	ti = calloc(1, sizeof(*ti) + len + 1);
	if (ti == NULL)
		return NULL;
	memcpy(ti->key, type, len + 1);
	(void)store_table_key_init(&ti->k, seed, ti->key, len);
	ti->lens = calloc(n_buckets, sizeof(*ti->lens));
	if (ti->lens == NULL || store_table_reserve(&ti->buckets, n_buckets) != STORE_OK) {
		type_index_free(ti);
		return NULL;
	}
	ti->cap_lens = n_buckets;
	return ti;
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

	*foundp = false;
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
	return lo;
}

/* Count one more bucket of length len, in room made by lens_reserve. */
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
type_find(const struct store_scope_index *idx, const char *type)
{
	size_t len = strlen(type);

	return (struct type_index *)store_table_find(
	    &idx->types, type, len, store_table_hash(idx->seed, type, len));
}

static struct bucket *
bucket_find(
    const struct store_scope_index *idx, const struct type_index *ti, const char *scope, size_t len)
{
	return (struct bucket *)store_table_find(
	    &ti->buckets, scope, len, store_table_hash(idx->seed, scope, len));
}

void
store_scope_init(struct store_scope_index *idx, const uint64_t *seed)
{
	memset(idx, 0, sizeof(*idx));
	idx->seed = seed;
}

void
store_scope_free(struct store_scope_index *idx)
{
	for (size_t i = 0; i < idx->types.cap; i++)
		type_index_free((struct type_index *)idx->types.slots[i]);
	store_table_free(&idx->types);
}

void
store_scope_spare_free(struct store_scope_spare *spare)
{
	if (spare == NULL)
		return;
	for (size_t i = 0; i < spare->n; i++)
		bucket_free(spare->new_buckets[i]);
	type_index_free(spare->new_type);
	free(spare);
}

store_status
store_scope_reserve(struct store_scope_index *idx, const struct store_secret *s,
    size_t batch_scopes, struct store_scope_spare **sparep)
{
	struct store_scope_spare *spare = NULL;
	struct type_index *ti;
	size_t k = s->n_scope;
	/* Room for every scope entry of the batch s belongs to, in every structure s may
	 * land in: other secrets of the batch may be linked first, into the same buckets. */
	size_t room = batch_scopes > k ? batch_scopes : k;
	store_status rc = STORE_NO_MEMORY;

	*sparep = NULL;
	if (k > (SIZE_MAX - sizeof(*spare)) / sizeof(spare->new_buckets[0]))
		goto fail;
	spare = calloc(1, sizeof(*spare) + k * sizeof(spare->new_buckets[0]));
	if (spare == NULL)
		goto fail;
	spare->n = k;
	rc = STORE_OK;
	if (k == 0)
		goto done;
	rc = STORE_NO_MEMORY;
	ti = type_find(idx, s->type);
	if (ti == NULL) {
		spare->new_type = type_index_new(idx->seed, s->type, room);
		if (spare->new_type == NULL)
			goto fail;
		ti = spare->new_type;
		rc = store_table_reserve(&idx->types, 1);
	} else {
		rc = store_table_reserve(&ti->buckets, room);
		if (rc == STORE_OK)
			rc = lens_reserve(ti, room);
	}
	if (rc != STORE_OK)
		goto fail;
	for (size_t i = 0; i < k; i++) {
		size_t len = strlen(s->scope[i]);
		struct bucket *b = bucket_find(idx, ti, s->scope[i], len);

		/* room is enough even if every scope entry of the batch is this one. */
		if (b != NULL) {
			rc = heap_reserve(b, room);
			if (rc != STORE_OK)
				goto fail;
			continue;
		}
		rc = STORE_NO_MEMORY;
		spare->new_buckets[i] = bucket_new(idx->seed, s->scope[i], len, room);
		if (spare->new_buckets[i] == NULL)
			goto fail;
	}
	rc = STORE_OK;
done:
	*sparep = spare;
	spare = NULL;
fail:
	store_scope_spare_free(spare);
	return rc;
}

void
store_scope_link(struct store_scope_index *idx, const struct store_secret *s,
    struct store_scope_node *nodes, struct store_scope_spare *spare)
{
	struct type_index *ti;

	if (s->n_scope == 0)
		return;
	ti = type_find(idx, s->type);
	if (ti == NULL) {
		ti = spare->new_type;
		spare->new_type = NULL;
		assert(ti != NULL);
		store_table_insert(&idx->types, &ti->k);
	}
	for (size_t i = 0; i < s->n_scope; i++) {
		size_t len = strlen(s->scope[i]);
		struct bucket *b = bucket_find(idx, ti, s->scope[i], len);

		if (b == NULL) {
			/* Missing at reserve time too, so reserve made this one. */
			b = spare->new_buckets[i];
			spare->new_buckets[i] = NULL;
			assert(b != NULL);
			store_table_insert(&ti->buckets, &b->k);
			lens_add(ti, len);
		}
		assert(b->n < b->cap);
		nodes[i].s = s;
		b->heap[b->n] = &nodes[i];
		b->n++;
		heap_up(b, b->n - 1);
	}
}

void
store_scope_unlink(
    struct store_scope_index *idx, const struct store_secret *s, struct store_scope_node *nodes)
{
	struct type_index *ti;

	if (s->n_scope == 0)
		return;
	ti = type_find(idx, s->type);
	assert(ti != NULL);
	for (size_t i = 0; i < s->n_scope; i++) {
		size_t len = strlen(s->scope[i]);
		struct bucket *b = bucket_find(idx, ti, s->scope[i], len);
		struct store_scope_node *n = &nodes[i];

		assert(b != NULL && n->pos < b->n && b->heap[n->pos] == n);
		b->n--;
		if (n->pos < b->n) {
			size_t pos = n->pos;

			heap_set(b, pos, b->heap[b->n]);
			heap_down(b, pos);
			heap_up(b, pos);
		}
		if (b->n == 0) {
			store_table_remove(&ti->buckets, &b->k);
			lens_remove(ti, len);
			bucket_free(b);
		}
	}
	if (ti->buckets.count == 0) {
		store_table_remove(&idx->types, &ti->k);
		type_index_free(ti);
	}
}

const struct store_secret *
store_scope_lookup(const struct store_scope_index *idx, const char *type, const char *path,
    size_t path_len, size_t *match_lenp)
{
	const struct type_index *ti = type_find(idx, type);

	*match_lenp = 0;
	/* Longest length first: the first bucket found holds the longest matching scope,
	 * and the top of its heap is the smallest name among the secrets with that scope. */
	for (size_t i = 0; ti != NULL && i < ti->n_lens; i++) {
		size_t len = ti->lens[i].len;
		const struct bucket *b;

		if (len > path_len)
			continue;
		b = bucket_find(idx, ti, path, len);
		if (b != NULL) {
			*match_lenp = len;
			return b->heap[0]->s;
		}
	}
	return NULL;
}
