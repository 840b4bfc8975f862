/*
 * test_cluster.c: secretd as a cluster, end to end. A real 3-member etcd (members on
 * 127.0.0.1, 127.0.0.2, 127.0.0.3, free ports, data directories in this test's temporary
 * directory) and three real secretd (--persistent-store etcd, one shared key file), driven
 * through libsecretd. In order:
 *
 *   propagation   a write through one node is read through another: delay p50/p99 over
 *                 1,000 writes (printed); a client given two nodes reads its own writes
 *   race          100 rounds: the same name created through every node at once, conflict
 *                 mode error: exactly one winner, every node agrees on its value
 *   etcd-kill     kill -9 of one etcd member during concurrent writes: every acknowledged
 *                 secret is there afterwards
 *   quorum        SIGSTOP of two members: reads answer, writes are UNAVAILABLE and leave
 *                 nothing in etcd; health says not writable; SIGCONT: writes work again
 *   node-kill     kill -9 of a secretd a client uses, while calls are in flight: every call
 *                 succeeds through another node, no write applied twice
 *   sticky        a client given every node keeps to one: 300 of 300 gets see the temporary
 *                 it made; its node killed, it moves to the next and stays there
 *   compaction    a node stopped (SIGSTOP) and one shut down while secrets change and etcd
 *                 compacts; both come back and agree with the others
 *   wrong-key     a node with another key file is refused at start; etcd is not written
 *   migrate       an SQLCipher database moved into etcd (twice: the second keeps all)
 *   rekey         online rotation refused with a reason; offline rotation re-seals every
 *                 value, a node with the new key reads them all
 *   stale         a raw request asking for a revision the node has not reached: answered
 *                 UNAVAILABLE/STALE after the bounded wait; one it has: answered at once,
 *                 with Reply.store_rev
 *   at-rest       no secret value in any byte of any etcd data directory
 *   listing       persistent secrets are listed (and got, resolved, rendered as text JSON)
 *                 with storage etcd and node null, a temporary with the node that holds it
 *                 (--node-name); another node does not list it; IN/FROM etcd statements
 *   drop-resend   a Drop resent with the same request id through a second node after its
 *                 first attempt committed answers OK (dropped), not NOT_FOUND; another id
 *                 answers NOT_FOUND
 *
 * SECRETD_CLUSTER_STEPS (comma-separated step names) runs only those, while developing.
 * Values are made of a marker and a counter; they are compared, never printed.
 * Skipped (exit 77) when etcd is not installed.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "check.h"
#include "etcd_proc.h"
#include "harness.h"
#include "secretd.h"
#include "secretd.pb-c.h"

#define NODES 3
#define VALUE_MARK "sv7d1e9c4b"
#define TIMEOUT_MS 10000

static struct etcd_proc etcd;
static struct server_proc node[NODES];
static char tmp[64] = "/tmp/secretd-cluster-XXXXXX";
static char key_file[128];
static char prefix_flag[] = "/secretd-test/";
static const char *const node_names[NODES] = {"node-a", "node-b", "node-c"};

static uint64_t
now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	(void)nanosleep(&ts, NULL);
}

static void
value_of(char *buf, size_t len, const char *what, long n)
{
	(void)snprintf(buf, len, VALUE_MARK "-%s-%ld", what, n);
}

/* The etcd flags every node gets; key is the key file. */
static void
node_flags(struct server_proc *sp, const char *key)
{
	size_t n = 0;

	sp->extra[n++] = "--persistent-store";
	sp->extra[n++] = "etcd";
	sp->extra[n++] = "--etcd-endpoints";
	sp->extra[n++] = etcd.endpoints;
	sp->extra[n++] = "--etcd-prefix";
	sp->extra[n++] = prefix_flag;
	sp->extra[n++] = "--key-file";
	sp->extra[n++] = key;
	sp->extra[n++] = "--workers";
	sp->extra[n++] = "16";
	for (int i = 0; i < NODES; i++)
		if (sp == &node[i]) {
			sp->extra[n++] = "--node-name";
			sp->extra[n++] = node_names[i];
		}
	sp->extra[n] = NULL;
}

static bool
write_key_file(const char *path, unsigned seed)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (f == NULL)
		return false;
	for (int i = 0; i < 32; i++)
		(void)fprintf(f, "%02x", (unsigned)((seed * 131 + (unsigned)i * 29 + 7) & 0xff));
	ok = fputc('\n', f) != EOF;
	ok = fclose(f) == 0 && ok;
	return ok && chmod(path, 0600) == 0;
}

static secretd_client *
open_client(const char *urls)
{
	secretd_client *c = NULL;
	secretd_error err;

	if (secretd_client_open(urls, NULL, &c, &err) != SECRETD_OK) {
		fprintf(stderr, "client for %s: %s\n", urls, err.message);
		return NULL;
	}
	return c;
}

static secretd_status
create(secretd_client *c, const char *name, const char *value, secretd_conflict mode,
    secretd_error *err)
{
	secretd_field f = {.key = "api_key", .value = value, .value_len = strlen(value)};
	secretd_create_args args = {
	    .name = name,
	    .type = "openai",
	    .fields = &f,
	    .n_fields = 1,
	    .persistent = true,
	    .on_conflict = mode,
	};
	secretd_create_result res;

	return secretd_create(c, &args, TIMEOUT_MS, &res, err);
}

/* SECRETD_OK with *eqp telling whether the value equals want. */
static secretd_status
get_value(secretd_client *c, const char *name, const char *want, bool *eqp)
{
	secretd_secret *s = NULL;
	secretd_error err;
	secretd_status st = secretd_get(c, name, SECRETD_STORAGE_SQLCIPHER, TIMEOUT_MS, &s, &err);

	*eqp = false;
	if (st == SECRETD_OK && s != NULL && s->n_fields == 1 &&
	    s->fields[0].value_len == strlen(want) &&
	    memcmp(s->fields[0].value, want, strlen(want)) == 0)
		*eqp = true;
	secretd_secret_free(s);
	return st;
}

/* Persistent names visible through c with the given prefix, in *np. */
static bool
count_names(secretd_client *c, const char *name_prefix, size_t *np)
{
	secretd_list_args args = {.storage = SECRETD_STORAGE_SQLCIPHER};
	secretd_rows *rows = NULL;
	secretd_error err;

	*np = 0;
	if (secretd_list(c, &args, TIMEOUT_MS, &rows, &err) != SECRETD_OK)
		return false;
	for (size_t i = 0; i < rows->n_rows; i++)
		if (strncmp(rows->rows[i].name, name_prefix, strlen(name_prefix)) == 0)
			(*np)++;
	secretd_rows_free(rows);
	return true;
}

