/*
 * load.c: the closed-loop load generator. See load.h.
 *
 * Each requester keeps its latencies (nanoseconds) in its own array, so the hot loop takes
 * no lock; load_run merges and sorts them once the requesters have stopped.
 */
#include "load.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct run;

struct requester {
	struct load_worker w; /* first: handed to the op */
	struct run *run;
	pthread_t thread;
	bool started;
	nng_ctx ctx;
	bool ctx_open;
	nng_aio *aio;
	uint64_t *lat; /* counted latencies, ns */
	size_t n_lat;
	size_t cap_lat;
	bool oom;
};

struct run {
	const struct load_spec *spec;
	pthread_mutex_t gate_lock; /* the gate: requesters wait until it opens */
	pthread_cond_t gate_cond;
	bool gate_open;
	uint64_t t_start; /* time mode: counted window [t_start, t_end] */
	uint64_t t_end;
	atomic_bool stop;
	atomic_uint_fast64_t next_k; /* count mode */
	pthread_mutex_t err_lock;
	bool failed;
	char err[512];
};

uint64_t
load_now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
load_nonce(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = load_now_ns() * 0x9e3779b97f4a7c15u; /* still differs run to run */
	return v;
}

uint64_t
load_request_id(const struct load_worker *w, uint64_t k, unsigned step)
{
	/* splitmix64's finaliser: a bijection, so distinct (k, step) of one run never
	 * collide; runs differ by their random nonce. */
	uint64_t z = w->nonce + ((k << 1) | (step & 1u)) * 0x9e3779b97f4a7c15u;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	z ^= z >> 31;
	return z != 0 ? z : 1;
}

/* Record the first error and stop everyone. */
static void run_fail(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
run_fail(struct run *run, const char *fmt, ...)
{
	va_list ap;

	(void)pthread_mutex_lock(&run->err_lock);
	if (!run->failed) {
		run->failed = true;
		va_start(ap, fmt);
		(void)vsnprintf(run->err, sizeof(run->err), fmt, ap);
		va_end(ap);
	}
	(void)pthread_mutex_unlock(&run->err_lock);
	atomic_store(&run->stop, true);
}

static void
record(struct requester *r, uint64_t ns)
{
	if (r->n_lat == r->cap_lat) {
		size_t cap = r->cap_lat > 0 ? r->cap_lat * 2 : 4096;
		uint64_t *p = realloc(r->lat, cap * sizeof(*p));

		if (p == NULL) {
			r->oom = true;
			return;
		}
		r->lat = p;
		r->cap_lat = cap;
	}
	r->lat[r->n_lat++] = ns;
}

/* One request: build, send, receive, check. False after recording an error. */
static bool
exchange(struct requester *r, uint64_t k, unsigned step, uint64_t *donep)
{
	struct run *run = r->run;
	const struct load_op *op = run->spec->op;
	nng_msg *msg = NULL;
	char err[384];
	int rv;

	if ((rv = op->build(op, &r->w, k, step, &msg)) != 0) {
		run_fail(run, "requester %u: cannot build request %u of iteration %llu: %s",
		    r->w.id, step, (unsigned long long)k, nng_strerror(rv));
		return false;
	}
	nng_aio_set_msg(r->aio, msg);
	nng_ctx_send(r->ctx, r->aio);
	nng_aio_wait(r->aio);
	if ((rv = nng_aio_result(r->aio)) != 0) {
		nng_msg_free(msg); /* still ours after a failed send */
		run_fail(run, "requester %u: send failed: %s", r->w.id, nng_strerror(rv));
		return false;
	}
	nng_ctx_recv(r->ctx, r->aio);
	nng_aio_wait(r->aio);
	if ((rv = nng_aio_result(r->aio)) != 0) {
		run_fail(run, "requester %u: no reply: %s", r->w.id, nng_strerror(rv));
		return false;
	}
	*donep = load_now_ns();
	msg = nng_aio_get_msg(r->aio);
	if (!op->check(op, &r->w, k, step, nng_msg_body(msg), nng_msg_len(msg), err, sizeof(err))) {
		nng_msg_free(msg);
		run_fail(run, "requester %u, iteration %llu, request %u: %s", r->w.id,
		    (unsigned long long)k, step, err);
		return false;
	}
	nng_msg_free(msg);
	return true;
}

static void *
requester_main(void *arg)
{
	struct requester *r = arg;
	struct run *run = r->run;
	const struct load_spec *spec = run->spec;
	bool count_mode = spec->count > 0;
	uint64_t local_k = 0;

	(void)pthread_mutex_lock(&run->gate_lock);
	while (!run->gate_open)
		(void)pthread_cond_wait(&run->gate_cond, &run->gate_lock);
	(void)pthread_mutex_unlock(&run->gate_lock);
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		uint64_t k;
		uint64_t done = 0;

		if (count_mode) {
			k = atomic_fetch_add(&run->next_k, 1);
			if (k >= spec->count)
				break;
		} else {
			/* Unique among this run's requesters; request ids also differ by run. */
			k = ((uint64_t)r->w.id << 32) | local_k++;
		}
		for (unsigned step = 0; step < spec->op->steps; step++) {
			uint64_t t0 = load_now_ns();

			if (!exchange(r, k, step, &done))
				return NULL;
			if (count_mode || (done >= run->t_start && done <= run->t_end))
				record(r, done - t0);
		}
		if (!count_mode && done > run->t_end)
			break;
	}
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
percentile_us(const uint64_t *sorted, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)ceil(q * (double)n);
	i = i == 0 ? 0 : i - 1;
	if (i >= n)
		i = n - 1;
	return (double)sorted[i] / 1000.0;
}

