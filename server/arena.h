/*
 * arena.h: a per-request bump allocator whose memory is wiped on reset.
 *
 * Handlers, the SQL parser and the reply builders allocate every string and message of one
 * request here, so a request needs no frees of its own and nothing it touched (secret
 * values included) survives it: arena_reset wipes every byte handed out and keeps the
 * first block for the next request, so a busy worker does no heap churn.
 *
 * Not thread-safe: one arena per worker.
 */
#ifndef SECRETD_SERVER_ARENA_H
#define SECRETD_SERVER_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head;  /* current block; older ones chained behind it */
	struct arena_block *spare; /* wiped normal-sized blocks kept for reuse */
	size_t block_size;         /* size of a normal block */
};

/* Prepare an empty arena; nothing is allocated until the first arena_alloc. */
void arena_init(struct arena *a, size_t block_size);

/* Zeroed memory of n bytes, aligned for any type, valid until the next reset; NULL when
 * out of memory. */
void *arena_alloc(struct arena *a, size_t n);

/* A NUL-terminated copy of s[0..n) (n bytes, s may hold NULs); NULL when out of memory. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

/* A NUL-terminated copy of a C string; NULL when out of memory or s is NULL. */
char *arena_strdup(struct arena *a, const char *s);

/* Wipe everything handed out and free all but the first block. */
void arena_reset(struct arena *a);

/* Wipe and free everything. */
void arena_fini(struct arena *a);

/* A ProtobufCAllocator pair that allocates from an arena (free is a no-op: the arena's
 * reset frees and wipes). Each block records its requested size for arena_pb_size. */
void *arena_pb_alloc(void *arena, size_t size);
void arena_pb_free(void *arena, void *ptr);

/* The size requested for a block from arena_pb_alloc. */
size_t arena_pb_size(const void *ptr);

#endif