/* Poll until the node behind c lists want names with the prefix (up to 15 s). */
static bool
wait_count(secretd_client *c, const char *name_prefix, size_t want)
{
	size_t n = 0;

	for (int i = 0; i < 300; i++) {
		if (count_names(c, name_prefix, &n) && n == want)
			return true;
		sleep_ms(50);
	}
	fprintf(stderr, "  listed %zu names '%s*', want %zu\n", n, name_prefix, want);
	return false;
}

static bool
wait_writable(secretd_client *c, bool want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		secretd_health_info h;
		secretd_error err;

		if (secretd_health(c, 3000, &h, &err) == SECRETD_OK && h.writable == want)
			return true;
		sleep_ms(100);
	}
	return false;
}

/* The etcd revision (from etcdctl), or 0. */
static long long
etcd_revision(void)
{
	static const char *const args[] = {"get", "x", "--write-out=fields", NULL};
	char out[2048];
	const char *p;

	if (etcd_ctl(&etcd, args, out, sizeof(out)) != 0 ||
	    (p = strstr(out, "\"Revision\" : ")) == NULL)
		return 0;
	return atoll(p + strlen("\"Revision\" : "));
}

/* Keys under the prefix with this name part (etcdctl 3.4 has no --count-only: the
 * "Count" of a one-key page is the total). */
static long
etcd_count(const char *name_prefix)
{
	char key[128];
	char out[2048];
	const char *args[] = {
	    "get", key, "--prefix", "--keys-only", "--limit", "1", "--write-out=fields", NULL};
	const char *p;

	(void)snprintf(key, sizeof(key), "%ss/%s", prefix_flag, name_prefix);
	if (etcd_ctl(&etcd, args, out, sizeof(out)) != 0 ||
	    (p = strstr(out, "\"Count\" : ")) == NULL)
		return -1;
	return atol(p + strlen("\"Count\" : "));
}

/* --- propagation ----------------------------------------------------------------------- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void
test_propagation(void)
{
	enum { WRITES = 1000 };
	secretd_client *a = open_client(node[0].url);
	secretd_client *b = open_client(node[1].url);
	secretd_client *ab = NULL;
	uint64_t *delay = calloc(WRITES, sizeof(*delay));
	int failures = 0;
	int stale = 0;
	char urls[700];

	if (a == NULL || b == NULL || delay == NULL) {
		CHECK(false);
		goto out;
	}
	for (int i = 0; i < WRITES; i++) {
		char name[32];
		char value[64];
		secretd_error err;
		uint64_t t0;
		bool eq = false;

		(void)snprintf(name, sizeof(name), "prop-%d", i);
		value_of(value, sizeof(value), "prop", i);
		if (create(a, name, value, SECRETD_CONFLICT_ERROR, &err) != SECRETD_OK) {
			failures++;
			continue;
		}
		t0 = now_us();
		/* b has seen no revision: this measures the watch, not a wait. */
		while (
		    get_value(b, name, value, &eq) == SECRETD_NOT_FOUND && now_us() - t0 < 5000000u)
			;
		delay[i] = now_us() - t0;
		if (!eq)
			failures++;
	}
	CHECK_STATUS(failures, 0);
	qsort(delay, WRITES, sizeof(*delay), cmp_u64);
	printf("propagation delay over %d writes (node A -> node B): p50 %.2f ms, p99 %.2f ms, "
	       "max %.2f ms\n",
	    WRITES, delay[WRITES / 2] / 1000.0, delay[WRITES * 99 / 100] / 1000.0,
	    delay[WRITES - 1] / 1000.0);
	/* Read your writes through a client that spreads its calls over two nodes. */
	(void)snprintf(urls, sizeof(urls), "%s,%s", node[0].url, node[1].url);
	ab = open_client(urls);
	CHECK(ab != NULL);
	for (int i = 0; ab != NULL && i < 200; i++) {
		char name[32];
		char value[64];
		secretd_error err;
		bool eq = false;

		(void)snprintf(name, sizeof(name), "ryw-%d", i);
		value_of(value, sizeof(value), "ryw", i);
		if (create(ab, name, value, SECRETD_CONFLICT_ERROR, &err) != SECRETD_OK ||
		    get_value(ab, name, value, &eq) != SECRETD_OK || !eq)
			stale++;
	}
	CHECK_STATUS(stale, 0);
out:
	free(delay);
	secretd_client_close(ab);
	secretd_client_close(a);
	secretd_client_close(b);
}

/* --- race -------------------------------------------------------------------------------- */

struct racer {
	secretd_client *c;
	pthread_barrier_t *start;
	int round;
	int id;
	secretd_status st;
};

static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	char name[32];
	char value[64];
	secretd_error err;

	(void)snprintf(name, sizeof(name), "race-%d", r->round);
	value_of(value, sizeof(value), "race", r->round * 10 + r->id);
	(void)pthread_barrier_wait(r->start);
	r->st = create(r->c, name, value, SECRETD_CONFLICT_ERROR, &err);
	return NULL;
}

static void
test_race(void)
{
	secretd_client *c[NODES];
	int bad_rounds = 0;
	int disagree = 0;

	for (int i = 0; i < NODES; i++)
		c[i] = open_client(node[i].url);
	for (int round = 0; round < 100; round++) {
		pthread_barrier_t start;
		pthread_t th[NODES];
		struct racer r[NODES];
		int winners = 0;
		int exists = 0;
		int winner = -1;

		(void)pthread_barrier_init(&start, NULL, NODES);
		for (int i = 0; i < NODES; i++) {
			r[i] = (struct racer){c[i], &start, round, i, SECRETD_UNKNOWN};
			(void)pthread_create(&th[i], NULL, racer_main, &r[i]);
		}
		for (int i = 0; i < NODES; i++)
			(void)pthread_join(th[i], NULL);
		(void)pthread_barrier_destroy(&start);
		for (int i = 0; i < NODES; i++) {
			if (r[i].st == SECRETD_OK) {
				winners++;
				winner = i;
			} else if (r[i].st == SECRETD_ALREADY_EXISTS) {
				exists++;
			}
		}
		if (winners != 1 || exists != NODES - 1) {
			bad_rounds++;
			continue;
		}
		/* Every node serves the winner's value (each client has seen the winning
		 * revision or a later one, so a node that is behind waits). */
		for (int i = 0; i < NODES; i++) {
			char name[32];
			char value[64];
			bool eq = false;

			(void)snprintf(name, sizeof(name), "race-%d", round);
			value_of(value, sizeof(value), "race", round * 10 + winner);
			if (get_value(c[i], name, value, &eq) != SECRETD_OK || !eq)
				disagree++;
		}
	}
	printf("race: 100 rounds of %d concurrent creates of one name, %d round(s) without "
	       "exactly one winner\n",
	    NODES, bad_rounds);
	CHECK_STATUS(bad_rounds, 0);
	CHECK_STATUS(disagree, 0);
	for (int i = 0; i < NODES; i++)
		secretd_client_close(c[i]);
}

