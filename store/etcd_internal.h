/*
 * etcd_internal.h: what the two files of the "etcd" backend share: struct store_etcd, the
 * key layout helpers and the revision wait (etcd.c), and the write path (etcd_write.c).
 *
 * Not part of store.h: only etcd.c and etcd_write.c include it; callers use store_etcd_ops.
 *
 * Thread safety: as the backend's (see etcd.c).
 */
#ifndef SECRETD_STORE_ETCD_INTERNAL_H
#define SECRETD_STORE_ETCD_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "etcd_http.h"
#include "seal.h"
#include "store.h"

#define ETCD_DEFAULT_MAX 1000000
#define ETCD_DEFAULT_TIMEOUT_MS 5000
#define PROBE_MS 500
#define PROBE_TIMEOUT_MS 1500
#define STALL_MS 2000
#define LIST_PAGE 1000
#define KEYCHECK "keycheck"
#define SECRETS "s/"
/* Markers of committed drops: P "done/" <request tag, 16 hex digits>, empty value, under a
 * lease, so that a resent drop whose first attempt committed is answered OK. */
#define DONE "done/"
/* How long a marker lives: a lease of DONE_TTL_S seconds is shared by the drops of
 * DONE_TTL_S / 2 seconds, so each marker outlives its drop by at least that (far past any
 * client's resend). */
#define DONE_TTL_S 600

struct store_etcd {
	struct etcd_http *http;
	void *mem;
	size_t max_secrets;
	int timeout_ms;
	char *prefix;
	size_t prefix_len;
	void (*on_change)(void *arg, const char *name);
	void *on_change_arg;

	pthread_mutex_t mu;
	pthread_cond_t cv; /* revision raised, or stop */
	struct store_seal seal;
	struct store_seal old_seal;
	bool has_old;
	uint64_t revision; /* what the mirror has applied */
	bool serving;
	bool writable;
	uint64_t latest;
	uint64_t behind_since; /* ms; 0 when not behind */
	uint64_t last_applied; /* ms when the mirror last applied a change or a list */
	uint64_t foreign;      /* values no key of ours opens, skipped */
	char detail[160];
	int64_t done_lease;    /* lease of the drop markers; 0: none granted yet */
	uint64_t done_lease_ms; /* when it was granted */

	atomic_bool stop;   /* closing */
	atomic_bool wake;   /* end the current watch (stop or restart) */
	atomic_bool relist; /* the next watch starts with a list */
	pthread_t watch_thread;
	pthread_t probe_thread;
	bool watch_started;
	bool probe_started;
};


/* P + suffix + name (name may be NULL) as a base64 JSON string (NULL: out of memory). */
json_t *store_etcd_key_json(const struct store_etcd *e, const char *suffix, const char *name);

/* The end of the range of every key that starts with the prefix, base64. */
json_t *store_etcd_prefix_end_json(const struct store_etcd *e);

/* The key of kv relative to the prefix (caller frees); NULL when outside or malformed. */
char *store_etcd_rel_key(const struct store_etcd *e, const json_t *kv);

/* Open the sealed value v[0..len) stored at rel with whichever of our keys sealed it; the
 * secret is named rel without "s/". Caller frees *outp with store_secret_free. */
store_status store_etcd_open_value(struct store_etcd *e, const char *rel, const uint8_t *v,
    size_t len, struct store_secret **outp);

/* Seal s for key P "s/" name with the current key. Caller frees *outp with free(). */
store_status store_etcd_seal_value(
    struct store_etcd *e, const struct store_secret *s, uint64_t tag, uint8_t **outp, size_t *lenp);

/* The whole prefix read at one revision (etcd_mirror.c). */
struct etcd_listing {
	struct store_secret **items; /* sorted by name: etcd returns keys in byte order */
	size_t n;
	size_t cap;
	uint64_t revision;
	bool keycheck; /* the marker is there and opened */
};

/* Read the whole prefix at one revision into l (paged). strict (at open): a value no key
 * of ours opens is STORE_BAD_KEY (or STORE_CORRUPT); otherwise such values are skipped
 * and counted in *foreignp. STORE_UNAVAILABLE when etcd does not answer. On failure l is
 * empty; on success the caller frees it with store_etcd_listing_free. */
store_status store_etcd_list_all(
    struct store_etcd *e, bool strict, struct etcd_listing *l, uint64_t *foreignp);

/* Free what l holds and zero it. */
void store_etcd_listing_free(struct etcd_listing *l);

/* Make the mirror equal to l (taken): put what changed, remove what is gone; with report,
 * call on_change for each name put or removed. Raises the revision to l's. */
store_status store_etcd_reconcile(struct store_etcd *e, struct etcd_listing *l, bool report);

/* The watch thread (arg: the struct store_etcd): follows the prefix, applies every event
 * to the mirror, lists again after a compaction or when asked (relist). */
void *store_etcd_watch_main(void *arg);

/* The health probe thread (arg: the struct store_etcd): every PROBE_MS, whether etcd has
 * quorum (writable) and how far the mirror is behind; restarts a stalled watch. */
void *store_etcd_probe_main(void *arg);

/* ops.wait_revision: wait until the mirror has applied rev (asks for a fresh list when it
 * does not come soon). */
bool store_etcd_wait_revision(void *impl, uint64_t rev, int timeout_ms);

/* The write path (etcd_write.c): ops.put, ops.put_tagged, ops.remove,
 * ops.remove_tagged, ops.rekey. */
store_status store_etcd_put(
    void *impl, struct store_secret *s, enum store_conflict mode, bool *createdp);
store_status store_etcd_put_tagged(
    void *impl, struct store_secret *s, enum store_conflict mode, uint64_t tag, bool *createdp);
store_status store_etcd_remove(void *impl, const char *name);
store_status store_etcd_remove_tagged(void *impl, const char *name, uint64_t tag);
store_status store_etcd_rekey(void *impl, const uint8_t *key, size_t key_len);

#endif
