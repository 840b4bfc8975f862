/*
 * metrics.c: the /metrics, /healthz and /readyz endpoints. See metrics.h.
 *
 * Counters are relaxed atomics indexed by (method, status) and (method, latency bucket):
 * a request costs two or three uncontended-line increments and no lock. A scrape sums the
 * buckets into Prometheus' cumulative form; it may see a request counted in one series and
 * not yet in another, which the format allows (each series is monotonic on its own).
 */
#include "metrics.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* The methods of service Secrets, and "other" for a frame that named none. */
static const char *const method_names[] = {
    "Create", "Drop", "List", "Get", "Resolve", "Execute", "Rekey", "other"};
enum { N_METHODS = sizeof(method_names) / sizeof(method_names[0]), N_STATUS = 17 };

/* Request latency buckets, microseconds (and the +Inf bucket after them). */
static const uint64_t latency_us[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};
enum { N_LATENCY = sizeof(latency_us) / sizeof(latency_us[0]) + 1 };

struct metrics {
	struct metrics_source src;
	nng_http_server *http;
	bool started;
	atomic_uint_fast64_t requests[N_METHODS][N_STATUS];
	atomic_uint_fast64_t latency[N_METHODS][N_LATENCY]; /* per bucket, not cumulative */
	atomic_uint_fast64_t latency_sum_us[N_METHODS];
	atomic_int_fast64_t clients;
};

static size_t
method_index(const char *method)
{
	for (size_t i = 0; i + 1 < N_METHODS; i++)
		if (strcmp(method, method_names[i]) == 0)
			return i;
	return N_METHODS - 1;
}

void
metrics_request(struct metrics *m, const char *method, enum status st, uint64_t us)
{
	size_t mi;
	size_t b = 0;

	if (m == NULL)
		return;
	mi = method_index(method);
	while (b + 1 < N_LATENCY && us > latency_us[b])
		b++;
	atomic_fetch_add_explicit(
	    &m->requests[mi][(unsigned)st < N_STATUS ? (unsigned)st : 2], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->latency[mi][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->latency_sum_us[mi], us, memory_order_relaxed);
}

void
metrics_client(struct metrics *m, int delta)
{
	if (m != NULL)
		atomic_fetch_add_explicit(&m->clients, delta, memory_order_relaxed);
}

/* A growing text buffer; failed set once an allocation failed. */
struct text {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		char *nb = realloc(t->buf, t->cap * 2 + (size_t)n);

		if (nb == NULL) {
			t->failed = true;
			return;
		}
		t->buf = nb;
		t->cap = t->cap * 2 + (size_t)n;
	}
}

