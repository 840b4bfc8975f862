/*
 * channel.h: reply channels. A channel is an nng REP context with its own send aio. A
 * worker receives a request on a channel, hands the channel and the reply to an
 * asynchronous send, and takes another idle channel for its next receive: a peer that
 * never reads its replies holds channels (until the send times out), never workers.
 *
 * (One context cannot carry two sends at once in nng's REP protocol, so the context travels
 * with its send rather than staying with the worker.)
 *
 * What it does not do: no request handling, no logging.
 *
 * Thread safety: channels_take, channel_send, channels_put and channels_drain may be called
 * from many threads; send completions run on nng's threads. channels_init and
 * channels_fini run on one thread with no other call in progress.
 */
#ifndef SECRETD_SERVER_CHANNEL_H
#define SECRETD_SERVER_CHANNEL_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct channel;

struct channels {
	nng_socket sock;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct channel **all; /* every channel made, for channels_fini */
	size_t n_all;
	size_t max;                /* most channels ever made */
	struct channel *idle;      /* free list */
	size_t sending;            /* sends in flight */
	nng_duration send_timeout; /* a reply not taken by then is dropped */
};

/* Wipe an nng message's body (it may carry secret values) and free it. NULL-safe. */
void channel_msg_free(nng_msg *msg);

/* The context to receive on. */
nng_ctx channel_ctx(const struct channel *ch);

/* Set up an empty pool on sock. Returns 0 or an NNG_E* code. */
int channels_init(struct channels *cs, nng_socket sock, size_t max, nng_duration send_timeout);

/* An idle channel, made on demand up to max; waits while all are busy sending. NULL when
 * a new one cannot be made (out of memory, socket closed). */
struct channel *channels_take(struct channels *cs);

/* Give back a channel that will not send (its receive failed or there is no reply). */
void channels_put(struct channel *ch);

/* Send msg (taken) on ch without waiting; ch returns to the pool when the send ends. A
 * reply that cannot be sent is wiped and freed. */
void channel_send(struct channel *ch, nng_msg *msg);

/* Wait up to ms for the sends in flight to finish. */
void channels_drain(struct channels *cs, int ms);

/* Stop every send (call after nng_close of the socket) and free everything. */
void channels_fini(struct channels *cs);

#endif