/* --- writers for the fault tests ----------------------------------------------------- */

struct writer {
	secretd_client *c;
	const char *tag;
	int id;
	atomic_bool *stop;
	int n;       /* attempted */
	bool *acked; /* [max] acknowledged */
	int max;
	int failed;
	atomic_int *progress; /* may be NULL: acknowledged creates of all writers */
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;

	for (w->n = 0; w->n < w->max && !atomic_load(w->stop); w->n++) {
		char name[48];
		char value[64];
		secretd_error err;

		(void)snprintf(name, sizeof(name), "%s-%d-%d", w->tag, w->id, w->n);
		value_of(value, sizeof(value), w->tag, w->id * 100000L + w->n);
		w->acked[w->n] =
		    create(w->c, name, value, SECRETD_CONFLICT_ERROR, &err) == SECRETD_OK;
		if (!w->acked[w->n])
			w->failed++;
		else if (w->progress != NULL)
			(void)atomic_fetch_add(w->progress, 1);
	}
	return NULL;
}

/* Every acknowledged write of ws is readable, with its value, through c. */
static int
missing_acked(secretd_client *c, struct writer *ws, int n)
{
	int missing = 0;

	for (int k = 0; k < n; k++) {
		for (int i = 0; i < ws[k].n; i++) {
			char name[48];
			char value[64];
			bool eq = false;

			if (!ws[k].acked[i])
				continue;
			(void)snprintf(name, sizeof(name), "%s-%d-%d", ws[k].tag, ws[k].id, i);
			value_of(value, sizeof(value), ws[k].tag, ws[k].id * 100000L + i);
			if (get_value(c, name, value, &eq) != SECRETD_OK || !eq)
				missing++;
		}
	}
	return missing;
}

static void
test_etcd_kill(void)
{
	enum { WRITERS = 4, MAX = 4000 };
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	atomic_bool stop = false;
	secretd_client *check = open_client(node[2].url);
	int acked = 0;

	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){open_client(node[i % 2].url), "kill", i, &stop, 0,
		    calloc(MAX, sizeof(bool)), MAX, 0, NULL};
		(void)pthread_create(&th[i], NULL, writer_main, &w[i]);
	}
	sleep_ms(1000);
	etcd_kill_member(&etcd, 0); /* the first endpoint of every node */
	sleep_ms(1500);
	atomic_store(&stop, true);
	for (int i = 0; i < WRITERS; i++) {
		(void)pthread_join(th[i], NULL);
		for (int k = 0; k < w[i].n; k++)
			acked += w[i].acked[k];
	}
	printf("etcd member killed during writes: %d acknowledged, %d failed (UNAVAILABLE "
	       "allowed)\n",
	    acked, w[0].failed + w[1].failed + w[2].failed + w[3].failed);
	CHECK(acked > 20); /* writes went on around the kill (a loaded machine makes few) */
	CHECK(etcd_restart_member(&etcd, 0));
	CHECK_STATUS(missing_acked(check, w, WRITERS), 0);
	for (int i = 0; i < WRITERS; i++) {
		secretd_client_close(w[i].c);
		free(w[i].acked);
	}
	secretd_client_close(check);
}

static void
test_quorum(void)
{
	secretd_client *c[NODES];
	secretd_health_info h;
	secretd_error err;
	int unavailable = 0;
	int reads_ok = 0;
	bool eq = false;
	char value[64];

	for (int i = 0; i < NODES; i++)
		c[i] = open_client(node[i].url);
	value_of(value, sizeof(value), "prop", 7);
	etcd_signal_member(&etcd, 1, SIGSTOP);
	etcd_signal_member(&etcd, 2, SIGSTOP);
	for (int i = 0; i < NODES; i++)
		CHECK(wait_writable(c[i], false, 20000));
	CHECK_STATUS(secretd_health(c[0], 3000, &h, &err), SECRETD_OK);
	CHECK(h.serving && !h.writable && h.detail[0] != '\0');
	CHECK_STR(h.persistent_store, "etcd");
	for (int k = 0; k < 10; k++) {
		for (int i = 0; i < NODES; i++) {
			char name[32];

			(void)snprintf(name, sizeof(name), "noquorum-%d-%d", i, k);
			if (create(c[i], name, value, SECRETD_CONFLICT_ERROR, &err) ==
			        SECRETD_UNAVAILABLE &&
			    strcmp(err.reason, "NO_QUORUM") == 0)
				unavailable++;
			if (get_value(c[i], "prop-7", value, &eq) == SECRETD_OK && eq)
				reads_ok++;
		}
	}
	CHECK_STATUS(unavailable, 30);
	CHECK_STATUS(reads_ok, 30);
	{
		secretd_drop_result dr;

		CHECK_STATUS(secretd_drop(c[1], "prop-8", SECRETD_STORAGE_SQLCIPHER, false,
		                 TIMEOUT_MS, &dr, &err),
		    SECRETD_UNAVAILABLE);
	}
	etcd_signal_member(&etcd, 1, SIGCONT);
	etcd_signal_member(&etcd, 2, SIGCONT);
	for (int i = 0; i < NODES; i++)
		CHECK(wait_writable(c[i], true, 30000));
	CHECK_STATUS(etcd_count("noquorum-"), 0);
	CHECK(get_value(c[2], "prop-8", "", &eq) == SECRETD_OK);
	CHECK_STATUS(create(c[2], "after-quorum", value, SECRETD_CONFLICT_ERROR, &err), SECRETD_OK);
	for (int i = 0; i < NODES; i++) {
		size_t n = 99;

		CHECK(count_names(c[i], "noquorum-", &n) && n == 0);
		secretd_client_close(c[i]);
	}
}

/* --- node kill ----------------------------------------------------------------------- */

struct killer {
	struct server_proc *sp;
	atomic_int *progress;
	int after; /* kill once this many creates are acknowledged */
};

static void *
killer_main(void *arg)
{
	struct killer *k = arg;

	/* By progress, not by time: the kill lands mid-run on a fast or a loaded machine. */
	for (int i = 0; i < 6000 && atomic_load(k->progress) < k->after; i++)
		sleep_ms(5);
	harness_kill(k->sp);
	return NULL;
}

