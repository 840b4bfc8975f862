/*
 * transport.c: the nng transport behind the protoc-c service stubs: client_invoke packs
 * the request into the secretd.v1.Request envelope, makes one REQ/REP exchange on a
 * fresh nng context, checks and unpacks the secretd.v1.Reply envelope and hands the
 * unpacked output message to the stub's closure. It knows no rpc by name: method names
 * and message types come from the service descriptor.
 *
 * With a list of addresses, a request whose node goes away is sent again to another.
 *
 * Not here: opening and closing the handle (client.c), which address a call goes to and
 * how it waits (route.c), building public results (results.c) or the calls themselves
 * (calls.c). nng owns a request frame once it is
 * sent and frees it unwiped; everything this file still owns that may hold a value
 * (packed bodies, frames, unpacked messages) is wiped before it is freed.
 *
 * Thread safety: many threads call client_invoke on one handle at once; each call opens
 * its own nng context and aio. The handle's mutex guards only the count of calls in
 * flight, so that secretd_client_close can cancel them and wait for them.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

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

/* What one attempt of an exchange came to. */
enum client_attempt_end {
	ATTEMPT_REPLY,     /* *replyp holds the reply */
	ATTEMPT_WITHDRAWN, /* the node went away: try another */
	ATTEMPT_FAILED,    /* *rvp says why (NNG_E*) */
};

/*
 * One attempt of an exchange on conn (the list's address idx): send frame (taken) on a
 * context of conn, then receive the reply. *sentp tells whether the request went out.
 */
static enum client_attempt_end
client_attempt(secretd_client *client, size_t idx, uint32_t tried, nng_aio *aio,
    struct client_waiter *w, nng_ctx ctx, nng_msg *frame, int timeout_ms, nng_time start,
    nng_msg **replyp, bool *sentp, int *rvp)
{
	struct client_conn *conn = client->conns[idx];
	int rv;

	*sentp = false;
	nng_aio_set_timeout(aio, client_remaining(timeout_ms, start));
	nng_aio_set_msg(aio, frame);
	client_waiter_arm(w);
	nng_ctx_send(ctx, aio);
	if (!client_watch(client, conn, idx, tried, aio, w))
		goto withdrawn;
	if ((rv = nng_aio_result(aio)) != 0) {
		/* nng gives the frame back when the send failed. */
		client_msg_wipe_free(nng_aio_get_msg(aio));
		nng_aio_set_msg(aio, NULL);
		*rvp = rv;
		return ATTEMPT_FAILED;
	}
	*sentp = true;
	if (client_remaining(timeout_ms, start) == 0) {
		*rvp = NNG_ETIMEDOUT;
		return ATTEMPT_FAILED;
	}
	nng_aio_set_timeout(aio, client_remaining(timeout_ms, start));
	client_waiter_arm(w);
	nng_ctx_recv(ctx, aio);
	if (!client_watch(client, conn, idx, tried, aio, w))
		goto withdrawn;
	if ((rv = nng_aio_result(aio)) != 0) {
		*rvp = rv;
		return ATTEMPT_FAILED;
	}
	*replyp = nng_aio_get_msg(aio);
	return ATTEMPT_REPLY;

withdrawn:
	client_msg_wipe_free(nng_aio_get_msg(aio)); /* a send withdrawn gives the frame back */
	nng_aio_set_msg(aio, NULL);
	return ATTEMPT_WITHDRAWN;
}

/* The error of an exchange that failed with rv on conn. */
static secretd_status
client_exchange_fail(secretd_client *client, struct client_conn *conn, int rv, int timeout_ms,
    secretd_error *err)
{
	if (rv == NNG_ETIMEDOUT && atomic_load(&conn->pipes) <= 0) {
		client_conn_redial(conn);
		return client_fail(err, SECRETD_UNAVAILABLE,
		    "cannot connect to secretd at %s (no connection within %d ms)", client->url,
		    timeout_ms);
	}
	if (rv == NNG_ETIMEDOUT)
		return client_fail(err, SECRETD_DEADLINE_EXCEEDED,
		    "no answer from secretd at %s within %d ms", client->url, timeout_ms);
	return client_nng_fail(err, rv, client->url, "call to");
}

/*
 * The copy of a request frame that goes to nng while the frame stays for a resend. A
 * function of its own so that LeakSanitizer can name exactly the copies nng 1.5.2's req0
 * loses when a node dies mid-send (tests/integration/nng-leaks.supp).
 */
