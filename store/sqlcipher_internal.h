/*
 * sqlcipher_internal.h: what the two files of the "sqlcipher" backend share: struct
 * store_sqlcipher, the translation of SQLITE_* codes, and the write path that the ops table
 * (sqlcipher.c) points at (sqlcipher_write.c).
 *
 * Not part of store.h: only sqlcipher.c and sqlcipher_write.c include it; callers use
 * store_sqlcipher_ops.
 *
 * Thread safety: as the backend's (see sqlcipher.c): the database handle only under
 * write_lock, the write queue only under queue_lock.
 */
#ifndef SECRETD_STORE_SQLCIPHER_INTERNAL_H
#define SECRETD_STORE_SQLCIPHER_INTERNAL_H

#include "config.h" /* before sqlite3.h: SQLITE_HAS_CODEC */

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* One write waiting for, or in, a group commit (sqlcipher_write.c). */
struct write_op;

struct store_sqlcipher {
	pthread_mutex_t queue_lock; /* the queue, stopping, stats */
	pthread_cond_t queue_done;  /* the queue has work, or stopping was set */
	struct write_op *queue_head;
	struct write_op *queue_tail;
	size_t queued;
	bool stopping;
	pthread_t committer; /* the commit thread (sqlcipher_write.c) */
	bool committer_started;
	struct store_stats stats; /* under queue_lock */
	pthread_mutex_t write_lock;
	sqlite3 *db;
	void *mem; /* the memory mirror (store_memory_ops) */
	size_t max_secrets;
	bool read_only;
	bool passphrase; /* keyed with a passphrase (see store_config) */
	/* store_config.on_change, called once per committed change after it is published to
	 * the mirror (sqlcipher_write.c). */
	void (*on_change)(void *arg, const char *name);
	void *on_change_arg;
	sqlite3_stmt *begin;
	sqlite3_stmt *commit;
	sqlite3_stmt *rollback;
	sqlite3_stmt *insert;
	sqlite3_stmt *delete;
};

/* Translate an SQLite result code (extended codes too) into a store_status; the one place
 * SQLITE_* codes become store_status. */
store_status store_sqlcipher_status(int rc);

/* ops.put: queue the write of s and wait for the group commit that holds it. s is taken
 * (freed, or kept by the mirror). *createdp: s went into the store. Returns STORE_OK,
 * STORE_EXISTS (mode ERROR), STORE_FULL, STORE_NO_MEMORY or STORE_INVALID for this write
 * alone, or the status of a failed group such as STORE_READ_ONLY or STORE_IO (nothing
 * changed, on disk or in memory). */
store_status store_sqlcipher_put(
    void *impl, struct store_secret *s, enum store_conflict mode, bool *createdp);

/* Start the commit thread (at open) and stop it after every queued write is committed
 * (at close). Start returns STORE_OK or STORE_NO_MEMORY. */
store_status store_sqlcipher_committer_start(struct store_sqlcipher *sc);
void store_sqlcipher_committer_stop(struct store_sqlcipher *sc);

/* ops.put_async, ops.remove_async and ops.stats (see store.h). */
void store_sqlcipher_put_async(
    void *impl, struct store_secret *s, enum store_conflict mode, store_done_fn done, void *arg);
void store_sqlcipher_remove_async(void *impl, const char *name, store_done_fn done, void *arg);
void store_sqlcipher_stats(void *impl, struct store_stats *out);

/* ops.remove: queue the removal of name (borrowed) and wait for its group commit. Returns
 * STORE_OK, STORE_NOT_FOUND, STORE_READ_ONLY, or the status of a failed group. */
store_status store_sqlcipher_remove(void *impl, const char *name);

#endif
