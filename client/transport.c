/*
 * transport.c: the secretd_client handle and the nng transport behind the protoc-c
 * service stubs. The handle embeds a ProtobufCService whose invoke packs the request into
 * the secretd.v1.Request envelope, makes one REQ/REP exchange on a fresh nng context,
 * checks and unpacks the secretd.v1.Reply envelope and hands the unpacked output message
 * to the stub's closure. It knows no rpc by name: method names and message types come
 * from the service descriptor.
 *
 * Not here: building public results (results.c) or the calls themselves (calls.c).
 * nng owns a request frame once it is sent and frees it unwiped; everything this file
 * still owns that may hold a value (packed bodies, frames, unpacked messages) is wiped
 * before it is freed.
 *
 * Thread safety: a secretd_client is used by many threads at once; each call opens its
 * own nng context and aio. The mutex guards only the count of calls in flight, so that
 * secretd_client_close can cancel them and wait for them before freeing the handle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "client.h"

/* "\0SD" and protocol version 1: the first bytes of every binary frame. */
static const uint8_t frame_header[4] = {0x00, 0x53, 0x44, 0x01};

/* Listings can be large; anything past this is a broken or hostile server. */
#define CLIENT_RECV_MAX ((size_t)16 * 1024 * 1024)

struct secretd_client {
	ProtobufCService service; /* invoke = client_invoke */
	nng_socket sock;
	nng_dialer dialer;
	bool sock_open;
	bool dialer_open;
	nng_tls_config *tls;
	char *url;
	char *token; /* wiped when the client closes */
	atomic_int pipes; /* connected pipes: tells "no server" from "slow server" */
	pthread_mutex_t mu; /* guards active and closing */
	pthread_cond_t idle;
	unsigned active;
	bool closing;
};

const char *
secretd_status_str(secretd_status st)
{
	switch (st) {
	case SECRETD_OK:
		return "OK";
	case SECRETD_CANCELLED:
		return "CANCELLED";
	case SECRETD_UNKNOWN:
		return "UNKNOWN";
	case SECRETD_INVALID_ARGUMENT:
		return "INVALID_ARGUMENT";
	case SECRETD_DEADLINE_EXCEEDED:
		return "DEADLINE_EXCEEDED";
	case SECRETD_NOT_FOUND:
		return "NOT_FOUND";
	case SECRETD_ALREADY_EXISTS:
		return "ALREADY_EXISTS";
	case SECRETD_PERMISSION_DENIED:
		return "PERMISSION_DENIED";
	case SECRETD_RESOURCE_EXHAUSTED:
		return "RESOURCE_EXHAUSTED";
	case SECRETD_FAILED_PRECONDITION:
		return "FAILED_PRECONDITION";
	case SECRETD_ABORTED:
		return "ABORTED";
	case SECRETD_OUT_OF_RANGE:
		return "OUT_OF_RANGE";
	case SECRETD_UNIMPLEMENTED:
		return "UNIMPLEMENTED";
	case SECRETD_INTERNAL:
		return "INTERNAL";
	case SECRETD_UNAVAILABLE:
		return "UNAVAILABLE";
	case SECRETD_DATA_LOSS:
		return "DATA_LOSS";
	case SECRETD_UNAUTHENTICATED:
		return "UNAUTHENTICATED";
	}
	return "UNKNOWN_STATUS";
}

const char *
secretd_storage_str(secretd_storage storage)
{
	switch (storage) {
	case SECRETD_STORAGE_ANY:
		return "any";
	case SECRETD_STORAGE_MEMORY:
		return "memory";
	case SECRETD_STORAGE_SQLCIPHER:
		return "sqlcipher";
	}
	return "unknown";
}

