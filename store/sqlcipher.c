/*
 * sqlcipher.c: the "sqlcipher" backend. Secrets persist in an SQLCipher database (one
 * table, one row per secret, the body encoded by row.c) and are mirrored in an embedded
 * memory store, loaded whole at open, so that get, contains, count, list and resolve never
 * touch the disk.
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
 * Opening: the directory must be ours and 0700, the file ours and not group/other
 * accessible (it is created 0600). The key is the raw 256-bit form x'<64 hex>' (no KDF).
 * cipher_page_size is 4096 at every open: every database this backend creates uses it, and
 * SQLCipher needs the same value each time to read one. Nothing that writes (WAL switch,
 * migration) runs before the probe read has proved the key, so a wrong key leaves the file
 * untouched. A file whose owner write bit is clear (chmod 0400) is opened read-only, even
 * for root: writes then fail with STORE_READ_ONLY and reads work.
 *
 * Schema: PRAGMA user_version is the schema version; migrations[] takes version v to v+1.
 * A newer version than this code knows is STORE_CORRUPT (refused, not touched).
 *
 * What it does not do: it keeps no copy of the key (SQLCipher keeps its own), and it does
 * not support several processes writing one database (a second writer sees SQLITE_BUSY after
 * a timeout, reported as STORE_IO, and its mirror would not see the first one's writes).
 *
 * Thread safety: the database handle is used only under the write mutex (or during open and
 * close, which the caller must not overlap with other calls); reads go to the mirror, which
 * has its own rwlock. SQLITE_* codes are translated here and go no further.
 */
#include "memory_internal.h"
#include "row.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes of the key string x'<64 hex>' handed to sqlite3_key and sqlite3_rekey. */
#define KEY_STRING_LEN (3 + 2 * STORE_KEY_LEN)
#define CIPHER_PAGE_SIZE_PRAGMA "PRAGMA cipher_page_size = 4096"
#define BUSY_TIMEOUT_MS 5000
#define SQLCIPHER_DEFAULT_MAX 1000000
/* Most writes in one group commit. */
#define GROUP_MAX 128

/* migrations[v] takes an empty or version-v schema to version v + 1. */
static const char *const migrations[] = {
    "CREATE TABLE secrets (name TEXT PRIMARY KEY NOT NULL, type TEXT NOT NULL, "
    "body BLOB NOT NULL)",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* One write waiting for, or in, a group commit. Lives on its writer's stack. */
struct write_op {
	struct write_op *next;
	bool remove;
	const char *name;
	struct store_secret *s; /* put: the writer's until the mirror takes it */
	enum store_conflict mode;
	bool done;    /* under queue_lock */
	store_status result;
	bool created;
	/* the leader's, while it commits the group */
	bool effective; /* wrote a row in the open transaction */
	bool fresh;     /* a put of a name the mirror does not hold */
	struct store_memory_prep *prep;
};

struct store_sqlcipher {
	pthread_mutex_t queue_lock; /* the queue and committing */
	pthread_cond_t queue_done;
	struct write_op *queue_head;
	struct write_op *queue_tail;
	bool committing;
	pthread_mutex_t write_lock;
	sqlite3 *db;
	void *mem; /* the memory mirror (store_memory_ops) */
	size_t max_secrets;
	bool read_only;
	sqlite3_stmt *begin;
	sqlite3_stmt *commit;
	sqlite3_stmt *rollback;
	sqlite3_stmt *insert;
	sqlite3_stmt *delete;
};

/* The one place SQLITE_* codes become store_status. */
static store_status
sql_status(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return STORE_OK;
	case SQLITE_FULL:
		return STORE_NO_SPACE;
	case SQLITE_READONLY:
		return STORE_READ_ONLY;
	case SQLITE_NOTADB:
		return STORE_BAD_KEY;
	case SQLITE_CORRUPT:
	case SQLITE_SCHEMA:
	case SQLITE_MISMATCH:
	case SQLITE_FORMAT:
		return STORE_CORRUPT;
	case SQLITE_NOMEM:
		return STORE_NO_MEMORY;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return STORE_PERMISSION;
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return STORE_INVALID;
	default: /* IOERR*, CANTOPEN, BUSY, LOCKED, PROTOCOL, ... */
		return STORE_IO;
	}
}

