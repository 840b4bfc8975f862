/*
 * calls.h: one request's life in the server process (calls.c): a call object holds what a
 * request needs beyond its worker's part in it (caller, arena, call info, reply, channel),
 * so that a request parked on a durable write (service_handle_async) holds no worker. A
 * worker owns one call object; a parked one is owned by its completion, which hands it back
 * to the pool (struct server's parking).
 *
 * What it does not do: no sockets or listeners (listen.c), no workers' threads (server.c).
 *
 * Thread safety: every function may be called from any thread; calls_free only when no call
 * is in progress.
 */
#ifndef SECRETD_SERVER_CALLS_H
#define SECRETD_SERVER_CALLS_H

#include <nng/nng.h>

#include "service.h"

struct server;
struct call;
struct channel;

/* A call object: one from the pool, or a new one; NULL when out of memory. */
struct call *call_take(struct server *srv);

/* Give a call object back (its arena already reset). */
void call_put(struct server *srv, struct call *c);

/* Free every pooled call object (at exit, once nothing is parked). */
void calls_free(struct server *srv);

/* Wait until no call is parked (after the workers stopped, before the channels go). */
void calls_wait_parked(struct server *srv);

/*
 * Handle one received request (msg, taken) with the worker's call object *callp and the
 * channel it came on, *chp, and send its reply, or park it until its write is durable. When
 * the call is parked, or its channel went with the reply, *callp and *chp are replaced by
 * new ones (NULL when none could be had: the worker retries).
 */
void call_serve(struct server *srv, struct call **callp, struct channel **chp, nng_msg *msg);

/* c->peer, formatted on first use: "uid:N" on ipc, "tcp:A.B.C.D:PORT" on tcp. */
const char *call_describe_peer(struct caller *c);

#endif
