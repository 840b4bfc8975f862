/*
 * metrics.h: figures an operator can scrape (SPEC section 11). An HTTP listener on nng's
 * own HTTP server (`--metrics-listen http://HOST:PORT`, off by default) serves
 *   /metrics  Prometheus' text exposition format (version 0.0.4): requests by method and
 *             status, latency histograms by method, secrets per storage, group-commit sizes
 *             and commit (fsync) latency, writes queued, connected clients;
 *   /healthz  200 "ok" while the server serves requests;
 *   /readyz   200 "ready" while it serves and its persistent store can take a write, else
 *             503 with the reason.
 *
 * What it does not do: it never sees a secret name or value: callers hand it a method
 * name (one of a fixed set), a status and a time; gauges come from store_count and
 * store_stats. It does not decide readiness itself: "able to write" is store_writable()
 * of the persistent store, which each backend answers through its ops table (sqlcipher:
 * not opened read-only; an etcd backend: quorum reachable), so a new backend plugs in
 * there and nothing changes here.
 *
 * Thread safety: metrics_request and metrics_client may be called from any thread at once
 * (relaxed atomic counters, no lock); NULL is accepted and does nothing, so a server
 * without a listener pays one branch per request. metrics_open and metrics_close on one
 * thread, with no other call in progress for close.
 */
#ifndef SECRETD_SERVER_METRICS_H
#define SECRETD_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct store;
struct metrics;

/* Where the gauges come from (all borrowed; they must outlive the metrics). */
struct metrics_source {
	struct store *temporary;
	struct store *persistent;
	/* Whether the server is serving requests now (false while starting or draining). */
	bool (*serving)(void *arg);
	void *arg;
};

/*
 * Start the HTTP listener on url ("http://127.0.0.1:9464"). Returns ST_OK and *mp (close
 * with metrics_close), or ST_INVALID_ARGUMENT / ST_UNAVAILABLE with a message in err.
 */
enum status metrics_open(const char *url, const struct metrics_source *src, struct metrics **mp,
    char *err, size_t err_len);

/* Stop the listener and free. NULL-safe. */
void metrics_close(struct metrics *m);

/* Count one call of method ("Create", ..., "" when undecodable) that ended with st after
 * us microseconds. */
void metrics_request(struct metrics *m, const char *method, enum status st, uint64_t us);

/* A client connection came (+1) or went (-1). */
void metrics_client(struct metrics *m, int delta);

/*
 * Render the exposition text into a new buffer: ST_OK with *bufp (caller frees with free)
 * and *lenp, or ST_RESOURCE_EXHAUSTED. Used by the /metrics handler and the tests.
 */
enum status metrics_render(struct metrics *m, char **bufp, size_t *lenp);

#endif
