/*
 * bench_cluster.c: the cluster rows of tools/bench (`tools/bench --cluster`). Starts a real
 * 3-member etcd on 127.0.0.1-3, two secretd in cluster mode and, for comparison, one
 * secretd on SQLCipher, all on ipc://, and measures through libsecretd (closed loop, one
 * client handle per requester):
 *
 *   Get of a persistent secret through a node, c = 1, 8, 64 (cluster node vs one node)
 *   persistent Create, c = 1, 8, 64 (through etcd vs SQLCipher's group commit)
 *   propagation delay: a Create through node A until node B serves it, 1,000 writes
 *
 * Prints one table; exit status non-zero when a request fails or something does not start.
 * Usage: secretd-bench-cluster [--seconds N] (SECRETD_BIN names the server binary).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "etcd_proc.h"
#include "harness.h"
#include "secretd.h"

#define SAMPLES 200000

static uint64_t
now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

enum op { OP_GET, OP_CREATE };

struct requester {
	const char *url;
	enum op op;
	int id;
	int cell;
	uint64_t until;
	uint64_t *lat; /* shared sample array */
	atomic_size_t *n_lat;
	uint64_t done;
	uint64_t errors;
};

static secretd_status
create_one(secretd_client *c, const char *name)
{
	secretd_field f = {.key = "api_key", .value = "bench-value-not-secret", .value_len = 0};
	secretd_create_args args = {.name = name,
	    .type = "openai",
	    .fields = &f,
	    .n_fields = 1,
	    .persistent = true,
	    .on_conflict = SECRETD_CONFLICT_ERROR};
	secretd_create_result res;
	secretd_error err;

	return secretd_create(c, &args, 10000, &res, &err);
}

static void *
requester_main(void *arg)
{
	struct requester *r = arg;
	secretd_client *c = NULL;
	secretd_error err;

	if (secretd_client_open(r->url, NULL, &c, &err) != SECRETD_OK) {
		r->errors++;
		return NULL;
	}
	while (now_us() < r->until) {
		uint64_t t0 = now_us();
		secretd_status st;

		if (r->op == OP_GET) {
			secretd_secret *s = NULL;

			st =
			    secretd_get(c, "bench-get", SECRETD_STORAGE_SQLCIPHER, 10000, &s, &err);
			secretd_secret_free(s);
		} else {
			char name[64];

			(void)snprintf(name, sizeof(name), "bc-%d-%d-%llu", r->cell, r->id,
			    (unsigned long long)r->done);
			st = create_one(c, name);
		}
		if (st != SECRETD_OK) {
			r->errors++;
			continue;
		}
		r->done++;
		{
			size_t k = atomic_fetch_add(r->n_lat, 1);

			if (k < SAMPLES)
				r->lat[k] = now_us() - t0;
		}
	}
	secretd_client_close(c);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* One cell: conc requesters for secs seconds. Prints a row; returns the errors. */
static uint64_t
cell(const char *label, const char *url, enum op op, int conc, double secs, int cell_id)
{
	struct requester *r = calloc((size_t)conc, sizeof(*r));
	pthread_t *th = calloc((size_t)conc, sizeof(*th));
	uint64_t *lat = calloc(SAMPLES, sizeof(*lat));
	atomic_size_t n_lat = 0;
	uint64_t t0 = now_us();
	uint64_t until = t0 + (uint64_t)(secs * 1e6);
	uint64_t done = 0;
	uint64_t errors = 0;
	size_t n;

	if (r == NULL || th == NULL || lat == NULL)
		return 1;
	for (int i = 0; i < conc; i++) {
		r[i] = (struct requester){url, op, i, cell_id, until, lat, &n_lat, 0, 0};
		(void)pthread_create(&th[i], NULL, requester_main, &r[i]);
	}
	for (int i = 0; i < conc; i++) {
		(void)pthread_join(th[i], NULL);
		done += r[i].done;
		errors += r[i].errors;
	}
	n = atomic_load(&n_lat);
	if (n > SAMPLES)
		n = SAMPLES;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("%-34s %4d %10.0f %9.2f %9.2f %6llu\n", label, conc, done / ((now_us() - t0) / 1e6),
	    n > 0 ? lat[n / 2] / 1000.0 : 0, n > 0 ? lat[n * 99 / 100] / 1000.0 : 0,
	    (unsigned long long)errors);
	free(r);
	free(th);
	free(lat);
	return errors;
}

static uint64_t
propagation(const char *url_a, const char *url_b)
{
	enum { WRITES = 1000 };
	secretd_client *a = NULL;
	secretd_client *b = NULL;
	secretd_error err;
	uint64_t *d = calloc(WRITES, sizeof(*d));
	uint64_t errors = 0;

	if (d == NULL || secretd_client_open(url_a, NULL, &a, &err) != SECRETD_OK ||
	    secretd_client_open(url_b, NULL, &b, &err) != SECRETD_OK)
		return 1;
	for (int i = 0; i < WRITES; i++) {
		char name[32];
		uint64_t t0;
		secretd_status st = SECRETD_NOT_FOUND;

		(void)snprintf(name, sizeof(name), "bprop-%d", i);
		if (create_one(a, name) != SECRETD_OK) {
			errors++;
			continue;
		}
		t0 = now_us();
		while (now_us() - t0 < 5000000u) {
			secretd_secret *s = NULL;

			st = secretd_get(b, name, SECRETD_STORAGE_SQLCIPHER, 10000, &s, &err);
			secretd_secret_free(s);
			if (st != SECRETD_NOT_FOUND)
				break;
		}
		d[i] = now_us() - t0;
		if (st != SECRETD_OK)
			errors++;
	}
	qsort(d, WRITES, sizeof(*d), cmp_u64);
	printf("%-34s %4d %10s %9.2f %9.2f %6llu\n", "propagation A -> B (1,000 writes)", 1, "-",
	    d[WRITES / 2] / 1000.0, d[WRITES * 99 / 100] / 1000.0, (unsigned long long)errors);
	free(d);
	secretd_client_close(a);
	secretd_client_close(b);
	return errors;
}

static bool
write_key_file(const char *path)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (f == NULL)
		return false;
	for (int i = 0; i < 32; i++)
		(void)fprintf(f, "%02x", (unsigned)((i * 37 + 11) & 0xff));
	ok = fputc('\n', f) != EOF;
	ok = fclose(f) == 0 && ok;
	return ok && chmod(path, 0600) == 0;
}

