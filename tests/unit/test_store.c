/*
 * test_store.c: the store contract, run against both backends (memory, and sqlcipher in a
 * fresh 0700 temporary directory per test), then the cases only sqlcipher has (reopen,
 * wrong key, permissions, rekey, no plaintext on disk, read-only file, schema version),
 * the row decoder on malformed input, and the key file.
 *
 * Secret values never appear in a CHECK expression or an output line: values are named
 * constants compared through helpers.
 */
#include "check.h"
#include "etcd_proc.h"
#include "row.h"
#include "seal.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Test values: compared through value_eq only, never printed. */
static const char VALUE_A[] = "sk-test-value-a";
static const char VALUE_B[] = "sk-test-value-b";
static const char CANARY[] = "canary-7f3a9c1e-d0d6-4b55-plaintext";
static const uint8_t VALUE_BINARY[] = {'a', 0x00, 'b', 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff, 0x01};

struct fixture {
	const struct store_ops *ops;
	bool persistent;
	char dir[64];
	char path[128];
	uint8_t key[STORE_KEY_LEN];
	char prefix[64]; /* etcd: a prefix of this test's own */
};

/* The etcd member the etcd backend's cases run against (NULL: not available), and a
 * counter that gives each case a fresh prefix. */
static struct etcd_proc *etcd_cluster;
static int etcd_cases;

static void
key_fill(uint8_t *key, uint8_t seed)
{
	for (size_t i = 0; i < STORE_KEY_LEN; i++)
		key[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

static bool
fx_setup(struct fixture *fx, const struct store_ops *ops)
{
	memset(fx, 0, sizeof(*fx));
	fx->ops = ops;
	fx->persistent = ops != &store_memory_ops;
	snprintf(fx->prefix, sizeof(fx->prefix), "/test-%d-%d/", (int)getpid(), ++etcd_cases);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test-store-XXXXXX");
	if (mkdtemp(fx->dir) == NULL || chmod(fx->dir, 0700) != 0)
		return false;
	snprintf(fx->path, sizeof(fx->path), "%s/secrets.db", fx->dir);
	key_fill(fx->key, 1);
	return true;
}

static void
fx_teardown(struct fixture *fx)
{
	DIR *d;
	struct dirent *de;

	(void)chmod(fx->dir, 0700);
	d = opendir(fx->dir);
	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			char p[PATH_MAX];

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
			(void)unlink(p);
		}
		(void)closedir(d);
	}
	(void)rmdir(fx->dir);
}

static store_status
fx_open_key(struct fixture *fx, const uint8_t *key, size_t max, struct store **stp)
{
	struct store_etcd_config ec = {
	    .endpoints = etcd_cluster != NULL ? etcd_cluster->endpoints : NULL,
	    .prefix = fx->prefix,
	};
	struct store_config cfg = {
	    .path = fx->path,
	    .key = key,
	    .key_len = STORE_KEY_LEN,
	    .max_secrets = max,
	    .etcd = &ec,
	};

	return store_open(fx->ops, &cfg, stp);
}

static struct store *
fx_open(struct fixture *fx, size_t max)
{
	struct store *st = NULL;

	CHECK_STATUS(fx_open_key(fx, fx->key, max, &st), STORE_OK);
	return st;
}

/* A secret with the given scopes and one field api_key = value; NULL on failure. No
 * CHECK inside: the worker threads call it, and check.h's counters are not thread-safe. */
static struct store_secret *
mk_quiet(
    const char *name, const char *type, const char *const *scope, size_t n_scope, const char *value)
{
	struct store_field f = {
	    .key = "api_key",
	    .value = (const uint8_t *)value,
	    .value_len = strlen(value),
	};
	struct store_secret *s = NULL;

	(void)store_secret_new(name, type, scope, n_scope, &f, 1, &s);
	return s;
}

static struct store_secret *
mk(const char *name, const char *type, const char *const *scope, size_t n_scope, const char *value)
{
	struct store_secret *s = mk_quiet(name, type, scope, n_scope, value);

	CHECK(s != NULL);
	return s;
}

/* Put a secret with at most one scope (NULL: none). */
static store_status
put1(struct store *st, const char *name, const char *type, const char *scope, const char *value,
    enum store_conflict mode, bool *createdp)
{
	struct store_secret *s = mk_quiet(name, type, &scope, scope != NULL ? 1 : 0, value);

	if (s == NULL)
		return STORE_NO_MEMORY;
	return store_put(st, s, mode, createdp);
}

static const struct store_field *
field_of(const struct store_secret *s, const char *key)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		if (strcmp(s->fields[i].key, key) == 0)
			return &s->fields[i];
	}
	return NULL;
}

static bool
value_eq(const struct store_secret *s, const char *key, const void *want, size_t want_len)
{
	const struct store_field *f = s != NULL ? field_of(s, key) : NULL;

	return f != NULL && f->value_len == want_len && memcmp(f->value, want, want_len) == 0 &&
	       f->value[want_len] == 0;
}

/* The name resolve picks, "" when none; match length in *lenp. */
static const char *
resolve_name(struct store *st, const char *type, const char *path, size_t path_len, size_t *lenp,
    char *buf, size_t bufsz)
{
	struct store_secret *s = NULL;
	size_t len = 0;
	store_status rc = store_resolve(st, type, path, path_len, &s, &len);

	buf[0] = '\0';
	if (rc == STORE_OK)
		snprintf(buf, bufsz, "%s", s->name);
	else if (rc != STORE_NOT_FOUND)
		snprintf(buf, bufsz, "error %d", (int)rc);
	if (lenp != NULL)
		*lenp = len;
	store_secret_free(s);
	return buf;
}

#define RESOLVE(st, type, path, lenp)                                                              \
	resolve_name((st), (type), (path), strlen(path), (lenp), namebuf, sizeof(namebuf))

/* --- the contract, for both backends ------------------------------------------------- */

/* store_read's visitor: records that it ran and whether the value was the expected one. */
struct read_probe {
	int calls;
	bool value_ok;
};

static bool
probe_visit(const struct store_secret *s, void *arg)
{
	struct read_probe *p = arg;

	p->calls++;
	p->value_ok =
	    value_eq(s, "api_key", VALUE_A, strlen(VALUE_A)) && strcmp(s->name, "alpha") == 0;
	return true;
}