static void
test_node_kill(void)
{
	enum { WRITERS = 3, MAX = 150 };
	char urls[1000];
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	pthread_t kt;
	atomic_int progress = 0;
	struct killer k = {&node[0], &progress, WRITERS * MAX / 3};
	atomic_bool stop = false;
	secretd_client *check = open_client(node[1].url);
	int acked = 0;
	int failed = 0;
	size_t listed = 0;

	(void)snprintf(urls, sizeof(urls), "%s,%s,%s", node[0].url, node[1].url, node[2].url);
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){open_client(urls), "fo", i, &stop, 0,
		    calloc(MAX, sizeof(bool)), MAX, 0, &progress};
		(void)pthread_create(&th[i], NULL, writer_main, &w[i]);
	}
	(void)pthread_create(&kt, NULL, killer_main, &k);
	(void)pthread_join(kt, NULL);
	for (int i = 0; i < WRITERS; i++) {
		(void)pthread_join(th[i], NULL);
		for (int n = 0; n < w[i].n; n++)
			acked += w[i].acked[n];
		failed += w[i].failed;
	}
	printf("secretd killed under %d clients: %d creates acknowledged, %d failed\n", WRITERS,
	    acked, failed);
	CHECK_STATUS(failed, 0); /* every call answered OK, by another node when needed */
	CHECK_STATUS(acked, WRITERS * MAX);
	CHECK_STATUS(missing_acked(check, w, WRITERS), 0);
	/* Exactly one secret per create: nothing applied twice, nothing extra. */
	CHECK(wait_count(check, "fo-", (size_t)acked));
	CHECK_STATUS(etcd_count("fo-"), acked);
	(void)count_names(check, "fo-", &listed);
	for (int i = 0; i < WRITERS; i++) {
		secretd_client_close(w[i].c);
		free(w[i].acked);
	}
	secretd_client_close(check);
	CHECK(harness_start(&node[0], NULL));
}

/* --- sticky node ---------------------------------------------------------------------- */

/* Gets of a temporary secret through c that answer OK, out of n. */
static int
temp_hits(secretd_client *c, const char *name, int n)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		secretd_secret *s = NULL;
		secretd_error err;

		if (secretd_get(c, name, SECRETD_STORAGE_MEMORY, TIMEOUT_MS, &s, &err) == SECRETD_OK)
			ok++;
		secretd_secret_free(s);
	}
	return ok;
}

/*
 * A client given every node's address keeps to one node while it answers, so a job sees
 * the temporary secrets it created (they live on one node only); when that node dies it
 * moves to the next and stays there, also after the first node is back.
 */
static void
test_sticky(void)
{
	char urls[1000];
	secretd_client *c;
	secretd_client *c2;
	secretd_error err;
	secretd_field f = {.key = "api_key", .value = "sticky-value", .value_len = 12};
	secretd_create_args args = {.name = "tmp-sticky", .type = "openai", .fields = &f,
	    .n_fields = 1, .persistent = false};
	int hits;

	(void)snprintf(urls, sizeof(urls), "%s,%s,%s", node[0].url, node[1].url, node[2].url);
	c = open_client(urls);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_STATUS(secretd_create(c, &args, TIMEOUT_MS, NULL, &err), SECRETD_OK);
	hits = temp_hits(c, "tmp-sticky", 300);
	printf("sticky: %d of 300 gets of a temporary through a 3-node list found it\n", hits);
	CHECK_STATUS(hits, 300);
	/* Another handle on the same list prefers the same (first) node. */
	c2 = open_client(urls);
	CHECK_STATUS(temp_hits(c2, "tmp-sticky", 50), 50);
	secretd_client_close(c2);

	/* The node dies: the next calls go to another node, which lacks the temporary. */
	harness_kill(&node[0]);
	CHECK_STATUS(temp_hits(c, "tmp-sticky", 1), 0);
	args.name = "tmp-sticky2";
	CHECK_STATUS(secretd_create(c, &args, TIMEOUT_MS, NULL, &err), SECRETD_OK);
	hits = temp_hits(c, "tmp-sticky2", 300);
	printf("sticky: after the node was killed, %d of 300 gets found the temporary made "
	       "through the next node\n",
	    hits);
	CHECK_STATUS(hits, 300);
	/* The first node back: the client stays where its new temporary is. */
	CHECK(harness_start(&node[0], NULL));
	CHECK(wait_writable(c, true, 10000));
	CHECK_STATUS(temp_hits(c, "tmp-sticky2", 100), 100);
	(void)secretd_drop(c, "tmp-sticky2", SECRETD_STORAGE_MEMORY, false, TIMEOUT_MS, NULL, &err);
	secretd_client_close(c);
}

/* --- compaction ---------------------------------------------------------------------- */

static void
test_compaction(void)
{
	secretd_client *a = open_client(node[0].url);
	secretd_client *b = NULL;
	secretd_client *c = NULL;
	size_t na = 0;
	char value[64];
	secretd_error err;
	long long rev;
	char revs[32];
	const char *compact[] = {"compact", revs, NULL};
	const char *defrag[] = {"defrag", NULL};
	char out[4096];

	value_of(value, sizeof(value), "compact", 1);
	/* b: stopped with its watch open; c: shut down. */
	(void)kill(node[1].pid, SIGSTOP);
	CHECK_STATUS(harness_stop(&node[2]), 0);
	for (int i = 0; i < 200; i++) {
		char name[32];
		secretd_drop_result dr;

		(void)snprintf(name, sizeof(name), "cmp-%d", i);
		CHECK_STATUS(create(a, name, value, SECRETD_CONFLICT_REPLACE, &err), SECRETD_OK);
		if (i % 4 == 0)
			CHECK_STATUS(secretd_drop(a, name, SECRETD_STORAGE_SQLCIPHER, false,
			                 TIMEOUT_MS, &dr, &err),
			    SECRETD_OK);
	}
	/* The early prop-* secrets go too. */
	for (int i = 0; i < 50; i++) {
		char name[32];
		secretd_drop_result dr;

		(void)snprintf(name, sizeof(name), "prop-%d", i);
		CHECK_STATUS(
		    secretd_drop(a, name, SECRETD_STORAGE_SQLCIPHER, false, TIMEOUT_MS, &dr, &err),
		    SECRETD_OK);
	}
	rev = etcd_revision();
	CHECK(rev > 0);
	(void)snprintf(revs, sizeof(revs), "%lld", rev);
	CHECK_STATUS(etcd_ctl(&etcd, compact, out, sizeof(out)), 0);
	(void)etcd_ctl(&etcd, defrag, out, sizeof(out));
	(void)kill(node[1].pid, SIGCONT);
	CHECK(harness_start(&node[2], NULL));
	b = open_client(node[1].url);
	c = open_client(node[2].url);
	CHECK(count_names(a, "", &na));
	CHECK(wait_count(b, "", na));
	CHECK(wait_count(c, "", na));
	CHECK(wait_count(b, "cmp-", 150));
	CHECK(wait_count(b, "prop-", 950));
	{
		bool eq = false;

		CHECK(get_value(b, "cmp-5", value, &eq) == SECRETD_OK && eq);
		CHECK_STATUS(get_value(b, "cmp-4", value, &eq), SECRETD_NOT_FOUND);
	}
	secretd_client_close(a);
	secretd_client_close(b);
	secretd_client_close(c);
}