void
client_copy_str(char *dst, size_t dst_size, const char *src)
{
	size_t n;

	if (dst_size == 0)
		return;
	n = src != NULL ? strnlen(src, dst_size - 1) : 0;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

secretd_status
client_fail(secretd_error *err, secretd_status st, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return st;
	err->status = st;
	err->reason[0] = '\0';
	va_start(ap, fmt);
	(void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return st;
}

void
client_call_init(struct client_call *call, int timeout_ms, void *target)
{
	memset(call, 0, sizeof(*call));
	call->timeout_ms = timeout_ms;
	call->target = target;
	/* Replaced by the transport; left only if a stub never reached it. */
	(void)client_fail(&call->err, SECRETD_INTERNAL, "the call was not made");
}

secretd_storage
client_storage_from_pb(Secretd__V1__Storage storage)
{
	switch (storage) {
	case SECRETD__V1__STORAGE__STORAGE_MEMORY:
		return SECRETD_STORAGE_MEMORY;
	case SECRETD__V1__STORAGE__STORAGE_SQLCIPHER:
		return SECRETD_STORAGE_SQLCIPHER;
	default:
		return SECRETD_STORAGE_ANY;
	}
}

Secretd__V1__Storage
client_storage_to_pb(secretd_storage storage)
{
	switch (storage) {
	case SECRETD_STORAGE_MEMORY:
		return SECRETD__V1__STORAGE__STORAGE_MEMORY;
	case SECRETD_STORAGE_SQLCIPHER:
		return SECRETD__V1__STORAGE__STORAGE_SQLCIPHER;
	default:
		return SECRETD__V1__STORAGE__STORAGE_UNSPECIFIED;
	}
}

/* Translate an nng error once, here; the message names the URL. */
static secretd_status
client_nng_fail(secretd_error *err, int rv, const char *url, const char *what)
{
	secretd_status st;

	switch (rv) {
	case NNG_ETIMEDOUT:
		st = SECRETD_DEADLINE_EXCEEDED;
		break;
	case NNG_ECONNREFUSED:
	case NNG_ENOENT:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_EUNREACHABLE:
		st = SECRETD_UNAVAILABLE;
		break;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		/* Our own socket closed under the call: secretd_client_close. */
		st = SECRETD_CANCELLED;
		break;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
		st = SECRETD_INVALID_ARGUMENT;
		break;
	default:
		st = SECRETD_INTERNAL;
		break;
	}
	return client_fail(err, st, "%s %s: %s", what, url, nng_strerror(rv));
}

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

/* Count the call in, unless the client is closing. */
static bool
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

/* Count the call out; the last one out wakes a waiting secretd_client_close. After this
 * the call must not touch client: close may free it. */
static void
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
		st = client_fail(err, SECRETD_INTERNAL, "could not pack the %s request",
		    method->name);
		goto fail;
	}
	env.method = (char *)method->name;
	env.body.data = body;
	env.body.len = body_len;
	env.token = client->token != NULL ? client->token : (char *)"";
	env.timeout_ms = timeout_ms;
	env.request_id = request_id;
	env_len = protobuf_c_message_get_packed_size(&env.base);
	if ((rv = nng_msg_alloc(&msg, sizeof(frame_header) + env_len)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot build a request for");
		goto fail;
	}
	memcpy(nng_msg_body(msg), frame_header, sizeof(frame_header));
	if (protobuf_c_message_pack(&env.base, (uint8_t *)nng_msg_body(msg) +
	    sizeof(frame_header)) != env_len) {
		st = client_fail(err, SECRETD_INTERNAL, "could not pack the %s envelope",
		    method->name);
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
client_exchange(secretd_client *client, nng_msg *msg, int timeout_ms, nng_msg **replyp,
    secretd_error *err)
{
	nng_aio *aio = NULL;
	nng_ctx ctx = NNG_CTX_INITIALIZER;
	bool ctx_open = false;
	nng_time start = nng_clock();
	nng_duration left;
	secretd_status st;
	int rv;

	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot call");
		goto fail;
	}
	if ((rv = nng_ctx_open(&ctx, client->sock)) != 0) {
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
	(void)nng_ctx_close(ctx);
	nng_aio_free(aio);
	return SECRETD_OK;

fail_nng:
	if (rv == NNG_ETIMEDOUT && atomic_load(&client->pipes) <= 0) {
		st = client_fail(err, SECRETD_UNAVAILABLE,
		    "cannot connect to secretd at %s (no connection within %d ms)", client->url,
		    timeout_ms);
	} else if (rv == NNG_ETIMEDOUT) {
		st = client_fail(err, SECRETD_DEADLINE_EXCEEDED,
		    "no answer from secretd at %s within %d ms", client->url, timeout_ms);
	} else {
		st = client_nng_fail(err, rv, client->url, "call to");
	}
fail:
	client_msg_wipe_free(msg);
	if (ctx_open)
		(void)nng_ctx_close(ctx);
	nng_aio_free(aio); /* NULL-safe */
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
	reply = secretd__v1__reply__unpack(alloc, len - sizeof(frame_header),
	    frame + sizeof(frame_header));
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
 * The ProtobufCService invoke of every client: one synchronous exchange. closure_data is
 * always a struct client_call; the closure gets the unpacked output message on success
 * and NULL on failure, and the message is wiped and freed when it returns.
 */
static void
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
		st = client_fail(&call->err, SECRETD_INTERNAL, "no method %u in %s",
		    method_index, service->descriptor->name);
		goto done;
	}
	method = &service->descriptor->methods[method_index];
	if (input == NULL || input->descriptor != method->input) {
		st = client_fail(&call->err, SECRETD_INTERNAL, "wrong input message for %s",
		    method->name);
		goto done;
	}
	if (!client_enter(client)) {
		st = client_fail(&call->err, SECRETD_CANCELLED, "client for %s is closing",
		    client->url);
		goto done;
	}
	entered = true;

	timeout_ms = call->timeout_ms == 0 ? CLIENT_TIMEOUT_DEFAULT_MS : call->timeout_ms;
	wire_timeout = timeout_ms < 0 ? 0 : (uint32_t)timeout_ms;
	while (request_id == 0) {
		if (getrandom(&request_id, sizeof(request_id), 0) != sizeof(request_id)) {
			st = client_fail(&call->err, SECRETD_INTERNAL,
			    "getrandom failed: %s", strerror(errno));
			goto done;
		}
	}

	st = client_pack_request(client, method, input, wire_timeout, request_id, &msg,
	    &call->err);
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
	output = protobuf_c_message_unpack(method->output, &alloc, reply->body.len,
	    reply->body.data);
	if (output == NULL) {
		st = client_fail(&call->err, SECRETD_INTERNAL,
		    "bad reply to %s from %s: undecodable %s", method->name, client->url,
		    method->output->name);
		goto done;
	}
	(void)client_fail(&call->err, SECRETD_OK, "OK");
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

/* Track connected pipes; runs on nng's threads. */
static void
client_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	secretd_client *client = arg;

	(void)pipe;
	if (ev == NNG_PIPE_EV_ADD_POST)
		(void)atomic_fetch_add(&client->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		(void)atomic_fetch_sub(&client->pipes, 1);
}

/* protobuf_c_service_destroy on the embedded service closes the client. */
static void
client_service_destroy(ProtobufCService *service)
{
	secretd_client_close((secretd_client *)service);
}

secretd_status
secretd_default_url(char *buf, size_t len)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");
	size_t dir_len;
	int n;

	if (buf == NULL)
		return SECRETD_INVALID_ARGUMENT;
	/* The XDG spec says to ignore a relative path. */
	if (dir != NULL && dir[0] == '/') {
		dir_len = strlen(dir);
		while (dir_len > 1 && dir[dir_len - 1] == '/')
			dir_len--;
		if (dir_len == 1)
			dir_len = 0; /* "/" */
		if (dir_len > INT32_MAX)
			return SECRETD_OUT_OF_RANGE;
		n = snprintf(buf, len, "ipc://%.*s/secretd.sock", (int)dir_len, dir);
	} else {
		n = snprintf(buf, len, "ipc:///tmp/secretd-%lu/secretd.sock",
		    (unsigned long)getuid());
	}
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return SECRETD_OUT_OF_RANGE;
	}
	return SECRETD_OK;
}

/* Read a PEM file whole, NUL-terminated, into *bufp (caller wipes and frees with
 * client_pem_free). Returns 0 or an errno value. */
static int
client_pem_read(const char *path, char **bufp, size_t *lenp)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t len = 0;
	size_t cap = 64 * 1024; /* PEM certificates and keys are far smaller */
	int rv = 0;

	f = fopen(path, "re");
	if (f == NULL)
		return errno;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		rv = ENOMEM;
		goto done;
	}
	len = fread(buf, 1, cap + 1, f);
	if (ferror(f)) {
		rv = EIO;
		goto done;
	}
	if (len > cap) {
		rv = EFBIG;
		goto done;
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	buf = NULL;
done:
	if (buf != NULL) {
		explicit_bzero(buf, cap + 1);
		free(buf);
	}
	(void)fclose(f);
	return rv;
}

