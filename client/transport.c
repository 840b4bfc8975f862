/*
 * transport.c: the nng transport behind the protoc-c service stubs: client_invoke packs
 * the request into the secretd.v1.Request envelope, makes one REQ/REP exchange on a
 * fresh nng context, checks and unpacks the secretd.v1.Reply envelope and hands the
 * unpacked output message to the stub's closure. It knows no rpc by name: method names
 * and message types come from the service descriptor.
 *
 * Not here: opening and closing the handle (client.c), building public results
 * (results.c) or the calls themselves (calls.c). nng owns a request frame once it is
 * sent and frees it unwiped; everything this file still owns that may hold a value
 * (packed bodies, frames, unpacked messages) is wiped before it is freed.
 *
 * Thread safety: many threads call client_invoke on one handle at once; each call opens
 * its own nng context and aio. The handle's mutex guards only the count of calls in
 * flight, so that secretd_client_close can cancel them and wait for them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "client.h"

/* "\0SD" and protocol version 1: the first bytes of every binary frame. */
static const uint8_t frame_header[4] = {0x00, 0x53, 0x44, 0x01};

/*
 * A ProtobufCAllocator that keeps each block's size in a header so that free can wipe
 * the block whole: every decoded copy of a value dies wiped.
 */
#define ZALLOC_HEADER (sizeof(max_align_t))

static void *
zalloc_alloc(void *data, size_t size)
{
	unsigned char *p;

	(void)data;
	if (size > SIZE_MAX - ZALLOC_HEADER)
		return NULL;
	p = malloc(ZALLOC_HEADER + size);
	if (p == NULL)
		return NULL;
	memcpy(p, &size, sizeof(size));
	return p + ZALLOC_HEADER;
}

static void
zalloc_free(void *data, void *ptr)
{
	unsigned char *p;
	size_t size;

	(void)data;
	if (ptr == NULL)
		return;
	p = (unsigned char *)ptr - ZALLOC_HEADER;
	memcpy(&size, p, sizeof(size));
	explicit_bzero(p, ZALLOC_HEADER + size);
	free(p);
}

/* Wipe a frame we own and free it (NULL-safe). */
static void
client_msg_wipe_free(nng_msg *msg)
{
	if (msg == NULL)
		return;
	explicit_bzero(nng_msg_body(msg), nng_msg_len(msg));
	nng_msg_free(msg);
}

/* Milliseconds left until deadline, or NNG_DURATION_INFINITE; 0 when it has passed. */
static nng_duration
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

static secretd_status
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

/*
 * Pack input into a request frame: header + Request envelope. The frame is packed
 * straight into the nng message; the packed body is an intermediate copy, wiped.
 */
