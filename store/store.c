/*
 * store.c: the store_*() wrappers over a backend's ops table, and the one-allocation
 * struct store_secret (build, copy, wipe-and-free).
 *
 * What this file does not do: it keeps no secrets itself and takes no locks; each backend
 * makes its own ops safe to call from many threads (see store.h).
 *
 * Thread safety: the wrappers add no state of their own beyond struct store, which is
 * immutable between store_open and store_close. store_secret_* functions touch only the
 * secret they are given.
 */
#include "store.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct store {
	const struct store_ops *ops;
	void *impl;
};

const char *
store_status_str(store_status st)
{
	switch (st) {
	case STORE_OK:
		return "success";
	case STORE_NOT_FOUND:
		return "no secret with that name";
	case STORE_EXISTS:
		return "a secret with that name already exists";
	case STORE_FULL:
		return "the store holds its maximum number of secrets";
	case STORE_NO_SPACE:
		return "the disk is full";
	case STORE_IO:
		return "input/output error";
	case STORE_BAD_KEY:
		return "the key does not open the database, or the file is not a database";
	case STORE_CORRUPT:
		return "the database is malformed or was written by a newer version";
	case STORE_READ_ONLY:
		return "the database is read-only";
	case STORE_PERMISSION:
		return "unsafe or wrong permissions on a file or directory";
	case STORE_NO_MEMORY:
		return "out of memory";
	case STORE_INVALID:
		return "invalid argument or configuration";
	case STORE_UNAVAILABLE:
		return "the shared store cannot be reached or has no quorum";
	}
	return "unknown store status";
}

/* a + b into *sump; false on overflow. */
static bool
size_add(size_t a, size_t b, size_t *sump)
{
	if (a > SIZE_MAX - b)
		return false;
	*sump = a + b;
	return true;
}

/* a * b into *prodp; false on overflow. */
static bool
size_mul(size_t a, size_t b, size_t *prodp)
{
	if (b != 0 && a > SIZE_MAX / b)
		return false;
	*prodp = a * b;
	return true;
}

static int
field_cmp(const void *a, const void *b)
{
	const struct store_field *fa = a;
	const struct store_field *fb = b;
	size_t n = fa->value_len < fb->value_len ? fa->value_len : fb->value_len;
	int c;

	/* strcmp compares as unsigned char: byte order, as store.h promises. */
	c = strcmp(fa->key, fb->key);
	if (c != 0)
		return c;
	/* The store does not refuse a key given twice; ordering such fields by value too
	 * makes the order a total one, so it does not depend on qsort's stability. */
	c = n > 0 ? memcmp(fa->value, fb->value, n) : 0;
	if (c != 0)
		return c;
	return (fa->value_len > fb->value_len) - (fa->value_len < fb->value_len);
}

/*
 * Layout of the allocation: the struct, the scope pointer array, the field array, then
 * every string and value, each followed by a NUL. The struct's size is a multiple of the
 * pointer alignment, and so are both arrays, so no padding is needed between them.
 */
_Static_assert(sizeof(struct store_secret) % alignof(struct store_field) == 0,
    "field array must follow the header without padding");
_Static_assert(sizeof(const char *) % alignof(struct store_field) == 0,
    "field array must follow the scope array without padding");