static void
client_pem_free(char *buf, size_t len)
{
	if (buf == NULL)
		return;
	explicit_bzero(buf, len);
	free(buf);
}

/* Load the client certificate and its key (possibly the same PEM file). */
static secretd_status
client_tls_own_cert(secretd_client *client, const secretd_options *options, secretd_error *err)
{
	char *cert = NULL;
	char *key = NULL;
	size_t cert_len = 0;
	size_t key_len = 0;
	secretd_status st;
	int rv;

	if ((rv = client_pem_read(options->tls_cert_file, &cert, &cert_len)) != 0) {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT, "cannot read %s: %s",
		    options->tls_cert_file, strerror(rv));
		goto done;
	}
	if ((rv = client_pem_read(options->tls_key_file, &key, &key_len)) != 0) {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT, "cannot read %s: %s",
		    options->tls_key_file, strerror(rv));
		goto done;
	}
	if ((rv = nng_tls_config_own_cert(client->tls, cert, key, NULL)) != 0) {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "cannot use client certificate %s with key %s: %s", options->tls_cert_file,
		    options->tls_key_file, nng_strerror(rv));
		goto done;
	}
	st = SECRETD_OK;
done:
	client_pem_free(key, key_len);
	client_pem_free(cert, cert_len);
	return st;
}

