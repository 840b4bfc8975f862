/*
 * store_fixture.h: what the store tests share: a fixture (a fresh 0700 temporary directory,
 * a database path and key, an etcd prefix of its own), secrets made from named test values,
 * file helpers, and the loop that runs a table of cases. Every function is static inline so
 * each test program compiles only what it uses, and check.h's counters (one set per
 * program) count the CHECKs made here too.
 *
 * Secret values never appear in a CHECK expression or an output line: values are named
 * constants compared through helpers.
 */
#ifndef SECRETD_TESTS_STORE_FIXTURE_H
#define SECRETD_TESTS_STORE_FIXTURE_H

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

/* Test values: compared through value_eq only, never printed. (unused: each program
 * uses some of them.) */
static const char VALUE_A[] __attribute__((unused)) = "sk-test-value-a";
static const char VALUE_B[] __attribute__((unused)) = "sk-test-value-b";
static const char CANARY[] __attribute__((unused)) = "canary-7f3a9c1e-d0d6-4b55-plaintext";
static const uint8_t VALUE_BINARY[]
    __attribute__((unused)) = {'a', 0x00, 'b', 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff, 0x01};

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
static struct etcd_proc *etcd_cluster __attribute__((unused));
static int etcd_cases __attribute__((unused));

static inline void
key_fill(uint8_t *key, uint8_t seed)
{
	for (size_t i = 0; i < STORE_KEY_LEN; i++)
		key[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

static inline bool
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

static inline void
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

static inline store_status
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

static inline struct store *
fx_open(struct fixture *fx, size_t max)
{
	struct store *st = NULL;

	CHECK_STATUS(fx_open_key(fx, fx->key, max, &st), STORE_OK);
	return st;
}

/* A secret with the given scopes and one field api_key = value; NULL on failure. No
 * CHECK inside: the worker threads call it, and check.h's counters are not thread-safe. */
static inline struct store_secret *
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

static inline struct store_secret *
mk(const char *name, const char *type, const char *const *scope, size_t n_scope, const char *value)
{
	struct store_secret *s = mk_quiet(name, type, scope, n_scope, value);

	CHECK(s != NULL);
	return s;
}

/* Put a secret with at most one scope (NULL: none). */
static inline store_status
put1(struct store *st, const char *name, const char *type, const char *scope, const char *value,
    enum store_conflict mode, bool *createdp)
{
	struct store_secret *s = mk_quiet(name, type, &scope, scope != NULL ? 1 : 0, value);

	if (s == NULL)
		return STORE_NO_MEMORY;
	return store_put(st, s, mode, createdp);
}

static inline const struct store_field *
field_of(const struct store_secret *s, const char *key)
{
	for (size_t i = 0; i < s->n_fields; i++) {
		if (strcmp(s->fields[i].key, key) == 0)
			return &s->fields[i];
	}
	return NULL;
}

static inline bool
value_eq(const struct store_secret *s, const char *key, const void *want, size_t want_len)
{
	const struct store_field *f = s != NULL ? field_of(s, key) : NULL;

	return f != NULL && f->value_len == want_len && memcmp(f->value, want, want_len) == 0 &&
	       f->value[want_len] == 0;
}

/* The name resolve picks, "" when none; match length in *lenp. */
static inline const char *
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

/* A small deterministic generator: runs repeat exactly. */
static inline uint32_t
lcg(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

typedef void (*test_fn)(struct fixture *fx);

struct test_case {
	const char *name;
	test_fn fn;
};

/* The whole file at path into *bufp (caller frees); false when it cannot be read. */
static inline bool
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
static inline bool
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

static inline size_t
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

static inline void
path_with(const struct fixture *fx, const char *suffix, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "%s%s", fx->path, suffix);
}

static inline bool
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

static inline size_t
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

/* Run each case of cases[0..n) on a fresh fixture over ops; prints "FAIL label/case" for
 * a case with a failed CHECK. Returns the number of cases run. */
static inline int
run_cases(const char *label, const struct store_ops *ops, const struct test_case *cases, size_t n)
{
	int ran = 0;

	for (size_t i = 0; i < n; i++) {
		struct fixture fx;
		int before = check_failures_;

		if (!fx_setup(&fx, ops)) {
			CHECK(false);
			continue;
		}
		cases[i].fn(&fx);
		fx_teardown(&fx);
		ran++;
		if (check_failures_ != before)
			fprintf(stderr, "FAIL %s/%s\n", label, cases[i].name);
	}
	return ran;
}

#endif
