/*
 * arena.c: per-request bump allocator, wiped on reset. See arena.h.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
	struct arena_block *next;
	size_t size; /* usable bytes in data */
	size_t used;
	max_align_t data[];
};

static const size_t arena_align = sizeof(max_align_t);

void
arena_init(struct arena *a, size_t block_size)
{
	a->head = NULL;
	a->block_size = block_size < 256 ? 256 : block_size;
}

void *
arena_alloc(struct arena *a, size_t n)
{
	size_t need = (n + arena_align - 1) & ~(arena_align - 1);
	struct arena_block *b = a->head;

	if (need < n)
		return NULL;
	if (b == NULL || b->size - b->used < need) {
		size_t size = need > a->block_size ? need : a->block_size;
		struct arena_block *nb;

		if (size > SIZE_MAX - sizeof(*nb))
			return NULL;
		/* calloc: blocks start zeroed, and reset re-zeroes what was used, so every
		 * allocation is zeroed without a memset here. */
		nb = calloc(1, sizeof(*nb) + size);
		if (nb == NULL)
			return NULL;
		nb->size = size;
		nb->used = 0;
		/* A huge one-off block goes behind the current one so the current block's
		 * free space stays usable. */
		if (b != NULL && size > a->block_size && b->size - b->used >= arena_align) {
			nb->next = b->next;
			b->next = nb;
			nb->used = need;
			return (char *)nb->data;
		}
		nb->next = b;
		a->head = nb;
		b = nb;
	}
	void *p = (char *)b->data + b->used;
	b->used += need;
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p;

	if (n == SIZE_MAX)
		return NULL;
	p = arena_alloc(a, n + 1);
	if (p == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return s == NULL ? NULL : arena_strndup(a, s, strlen(s));
}

void
arena_reset(struct arena *a)
{
	struct arena_block *b = a->head;
	struct arena_block *keep = NULL;

	while (b != NULL) {
		struct arena_block *next = b->next;

		explicit_bzero(b->data, b->used);
		b->used = 0;
		/* Keep one normal-sized block (the oldest) for the next request. */
		if (next == NULL && b->size == a->block_size) {
			keep = b;
		} else {
			free(b);
		}
		b = next;
	}
	if (keep != NULL)
		keep->next = NULL;
	a->head = keep;
}

void
arena_fini(struct arena *a)
{
	arena_reset(a);
	free(a->head);
	a->head = NULL;
}

void *
arena_pb_alloc(void *arena, size_t size)
{
	/* A size header (one alignment unit, so the block stays aligned) lets the service
	 * see how many bytes protobuf-c asked for each string: see arena_pb_size. */
	size_t *p;

	if (size > SIZE_MAX - arena_align)
		return NULL;
	p = arena_alloc(arena, size + arena_align);
	if (p == NULL)
		return NULL;
	*p = size;
	return (char *)p + arena_align;
}

size_t
arena_pb_size(const void *ptr)
{
	return *(const size_t *)(const void *)((const char *)ptr - arena_align);
}

void
arena_pb_free(void *arena, void *ptr)
{
	/* Freed in bulk (and wiped) by arena_reset. */
	(void)arena;
	(void)ptr;
}
