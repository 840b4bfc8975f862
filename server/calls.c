/*
 * calls.c: the life of one request in the server process (see calls.h): the caller from the
 * pipe, the service call, and its end: the reply sent on the request's channel, the log line,
 * the audit record, the metrics, the arena wiped; and the pool of call objects that lets a
 * request wait for its durable write without a worker (service_handle_async).
 *
 * Thread safety: call_serve runs on workers; a parked call ends on the store's commit thread;
 * the pool and the parked count are under srv->parking.lock.
 */
#include "calls.h"

#include <arpa/inet.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "metrics.h"
#include "server_internal.h"

struct reply_slot {
	nng_msg *msg;
};

/* One request being served: what outlives the worker's part of it when the request is
 * parked on a durable write (service_handle_async). A worker owns one; a parked call is
 * owned by its completion, which hands it back to the pool (struct parking). */
struct call {
	struct server *srv;
	struct arena arena;
	struct caller caller;
	struct call_info info;
	struct reply_slot slot;
	struct channel *ch; /* the channel the request came on, which the reply goes out on */
	uint64_t t0;
	struct call *next_free;
};

/* Fill a caller from the pipe a message came on: its role from the transport alone. The
 * printable peer is left for call_describe_peer (formatting it for every request cost more than
 * the rest of a Get). */
static void
caller_from_pipe(struct server *srv, nng_msg *msg, struct caller *c)
{
	nng_pipe p = nng_msg_get_pipe(msg);

	c->transport_role = ROLE_NONE;
	c->conn = p.id;
	c->ipc = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &c->uid) == 0;
	c->peer[0] = '\0';
	/* Our own uid could read the key file anyway: it is admin without a token. */
	if (c->ipc && c->uid == (uint64_t)srv->uid)
		c->transport_role = ROLE_ADMIN;
}

const char *
call_describe_peer(struct caller *c)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;
	nng_sockaddr sa;

	if (c->peer[0] != '\0')
		return c->peer;
	p.id = c->conn;
	if (c->ipc) {
		(void)snprintf(c->peer, sizeof(c->peer), "uid:%llu", (unsigned long long)c->uid);
	} else if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0 && sa.s_family == NNG_AF_INET) {
		const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;

		(void)snprintf(c->peer, sizeof(c->peer), "tcp:%u.%u.%u.%u:%u", a[0], a[1], a[2],
		    a[3], (unsigned)ntohs(sa.s_in.sa_port));
	} else if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0 && sa.s_family == NNG_AF_INET6) {
		(void)snprintf(
		    c->peer, sizeof(c->peer), "tcp6:port %u", (unsigned)ntohs(sa.s_in6.sa_port));
	} else {
		(void)snprintf(c->peer, sizeof(c->peer), "unknown");
	}
	return c->peer;
}

static uint8_t *
alloc_reply(void *arg, size_t len)
{
	struct reply_slot *slot = arg;

	if (slot->msg != NULL || nng_msg_alloc(&slot->msg, len) != 0) {
		slot->msg = NULL;
		return NULL;
	}
	return nng_msg_body(slot->msg);
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct call *
call_take(struct server *srv)
{
	struct call *c;

	(void)pthread_mutex_lock(&srv->parking.lock);
	c = srv->parking.free;
	if (c != NULL)
		srv->parking.free = c->next_free;
	(void)pthread_mutex_unlock(&srv->parking.lock);
	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return NULL;
		c->srv = srv;
		arena_init(&c->arena, 16384);
		(void)pthread_mutex_lock(&srv->parking.lock);
		srv->parking.made++;
		(void)pthread_mutex_unlock(&srv->parking.lock);
	}
	return c;
}

void
call_put(struct server *srv, struct call *c)
{
	(void)pthread_mutex_lock(&srv->parking.lock);
	c->next_free = srv->parking.free;
	srv->parking.free = c;
	(void)pthread_mutex_unlock(&srv->parking.lock);
}

void
calls_free(struct server *srv)
{
	while (srv->parking.free != NULL) {
		struct call *c = srv->parking.free;

		srv->parking.free = c->next_free;
		arena_fini(&c->arena);
		free(c);
	}
}

