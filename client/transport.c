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
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

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

	if (client->ipc_path == NULL || atomic_load(&client->conn->pipes) > 0)
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

/* Send msg (taken, also on failure) and receive the reply on a fresh context. */
static secretd_status
client_exchange(
    secretd_client *client, nng_msg *msg, int timeout_ms, nng_msg **replyp, secretd_error *err)
{
	nng_aio *aio = NULL;
	nng_ctx ctx = NNG_CTX_INITIALIZER;
	bool ctx_open = false;
	nng_time start = nng_clock();
	nng_duration left;
	secretd_status st;
	int rv;

	if ((st = client_wait_ipc(client, timeout_ms, err)) != SECRETD_OK)
		goto fail;
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot call");
		goto fail;
	}
	if (!client_call_track(client, aio)) {
		nng_aio_free(aio);
		aio = NULL;
		st = client_fail(err, SECRETD_CANCELLED, "client for %s is closing", client->url);
		goto fail;
	}
	if ((rv = client_ctx_take(client->conn, &ctx)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot call");
		goto fail;
	}
	ctx_open = true;

	nng_aio_set_timeout(aio, client_remaining(timeout_ms, start));
	nng_aio_set_msg(aio, msg);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		/* nng gives a message back only when the send failed. */
		goto fail_nng;
	}
	msg = NULL;

	left = client_remaining(timeout_ms, start);
	if (left == 0) {
		rv = NNG_ETIMEDOUT;
		goto fail_nng;
	}
	nng_aio_set_timeout(aio, left);
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto fail_nng;
	*replyp = nng_aio_get_msg(aio);
	client_ctx_put(client->conn, ctx);
	client_call_untrack(client, aio);
	nng_aio_free(aio);
	return SECRETD_OK;

fail_nng:
	if (rv == NNG_ETIMEDOUT && atomic_load(&client->conn->pipes) <= 0) {
		/* No connection all along: the dialer may have given up (see
		 * client_conn_redial). */
		client_conn_redial(client->conn);
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
	if (msg == NULL)
		client_conn_abandoned(client->conn);
fail:
	client_msg_wipe_free(msg);
	if (aio != NULL)
		client_call_untrack(client, aio);
	nng_aio_free(aio); /* NULL-safe; stops the aio first, so the context is idle */
	if (ctx_open)
		client_ctx_put(client->conn, ctx);
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