/* x'<64 lowercase hex>' into buf (KEY_STRING_LEN bytes and a NUL). Caller wipes buf. */
static void
key_string(const uint8_t *key, char buf[KEY_STRING_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	buf[0] = 'x';
	buf[1] = '\'';
	for (size_t i = 0; i < STORE_KEY_LEN; i++) {
		buf[2 + 2 * i] = hex[key[i] >> 4];
		buf[3 + 2 * i] = hex[key[i] & 0xf];
	}
	buf[KEY_STRING_LEN - 1] = '\'';
	buf[KEY_STRING_LEN] = '\0';
}

/* The directory holding path must be a directory of ours with mode 0700. */
static store_status
check_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	struct stat sb;
	store_status rc = STORE_NO_MEMORY;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		goto fail;
	rc = STORE_INVALID; /* the directory must exist */
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		goto fail;
	rc = STORE_PERMISSION;
	if (sb.st_uid != geteuid() || (sb.st_mode & 0777) != 0700)
		goto fail;
	rc = STORE_OK;
fail:
	free(dir);
	return rc;
}

/* Create path 0600 when absent; refuse a file that is not a regular file of ours or that
 * group or others may access. *read_onlyp: the owner write bit is clear. */
static store_status
check_file(const char *path, bool *read_onlyp)
{
	struct stat sb;
	store_status rc = STORE_OK;
	int fd;

	/* O_CREAT with 0600 rather than umask games: umask is per process, not per thread. */
	fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EACCES || errno == ELOOP || errno == EPERM)
			return STORE_PERMISSION;
		if (errno == EROFS)
			return STORE_READ_ONLY;
		if (errno == ENOSPC || errno == EDQUOT)
			return STORE_NO_SPACE;
		if (errno == EISDIR)
			return STORE_INVALID;
		return STORE_IO;
	}
	if (fstat(fd, &sb) != 0)
		rc = STORE_IO;
	else if (!S_ISREG(sb.st_mode))
		rc = STORE_INVALID;
	else if (sb.st_uid != geteuid() || (sb.st_mode & 077) != 0)
		rc = STORE_PERMISSION;
	else
		*read_onlyp = (sb.st_mode & S_IWUSR) == 0;
	if (close(fd) != 0 && rc == STORE_OK)
		rc = STORE_IO;
	return rc;
}

/* Run one statement with no parameters to completion, discarding rows. */
static int
exec_sql(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	do
		rc = sqlite3_step(stmt);
	while (rc == SQLITE_ROW);
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
fail:
	(void)sqlite3_finalize(stmt);
	return rc;
}

/* Run a statement whose first row's first column is an integer, into *vp. */
static int
query_int(sqlite3 *db, const char *sql, int *vp)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*vp = sqlite3_column_int(stmt, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_CORRUPT;
	}
fail:
	(void)sqlite3_finalize(stmt);
	return rc;
}

