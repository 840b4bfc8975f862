/*
 * cache_sub.c: the cache's notify subscriber: an nng sub0 socket dialled to the server's
 * notify socket, one thread that applies its messages and syncs with the Subscribe rpc, and
 * the socket's own open and close (kept apart from the request socket of client.c, so that
 * each follows its own rules about nng 1.5.2's close). The rules are in cache.h.
 *
 * Thread safety: the socket is read by the subscriber thread only; the pipe callbacks run
 * on nng's threads and take c->mu; no nng or rpc call is made under c->mu.
 */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_internal.h"

static void
subscribe_closure(const ProtobufCMessage *msg, void *data)
{
	struct client_call *call = data;
	const Secretd__V1__SubscribeReply *reply = (const void *)msg;
	Secretd__V1__SubscribeReply *out = call->target;

	if (reply == NULL)
		return;
	if (reply->name_key.len != NOTIFY_KEY_LEN || reply->epoch == 0) {
		(void)client_fail(&call->err, SECRETD_INTERNAL, "bad reply to Subscribe");
		return;
	}
	out->epoch = reply->epoch;
	out->rev = reply->rev;
	out->server_time_us = reply->server_time_us;
	memcpy(out->name_key.data, reply->name_key.data, NOTIFY_KEY_LEN);
}

/* Ask the server where it stands and start applying messages from there. */
static void
sync_now(struct client_cache *c)
{
	Secretd__V1__SubscribeRequest req = SECRETD__V1__SUBSCRIBE_REQUEST__INIT;
	Secretd__V1__SubscribeReply got = SECRETD__V1__SUBSCRIBE_REPLY__INIT;
	uint8_t key[NOTIFY_KEY_LEN];
	struct client_call call;
	uint64_t sent, lost;

	(void)pthread_mutex_lock(&c->mu);
	lost = c->lost;
	(void)pthread_mutex_unlock(&c->mu);
	got.name_key.data = key;
	client_call_init(&call, (int)(c->bound_us / 1000), &got);
	sent = cache_now_us();
	secretd__v1__secrets__subscribe(client_service(c->client), &req,
	    (Secretd__V1__SubscribeReply_Closure)subscribe_closure, &call);
	if (call.err.status != SECRETD_OK)
		goto done;
	(void)pthread_mutex_lock(&c->mu);
	if (c->epoch != got.epoch)
		cache_wipe_all(c);
	c->epoch = got.epoch;
	memcpy(c->name_key, key, NOTIFY_KEY_LEN);
	c->have_key = true;
	c->applied = got.rev;
	c->ring_base = got.rev;
	memset(c->ring_rev, 0, sizeof(c->ring_rev));
	c->sync_client_us = sent;
	c->sync_server_us = got.server_time_us;
	c->fresh_us = sent;
	c->heard = false;
	/* Only a subscriber connected all along sees what comes next. */
	c->synced = atomic_load(&c->sub_pipe) != 0 && c->lost == lost;
	(void)pthread_mutex_unlock(&c->mu);
done:
	explicit_bzero(key, sizeof(key));
}

static void sub_redial(struct client_cache *c);

/*
 * A connection that has carried nothing for the whole bound since a sync (heartbeats come
 * every 250 ms) is one the server does not send to: close it, so that the dialer connects
 * again (and to a replaced listener) instead of syncing over it for ever.
 */
static void
sub_drop_pipe(struct client_cache *c)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;

	p.id = atomic_load(&c->sub_pipe);
	if (p.id != 0)
		(void)nng_pipe_close(p);
}

static void *
sub_main(void *arg)
{
	struct client_cache *c = arg;
	uint64_t next_sync = 0;

	while (!atomic_load(&c->stop)) {
		nng_msg *msg = NULL;
		bool synced, deaf;
		int rv;

		(void)pthread_mutex_lock(&c->mu);
		synced = c->synced;
		(void)pthread_mutex_unlock(&c->mu);
		if (!synced && atomic_load(&c->sub_pipe) != 0 && cache_now_us() >= next_sync) {
			sync_now(c);
			(void)pthread_mutex_lock(&c->mu);
			/* A refused or failed sync is retried, but not in a tight loop. */
			next_sync = c->synced ? 0 : cache_now_us() + SYNC_RETRY_US;
			(void)pthread_mutex_unlock(&c->mu);
		}
		rv = nng_recvmsg(c->sub, &msg, 0);
		if (rv == NNG_ECLOSED)
			break;
		sub_redial(c);
		deaf = false;
		(void)pthread_mutex_lock(&c->mu);
		if (rv == 0)
			cache_apply_message(c, nng_msg_body(msg), nng_msg_len(msg));
		if (c->synced && cache_now_us() > c->fresh_us + c->bound_us) {
			deaf = !c->heard;
			cache_flush(c); /* no heartbeat within the bound */
		}
		(void)pthread_mutex_unlock(&c->mu);
		if (msg != NULL)
			nng_msg_free(msg);
		if (deaf)
			sub_drop_pipe(c);
	}
	return NULL;
}

/* Runs on nng's threads: a lost notify connection may have lost messages. */
static void
sub_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct client_cache *c = arg;
	uint32_t id = nng_pipe_id(pipe);

	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_store(&c->sub_pipe, id);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		(void)atomic_compare_exchange_strong(&c->sub_pipe, &id, 0);
		(void)pthread_mutex_lock(&c->mu);
		c->lost++;
		cache_flush(c);
		(void)pthread_mutex_unlock(&c->mu);
	}
}