/* --- wrong key, migration, rotation -------------------------------------------------- */

static void
test_wrong_key(void)
{
	struct server_proc bad;
	char wrong[160];
	long long before = etcd_revision();
	int exit_status = 0;
	char *log;

	(void)snprintf(wrong, sizeof(wrong), "%s/wrong.key", tmp);
	CHECK(write_key_file(wrong, 99));
	CHECK(harness_init(&bad));
	node_flags(&bad, wrong);
	CHECK(!harness_start(&bad, &exit_status));
	CHECK_STATUS(exit_status, 1);
	log = file_read(bad.log_path, NULL);
	CHECK(log != NULL && strstr(log, "not the cluster's") != NULL);
	free(log);
	CHECK(before > 0 && etcd_revision() == before);
	harness_cleanup(&bad);
}

static int
run_secretd(const char *const *argv)
{
	char out[4096];
	char errbuf[4096];

	return run_capture(argv, NULL, out, sizeof(out), errbuf, sizeof(errbuf));
}

static void
test_migrate(void)
{
	struct server_proc one;
	secretd_client *c = NULL;
	secretd_client *a = open_client(node[0].url);
	const char *bin = getenv("SECRETD_BIN");
	int missing = 0;

	CHECK(harness_init(&one));
	/* One machine, SQLCipher, with the cluster's key file. */
	one.extra[0] = "--key-file";
	one.extra[1] = key_file;
	one.extra[2] = NULL;
	CHECK(harness_start(&one, NULL));
	c = open_client(one.url);
	for (int i = 0; c != NULL && i < 20; i++) {
		char name[32];
		char value[64];
		secretd_error err;

		(void)snprintf(name, sizeof(name), "mig-%d", i);
		value_of(value, sizeof(value), "mig", i);
		CHECK_STATUS(create(c, name, value, SECRETD_CONFLICT_ERROR, &err), SECRETD_OK);
	}
	secretd_client_close(c);
	CHECK_STATUS(harness_stop(&one), 0);
	{
		const char *argv[] = {bin, "migrate-to-etcd", "--data-dir", one.data_dir,
		    "--key-file", key_file, "--etcd-endpoints", etcd.endpoints, "--etcd-prefix",
		    prefix_flag, NULL};

		CHECK_STATUS(run_secretd(argv), 0);
		/* Again: everything is there already, kept, success. */
		CHECK_STATUS(run_secretd(argv), 0);
	}
	CHECK(wait_count(a, "mig-", 20));
	for (int i = 0; i < 20; i++) {
		char name[32];
		char value[64];
		bool eq = false;

		(void)snprintf(name, sizeof(name), "mig-%d", i);
		value_of(value, sizeof(value), "mig", i);
		if (get_value(a, name, value, &eq) != SECRETD_OK || !eq)
			missing++;
	}
	CHECK_STATUS(missing, 0);
	CHECK_STATUS(etcd_count("mig-"), 20);
	secretd_client_close(a);
	harness_cleanup(&one);
}

static void
test_rekey(void)
{
	secretd_client *a = open_client(node[0].url);
	const char *bin = getenv("SECRETD_BIN");
	char key_file_out[256];
	secretd_error err;
	size_t before = 0;
	size_t after = 0;
	char oldkey[160];
	int missing = 0;

	/* Online: refused, with the procedure in the message. */
	CHECK_STATUS(secretd_rekey(a, TIMEOUT_MS, key_file_out, sizeof(key_file_out), &err),
	    SECRETD_FAILED_PRECONDITION);
	CHECK_STR(err.reason, "CLUSTER");
	CHECK(count_names(a, "", &before));
	secretd_client_close(a);
	/* Offline: every node stopped, one command, the new key file to every node. */
	for (int i = 0; i < NODES; i++)
		CHECK_STATUS(harness_stop(&node[i]), 0);
	(void)snprintf(oldkey, sizeof(oldkey), "%s.old-copy", key_file);
	{
		char *k = file_read(key_file, NULL);
		FILE *f = fopen(oldkey, "w");

		if (k != NULL && f != NULL)
			(void)fputs(k, f);
		if (f != NULL)
			(void)fclose(f);
		(void)chmod(oldkey, 0600);
		free(k);
	}
	{
		const char *argv[] = {bin, "rekey", "--data-dir", node[0].data_dir, "--key-file",
		    key_file, "--persistent-store", "etcd", "--etcd-endpoints", etcd.endpoints,
		    "--etcd-prefix", prefix_flag, NULL};

		CHECK_STATUS(run_secretd(argv), 0);
	}
	/* The old key is refused now; the new one reads everything. */
	{
		struct server_proc old;
		int exit_status = 0;

		CHECK(harness_init(&old));
		node_flags(&old, oldkey);
		CHECK(!harness_start(&old, &exit_status));
		CHECK_STATUS(exit_status, 1);
		harness_cleanup(&old);
	}
	CHECK(harness_start(&node[0], NULL));
	a = open_client(node[0].url);
	CHECK(count_names(a, "", &after));
	CHECK_STATUS(after, before);
	for (int i = 0; i < 20; i++) {
		char name[32];
		char value[64];
		bool eq = false;

		(void)snprintf(name, sizeof(name), "mig-%d", i);
		value_of(value, sizeof(value), "mig", i);
		if (get_value(a, name, value, &eq) != SECRETD_OK || !eq)
			missing++;
	}
	CHECK_STATUS(missing, 0);
	secretd_client_close(a);
	CHECK_STATUS(harness_stop(&node[0]), 0);
}

/* One Get on a raw REQ socket with the given min_store_rev; the reply's status, reason and
 * store_rev, and the time it took. */
