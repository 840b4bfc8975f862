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

/* Bytes of wiped blocks an arena keeps across resets. */
#define ARENA_KEEP (256 * 1024)

void
arena_init(struct arena *a, size_t block_size)
{
	a->head = NULL;
	a->spare = NULL;
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
		/* Blocks start zeroed (calloc, or a spare that reset wiped), so every allocation
		 * is zeroed without a memset here. */
		if (size == a->block_size && a->spare != NULL) {
			nb = a->spare;
			a->spare = nb->next;
		} else {
			nb = calloc(1, sizeof(*nb) + size);
		}
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
	size_t kept = 0;

	for (struct arena_block *sp = a->spare; sp != NULL; sp = sp->next)
		kept += sp->size;
	/* Wipe every block; keep normal-sized ones, up to ARENA_KEEP bytes, as spares for
	 * the next request (zero again, so allocations from them stay zeroed): a worker
	 * answering listings then does not calloc and free its blocks every time. */
	while (b != NULL) {
		struct arena_block *next = b->next;

		explicit_bzero(b->data, b->used);
		b->used = 0;
		if (b->size == a->block_size && kept + b->size <= ARENA_KEEP) {
			b->next = a->spare;
			a->spare = b;
			kept += b->size;
		} else {
			free(b);
		}
		b = next;
	}
	a->head = NULL;
}

void
arena_fini(struct arena *a)
{
	arena_reset(a);
	while (a->spare != NULL) {
		struct arena_block *next = a->spare->next;

		free(a->spare);
		a->spare = next;
	}
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