/* Build the TLS configuration for a tls+tcp:// dialer. */
static secretd_status
client_tls_setup(secretd_client *client, const secretd_options *options, secretd_error *err)
{
	nng_url *url = NULL;
	const char *server_name;
	secretd_status st;
	int rv;

	if (options == NULL || options->tls_ca_file == NULL || options->tls_ca_file[0] == '\0') {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "%s needs a CA file (tls_ca_file) to verify the server", client->url);
		goto fail;
	}
	if ((options->tls_cert_file == NULL) != (options->tls_key_file == NULL)) {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "a client certificate needs both tls_cert_file and tls_key_file");
		goto fail;
	}
	if ((rv = nng_url_parse(&url, client->url)) != 0) {
		st = client_nng_fail(err, rv, client->url, "bad URL");
		goto fail;
	}
	server_name = options->tls_server_name != NULL ? options->tls_server_name
						       : url->u_hostname;
	if (server_name == NULL || server_name[0] == '\0') {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "%s has no host name to verify; set tls_server_name", client->url);
		goto fail;
	}
	if ((rv = nng_tls_config_alloc(&client->tls, NNG_TLS_MODE_CLIENT)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot set up TLS for");
		goto fail;
	}
	if ((rv = nng_tls_config_auth_mode(client->tls, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (rv = nng_tls_config_server_name(client->tls, server_name)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot set up TLS for");
		goto fail;
	}
	if ((rv = nng_tls_config_ca_file(client->tls, options->tls_ca_file)) != 0) {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT, "cannot load CA file %s: %s",
		    options->tls_ca_file, nng_strerror(rv));
		goto fail;
	}
	if (options->tls_cert_file != NULL &&
	    (st = client_tls_own_cert(client, options, err)) != SECRETD_OK)
		goto fail;
	if ((rv = nng_dialer_set_ptr(client->dialer, NNG_OPT_TLS_CONFIG, client->tls)) != 0) {
		st = client_nng_fail(err, rv, client->url, "cannot set up TLS for");
		goto fail;
	}
	nng_url_free(url);
	return SECRETD_OK;

fail:
	if (url != NULL)
		nng_url_free(url);
	return st;
}

/* Free everything of a client whose calls have all ended. */
static void
client_destroy(secretd_client *client)
{
	if (client->sock_open)
		(void)nng_close(client->sock);
	if (client->tls != NULL)
		nng_tls_config_free(client->tls);
	if (client->token != NULL) {
		explicit_bzero(client->token, strlen(client->token));
		free(client->token);
	}
	free(client->url);
	(void)pthread_cond_destroy(&client->idle);
	(void)pthread_mutex_destroy(&client->mu);
	free(client);
}

secretd_status
secretd_client_open(const char *url, const secretd_options *options, secretd_client **clientp,
    secretd_error *err)
{
	secretd_client *client = NULL;
	char default_url[512];
	bool tls_url;
	bool tls_options;
	secretd_status st;
	int rv;

	if (clientp == NULL)
		return client_fail(err, SECRETD_INVALID_ARGUMENT, "clientp is NULL");
	*clientp = NULL;
	if (url == NULL) {
		if (secretd_default_url(default_url, sizeof(default_url)) != SECRETD_OK)
			return client_fail(err, SECRETD_INVALID_ARGUMENT,
			    "the default URL is too long ($XDG_RUNTIME_DIR)");
		url = default_url;
	}
	if (url[0] == '\0')
		return client_fail(err, SECRETD_INVALID_ARGUMENT, "empty URL");
	tls_url = strncmp(url, "tls+", 4) == 0;
	tls_options = options != NULL &&
	    (options->tls_ca_file != NULL || options->tls_server_name != NULL ||
		options->tls_cert_file != NULL || options->tls_key_file != NULL);
	if (tls_options && !tls_url)
		return client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "TLS options given for %s, which is not a tls+tcp:// URL", url);

	client = calloc(1, sizeof(*client));
	if (client == NULL)
		return client_fail(err, SECRETD_INTERNAL, "out of memory");
	if (pthread_mutex_init(&client->mu, NULL) != 0) {
		free(client);
		return client_fail(err, SECRETD_INTERNAL, "cannot create a mutex");
	}
	if (pthread_cond_init(&client->idle, NULL) != 0) {
		(void)pthread_mutex_destroy(&client->mu);
		free(client);
		return client_fail(err, SECRETD_INTERNAL, "cannot create a condition variable");
	}
	client->service.descriptor = &secretd__v1__secrets__descriptor;
	client->service.invoke = client_invoke;
	client->service.destroy = client_service_destroy;
	atomic_init(&client->pipes, 0);
	client->url = strdup(url);
	if (client->url == NULL ||
	    (options != NULL && options->token != NULL &&
		(client->token = strdup(options->token)) == NULL)) {
		st = client_fail(err, SECRETD_INTERNAL, "out of memory");
		goto fail;
	}

	if ((rv = nng_req0_open(&client->sock)) != 0) {
		st = client_fail(err, SECRETD_INTERNAL, "cannot open a socket for %s: %s", url,
		    nng_strerror(rv));
		goto fail;
	}
	client->sock_open = true;
	if ((rv = nng_socket_set_size(client->sock, NNG_OPT_RECVMAXSZ, CLIENT_RECV_MAX)) != 0 ||
	    (rv = nng_pipe_notify(client->sock, NNG_PIPE_EV_ADD_POST, client_pipe_event,
		 client)) != 0 ||
	    (rv = nng_pipe_notify(client->sock, NNG_PIPE_EV_REM_POST, client_pipe_event,
		 client)) != 0) {
		st = client_nng_fail(err, rv, url, "cannot set up the socket for");
		goto fail;
	}
	if ((rv = nng_dialer_create(&client->dialer, client->sock, url)) != 0) {
		/* Whatever nng finds wrong with the URL (syntax, scheme) is the caller's. */
		st = client_fail(err, rv == NNG_ENOMEM ? SECRETD_INTERNAL : SECRETD_INVALID_ARGUMENT,
		    "bad URL %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	if (tls_url && (st = client_tls_setup(client, options, err)) != SECRETD_OK)
		goto fail;
	/* Non-blocking: the dialer keeps retrying in the background, and the first call
	 * waits for the connection within its own timeout. */
	if ((rv = nng_dialer_start(client->dialer, NNG_FLAG_NONBLOCK)) != 0) {
		st = client_nng_fail(err, rv, url, "cannot dial");
		goto fail;
	}
	*clientp = client;
	return SECRETD_OK;

fail:
	client_destroy(client);
	return st;
}

void
secretd_client_close(secretd_client *client)
{
	if (client == NULL)
		return;
	(void)pthread_mutex_lock(&client->mu);
	client->closing = true;
	(void)pthread_mutex_unlock(&client->mu);
	/* Aborts every call in flight with NNG_ECLOSED (SECRETD_CANCELLED). */
	if (client->sock_open) {
		(void)nng_close(client->sock);
		client->sock_open = false;
	}
	(void)pthread_mutex_lock(&client->mu);
	while (client->active > 0)
		(void)pthread_cond_wait(&client->idle, &client->mu);
	(void)pthread_mutex_unlock(&client->mu);
	client_destroy(client);
}
