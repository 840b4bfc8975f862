/*
 * test_concurrency.c: one secretd under many clients at once (SPEC section 2: every
 * operation atomic). Three client processes with eight threads each run a random mix of
 * every operation (Create in each conflict mode and storage, Drop in each storage with and
 * without IF EXISTS, Get, List redacted and not, Resolve, and the same through Execute
 * statements) on names each thread owns, checking every reply against the thread's model;
 * at the end the union of the models must agree with List and Get. Then N clients in
 * different processes race Create on one new name without OR REPLACE, released together:
 * exactly one wins and the rest get ALREADY_EXISTS, in both storages.
 *
 * Client processes are re-executed (/proc/self/exe), not forked: nng's threads do not
 * survive fork. Worker threads keep their own failure counts (check.h is not thread-safe).
 */
/* pipe2 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

#define PROCS 3
#define THREADS 8
#define NAMES 6
#define OPS_PER_THREAD 1500
#define TIMEOUT_MS 20000
#define RACE_PROCS 3
#define RACE_THREADS 4
#define RACE_ROUNDS 50

static struct server_proc srv;

static const char *const type_names[] = {"openai", "ollama", "azure_llm"};

/* What one (name, storage) holds in a thread's model. */
struct slot {
	bool present;
	int type; /* index into type_names */
	char value[48];
};

