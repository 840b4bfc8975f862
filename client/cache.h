/*
 * cache.h: libsecretd's opt-in cache of Get and Resolve results (secretd_options.cache),
 * kept fresh by the server's notify socket (server/notify.h has the message format).
 *
 * Rules (the guarantee is in secretd.h):
 * - Served only while synced: the Subscribe rpc gave (epoch, rev, name key, server time),
 *   a notify message made after that reply has arrived (a connection the server never
 *   attached looks connected and delivers nothing; one that carries nothing for the bound
 *   after a sync is closed and dialled again), every notify message since carried the next
 *   revision, and the newest message's server time is within the staleness bound (measured
 *   against the Subscribe call's own send time, so a message that sat in a queue counts as
 *   old as it is).
 * - A gap in rev, a heartbeat whose rev is past the last applied one, a lost notify
 *   connection or no message for the bound: nothing is served until the next Subscribe;
 *   entries are wiped (or, with max_stale, kept only for stale-if-error). A new epoch
 *   (from the notify socket or any reply) wipes everything.
 * - A fetched result is inserted only if no invalidation of its name newer than the
 *   reply's rev has been applied (a ring of recent invalidations says so; when the ring
 *   cannot say, it is not inserted). An invalidation evicts its name's entries and every
 *   Resolve entry (a change to any secret may change what a path resolves to).
 * - A write through this client raises a barrier to its reply's rev: nothing is served
 *   until the notify socket has caught up to it.
 *
 * The subscriber (an nng sub0 socket and one thread) has its own open and close here,
 * apart from the request socket of client.c.
 *
 * Thread safety: every function may be called from many threads; one mutex guards the
 * table, held for a lookup and a copy.
 */
#ifndef SECRETD_CLIENT_CACHE_H
#define SECRETD_CLIENT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"

struct client_cache;

enum cache_kind {
	CACHE_GET = 'G',
	CACHE_RESOLVE = 'R',
};

/* Start the cache of client per options (borrowed) and its subscriber. SECRETD_OK with *cp
 * (NULL when options do not ask for a cache; close with client_cache_close), or
 * SECRETD_INVALID_ARGUMENT / SECRETD_INTERNAL with err filled. */
secretd_status client_cache_open(secretd_client *client, const secretd_options *options,
    struct client_cache **cp, secretd_error *err);

/* Stop the subscriber, close its socket, wipe and free every entry. Must run before the
 * request socket closes (the subscriber may be in a Subscribe call). NULL-safe. */
void client_cache_close(struct client_cache *c);

/* A fresh copy of the entry for (kind, a, b) or false. For CACHE_GET a is the name and b
 * the storage ("" "m" "s"); for CACHE_RESOLVE a is the type and b the path. The caller
 * frees *outp with secretd_secret_free. */
bool client_cache_lookup(struct client_cache *c, enum cache_kind kind, const char *a, const char *b,
    secretd_secret **outp);

/* Stale if error: a copy (with ->stale set) of an entry not invalidated and fresh no more
 * than max_stale ago, or false. */
bool client_cache_lookup_stale(struct client_cache *c, enum cache_kind kind, const char *a,
    const char *b, secretd_secret **outp);

/* Offer a fetched result (borrowed; copied when kept) that a reply with (epoch, rev)
 * carried. */
void client_cache_insert(struct client_cache *c, enum cache_kind kind, const char *a, const char *b,
    uint64_t epoch, uint64_t rev, const secretd_secret *s);

/* Any reply's (epoch, rev); wrote: the call may have changed state (raises the barrier).
 * epoch 0 (no reply): ignored after a read; after a write, the cache flushes (the write
 * may have happened). */
void client_cache_reply(struct client_cache *c, uint64_t epoch, uint64_t rev, bool wrote);

#endif