/* Append the requesters' latencies to acc. */
static int
gather(struct requester *rs, unsigned n, double seconds, struct load_samples *acc, char *err,
    size_t errlen)
{
	for (unsigned i = 0; i < n; i++) {
		if (rs[i].oom) {
			(void)snprintf(err, errlen, "out of memory recording latencies");
			return -1;
		}
		if (acc->n + rs[i].n_lat > acc->cap) {
			size_t cap = acc->cap > 0 ? acc->cap : 65536;
			uint64_t *p;

			while (cap < acc->n + rs[i].n_lat)
				cap *= 2;
			p = realloc(acc->ns, cap * sizeof(*p));
			if (p == NULL) {
				(void)snprintf(err, errlen, "out of memory merging latencies");
				return -1;
			}
			acc->ns = p;
			acc->cap = cap;
		}
		if (rs[i].n_lat > 0)
			memcpy(acc->ns + acc->n, rs[i].lat, rs[i].n_lat * sizeof(*acc->ns));
		acc->n += rs[i].n_lat;
	}
	acc->seconds += seconds;
	return 0;
}

int
load_summarise(struct load_samples *acc, struct load_result *res, char *err, size_t errlen)
{
	double sum = 0;
	size_t total = acc->n;

	memset(res, 0, sizeof(*res));
	res->requests = total;
	res->seconds = acc->seconds;
	if (total == 0) {
		(void)snprintf(err, errlen, "no request completed in %.2f s: the server is stalled",
		    acc->seconds);
		return -1;
	}
	qsort(acc->ns, total, sizeof(*acc->ns), cmp_u64);
	for (size_t i = 0; i < total; i++)
		sum += (double)acc->ns[i];
	res->rps = acc->seconds > 0 ? (double)total / acc->seconds : 0;
	res->mean_us = sum / (double)total / 1000.0;
	res->p50_us = percentile_us(acc->ns, total, 0.50);
	res->p99_us = percentile_us(acc->ns, total, 0.99);
	res->p999_us = percentile_us(acc->ns, total, 0.999);
	res->max_us = (double)acc->ns[total - 1] / 1000.0;
	return 0;
}

void
load_samples_free(struct load_samples *acc)
{
	if (acc == NULL)
		return;
	free(acc->ns);
	memset(acc, 0, sizeof(*acc));
}

int
load_run(nng_socket sock, const struct load_spec *spec, struct load_result *res, char *err,
    size_t errlen)
{
	struct load_samples acc = {NULL, 0, 0, 0};
	int rc = -1;

	if (load_run_into(sock, spec, &acc, err, errlen) == 0)
		rc = load_summarise(&acc, res, err, errlen);
	load_samples_free(&acc);
	return rc;
}

/* Give each of the n requesters its aio (with the run's timeout) and its own context on
 * sock. Returns 0, or -1 with err set (what was opened is freed by the caller). */
static int
requesters_open(
    struct requester *rs, unsigned n, struct run *run, nng_socket sock, char *err, size_t errlen)
{
	uint64_t nonce = load_nonce();

	for (unsigned i = 0; i < n; i++) {
		struct requester *r = &rs[i];
		int rv;

		r->run = run;
		r->w.id = i;
		r->w.nonce = nonce;
		if ((rv = nng_aio_alloc(&r->aio, NULL, NULL)) != 0 ||
		    (rv = nng_ctx_open(&r->ctx, sock)) != 0) {
			(void)snprintf(err, errlen, "requester %u: cannot open a context: %s", i,
			    nng_strerror(rv));
			return -1;
		}
		r->ctx_open = true;
		nng_aio_set_timeout(r->aio, run->spec->timeout_ms);
	}
	return 0;
}