struct worker {
	secretd_client *c;
	int proc;
	int thread;
	uint64_t rng;
	struct slot slots[NAMES][2]; /* [name][0 memory, 1 sqlcipher] */
	long ops;
	long failures;
	int serial;
};

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void fail(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	w->failures++;
	va_start(ap, fmt);
	fprintf(stderr, "p%dt%d: ", w->proc, w->thread);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void
name_of(int proc, int thread, int k, char *buf, size_t len)
{
	(void)snprintf(buf, len, "p%dt%dn%d", proc, thread, k);
}

static void
scope_of(int proc, int thread, int k, char *buf, size_t len)
{
	(void)snprintf(buf, len, "scope://p%dt%d/%d/", proc, thread, k);
}

static secretd_storage
storage_of(int s)
{
	return s == 0 ? SECRETD_STORAGE_MEMORY : SECRETD_STORAGE_SQLCIPHER;
}

/*
 * The secret_string List shows for a slot: fields sorted by key, the type's secret
 * field redacted unless unredacted.
 */
static void
secret_string(const char *name, const char *scope, const struct slot *sl, bool unredacted,
    char *buf, size_t len)
{
	const char *v = unredacted ? sl->value : "redacted";
	int n = snprintf(buf, len, "name=%s;type=%s;provider=config;serializable=true;scope=%s;",
	    name, type_names[sl->type], scope);
	int m;

	if (n < 0 || (size_t)n >= len)
		return;
	/* The result is checked (a truncated string would fail the comparison anyway), which
	 * also keeps -Wformat-truncation quiet in release builds. */
	if (sl->type == 0)
		m = snprintf(buf + n, len - (size_t)n, "api_key=%s", v);
	else if (sl->type == 1)
		m = snprintf(buf + n, len - (size_t)n, "api_url=%s", v);
	else
		m = snprintf(buf + n, len - (size_t)n,
		    "api_key=%s;api_version=2024-06-01;resource_name=res-%s", v, name);
	if (m < 0 || (size_t)m >= len - (size_t)n)
		buf[0] = '\0';
}

/* Whether a Get/Resolve secret is what the slot holds. */
static bool
secret_matches(const secretd_secret *s, const char *name, const char *scope, int storage,
    const struct slot *sl)
{
	const char *key = sl->type == 1 ? "api_url" : "api_key";
	const secretd_field *f = secretd_secret_field(s, key);

	if (s == NULL || strcmp(s->name, name) != 0 || s->storage != storage_of(storage) ||
	    strcmp(s->type, type_names[sl->type]) != 0 || s->n_scope != 1 ||
	    strcmp(s->scope[0], scope) != 0 || f == NULL || strcmp(f->value, sl->value) != 0)
		return false;
	if (sl->type == 2) {
		const secretd_field *r = secretd_secret_field(s, "resource_name");
		char want[64];

		(void)snprintf(want, sizeof(want), "res-%s", name);
		return s->n_fields == 3 && r != NULL && strcmp(r->value, want) == 0;
	}
	return s->n_fields == 1;
}

/* ---- operations, each checked against the model ---- */

static void
op_create(struct worker *w, int k, const char *name, const char *scope)
{
	int s = (int)(rng_next(&w->rng) % 2);
	int type = (int)(rng_next(&w->rng) % 3);
	secretd_conflict mode = (secretd_conflict)(rng_next(&w->rng) % 3);
	struct slot *sl = &w->slots[k][s];
	char value[48], res[64];
	secretd_field f[3];
	const char *scopes[] = {scope};
	secretd_create_args a = {.name = name,
	    .type = type_names[type],
	    .fields = f,
	    .scope = scopes,
	    .n_scope = 1,
	    .persistent = s == 1,
	    .on_conflict = mode};
	secretd_create_result r;
	secretd_status st, want;

	(void)snprintf(value, sizeof(value), "v-%d-%d-%d", w->proc, w->thread, ++w->serial);
	(void)snprintf(res, sizeof(res), "res-%s", name);
	f[0] = (secretd_field){type == 1 ? "api_url" : "api_key", value, strlen(value)};
	f[1] = (secretd_field){"resource_name", res, strlen(res)};
	f[2] = (secretd_field){"api_version", "2024-06-01", 10};
	a.n_fields = type == 2 ? 3 : 1;
	st = secretd_create(w->c, &a, TIMEOUT_MS, &r, NULL);
	want = sl->present && mode == SECRETD_CONFLICT_ERROR ? SECRETD_ALREADY_EXISTS : SECRETD_OK;
	if (st != want) {
		fail(w, "create %s storage %d mode %d: %s, want %s", name, s, (int)mode,
		    secretd_status_str(st), secretd_status_str(want));
		return;
	}
	if (st != SECRETD_OK)
		return;
	if (r.created != !(sl->present && mode == SECRETD_CONFLICT_IGNORE) ||
	    strcmp(r.name, name) != 0 || r.storage != storage_of(s))
		fail(w, "create %s: result created=%d storage=%d", name, (int)r.created,
		    (int)r.storage);
	if (r.created) {
		sl->present = true;
		sl->type = type;
		(void)snprintf(sl->value, sizeof(sl->value), "%s", value);
	}
}

static void
op_drop(struct worker *w, int k, const char *name)
{
	int which = (int)(rng_next(&w->rng) % 3); /* 0 any, 1 memory, 2 sqlcipher */
	bool if_exists = rng_next(&w->rng) % 2;
	secretd_storage req = which == 0 ? SECRETD_STORAGE_ANY : storage_of(which - 1);
	int cand[2], n = 0;
	secretd_drop_result d;
	secretd_error e;
	secretd_status st;

	for (int s = 0; s < 2; s++)
		if (w->slots[k][s].present && (which == 0 || which - 1 == s))
			cand[n++] = s;
	st = secretd_drop(w->c, name, req, if_exists, TIMEOUT_MS, &d, &e);
	if (n == 2) {
		if (st != SECRETD_FAILED_PRECONDITION || strcmp(e.reason, "AMBIGUOUS") != 0)
			fail(w, "drop %s (both): %s", name, secretd_status_str(st));
		return;
	}
	if (n == 0) {
		if (st != (if_exists ? SECRETD_OK : SECRETD_NOT_FOUND) ||
		    (st == SECRETD_OK && d.dropped))
			fail(w, "drop %s (none, if_exists %d): %s", name, (int)if_exists,
			    secretd_status_str(st));
		return;
	}
	if (st != SECRETD_OK || !d.dropped || d.storage != storage_of(cand[0]))
		fail(w, "drop %s (storage %d): %s", name, cand[0], secretd_status_str(st));
	else
		w->slots[k][cand[0]].present = false;
}

static void
op_get(struct worker *w, int k, const char *name, const char *scope)
{
	int which = (int)(rng_next(&w->rng) % 3);
	secretd_storage req = which == 0 ? SECRETD_STORAGE_ANY : storage_of(which - 1);
	secretd_secret *s = NULL;
	secretd_status st;
	int cand[2], n = 0;

	for (int i = 0; i < 2; i++)
		if (w->slots[k][i].present && (which == 0 || which - 1 == i))
			cand[n++] = i;
	st = secretd_get(w->c, name, req, TIMEOUT_MS, &s, NULL);
	if (n == 2 && st != SECRETD_FAILED_PRECONDITION)
		fail(w, "get %s (both): %s", name, secretd_status_str(st));
	else if (n == 0 && st != SECRETD_NOT_FOUND)
		fail(w, "get %s (none): %s", name, secretd_status_str(st));
	else if (n == 1 && (st != SECRETD_OK ||
	                       !secret_matches(s, name, scope, cand[0], &w->slots[k][cand[0]])))
		fail(w, "get %s (storage %d): %s or wrong secret", name, cand[0],
		    secretd_status_str(st));
	secretd_secret_free(s);
}

static void
op_resolve(struct worker *w, int k, const char *name, const char *scope)
{
	int type = (int)(rng_next(&w->rng) % 3);
	char path[96];
	secretd_secret *s = NULL;
	secretd_status st;
	int want = -1;

	(void)snprintf(path, sizeof(path), "%sdeeper/x", scope);
	/* Same scope length in both storages: temporary beats persistent. */
	for (int i = 1; i >= 0; i--)
		if (w->slots[k][i].present && w->slots[k][i].type == type)
			want = i;
	st = secretd_resolve(w->c, path, type_names[type], TIMEOUT_MS, &s, NULL);
	if (st != SECRETD_OK)
		fail(w, "resolve %s: %s", path, secretd_status_str(st));
	else if (want < 0 && s != NULL)
		fail(w, "resolve %s %s: found %s, want none", path, type_names[type], s->name);
	else if (want >= 0 && !secret_matches(s, name, scope, want, &w->slots[k][want]))
		fail(w, "resolve %s %s: not %s in storage %d", path, type_names[type], name, want);
	secretd_secret_free(s);
}

/* List (redacted or not, with or without filters): this thread's rows agree with its
 * model, in (name, storage) order. */
static void
op_list(struct worker *w)
{
	bool unredacted = rng_next(&w->rng) % 2;
	int tf = (int)(rng_next(&w->rng) % 4) - 1; /* -1: no type filter */
	int sf = (int)(rng_next(&w->rng) % 3);     /* 0 any, 1 memory, 2 sqlcipher */
	secretd_list_args la = {.unredacted = unredacted,
	    .type = tf < 0 ? NULL : type_names[tf],
	    .storage = sf == 0 ? SECRETD_STORAGE_ANY : storage_of(sf - 1)};
	secretd_rows *rows = NULL;
	secretd_status st;
	char prefix[32];
	size_t plen, i = 0;

	st = secretd_list(w->c, &la, TIMEOUT_MS, &rows, NULL);
	if (st != SECRETD_OK || rows == NULL) {
		fail(w, "list: %s", secretd_status_str(st));
		return;
	}
	plen = (size_t)snprintf(prefix, sizeof(prefix), "p%dt%dn", w->proc, w->thread);
	while (i < rows->n_rows && strncmp(rows->rows[i].name, prefix, plen) < 0)
		i++;
	for (int k = 0; k < NAMES; k++) {
		for (int s = 0; s < 2; s++) {
			const struct slot *sl = &w->slots[k][s];
			char name[32], scope[64], want[256];
			const secretd_row *r;

			if (!sl->present || (tf >= 0 && sl->type != tf) || (sf != 0 && sf - 1 != s))
				continue;
			name_of(w->proc, w->thread, k, name, sizeof(name));
			scope_of(w->proc, w->thread, k, scope, sizeof(scope));
			secret_string(name, scope, sl, unredacted, want, sizeof(want));
			if (i >= rows->n_rows) {
				fail(w, "list: %s storage %d missing", name, s);
				goto done;
			}
			r = &rows->rows[i++];
			if (strcmp(r->name, name) != 0 ||
			    strcmp(r->type, type_names[sl->type]) != 0 ||
			    r->persistent != (s == 1) ||
			    strcmp(r->storage, s == 0 ? "memory" : "sqlcipher") != 0 ||
			    r->n_scope != 1 || strcmp(r->scope[0], scope) != 0 ||
			    strcmp(r->secret_string, want) != 0) {
				fail(w, "list: row %s/%s is not %s storage %d", r->name, r->storage,
				    name, s);
				goto done;
			}
		}
	}
	if (i < rows->n_rows && strncmp(rows->rows[i].name, prefix, plen) == 0)
		fail(w, "list: extra row %s/%s", rows->rows[i].name, rows->rows[i].storage);
done:
	secretd_rows_free(rows);
}

/* The same operations as statements through Execute. */
static void
op_execute(struct worker *w, int k, const char *name, const char *scope)
{
	int kind = (int)(rng_next(&w->rng) % 4);
	int s = (int)(rng_next(&w->rng) % 2);
	struct slot *sl = &w->slots[k][s];
	secretd_result *res = NULL;
	secretd_status st;
	char stmt[256], value[48];

	if (kind == 0) { /* CREATE, in one of its three conflict forms */
		int mode = (int)(rng_next(&w->rng) % 3);

		(void)snprintf(value, sizeof(value), "x-%d-%d-%d", w->proc, w->thread, ++w->serial);
		(void)snprintf(stmt, sizeof(stmt),
		    "CREATE %s%s SECRET %s%s (TYPE openai, API_KEY '%s', SCOPE '%s')",
		    mode == 1 ? "OR REPLACE " : "", s == 0 ? "TEMPORARY" : "PERSISTENT",
		    mode == 2 ? "IF NOT EXISTS " : "", name, value, scope);
		st = secretd_execute(w->c, stmt, TIMEOUT_MS, &res, NULL);
		if (sl->present && mode == 0) {
			if (st != SECRETD_ALREADY_EXISTS)
				fail(w, "execute create %s: %s", name, secretd_status_str(st));
		} else if (st != SECRETD_OK || res == NULL || res->kind != SECRETD_RESULT_CREATED ||
		           res->created.created != !(sl->present && mode == 2)) {
			fail(
			    w, "execute create %s mode %d: %s", name, mode, secretd_status_str(st));
		} else if (res->created.created) {
			sl->present = true;
			sl->type = 0;
			(void)snprintf(sl->value, sizeof(sl->value), "%s", value);
		}
	} else if (kind == 1) { /* DROP [TEMPORARY|PERSISTENT] [IF EXISTS] */
		bool if_exists = rng_next(&w->rng) % 2;

		(void)snprintf(stmt, sizeof(stmt), "DROP %s SECRET %s%s",
		    s == 0 ? "TEMPORARY" : "PERSISTENT", if_exists ? "IF EXISTS " : "", name);
		st = secretd_execute(w->c, stmt, TIMEOUT_MS, &res, NULL);
		if (!sl->present && !if_exists) {
			if (st != SECRETD_NOT_FOUND)
				fail(w, "execute drop %s: %s", name, secretd_status_str(st));
		} else if (st != SECRETD_OK || res == NULL || res->kind != SECRETD_RESULT_DROPPED ||
		           res->dropped.dropped != sl->present) {
			fail(w, "execute drop %s: %s", name, secretd_status_str(st));
		} else {
			sl->present = false;
		}
	} else if (kind == 2) { /* GET SECRET name FROM storage */
		(void)snprintf(stmt, sizeof(stmt), "GET SECRET %s FROM %s", name,
		    s == 0 ? "memory" : "sqlcipher");
		st = secretd_execute(w->c, stmt, TIMEOUT_MS, &res, NULL);
		if (!sl->present
		        ? st != SECRETD_NOT_FOUND
		        : st != SECRETD_OK || res == NULL || res->kind != SECRETD_RESULT_SECRET ||
		              !secret_matches(res->secret, name, scope, s, sl))
			fail(w, "execute get %s storage %d: %s", name, s, secretd_status_str(st));
	} else { /* FROM which_secret(path, type) */
		int type = (int)(rng_next(&w->rng) % 3);
		int want = -1;

		for (int i = 1; i >= 0; i--)
			if (w->slots[k][i].present && w->slots[k][i].type == type)
				want = i;
		(void)snprintf(
		    stmt, sizeof(stmt), "FROM which_secret('%sz', '%s')", scope, type_names[type]);
		st = secretd_execute(w->c, stmt, TIMEOUT_MS, &res, NULL);
		if (st != SECRETD_OK || res == NULL || res->kind != SECRETD_RESULT_RESOLVED ||
		    res->n_resolved != (want < 0 ? 0u : 1u) ||
		    (want >= 0 && (strcmp(res->resolved[0].name, name) != 0 ||
		                      res->resolved[0].persistent != (want == 1) ||
		                      strcmp(res->resolved[0].storage,
		                          want == 0 ? "memory" : "sqlcipher") != 0)))
			fail(w, "execute which_secret %s %s: %s", scope, type_names[type],
			    secretd_status_str(st));
	}
	secretd_result_free(res);
}

static void *
worker_main(void *p)
{
	struct worker *w = p;

	for (int i = 0; i < OPS_PER_THREAD; i++) {
		int k = (int)(rng_next(&w->rng) % NAMES);
		int r = (int)(rng_next(&w->rng) % 100);
		char name[32], scope[64];

		name_of(w->proc, w->thread, k, name, sizeof(name));
		scope_of(w->proc, w->thread, k, scope, sizeof(scope));
		if (r < 30)
			op_create(w, k, name, scope);
		else if (r < 48)
			op_drop(w, k, name);
		else if (r < 63)
			op_get(w, k, name, scope);
		else if (r < 73)
			op_resolve(w, k, name, scope);
		else if (r < 78)
			op_list(w);
		else
			op_execute(w, k, name, scope);
		w->ops++;
	}
	return NULL;
}

/* test_concurrency --worker URL PROC OUTFILE SEED: run THREADS threads, then write the
 * model ("name storage type value" per present slot) and "ops N failures F" to OUTFILE. */
static int
worker_process(char **argv)
{
	static struct worker w[THREADS];
	pthread_t th[THREADS];
	secretd_client *c = NULL;
	long ops = 0, failures = 0;
	int proc = atoi(argv[3]);
	uint64_t seed = strtoull(argv[5], NULL, 10);
	FILE *out;

	if (secretd_client_open(argv[2], NULL, &c, NULL) != SECRETD_OK)
		return 1;
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){.c = c, .proc = proc, .thread = t};
		w[t].rng = seed ^ (uint64_t)(proc * THREADS + t + 1) * 0x9e3779b97f4a7c15ull;
		if (pthread_create(&th[t], NULL, worker_main, &w[t]) != 0)
			return 1;
	}
	for (int t = 0; t < THREADS; t++) {
		(void)pthread_join(th[t], NULL);
		ops += w[t].ops;
		failures += w[t].failures;
	}
	secretd_client_close(c);
	out = fopen(argv[4], "w");
	if (out == NULL)
		return 1;
	for (int t = 0; t < THREADS; t++)
		for (int k = 0; k < NAMES; k++)
			for (int s = 0; s < 2; s++)
				if (w[t].slots[k][s].present)
					fprintf(out, "p%dt%dn%d %d %d %s\n", proc, t, k, s,
					    w[t].slots[k][s].type, w[t].slots[k][s].value);
	fprintf(out, "ops %ld failures %ld\n", ops, failures);
	return fclose(out) == 0 && failures == 0 ? 0 : 1;
}