static bool
raw_get(const char *url, uint64_t min_rev, uint32_t *statusp, char *reason, size_t reason_len,
    uint64_t *store_revp, uint64_t *elapsed_msp)
{
	Secretd__V1__SecretGet get = SECRETD__V1__SECRET_GET__INIT;
	Secretd__V1__Request req = SECRETD__V1__REQUEST__INIT;
	Secretd__V1__Reply *rep = NULL;
	uint8_t body[128];
	uint8_t frame[512];
	nng_socket s;
	nng_msg *m = NULL;
	uint64_t t0;
	size_t n;
	bool ok = false;

	get.name = (char *)"prop-500";
	get.storage = SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
	req.method = (char *)"Get";
	req.body.data = body;
	req.body.len = secretd__v1__secret_get__pack(&get, body);
	req.request_id = 4242;
	req.min_store_rev = min_rev;
	memcpy(frame, "\0SD\1", 4);
	n = 4 + secretd__v1__request__pack(&req, frame + 4);
	if (nng_req0_open(&s) != 0)
		return false;
	(void)nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
	t0 = now_us();
	if (nng_dial(s, url, NULL, 0) == 0 && nng_send(s, frame, n, 0) == 0 &&
	    nng_recvmsg(s, &m, 0) == 0 && nng_msg_len(m) > 4 &&
	    (rep = secretd__v1__reply__unpack(
	         NULL, nng_msg_len(m) - 4, (const uint8_t *)nng_msg_body(m) + 4)) != NULL) {
		*elapsed_msp = (now_us() - t0) / 1000;
		*statusp = rep->status;
		(void)snprintf(reason, reason_len, "%s", rep->reason);
		*store_revp = rep->store_rev;
		ok = true;
	}
	if (rep != NULL)
		secretd__v1__reply__free_unpacked(rep, NULL);
	if (m != NULL)
		nng_msg_free(m);
	(void)nng_close(s);
	return ok;
}

static void
test_stale(void)
{
	uint32_t status = 99;
	char reason[32] = "";
	uint64_t rev = 0;
	uint64_t ms = 0;

	/* A revision the node has: answered at once, with its own revision. */
	CHECK(raw_get(node[1].url, 1, &status, reason, sizeof(reason), &rev, &ms));
	CHECK_STATUS(status, 0);
	CHECK(rev > 1);
	/* One it will not reach: the bounded wait (2 s by default), then UNAVAILABLE. */
	CHECK(raw_get(node[1].url, rev + 1000000, &status, reason, sizeof(reason), &rev, &ms));
	CHECK_STATUS(status, 14);
	CHECK_STR(reason, "STALE");
	CHECK(ms >= 1900 && ms < 15000);
}

/* Add to hits[k] the files under dir that hold needles[k], reading every file once. */
static void
tree_hits(const char *dir, const char *const *needles, size_t n, size_t *hits)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[600];
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(void)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			tree_hits(p, needles, n, hits);
		} else if (S_ISREG(sb.st_mode) && sb.st_size > 0) {
			/* mmap: etcd preallocates 64 MB WAL files. */
			int fd = open(p, O_RDONLY);
			void *m =
			    fd >= 0 ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0)
			            : MAP_FAILED;

			for (size_t k = 0; m != MAP_FAILED && k < n; k++)
				if (memmem(m, (size_t)sb.st_size, needles[k], strlen(needles[k])) !=
				    NULL)
					hits[k]++;
			if (m != MAP_FAILED)
				(void)munmap(m, (size_t)sb.st_size);
			if (fd >= 0)
				(void)close(fd);
		}
	}
	(void)closedir(d);
}

static void
test_at_rest(void)
{
	/* Stopped, so every write is in the files. */
	etcd_stop(&etcd);
	for (size_t i = 0; i < etcd.n; i++) {
		static const char *const needles[] = {"mig-1", VALUE_MARK};
		size_t hits[2] = {0, 0};

		tree_hits(etcd.m[i].data_dir, needles, 2, hits);
		CHECK(hits[0] > 0); /* names are keys, in clear: proves the files were read */
		CHECK_STATUS(hits[1], 0);
	}
}

/* --- listings in cluster mode --------------------------------------------------------- */

/* The row named name in rows, or NULL. */
static const secretd_row *
row_named(const secretd_rows *rows, const char *name)
{
	for (size_t i = 0; rows != NULL && i < rows->n_rows; i++)
		if (strcmp(rows->rows[i].name, name) == 0)
			return &rows->rows[i];
	return NULL;
}

/* One text frame to url; the JSON reply (caller frees) or NULL. */
static char *
text_request(const char *url, const char *statement)
{
	return harness_sp_request(url, statement, strlen(statement), TIMEOUT_MS, NULL);
}