/* A dialer for the notify URL on the subscriber socket, started without waiting. */
static secretd_status
sub_dial(struct client_cache *c, nng_dialer *dp, secretd_error *err)
{
	nng_dialer d;
	secretd_status st;
	int rv;

	if ((rv = nng_dialer_create(&d, c->sub, c->notify_url)) != 0)
		return client_fail(err, SECRETD_INVALID_ARGUMENT, "bad notify URL %s: %s",
		    c->notify_url, nng_strerror(rv));
	if (strncmp(c->notify_url, "tls+", 4) == 0) {
		/* The first tls+tcp:// server address's configuration (its CA and client
		 * certificate) serves the notify socket too. */
		nng_tls_config *tls = NULL;

		for (size_t i = 0; i < c->client->n_conns && tls == NULL; i++)
			tls = c->client->conns[i]->tls;
		if (tls == NULL) {
			st = client_fail(err, SECRETD_INVALID_ARGUMENT,
			    "notify URL %s needs a tls+tcp:// server URL with its CA",
			    c->notify_url);
			goto fail;
		}
		if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls)) != 0) {
			st = client_nng_fail(err, rv, c->notify_url, "cannot set up TLS for");
			goto fail;
		}
	}
	if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
		st = client_nng_fail(err, rv, c->notify_url, "cannot dial");
		goto fail;
	}
	*dp = d;
	return SECRETD_OK;
fail:
	(void)nng_dialer_close(d); /* never started: nothing can arrive through it */
	return st;
}

/* With no connection for CLIENT_REDIAL_MS, a new dialer replaces the old (which has no
 * pipe, so nothing can arrive through it while it closes). Subscriber thread only. */
static void
sub_redial(struct client_cache *c)
{
	uint64_t now = cache_now_us();
	nng_dialer d;

	if (atomic_load(&c->sub_pipe) != 0) {
		c->dialed_us = now;
		return;
	}
	if (now - c->dialed_us < (uint64_t)CLIENT_REDIAL_MS * 1000u)
		return;
	c->dialed_us = now;
	if (sub_dial(c, &d, NULL) == SECRETD_OK) {
		(void)nng_dialer_close(c->dialer);
		c->dialer = d;
	}
}

/* The subscriber socket: open, subscribe to everything, dial without waiting. */
secretd_status
cache_sub_open(struct client_cache *c, secretd_error *err)
{
	secretd_status st;
	int rv;

	if ((rv = nng_sub0_open(&c->sub)) != 0)
		return client_nng_fail(err, rv, c->notify_url, "cannot open a subscriber for");
	c->sub_open = true;
	if ((rv = nng_socket_set(c->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
	    (rv = nng_socket_set_ms(c->sub, NNG_OPT_RECVTIMEO, SUB_POLL_MS)) != 0 ||
	    /* Redial soon and keep redialling soon: nng's back-off could otherwise grow to
	     * seconds over a server restart, and the cache serves nothing until it is back. */
	    (rv = nng_socket_set_ms(c->sub, NNG_OPT_RECONNMINT, 20)) != 0 ||
	    (rv = nng_socket_set_ms(c->sub, NNG_OPT_RECONNMAXT, 250)) != 0 ||
	    (rv = nng_socket_set_size(c->sub, NNG_OPT_RECVMAXSZ, 4096)) != 0 ||
	    (rv = nng_pipe_notify(c->sub, NNG_PIPE_EV_ADD_POST, sub_pipe_event, c)) != 0 ||
	    (rv = nng_pipe_notify(c->sub, NNG_PIPE_EV_REM_POST, sub_pipe_event, c)) != 0)
		return client_nng_fail(err, rv, c->notify_url, "cannot set up the subscriber for");
	if ((st = sub_dial(c, &c->dialer, err)) != SECRETD_OK)
		return st;
	c->dialed_us = cache_now_us();
	return SECRETD_OK;
}

/*
 * Close the subscriber socket (its thread is stopped first). A SUB socket can receive at any
 * moment, so no close of it is known to be safe under nng 1.5.2 (client.h, the socket rule;
 * seen here once in a reader of the cache test: one close never returned): it goes through
 * client_socket_close_bounded, which waits at most CLIENT_CLOSE_WAIT_MS and otherwise leaves
 * the close to its thread. The pipe callbacks are removed first, so the cache can be freed
 * either way.
 */
void
cache_sub_close(struct client_cache *c)
{
	if (!c->sub_open)
		return;
	c->sub_open = false;
	(void)nng_pipe_notify(c->sub, NNG_PIPE_EV_ADD_POST, NULL, NULL);
	(void)nng_pipe_notify(c->sub, NNG_PIPE_EV_REM_POST, NULL, NULL);
	client_socket_close_bounded(c->sub);
}

bool
cache_sub_start(struct client_cache *c)
{
	c->thread_started = pthread_create(&c->thread, NULL, sub_main, c) == 0;
	return c->thread_started;
}

void
cache_sub_stop(struct client_cache *c)
{
	atomic_store(&c->stop, true);
	if (c->thread_started)
		(void)pthread_join(c->thread, NULL);
	c->thread_started = false;
}