/* ---- the final check in the parent ---- */

struct entry {
	char name[32];
	int storage;
	struct slot sl;
};

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : x->storage - y->storage;
}

/* Read the workers' models into entries (sorted); the ops and failures they report are
 * added to *opsp and *failuresp. Returns the number of entries, or -1. */
static long
read_models(const char *dir, struct entry *entries, long cap, long *opsp, long *failuresp)
{
	long n = 0;

	for (int p = 0; p < PROCS; p++) {
		char path[512], line[256];
		FILE *f;

		(void)snprintf(path, sizeof(path), "%s/model%d.txt", dir, p);
		f = fopen(path, "r");
		if (f == NULL)
			return -1;
		while (fgets(line, sizeof(line), f) != NULL) {
			struct entry *e = &entries[n];
			long ops, fails;

			if (sscanf(line, "ops %ld failures %ld", &ops, &fails) == 2) {
				*opsp += ops;
				*failuresp += fails;
			} else if (n < cap && sscanf(line, "%31s %d %d %47s", e->name, &e->storage,
			                          &e->sl.type, e->sl.value) == 4) {
				e->sl.present = true;
				n++;
			}
		}
		(void)fclose(f);
	}
	qsort(entries, (size_t)n, sizeof(*entries), entry_cmp);
	return n;
}