static uint64_t
load(atomic_uint_fast64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* A duration in microseconds as seconds, exactly (Prometheus reads decimals). */
static void
put_seconds(struct text *t, uint64_t us)
{
	put(t, "%llu.%06llu", (unsigned long long)(us / 1000000u),
	    (unsigned long long)(us % 1000000u));
}

static void
render_requests(struct metrics *m, struct text *t)
{
	put(t, "# HELP secretd_requests_total Requests answered, by method and status.\n"
	       "# TYPE secretd_requests_total counter\n");
	for (size_t i = 0; i < N_METHODS; i++)
		for (unsigned s = 0; s < N_STATUS; s++) {
			uint64_t v = load(&m->requests[i][s]);

			if (v > 0)
				put(t, "secretd_requests_total{method=\"%s\",status=\"%s\"} %llu\n",
				    method_names[i], status_str((enum status)s),
				    (unsigned long long)v);
		}
	put(t, "# HELP secretd_request_duration_seconds Time from a request's arrival to its "
	       "reply being handed to the transport.\n"
	       "# TYPE secretd_request_duration_seconds histogram\n");
	for (size_t i = 0; i < N_METHODS; i++) {
		uint64_t cum = 0;

		for (size_t b = 0; b < N_LATENCY; b++)
			cum += load(&m->latency[i][b]);
		if (cum == 0)
			continue;
		cum = 0;
		for (size_t b = 0; b < N_LATENCY; b++) {
			cum += load(&m->latency[i][b]);
			put(t, "secretd_request_duration_seconds_bucket{method=\"%s\",le=\"",
			    method_names[i]);
			if (b + 1 < N_LATENCY)
				put_seconds(t, latency_us[b]);
			else
				put(t, "+Inf");
			put(t, "\"} %llu\n", (unsigned long long)cum);
		}
		put(t, "secretd_request_duration_seconds_sum{method=\"%s\"} ", method_names[i]);
		put_seconds(t, load(&m->latency_sum_us[i]));
		put(t, "\nsecretd_request_duration_seconds_count{method=\"%s\"} %llu\n",
		    method_names[i], (unsigned long long)cum);
	}
}

/* A shared persistent store (etcd): how far this node's mirror is behind the cluster. Only
 * for such a store, so a one-machine scrape has no series that can only ever be 0. */
static void
render_mirror(struct metrics *m, struct text *t)
{
	struct store_health h;

	store_health(m->src.persistent, &h);
	if (!h.shared)
		return;
	put(t,
	    "# HELP secretd_mirror_lag_seconds How long this node's mirror of the shared store "
	    "has been behind the revision the cluster reported (0: current).\n"
	    "# TYPE secretd_mirror_lag_seconds gauge\nsecretd_mirror_lag_seconds ");
	put_seconds(t, h.lag_ms * 1000);
	put(t,
	    "\n# HELP secretd_mirror_revision_behind Revisions of the shared store this node "
	    "has not applied yet.\n# TYPE secretd_mirror_revision_behind gauge\n"
	    "secretd_mirror_revision_behind %llu\n",
	    (unsigned long long)(h.latest > h.revision ? h.latest - h.revision : 0));
}

static void
render_store(struct metrics *m, struct text *t)
{
	struct store_stats st;
	uint64_t cum = 0;

	put(t, "# HELP secretd_secrets Secrets held, by storage.\n# TYPE secretd_secrets gauge\n");
	put(t, "secretd_secrets{storage=\"memory\"} %zu\n", store_count(m->src.temporary));
	put(t, "secretd_secrets{storage=\"%s\"} %zu\n", store_name(m->src.persistent),
	    store_count(m->src.persistent));
	store_stats_get(m->src.persistent, &st);
	put(t, "# HELP secretd_group_commit_size Writes per group commit of the persistent "
	       "store.\n# TYPE secretd_group_commit_size histogram\n");
	for (size_t i = 0; i < STORE_GROUP_BUCKETS; i++) {
		if (i + 1 < STORE_GROUP_BUCKETS)
			put(t, "secretd_group_commit_size_bucket{le=\"%zu\"} %llu\n",
			    (size_t)1 << i, (unsigned long long)st.group_size_le[i]);
		else
			put(t, "secretd_group_commit_size_bucket{le=\"+Inf\"} %llu\n",
			    (unsigned long long)st.groups);
	}
	put(t, "secretd_group_commit_size_sum %llu\nsecretd_group_commit_size_count %llu\n",
	    (unsigned long long)st.group_writes, (unsigned long long)st.groups);
	put(t, "# HELP secretd_commit_duration_seconds Time of one group commit of the persistent "
	       "store, BEGIN to durable COMMIT (its fsync).\n"
	       "# TYPE secretd_commit_duration_seconds histogram\n");
	for (size_t i = 0; i < STORE_COMMIT_BUCKETS; i++) {
		cum = st.commit_us_le[i];
		put(t, "secretd_commit_duration_seconds_bucket{le=\"");
		if (i + 1 < STORE_COMMIT_BUCKETS)
			put_seconds(t, store_commit_bucket_us(i));
		else
			put(t, "+Inf");
		put(t, "\"} %llu\n",
		    (unsigned long long)(i + 1 < STORE_COMMIT_BUCKETS ? cum : st.groups));
	}
	put(t, "secretd_commit_duration_seconds_sum ");
	put_seconds(t, st.commit_us_sum);
	put(t, "\nsecretd_commit_duration_seconds_count %llu\n", (unsigned long long)st.groups);
	put(t,
	    "# HELP secretd_group_commits_failed_total Group commits rolled back.\n"
	    "# TYPE secretd_group_commits_failed_total counter\n"
	    "secretd_group_commits_failed_total %llu\n",
	    (unsigned long long)st.failed_groups);
	put(t,
	    "# HELP secretd_writes_queued Persistent writes waiting for a group commit.\n"
	    "# TYPE secretd_writes_queued gauge\nsecretd_writes_queued %llu\n",
	    (unsigned long long)st.queued);
	render_mirror(m, t);
}

enum status
metrics_render(struct metrics *m, char **bufp, size_t *lenp)
{
	struct text t = {malloc(8192), 0, 8192, false};
	int_fast64_t clients = atomic_load_explicit(&m->clients, memory_order_relaxed);

	if (t.buf == NULL)
		return ST_RESOURCE_EXHAUSTED;
	render_requests(m, &t);
	render_store(m, &t);
	put(&t,
	    "# HELP secretd_connected_clients Client connections open now.\n"
	    "# TYPE secretd_connected_clients gauge\nsecretd_connected_clients %lld\n",
	    (long long)(clients > 0 ? clients : 0));
	put(&t,
	    "# HELP secretd_ready Whether the server serves and can write (as /readyz).\n"
	    "# TYPE secretd_ready gauge\nsecretd_ready %d\n",
	    m->src.serving(m->src.arg) && store_writable(m->src.persistent) ? 1 : 0);
	if (t.failed) {
		free(t.buf);
		return ST_RESOURCE_EXHAUSTED;
	}
	*bufp = t.buf;
	*lenp = t.len;
	return ST_OK;
}

/* Finish an HTTP handler's aio with a plain-text response. */
static void
respond(nng_aio *aio, uint16_t code, const char *type, const char *body, size_t len)
{
	nng_http_res *res = NULL;
	int rv = nng_http_res_alloc(&res);

	if (rv == 0)
		rv = nng_http_res_set_status(res, code);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Type", type);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Cache-Control", "no-store");
	if (rv == 0)
		rv = nng_http_res_copy_data(res, body, len);
	if (rv != 0) {
		if (res != NULL)
			nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static struct metrics *
handler_metrics(nng_aio *aio)
{
	return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void
serve_metrics(nng_aio *aio)
{
	struct metrics *m = handler_metrics(aio);
	char *buf = NULL;
	size_t len = 0;

	if (metrics_render(m, &buf, &len) != ST_OK) {
		respond(aio, 500, "text/plain", "out of memory\n", 14);
		return;
	}
	respond(aio, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
	free(buf);
}

static void
serve_healthz(nng_aio *aio)
{
	struct metrics *m = handler_metrics(aio);

	if (m->src.serving(m->src.arg))
		respond(aio, 200, "text/plain", "ok\n", 3);
	else
		respond(aio, 503, "text/plain", "not serving\n", 12);
}

static void
serve_readyz(nng_aio *aio)
{
	struct metrics *m = handler_metrics(aio);

	if (!m->src.serving(m->src.arg))
		respond(aio, 503, "text/plain", "not serving\n", 12);
	else if (!store_writable(m->src.persistent))
		respond(aio, 503, "text/plain", "persistent store cannot be written\n", 35);
	else
		respond(aio, 200, "text/plain", "ready\n", 6);
}

static int
add_handler(struct metrics *m, const char *path, void (*fn)(nng_aio *))
{
	nng_http_handler *h = NULL;
	int rv = nng_http_handler_alloc(&h, path, fn);

	if (rv == 0)
		rv = nng_http_handler_set_data(h, m, NULL);
	if (rv == 0)
		rv = nng_http_server_add_handler(m->http, h);
	if (rv != 0) {
		if (h != NULL)
			nng_http_handler_free(h);
		return rv;
	}
	return 0;
}

enum status
metrics_open(const char *url, const struct metrics_source *src, struct metrics **mp, char *err,
    size_t err_len)
{
	struct metrics *m = NULL;
	nng_url *u = NULL;
	enum status st = ST_UNAVAILABLE;
	int rv;

	if (strncmp(url, "http://", 7) != 0) {
		(void)snprintf(err, err_len, "--metrics-listen %s: give http://HOST:PORT", url);
		return ST_INVALID_ARGUMENT;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		(void)snprintf(err, err_len, "out of memory");
		return ST_RESOURCE_EXHAUSTED;
	}
	m->src = *src;
	rv = nng_url_parse(&u, url);
	if (rv != 0) {
		(void)snprintf(err, err_len, "--metrics-listen %s: %s", url, nng_strerror(rv));
		st = ST_INVALID_ARGUMENT;
		goto fail;
	}
	rv = nng_http_server_hold(&m->http, u);
	if (rv == 0)
		rv = add_handler(m, "/metrics", serve_metrics);
	if (rv == 0)
		rv = add_handler(m, "/healthz", serve_healthz);
	if (rv == 0)
		rv = add_handler(m, "/readyz", serve_readyz);
	if (rv == 0)
		rv = nng_http_server_start(m->http);
	if (rv != 0) {
		(void)snprintf(err, err_len, "--metrics-listen %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	m->started = true;
	nng_url_free(u);
	*mp = m;
	return ST_OK;
fail:
	if (u != NULL)
		nng_url_free(u);
	metrics_close(m);
	return st;
}

void
metrics_close(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m->http != NULL) {
		if (m->started)
			nng_http_server_stop(m->http);
		/* The server frees the handlers registered with it. */
		nng_http_server_release(m->http);
	}
	free(m);
}
