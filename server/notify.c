/*
 * notify.c: epoch, revision and the notify socket. See notify.h for the contract and the
 * message format.
 *
 * What it does not do: it never sees a value (the store observer hands it a name only) and
 * never puts a name on the wire, only its keyed digest. It does not decide who may reach
 * the socket: listen.c applies the main listener's rules.
 *
 * Thread safety: rev is raised and every message is sent under n->mu, so messages leave in
 * revision order; readers of rev (every reply) take no lock. The heartbeat thread sleeps on
 * n->cv and is stopped by notify_close.
 */
#include "notify.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "handlers.h"
#include "listen.h"
#include "log.h"
#include "pb.h"
#include "siphash.h"

struct notify {
	struct logger *log;
	uint64_t epoch;
	uint8_t key[NOTIFY_KEY_LEN];
	_Atomic uint64_t rev;
	pthread_mutex_t mu; /* rev increments, sends, stop */
	pthread_cond_t cv;
	nng_socket sock;
	bool sock_open;
	bool stop;
	bool hb_started;
	pthread_t hb;
};

static void
store_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

enum status
notify_open(struct logger *log, struct notify **np)
{
	struct notify *n = calloc(1, sizeof(*n));

	*np = NULL;
	if (n == NULL)
		return ST_INTERNAL;
	n->log = log;
	atomic_init(&n->rev, 0);
	/* A zero epoch means "none" to a client: draw again in the (2^-64) case. */
	while (n->epoch == 0)
		if (getrandom(&n->epoch, sizeof(n->epoch), 0) != sizeof(n->epoch))
			goto fail;
	if (getrandom(n->key, sizeof(n->key), 0) != sizeof(n->key))
		goto fail;
	if (pthread_mutex_init(&n->mu, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&n->cv, NULL) != 0) {
		(void)pthread_mutex_destroy(&n->mu);
		goto fail;
	}
	*np = n;
	return ST_OK;
fail:
	explicit_bzero(n, sizeof(*n));
	free(n);
	return ST_INTERNAL;
}

bool
notify_default_url(const char *main_url, char *buf, size_t len)
{
	size_t n;
	int w;

	if (strncmp(main_url, "ipc://", 6) != 0)
		return false;
	n = strlen(main_url);
	if (n > 5 && strcmp(main_url + n - 5, ".sock") == 0)
		w = snprintf(buf, len, "%.*s.notify.sock", (int)(n - 5), main_url);
	else
		w = snprintf(buf, len, "%s.notify", main_url);
	return w > 0 && (size_t)w < len;
}

bool
notify_listen(struct notify *n, struct server *srv, const char *url)
{
	int rv;

	if (!n->sock_open) {
		rv = nng_pub0_open(&n->sock);
		if (rv != 0) {
			log_msg(n->log, LOG_ERROR, "cannot open the notify socket: %s",
			    nng_strerror(rv));
			return false;
		}
		n->sock_open = true;
	}
	return listen_socket(srv, n->sock, url, "notifications");
}

/* Send one message of kind under n->mu (held by the caller). digest is for invalidations. */
static void
send_locked(struct notify *n, int kind, uint64_t rev, uint64_t digest)
{
	nng_msg *msg = NULL;
	size_t len = NOTIFY_MSG_LEN;
	uint8_t *p;

	if (!n->sock_open || nng_msg_alloc(&msg, len) != 0)
		return;
	p = nng_msg_body(msg);
	memset(p, 0, len);
	memcpy(p, "SDN\x01", 4);
	p[4] = (uint8_t)kind;
	store_le64(p + 8, n->epoch);
	store_le64(p + 16, rev);
	store_le64(p + 24, notify_now_us());
	store_le64(p + 32, digest);
	/* pub0 never blocks: a full subscriber queue loses its oldest message, which the
	 * subscriber detects from the revisions. */
	if (nng_sendmsg(n->sock, msg, NNG_FLAG_NONBLOCK) != 0)
		nng_msg_free(msg);
}