/* List (unredacted: values included) and Get agree with the union of the models. Returns
 * the number of comparisons made. */
static long
check_final(secretd_client *c, const struct entry *entries, long n)
{
	secretd_list_args la = {.unredacted = true};
	secretd_rows *rows = NULL;
	long checks = 0;
	size_t i = 0;

	CHECK_STATUS(secretd_list(c, &la, TIMEOUT_MS, &rows, NULL), SECRETD_OK);
	if (rows == NULL)
		return 0;
	for (long j = 0; j < n; j++) {
		const struct entry *e = &entries[j];
		char scope[64], want[256];
		int p, t, k;
		secretd_secret *s = NULL;

		/* Skip rows that are not the workers' (the race names). */
		while (i < rows->n_rows && rows->rows[i].name[0] != 'p')
			i++;
		CHECK(sscanf(e->name, "p%dt%dn%d", &p, &t, &k) == 3);
		scope_of(p, t, k, scope, sizeof(scope));
		secret_string(e->name, scope, &e->sl, true, want, sizeof(want));
		CHECK(i < rows->n_rows);
		if (i >= rows->n_rows)
			break;
		CHECK_STR(rows->rows[i].name, e->name);
		CHECK_STR(rows->rows[i].storage, e->storage == 0 ? "memory" : "sqlcipher");
		CHECK_STR(rows->rows[i].type, type_names[e->sl.type]);
		CHECK(strcmp(rows->rows[i].secret_string, want) == 0);
		i++;
		CHECK_STATUS(secretd_get(c, e->name, storage_of(e->storage), TIMEOUT_MS, &s, NULL),
		    SECRETD_OK);
		CHECK(s != NULL && secret_matches(s, e->name, scope, e->storage, &e->sl));
		secretd_secret_free(s);
		checks += 2;
	}
	while (i < rows->n_rows && rows->rows[i].name[0] != 'p')
		i++;
	CHECK(i == rows->n_rows); /* no row the models do not know */
	secretd_rows_free(rows);
	return checks;
}

