/*
 * cache_internal.h: what the two halves of libsecretd's cache share: the table and its
 * rules (cache.c) and the notify subscriber, its socket and its thread (cache_sub.c). See
 * cache.h for the rules. Never installed.
 *
 * Thread safety: every member is guarded by mu except those marked otherwise.
 */
#ifndef SECRETD_CLIENT_CACHE_INTERNAL_H
#define SECRETD_CLIENT_CACHE_INTERNAL_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"

/* Recent invalidations remembered to decide whether a fetch was overtaken. */
#define RING 1024
/* How long the subscriber waits for a message before checking its deadlines. */
#define SUB_POLL_MS 20
/* Wait before another Subscribe after one that failed. */
#define SYNC_RETRY_US 100000
/* Longest cache key: a kind, a storage or type, and a name or path. */
#define KEY_MAX 1100

#define NOTIFY_KEY_LEN 16
#define NOTIFY_MSG_LEN 40
#define NOTIFY_HEARTBEAT 1
#define NOTIFY_INVALIDATION 2

struct entry {
	struct entry *hnext; /* bucket chain */
	struct entry *prev;  /* age list: oldest first */
	struct entry *next;
	uint64_t hash; /* CACHE_GET: SipHash(name key, name), the digest invalidations carry */
	char kind;
	bool suspect;         /* from before a flush: only for stale-if-error */
	uint64_t inserted_us; /* for max_age */
	uint64_t verified_us; /* suspect: when it was last known fresh */
	size_t klen;
	char *key;
	secretd_secret *secret;
};

struct client_cache {
	secretd_client *client;
	pthread_mutex_t mu;
	uint64_t bound_us, max_age_us, max_stale_us;
	size_t max_entries;
	char *notify_url;

	/* Sync state (see cache.h). */
	bool synced;
	/* A notify message made after the sync has arrived: until then nothing proves that
	 * the server sends to our connection (one it never attached, as to a listener
	 * stopped by nng's #1518, delivers nothing and looks connected). */
	bool heard;
	bool have_key;
	uint64_t epoch; /* 0: unknown */
	uint64_t applied;
	uint64_t barrier, barrier_epoch;
	uint8_t name_key[NOTIFY_KEY_LEN];
	uint64_t sync_client_us, sync_server_us;
	uint64_t fresh_us; /* the cache's state was current at this client time, or later */
	uint64_t ring_base;
	uint64_t ring_rev[RING];
	uint64_t ring_digest[RING];

	/* Entries. */
	struct entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t count;
	size_t n_resolve;
	struct entry *oldest, *newest;

	/* Subscriber. */
	nng_socket sub;
	bool sub_open;
	/* The dialer, replaced by the subscriber thread when it has had no connection for
	 * CLIENT_REDIAL_MS (nng 1.5.2's dialer can give up for good: client.h,
	 * client_conn_redial); the time of its creation, or the last replacement. */
	nng_dialer dialer;
	uint64_t dialed_us;
	/* The connected notify pipe's id, 0 when none: set on add, cleared on the removal of
	 * that same pipe (a count could go wrong on a removal with no add before it). */
	_Atomic uint32_t sub_pipe;
	uint64_t lost; /* notify connections lost (under mu): a sync that spans one is void */
	atomic_bool stop;
	pthread_t thread;
	bool thread_started;
};

/* The monotonic clock in microseconds. */
uint64_t cache_now_us(void);

/* Under c->mu: apply one notify message (server/notify.h's format); stop serving and keep
 * entries only for stale-if-error (flush); drop every entry (wipe_all). */
void cache_apply_message(struct client_cache *c, const uint8_t *p, size_t len);
void cache_flush(struct client_cache *c);
void cache_wipe_all(struct client_cache *c);

/* The subscriber (cache_sub.c). open: the sub0 socket, dialling c->notify_url without
 * waiting (err filled on failure); start: its thread; stop: the thread (joined; it may be
 * inside a Subscribe call, which ends within the bound); close: the socket, waiting at
 * most CLIENT_CLOSE_WAIT_MS. Each NULL-safe in the sense of doing nothing when not done. */
secretd_status cache_sub_open(struct client_cache *c, secretd_error *err);
bool cache_sub_start(struct client_cache *c);
void cache_sub_stop(struct client_cache *c);
void cache_sub_close(struct client_cache *c);

#endif
