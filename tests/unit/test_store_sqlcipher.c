/*
 * test_store_sqlcipher.c: what only the sqlcipher backend has: reopen, a wrong key, file
 * and directory permissions, rekey, no plaintext on disk, a read-only file, the schema
 * version. Each case gets a fresh database in a 0700 temporary directory.
 */
#include "hex.h"
#include "store_fixture.h"

static void
test_reopen(struct fixture *fx)
{
	static const char *const scope[] = {"openai://", "openai://deep/"};
	struct store_field fields[] = {
	    {.key = "api_key", .value = VALUE_BINARY, .value_len = sizeof(VALUE_BINARY)},
	    {.key = "base_url", .value = (const uint8_t *)VALUE_B, .value_len = 4},
	};
	struct store *st = fx_open(fx, 0);
	struct store_secret *s = NULL;
	char namebuf[64];
	size_t len;

	if (st == NULL)
		return;
	CHECK_STATUS(store_secret_new("keep", "openai", scope, 2, fields, 2, &s), STORE_OK);
	CHECK_STATUS(store_put(st, s, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(
	    put1(st, "gone", "openai", "x://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(
	    put1(st, "changed", "openai", "x://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(
	    put1(st, "changed", "ollama", "y://", VALUE_B, STORE_CONFLICT_REPLACE, NULL), STORE_OK);
	CHECK_STATUS(store_remove(st, "gone"), STORE_OK);
	store_close(st);

	st = fx_open(fx, 0);
	if (st == NULL)
		return;
	CHECK_STATUS(store_count(st), 2);
	CHECK(!store_contains(st, "gone"));
	s = NULL;
	CHECK_STATUS(store_get(st, "keep", &s), STORE_OK);
	if (s != NULL) {
		CHECK_STR(s->type, "openai");
		CHECK_STATUS(s->n_scope, 2);
		CHECK_STR(s->scope[1], "openai://deep/");
		CHECK(value_eq(s, "api_key", VALUE_BINARY, sizeof(VALUE_BINARY)));
		CHECK(value_eq(s, "base_url", VALUE_B, 4));
	}
	store_secret_free(s);
	s = NULL;
	CHECK_STATUS(store_get(st, "changed", &s), STORE_OK);
	CHECK(s != NULL && strcmp(s->type, "ollama") == 0);
	CHECK(value_eq(s, "api_key", VALUE_B, strlen(VALUE_B)));
	store_secret_free(s);
	CHECK_STR(RESOLVE(st, "openai", "openai://deep/1", &len), "keep");
	CHECK_STATUS(len, strlen("openai://deep/"));
	CHECK_STR(RESOLVE(st, "ollama", "y://1", &len), "changed");
	store_close(st);
}

static void
test_wrong_key(struct fixture *fx)
{
	uint8_t wrong[STORE_KEY_LEN];
	char wal[160];
	uint8_t *db_before = NULL;
	uint8_t *wal_before = NULL;
	size_t db_len = 0;
	size_t wal_len = 0;
	bool wal_existed;
	struct store *st = fx_open(fx, 0);
	struct store *bad = NULL;

	if (st == NULL)
		return;
	key_fill(wrong, 2);
	path_with(fx, "-wal", wal, sizeof(wal));
	CHECK_STATUS(
	    put1(st, "a", "openai", "x://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	/* While the store is open, with a WAL file beside the database. */
	CHECK(slurp(fx->path, &db_before, &db_len));
	wal_existed = slurp(wal, &wal_before, &wal_len);
	CHECK_STATUS(fx_open_key(fx, wrong, 0, &bad), STORE_BAD_KEY);
	CHECK(bad == NULL);
	CHECK(same_bytes(fx->path, db_before, db_len, true));
	CHECK(same_bytes(wal, wal_before, wal_len, wal_existed));
	free(db_before);
	free(wal_before);
	store_close(st);

	/* Closed. */
	CHECK(slurp(fx->path, &db_before, &db_len));
	wal_existed = slurp(wal, &wal_before, &wal_len);
	CHECK_STATUS(fx_open_key(fx, wrong, 0, &bad), STORE_BAD_KEY);
	CHECK(same_bytes(fx->path, db_before, db_len, true));
	CHECK(same_bytes(wal, wal_before, wal_len, wal_existed));
	free(db_before);
	free(wal_before);

	/* The right key still opens it. */
	st = fx_open(fx, 0);
	CHECK(st != NULL && store_contains(st, "a"));
	store_close(st);

	/* A file that is not a database at all. */
	{
		int fd = open(fx->path, O_WRONLY | O_TRUNC);

		CHECK(fd >= 0);
		if (fd >= 0) {
			char junk[4096];

			memset(junk, 'j', sizeof(junk));
			CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
			(void)close(fd);
		}
		(void)unlink(wal);
		CHECK(slurp(fx->path, &db_before, &db_len));
		CHECK_STATUS(fx_open_key(fx, fx->key, 0, &bad), STORE_BAD_KEY);
		CHECK(same_bytes(fx->path, db_before, db_len, true));
		free(db_before);
	}
}

static void
test_permissions(struct fixture *fx)
{
	struct store *st = NULL;
	struct store_config cfg = {.path = fx->path, .key = fx->key, .key_len = 16};
	char missing[160];

	CHECK_STATUS(store_open(fx->ops, &cfg, &st), STORE_INVALID);
	CHECK_STATUS(chmod(fx->dir, 0755), 0);
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &st), STORE_PERMISSION);
	CHECK(access(fx->path, F_OK) != 0); /* nothing created */
	CHECK_STATUS(chmod(fx->dir, 0710), 0);
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &st), STORE_PERMISSION);
	CHECK_STATUS(chmod(fx->dir, 0700), 0);
	st = fx_open(fx, 0);
	store_close(st);
	/* The file was created 0600. */
	{
		struct stat sb;

		CHECK_STATUS(stat(fx->path, &sb), 0);
		CHECK_STATUS(sb.st_mode & 0777, 0600);
	}
	CHECK_STATUS(chmod(fx->path, 0640), 0);
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &st), STORE_PERMISSION);
	CHECK_STATUS(chmod(fx->path, 0604), 0);
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &st), STORE_PERMISSION);
	CHECK_STATUS(chmod(fx->path, 0600), 0);
	snprintf(missing, sizeof(missing), "%s/nodir/x.db", fx->dir);
	cfg.path = missing;
	cfg.key_len = STORE_KEY_LEN;
	CHECK_STATUS(store_open(fx->ops, &cfg, &st), STORE_INVALID);
	CHECK(st == NULL);
}

