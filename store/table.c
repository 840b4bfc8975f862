/*
 * table.c: open-addressing hash tables with reservable room. See table_internal.h.
 *
 * Thread safety: none; callers lock.
 */
#include "table_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"

uint32_t
store_table_hash(const uint64_t seed[2], const void *key, size_t len)
{
	return (uint32_t)sd_siphash24(seed[0], seed[1], key, len);
}

store_status
store_table_key_init(struct store_table_key *k, const uint64_t seed[2], const char *key, size_t len)
{
	if (len > UINT32_MAX)
		return STORE_INVALID;
	k->key = key;
	k->key_len = (uint32_t)len;
	k->hash = store_table_hash(seed, key, len);
	return STORE_OK;
}

struct store_table_key *
store_table_find(const struct store_table *t, const char *key, size_t len, uint32_t hash)
{
	size_t mask = t->cap - 1;

	if (t->cap == 0)
		return NULL;
	/* Terminates: the load factor keeps at least one slot empty. */
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct store_table_key *k = t->slots[i];

		if (k == NULL)
			return NULL;
		if (k->hash == hash && k->key_len == len && memcmp(k->key, key, len) == 0)
			return k;
	}
}

/* Index of k, which is in t. */
static size_t
table_slot(const struct store_table *t, const struct store_table_key *k)
{
	size_t mask = t->cap - 1;
	size_t i = k->hash & mask;

	while (t->slots[i] != k)
		i = (i + 1) & mask;
	return i;
}

/* Place k in slots (cap of them, a power of two) at its first free probe position. */
static void
slots_place(struct store_table_key **slots, size_t cap, struct store_table_key *k)
{
	size_t mask = cap - 1;
	size_t i = k->hash & mask;

	while (slots[i] != NULL)
		i = (i + 1) & mask;
	slots[i] = k;
}

store_status
store_table_reserve(struct store_table *t, size_t extra)
{
	struct store_table_key **slots;
	size_t cap = t->cap == 0 ? 16 : t->cap;
	size_t need;

	if (extra > SIZE_MAX - t->count)
		return STORE_NO_MEMORY;
	need = t->count + extra;
	/* At most two thirds full: short probe runs, and always an empty slot. */
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

void
store_table_insert(struct store_table *t, struct store_table_key *k)
{
	assert(t->cap > 0 && t->count + 1 <= t->cap / 3 * 2);
	slots_place(t->slots, t->cap, k);
	t->count++;
}

void
store_table_remove(struct store_table *t, struct store_table_key *k)
{
	size_t mask = t->cap - 1;
	size_t i = table_slot(t, k);
	size_t j = i;

	/* Backward-shift deletion: no tombstones, so probe runs stay short. */
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

void
store_table_replace(struct store_table *t, struct store_table_key *old, struct store_table_key *k)
{
	assert(old->hash == k->hash && old->key_len == k->key_len);
	t->slots[table_slot(t, old)] = k;
}

void
store_table_free(struct store_table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = 0;
	t->count = 0;
}
