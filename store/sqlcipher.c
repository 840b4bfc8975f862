/*
 * sqlcipher.c: the "sqlcipher" backend. Secrets persist in an SQLCipher database (one
 * table, one row per secret, the body encoded by row.c) and are mirrored in an embedded
 * memory store, loaded whole at open, so that get, contains, count, list and resolve never
 * touch the disk.
 *
 * Writes are group-committed: put and remove are in sqlcipher_write.c, whose file comment
 * explains the group commit. struct store_sqlcipher is in sqlcipher_internal.h.
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
 * has its own rwlock. SQLITE_* codes are translated here (store_sqlcipher_status, which
 * sqlcipher_write.c uses too) and go no further.
 */
#include "config.h" /* first: SQLITE_HAS_CODEC before sqlite3.h */
#include "memory_internal.h"
#include "row.h"
#include "sqlcipher_internal.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "path.h"

/* Bytes of the key string x'<64 hex>' handed to sqlite3_key and sqlite3_rekey. */
#define KEY_STRING_LEN (3 + 2 * STORE_KEY_LEN)
#define CIPHER_PAGE_SIZE_PRAGMA "PRAGMA cipher_page_size = 4096"
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define KDF_ITER_PRAGMA "PRAGMA kdf_iter = " STRINGIFY(STORE_KDF_ITER)
#define BUSY_TIMEOUT_MS 5000
#define SQLCIPHER_DEFAULT_MAX 1000000

/* migrations[v] takes an empty or version-v schema to version v + 1. */
static const char *const migrations[] = {
    "CREATE TABLE secrets (name TEXT PRIMARY KEY NOT NULL, type TEXT NOT NULL, "
    "body BLOB NOT NULL)",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The one place SQLITE_* codes become store_status. */
store_status
store_sqlcipher_status(int rc)
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
	buf[0] = 'x';
	buf[1] = '\'';
	sd_hex_encode(key, STORE_KEY_LEN, buf + 2);
	buf[KEY_STRING_LEN - 1] = '\'';
	buf[KEY_STRING_LEN] = '\0';
}

/* The directory holding path must be a directory of ours with mode 0700. */
static store_status
check_dir(const char *path)
{
	char dir[SD_PATH_BUF];
	struct stat sb;

	/* the directory must exist */
	if (!sd_path_dir(path, dir, sizeof(dir)) || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return STORE_INVALID;
	if (sb.st_uid != geteuid() || (sb.st_mode & 0777) != 0700)
		return STORE_PERMISSION;
	return STORE_OK;
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
		return store_sqlcipher_status(rc);
	/* A newer schema, or objects in a database that says it has none: not ours to touch. */
	if (version > SCHEMA_VERSION || version < 0 || (version == 0 && n_objects != 0))
		return STORE_CORRUPT;
	if (version == SCHEMA_VERSION)
		return STORE_OK;
	if (sc->read_only)
		return STORE_READ_ONLY;
	rc = exec_sql(sc->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return store_sqlcipher_status(rc);
	for (int v = version; v < SCHEMA_VERSION && rc == SQLITE_OK; v++)
		rc = exec_sql(sc->db, migrations[v]);
	if (rc == SQLITE_OK) {
		char sql[64];

		(void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
		rc = exec_sql(sc->db, sql);
	}
	if (rc == SQLITE_OK)
		rc = exec_sql(sc->db, "COMMIT");
	st = store_sqlcipher_status(rc);
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
		st = store_sqlcipher_status(rc);
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
	st = store_sqlcipher_status(rc);
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
	return store_sqlcipher_status(sqlite3_prepare_v2(db, sql, -1, stmtp, NULL));
}

static void
sqlcipher_close(void *impl)
{
	struct store_sqlcipher *sc = impl;

	if (sc == NULL)
		return;
	/* Every queued write is committed (and its writer told) before the handle goes. */
	store_sqlcipher_committer_stop(sc);
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
	if (cfg->passphrase) {
		/* Raw bytes to sqlite3_key are a passphrase; the KDF setting must come before
		 * the first read, and be the same at every open. */
		rc = sqlite3_key(sc->db, cfg->key, (int)cfg->key_len);
		if (rc == SQLITE_OK)
			rc = exec_sql(sc->db, KDF_ITER_PRAGMA);
	} else {
		key_string(cfg->key, key);
		rc = sqlite3_key(sc->db, key, KEY_STRING_LEN);
		explicit_bzero(key, sizeof(key));
	}
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
	return store_sqlcipher_status(rc);
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
	return store_sqlcipher_status(rc);
}

static store_status
sqlcipher_open(const struct store_config *cfg, void **implp)
{
	struct store_sqlcipher *sc = NULL;
	bool mutex_ok = false;
	int n_objects = 0;
	store_status rc = STORE_INVALID;

	*implp = NULL;
	if (cfg->path == NULL || cfg->key == NULL ||
	    (cfg->passphrase ? cfg->key_len == 0 || cfg->key_len > STORE_PASSPHRASE_MAX
	                     : cfg->key_len != STORE_KEY_LEN))
		goto fail;
	rc = STORE_NO_MEMORY;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		goto fail;
	sc->passphrase = cfg->passphrase;
	sc->on_change = cfg->on_change;
	sc->on_change_arg = cfg->on_change_arg;
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
	if (rc == STORE_OK)
		rc = store_sqlcipher_committer_start(sc);
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

	if (sc->passphrase ? key_len == 0 || key_len > STORE_PASSPHRASE_MAX
	                   : key_len != STORE_KEY_LEN)
		return STORE_INVALID;
	if (pthread_mutex_lock(&sc->write_lock) != 0)
		return STORE_IO;
	if (sc->read_only) {
		rc = SQLITE_READONLY;
		goto fail;
	}
	if (sc->passphrase) {
		rc = sqlite3_rekey(sc->db, key, (int)key_len);
	} else {
		key_string(key, buf);
		rc = sqlite3_rekey(sc->db, buf, KEY_STRING_LEN);
		explicit_bzero(buf, sizeof(buf));
	}
	if (rc == SQLITE_OK)
		rc = exec_sql(sc->db, "PRAGMA wal_checkpoint(TRUNCATE)");
fail:
	(void)pthread_mutex_unlock(&sc->write_lock);
	return store_sqlcipher_status(rc);
}

/* ops.writable: a database opened read-only (file mode 0400) cannot take a write. */
static bool
sqlcipher_writable(void *impl)
{
	const struct store_sqlcipher *sc = impl;

	return !sc->read_only;
}

const struct store_ops store_sqlcipher_ops = {
    .name = "sqlcipher",
    .open = sqlcipher_open,
    .close = sqlcipher_close,
    .put = store_sqlcipher_put,
    .get = sqlcipher_get,
    .contains = sqlcipher_contains,
    .read = sqlcipher_read,
    .remove = store_sqlcipher_remove,
    .list = sqlcipher_list,
    .resolve = sqlcipher_resolve,
    .count = sqlcipher_count,
    .rekey = sqlcipher_rekey,
    .put_async = store_sqlcipher_put_async,
    .remove_async = store_sqlcipher_remove_async,
    .stats = store_sqlcipher_stats,
    .writable = sqlcipher_writable,
};
