/*
 * channel.c: the pool of reply channels. See channel.h.
 */
#include "channel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct channel {
	struct channels *pool;
	nng_ctx ctx;
	nng_aio *send_aio;
	struct channel *next_idle;
};

nng_ctx
channel_ctx(const struct channel *ch)
{
	return ch->ctx;
}

void
channel_msg_free(nng_msg *msg)
{
	if (msg == NULL)
		return;
	explicit_bzero(nng_msg_body(msg), nng_msg_len(msg));
	nng_msg_free(msg);
}

/* A send ended (sent, timed out, cancelled): free what is still ours, recycle ch. */
static void
send_done(void *arg)
{
	struct channel *ch = arg;
	struct channels *cs = ch->pool;

	/* After a failed send the message is still ours; after a good one nng has it. */
	if (nng_aio_result(ch->send_aio) != 0) {
		channel_msg_free(nng_aio_get_msg(ch->send_aio));
		nng_aio_set_msg(ch->send_aio, NULL);
	}
	(void)pthread_mutex_lock(&cs->lock);
	ch->next_idle = cs->idle;
	cs->idle = ch;
	cs->sending--;
	(void)pthread_cond_broadcast(&cs->freed);
	(void)pthread_mutex_unlock(&cs->lock);
}

int
channels_init(struct channels *cs, nng_socket sock, size_t max, nng_duration send_timeout)
{
	memset(cs, 0, sizeof(*cs));
	cs->sock = sock;
	cs->max = max;
	cs->send_timeout = send_timeout;
	cs->all = calloc(max, sizeof(*cs->all));
	if (cs->all == NULL)
		return NNG_ENOMEM;
	if (pthread_mutex_init(&cs->lock, NULL) != 0) {
		free(cs->all);
		return NNG_ENOMEM;
	}
	if (pthread_cond_init(&cs->freed, NULL) != 0) {
		(void)pthread_mutex_destroy(&cs->lock);
		free(cs->all);
		return NNG_ENOMEM;
	}
	return 0;
}

/* Make a channel; the pool's lock is held. */
static struct channel *
channel_new(struct channels *cs)
{
	struct channel *ch = calloc(1, sizeof(*ch));

	if (ch == NULL)
		return NULL;
	ch->pool = cs;
	if (nng_aio_alloc(&ch->send_aio, send_done, ch) != 0) {
		free(ch);
		return NULL;
	}
	if (nng_ctx_open(&ch->ctx, cs->sock) != 0) {
		nng_aio_free(ch->send_aio);
		free(ch);
		return NULL;
	}
	cs->all[cs->n_all++] = ch;
	return ch;
}

struct channel *
channels_take(struct channels *cs)
{
	struct channel *ch = NULL;

	(void)pthread_mutex_lock(&cs->lock);
	while (cs->idle == NULL && cs->n_all == cs->max)
		(void)pthread_cond_wait(&cs->freed, &cs->lock);
	if (cs->idle != NULL) {
		ch = cs->idle;
		cs->idle = ch->next_idle;
	} else {
		ch = channel_new(cs);
	}
	(void)pthread_mutex_unlock(&cs->lock);
	return ch;
}

void
channels_put(struct channel *ch)
{
	struct channels *cs = ch->pool;

	(void)pthread_mutex_lock(&cs->lock);
	ch->next_idle = cs->idle;
	cs->idle = ch;
	(void)pthread_cond_broadcast(&cs->freed);
	(void)pthread_mutex_unlock(&cs->lock);
}

void
channel_send(struct channel *ch, nng_msg *msg)
{
	struct channels *cs = ch->pool;

	(void)pthread_mutex_lock(&cs->lock);
	cs->sending++;
	(void)pthread_mutex_unlock(&cs->lock);
	nng_aio_set_msg(ch->send_aio, msg);
	nng_aio_set_timeout(ch->send_aio, cs->send_timeout);
	nng_ctx_send(ch->ctx, ch->send_aio);
}

void
channels_drain(struct channels *cs, int ms)
{
	struct timespec until;

	if (cs->all == NULL)
		return; /* never set up */
	(void)clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	(void)pthread_mutex_lock(&cs->lock);
	while (cs->sending > 0)
		if (pthread_cond_timedwait(&cs->freed, &cs->lock, &until) == ETIMEDOUT)
			break;
	(void)pthread_mutex_unlock(&cs->lock);
}

void
channels_fini(struct channels *cs)
{
	if (cs->all == NULL)
		return;
	/* nng_aio_stop waits for a running send_done, which takes the lock: not held here. */
	for (size_t i = 0; i < cs->n_all; i++)
		nng_aio_stop(cs->all[i]->send_aio);
	for (size_t i = 0; i < cs->n_all; i++) {
		(void)nng_ctx_close(cs->all[i]->ctx);
		nng_aio_free(cs->all[i]->send_aio);
		free(cs->all[i]);
	}
	free(cs->all);
	cs->all = NULL;
	(void)pthread_cond_destroy(&cs->freed);
	(void)pthread_mutex_destroy(&cs->lock);
}
