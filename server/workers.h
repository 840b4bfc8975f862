/*
 * workers.h: secretd's worker threads, each receiving on its own nng context and serving
 * one request at a time (calls.c), and the teardown of nng at shutdown.
 *
 * What it does not do: no listening (listen.c), no request handling (calls.c, service.c).
 *
 * Thread safety: called by the main thread of server_run only.
 */
#ifndef SECRETD_SERVER_WORKERS_H
#define SECRETD_SERVER_WORKERS_H

#include <stdbool.h>

struct server;

/* Longest the shutdown waits for nng's own teardown (nng_close and the contexts). */
#define SHUTDOWN_NNG_WAIT_MS 2000

/* Open the reply channels on srv->sock and start srv->cfg->workers threads (0: 4 per core)
 * into srv->workers. Logs and returns false on failure; workers_stop and
 * workers_teardown_bounded then release what was started. */
bool workers_start(struct server *srv);

/* Tell every worker to stop, cancel idle receives, and wait for in-flight requests.
 * Safe when workers_start failed part-way or never ran. */
void workers_stop(struct server *srv);

/* Close srv->sock, the reply channels and the workers' aios on a thread of their own,
 * waiting at most SHUTDOWN_NNG_WAIT_MS. Returns false when the wait ran out: the thread
 * and what it holds (srv included) are then left to the process exit. */
bool workers_teardown_bounded(struct server *srv);

#endif