/* Bring the schema to SCHEMA_VERSION; n_objects is the probe's count of schema objects. */
static store_status
migrate(struct store_sqlcipher *sc, int n_objects)
{
	int version = 0;
	int rc;
	store_status st;

	rc = query_int(sc->db, "PRAGMA user_version", &version);
	if (rc != SQLITE_OK)
		return sql_status(rc);
	/* A newer schema, or objects in a database that says it has none: not ours to touch. */
	if (version > SCHEMA_VERSION || version < 0 || (version == 0 && n_objects != 0))
		return STORE_CORRUPT;
	if (version == SCHEMA_VERSION)
		return STORE_OK;
	if (sc->read_only)
		return STORE_READ_ONLY;
	rc = exec_sql(sc->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return sql_status(rc);
	for (int v = version; v < SCHEMA_VERSION && rc == SQLITE_OK; v++)
		rc = exec_sql(sc->db, migrations[v]);
	if (rc == SQLITE_OK) {
		char sql[64];

		(void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
		rc = exec_sql(sc->db, sql);
	}
	if (rc == SQLITE_OK)
		rc = exec_sql(sc->db, "COMMIT");
	st = sql_status(rc);
	if (!sqlite3_get_autocommit(sc->db))
		(void)exec_sql(sc->db, "ROLLBACK");
	return st;
}

/* Read every row into the mirror. */
static store_status
load(struct store_sqlcipher *sc)
{
	sqlite3_stmt *stmt = NULL;
	store_status st;
	int rc;

	rc = sqlite3_prepare_v2(sc->db, "SELECT name, type, body FROM secrets", -1, &stmt, NULL);
	if (rc != SQLITE_OK) {
		st = sql_status(rc);
		goto fail;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_secret *s = NULL;
		const char *name = (const char *)sqlite3_column_text(stmt, 0);
		const char *type = (const char *)sqlite3_column_text(stmt, 1);
		const uint8_t *body = sqlite3_column_blob(stmt, 2);
		int len = sqlite3_column_bytes(stmt, 2);
		bool created;

		if (name == NULL || type == NULL || len < 0) {
			st = STORE_CORRUPT;
			goto fail;
		}
		st = store_row_decode(body, (size_t)len, name, type, &s);
		if (st != STORE_OK)
			goto fail;
		st = store_memory_ops.put(sc->mem, s, STORE_CONFLICT_ERROR, &created);
		if (st == STORE_EXISTS) /* a name the primary key should have kept unique */
			st = STORE_CORRUPT;
		if (st != STORE_OK)
			goto fail;
	}
	st = sql_status(rc);
fail:
	(void)sqlite3_finalize(stmt);
	return st;
}

/*
 * The -wal and -shm files SQLite keeps beside path. It creates them with the database
 * file's mode, so a read-only open (file 0400) leaves them 0400, and a later read-write
 * open, once the file is 0600 again, could not write them. When the database is
 * writable, give a leftover sibling of ours the database's mode 0600; refuse one that is
 * not a regular file of ours.
 */
static store_status
check_sibling(const char *path, const char *suffix, bool read_only)
{
	size_t len = strlen(path);
	size_t slen = strlen(suffix);
	char *name;
	struct stat sb;
	store_status rc = STORE_OK;
	int fd;

	if (len > SIZE_MAX - slen - 1)
		return STORE_INVALID;
	name = malloc(len + slen + 1);
	if (name == NULL)
		return STORE_NO_MEMORY;
	memcpy(name, path, len);
	memcpy(name + len, suffix, slen + 1);
	fd = open(name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(name);
	if (fd < 0)
		return errno == ENOENT ? STORE_OK : STORE_PERMISSION;
	if (fstat(fd, &sb) != 0)
		rc = STORE_IO;
	else if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid())
		rc = STORE_PERMISSION;
	else if (!read_only && (sb.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0)
		rc = STORE_PERMISSION;
	(void)close(fd);
	return rc;
}

static store_status
prepare_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **stmtp)
{
	return sql_status(sqlite3_prepare_v2(db, sql, -1, stmtp, NULL));
}

static void
sqlcipher_close(void *impl)
{
	struct store_sqlcipher *sc = impl;

	if (sc == NULL)
		return;
	(void)sqlite3_finalize(sc->begin);
	(void)sqlite3_finalize(sc->commit);
	(void)sqlite3_finalize(sc->rollback);
	(void)sqlite3_finalize(sc->insert);
	(void)sqlite3_finalize(sc->delete);
	/* The last connection to close checkpoints the WAL and removes it. */
	(void)sqlite3_close(sc->db);
	store_memory_ops.close(sc->mem);
	(void)pthread_mutex_destroy(&sc->write_lock);
	(void)pthread_cond_destroy(&sc->queue_done);
	(void)pthread_mutex_destroy(&sc->queue_lock);
	free(sc);
}

/* Open the database, key it and prove the key with a read; nothing is written before. */
static store_status
open_keyed(struct store_sqlcipher *sc, const struct store_config *cfg, int *n_objectsp)
{
	char key[KEY_STRING_LEN + 1];
	int flags = SQLITE_OPEN_NOMUTEX;
	int rc;

	flags |= sc->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	rc = sqlite3_open_v2(cfg->path, &sc->db, flags, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	(void)sqlite3_extended_result_codes(sc->db, 1);
	key_string(cfg->key, key);
	rc = sqlite3_key(sc->db, key, KEY_STRING_LEN);
	explicit_bzero(key, sizeof(key));
	if (rc != SQLITE_OK)
		goto fail;
	rc = exec_sql(sc->db, CIPHER_PAGE_SIZE_PRAGMA);
	if (rc != SQLITE_OK)
		goto fail;
	/* The probe: a wrong key (or a file that is no database) fails here with NOTADB. */
	rc = query_int(sc->db, "SELECT count(*) FROM sqlite_master", n_objectsp);
fail:
	if (rc != SQLITE_OK) {
		/* Close at once: nothing may write to a database we could not read. */
		(void)sqlite3_close(sc->db);
		sc->db = NULL;
	}
	return sql_status(rc);
}

/* Connection settings after the probe. secure_delete zeroes freed pages; temp_store keeps
 * sort and temporary tables off the disk; WAL with synchronous=FULL makes COMMIT durable. */
static store_status
configure(struct store_sqlcipher *sc)
{
	static const char *const pragmas[] = {
	    "PRAGMA secure_delete = ON",
	    "PRAGMA temp_store = MEMORY",
	    "PRAGMA journal_mode = WAL",
	    "PRAGMA synchronous = FULL",
	};
	size_t n = sc->read_only ? 2 : sizeof(pragmas) / sizeof(pragmas[0]);
	int rc;

	rc = sqlite3_busy_timeout(sc->db, BUSY_TIMEOUT_MS);
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
		rc = exec_sql(sc->db, pragmas[i]);
	return sql_status(rc);
}

static store_status
sqlcipher_open(const struct store_config *cfg, void **implp)
{
	struct store_sqlcipher *sc = NULL;
	bool mutex_ok = false;
	int n_objects = 0;
	store_status rc = STORE_INVALID;

	*implp = NULL;
	if (cfg->path == NULL || cfg->key == NULL || cfg->key_len != STORE_KEY_LEN)
		goto fail;
	rc = STORE_NO_MEMORY;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		goto fail;
	sc->max_secrets = cfg->max_secrets == 0 ? SQLCIPHER_DEFAULT_MAX : cfg->max_secrets;
	if (pthread_mutex_init(&sc->write_lock, NULL) != 0)
		goto fail;
	if (pthread_mutex_init(&sc->queue_lock, NULL) != 0) {
		(void)pthread_mutex_destroy(&sc->write_lock);
		goto fail;
	}
	if (pthread_cond_init(&sc->queue_done, NULL) != 0) {
		(void)pthread_mutex_destroy(&sc->queue_lock);
		(void)pthread_mutex_destroy(&sc->write_lock);
		goto fail;
	}
	mutex_ok = true;
	rc = check_dir(cfg->path);
	if (rc != STORE_OK)
		goto fail;
	rc = check_file(cfg->path, &sc->read_only);
	if (rc == STORE_OK)
		rc = check_sibling(cfg->path, "-wal", sc->read_only);
	if (rc == STORE_OK)
		rc = check_sibling(cfg->path, "-shm", sc->read_only);
	if (rc != STORE_OK)
		goto fail;
	rc = open_keyed(sc, cfg, &n_objects);
	if (rc != STORE_OK)
		goto fail;
	rc = configure(sc);
	if (rc != STORE_OK)
		goto fail;
	rc = migrate(sc, n_objects);
	if (rc != STORE_OK)
		goto fail;
	rc = prepare_stmt(sc->db, "BEGIN IMMEDIATE", &sc->begin);
	if (rc == STORE_OK)
		rc = prepare_stmt(sc->db, "COMMIT", &sc->commit);
	if (rc == STORE_OK)
		rc = prepare_stmt(sc->db, "ROLLBACK", &sc->rollback);
	if (rc == STORE_OK)
		rc = prepare_stmt(sc->db,
		    "INSERT OR REPLACE INTO secrets (name, type, body) VALUES (?1, ?2, ?3)",
		    &sc->insert);
	if (rc == STORE_OK)
		rc = prepare_stmt(sc->db, "DELETE FROM secrets WHERE name = ?1", &sc->delete);
	if (rc != STORE_OK)
		goto fail;
	rc = store_memory_open_unlimited(&sc->mem);
	if (rc != STORE_OK)
		goto fail;
	rc = load(sc);
	if (rc != STORE_OK)
		goto fail;
	*implp = sc;
	sc = NULL;
fail:
	if (sc != NULL && !mutex_ok) {
		free(sc);
		sc = NULL;
	}
	sqlcipher_close(sc);
	return rc;
}

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
group_put(struct store_sqlcipher *sc, struct write_op *op, size_t n, size_t scopes,
    size_t *fresh_countp)
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
			op->result = sql_status(rc);
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

static store_status
sqlcipher_put(void *impl, struct store_secret *s, enum store_conflict mode, bool *createdp)
{
	struct write_op op = {.name = s->name, .s = s, .mode = mode, .result = STORE_IO};
	store_status st = submit(impl, &op);

	*createdp = op.created;
	store_secret_free(op.s);
	return st;
}

static store_status
sqlcipher_remove(void *impl, const char *name)
{
	struct write_op op = {.remove = true, .name = name, .result = STORE_IO};

	return submit(impl, &op);
}

static store_status
sqlcipher_get(void *impl, const char *name, struct store_secret **outp)
{
	struct store_sqlcipher *sc = impl;

	return store_memory_ops.get(sc->mem, name, outp);
}

static store_status
sqlcipher_read(void *impl, const char *name, store_visit_fn visit, void *arg)
{
	struct store_sqlcipher *sc = impl;

	return store_memory_ops.read(sc->mem, name, visit, arg);
}

static bool
sqlcipher_contains(void *impl, const char *name)
{
	struct store_sqlcipher *sc = impl;

	return store_memory_ops.contains(sc->mem, name);
}

static store_status
sqlcipher_list(void *impl, const char *type, store_visit_fn visit, void *arg)
{
	struct store_sqlcipher *sc = impl;

	return store_memory_ops.list(sc->mem, type, visit, arg);
}

static store_status
sqlcipher_resolve(void *impl, const char *type, const char *path, size_t path_len,
    struct store_secret **outp, size_t *match_lenp)
{
	struct store_sqlcipher *sc = impl;

	return store_memory_ops.resolve(sc->mem, type, path, path_len, outp, match_lenp);
}

static size_t
sqlcipher_count(void *impl)
{
	struct store_sqlcipher *sc = impl;

	return store_memory_ops.count(sc->mem);
}

/*
 * Re-encrypt every page under the new key. sqlite3_rekey rewrites all pages in one
 * transaction (into the WAL); the checkpoint then moves them into the main file and
 * truncates the WAL, so no page under the old key stays behind.
 */
static store_status
sqlcipher_rekey(void *impl, const uint8_t *key, size_t key_len)
{
	struct store_sqlcipher *sc = impl;
	char buf[KEY_STRING_LEN + 1];
	int rc;

	if (key_len != STORE_KEY_LEN)
		return STORE_INVALID;
	if (pthread_mutex_lock(&sc->write_lock) != 0)
		return STORE_IO;
	if (sc->read_only) {
		rc = SQLITE_READONLY;
		goto fail;
	}
	key_string(key, buf);
	rc = sqlite3_rekey(sc->db, buf, KEY_STRING_LEN);
	explicit_bzero(buf, sizeof(buf));
	if (rc == SQLITE_OK)
		rc = exec_sql(sc->db, "PRAGMA wal_checkpoint(TRUNCATE)");
fail:
	(void)pthread_mutex_unlock(&sc->write_lock);
	return sql_status(rc);
}

const struct store_ops store_sqlcipher_ops = {
    .name = "sqlcipher",
    .open = sqlcipher_open,
    .close = sqlcipher_close,
    .put = sqlcipher_put,
    .get = sqlcipher_get,
    .contains = sqlcipher_contains,
    .read = sqlcipher_read,
    .remove = sqlcipher_remove,
    .list = sqlcipher_list,
    .resolve = sqlcipher_resolve,
    .count = sqlcipher_count,
    .rekey = sqlcipher_rekey,
};