void
notify_changed(void *arg, const char *name)
{
	struct notify *n = arg;
	uint64_t digest = sd_siphash24_key(n->key, name, strlen(name));
	uint64_t rev;

	(void)pthread_mutex_lock(&n->mu);
	rev = atomic_load(&n->rev) + 1;
	atomic_store(&n->rev, rev);
	send_locked(n, NOTIFY_MSG_INVALIDATION, rev, digest);
	(void)pthread_mutex_unlock(&n->mu);
}

uint64_t
notify_now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
notify_epoch(const struct notify *n)
{
	return n != NULL ? n->epoch : 0;
}

uint64_t
notify_rev(const struct notify *n)
{
	return n != NULL ? atomic_load(&((struct notify *)n)->rev) : 0;
}

static void *
heartbeat_main(void *arg)
{
	struct notify *n = arg;
	struct timespec until;

	(void)pthread_mutex_lock(&n->mu);
	while (!n->stop) {
		send_locked(n, NOTIFY_MSG_HEARTBEAT, atomic_load(&n->rev), 0);
		(void)clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += NOTIFY_HEARTBEAT_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!n->stop && pthread_cond_timedwait(&n->cv, &n->mu, &until) != ETIMEDOUT)
			;
	}
	(void)pthread_mutex_unlock(&n->mu);
	return NULL;
}

bool
notify_start(struct notify *n)
{
	pthread_condattr_t attr;
	bool ok = false;

	if (!n->sock_open)
		return true;
	/* The wait is on the monotonic clock, so a clock step cannot stall heartbeats. */
	if (pthread_condattr_init(&attr) != 0)
		goto done;
	(void)pthread_cond_destroy(&n->cv);
	ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
	     pthread_cond_init(&n->cv, &attr) == 0;
	(void)pthread_condattr_destroy(&attr);
	if (ok && pthread_create(&n->hb, NULL, heartbeat_main, n) != 0)
		ok = false;
	n->hb_started = ok;
done:
	if (!ok)
		log_msg(n->log, LOG_ERROR, "cannot start the notify heartbeat");
	return ok;
}

void
notify_close(struct notify *n)
{
	if (n == NULL)
		return;
	if (n->hb_started) {
		(void)pthread_mutex_lock(&n->mu);
		n->stop = true;
		(void)pthread_cond_signal(&n->cv);
		(void)pthread_mutex_unlock(&n->mu);
		(void)pthread_join(n->hb, NULL);
	}
	/* Only the main socket's workers are stopped by now; nothing else sends here. */
	if (n->sock_open)
		(void)nng_close(n->sock);
	(void)pthread_cond_destroy(&n->cv);
	(void)pthread_mutex_destroy(&n->mu);
	explicit_bzero(n, sizeof(*n));
	free(n);
}

enum status
handle_subscribe(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	Secretd__V1__SubscribeReply *rep = (Secretd__V1__SubscribeReply *)out;
	struct notify *n = rq->svc->notify;
	uint8_t *key;

	(void)in;
	/* Any authenticated caller (service.c refuses ROLE_NONE before handlers run) may
	 * List every name, so it may have the key that hides names from everyone else. */
	if (rq->caller->role != ROLE_READER && rq->caller->role != ROLE_ADMIN)
		return outcome_set(&rq->info->outcome, ST_PERMISSION_DENIED, REASON_ROLE,
		    "subscribing needs the reader or admin role");
	if (n == NULL)
		return outcome_set(&rq->info->outcome, ST_UNIMPLEMENTED, REASON_NO_NOTIFY,
		    "this server has no notify socket");
	key = arena_alloc(rq->arena, NOTIFY_KEY_LEN);
	if (key == NULL)
		return outcome_no_memory(&rq->info->outcome);
	memcpy(key, n->key, NOTIFY_KEY_LEN);
	rep->epoch = n->epoch;
	/* Time first: the state at rev was current at some moment at or after that time. */
	rep->server_time_us = notify_now_us();
	rep->rev = notify_rev(n);
	rep->name_key.data = key;
	rep->name_key.len = NOTIFY_KEY_LEN;
	rq->info->outcome.status = ST_OK;
	rq->info->outcome.reason = "";
	memcpy(rq->info->outcome.message, "OK", 3);
	return ST_OK;
}