int
main(int argc, char **argv)
{
	static const int concs[] = {1, 8, 64};
	char tmp[64] = "/tmp/secretd-bench-cluster-XXXXXX";
	char key[128];
	struct etcd_proc ep;
	struct server_proc one, a, b;
	double secs = 3.0;
	uint64_t errors = 0;
	int cell_id = 0;
	int rc = 1;
	bool etcd_up = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: secretd-bench-cluster [--seconds N]\n");
			return 2;
		}
	}
	if (!etcd_available()) {
		fprintf(stderr, "secretd-bench-cluster: etcd is not installed (tools/deps)\n");
		return 1;
	}
	if (mkdtemp(tmp) == NULL || chmod(tmp, 0700) != 0)
		return 1;
	(void)snprintf(key, sizeof(key), "%s/cluster.key", tmp);
	if (!write_key_file(key) || !(etcd_up = etcd_start(&ep, tmp, 3)))
		goto out;
	if (!harness_init(&one) || !harness_init(&a) || !harness_init(&b))
		goto out;
	one.extra[0] = "--key-file";
	one.extra[1] = key;
	for (struct server_proc *sp = &a; sp != NULL; sp = sp == &a ? &b : NULL) {
		const char *flags[] = {"--persistent-store", "etcd", "--etcd-endpoints",
		    ep.endpoints, "--key-file", key, NULL};

		for (size_t i = 0; flags[i] != NULL; i++)
			sp->extra[i] = flags[i];
	}
	if (!harness_start(&one, NULL) || !harness_start(&a, NULL) || !harness_start(&b, NULL)) {
		fprintf(stderr, "secretd-bench-cluster: a secretd did not start\n");
		goto out;
	}
	{
		secretd_client *c = NULL;
		secretd_error err;

		for (int k = 0; k < 2; k++) {
			if (secretd_client_open(k == 0 ? one.url : a.url, NULL, &c, &err) !=
			        SECRETD_OK ||
			    create_one(c, "bench-get") != SECRETD_OK) {
				fprintf(stderr, "secretd-bench-cluster: seeding failed\n");
				secretd_client_close(c);
				goto out;
			}
			secretd_client_close(c);
			c = NULL;
		}
	}
	printf("secretd cluster benchmark: 3 etcd members (127.0.0.1-3), 2 secretd on etcd, 1 "
	       "secretd on SQLCipher; ipc://, libsecretd, %.0f s per cell\n",
	    secs);
	printf("%-34s %4s %10s %9s %9s %6s\n", "cell", "c", "ops/s", "p50 ms", "p99 ms", "errors");
	for (size_t i = 0; i < 3; i++)
		errors +=
		    cell("Get, one node (SQLCipher)", one.url, OP_GET, concs[i], secs, cell_id++);
	for (size_t i = 0; i < 3; i++)
		errors += cell(
		    "Get, cluster node (etcd mirror)", a.url, OP_GET, concs[i], secs, cell_id++);
	for (size_t i = 0; i < 3; i++)
		errors += cell(
		    "persistent Create, SQLCipher", one.url, OP_CREATE, concs[i], secs, cell_id++);
	for (size_t i = 0; i < 3; i++)
		errors += cell(
		    "persistent Create, through etcd", a.url, OP_CREATE, concs[i], secs, cell_id++);
	errors += propagation(a.url, b.url);
	rc = errors == 0 ? 0 : 1;
	if (errors != 0)
		fprintf(stderr, "secretd-bench-cluster: %llu request(s) failed\n",
		    (unsigned long long)errors);
out:
	harness_kill(&one);
	harness_kill(&a);
	harness_kill(&b);
	harness_cleanup(&one);
	harness_cleanup(&a);
	harness_cleanup(&b);
	if (etcd_up)
		etcd_stop(&ep);
	{
		char cmd[128];

		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	return rc;
}
