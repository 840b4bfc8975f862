/*
 * sqlcipher_write.c: the write path of the "sqlcipher" backend (put and remove). See
 * sqlcipher.c for the backend, its opening and its reads.
 *
 * Writes are group-committed by one commit thread per store. put_async and remove_async
 * queue their write and return at once; the caller learns the result through its done
 * callback. The commit thread takes every queued write (in order, up to GROUP_MAX,
 * stopping before a name already taken, so writes to one name keep their order), and
 * under the write mutex checks each one's conflict against the mirror, reserves the
 * mirror's change (store_memory_prepare, sized for the whole group), and runs BEGIN
 * IMMEDIATE; every write; COMMIT with journal_mode=WAL and synchronous=FULL: one fsync for
 * the group. Only after COMMIT succeeded does the mirror change, for the whole group at
 * once (store_memory_publish_batch, which cannot fail); then every writer of the group is
 * told, in order. If any write or the COMMIT fails, the transaction is rolled back and
 * every write of the group fails with that status: nothing changes, on disk or in memory.
 *
 * Since no writer waits on a thread of its own, a group holds every write that arrived
 * during the previous commit's fsync: the group grows with the load instead of being
 * bounded by the number of threads that can block (the server parks a request whose write
 * is queued and answers it from done). The synchronous put and remove are the same queue
 * plus a wait.
 *
 * What it does not do: no reads (they go to the mirror, see sqlcipher.c), no rekey (sqlcipher.c
 * holds it, beside the key handling of open); it never opens or closes the database.
 *
 * Thread safety: any number of threads may queue writes at once; the queue is under
 * queue_lock, the database handle under write_lock (taken by the commit thread and by
 * rekey), and the mirror has its own rwlock. done callbacks run on the commit thread with
 * no lock of the store held. SQLITE_* codes become store_status through
 * store_sqlcipher_status (sqlcipher.c).
 */
#include "config.h" /* first: SQLITE_HAS_CODEC before sqlite3.h */
#include "memory_internal.h"
#include "row.h"
#include "sqlcipher_internal.h"
#include "store.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Most writes in one group commit. */
#define GROUP_MAX 128

/* One write waiting for, or in, a group commit. Allocated by its submitter, freed by the
 * commit thread after done was called. */
struct write_op {
	struct write_op *next;
	bool remove;
	const char *name;
	struct store_secret *s; /* put: ours until the mirror takes it; freed with the op */
	enum store_conflict mode;
	store_done_fn done;
	void *done_arg;
	store_status result;
	bool created;
	/* the leader's, while it commits the group */
	bool effective; /* wrote a row in the open transaction */
	bool fresh;     /* a put of a name the mirror does not hold */
	struct store_memory_prep *prep;
};

