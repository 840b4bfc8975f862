/*
 * workers.c: the worker threads and the bounded teardown of nng. See workers.h.
 *
 * Each worker thread owns one nng context and one aio and runs a synchronous loop
 * (receive, handle, send: calls.c); a persistent write waiting for its group commit is
 * parked and holds no worker (its reply is sent from the store's commit thread).
 * Shutdown: every worker is told to stop under its own lock, and a worker that is waiting
 * to receive has its receive cancelled under that same lock (so a cancel can never be lost
 * between the check and the receive); a worker in the middle of a request finishes it,
 * sends the reply, and then stops.
 */
#include "workers.h"

#include <errno.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "calls.h"
#include "channel.h"
#include "server_internal.h"

/* A reply that is not taken by its connection within this time is dropped. */
#define SEND_TIMEOUT_MS 5000
/* Most reply channels (contexts with a send in flight, plus those workers receive on). */
#define MAX_CHANNELS 1024

struct worker {
	struct server *srv;
	pthread_t thread;
	bool started;
	struct channel *ch; /* the channel this worker receives on */
	nng_aio *aio;       /* its receive aio */
	struct call *call;
	pthread_mutex_t lock;
	bool receiving; /* waiting in nng_ctx_recv (under lock) */
	bool stop;      /* told to stop (under lock) */
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		int rv;

		if (w->ch == NULL || w->call == NULL) {
			/* No channel or call could be made (out of memory): wait and try again. */
			usleep(10000);
			if (w->ch == NULL)
				w->ch = channels_take(&w->srv->channels);
			if (w->call == NULL)
				w->call = call_take(w->srv);
		}
		(void)pthread_mutex_lock(&w->lock);
		if (w->stop || w->ch == NULL || w->call == NULL) {
			bool stop = w->stop;

			(void)pthread_mutex_unlock(&w->lock);
			if (stop)
				break;
			continue;
		}
		w->receiving = true;
		nng_ctx_recv(channel_ctx(w->ch), w->aio);
		(void)pthread_mutex_unlock(&w->lock);
		nng_aio_wait(w->aio);
		(void)pthread_mutex_lock(&w->lock);
		w->receiving = false;
		(void)pthread_mutex_unlock(&w->lock);
		rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0)
			continue; /* cancelled (stop is checked above) or a transient error */
		call_serve(w->srv, &w->call, &w->ch, nng_aio_get_msg(w->aio));
	}
	if (w->ch != NULL)
		channels_put(w->ch);
	w->ch = NULL;
	if (w->call != NULL)
		call_put(w->srv, w->call);
	w->call = NULL;
	return NULL;
}

bool
workers_start(struct server *srv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n =
	    srv->cfg->workers > 0 ? (size_t)srv->cfg->workers : (size_t)(ncpu > 0 ? ncpu : 1) * 4;

	srv->workers = calloc(n, sizeof(*srv->workers));
	if (srv->workers == NULL)
		return false;
	if (channels_init(&srv->channels, srv->sock, MAX_CHANNELS, SEND_TIMEOUT_MS) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct worker *w = &srv->workers[i];
		int rv;

		w->srv = srv;
		if (pthread_mutex_init(&w->lock, NULL) != 0)
			return false;
		srv->n_workers = i + 1;
		w->call = call_take(srv);
		rv = w->call != NULL ? nng_aio_alloc(&w->aio, NULL, NULL) : NNG_ENOMEM;
		if (rv == 0 && (w->ch = channels_take(&srv->channels)) == NULL)
			rv = NNG_ENOMEM;
		if (rv != 0) {
			log_msg(&srv->log, LOG_ERROR, "cannot create worker %zu: %s", i,
			    nng_strerror(rv));
			return false;
		}
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_msg(&srv->log, LOG_ERROR, "cannot start worker thread %zu", i);
			return false;
		}
		w->started = true;
	}
	return true;
}

void
workers_stop(struct server *srv)
{
	for (size_t i = 0; i < srv->n_workers; i++) {
		struct worker *w = &srv->workers[i];

		(void)pthread_mutex_lock(&w->lock);
		w->stop = true;
		if (w->receiving)
			nng_aio_cancel(w->aio);
		(void)pthread_mutex_unlock(&w->lock);
	}
	for (size_t i = 0; i < srv->n_workers; i++)
		if (srv->workers[i].started)
			(void)pthread_join(srv->workers[i].thread, NULL);
}

static void
free_workers(struct server *srv)
{
	for (size_t i = 0; i < srv->n_workers; i++) {
		struct worker *w = &srv->workers[i];

		if (w->aio != NULL) {
			nng_aio_stop(w->aio);
			nng_aio_free(w->aio);
		}
		if (w->call != NULL)
			call_put(srv, w->call);
		w->call = NULL;
		(void)pthread_mutex_destroy(&w->lock);
	}
	free(srv->workers);
	srv->workers = NULL;
	srv->n_workers = 0;
}

struct teardown {
	struct server *srv;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void *
teardown_main(void *arg)
{
	struct teardown *td = arg;
	struct server *srv = td->srv;

	if (srv->sock_open)
		(void)nng_close(srv->sock);
	srv->sock_open = false;
	channels_fini(&srv->channels);
	free_workers(srv);
	(void)pthread_mutex_lock(&td->mu);
	td->done = true;
	(void)pthread_cond_signal(&td->cv);
	(void)pthread_mutex_unlock(&td->mu);
	return NULL;
}

/*
 * nng 1.5.2's nng_close can wait for ever on its reaper thread (tests/README.md, "nng
 * 1.5.2"; upstream nanomsg/nng#1543): seen in 113 of 200 drains of a plain nng REP server
 * under load. The drain must not depend on it: by now every reply that could be sent was,
 * and the stores are closed.
 */
bool
workers_teardown_bounded(struct server *srv)
{
	struct teardown *td = calloc(1, sizeof(*td));
	struct timespec until;
	pthread_t thread;
	bool done;

	if (td == NULL)
		return false;
	td->srv = srv;
	if (pthread_mutex_init(&td->mu, NULL) != 0) {
		free(td);
		return false;
	}
	if (pthread_cond_init(&td->cv, NULL) != 0 ||
	    pthread_create(&thread, NULL, teardown_main, td) != 0) {
		/* (a cond that failed to init is not destroyed: harmless on glibc) */
		(void)pthread_mutex_destroy(&td->mu);
		free(td);
		return false;
	}
	(void)clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SHUTDOWN_NNG_WAIT_MS / 1000;
	(void)pthread_mutex_lock(&td->mu);
	while (!td->done)
		if (pthread_cond_timedwait(&td->cv, &td->mu, &until) == ETIMEDOUT)
			break;
	done = td->done;
	(void)pthread_mutex_unlock(&td->mu);
	if (!done) {
		/* td stays allocated for the stuck thread (reachable from it). */
		(void)pthread_detach(thread);
		return false;
	}
	(void)pthread_join(thread, NULL);
	(void)pthread_cond_destroy(&td->cv);
	(void)pthread_mutex_destroy(&td->mu);
	free(td);
	return true;
}