static __attribute__((noinline)) int
client_frame_copy(nng_msg **copy, nng_msg *frame)
{
	return nng_msg_dup(copy, frame);
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
	nng_time start = nng_clock();
	uint32_t tried = 0;
	secretd_status st;
	int rv;

	if ((st = client_wait_ipc(client, timeout_ms, err)) != SECRETD_OK)
		goto done;
	if (!client_waiter_init(&w)) {
		st = client_fail(err, SECRETD_INTERNAL, "cannot create a condition variable");
		goto done;
	}
	waiter = true;
	if ((rv = nng_aio_alloc(&aio, client_waiter_cb, &w)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot call");
		goto done;
	}
	if (!client_call_track(client, aio)) {
		nng_aio_free(aio);
		aio = NULL;
		st = client_fail(err, SECRETD_CANCELLED, "client for %s is closing", client->url);
		goto done;
	}
	for (;;) {
		struct client_conn *conn;
		nng_ctx ctx;
		nng_msg *frame = msg;
		enum client_attempt_end end;
		size_t idx;
		bool sent;

		if ((st = client_pick(client, timeout_ms, start, tried, &idx, err)) != SECRETD_OK)
			break;
		conn = client->conns[idx];
		if ((rv = client_ctx_take(conn, &ctx)) != 0) {
			st = client_nng_fail(err, rv, client->url, "cannot call");
			break;
		}
		/* With one address the frame goes to nng as it is; with several a copy goes,
		 * and the frame stays for a resend to another node. */
		if (client->n_conns > 1 && (rv = client_frame_copy(&frame, msg)) != 0) {
			client_ctx_put(conn, ctx);
			st = client_nng_fail(err, rv, client->url, "cannot call");
			break;
		}
		if (client->n_conns == 1)
			msg = NULL;
		end = client_attempt(client, idx, tried, aio, &w, ctx, frame, timeout_ms, start,
		    replyp, &sent, &rv);
		/* Sent but not answered: a late reply may still come (see struct client_conn). */
		if (end != ATTEMPT_REPLY && sent)
			client_conn_abandoned(conn);
		client_ctx_put(conn, ctx);
		if (end == ATTEMPT_REPLY) {
			atomic_store(&client->preferred, idx); /* stay on the node that answered */
			st = SECRETD_OK;
			break;
		}
		if (end == ATTEMPT_FAILED) {
			st = client_exchange_fail(client, conn, rv, timeout_ms, err);
			break;
		}
		tried |= 1u << idx; /* withdrawn: the next node, same frame */
	}
done:
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

/*
 * The envelope's part of a reply: note its epoch and revisions, check that it answers
 * request_id, and turn a failure status into call->err. SECRETD_OK when the body is to be
 * unpacked.
 */
static secretd_status
client_reply_status(secretd_client *client, struct client_call *call,
    const ProtobufCMethodDescriptor *method, const Secretd__V1__Reply *reply,
    uint64_t request_id)
{
	secretd_status st;

	call->epoch = reply->epoch; /* for the cache (cache.h) */
	call->rev = reply->rev;
	/* Remember the highest store revision seen, for the next call's min_store_rev. */
	for (uint64_t seen = atomic_load(&client->store_rev); reply->store_rev > seen;)
		if (atomic_compare_exchange_weak(&client->store_rev, &seen, reply->store_rev))
			break;
	if (reply->request_id != 0 && reply->request_id != request_id)
		return client_fail(&call->err, SECRETD_INTERNAL,
		    "bad reply to %s from %s: it answers another request", method->name,
		    client->url);
	if (reply->status == SECRETD_OK)
		return SECRETD_OK;
	st = reply->status <= SECRETD_UNAUTHENTICATED ? (secretd_status)reply->status
	                                              : SECRETD_UNKNOWN;
	if (reply->message != NULL && reply->message[0] != '\0')
		(void)client_fail(&call->err, st, "%s", reply->message);
	else
		(void)client_fail(&call->err, st, "%s from secretd at %s (status %u)",
		    secretd_status_str(st), client->url, (unsigned)reply->status);
	client_copy_str(call->err.reason, sizeof(call->err.reason), reply->reason);
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

	if ((st = client_reply_status(client, call, method, reply, request_id)) != SECRETD_OK)
		goto done;
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