static void
test_rekey(struct fixture *fx)
{
	uint8_t newkey[STORE_KEY_LEN];
	struct store *st = fx_open(fx, 0);
	struct store *other = NULL;
	struct store_secret *s = NULL;

	if (st == NULL)
		return;
	key_fill(newkey, 9);
	CHECK_STATUS(
	    put1(st, "before", "openai", "x://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(store_rekey(st, newkey, STORE_KEY_LEN), STORE_OK);
	CHECK_STATUS(
	    put1(st, "after", "openai", "x://", VALUE_B, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	/* While it is still open, the old key no longer opens the file. */
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &other), STORE_BAD_KEY);
	store_close(st);
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &other), STORE_BAD_KEY);
	CHECK_STATUS(fx_open_key(fx, newkey, 0, &st), STORE_OK);
	if (st == NULL)
		return;
	CHECK_STATUS(store_count(st), 2);
	CHECK_STATUS(store_get(st, "before", &s), STORE_OK);
	CHECK(value_eq(s, "api_key", VALUE_A, strlen(VALUE_A)));
	store_secret_free(s);
	store_close(st);
}

static void
test_no_plaintext_on_disk(struct fixture *fx)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	struct store *st = fx_open(fx, 0);
	size_t hits = 0;

	if (st == NULL)
		return;
	CHECK_STATUS(put1(st, "canary", "openai", "canary://", CANARY, STORE_CONFLICT_ERROR, NULL),
	    STORE_OK);
	CHECK_STATUS(
	    put1(st, "other", "openai", "x://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	/* Replace and remove, so old versions of pages exist in the WAL and free lists. */
	CHECK_STATUS(
	    put1(st, "canary", "openai", "canary://", CANARY, STORE_CONFLICT_REPLACE, NULL),
	    STORE_OK);
	for (size_t i = 0; i < 4; i++) {
		char p[160];

		path_with(fx, suffixes[i], p, sizeof(p));
		hits += count_hits(p, CANARY);
		hits += count_hits(p, "canary://");
	}
	CHECK_STATUS(hits, 0);
	CHECK_STATUS(store_remove(st, "canary"), STORE_OK);
	store_close(st);
	for (size_t i = 0; i < 4; i++) {
		char p[160];

		path_with(fx, suffixes[i], p, sizeof(p));
		hits += count_hits(p, CANARY);
	}
	CHECK_STATUS(hits, 0);
}

static void
test_read_only_file(struct fixture *fx)
{
	struct store *st = fx_open(fx, 0);
	struct store_secret *s = NULL;
	store_status rc;

	if (st == NULL)
		return;
	CHECK_STATUS(
	    put1(st, "a", "openai", "x://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	store_close(st);
	CHECK_STATUS(chmod(fx->path, 0400), 0);
	st = fx_open(fx, 0);
	if (st != NULL) {
		CHECK_STATUS(store_count(st), 1);
		rc = put1(st, "b", "openai", "x://", VALUE_A, STORE_CONFLICT_ERROR, NULL);
		CHECK(rc == STORE_READ_ONLY || rc == STORE_IO);
		CHECK(!store_contains(st, "b"));
		rc = put1(st, "a", "openai", "y://", VALUE_B, STORE_CONFLICT_REPLACE, NULL);
		CHECK(rc == STORE_READ_ONLY || rc == STORE_IO);
		CHECK_STATUS(store_get(st, "a", &s), STORE_OK);
		CHECK(value_eq(s, "api_key", VALUE_A, strlen(VALUE_A)));
		store_secret_free(s);
		rc = store_remove(st, "a");
		CHECK(rc == STORE_READ_ONLY || rc == STORE_IO);
		CHECK(store_contains(st, "a"));
		CHECK_STATUS(store_count(st), 1);
		CHECK_STATUS(store_rekey(st, fx->key, STORE_KEY_LEN), STORE_READ_ONLY);
		store_close(st);
	}
	CHECK_STATUS(chmod(fx->path, 0600), 0);
	st = fx_open(fx, 0);
	CHECK(st != NULL && store_count(st) == 1);
	store_close(st);
}

/* Run sql on the database with the fixture's key, outside the store. */
static int
raw_exec(const struct fixture *fx, const char *sql)
{
	char pragma[128];
	size_t n = 0;
	sqlite3 *db = NULL;
	int rc;

	n += (size_t)snprintf(pragma, sizeof(pragma), "PRAGMA key = \"x'");
	sd_hex_encode(fx->key, STORE_KEY_LEN, pragma + n);
	n += 2 * STORE_KEY_LEN;
	snprintf(pragma + n, sizeof(pragma) - n, "'\"");
	rc = sqlite3_open(fx->path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, pragma, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA cipher_page_size = 4096", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	(void)sqlite3_close(db);
	return rc;
}

static void
test_schema_and_rows(struct fixture *fx)
{
	struct store *st = fx_open(fx, 0);

	if (st == NULL)
		return;
	CHECK_STATUS(
	    put1(st, "a", "openai", "x://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	store_close(st);
	st = NULL;
	/* A newer schema than this code knows is refused. */
	CHECK_STATUS(raw_exec(fx, "PRAGMA user_version = 99"), SQLITE_OK);
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &st), STORE_CORRUPT);
	CHECK_STATUS(raw_exec(fx, "PRAGMA user_version = 1"), SQLITE_OK);
	st = fx_open(fx, 0);
	store_close(st);
	st = NULL;
	/* A malformed row body is refused. */
	CHECK_STATUS(
	    raw_exec(fx, "INSERT INTO secrets VALUES ('bad', 'openai', x'01ffffff')"), SQLITE_OK);
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &st), STORE_CORRUPT);
	CHECK_STATUS(raw_exec(fx, "DELETE FROM secrets WHERE name = 'bad'"), SQLITE_OK);
	st = fx_open(fx, 0);
	CHECK(st != NULL && store_count(st) == 1);
	store_close(st);
	st = NULL;
	/* A database with tables but no version is not ours. */
	CHECK_STATUS(raw_exec(fx, "PRAGMA user_version = 0"), SQLITE_OK);
	CHECK_STATUS(fx_open_key(fx, fx->key, 0, &st), STORE_CORRUPT);
}

static const struct test_case sqlcipher_tests[] = {
    {"reopen", test_reopen},
    {"wrong_key", test_wrong_key},
    {"permissions", test_permissions},
    {"rekey", test_rekey},
    {"no_plaintext_on_disk", test_no_plaintext_on_disk},
    {"read_only_file", test_read_only_file},
    {"schema_and_rows", test_schema_and_rows},
};

int
main(void)
{
	int ran = run_cases("sqlcipher", &store_sqlcipher_ops, sqlcipher_tests,
	    sizeof(sqlcipher_tests) / sizeof(sqlcipher_tests[0]));

	fprintf(stderr, "%d test cases\n", ran);
	return check_report();
}
