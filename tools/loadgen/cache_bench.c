/*
 * cache_bench.c: `tools/bench --cache`: what libsecretd's cache (secretd_options.cache)
 * buys, against a secretd it starts on ipc:// in a temporary directory.
 *
 * Rows:
 *   uncached Get   per call, a client without the cache (one round trip each)
 *   cached Get     per call, the same secret from a client with the cache, in-process
 *   invalidation   from the acknowledgement of a replace (another client) to the first
 *                  cached Get on a spinning reader thread that returns the new value
 * Each is timed call by call with CLOCK_MONOTONIC (so a cached row includes about 20-40 ns
 * of clock reads); medians and p99s are of those per-call times.
 *
 * Not here: the server-side ratio table (bench.c). This program uses libsecretd's public
 * header only, like any client. Exit status: non-zero when a call fails.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "secretd.h"

static uint64_t
now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort v and return its q-quantile (0..1). */
static uint64_t
quantile(uint64_t *v, size_t n, double q)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_u64);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i];
}

static secretd_status
put(secretd_client *c, const char *name, const char *value)
{
	secretd_field f = {.key = "api_key", .value = value};
	secretd_create_args a = {.name = name,
	    .type = "openai",
	    .fields = &f,
	    .n_fields = 1,
	    .on_conflict = SECRETD_CONFLICT_REPLACE};

	return secretd_create(c, &a, 5000, NULL, NULL);
}

/* Time n Gets of name, one by one, into t[]; false when one fails. */
static bool
time_gets(secretd_client *c, const char *name, size_t n, uint64_t *t)
{
	for (size_t i = 0; i < n; i++) {
		secretd_secret *s = NULL;
		uint64_t t0 = now_ns();
		secretd_status st = secretd_get(c, name, SECRETD_STORAGE_ANY, 5000, &s, NULL);

		t[i] = now_ns() - t0;
		secretd_secret_free(s);
		if (st != SECRETD_OK)
			return false;
	}
	return true;
}

struct spinner {
	secretd_client *c;
	atomic_int stop;
	_Atomic long want;        /* the value number the writer just wrote */
	_Atomic uint64_t seen_ns; /* when the reader first read it */
	atomic_int failed;
};

static void *
spin_main(void *arg)
{
	struct spinner *sp = arg;

	while (!atomic_load(&sp->stop)) {
		secretd_secret *s = NULL;
		const secretd_field *f;

		if (secretd_get(sp->c, "inv", SECRETD_STORAGE_ANY, 5000, &s, NULL) != SECRETD_OK) {
			atomic_store(&sp->failed, 1);
			break;
		}
		f = secretd_secret_field(s, "api_key");
		if (f != NULL && atol(f->value) == atomic_load(&sp->want) &&
		    atomic_load(&sp->seen_ns) == 0)
			atomic_store(&sp->seen_ns, now_ns());
		secretd_secret_free(s);
	}
	return NULL;
}

/* n replaces of "inv" through plain while a reader spins on cached; t[i] gets the ns from
 * the i-th write's reply until the reader saw its value (0 when it saw it first, 2 s when
 * never). false when a call failed. */
static bool
time_invalidations(secretd_client *plain, secretd_client *cached, long n, uint64_t *t)
{
	struct spinner sp = {0};
	pthread_t th;

	if (put(plain, "inv", "0") != SECRETD_OK)
		return false;
	sp.c = cached;
	if (pthread_create(&th, NULL, spin_main, &sp) != 0)
		return false;
	usleep(200000);
	for (long i = 1; i <= n; i++) {
		char v[32];
		uint64_t ack, deadline;

		(void)snprintf(v, sizeof(v), "%ld", i);
		atomic_store(&sp.seen_ns, 0);
		atomic_store(&sp.want, i);
		if (put(plain, "inv", v) != SECRETD_OK)
			break;
		ack = now_ns();
		deadline = ack + 2000000000u;
		while (atomic_load(&sp.seen_ns) == 0 && now_ns() < deadline &&
		       !atomic_load(&sp.failed))
			usleep(50);
		/* Seen before the writer had its reply counts as no delay at all. */
		t[i - 1] = atomic_load(&sp.seen_ns) == 0    ? 2000000000u
		           : atomic_load(&sp.seen_ns) < ack ? 0
		                                            : atomic_load(&sp.seen_ns) - ack;
		usleep(2000); /* let the reader cache the new value again */
	}
	atomic_store(&sp.stop, 1);
	(void)pthread_join(th, NULL);
	return !atomic_load(&sp.failed);
}

