/*
 * sqlcipher_write.c: the write path of the "sqlcipher" backend (put and remove). See
 * sqlcipher.c for the backend, its opening and its reads.
 *
 * Writes are group-committed. put and remove queue their write and wait. Whichever waiting
 * thread finds no commit in progress becomes the leader: it takes the queued writes (in
 * order, up to GROUP_MAX, stopping before a name already taken, so writes to one name keep
 * their order), and under the write mutex checks each one's conflict against the mirror,
 * reserves the mirror's change (store_memory_prepare, sized for the whole group), and runs
 * BEGIN IMMEDIATE; every write; COMMIT with journal_mode=WAL and synchronous=FULL: one
 * fsync for the group. Only after COMMIT succeeded does the mirror change, for the whole
 * group at once (store_memory_publish_batch, which cannot fail); then every writer of the
 * group is answered. If any write or the COMMIT fails, the transaction is rolled back and
 * every write of the group fails with that status: nothing changes, on disk or in memory.
 *
 * What it does not do: no reads (they go to the mirror, see sqlcipher.c), no rekey (sqlcipher.c
 * holds it, beside the key handling of open); it never opens or closes the database.
 *
 * Thread safety: any number of threads may put and remove at once; the queue is under
 * queue_lock, the database handle under write_lock, and the mirror has its own rwlock.
 * SQLITE_* codes become store_status through store_sqlcipher_status (sqlcipher.c).
 */
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

/* Most writes in one group commit. */
#define GROUP_MAX 128

/* One write waiting for, or in, a group commit. Lives on its writer's stack. */
struct write_op {
	struct write_op *next;
	bool remove;
	const char *name;
	struct store_secret *s; /* put: the writer's until the mirror takes it */
	enum store_conflict mode;
	bool done; /* under queue_lock */
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

/* Commit one group (see the file comment) and set every op's result. */
static void
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
}

/* Queue op and return once a group commit containing it is over. */
static store_status
submit(struct store_sqlcipher *sc, struct write_op *op)
{
	if (pthread_mutex_lock(&sc->queue_lock) != 0)
		return STORE_IO;
	if (sc->queue_tail != NULL)
		sc->queue_tail->next = op;
	else
		sc->queue_head = op;
	sc->queue_tail = op;
	while (!op->done) {
		struct write_op *group;

		if (sc->committing) {
			(void)pthread_cond_wait(&sc->queue_done, &sc->queue_lock);
			continue;
		}
		/* Lead: commit the next group (which may not hold op; then lead again). */
		group = take_group(sc);
		sc->committing = true;
		(void)pthread_mutex_unlock(&sc->queue_lock);
		commit_group(sc, group);
		(void)pthread_mutex_lock(&sc->queue_lock);
		for (struct write_op *o = group; o != NULL;) {
			struct write_op *next = o->next;

			o->done = true;
			o = next;
		}
		sc->committing = false;
		(void)pthread_cond_broadcast(&sc->queue_done);
	}
	(void)pthread_mutex_unlock(&sc->queue_lock);
	return op->result;
}

store_status
store_sqlcipher_put(void *impl, struct store_secret *s, enum store_conflict mode, bool *createdp)
{
	struct write_op op = {.name = s->name, .s = s, .mode = mode, .result = STORE_IO};
	store_status st = submit(impl, &op);

	*createdp = op.created;
	store_secret_free(op.s);
	return st;
}

store_status
store_sqlcipher_remove(void *impl, const char *name)
{
	struct write_op op = {.remove = true, .name = name, .result = STORE_IO};

	return submit(impl, &op);
}