static void
test_put_get_remove(struct fixture *fx)
{
	struct store *st = fx_open(fx, 0);
	struct store_secret *s = NULL;
	bool created = false;

	if (st == NULL)
		return;
	CHECK_STR(store_name(st), fx->ops == &store_memory_ops      ? "memory"
	                          : fx->ops == &store_sqlcipher_ops ? "sqlcipher"
	                                                            : "etcd");
	CHECK_STATUS(store_count(st), 0);
	CHECK(!store_contains(st, "alpha"));
	CHECK_STATUS(store_get(st, "alpha", &s), STORE_NOT_FOUND);
	CHECK(s == NULL);
	CHECK_STATUS(
	    put1(st, "alpha", "openai", "openai://", VALUE_A, STORE_CONFLICT_ERROR, &created),
	    STORE_OK);
	CHECK(created);
	CHECK(store_contains(st, "alpha"));
	CHECK(!store_contains(st, "Alpha")); /* the store does not fold case */
	CHECK_STATUS(store_count(st), 1);
	{
		struct read_probe probe = {0, false};

		/* store_read lends the stored secret without copying it. */
		CHECK_STATUS(store_read(st, "alpha", probe_visit, &probe), STORE_OK);
		CHECK(probe.calls == 1 && probe.value_ok);
		CHECK_STATUS(store_read(st, "beta", probe_visit, &probe), STORE_NOT_FOUND);
		CHECK(probe.calls == 1);
	}
	CHECK_STATUS(store_get(st, "alpha", &s), STORE_OK);
	if (s != NULL) {
		CHECK_STR(s->name, "alpha");
		CHECK_STR(s->type, "openai");
		CHECK_STATUS(s->n_scope, 1);
		CHECK_STR(s->scope[0], "openai://");
		CHECK_STATUS(s->n_fields, 1);
		CHECK(value_eq(s, "api_key", VALUE_A, strlen(VALUE_A)));
	}
	store_secret_free(s);
	CHECK_STATUS(store_remove(st, "alpha"), STORE_OK);
	CHECK(!store_contains(st, "alpha"));
	CHECK_STATUS(store_get(st, "alpha", &s), STORE_NOT_FOUND);
	CHECK_STATUS(store_remove(st, "alpha"), STORE_NOT_FOUND);
	CHECK_STATUS(store_count(st), 0);
	/* A name can come back after removal. */
	CHECK_STATUS(
	    put1(st, "alpha", "ollama", NULL, VALUE_B, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(store_count(st), 1);
	CHECK_STATUS(store_rekey(st, fx->key, STORE_KEY_LEN), STORE_OK);
	CHECK_STATUS(store_rekey(st, fx->key, 5), STORE_INVALID);
	store_close(st);
	store_close(NULL);
}

static void
test_conflict_modes(struct fixture *fx)
{
	struct store *st = fx_open(fx, 0);
	struct store_secret *s = NULL;
	bool created = true;

	if (st == NULL)
		return;
	CHECK_STATUS(
	    put1(st, "dup", "openai", "openai://", VALUE_A, STORE_CONFLICT_ERROR, &created),
	    STORE_OK);
	CHECK(created);
	CHECK_STATUS(put1(st, "dup", "openai", "x://", VALUE_B, STORE_CONFLICT_ERROR, &created),
	    STORE_EXISTS);
	CHECK(!created);
	CHECK_STATUS(
	    put1(st, "dup", "openai", "x://", VALUE_B, STORE_CONFLICT_IGNORE, &created), STORE_OK);
	CHECK(!created);
	CHECK_STATUS(store_get(st, "dup", &s), STORE_OK);
	CHECK(value_eq(s, "api_key", VALUE_A, strlen(VALUE_A)));
	CHECK(s != NULL && s->n_scope == 1 && strcmp(s->scope[0], "openai://") == 0);
	store_secret_free(s);
	s = NULL;
	/* Replace whole, with a change of type. */
	CHECK_STATUS(
	    put1(st, "dup", "ollama", "ollama://", VALUE_B, STORE_CONFLICT_REPLACE, &created),
	    STORE_OK);
	CHECK(created);
	CHECK_STATUS(store_count(st), 1);
	CHECK_STATUS(store_get(st, "dup", &s), STORE_OK);
	CHECK(s != NULL && strcmp(s->type, "ollama") == 0);
	CHECK(value_eq(s, "api_key", VALUE_B, strlen(VALUE_B)));
	store_secret_free(s);
	s = NULL;
	/* REPLACE of a new name creates it. */
	CHECK_STATUS(
	    put1(st, "fresh", "openai", NULL, VALUE_A, STORE_CONFLICT_REPLACE, &created), STORE_OK);
	CHECK(created);
	CHECK_STATUS(store_count(st), 2);
	/* The old type's index entry is gone: resolve no longer finds it under openai. */
	CHECK_STATUS(store_resolve(st, "openai", "openai://x", 10, &s, NULL), STORE_NOT_FOUND);
	store_close(st);
}

struct visit_log {
	char names[16][16];
	size_t n;
	size_t stop_after; /* 0: never */
};

static bool
visit_record(const struct store_secret *s, void *arg)
{
	struct visit_log *log = arg;

	if (log->n < 16)
		snprintf(log->names[log->n], sizeof(log->names[0]), "%s", s->name);
	log->n++;
	return log->stop_after == 0 || log->n < log->stop_after;
}

static void
test_list(struct fixture *fx)
{
	static const char *const names[] = {"m", "b", "z", "a", "\xc3\xa9t\xc3\xa9", "B", "aa"};
	static const char *const sorted[] = {"B", "a", "aa", "b", "m", "z", "\xc3\xa9t\xc3\xa9"};
	struct store *st = fx_open(fx, 0);
	struct visit_log log = {.n = 0};
	struct store_secret **items = NULL;
	size_t n = 0;

	if (st == NULL)
		return;
	CHECK_STATUS(store_list(st, NULL, visit_record, &log), STORE_OK);
	CHECK_STATUS(log.n, 0);
	for (size_t i = 0; i < 7; i++) {
		/* Every third one is ollama, for the type filter. */
		CHECK_STATUS(put1(st, names[i], i % 3 == 0 ? "ollama" : "openai", NULL, VALUE_A,
		                 STORE_CONFLICT_ERROR, NULL),
		    STORE_OK);
	}
	CHECK_STATUS(store_list(st, NULL, visit_record, &log), STORE_OK);
	CHECK_STATUS(log.n, 7);
	for (size_t i = 0; i < 7; i++)
		CHECK_STR(log.names[i], sorted[i]);
	/* Type filter: m, a, aa are ollama (positions 0, 3, 6). */
	memset(&log, 0, sizeof(log));
	CHECK_STATUS(store_list(st, "ollama", visit_record, &log), STORE_OK);
	CHECK_STATUS(log.n, 3);
	CHECK_STR(log.names[0], "a");
	CHECK_STR(log.names[1], "aa");
	CHECK_STR(log.names[2], "m");
	memset(&log, 0, sizeof(log));
	CHECK_STATUS(store_list(st, "azure_llm", visit_record, &log), STORE_OK);
	CHECK_STATUS(log.n, 0);
	/* Early stop. */
	memset(&log, 0, sizeof(log));
	log.stop_after = 2;
	CHECK_STATUS(store_list(st, NULL, visit_record, &log), STORE_OK);
	CHECK_STATUS(log.n, 2);
	/* The order follows removals and inserts made after a list. */
	CHECK_STATUS(store_remove(st, "a"), STORE_OK);
	CHECK_STATUS(put1(st, "c", "openai", NULL, VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	memset(&log, 0, sizeof(log));
	CHECK_STATUS(store_list(st, NULL, visit_record, &log), STORE_OK);
	CHECK_STATUS(log.n, 7);
	CHECK_STR(log.names[1], "aa");
	CHECK_STR(log.names[3], "c");
	/* list_copy gives the same order as copies. */
	CHECK_STATUS(store_list_copy(st, "openai", &items, &n), STORE_OK);
	CHECK_STATUS(n, 5);
	if (n == 5) {
		CHECK_STR(items[0]->name, "B");
		CHECK_STR(items[1]->name, "b");
		CHECK_STR(items[2]->name, "c");
		CHECK_STR(items[3]->name, "z");
		CHECK_STR(items[4]->name, "\xc3\xa9t\xc3\xa9");
	}
	store_secret_array_free(items, n);
	store_close(st);
}

static void
test_resolve(struct fixture *fx)
{
	struct store *st = fx_open(fx, 0);
	struct store_secret *s = NULL;
	char namebuf[64];
	size_t len = 99;

	if (st == NULL)
		return;
	CHECK_STR(RESOLVE(st, "openai", "openai://x", &len), "");
	CHECK_STATUS(
	    put1(st, "s1", "openai", "openai://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(
	    put1(st, "s3", "openai", "openai://team/", VALUE_A, STORE_CONFLICT_ERROR, NULL),
	    STORE_OK);
	CHECK_STATUS(
	    put1(st, "s2", "openai", "openai://team/", VALUE_A, STORE_CONFLICT_ERROR, NULL),
	    STORE_OK);
	CHECK_STATUS(
	    put1(st, "s0", "ollama", "openai://team/x", VALUE_A, STORE_CONFLICT_ERROR, NULL),
	    STORE_OK);
	/* Longest prefix wins; on a tie the smaller name. */
	CHECK_STR(RESOLVE(st, "openai", "openai://team/x/y", &len), "s2");
	CHECK_STATUS(len, strlen("openai://team/"));
	CHECK_STR(RESOLVE(st, "openai", "openai://team/", &len), "s2");
	CHECK_STR(RESOLVE(st, "openai", "openai://other", &len), "s1");
	CHECK_STATUS(len, strlen("openai://"));
	CHECK_STR(RESOLVE(st, "openai", "openai://team", &len), "s1");
	CHECK_STR(RESOLVE(st, "openai", "openai:/", &len), "");
	CHECK_STR(RESOLVE(st, "openai", "azure://x", &len), "");
	CHECK_STR(RESOLVE(st, "openai", "", &len), "");
	/* Type filter. */
	CHECK_STR(RESOLVE(st, "ollama", "openai://team/x/y", &len), "s0");
	CHECK_STATUS(len, strlen("openai://team/x"));
	CHECK_STR(RESOLVE(st, "ollama", "openai://team/", &len), "");
	CHECK_STR(RESOLVE(st, "azure_llm", "openai://team/x/y", &len), "");
	/* path_len bounds the path; bytes after it do not count. */
	CHECK_STR(
	    resolve_name(st, "openai", "openai://team/x", 9, &len, namebuf, sizeof(namebuf)), "s1");
	CHECK_STATUS(len, 9);
	/* Case-sensitive bytes. */
	CHECK_STR(RESOLVE(st, "openai", "OPENAI://team/", &len), "");
	CHECK_STATUS(store_resolve(st, "openai", "zzz", 3, &s, &len), STORE_NOT_FOUND);
	CHECK(s == NULL);
	store_close(st);
}

static void
test_resolve_empty_and_multi(struct fixture *fx)
{
	static const char *const multi[] = {"a://", "a://deep/path/"};
	static const char *const twice[] = {"q://", "q://"};
	struct store *st = fx_open(fx, 0);
	char namebuf[64];
	size_t len = 99;

	if (st == NULL)
		return;
	/* The empty scope matches every path, with length 0. */
	CHECK_STATUS(put1(st, "e", "openai", "", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "anything", &len), "e");
	CHECK_STATUS(len, 0);
	CHECK_STR(RESOLVE(st, "openai", "", &len), "e");
	CHECK_STR(resolve_name(st, "openai", NULL, 0, &len, namebuf, sizeof(namebuf)), "e");
	CHECK_STATUS(put1(st, "f", "openai", "x", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "xyz", &len), "f");
	CHECK_STATUS(len, 1);
	CHECK_STR(RESOLVE(st, "openai", "abc", &len), "e");
	/* A secret with several scopes matches by its longest matching entry. */
	CHECK_STATUS(
	    store_put(st, mk("m", "ollama", multi, 2, VALUE_A), STORE_CONFLICT_ERROR, NULL),
	    STORE_OK);
	CHECK_STATUS(
	    put1(st, "n", "ollama", "a://deep/", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STR(RESOLVE(st, "ollama", "a://deep/path/z", &len), "m");
	CHECK_STATUS(len, strlen("a://deep/path/"));
	CHECK_STR(RESOLVE(st, "ollama", "a://deep/other", &len), "n");
	CHECK_STATUS(len, strlen("a://deep/"));
	CHECK_STR(RESOLVE(st, "ollama", "a://x", &len), "m");
	CHECK_STATUS(len, strlen("a://"));
	/* The same scope twice in one secret, then removed. */
	CHECK_STATUS(
	    store_put(st, mk("t", "ollama", twice, 2, VALUE_A), STORE_CONFLICT_ERROR, NULL),
	    STORE_OK);
	CHECK_STR(RESOLVE(st, "ollama", "q://1", &len), "t");
	CHECK_STATUS(store_remove(st, "t"), STORE_OK);
	CHECK_STR(RESOLVE(st, "ollama", "q://1", &len), "");
	CHECK_STATUS(store_remove(st, "m"), STORE_OK);
	CHECK_STR(RESOLVE(st, "ollama", "a://deep/path/z", &len), "n");
	CHECK_STR(RESOLVE(st, "ollama", "a://x", &len), "");
	store_close(st);
}

static void
test_resolve_follows_changes(struct fixture *fx)
{
	static const char *const members[] = {"k5", "k3", "k9", "k1"};
	struct store *st = fx_open(fx, 0);
	char namebuf[64];
	size_t len;

	if (st == NULL)
		return;
	for (size_t i = 0; i < 4; i++) {
		CHECK_STATUS(
		    put1(st, members[i], "openai", "p://", VALUE_A, STORE_CONFLICT_ERROR, NULL),
		    STORE_OK);
	}
	CHECK_STATUS(put1(st, "root", "openai", "", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "p://a", &len), "k1");
	CHECK_STATUS(store_remove(st, "k1"), STORE_OK); /* the bucket's min */
	CHECK_STR(RESOLVE(st, "openai", "p://a", &len), "k3");
	CHECK_STATUS(store_remove(st, "k9"), STORE_OK); /* not the min */
	CHECK_STR(RESOLVE(st, "openai", "p://a", &len), "k3");
	/* Replacing the min with the same scope keeps it the min. */
	CHECK_STATUS(
	    put1(st, "k3", "openai", "p://", VALUE_B, STORE_CONFLICT_REPLACE, NULL), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "p://a", &len), "k3");
	/* Replacing it with another scope moves it. */
	CHECK_STATUS(
	    put1(st, "k3", "openai", "p://a/b", VALUE_B, STORE_CONFLICT_REPLACE, NULL), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "p://a", &len), "k5");
	CHECK_STR(RESOLVE(st, "openai", "p://a/b/c", &len), "k3");
	/* Replacing with another type takes it out of this type's index. */
	CHECK_STATUS(
	    put1(st, "k3", "ollama", "p://a/b", VALUE_B, STORE_CONFLICT_REPLACE, NULL), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "p://a/b/c", &len), "k5");
	CHECK_STR(RESOLVE(st, "ollama", "p://a/b/c", &len), "k3");
	CHECK_STATUS(store_remove(st, "k5"), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "p://a/b/c", &len), "root");
	CHECK_STATUS(len, 0);
	CHECK_STATUS(store_remove(st, "root"), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "p://a/b/c", &len), "");
	/* The type's index was emptied and freed; it comes back. */
	CHECK_STATUS(
	    put1(st, "k7", "openai", "p://", VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STR(RESOLVE(st, "openai", "p://a/b/c", &len), "k7");
	store_close(st);
}

static void
test_max_secrets(struct fixture *fx)
{
	struct store *st = fx_open(fx, 3);
	bool created;

	if (st == NULL)
		return;
	CHECK_STATUS(put1(st, "a", "openai", NULL, VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(put1(st, "b", "openai", NULL, VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(put1(st, "c", "openai", NULL, VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(
	    put1(st, "d", "openai", NULL, VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_FULL);
	CHECK_STATUS(
	    put1(st, "d", "openai", NULL, VALUE_A, STORE_CONFLICT_REPLACE, NULL), STORE_FULL);
	CHECK(!store_contains(st, "d"));
	/* Replacing or ignoring an existing name is fine at the limit. */
	CHECK_STATUS(
	    put1(st, "b", "ollama", "x", VALUE_B, STORE_CONFLICT_REPLACE, &created), STORE_OK);
	CHECK(created);
	CHECK_STATUS(
	    put1(st, "c", "openai", NULL, VALUE_B, STORE_CONFLICT_IGNORE, &created), STORE_OK);
	CHECK(!created);
	CHECK_STATUS(
	    put1(st, "c", "openai", NULL, VALUE_B, STORE_CONFLICT_ERROR, NULL), STORE_EXISTS);
	CHECK_STATUS(store_count(st), 3);
	CHECK_STATUS(store_remove(st, "a"), STORE_OK);
	CHECK_STATUS(put1(st, "d", "openai", NULL, VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(store_count(st), 3);
	store_close(st);
}

static void
test_values_byte_for_byte(struct fixture *fx)
{
	struct store_field fields[] = {
	    {.key = "z_last", .value = (const uint8_t *)VALUE_A, .value_len = 3},
	    {.key = "api_key", .value = VALUE_BINARY, .value_len = sizeof(VALUE_BINARY)},
	    {.key = "empty", .value = NULL, .value_len = 0},
	    {.key = "b\xc3\xa9", .value = (const uint8_t *)"\xe2\x82\xac", .value_len = 3},
	};
	static const char *const scope[] = {"openai://\xc3\xa9/", ""};
	const char *name = "n\xc3\xa4me \xe2\x82\xac";
	struct store *st = fx_open(fx, 0);
	struct store_secret *s = NULL;

	if (st == NULL)
		return;
	CHECK_STATUS(store_secret_new(name, "openai", scope, 2, fields, 4, &s), STORE_OK);
	CHECK_STATUS(store_put(st, s, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	s = NULL;
	CHECK_STATUS(store_get(st, name, &s), STORE_OK);
	if (s != NULL) {
		CHECK_STR(s->name, name);
		CHECK_STATUS(s->n_fields, 4);
		/* Sorted by key bytes: "api_key" < "b\xc3\xa9" < "empty" < "z_last". */
		CHECK_STR(s->fields[0].key, "api_key");
		CHECK_STR(s->fields[1].key, "b\xc3\xa9");
		CHECK_STR(s->fields[2].key, "empty");
		CHECK_STR(s->fields[3].key, "z_last");
		CHECK(value_eq(s, "api_key", VALUE_BINARY, sizeof(VALUE_BINARY)));
		CHECK(value_eq(s, "empty", "", 0));
		CHECK(value_eq(s, "z_last", VALUE_A, 3));
		CHECK(value_eq(s, "b\xc3\xa9", "\xe2\x82\xac", 3));
		CHECK_STATUS(s->n_scope, 2);
		CHECK_STR(s->scope[0], "openai://\xc3\xa9/");
		CHECK_STR(s->scope[1], "");
	}
	store_secret_free(s);
	store_close(st);
}

static void
test_secret_dup_free(struct fixture *fx)
{
	static const char *const scope[] = {"a://", "b://"};
	struct store_field fields[] = {
	    {.key = "k2", .value = (const uint8_t *)VALUE_A, .value_len = strlen(VALUE_A)},
	    {.key = "k1", .value = VALUE_BINARY, .value_len = sizeof(VALUE_BINARY)},
	};
	struct store_secret *s = NULL;
	struct store_secret *d = NULL;

	(void)fx;
	CHECK_STATUS(store_secret_new(NULL, "t", NULL, 0, NULL, 0, &s), STORE_INVALID);
	CHECK_STATUS(store_secret_new("n", NULL, NULL, 0, NULL, 0, &s), STORE_INVALID);
	CHECK(s == NULL);
	CHECK_STATUS(store_secret_new("n", "t", scope, 2, fields, 2, &s), STORE_OK);
	if (s == NULL)
		return;
	CHECK_STR(s->fields[0].key, "k1");
	CHECK_STATUS(store_secret_dup(s, &d), STORE_OK);
	if (d != NULL) {
		const char *lo = (const char *)d;
		const char *hi = lo + d->size;

		CHECK(d->size == s->size);
		/* Every pointer of the copy points into the copy. */
		CHECK(d->name >= lo && d->name < hi && d->type >= lo && d->type < hi);
		CHECK((const char *)d->scope >= lo && (const char *)d->fields >= lo);
		for (size_t i = 0; i < d->n_scope; i++)
			CHECK(d->scope[i] >= lo && d->scope[i] < hi);
		for (size_t i = 0; i < d->n_fields; i++) {
			CHECK(d->fields[i].key >= lo && d->fields[i].key < hi);
			CHECK((const char *)d->fields[i].value >= lo &&
			      (const char *)d->fields[i].value < hi);
		}
	}
	store_secret_free(s);
	if (d != NULL) {
		CHECK_STR(d->name, "n");
		CHECK_STR(d->type, "t");
		CHECK_STR(d->scope[1], "b://");
		CHECK(value_eq(d, "k1", VALUE_BINARY, sizeof(VALUE_BINARY)));
		CHECK(value_eq(d, "k2", VALUE_A, strlen(VALUE_A)));
	}
	store_secret_free(d);
	store_secret_free(NULL);
	store_secret_array_free(NULL, 0);
	/* No scope, no fields. */
	CHECK_STATUS(store_secret_new("bare", "t", NULL, 0, NULL, 0, &s), STORE_OK);
	CHECK_STATUS(store_secret_dup(s, &d), STORE_OK);
	CHECK(d != NULL && d->n_scope == 0 && d->n_fields == 0 && strcmp(d->name, "bare") == 0);
	store_secret_free(s);
	store_secret_free(d);
}

/* A randomised comparison of resolve and list with a brute-force model. */
#define MODEL_NAMES 24
struct model_secret {
	bool present;
	int type;
	size_t n_scope;
	char scope[3][6];
};

static uint32_t
lcg(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

static void
random_word(uint32_t *rng, char *buf, size_t max)
{
	static const char alphabet[] = "ab/";
	size_t len = lcg(rng) % (max + 1);

	for (size_t i = 0; i < len; i++)
		buf[i] = alphabet[lcg(rng) % 3];
	buf[len] = '\0';
}

static void
test_resolve_model(struct fixture *fx)
{
	static const char *const types[] = {"openai", "ollama"};
	struct model_secret model[MODEL_NAMES];
	struct store *st = fx_open(fx, 0);
	uint32_t rng = 12345;
	int ops = fx->persistent ? 300 : 3000;
	int mismatches = 0;

	if (st == NULL)
		return;
	memset(model, 0, sizeof(model));
	for (int op = 0; op < ops; op++) {
		char name[16];
		int i = (int)(lcg(&rng) % MODEL_NAMES);
		uint32_t what = lcg(&rng) % 10;

		snprintf(name, sizeof(name), "n%02d", i);
		if (what < 4) {
			struct model_secret *m = &model[i];
			const char *scope[3];

			m->type = (int)(lcg(&rng) % 2);
			m->n_scope = lcg(&rng) % 4;
			for (size_t j = 0; j < m->n_scope; j++) {
				random_word(&rng, m->scope[j], 4);
				scope[j] = m->scope[j];
			}
			m->present = true;
			if (store_put(st, mk(name, types[m->type], scope, m->n_scope, VALUE_A),
			        STORE_CONFLICT_REPLACE, NULL) != STORE_OK)
				mismatches++;
		} else if (what < 6) {
			store_status want = model[i].present ? STORE_OK : STORE_NOT_FOUND;

			model[i].present = false;
			if (store_remove(st, name) != want)
				mismatches++;
		} else {
			char path[8];
			int type = (int)(lcg(&rng) % 2);
			int best = -1;
			size_t best_len = 0;
			struct store_secret *s = NULL;
			size_t len = 0;
			store_status rc;

			random_word(&rng, path, 6);
			for (int k = 0; k < MODEL_NAMES; k++) {
				if (!model[k].present || model[k].type != type)
					continue;
				for (size_t j = 0; j < model[k].n_scope; j++) {
					size_t sl = strlen(model[k].scope[j]);

					if (strncmp(model[k].scope[j], path, sl) != 0 ||
					    sl > strlen(path))
						continue;
					/* k ascends, so on equal length the first k is smallest. */
					if (best < 0 || sl > best_len) {
						best = k;
						best_len = sl;
					}
				}
			}
			rc = store_resolve(st, types[type], path, strlen(path), &s, &len);
			if (best < 0) {
				if (rc != STORE_NOT_FOUND)
					mismatches++;
			} else {
				char want[16];

				snprintf(want, sizeof(want), "n%02d", best);
				if (rc != STORE_OK || strcmp(s->name, want) != 0 || len != best_len)
					mismatches++;
			}
			store_secret_free(s);
		}
	}
	CHECK_STATUS(mismatches, 0);
	{
		struct store_secret **items = NULL;
		size_t n = 0;
		size_t want = 0;
		size_t k = 0;

		CHECK_STATUS(store_list_copy(st, NULL, &items, &n), STORE_OK);
		for (int i = 0; i < MODEL_NAMES; i++) {
			char name[16];

			if (!model[i].present)
				continue;
			want++;
			snprintf(name, sizeof(name), "n%02d", i);
			if (k < n && strcmp(items[k]->name, name) == 0)
				k++;
		}
		CHECK_STATUS(n, want);
		CHECK_STATUS(k, want);
		store_secret_array_free(items, n);
	}
	store_close(st);
}

/* Concurrency: 8 threads on their own and on shared names. */
#define WORKERS 8
#define OWN_NAMES 8

struct worker {
	struct store *st;
	int id;
	int iters;
	int errors;
	bool present[OWN_NAMES];
};

static bool
visit_ordered(const struct store_secret *s, void *arg)
{
	char *prev = arg;

	if (prev[0] != '\0' && strcmp(prev, s->name) >= 0)
		prev[63] = 'X'; /* marks an order violation */
	snprintf(prev, 63, "%s", s->name);
	return true;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	static const enum store_conflict modes[] = {
	    STORE_CONFLICT_ERROR, STORE_CONFLICT_REPLACE, STORE_CONFLICT_IGNORE};

	for (int i = 0; i < w->iters; i++) {
		char own[32];
		char shared[32];
		char scope[32];
		struct store_secret *s = NULL;
		size_t len;
		store_status rc;
		int k = i % OWN_NAMES;

		snprintf(own, sizeof(own), "w%d-%d", w->id, k);
		snprintf(shared, sizeof(shared), "shared-%d", i % 4);
		snprintf(scope, sizeof(scope), "openai://w%d/", w->id);
		if (put1(w->st, own, "openai", scope, VALUE_A, STORE_CONFLICT_REPLACE, NULL) !=
		    STORE_OK)
			w->errors++;
		w->present[k] = true;
		if (store_get(w->st, own, &s) != STORE_OK || strcmp(s->name, own) != 0)
			w->errors++;
		store_secret_free(s);
		s = NULL;
		if (i % 3 == 0) {
			if (store_remove(w->st, own) != STORE_OK)
				w->errors++;
			w->present[k] = false;
		}
		rc = put1(w->st, shared, i % 2 ? "openai" : "ollama", "openai://", VALUE_B,
		    modes[i % 3], NULL);
		if (rc != STORE_OK && !(rc == STORE_EXISTS && i % 3 == 0))
			w->errors++;
		if (i % 5 == 0) {
			rc = store_remove(w->st, shared);
			if (rc != STORE_OK && rc != STORE_NOT_FOUND)
				w->errors++;
		}
		rc = store_get(w->st, shared, &s);
		if (rc == STORE_OK ? strcmp(s->name, shared) != 0 : rc != STORE_NOT_FOUND)
			w->errors++;
		store_secret_free(s);
		s = NULL;
		rc = store_resolve(w->st, "openai", "openai://w0/x", 13, &s, &len);
		if (rc == STORE_OK ? (len != 9 && len != 12) : rc != STORE_NOT_FOUND)
			w->errors++;
		store_secret_free(s);
		s = NULL;
		if (i % 7 == 0) {
			char prev[64] = "";

			if (store_list(w->st, NULL, visit_ordered, prev) != STORE_OK ||
			    prev[63] == 'X')
				w->errors++;
		}
		(void)store_contains(w->st, shared);
		(void)store_count(w->st);
	}
	return NULL;
}

static bool
visit_count(const struct store_secret *s, void *arg)
{
	(void)s;
	(*(size_t *)arg)++;
	return true;
}

static void
test_concurrency(struct fixture *fx)
{
	struct worker w[WORKERS];
	pthread_t th[WORKERS];
	struct store *st = fx_open(fx, 0);
	size_t listed = 0;
	size_t own_present = 0;
	size_t shared_present = 0;

	if (st == NULL)
		return;
	for (int i = 0; i < WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].st = st;
		w[i].id = i;
		w[i].iters = fx->persistent ? 40 : 400;
		CHECK_STATUS(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++) {
		CHECK_STATUS(pthread_join(th[i], NULL), 0);
		CHECK_STATUS(w[i].errors, 0);
		for (int k = 0; k < OWN_NAMES; k++) {
			char own[32];

			snprintf(own, sizeof(own), "w%d-%d", i, k);
			CHECK(store_contains(st, own) == w[i].present[k]);
			own_present += w[i].present[k];
		}
	}
	for (int i = 0; i < 4; i++) {
		char shared[32];

		snprintf(shared, sizeof(shared), "shared-%d", i);
		shared_present += store_contains(st, shared);
	}
	CHECK_STATUS(store_list(st, NULL, visit_count, &listed), STORE_OK);
	CHECK_STATUS(listed, own_present + shared_present);
	CHECK_STATUS(store_count(st), listed);
	store_close(st);
	if (fx->persistent) {
		/* What was acknowledged is on disk. */
		st = fx_open(fx, 0);
		if (st == NULL)
			return;
		CHECK_STATUS(store_count(st), listed);
		for (int i = 0; i < WORKERS; i++) {
			for (int k = 0; k < OWN_NAMES; k++) {
				char own[32];

				snprintf(own, sizeof(own), "w%d-%d", i, k);
				CHECK(store_contains(st, own) == w[i].present[k]);
			}
		}
		store_close(st);
	}
}

/* store_config.on_change: once per change that became visible (put that changed something,
 * remove), with the name; never for a refused or ignored put, a missing name, or a load. */
struct change_log {
	char names[16][16];
	int n;
};

static void
record_change(void *arg, const char *name)
{
	struct change_log *cl = arg;

	if (cl->n < 16) {
		snprintf(cl->names[cl->n], sizeof(cl->names[0]), "%s", name);
		cl->n++;
	}
}

static void
test_on_change(struct fixture *fx)
{
	struct change_log cl = {0};
	struct store_etcd_config ec = {
	    .endpoints = etcd_cluster != NULL ? etcd_cluster->endpoints : NULL,
	    .prefix = fx->prefix,
	};
	struct store_config cfg = {
	    .path = fx->path,
	    .key = fx->key,
	    .key_len = STORE_KEY_LEN,
	    .on_change = record_change,
	    .on_change_arg = &cl,
	    .etcd = &ec,
	};
	struct store *st = NULL;

	CHECK_STATUS(store_open(fx->ops, &cfg, &st), STORE_OK);
	if (st == NULL)
		return;
	CHECK_STATUS(put1(st, "a", "openai", NULL, VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(
	    put1(st, "a", "openai", NULL, VALUE_B, STORE_CONFLICT_ERROR, NULL), STORE_EXISTS);
	CHECK_STATUS(put1(st, "a", "openai", NULL, VALUE_B, STORE_CONFLICT_IGNORE, NULL), STORE_OK);
	CHECK_STATUS(
	    put1(st, "a", "openai", NULL, VALUE_B, STORE_CONFLICT_REPLACE, NULL), STORE_OK);
	CHECK_STATUS(store_remove(st, "a"), STORE_OK);
	CHECK_STATUS(store_remove(st, "a"), STORE_NOT_FOUND);
	CHECK_STATUS(put1(st, "b", "openai", NULL, VALUE_A, STORE_CONFLICT_ERROR, NULL), STORE_OK);
	CHECK_STATUS(cl.n, 4);
	CHECK(strcmp(cl.names[0], "a") == 0 && strcmp(cl.names[1], "a") == 0 &&
	      strcmp(cl.names[2], "a") == 0 && strcmp(cl.names[3], "b") == 0);
	store_close(st);
	/* Reopening (loading the database) reports nothing: no change was made. */
	if (fx->persistent) {
		cl.n = 0;
		CHECK_STATUS(store_open(fx->ops, &cfg, &st), STORE_OK);
		CHECK_STATUS(cl.n, 0);
		store_close(st);
	}
}

typedef void (*test_fn)(struct fixture *fx);

struct test_case {
	const char *name;
	test_fn fn;
};

static const struct test_case contract_tests[] = {
    {"put_get_remove", test_put_get_remove},
    {"conflict_modes", test_conflict_modes},
    {"list", test_list},
    {"resolve", test_resolve},
    {"resolve_empty_and_multi", test_resolve_empty_and_multi},
    {"resolve_follows_changes", test_resolve_follows_changes},
    {"max_secrets", test_max_secrets},
    {"values_byte_for_byte", test_values_byte_for_byte},
    {"secret_dup_free", test_secret_dup_free},
    {"resolve_model", test_resolve_model},
    {"concurrency", test_concurrency},
    {"on_change", test_on_change},
};

/* --- sqlcipher only ------------------------------------------------------------------- */

/* The whole file at path into *bufp (caller frees); false when it cannot be read. */
static bool
slurp(const char *path, uint8_t **bufp, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0;
	size_t cap = 0;

	*bufp = NULL;
	*lenp = 0;
	if (f == NULL)
		return false;
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *nb = realloc(buf, cap == 0 ? 65536 : cap * 2);

			if (nb == NULL) {
				free(buf);
				(void)fclose(f);
				return false;
			}
			buf = nb;
			cap = cap == 0 ? 65536 : cap * 2;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	(void)fclose(f);
	*bufp = buf;
	*lenp = len;
	return true;
}

/* Whether the files at a and b both exist with equal bytes, or both do not exist. */
static bool
same_bytes(const char *path, const uint8_t *before, size_t before_len, bool existed)
{
	uint8_t *now = NULL;
	size_t now_len = 0;
	bool exists = slurp(path, &now, &now_len);
	bool same = exists == existed &&
	            (!exists || (now_len == before_len && memcmp(now, before, now_len) == 0));

	free(now);
	return same;
}

static size_t
count_hits(const char *path, const char *needle)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	size_t hits = 0;
	size_t nlen = strlen(needle);

	if (!slurp(path, &buf, &len))
		return 0;
	for (size_t i = 0; i + nlen <= len; i++) {
		if (memcmp(buf + i, needle, nlen) == 0)
			hits++;
	}
	free(buf);
	return hits;
}

static void
path_with(const struct fixture *fx, const char *suffix, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "%s%s", fx->path, suffix);
}

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
	static const char hex[] = "0123456789abcdef";
	char pragma[128];
	size_t n = 0;
	sqlite3 *db = NULL;
	int rc;

	n += (size_t)snprintf(pragma, sizeof(pragma), "PRAGMA key = \"x'");
	for (size_t i = 0; i < STORE_KEY_LEN; i++) {
		pragma[n++] = hex[fx->key[i] >> 4];
		pragma[n++] = hex[fx->key[i] & 0xf];
	}
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

/* --- row decoder and key file (no store needed) -------------------------------------- */

static store_status
decode_copy(const uint8_t *body, size_t len)
{
	/* An exact-size heap copy, so a read past len is caught by ASan and valgrind. */
	uint8_t *copy = malloc(len > 0 ? len : 1);
	struct store_secret *s = NULL;
	store_status rc;

	if (copy == NULL)
		return STORE_NO_MEMORY;
	if (len > 0)
		memcpy(copy, body, len);
	rc = store_row_decode(copy, len, "n", "t", &s);
	store_secret_free(s);
	free(copy);
	return rc;
}

static void
test_row_decoder(void)
{
	static const char *const scope[] = {"a://", ""};
	struct store_field fields[] = {
	    {.key = "k", .value = VALUE_BINARY, .value_len = sizeof(VALUE_BINARY)},
	    {.key = "e", .value = NULL, .value_len = 0},
	};
	static const uint8_t huge_count[] = {1, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
	static const uint8_t nul_inside[] = {1, 1, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'b', 0, 0, 0, 0};
	static const uint8_t no_nul[] = {1, 1, 0, 0, 0, 2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0};
	static const uint8_t empty_ok[] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
	struct store_secret *s = NULL;
	struct store_secret *back = NULL;
	uint8_t *body = NULL;
	size_t len = 0;
	uint32_t rng = 7;
	int bad = 0;

	CHECK_STATUS(store_secret_new("n", "t", scope, 2, fields, 2, &s), STORE_OK);
	if (s == NULL)
		return;
	CHECK_STATUS(store_row_encode(s, &body, &len), STORE_OK);
	if (body == NULL)
		goto out;
	CHECK_STATUS(store_row_decode(body, len, "n", "t", &back), STORE_OK);
	if (back != NULL) {
		CHECK_STATUS(back->size, s->size);
		CHECK_STATUS(back->n_scope, 2);
		CHECK_STR(back->scope[1], "");
		CHECK(value_eq(back, "k", VALUE_BINARY, sizeof(VALUE_BINARY)));
		CHECK(value_eq(back, "e", "", 0));
	}
	store_secret_free(back);
	/* Every truncation is refused. */
	for (size_t i = 0; i < len; i++) {
		if (decode_copy(body, i) != STORE_CORRUPT)
			bad++;
	}
	CHECK_STATUS(bad, 0);
	/* A trailing byte, a bad version. */
	{
		uint8_t *longer = malloc(len + 1);

		if (longer != NULL) {
			memcpy(longer, body, len);
			longer[len] = 0;
			CHECK_STATUS(decode_copy(longer, len + 1), STORE_CORRUPT);
			longer[0] = 2;
			CHECK_STATUS(decode_copy(longer, len), STORE_CORRUPT);
			free(longer);
		}
	}
	/* Every single-byte change either decodes or is refused, never worse. */
	for (size_t i = 0; i < len; i++) {
		for (int b = 0; b < 8; b++) {
			store_status rc;

			body[i] ^= (uint8_t)(1u << b);
			rc = decode_copy(body, len);
			body[i] ^= (uint8_t)(1u << b);
			if (rc != STORE_OK && rc != STORE_CORRUPT)
				bad++;
		}
	}
	CHECK_STATUS(bad, 0);
	/* Random garbage. */
	for (int round = 0; round < 2000; round++) {
		uint8_t junk[64];
		size_t n = lcg(&rng) % sizeof(junk);
		store_status rc;

		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)lcg(&rng);
		if (n > 0 && round % 2 == 0)
			junk[0] = STORE_ROW_VERSION;
		rc = decode_copy(junk, n);
		if (rc != STORE_OK && rc != STORE_CORRUPT)
			bad++;
	}
	CHECK_STATUS(bad, 0);
	CHECK_STATUS(decode_copy(huge_count, sizeof(huge_count)), STORE_CORRUPT);
	CHECK_STATUS(decode_copy(nul_inside, sizeof(nul_inside)), STORE_CORRUPT);
	CHECK_STATUS(decode_copy(no_nul, sizeof(no_nul)), STORE_CORRUPT);
	CHECK_STATUS(decode_copy(empty_ok, sizeof(empty_ok)), STORE_OK);
	CHECK_STATUS(store_row_decode(empty_ok, sizeof(empty_ok), NULL, "t", &back), STORE_CORRUPT);
	CHECK_STATUS(store_row_decode(NULL, 0, "n", "t", &back), STORE_CORRUPT);
out:
	store_row_free(body, len);
	store_secret_free(s);
}

static bool
write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, data, len) == (ssize_t)len;
	ok = fchmod(fd, mode) == 0 && ok;
	return close(fd) == 0 && ok;
}

static size_t
dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	(void)closedir(d);
	return n;
}

static void
test_keyfile(void)
{
	static const char lower[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	static const char upper[] =
	    "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
	struct fixture fx;
	char path[160];
	char link_path[160];
	uint8_t key[STORE_KEY_LEN];
	uint8_t again[STORE_KEY_LEN];
	bool created = false;
	struct stat sb;

	if (!fx_setup(&fx, &store_memory_ops)) {
		CHECK(false);
		return;
	}
	snprintf(path, sizeof(path), "%s/key", fx.dir);
	CHECK_STATUS(store_keyfile_load(path, false, key, &created), STORE_NOT_FOUND);
	CHECK_STATUS(store_keyfile_load(path, true, key, &created), STORE_OK);
	CHECK(created);
	CHECK_STATUS(stat(path, &sb), 0);
	CHECK_STATUS(sb.st_mode & 0777, 0600);
	CHECK_STATUS(sb.st_size, 65);
	CHECK_STATUS(dir_entries(fx.dir), 1); /* no temporary file left */
	{
		uint8_t *buf = NULL;
		size_t len = 0;
		bool hex_ok = slurp(path, &buf, &len) && len == 65 && buf[64] == '\n';

		for (size_t i = 0; hex_ok && i < 64; i++)
			hex_ok =
			    (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f');
		CHECK(hex_ok);
		free(buf);
	}
	CHECK_STATUS(store_keyfile_load(path, true, again, &created), STORE_OK);
	CHECK(!created);
	CHECK(memcmp(key, again, STORE_KEY_LEN) == 0);
	/* Refused when group or others may read it. */
	CHECK_STATUS(chmod(path, 0640), 0);
	CHECK_STATUS(store_keyfile_load(path, false, again, NULL), STORE_PERMISSION);
	CHECK_STATUS(chmod(path, 0604), 0);
	CHECK_STATUS(store_keyfile_load(path, true, again, NULL), STORE_PERMISSION);
	/* Content: exact, either case, optional newline. */
	CHECK(write_file(path, lower, strlen(lower), 0600));
	CHECK_STATUS(store_keyfile_load(path, false, key, NULL), STORE_OK);
	CHECK(key[0] == 0 && key[10] == 10 && key[31] == 31);
	CHECK(write_file(path, upper, strlen(upper), 0600));
	CHECK_STATUS(store_keyfile_load(path, false, again, NULL), STORE_OK);
	CHECK(memcmp(key, again, STORE_KEY_LEN) == 0);
	CHECK(write_file(path, lower, 63, 0600));
	CHECK_STATUS(store_keyfile_load(path, false, key, NULL), STORE_INVALID);
	CHECK(write_file(
	    path, "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 65, 0600));
	CHECK_STATUS(store_keyfile_load(path, false, key, NULL), STORE_INVALID);
	CHECK(write_file(path,
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\n", 66, 0600));
	CHECK_STATUS(store_keyfile_load(path, true, key, NULL), STORE_INVALID);
	CHECK(write_file(path, "", 0, 0600));
	CHECK_STATUS(store_keyfile_load(path, true, key, NULL), STORE_INVALID);
	/* A symbolic link is not followed. */
	CHECK(write_file(path, lower, strlen(lower), 0600));
	snprintf(link_path, sizeof(link_path), "%s/link", fx.dir);
	CHECK_STATUS(symlink(path, link_path), 0);
	CHECK_STATUS(store_keyfile_load(link_path, false, key, NULL), STORE_PERMISSION);
	CHECK_STATUS(store_keyfile_load(NULL, false, key, NULL), STORE_INVALID);
	fx_teardown(&fx);
}

#include "test_store_etcd.inc"

int
main(void)
{
	static const struct store_ops *const backends[] = {
	    &store_memory_ops, &store_sqlcipher_ops, &store_etcd_ops};
	struct etcd_proc ep;
	char etcd_dir[64] = "/tmp/test-store-etcd-XXXXXX";
	bool etcd_dir_made = false;
	int ran = 0;

	/* The etcd backend's run of the contract needs a real etcd: one member here. */
	if (etcd_available() && (etcd_dir_made = mkdtemp(etcd_dir) != NULL)) {
		if (etcd_start(&ep, etcd_dir, 1))
			etcd_cluster = &ep;
		else
			CHECK(false); /* etcd is installed but would not start */
	} else {
		fprintf(stderr, "SKIP etcd backend: no etcd binary (install etcd-server)\n");
	}
	for (size_t b = 0; b < 3; b++) {
		if (backends[b] == &store_etcd_ops && etcd_cluster == NULL)
			continue;
		for (size_t i = 0; i < sizeof(contract_tests) / sizeof(contract_tests[0]); i++) {
			struct fixture fx;
			int before = check_failures_;

			if (!fx_setup(&fx, backends[b])) {
				CHECK(false);
				continue;
			}
			contract_tests[i].fn(&fx);
			fx_teardown(&fx);
			ran++;
			if (check_failures_ != before)
				fprintf(stderr, "FAIL %s/%s\n", backends[b]->name,
				    contract_tests[i].name);
		}
	}
	for (size_t i = 0; i < sizeof(sqlcipher_tests) / sizeof(sqlcipher_tests[0]); i++) {
		struct fixture fx;
		int before = check_failures_;

		if (!fx_setup(&fx, &store_sqlcipher_ops)) {
			CHECK(false);
			continue;
		}
		sqlcipher_tests[i].fn(&fx);
		fx_teardown(&fx);
		ran++;
		if (check_failures_ != before)
			fprintf(stderr, "FAIL sqlcipher/%s\n", sqlcipher_tests[i].name);
	}
	test_row_decoder();
	test_keyfile();
	test_seal();
	ran += 3;
	if (etcd_cluster != NULL) {
		ran += run_etcd_tests();
		etcd_stop(etcd_cluster);
	}
	if (etcd_dir_made)
		remove_tree(etcd_dir);
	fprintf(stderr, "%d test cases\n", ran);
	CHECK_STATUS(store_status_str(STORE_INVALID) != NULL, 1);
	return check_report();
}