static void
run_workers(long *ops_checkedp)
{
	pid_t kids[PROCS];
	static struct entry entries[PROCS * THREADS * NAMES * 2];
	long ops = 0, failures = 0, n;
	secretd_client *c = NULL;
	uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;

	if (getenv("SECRETD_TEST_SEED") != NULL)
		seed = strtoull(getenv("SECRETD_TEST_SEED"), NULL, 10);
	fprintf(stderr, "seed %llu (SECRETD_TEST_SEED to repeat)\n", (unsigned long long)seed);
	for (int p = 0; p < PROCS; p++) {
		char ps[16], out[512], sd[32];

		(void)snprintf(ps, sizeof(ps), "%d", p);
		(void)snprintf(out, sizeof(out), "%s/model%d.txt", srv.dir, p);
		(void)snprintf(sd, sizeof(sd), "%llu", (unsigned long long)seed);
		kids[p] = fork();
		if (kids[p] == 0) {
			execl("/proc/self/exe", "test_concurrency", "--worker", srv.url, ps, out,
			    sd, (char *)NULL);
			_exit(127);
		}
		CHECK(kids[p] > 0);
	}
	for (int p = 0; p < PROCS; p++) {
		int st = -1;

		CHECK(kids[p] > 0 && waitpid(kids[p], &st, 0) == kids[p]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	n = read_models(
	    srv.dir, entries, (long)(sizeof(entries) / sizeof(entries[0])), &ops, &failures);
	CHECK(n >= 0);
	CHECK_STATUS(failures, 0);
	CHECK_STATUS(ops, (long)PROCS * THREADS * OPS_PER_THREAD);
	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
	*ops_checkedp = ops + (n > 0 ? check_final(c, entries, n) : 0);
	fprintf(stderr,
	    "concurrency: %d processes x %d threads, %ld operations checked against "
	    "the models, %ld secrets at the end agree with List and Get\n",
	    PROCS, THREADS, ops, n);
	secretd_client_close(c);
}

/* ---- the Create race ---- */

struct race {
	secretd_client *c;
	pthread_barrier_t start, done;
	int proc;
	bool quit;
	char name[64];
	bool persistent;
	secretd_status status[RACE_THREADS];
};

struct racer {
	struct race *race;
	int thread;
};

static void *
racer_main(void *p)
{
	struct racer *r = p;
	struct race *race = r->race;
	char value[32];

	(void)snprintf(value, sizeof(value), "winner-%d-%d", race->proc, r->thread);
	for (;;) {
		secretd_field f[] = {{"api_key", value, strlen(value)}};
		secretd_create_args a = {.type = "openai", .fields = f, .n_fields = 1};

		(void)pthread_barrier_wait(&race->start);
		if (race->quit)
			break;
		a.name = race->name;
		a.persistent = race->persistent;
		race->status[r->thread] = secretd_create(race->c, &a, TIMEOUT_MS, NULL, NULL);
		(void)pthread_barrier_wait(&race->done);
	}
	return NULL;
}

/* test_concurrency --race URL PROC: for each line "go NAME PERSISTENT" on stdin, release
 * every thread's Create at once and answer "OK EXISTS OTHER WINNER_THREAD" on stdout. */
static int
race_process(char **argv)
{
	static struct race race;
	struct racer racers[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	secretd_rows *rows = NULL;
	char line[128];

	race.proc = atoi(argv[3]);
	if (secretd_client_open(argv[2], NULL, &race.c, NULL) != SECRETD_OK)
		return 1;
	/* Connect before the first round so every round starts on a live pipe. */
	if (secretd_list(race.c, NULL, TIMEOUT_MS, &rows, NULL) != SECRETD_OK)
		return 1;
	secretd_rows_free(rows);
	if (pthread_barrier_init(&race.start, NULL, RACE_THREADS + 1) != 0 ||
	    pthread_barrier_init(&race.done, NULL, RACE_THREADS + 1) != 0)
		return 1;
	for (int t = 0; t < RACE_THREADS; t++) {
		racers[t] = (struct racer){&race, t};
		if (pthread_create(&th[t], NULL, racer_main, &racers[t]) != 0)
			return 1;
	}
	printf("ready\n");
	(void)fflush(stdout);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		int pers = 0, ok = 0, exists = 0, other = 0, winner = -1;

		if (sscanf(line, "go %63s %d", race.name, &pers) != 2)
			break;
		race.persistent = pers != 0;
		(void)pthread_barrier_wait(&race.start);
		(void)pthread_barrier_wait(&race.done);
		for (int t = 0; t < RACE_THREADS; t++) {
			if (race.status[t] == SECRETD_OK) {
				ok++;
				winner = t;
			} else if (race.status[t] == SECRETD_ALREADY_EXISTS) {
				exists++;
			} else {
				other++;
			}
		}
		printf("%d %d %d %d\n", ok, exists, other, winner);
		(void)fflush(stdout);
	}
	race.quit = true;
	(void)pthread_barrier_wait(&race.start);
	for (int t = 0; t < RACE_THREADS; t++)
		(void)pthread_join(th[t], NULL);
	secretd_client_close(race.c);
	return 0;
}

static void
run_race(void)
{
	pid_t kids[RACE_PROCS];
	FILE *to[RACE_PROCS], *from[RACE_PROCS];
	secretd_client *c = NULL;
	int rounds_ok = 0, rounds = 0;
	char line[128];

	for (int p = 0; p < RACE_PROCS; p++) {
		int in[2], out[2];
		char ps[16];

		/* Close-on-exec: a later child must not hold an earlier one's stdin open. */
		CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
		(void)snprintf(ps, sizeof(ps), "%d", p);
		kids[p] = fork();
		if (kids[p] == 0) {
			(void)dup2(in[0], STDIN_FILENO);
			(void)dup2(out[1], STDOUT_FILENO);
			(void)close(in[1]);
			(void)close(out[0]);
			execl("/proc/self/exe", "test_concurrency", "--race", srv.url, ps,
			    (char *)NULL);
			_exit(127);
		}
		(void)close(in[0]);
		(void)close(out[1]);
		to[p] = fdopen(in[1], "w");
		from[p] = fdopen(out[0], "r");
		CHECK(to[p] != NULL && from[p] != NULL);
		CHECK(fgets(line, sizeof(line), from[p]) != NULL && strcmp(line, "ready\n") == 0);
	}
	CHECK_STATUS(secretd_client_open(srv.url, NULL, &c, NULL), SECRETD_OK);
	for (int pers = 0; pers < 2; pers++) {
		for (int r = 0; r < RACE_ROUNDS; r++) {
			int ok = 0, exists = 0, other = 0, wp = -1, wt = -1;
			char name[64], want[32];
			secretd_secret *s = NULL;

			(void)snprintf(name, sizeof(name), "race-%s-%d", pers ? "p" : "t", r);
			for (int p = 0; p < RACE_PROCS; p++) {
				fprintf(to[p], "go %s %d\n", name, pers);
				(void)fflush(to[p]);
			}
			for (int p = 0; p < RACE_PROCS; p++) {
				int o = 0, e = 0, x = 0, w = -1;

				CHECK(fgets(line, sizeof(line), from[p]) != NULL &&
				      sscanf(line, "%d %d %d %d", &o, &e, &x, &w) == 4);
				ok += o;
				exists += e;
				other += x;
				if (o > 0) {
					wp = p;
					wt = w;
				}
			}
			rounds++;
			if (ok == 1 && exists == RACE_PROCS * RACE_THREADS - 1 && other == 0)
				rounds_ok++;
			else
				fprintf(stderr, "race %s: %d OK, %d ALREADY_EXISTS, %d other\n",
				    name, ok, exists, other);
			/* The stored value is the winner's. */
			(void)snprintf(want, sizeof(want), "winner-%d-%d", wp, wt);
			CHECK_STATUS(secretd_get(c, name,
			                 pers ? SECRETD_STORAGE_SQLCIPHER : SECRETD_STORAGE_MEMORY,
			                 TIMEOUT_MS, &s, NULL),
			    SECRETD_OK);
			CHECK(
			    s != NULL && s->n_fields == 1 && strcmp(s->fields[0].value, want) == 0);
			secretd_secret_free(s);
		}
	}
	for (int p = 0; p < RACE_PROCS; p++)
		if (to[p] != NULL)
			(void)fclose(to[p]);
	for (int p = 0; p < RACE_PROCS; p++) {
		int st = -1;

		if (from[p] != NULL)
			(void)fclose(from[p]);
		CHECK(kids[p] > 0 && waitpid(kids[p], &st, 0) == kids[p]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	secretd_client_close(c);
	CHECK_STATUS(rounds_ok, rounds);
	fprintf(stderr,
	    "race: %d rounds (%d per storage) of %d clients in %d processes creating one name: "
	    "%d with exactly one winner and %d ALREADY_EXISTS\n",
	    rounds, RACE_ROUNDS, RACE_PROCS * RACE_THREADS, RACE_PROCS, rounds_ok,
	    RACE_PROCS * RACE_THREADS - 1);
}

int
main(int argc, char **argv)
{
	long ops_checked = 0;

	if (argc == 6 && strcmp(argv[1], "--worker") == 0)
		return worker_process(argv);
	if (argc == 4 && strcmp(argv[1], "--race") == 0)
		return race_process(argv);
	if (!harness_init(&srv) || !harness_start(&srv, NULL)) {
		fprintf(stderr, "cannot start secretd (log: %s)\n", srv.log_path);
		return 1;
	}
	run_workers(&ops_checked);
	run_race();
	CHECK_STATUS(harness_stop(&srv), 0);
	fprintf(stderr, "concurrency: %ld operations checked in all\n", ops_checked);
	if (check_failures_ == 0)
		harness_cleanup(&srv);
	else
		fprintf(stderr, "kept %s for inspection\n", srv.dir);
	return check_report();
}