static void
test_listing(void)
{
	secretd_client *a = open_client(node[0].url);
	secretd_client *b = open_client(node[1].url);
	secretd_field f = {.key = "api_key", .value = VALUE_MARK "-list", .value_len = 0};
	secretd_create_args args = {.name = "lst_tmp", .type = "openai", .fields = &f,
	    .n_fields = 1, .on_conflict = SECRETD_CONFLICT_REPLACE};
	secretd_create_result cr;
	secretd_rows *rows = NULL;
	secretd_secret *sec = NULL;
	secretd_result *res = NULL;
	const secretd_row *r;
	secretd_error err;
	char *json;
	char value[64];

	f.value_len = strlen(f.value);
	value_of(value, sizeof(value), "list", 1);
	CHECK_STATUS(secretd_create(a, &args, TIMEOUT_MS, &cr, &err), SECRETD_OK);
	CHECK_STR(cr.storage_name, "memory");
	CHECK_STR(cr.node, "node-a");
	CHECK_STATUS(create(a, "lst_pers", value, SECRETD_CONFLICT_REPLACE, &err), SECRETD_OK);

	/* List through the node that holds the temporary: etcd/null and memory/node-a. */
	CHECK_STATUS(secretd_list(a, NULL, TIMEOUT_MS, &rows, &err), SECRETD_OK);
	r = row_named(rows, "lst_pers");
	CHECK(r != NULL && strcmp(r->storage, "etcd") == 0 && r->persistent && r->node[0] == 0);
	r = row_named(rows, "lst_tmp");
	CHECK(r != NULL && strcmp(r->storage, "memory") == 0 && !r->persistent &&
	      strcmp(r->node, "node-a") == 0);
	secretd_rows_free(rows);
	rows = NULL;
	/* Another node has the persistent one and not the temporary. */
	CHECK(wait_count(b, "lst_pers", 1));
	CHECK_STATUS(secretd_list(b, NULL, TIMEOUT_MS, &rows, &err), SECRETD_OK);
	CHECK(row_named(rows, "lst_tmp") == NULL);
	r = row_named(rows, "lst_pers");
	CHECK(r != NULL && strcmp(r->storage, "etcd") == 0);
	secretd_rows_free(rows);

	/* Get and resolve name the storage (and the node of a temporary). */
	CHECK_STATUS(secretd_get(a, "lst_tmp", SECRETD_STORAGE_ANY, TIMEOUT_MS, &sec, &err),
	    SECRETD_OK);
	CHECK(sec != NULL && strcmp(sec->storage_name, "memory") == 0 &&
	      strcmp(sec->node, "node-a") == 0);
	secretd_secret_free(sec);
	sec = NULL;
	CHECK_STATUS(secretd_get(b, "lst_pers", SECRETD_STORAGE_ANY, TIMEOUT_MS, &sec, &err),
	    SECRETD_OK);
	CHECK(sec != NULL && strcmp(sec->storage_name, "etcd") == 0 && sec->node[0] == 0 &&
	      sec->storage == SECRETD_STORAGE_SQLCIPHER);
	secretd_secret_free(sec);
	CHECK_STATUS(secretd_execute(a, "FROM which_secret('openai://x', 'openai')", TIMEOUT_MS,
	                 &res, &err),
	    SECRETD_OK);
	CHECK(res != NULL && res->kind == SECRETD_RESULT_RESOLVED && res->n_resolved == 1);
	if (res != NULL && res->n_resolved == 1) {
		/* Temporary beats persistent on a tie: the one of node-a. */
		CHECK_STR(res->resolved[0].name, "lst_tmp");
		CHECK_STR(res->resolved[0].storage, "memory");
		CHECK_STR(res->resolved[0].node, "node-a");
	}
	secretd_result_free(res);

	/* Text frames: the node key (cluster mode only), storage etcd. */
	json = text_request(node[0].url, "FROM duckdb_secrets()");
	CHECK(json != NULL && strstr(json, "\"name\":\"lst_pers\",\"type\":\"openai\","
	                                   "\"provider\":\"config\",\"persistent\":true,"
	                                   "\"storage\":\"etcd\"") != NULL);
	CHECK(json != NULL && strstr(json, "\"secret_string\":\"name=lst_pers;type=openai;"
	                                   "provider=config;serializable=true;scope=openai://;"
	                                   "api_key=redacted\",\"node\":null}") != NULL);
	CHECK(json != NULL && strstr(json, "api_key=redacted\",\"node\":\"node-a\"}") != NULL);
	free(json);
	json = text_request(node[0].url, "GET SECRET lst_pers");
	CHECK(json != NULL && strstr(json, "\"storage\":\"etcd\"") != NULL &&
	      strstr(json, "\"node\":null") != NULL);
	free(json);
	json = text_request(node[0].url, "FROM which_secret('openai://x', 'openai')");
	CHECK(json != NULL &&
	      strstr(json, "{\"name\":\"lst_tmp\",\"persistent\":\"TEMPORARY\","
	                   "\"storage\":\"memory\",\"node\":\"node-a\"}") != NULL);
	free(json);

	/* secretctl's table has a node column here, its JSON a node key. */
	{
		const char *ctl = getenv("SECRETCTL_BIN");
		const char *argv[] = {ctl, "--addr", node[0].url, "list", NULL, NULL};
		/* Every secret the earlier steps left is listed too (a few hundred kB). */
		enum { OUT = 4 << 20 };
		char *out = malloc(OUT);
		char errbuf[1024];
		const char *line;

		CHECK(ctl != NULL && out != NULL);
		if (ctl != NULL && out != NULL) {
			CHECK_STATUS(run_capture(argv, NULL, out, OUT, errbuf, sizeof(errbuf)), 0);
			/* The header: the columns of duckdb_secrets(), then node. */
			CHECK(strncmp(out, "name ", 5) == 0 && strchr(out, '\n') != NULL &&
			      strstr(out, "  node\n") == strchr(out, '\n') - 6 &&
			      strstr(out, "  secret_string  ") < strchr(out, '\n'));
			line = strstr(out, "\nlst_tmp ");
			CHECK(line != NULL && strstr(line, "memory") != NULL &&
			      strstr(line, "memory") < strchr(line + 1, '\n') &&
			      strstr(line, " node-a\n") == strchr(line + 1, '\n') - 7);
			line = strstr(out, "\nlst_pers ");
			CHECK(line != NULL && strstr(line, " etcd ") < strchr(line + 1, '\n') &&
			      strstr(line, " -\n") == strchr(line + 1, '\n') - 2);
			argv[4] = "--json";
			CHECK_STATUS(run_capture(argv, NULL, out, OUT, errbuf, sizeof(errbuf)), 0);
			CHECK(strstr(out, "\"node\": \"node-a\"") != NULL ||
			      strstr(out, "\"node\":\"node-a\"") != NULL);
			CHECK(strstr(out, "\"node\": null") != NULL || strstr(out, "\"node\":null") != NULL);
			CHECK(strstr(out, "\"storage\": \"etcd\"") != NULL ||
			      strstr(out, "\"storage\":\"etcd\"") != NULL);
			/* Nothing was cut: the listing ends with its last line. */
			CHECK(strlen(out) < OUT - 1);
			/* --storage etcd names the persistent storage. */
			{
				const char *get[] = {ctl, "--addr", node[1].url, "get", "lst_pers",
				    "--storage", "etcd", NULL};

				CHECK_STATUS(
				    run_capture(get, NULL, out, OUT, errbuf, sizeof(errbuf)), 0);
				CHECK(strstr(out, "\nstorage     etcd\n") != NULL);
			}
		}
		free(out);
	}

	/* IN etcd / FROM etcd: the persistent storage of a cluster node. */
	json = text_request(node[1].url,
	    "CREATE PERSISTENT SECRET lst_sql IN etcd (TYPE openai, API_KEY '" VALUE_MARK "x')");
	CHECK(json != NULL && strstr(json, "{\"status\":\"OK\",\"name\":\"lst_sql\","
	                                   "\"storage\":\"etcd\",\"node\":null}") != NULL);
	free(json);
	json = text_request(node[1].url,
	    "CREATE SECRET lst_sql2 IN etcd (TYPE openai, API_KEY '" VALUE_MARK "x')");
	CHECK(json != NULL && strstr(json, "\"storage\":\"etcd\"") != NULL);
	free(json);
	json = text_request(node[1].url,
	    "CREATE TEMPORARY SECRET lst_sql3 IN etcd (TYPE openai, API_KEY '" VALUE_MARK "x')");
	CHECK(json != NULL && strstr(json, "\"reason\":\"INVALID_STORAGE\"") != NULL &&
	      strstr(json, "cannot be stored in etcd") != NULL);
	free(json);
	json = text_request(node[1].url, "GET SECRET lst_sql FROM etcd");
	CHECK(json != NULL && strstr(json, "\"status\":\"OK\"") != NULL);
	free(json);
	json = text_request(node[1].url, "DROP SECRET lst_sql FROM etcd");
	CHECK(json != NULL && strstr(json, "{\"status\":\"OK\",\"name\":\"lst_sql\","
	                                   "\"storage\":\"etcd\",\"node\":null}") != NULL);
	free(json);
	/* sqlcipher still names the persistent storage (statements written for one machine). */
	json = text_request(node[1].url, "DROP PERSISTENT SECRET lst_sql2 FROM sqlcipher");
	CHECK(json != NULL && strstr(json, "\"storage\":\"etcd\"") != NULL);
	free(json);
	json = text_request(node[0].url, "DROP TEMPORARY SECRET lst_tmp");
	CHECK(json != NULL && strstr(json, "{\"status\":\"OK\",\"name\":\"lst_tmp\","
	                                   "\"storage\":\"memory\",\"node\":\"node-a\"}") !=
	                          NULL);
	free(json);
	CHECK_STATUS(
	    secretd_drop(a, "lst_pers", SECRETD_STORAGE_ANY, false, TIMEOUT_MS, NULL, &err),
	    SECRETD_OK);
	secretd_client_close(a);
	secretd_client_close(b);
}