/* The end of a call whose reply is made (or could not be): send it on the call's channel,
 * log, audit, wipe. Returns whether the channel went with the reply. */
static bool
call_end(struct call *c)
{
	struct server *srv = c->srv;
	struct call_info *info = &c->info;
	enum log_level level;
	bool sent = false;

	if (c->slot.msg != NULL) {
		/* The reply goes out without waiting, on the channel it came in on. A peer that
		 * does not read its replies so holds channels until their sends time out, never
		 * a worker. */
		channel_send(c->ch, c->slot.msg);
		c->slot.msg = NULL;
		sent = true;
	} else {
		log_msg(&srv->log, LOG_ERROR, "out of memory building a reply for %s",
		    call_describe_peer(&c->caller));
	}
	metrics_request(srv->metrics, info->method, info->outcome.status, now_us() - c->t0);
	level = info->outcome.status == ST_OK || info->outcome.status == ST_NOT_FOUND ? LOG_DEBUG
	                                                                              : LOG_INFO;
	if (level <= srv->log.level)
		log_msg(&srv->log, level,
		    "method=%s%s status=%s reason=%s name=%s storage=%s peer=%s role=%s "
		    "latency_us=%llu",
		    info->method[0] != '\0' ? info->method : "-", info->text ? " frame=text" : "",
		    status_str(info->outcome.status),
		    info->outcome.reason[0] != '\0' ? info->outcome.reason : "-",
		    info->name[0] != '\0' ? info->name : "-",
		    info->storage[0] != '\0' ? info->storage : "-", call_describe_peer(&c->caller),
		    role_str(c->caller.role), (unsigned long long)(now_us() - c->t0));
	if (info->mutating || info->outcome.status == ST_UNAUTHENTICATED ||
	    info->outcome.status == ST_PERMISSION_DENIED) {
		struct audit_record rec = {
		    .event = "result",
		    .peer = call_describe_peer(&c->caller),
		    .token_id = c->caller.token_id,
		    .role = role_str(c->caller.role),
		    .method = info->method,
		    .name = info->name,
		    .storage = info->storage,
		    .status = status_str(info->outcome.status),
		};

		(void)log_audit(&srv->log, &rec);
	}
	arena_reset(&c->arena);
	return sent;
}

/* service_handle_async's done: a parked call's reply is made (on the store's thread). */
static void
call_parked_done(void *arg)
{
	struct call *c = arg;
	struct server *srv = c->srv;

	if (!call_end(c))
		channels_put(c->ch); /* no reply: the channel goes back unused */
	call_put(srv, c);
	(void)pthread_mutex_lock(&srv->parking.lock);
	srv->parking.parked--;
	(void)pthread_cond_broadcast(&srv->parking.none);
	(void)pthread_mutex_unlock(&srv->parking.lock);
}

void
calls_wait_parked(struct server *srv)
{
	(void)pthread_mutex_lock(&srv->parking.lock);
	while (srv->parking.parked > 0)
		(void)pthread_cond_wait(&srv->parking.none, &srv->parking.lock);
	(void)pthread_mutex_unlock(&srv->parking.lock);
}

void
call_serve(struct server *srv, struct call **callp, struct channel **chp, nng_msg *msg)
{
	struct call *c = *callp;
	bool pending = false;

	c->t0 = now_us();
	c->ch = *chp;
	c->slot.msg = NULL;
	caller_from_pipe(srv, msg, &c->caller);
	(void)service_handle_async(&srv->svc, &c->caller, nng_msg_body(msg), nng_msg_len(msg),
	    &c->arena, alloc_reply, &c->slot, &c->info, call_parked_done, c, &pending);
	channel_msg_free(msg);
	if (pending) {
		/* c and its channel belong to the completion now (it may have run already):
		 * this worker goes on with a new call object and channel. */
		(void)pthread_mutex_lock(&srv->parking.lock);
		srv->parking.parked++;
		(void)pthread_mutex_unlock(&srv->parking.lock);
		*callp = call_take(srv);
		*chp = channels_take(&srv->channels);
		return;
	}
	if (call_end(c))
		*chp = channels_take(&srv->channels);
}
