/*
 * route.c: where a call goes and how it waits: the choice of a handle's address for each
 * attempt (the preferred node while it is connected, another when it is gone), the wait
 * for a reply in slices that watch the connection (withdraw to another node, redial a
 * dialer nng gave up on), the ipc socket file's grace period, and the count of calls in a
 * handle that secretd_client_close waits for.
 *
 * Not here: packing and unpacking (transport.c), the connections themselves (conn.c).
 *
 * Thread safety: many calls at once on one handle; the preferred address is an atomic,
 * each call's waiter is its own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "client.h"

/* Milliseconds left until deadline, or NNG_DURATION_INFINITE; 0 when it has passed. */
nng_duration
client_remaining(int timeout_ms, nng_time start)
{
	nng_time now;

	if (timeout_ms < 0)
		return NNG_DURATION_INFINITE;
	now = nng_clock();
	if (now - start >= (nng_time)timeout_ms)
		return 0;
	return (nng_duration)((nng_time)timeout_ms - (now - start));
}

/*
 * Before the first connection to an ipc:// server, give its socket file a short grace
 * period to appear (a server that is starting), then fail UNAVAILABLE at once instead of
 * waiting out the whole timeout for a server that is not running.
 */
#define CLIENT_IPC_GRACE_MS 1000

secretd_status
client_wait_ipc(secretd_client *client, int timeout_ms, secretd_error *err)
{
	nng_time start = nng_clock();
	nng_duration grace = CLIENT_IPC_GRACE_MS;
	struct stat sb;

	if (client->ipc_path == NULL || atomic_load(&client->conns[0]->pipes) > 0)
		return SECRETD_OK;
	if (timeout_ms >= 0 && timeout_ms < grace)
		grace = timeout_ms;
	while (stat(client->ipc_path, &sb) != 0 && errno == ENOENT) {
		if (nng_clock() - start >= (nng_time)grace)
			return client_fail(err, SECRETD_UNAVAILABLE,
			    "cannot connect to secretd at %s: no such socket (is secretd "
			    "running?)",
			    client->url);
		nng_msleep(10);
	}
	return SECRETD_OK;
}

bool
client_enter(secretd_client *client)
{
	bool ok;

	(void)pthread_mutex_lock(&client->mu);
	ok = !client->closing;
	if (ok)
		client->active++;
	(void)pthread_mutex_unlock(&client->mu);
	return ok;
}

void
client_leave(secretd_client *client)
{
	(void)pthread_mutex_lock(&client->mu);
	client->active--;
	if (client->closing && client->active == 0)
		(void)pthread_cond_broadcast(&client->idle);
	(void)pthread_mutex_unlock(&client->mu);
}

/* How often a call that waits looks at its connection (failover, redial). */
#define CLIENT_WATCH_MS 20

/* How long a call waits for the preferred address to connect before it takes another
 * (a new handle's dials race; the first address should win while it is up). */
#define CLIENT_PREFER_WAIT_MS 250


void
client_waiter_cb(void *arg)
{
	struct client_waiter *w = arg;

	(void)pthread_mutex_lock(&w->mu);
	w->done = true;
	(void)pthread_cond_broadcast(&w->cv);
	(void)pthread_mutex_unlock(&w->mu);
}

bool
client_waiter_init(struct client_waiter *w)
{
	pthread_condattr_t attr;
	bool ok;

	w->done = false;
	if (pthread_condattr_init(&attr) != 0)
		return false;
	ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
	     pthread_cond_init(&w->cv, &attr) == 0;
	(void)pthread_condattr_destroy(&attr);
	if (ok && pthread_mutex_init(&w->mu, NULL) != 0) {
		(void)pthread_cond_destroy(&w->cv);
		ok = false;
	}
	return ok;
}

void
client_waiter_fini(struct client_waiter *w)
{
	(void)pthread_cond_destroy(&w->cv);
	(void)pthread_mutex_destroy(&w->mu);
}

/* Start the next operation on the waiter's aio (before nng_ctx_send/recv). */
void
client_waiter_arm(struct client_waiter *w)
{
	(void)pthread_mutex_lock(&w->mu);
	w->done = false;
	(void)pthread_mutex_unlock(&w->mu);
}

/* Wait up to ms for the aio to complete; true once it has. */
bool
client_waiter_wait(struct client_waiter *w, nng_duration ms)
{
	struct timespec until;
	bool done;

	(void)clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	(void)pthread_mutex_lock(&w->mu);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
	done = w->done;
	(void)pthread_mutex_unlock(&w->mu);
	return done;
}

/* A connected address for the next attempt, the preferred one first; one not yet tried in
 * this call before one that was. -1 when none is connected. */
static int
client_connected(secretd_client *client, size_t pref, uint32_t tried, bool others)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < client->n_conns; k++) {
			size_t i = (pref + k) % client->n_conns;
			bool was_tried = (tried >> i) & 1u;

			if (!others && i != pref)
				continue;
			if (was_tried == (pass == 0))
				continue;
			if (atomic_load(&client->conns[i]->pipes) > 0)
				return (int)i;
		}
	}
	return -1;
}

/*
 * Choose the address for the next attempt of a call. One address: that one (its socket
 * holds the request until it connects). A list: the preferred address while it is
 * connected, else another that is (a cluster node that died is left for the next),
 * waiting within the call's timeout for one to connect and redialling any whose dialer
 * may have given up (client_conn_redial).
 */
secretd_status
client_pick(secretd_client *client, int timeout_ms, nng_time start, uint32_t tried,
    size_t *idxp, secretd_error *err)
{
	size_t pref = atomic_load(&client->preferred);
	int i;

	if (client->n_conns == 1) {
		*idxp = 0;
		return SECRETD_OK;
	}
	for (;;) {
		bool others = ((tried >> pref) & 1u) ||
		              nng_clock() - start >= CLIENT_PREFER_WAIT_MS;

		if ((i = client_connected(client, pref, tried, others)) >= 0)
			break;
		if (client_remaining(timeout_ms, start) == 0)
			return client_fail(err, SECRETD_UNAVAILABLE,
			    "cannot connect to secretd at %s (no connection within %d ms)",
			    client->url, timeout_ms);
		for (size_t k = 0; k < client->n_conns; k++)
			client_conn_redial(client->conns[k]);
		nng_msleep(5);
	}
	*idxp = (size_t)i;
	return SECRETD_OK;
}

/*
 * Wait for the aio of an attempt on conn (send or receive). Returns true when it
 * completed; false when conn lost its connection while another address of the list is
 * connected: the attempt is then withdrawn (cancelled, and waited for) and the call moves
 * on. A connection missing for CLIENT_REDIAL_MS gets a new dialer meanwhile.
 */
bool
client_watch(secretd_client *client, struct client_conn *conn, size_t idx, uint32_t tried,
    nng_aio *aio, struct client_waiter *w)
{
	nng_time lost = 0;

	while (!client_waiter_wait(w, CLIENT_WATCH_MS)) {
		nng_time now = nng_clock();

		if (atomic_load(&conn->pipes) > 0) {
			lost = 0;
			continue;
		}
		if (lost == 0)
			lost = now;
		if (client->n_conns > 1 &&
		    client_connected(client, idx, tried | (1u << idx), true) >= 0) {
			nng_aio_cancel(aio);
			while (!client_waiter_wait(w, 1000))
				;
			/* The reply may have won the race with the cancel: then it stands. */
			return nng_aio_result(aio) == 0;
		}
		if (now - lost >= CLIENT_REDIAL_MS)
			client_conn_redial(conn);
	}
	return true;
}