int
load_run_into(nng_socket sock, const struct load_spec *spec, struct load_samples *acc, char *err,
    size_t errlen)
{
	struct requester *rs = NULL;
	struct run run;
	unsigned n = spec->concurrency;
	bool gate = false;
	bool lock = false;
	uint64_t t0;
	uint64_t t1;
	int rc = -1;

	memset(&run, 0, sizeof(run));
	run.spec = spec;
	atomic_init(&run.stop, false);
	atomic_init(&run.next_k, 0);
	if (n == 0 || spec->op == NULL || spec->op->steps == 0) {
		(void)snprintf(err, errlen, "bad load spec");
		return -1;
	}
	if (pthread_mutex_init(&run.err_lock, NULL) != 0) {
		(void)snprintf(err, errlen, "pthread_mutex_init failed");
		return -1;
	}
	lock = true;
	rs = calloc(n, sizeof(*rs));
	if (rs == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		goto done;
	}
	if (requesters_open(rs, n, &run, sock, err, errlen) != 0)
		goto done;
	if (pthread_mutex_init(&run.gate_lock, NULL) != 0) {
		(void)snprintf(err, errlen, "pthread_mutex_init failed");
		goto done;
	}
	if (pthread_cond_init(&run.gate_cond, NULL) != 0) {
		(void)pthread_mutex_destroy(&run.gate_lock);
		(void)snprintf(err, errlen, "pthread_cond_init failed");
		goto done;
	}
	gate = true;
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&rs[i].thread, NULL, requester_main, &rs[i]) != 0) {
			(void)snprintf(err, errlen, "cannot start requester thread %u", i);
			/* The started ones see stop as soon as the gate opens. */
			atomic_store(&run.stop, true);
			break;
		}
		rs[i].started = true;
	}
	t0 = load_now_ns();
	run.t_start = t0 + (uint64_t)(spec->warmup_s * 1e9);
	run.t_end = run.t_start + (uint64_t)(spec->duration_s * 1e9);
	(void)pthread_mutex_lock(&run.gate_lock);
	run.gate_open = true;
	(void)pthread_cond_broadcast(&run.gate_cond);
	(void)pthread_mutex_unlock(&run.gate_lock);
	for (unsigned i = 0; i < n; i++)
		if (rs[i].started)
			(void)pthread_join(rs[i].thread, NULL);
	t1 = load_now_ns();
	if (atomic_load(&run.stop) && !run.failed)
		goto done; /* a thread did not start: err is set */
	if (run.failed) {
		(void)snprintf(err, errlen, "%s", run.err);
		goto done;
	}
	rc = gather(
	    rs, n, spec->count > 0 ? (double)(t1 - t0) / 1e9 : spec->duration_s, acc, err, errlen);
done:
	if (rs != NULL) {
		for (unsigned i = 0; i < n; i++) {
			if (rs[i].ctx_open)
				(void)nng_ctx_close(rs[i].ctx);
			if (rs[i].aio != NULL)
				nng_aio_free(rs[i].aio);
			wire_buf_free(&rs[i].w.scratch);
			free(rs[i].lat);
		}
		free(rs);
	}
	if (gate) {
		(void)pthread_cond_destroy(&run.gate_cond);
		(void)pthread_mutex_destroy(&run.gate_lock);
	}
	if (lock)
		(void)pthread_mutex_destroy(&run.err_lock);
	return rc;
}

int
load_call(nng_socket sock, nng_msg *msg, int timeout_ms, nng_msg **replyp)
{
	nng_ctx ctx;
	nng_aio *aio = NULL;
	bool ctx_open = false;
	int rv;

	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0)
		goto fail;
	if ((rv = nng_ctx_open(&ctx, sock)) != 0)
		goto fail;
	ctx_open = true;
	nng_aio_set_timeout(aio, timeout_ms);
	nng_aio_set_msg(aio, msg);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto fail;
	msg = NULL;
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto fail;
	*replyp = nng_aio_get_msg(aio);
	(void)nng_ctx_close(ctx);
	nng_aio_free(aio);
	return 0;
fail:
	if (msg != NULL)
		nng_msg_free(msg);
	if (ctx_open)
		(void)nng_ctx_close(ctx);
	if (aio != NULL)
		nng_aio_free(aio);
	return rv;
}