int
main(int argc, char **argv)
{
	const char *secretd = NULL;
	char dir[256], url[400], data[300], log[300];
	enum { N_UNCACHED = 20000, N_CACHED = 1000000, N_INV = 1000 };
	uint64_t *t = calloc(N_CACHED, sizeof(*t));
	uint64_t unc_med, unc_p99, c_med, c_p99, inv_med, inv_p99, inv_max;
	secretd_options o = {.cache = true};
	secretd_client *plain = NULL, *cached = NULL;
	pid_t pid = -1;
	int rc = 1;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--secretd") == 0 && i + 1 < argc)
			secretd = argv[++i];
	if (secretd == NULL || t == NULL) {
		(void)fprintf(stderr, "usage: secretd-cache-bench --secretd PATH\n");
		return 2;
	}
	if (proc_tmpdir(dir, sizeof(dir)) != 0)
		return 1;
	(void)snprintf(url, sizeof(url), "ipc://%s/secretd.sock", dir);
	(void)snprintf(data, sizeof(data), "%s/data", dir);
	(void)snprintf(log, sizeof(log), "%s/secretd.log", dir);
	{
		char *const args[] = {(char *)secretd, "--listen", url, "--data-dir", data,
		    "--log-level", "warn", NULL};

		if (proc_spawn(args, log, &pid) != 0)
			goto done;
	}
	if (secretd_client_open(url, NULL, &plain, NULL) != SECRETD_OK ||
	    secretd_client_open(url, &o, &cached, NULL) != SECRETD_OK)
		goto done;
	/* The first call waits for the socket (up to the call's timeout). */
	for (int i = 0; i < 50 && put(plain, "bench", "sk-bench-value") != SECRETD_OK; i++)
		usleep(100000);
	if (!time_gets(plain, "bench", 2000, t) || !time_gets(plain, "bench", N_UNCACHED, t))
		goto done;
	unc_med = quantile(t, N_UNCACHED, 0.5);
	unc_p99 = quantile(t, N_UNCACHED, 0.99);
	/* Warm the cache: wait until the subscriber is in sync and the entry is in. */
	for (int i = 0; i < 5000; i++) {
		if (!time_gets(cached, "bench", 1, t))
			goto done;
		if (t[0] < 10000)
			break;
		usleep(1000);
	}
	if (!time_gets(cached, "bench", N_CACHED, t))
		goto done;
	c_med = quantile(t, N_CACHED, 0.5);
	c_p99 = quantile(t, N_CACHED, 0.99);

	/* Invalidation delay: a replace through plain, a cached reader spinning. */
	if (!time_invalidations(plain, cached, N_INV, t))
		goto done;
	inv_max = quantile(t, N_INV, 1.0);
	inv_med = quantile(t, N_INV, 0.5);
	inv_p99 = quantile(t, N_INV, 0.99);

	(void)printf("libsecretd cache, ipc://, one secret of ~20 bytes, this machine:\n");
	(void)printf("%-34s %12s %12s\n", "row", "median", "p99");
	(void)printf("%-34s %9.2f us %9.2f us   (%d calls)\n", "uncached Get per call",
	    unc_med / 1e3, unc_p99 / 1e3, N_UNCACHED);
	(void)printf("%-34s %9.3f us %9.3f us   (%d calls)\n", "cached Get per call (in-process)",
	    c_med / 1e3, c_p99 / 1e3, N_CACHED);
	(void)printf(
	    "%-34s %9.0fx\n", "cached vs uncached (medians)", (double)unc_med / (double)c_med);
	(void)printf("%-34s %9.3f ms %9.3f ms   (%d writes, max %.3f ms)\n",
	    "invalidation: ack -> cached reader", inv_med / 1e6, inv_p99 / 1e6, N_INV,
	    inv_max / 1e6);
	rc = 0;
done:
	if (rc != 0)
		(void)fprintf(stderr, "secretd-cache-bench: a call failed (server log: %s)\n", log);
	secretd_client_close(cached);
	secretd_client_close(plain);
	if (pid > 0) {
		(void)kill(pid, SIGTERM);
		(void)waitpid(pid, NULL, 0);
	}
	if (rc == 0)
		proc_rmtree(dir);
	free(t);
	return rc;
}