/* Step a statement that returns no rows; the SQLite code. */
static int
step_done(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	(void)sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Detach the next group from the queue: in order, distinct names, at most GROUP_MAX.
 * Called with queue_lock held. */
static struct write_op *
take_group(struct store_sqlcipher *sc)
{
	struct write_op *group = sc->queue_head;
	struct write_op *last = group;
	size_t n = 1;

	while (last->next != NULL && n < GROUP_MAX) {
		struct write_op *cand = last->next;
		bool taken = false;

		for (struct write_op *o = group; o != cand && !taken; o = o->next)
			taken = strcmp(o->name, cand->name) == 0;
		if (taken)
			break;
		last = cand;
		n++;
	}
	sc->queue_head = last->next;
	if (sc->queue_head == NULL)
		sc->queue_tail = NULL;
	last->next = NULL;
	return group;
}

/* Write one put into the open transaction, deciding its conflict first. Returns the
 * SQLite code of a failed write (the group fails), else SQLITE_OK. */
static int
group_put(
    struct store_sqlcipher *sc, struct write_op *op, size_t n, size_t scopes, size_t *fresh_countp)
{
	uint8_t *body = NULL;
	size_t body_len = 0;
	int rc = SQLITE_OK;

	if (store_memory_ops.contains(sc->mem, op->name)) {
		op->result = op->mode == STORE_CONFLICT_ERROR ? STORE_EXISTS : STORE_OK;
		if (op->mode != STORE_CONFLICT_REPLACE)
			return SQLITE_OK;
	} else if (store_memory_ops.count(sc->mem) + *fresh_countp >= sc->max_secrets) {
		op->result = STORE_FULL;
		return SQLITE_OK;
	} else {
		op->fresh = true;
	}
	op->result = store_memory_prepare(sc->mem, op->s, n, scopes, &op->prep);
	if (op->result == STORE_OK)
		op->result = store_row_encode(op->s, &body, &body_len);
	if (op->result == STORE_OK && body_len > INT_MAX)
		op->result = STORE_INVALID;
	if (op->result != STORE_OK)
		goto out;
	/* SQLITE_STATIC: SQLite reads our buffers during step and keeps no pointer after
	 * reset and clear_bindings, so the only copy we made is body, wiped below. */
	rc = sqlite3_bind_text(sc->insert, 1, op->s->name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(sc->insert, 2, op->s->type, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob(sc->insert, 3, body, (int)body_len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = step_done(sc->insert);
	(void)sqlite3_clear_bindings(sc->insert);
	if (rc == SQLITE_OK) {
		op->effective = true;
		if (op->fresh)
			(*fresh_countp)++;
	}
out:
	store_row_free(body, body_len);
	return rc;
}

/* Write one remove into the open transaction. As group_put. */
static int
group_remove(struct store_sqlcipher *sc, struct write_op *op)
{
	int rc;

	if (!store_memory_ops.contains(sc->mem, op->name)) {
		op->result = STORE_NOT_FOUND;
		return SQLITE_OK;
	}
	rc = sqlite3_bind_text(sc->delete, 1, op->name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = step_done(sc->delete);
	(void)sqlite3_clear_bindings(sc->delete);
	if (rc == SQLITE_OK) {
		op->effective = true;
		op->result = STORE_OK;
	}
	return rc;
}

/* Commit one group (see the file comment) and set every op's result. Returns whether the
 * group failed whole. */
static bool
commit_group(struct store_sqlcipher *sc, struct write_op *group)
{
	struct store_memory_prep **preps = NULL;
	const char **removes = NULL;
	size_t n = 0, scopes = 0, fresh = 0, n_preps = 0, n_removes = 0;
	int rc = SQLITE_OK;

	for (struct write_op *op = group; op != NULL; op = op->next) {
		n++;
		if (!op->remove)
			scopes += op->s->n_scope;
	}
	/* Everything publishing needs is allocated before the transaction: nothing may fail
	 * after COMMIT. */
	preps = calloc(n, sizeof(*preps));
	removes = calloc(n, sizeof(*removes));
	if (preps == NULL || removes == NULL || pthread_mutex_lock(&sc->write_lock) != 0) {
		for (struct write_op *op = group; op != NULL; op = op->next)
			op->result = preps == NULL || removes == NULL ? STORE_NO_MEMORY : STORE_IO;
		rc = SQLITE_NOMEM;
		goto out;
	}
	rc = sc->read_only ? SQLITE_READONLY : step_done(sc->begin);
	for (struct write_op *op = group; op != NULL && rc == SQLITE_OK; op = op->next)
		rc = op->remove ? group_remove(sc, op) : group_put(sc, op, n, scopes, &fresh);
	if (rc == SQLITE_OK)
		rc = step_done(sc->commit);
	if (rc != SQLITE_OK) {
		if (!sqlite3_get_autocommit(sc->db))
			(void)step_done(sc->rollback);
		/* The transaction is gone: every write of the group failed, including those
		 * decided without a row (they were answered against a state that did not
		 * become durable either way, so failing them too is the safe report). */
		for (struct write_op *op = group; op != NULL; op = op->next) {
			store_memory_abort(sc->mem, op->prep);
			op->prep = NULL;
			op->effective = false;
			op->result = store_sqlcipher_status(rc);
		}
	} else {
		for (struct write_op *op = group; op != NULL; op = op->next) {
			if (!op->effective)
				continue;
			if (op->remove) {
				removes[n_removes++] = op->name;
			} else {
				preps[n_preps++] = op->prep;
				op->prep = NULL;
				op->s = NULL; /* the mirror has it now */
				op->created = true;
			}
		}
		store_memory_publish_batch(sc->mem, preps, n_preps, removes, n_removes);
		/* Durable and visible: tell the observer, still under write_lock so that no
		 * later write to these names (which would free them) can run first. */
		for (struct write_op *op = group; op != NULL && sc->on_change != NULL;
		     op = op->next)
			if (op->effective)
				sc->on_change(sc->on_change_arg, op->name);
	}
	(void)pthread_mutex_unlock(&sc->write_lock);
out:
	free(preps);
	free(removes);
	return rc != SQLITE_OK;
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Count one group of n writes that took us microseconds. Called with queue_lock held. */
static void
count_group(struct store_sqlcipher *sc, size_t n, uint64_t us, bool failed)
{
	struct store_stats *st = &sc->stats;

	st->groups++;
	st->group_writes += n;
	st->failed_groups += failed ? 1 : 0;
	for (size_t i = 0; i < STORE_GROUP_BUCKETS; i++)
		if (i == STORE_GROUP_BUCKETS - 1 || n <= ((size_t)1 << i))
			st->group_size_le[i]++;
	st->commit_us_sum += us;
	for (size_t i = 0; i < STORE_COMMIT_BUCKETS; i++)
		if (us <= store_commit_bucket_us(i))
			st->commit_us_le[i]++;
}

/* The commit thread: commit queued writes group by group until stopping is set and the
 * queue is empty. */
static void *
committer_main(void *arg)
{
	struct store_sqlcipher *sc = arg;

	(void)pthread_mutex_lock(&sc->queue_lock);
	for (;;) {
		struct write_op *group;
		size_t n = 0;
		uint64_t t0;
		bool failed;

		while (sc->queue_head == NULL && !sc->stopping)
			(void)pthread_cond_wait(&sc->queue_done, &sc->queue_lock);
		if (sc->queue_head == NULL)
			break;
		group = take_group(sc);
		for (struct write_op *o = group; o != NULL; o = o->next)
			n++;
		sc->queued -= n;
		(void)pthread_mutex_unlock(&sc->queue_lock);
		t0 = mono_us();
		failed = commit_group(sc, group);
		(void)pthread_mutex_lock(&sc->queue_lock);
		count_group(sc, n, mono_us() - t0, failed);
		(void)pthread_mutex_unlock(&sc->queue_lock);
		/* Tell every writer of the group, in order, with no lock held. */
		for (struct write_op *o = group; o != NULL;) {
			struct write_op *next = o->next;

			o->done(o->done_arg, o->result, o->created);
			store_secret_free(o->s);
			free(o);
			o = next;
		}
		(void)pthread_mutex_lock(&sc->queue_lock);
	}
	(void)pthread_mutex_unlock(&sc->queue_lock);
	return NULL;
}

store_status
store_sqlcipher_committer_start(struct store_sqlcipher *sc)
{
	if (pthread_create(&sc->committer, NULL, committer_main, sc) != 0)
		return STORE_NO_MEMORY;
	sc->committer_started = true;
	return STORE_OK;
}

void
store_sqlcipher_committer_stop(struct store_sqlcipher *sc)
{
	if (!sc->committer_started)
		return;
	(void)pthread_mutex_lock(&sc->queue_lock);
	sc->stopping = true;
	(void)pthread_cond_signal(&sc->queue_done);
	(void)pthread_mutex_unlock(&sc->queue_lock);
	(void)pthread_join(sc->committer, NULL);
	sc->committer_started = false;
}

/* Queue op (taken) for the commit thread. */
static void
submit(struct store_sqlcipher *sc, struct write_op *op)
{
	(void)pthread_mutex_lock(&sc->queue_lock);
	if (sc->queue_tail != NULL)
		sc->queue_tail->next = op;
	else
		sc->queue_head = op;
	sc->queue_tail = op;
	sc->queued++;
	(void)pthread_cond_signal(&sc->queue_done);
	(void)pthread_mutex_unlock(&sc->queue_lock);
}

void
store_sqlcipher_put_async(
    void *impl, struct store_secret *s, enum store_conflict mode, store_done_fn done, void *arg)
{
	struct write_op *op = calloc(1, sizeof(*op));

	if (op == NULL) {
		store_secret_free(s);
		done(arg, STORE_NO_MEMORY, false);
		return;
	}
	op->name = s->name;
	op->s = s;
	op->mode = mode;
	op->result = STORE_IO;
	op->done = done;
	op->done_arg = arg;
	submit(impl, op);
}

void
store_sqlcipher_remove_async(void *impl, const char *name, store_done_fn done, void *arg)
{
	struct write_op *op = calloc(1, sizeof(*op));

	if (op == NULL) {
		done(arg, STORE_NO_MEMORY, false);
		return;
	}
	op->remove = true;
	op->name = name;
	op->result = STORE_IO;
	op->done = done;
	op->done_arg = arg;
	submit(impl, op);
}

void
store_sqlcipher_stats(void *impl, struct store_stats *out)
{
	struct store_sqlcipher *sc = impl;

	(void)pthread_mutex_lock(&sc->queue_lock);
	*out = sc->stats;
	out->queued = sc->queued;
	(void)pthread_mutex_unlock(&sc->queue_lock);
}

/* A synchronous writer waiting for its asynchronous write. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool over;
	store_status st;
	bool created;
};

static int
waiter_init(struct waiter *w)
{
	if (pthread_mutex_init(&w->lock, NULL) != 0)
		return -1;
	if (pthread_cond_init(&w->cond, NULL) != 0) {
		(void)pthread_mutex_destroy(&w->lock);
		return -1;
	}
	return 0;
}

static void
wake(void *arg, store_status st, bool created)
{
	struct waiter *w = arg;

	(void)pthread_mutex_lock(&w->lock);
	w->st = st;
	w->created = created;
	w->over = true;
	(void)pthread_cond_signal(&w->cond);
	(void)pthread_mutex_unlock(&w->lock);
}

static store_status
wait_over(struct waiter *w, bool *createdp)
{
	(void)pthread_mutex_lock(&w->lock);
	while (!w->over)
		(void)pthread_cond_wait(&w->cond, &w->lock);
	(void)pthread_mutex_unlock(&w->lock);
	(void)pthread_cond_destroy(&w->cond);
	(void)pthread_mutex_destroy(&w->lock);
	if (createdp != NULL)
		*createdp = w->created;
	return w->st;
}

store_status
store_sqlcipher_put(void *impl, struct store_secret *s, enum store_conflict mode, bool *createdp)
{
	struct waiter w = {.st = STORE_IO};

	if (waiter_init(&w) != 0) {
		store_secret_free(s);
		return STORE_NO_MEMORY;
	}
	store_sqlcipher_put_async(impl, s, mode, wake, &w);
	return wait_over(&w, createdp);
}

store_status
store_sqlcipher_remove(void *impl, const char *name)
{
	struct waiter w = {.st = STORE_IO};

	if (waiter_init(&w) != 0)
		return STORE_NO_MEMORY;
	store_sqlcipher_remove_async(impl, name, wake, &w);
	return wait_over(&w, NULL);
}