/* --- a resent drop --------------------------------------------------------------------- */

/* A Drop of name with request id id sent as raw bytes to url; the reply's status, and
 * whether its body says dropped from etcd. */
static bool
raw_drop(const char *url, const char *name, uint64_t id, uint32_t *statusp, bool *droppedp)
{
	Secretd__V1__SecretDrop d = SECRETD__V1__SECRET_DROP__INIT;
	Secretd__V1__Request req = SECRETD__V1__REQUEST__INIT;
	Secretd__V1__Reply *rep = NULL;
	Secretd__V1__SecretDropReply *dr = NULL;
	uint8_t body[256];
	uint8_t frame[512];
	size_t n;
	size_t len = 0;
	char *ans;

	d.name = (char *)name;
	req.method = (char *)"Drop";
	req.body.data = body;
	req.body.len = secretd__v1__secret_drop__pack(&d, body);
	req.request_id = id;
	memcpy(frame, "\0SD\1", 4);
	n = 4 + secretd__v1__request__pack(&req, frame + 4);
	*droppedp = false;
	ans = harness_sp_request(url, frame, n, TIMEOUT_MS, &len);
	if (ans == NULL || len < 4 ||
	    (rep = secretd__v1__reply__unpack(NULL, len - 4, (const uint8_t *)ans + 4)) == NULL) {
		free(ans);
		return false;
	}
	*statusp = rep->status;
	if (rep->status == 0 &&
	    (dr = secretd__v1__secret_drop_reply__unpack(NULL, rep->body.len, rep->body.data)) !=
	        NULL) {
		*droppedp = dr->dropped && strcmp(dr->storage_name, "etcd") == 0 &&
		            strcmp(dr->name, name) == 0;
		secretd__v1__secret_drop_reply__free_unpacked(dr, NULL);
	}
	secretd__v1__reply__free_unpacked(rep, NULL);
	free(ans);
	return true;
}

static void
test_drop_resend(void)
{
	secretd_client *a = open_client(node[0].url);
	secretd_client *b = open_client(node[1].url);
	char value[64];
	secretd_error err;
	uint32_t status = 99;
	bool dropped = false;
	int resent_ok = 0;

	value_of(value, sizeof(value), "resend", 1);
	for (int i = 0; i < 20; i++) {
		char name[32];
		uint64_t id = 0x5eed000000000000ull + (uint64_t)i;

		(void)snprintf(name, sizeof(name), "rs-%d", i);
		CHECK_STATUS(create(a, name, value, SECRETD_CONFLICT_ERROR, &err), SECRETD_OK);
		CHECK(wait_count(b, name, 1));
		/* The first attempt commits through node a (its answer "lost"). */
		CHECK(raw_drop(node[0].url, name, id, &status, &dropped));
		CHECK_STATUS(status, 0);
		CHECK(dropped);
		/* Even rounds: the resend reaches b once b's mirror no longer has the name;
		 * odd rounds: at once (b may still have it: the txn's compare fails). */
		if (i % 2 == 0)
			CHECK(wait_count(b, name, 0));
		CHECK(raw_drop(node[1].url, name, id, &status, &dropped));
		CHECK_STATUS(status, 0); /* OK, as the first reply said */
		CHECK(dropped);
		resent_ok += status == 0 && dropped;
		/* Another request for the same name: it is gone. */
		CHECK(raw_drop(node[1].url, name, id + 1000, &status, &dropped));
		CHECK_STATUS(status, 5); /* NOT_FOUND */
	}
	printf("resent drops through a second node answered OK: %d/20\n", resent_ok);
	secretd_client_close(a);
	secretd_client_close(b);
}

int
main(void)
{
	struct {
		const char *name;
		void (*fn)(void);
	} steps[] = {
	    {"propagation", test_propagation},
	    {"race", test_race},
	    {"etcd-kill", test_etcd_kill},
	    {"quorum", test_quorum},
	    {"node-kill", test_node_kill},
	    {"sticky", test_sticky},
	    {"compaction", test_compaction},
	    {"wrong-key", test_wrong_key},
	    {"migrate", test_migrate},
	    {"stale", test_stale},
	    {"listing", test_listing},
	    {"drop-resend", test_drop_resend},
	    {"rekey", test_rekey},
	    {"at-rest", test_at_rest},
	};
	bool up = true;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!etcd_available()) {
		printf("SKIP: etcd is not installed (tools/deps installs etcd-server)\n");
		return 77;
	}
	if (mkdtemp(tmp) == NULL || chmod(tmp, 0700) != 0)
		return 1;
	(void)snprintf(key_file, sizeof(key_file), "%s/cluster.key", tmp);
	CHECK(write_key_file(key_file, 1));
	up = etcd_start(&etcd, tmp, 3);
	CHECK(up);
	for (int i = 0; up && i < NODES; i++) {
		up = harness_init(&node[i]);
		node_flags(&node[i], key_file);
		up = up && harness_start(&node[i], NULL);
		if (!up)
			fprintf(
			    stderr, "secretd node %d did not start; log %s\n", i, node[i].log_path);
		CHECK(up);
	}
	for (size_t s = 0; up && s < sizeof(steps) / sizeof(steps[0]); s++) {
		int before = check_failures_;
		uint64_t t0 = now_us();
		const char *only = getenv("SECRETD_CLUSTER_STEPS"); /* e.g. "listing,drop-resend" */

		if (only != NULL && strstr(only, steps[s].name) == NULL)
			continue;

		steps[s].fn();
		printf("%s %s (%.1f s)\n", check_failures_ == before ? "ok  " : "FAIL",
		    steps[s].name, (now_us() - t0) / 1e6);
	}
	for (int i = 0; i < NODES; i++) {
		harness_kill(&node[i]);
		if (check_failures_ == 0 || getenv("SECRETD_KEEP_TEST_DIRS") == NULL)
			harness_cleanup(&node[i]);
	}
	etcd_stop(&etcd);
	if (check_failures_ == 0 || getenv("SECRETD_KEEP_TEST_DIRS") == NULL) {
		char cmd[128];

		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	return check_report();
}