static secretd_status
client_pack_request(secretd_client *client, const ProtobufCMethodDescriptor *method,
    const ProtobufCMessage *input, uint32_t timeout_ms, uint64_t request_id, nng_msg **msgp,
    secretd_error *err)
{
	Secretd__V1__Request env = SECRETD__V1__REQUEST__INIT;
	uint8_t *body = NULL;
	size_t body_len;
	size_t env_len;
	nng_msg *msg = NULL;
	secretd_status st;
	int rv;

	body_len = protobuf_c_message_get_packed_size(input);
	body = malloc(body_len > 0 ? body_len : 1);
	if (body == NULL) {
		st = client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if (protobuf_c_message_pack(input, body) != body_len) {
		st = client_fail(
		    err, SECRETD_INTERNAL, "could not pack the %s request", method->name);
		goto fail;
	}
	env.method = (char *)method->name;
	env.body.data = body;
	env.body.len = body_len;
	env.token = client->token != NULL ? client->token : (char *)"";
	env.timeout_ms = timeout_ms;
	env.request_id = request_id;
	env.min_store_rev = atomic_load(&client->store_rev);
	env_len = protobuf_c_message_get_packed_size(&env.base);
	/* secretd's transport drops (and closes the connection on) frames past its cap, and
	 * nng's REQ socket would then resend the same frame on every reconnect: refuse here. */
	if (sizeof(frame_header) + env_len > CLIENT_SEND_MAX) {
		st = client_fail(err, SECRETD_RESOURCE_EXHAUSTED,
		    "the %s request is %zu bytes, over the %d bytes a request may have",
		    method->name, sizeof(frame_header) + env_len, CLIENT_SEND_MAX);
		goto fail;
	}
	if ((rv = nng_msg_alloc(&msg, sizeof(frame_header) + env_len)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot build a request for");
		goto fail;
	}
	memcpy(nng_msg_body(msg), frame_header, sizeof(frame_header));
	if (protobuf_c_message_pack(
	        &env.base, (uint8_t *)nng_msg_body(msg) + sizeof(frame_header)) != env_len) {
		st = client_fail(
		    err, SECRETD_INTERNAL, "could not pack the %s envelope", method->name);
		goto fail;
	}
	explicit_bzero(body, body_len);
	free(body);
	*msgp = msg;
	return SECRETD_OK;

fail:
	client_msg_wipe_free(msg);
	if (body != NULL) {
		explicit_bzero(body, body_len);
		free(body);
	}
	return st;
}

/* How often a call that waits looks at its connection (failover, redial). */
#define CLIENT_WATCH_MS 20

/* How long a call waits for the preferred address to connect before it takes another
 * (a new handle's dials race; the first address should win while it is up). */
#define CLIENT_PREFER_WAIT_MS 250

/* An exchange's aio completes through this, so that the call can wait in slices and look
 * at its connection in between (nng_aio_wait cannot time out). */
struct client_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	bool done;
};

static void
client_waiter_cb(void *arg)
{
	struct client_waiter *w = arg;

	(void)pthread_mutex_lock(&w->mu);
	w->done = true;
	(void)pthread_cond_broadcast(&w->cv);
	(void)pthread_mutex_unlock(&w->mu);
}

static bool
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

static void
client_waiter_fini(struct client_waiter *w)
{
	(void)pthread_cond_destroy(&w->cv);
	(void)pthread_mutex_destroy(&w->mu);
}

/* Start the next operation on the waiter's aio (before nng_ctx_send/recv). */
static void
client_waiter_arm(struct client_waiter *w)
{
	(void)pthread_mutex_lock(&w->mu);
	w->done = false;
	(void)pthread_mutex_unlock(&w->mu);
}

/* Wait up to ms for the aio to complete; true once it has. */
static bool
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
static secretd_status
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
static bool
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

/*
 * Send msg (taken, also on failure) and receive the reply, on a context of the chosen
 * address's conn. With a list of addresses, a request whose node goes away before it
 * answers is sent again, same frame and request id, to another node (the id makes the
 * resend safe: a node that already applied it answers as it did the first time).
 */
static secretd_status
client_exchange(
    secretd_client *client, nng_msg *msg, int timeout_ms, nng_msg **replyp, secretd_error *err)
{
	struct client_waiter w;
	bool waiter = false;
	nng_aio *aio = NULL;
	nng_ctx ctx = NNG_CTX_INITIALIZER;
	struct client_conn *conn = NULL;
	nng_msg *out;
	nng_time start = nng_clock();
	uint32_t tried = 0;
	size_t idx = 0;
	bool sent = false;
	secretd_status st;
	int rv;

	if ((st = client_wait_ipc(client, timeout_ms, err)) != SECRETD_OK)
		goto fail;
	if (!client_waiter_init(&w)) {
		st = client_fail(err, SECRETD_INTERNAL, "cannot create a condition variable");
		goto fail;
	}
	waiter = true;
	if ((rv = nng_aio_alloc(&aio, client_waiter_cb, &w)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot call");
		goto fail;
	}
	if (!client_call_track(client, aio)) {
		nng_aio_free(aio);
		aio = NULL;
		st = client_fail(err, SECRETD_CANCELLED, "client for %s is closing", client->url);
		goto fail;
	}

attempt:
	if ((st = client_pick(client, timeout_ms, start, tried, &idx, err)) != SECRETD_OK)
		goto fail;
	conn = client->conns[idx];
	if ((rv = client_ctx_take(conn, &ctx)) != 0) {
		conn = NULL;
		st = client_nng_fail(err, rv, client->url, "cannot call");
		goto fail;
	}
	/* With one address the frame goes to nng as it is; with several, a copy goes, and
	 * the frame stays for a resend to another node. */
	out = msg;
	if (client->n_conns > 1 && (rv = nng_msg_dup(&out, msg)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot call");
		goto fail_ctx;
	}
	if (client->n_conns == 1)
		msg = NULL;
	nng_aio_set_timeout(aio, client_remaining(timeout_ms, start));
	nng_aio_set_msg(aio, out);
	client_waiter_arm(&w);
	nng_ctx_send(ctx, aio);
	if (!client_watch(client, conn, idx, tried, aio, &w))
		goto withdraw;
	if ((rv = nng_aio_result(aio)) != 0) {
		/* nng gives the frame back when the send failed. */
		client_msg_wipe_free(nng_aio_get_msg(aio));
		nng_aio_set_msg(aio, NULL);
		goto fail_nng;
	}
	sent = true;
	if (client_remaining(timeout_ms, start) == 0) {
		rv = NNG_ETIMEDOUT;
		goto fail_nng;
	}
	nng_aio_set_timeout(aio, client_remaining(timeout_ms, start));
	client_waiter_arm(&w);
	nng_ctx_recv(ctx, aio);
	if (!client_watch(client, conn, idx, tried, aio, &w))
		goto withdraw;
	if ((rv = nng_aio_result(aio)) != 0)
		goto fail_nng;
	*replyp = nng_aio_get_msg(aio);
	client_ctx_put(conn, ctx);
	atomic_store(&client->preferred, idx); /* stay on the node that answered */
	client_call_untrack(client, aio);
	nng_aio_free(aio);
	client_msg_wipe_free(msg);
	client_waiter_fini(&w);
	return SECRETD_OK;

withdraw:
	/* conn's node went away with the request: try the next node, same frame. */
	client_msg_wipe_free(nng_aio_get_msg(aio)); /* a send withdrawn gives it back */
	nng_aio_set_msg(aio, NULL);
	if (sent)
		client_conn_abandoned(conn);
	client_ctx_put(conn, ctx);
	conn = NULL;
	sent = false;
	tried |= 1u << idx;
	goto attempt;

fail_nng:
	if (rv == NNG_ETIMEDOUT && atomic_load(&conn->pipes) <= 0) {
		client_conn_redial(conn);
		st = client_fail(err, SECRETD_UNAVAILABLE,
		    "cannot connect to secretd at %s (no connection within %d ms)", client->url,
		    timeout_ms);
	} else if (rv == NNG_ETIMEDOUT) {
		st = client_fail(err, SECRETD_DEADLINE_EXCEEDED,
		    "no answer from secretd at %s within %d ms", client->url, timeout_ms);
	} else {
		st = client_nng_fail(err, rv, client->url, "call to");
	}
	/* Sent but not answered: a late reply may still come (see struct client_conn). */
	if (sent)
		client_conn_abandoned(conn);
fail_ctx:
	client_ctx_put(conn, ctx);
fail:
	client_msg_wipe_free(msg);
	if (aio != NULL)
		client_call_untrack(client, aio);
	nng_aio_free(aio); /* NULL-safe; stops the aio first, so the context is idle */
	if (waiter)
		client_waiter_fini(&w);
	return st;
}

/*
 * Check the reply frame (taken) and unpack its envelope with the zeroing allocator.
 * On success *replyp is the envelope (free with secretd__v1__reply__free_unpacked and
 * the same allocator).
 */
static secretd_status
client_unpack_reply(secretd_client *client, nng_msg *msg, ProtobufCAllocator *alloc,
    const char *method, Secretd__V1__Reply **replyp, secretd_error *err)
{
	const uint8_t *frame = nng_msg_body(msg);
	size_t len = nng_msg_len(msg);
	Secretd__V1__Reply *reply = NULL;
	secretd_status st;

	if (len < sizeof(frame_header) || frame[0] != frame_header[0] ||
	    frame[1] != frame_header[1] || frame[2] != frame_header[2]) {
		st = client_fail(err, SECRETD_INTERNAL,
		    "bad reply to %s from %s: not a secretd binary frame", method, client->url);
		goto done;
	}
	if (frame[3] != frame_header[3]) {
		st = client_fail(err, SECRETD_INTERNAL,
		    "bad reply to %s from %s: protocol version %u, want %u", method, client->url,
		    (unsigned)frame[3], (unsigned)frame_header[3]);
		goto done;
	}
	reply = secretd__v1__reply__unpack(
	    alloc, len - sizeof(frame_header), frame + sizeof(frame_header));
	if (reply == NULL) {
		st = client_fail(err, SECRETD_INTERNAL,
		    "bad reply to %s from %s: undecodable envelope", method, client->url);
		goto done;
	}
	*replyp = reply;
	st = SECRETD_OK;
done:
	client_msg_wipe_free(msg);
	return st;
}

/* One synchronous exchange; see client.h. */
void
client_invoke(ProtobufCService *service, unsigned method_index, const ProtobufCMessage *input,
    ProtobufCClosure closure, void *closure_data)
{
	secretd_client *client = (secretd_client *)service;
	struct client_call *call = closure_data;
	const ProtobufCMethodDescriptor *method;
	ProtobufCAllocator alloc = {.alloc = zalloc_alloc, .free = zalloc_free};
	Secretd__V1__Reply *reply = NULL;
	ProtobufCMessage *output = NULL;
	nng_msg *msg = NULL;
	uint64_t request_id = 0;
	uint32_t wire_timeout;
	int timeout_ms;
	bool entered = false;
	secretd_status st;

	/* protobuf-c checks the index only with assert. */
	if (method_index >= service->descriptor->n_methods) {
		st = client_fail(&call->err, SECRETD_INTERNAL, "no method %u in %s", method_index,
		    service->descriptor->name);
		goto done;
	}
	method = &service->descriptor->methods[method_index];
	if (input == NULL || input->descriptor != method->input) {
		st = client_fail(
		    &call->err, SECRETD_INTERNAL, "wrong input message for %s", method->name);
		goto done;
	}
	if (!client_enter(client)) {
		st = client_fail(
		    &call->err, SECRETD_CANCELLED, "client for %s is closing", client->url);
		goto done;
	}
	entered = true;

	timeout_ms = call->timeout_ms == 0 ? CLIENT_TIMEOUT_DEFAULT_MS : call->timeout_ms;
	wire_timeout = timeout_ms < 0 ? 0 : (uint32_t)timeout_ms;
	while (request_id == 0) {
		if (getrandom(&request_id, sizeof(request_id), 0) != sizeof(request_id)) {
			st = client_fail(
			    &call->err, SECRETD_INTERNAL, "getrandom failed: %s", strerror(errno));
			goto done;
		}
	}

	st = client_pack_request(client, method, input, wire_timeout, request_id, &msg, &call->err);
	if (st != SECRETD_OK)
		goto done;
	st = client_exchange(client, msg, timeout_ms, &msg, &call->err);
	if (st != SECRETD_OK) {
		msg = NULL; /* taken */
		goto done;
	}
	st = client_unpack_reply(client, msg, &alloc, method->name, &reply, &call->err);
	msg = NULL; /* taken */
	if (st != SECRETD_OK)
		goto done;

	call->epoch = reply->epoch; /* for the cache (cache.h) */
	call->rev = reply->rev;
	/* Remember the highest store revision seen, for the next call's min_store_rev. */
	for (uint64_t seen = atomic_load(&client->store_rev); reply->store_rev > seen;)
		if (atomic_compare_exchange_weak(&client->store_rev, &seen, reply->store_rev))
			break;
	if (reply->request_id != 0 && reply->request_id != request_id) {
		st = client_fail(&call->err, SECRETD_INTERNAL,
		    "bad reply to %s from %s: it answers another request", method->name,
		    client->url);
		goto done;
	}
	if (reply->status != SECRETD_OK) {
		st = reply->status <= SECRETD_UNAUTHENTICATED ? (secretd_status)reply->status
		                                              : SECRETD_UNKNOWN;
		if (reply->message != NULL && reply->message[0] != '\0')
			(void)client_fail(&call->err, st, "%s", reply->message);
		else
			(void)client_fail(&call->err, st, "%s from secretd at %s (status %u)",
			    secretd_status_str(st), client->url, (unsigned)reply->status);
		client_copy_str(call->err.reason, sizeof(call->err.reason), reply->reason);
		goto done;
	}
	output =
	    protobuf_c_message_unpack(method->output, &alloc, reply->body.len, reply->body.data);
	if (output == NULL) {
		st = client_fail(&call->err, SECRETD_INTERNAL,
		    "bad reply to %s from %s: undecodable %s", method->name, client->url,
		    method->output->name);
		goto done;
	}
	call->err.status = SECRETD_OK;
	call->err.reason[0] = '\0';
	memcpy(call->err.message, "OK", sizeof("OK"));
	st = SECRETD_OK;

done:
	if (entered)
		client_leave(client);
	if (reply != NULL)
		secretd__v1__reply__free_unpacked(reply, &alloc);
	if (closure != NULL)
		closure(st == SECRETD_OK ? output : NULL, closure_data);
	if (output != NULL)
		protobuf_c_message_free_unpacked(output, &alloc);
}

ProtobufCService *
client_service(secretd_client *client)
{
	return &client->service;
}