store_status
store_secret_new(const char *name, const char *type, const char *const *scope, size_t n_scope,
    const struct store_field *fields, size_t n_fields, struct store_secret **outp)
{
	struct store_secret *s = NULL;
	const char **scope_out;
	struct store_field *fields_out;
	size_t size = sizeof(*s);
	size_t bytes;
	size_t name_len;
	size_t type_len;
	char *p;
	store_status rc = STORE_INVALID;

	*outp = NULL;
	if (name == NULL || type == NULL || (n_scope > 0 && scope == NULL) ||
	    (n_fields > 0 && fields == NULL))
		goto fail;
	name_len = strlen(name);
	type_len = strlen(type);
	rc = STORE_NO_MEMORY;
	if (!size_mul(n_scope, sizeof(*scope_out), &bytes) || !size_add(size, bytes, &size))
		goto fail;
	if (!size_mul(n_fields, sizeof(*fields_out), &bytes) || !size_add(size, bytes, &size))
		goto fail;
	if (!size_add(size, name_len + 1, &size) || !size_add(size, type_len + 1, &size))
		goto fail;
	for (size_t i = 0; i < n_scope; i++) {
		if (scope[i] == NULL) {
			rc = STORE_INVALID;
			goto fail;
		}
		if (!size_add(size, strlen(scope[i]), &size) || !size_add(size, 1, &size))
			goto fail;
	}
	for (size_t i = 0; i < n_fields; i++) {
		if (fields[i].key == NULL || (fields[i].value == NULL && fields[i].value_len > 0)) {
			rc = STORE_INVALID;
			goto fail;
		}
		if (!size_add(size, strlen(fields[i].key), &size) || !size_add(size, 1, &size) ||
		    !size_add(size, fields[i].value_len, &size) || !size_add(size, 1, &size))
			goto fail;
	}
	s = malloc(size);
	if (s == NULL)
		goto fail;

	scope_out = (const char **)(s + 1);
	fields_out = (struct store_field *)(scope_out + n_scope);
	p = (char *)(fields_out + n_fields);
	s->size = size;
	s->n_scope = n_scope;
	s->n_fields = n_fields;
	s->scope = scope_out;
	s->fields = fields_out;
	s->name = memcpy(p, name, name_len + 1);
	p += name_len + 1;
	s->type = memcpy(p, type, type_len + 1);
	p += type_len + 1;
	for (size_t i = 0; i < n_scope; i++) {
		size_t len = strlen(scope[i]);

		scope_out[i] = memcpy(p, scope[i], len + 1);
		p += len + 1;
	}
	for (size_t i = 0; i < n_fields; i++) {
		size_t len = strlen(fields[i].key);

		fields_out[i].key = memcpy(p, fields[i].key, len + 1);
		p += len + 1;
		if (fields[i].value_len > 0)
			memcpy(p, fields[i].value, fields[i].value_len);
		p[fields[i].value_len] = '\0';
		fields_out[i].value = (const uint8_t *)p;
		fields_out[i].value_len = fields[i].value_len;
		p += fields[i].value_len + 1;
	}
	if (n_fields > 1)
		qsort(fields_out, n_fields, sizeof(*fields_out), field_cmp);

	*outp = s;
	s = NULL;
	rc = STORE_OK;
fail:
	store_secret_free(s);
	return rc;
}

/* Move pointer p, which points into the allocation at from, to the same offset in to. */
static const void *
relocate(const void *p, const struct store_secret *from, struct store_secret *to)
{
	return (const char *)to + ((const char *)p - (const char *)from);
}

store_status
store_secret_dup(const struct store_secret *s, struct store_secret **outp)
{
	struct store_secret *d;
	const char **scope;
	struct store_field *fields;

	*outp = NULL;
	if (s == NULL)
		return STORE_INVALID;
	d = malloc(s->size);
	if (d == NULL)
		return STORE_NO_MEMORY;
	memcpy(d, s, s->size);
	d->name = relocate(s->name, s, d);
	d->type = relocate(s->type, s, d);
	scope = (const char **)relocate(s->scope, s, d);
	fields = (struct store_field *)relocate(s->fields, s, d);
	d->scope = scope;
	d->fields = fields;
	for (size_t i = 0; i < s->n_scope; i++)
		scope[i] = relocate(s->scope[i], s, d);
	for (size_t i = 0; i < s->n_fields; i++) {
		fields[i].key = relocate(s->fields[i].key, s, d);
		fields[i].value = relocate(s->fields[i].value, s, d);
	}
	*outp = d;
	return STORE_OK;
}

void
store_secret_free(struct store_secret *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, s->size);
	free(s);
}

void
store_secret_array_free(struct store_secret **items, size_t n)
{
	if (items == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_secret_free(items[i]);
	free(items);
}

store_status
store_open(const struct store_ops *ops, const struct store_config *cfg, struct store **storep)
{
	struct store *st = NULL;
	store_status rc = STORE_INVALID;

	*storep = NULL;
	if (ops == NULL || cfg == NULL)
		goto fail;
	rc = STORE_NO_MEMORY;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto fail;
	st->ops = ops;
	rc = ops->open(cfg, &st->impl);
	if (rc != STORE_OK)
		goto fail;
	*storep = st;
	st = NULL;
fail:
	free(st);
	return rc;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->ops->close(st->impl);
	free(st);
}

const char *
store_name(const struct store *st)
{
	return st->ops->name;
}

store_status
store_put(struct store *st, struct store_secret *s, enum store_conflict mode, bool *createdp)
{
	return store_put_tagged(st, s, mode, 0, createdp);
}

store_status
store_put_tagged(struct store *st, struct store_secret *s, enum store_conflict mode, uint64_t tag,
    bool *createdp)
{
	bool created = false;
	store_status rc;

	if (s == NULL)
		return STORE_INVALID;
	if (mode != STORE_CONFLICT_ERROR && mode != STORE_CONFLICT_REPLACE &&
	    mode != STORE_CONFLICT_IGNORE) {
		store_secret_free(s);
		return STORE_INVALID;
	}
	if (st->ops->put_tagged != NULL)
		rc = st->ops->put_tagged(st->impl, s, mode, tag, &created);
	else
		rc = st->ops->put(st->impl, s, mode, &created);
	if (createdp != NULL)
		*createdp = created;
	return rc;
}

store_status
store_get(struct store *st, const char *name, struct store_secret **outp)
{
	*outp = NULL;
	if (name == NULL)
		return STORE_INVALID;
	return st->ops->get(st->impl, name, outp);
}

bool
store_contains(struct store *st, const char *name)
{
	if (name == NULL)
		return false;
	return st->ops->contains(st->impl, name);
}

store_status
store_read(struct store *st, const char *name, store_visit_fn visit, void *arg)
{
	return st->ops->read(st->impl, name, visit, arg);
}

void
store_put_async(struct store *st, struct store_secret *s, enum store_conflict mode,
    uint64_t tag, store_done_fn done, void *arg)
{
	bool created = false;
	store_status rc;

	if (s == NULL) {
		done(arg, STORE_INVALID, false);
		return;
	}
	if (st->ops->put_async != NULL &&
	    (mode == STORE_CONFLICT_ERROR || mode == STORE_CONFLICT_REPLACE ||
	        mode == STORE_CONFLICT_IGNORE)) {
		st->ops->put_async(st->impl, s, mode, done, arg);
		return;
	}
	rc = store_put_tagged(st, s, mode, tag, &created);
	done(arg, rc, created);
}

void
store_remove_async(struct store *st, const char *name, store_done_fn done, void *arg)
{
	if (name != NULL && st->ops->remove_async != NULL) {
		st->ops->remove_async(st->impl, name, done, arg);
		return;
	}
	done(arg, store_remove(st, name), false);
}

bool
store_writes_async(const struct store *st)
{
	return st->ops->put_async != NULL && st->ops->remove_async != NULL;
}

void
store_stats_get(struct store *st, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (st != NULL && st->ops->stats != NULL)
		st->ops->stats(st->impl, out);
}

bool
store_writable(struct store *st)
{
	struct store_health h;

	if (st == NULL)
		return false;
	if (st->ops->writable != NULL)
		return st->ops->writable(st->impl);
	/* A shared backend says it through its health (etcd: the last quorum probe). */
	if (st->ops->health != NULL) {
		memset(&h, 0, sizeof(h));
		st->ops->health(st->impl, &h);
		return h.writable;
	}
	return true;
}

uint64_t
store_commit_bucket_us(size_t i)
{
	static const uint64_t bounds[STORE_COMMIT_BUCKETS] = {
	    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, UINT64_MAX};

	return i < STORE_COMMIT_BUCKETS ? bounds[i] : UINT64_MAX;
}

store_status
store_remove_tagged(struct store *st, const char *name, uint64_t tag)
{
	if (name == NULL)
		return STORE_INVALID;
	if (st->ops->remove_tagged != NULL)
		return st->ops->remove_tagged(st->impl, name, tag);
	return st->ops->remove(st->impl, name);
}

bool
store_tags_removes(const struct store *st)
{
	return st != NULL && st->ops->remove_tagged != NULL;
}

store_status
store_remove(struct store *st, const char *name)
{
	if (name == NULL)
		return STORE_INVALID;
	return st->ops->remove(st->impl, name);
}

store_status
store_list(struct store *st, const char *type, store_visit_fn visit, void *arg)
{
	if (visit == NULL)
		return STORE_INVALID;
	return st->ops->list(st->impl, type, visit, arg);
}

/* What list_copy's visitor collects. */
struct list_copy {
	struct store_secret **items;
	size_t n;
	size_t cap;
	store_status rc;
};

static bool
list_copy_visit(const struct store_secret *s, void *arg)
{
	struct list_copy *lc = arg;

	if (lc->n == lc->cap) {
		size_t cap = lc->cap == 0 ? 16 : lc->cap * 2;
		struct store_secret **items;

		if (cap > SIZE_MAX / sizeof(*items)) {
			lc->rc = STORE_NO_MEMORY;
			return false;
		}
		items = realloc(lc->items, cap * sizeof(*items));
		if (items == NULL) {
			lc->rc = STORE_NO_MEMORY;
			return false;
		}
		lc->items = items;
		lc->cap = cap;
	}
	lc->rc = store_secret_dup(s, &lc->items[lc->n]);
	if (lc->rc != STORE_OK)
		return false;
	lc->n++;
	return true;
}

store_status
store_list_copy(struct store *st, const char *type, struct store_secret ***itemsp, size_t *np)
{
	struct list_copy lc = {.rc = STORE_OK};
	store_status rc;

	*itemsp = NULL;
	*np = 0;
	rc = st->ops->list(st->impl, type, list_copy_visit, &lc);
	if (rc == STORE_OK)
		rc = lc.rc;
	if (rc != STORE_OK)
		goto fail;
	*itemsp = lc.items;
	*np = lc.n;
	lc.items = NULL;
	lc.n = 0;
fail:
	store_secret_array_free(lc.items, lc.n);
	return rc;
}

store_status
store_resolve(struct store *st, const char *type, const char *path, size_t path_len,
    struct store_secret **outp, size_t *match_lenp)
{
	size_t match_len = 0;
	store_status rc;

	*outp = NULL;
	if (type == NULL || (path == NULL && path_len > 0))
		return STORE_INVALID;
	rc = st->ops->resolve(st->impl, type, path == NULL ? "" : path, path_len, outp, &match_len);
	if (match_lenp != NULL)
		*match_lenp = match_len;
	return rc;
}

size_t
store_count(struct store *st)
{
	return st->ops->count(st->impl);
}

store_status
store_rekey(struct store *st, const uint8_t *key, size_t key_len)
{
	/* The backend checks the length: a raw key or, for a passphrase store, a passphrase. */
	if (key == NULL || key_len == 0)
		return STORE_INVALID;
	return st->ops->rekey(st->impl, key, key_len);
}

uint64_t
store_revision(struct store *st)
{
	/* NULL-safe: a service built without a persistent store (fuzzers) has none. */
	return st != NULL && st->ops->revision != NULL ? st->ops->revision(st->impl) : 0;
}

bool
store_wait_revision(struct store *st, uint64_t rev, int timeout_ms)
{
	if (rev == 0 || st == NULL || st->ops->wait_revision == NULL)
		return true;
	return st->ops->wait_revision(st->impl, rev, timeout_ms);
}

void
store_health(struct store *st, struct store_health *h)
{
	memset(h, 0, sizeof(*h));
	h->serving = true;
	h->writable = true;
	if (st != NULL && st->ops->health != NULL)
		st->ops->health(st->impl, h);
}
