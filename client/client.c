/*
 * client.c: the secretd_client handle (open, which takes one pooled connection per
 * address; close, which cancels and waits for the calls in flight and gives the
 * connections back), the default URL, the names of statuses and storages, and the error
 * helpers the other parts share.
 *
 * Not here: the connections and their pool (conn.c), the exchange and failover
 * (transport.c), the calls (calls.c) or results (results.c). The token is wiped before it
 * is freed.
 *
 * Thread safety: secretd_client_open and the name functions are safe anywhere;
 * secretd_client_close may run while other threads are inside calls on the handle (they
 * end SECRETD_CANCELLED), but not concurrently with itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "cache.h"
#include "client.h"

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
	/* Replaced by the transport; left only if a stub never reached it. (No printf:
	 * this runs on every call.) */
	call->err.status = SECRETD_INTERNAL;
	memcpy(call->err.message, "the call was not made", sizeof("the call was not made"));
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

secretd_status
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
	case NNG_ENOMEM:
		st = SECRETD_RESOURCE_EXHAUSTED;
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
		n = snprintf(
		    buf, len, "ipc:///tmp/secretd-%lu/secretd.sock", (unsigned long)getuid());
	}
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return SECRETD_OUT_OF_RANGE;
	}
	return SECRETD_OK;
}

bool
client_call_track(secretd_client *client, nng_aio *aio)
{
	bool ok = false;

	(void)pthread_mutex_lock(&client->mu);
	if (client->closing)
		goto done;
	if (client->n_calls == client->cap_calls) {
		size_t cap = client->cap_calls == 0 ? 8 : client->cap_calls * 2;
		nng_aio **calls = realloc(client->calls, cap * sizeof(*calls));

		if (calls == NULL)
			goto done;
		client->calls = calls;
		client->cap_calls = cap;
	}
	client->calls[client->n_calls++] = aio;
	ok = true;
done:
	(void)pthread_mutex_unlock(&client->mu);
	return ok;
}

void
client_call_untrack(secretd_client *client, nng_aio *aio)
{
	(void)pthread_mutex_lock(&client->mu);
	for (size_t i = 0; i < client->n_calls; i++) {
		if (client->calls[i] == aio) {
			client->calls[i] = client->calls[--client->n_calls];
			break;
		}
	}
	(void)pthread_mutex_unlock(&client->mu);
}
/*
 * Take a pooled conn for every address of client->url, a comma-separated list (a
 * cluster's nodes; spaces around an address are not part of it). Calls go to the first
 * address while it answers (see struct secretd_client's preferred).
 */
static secretd_status
client_open_conns(secretd_client *client, const secretd_options *options, secretd_error *err)
{
	char *copy = strdup(client->url);
	char *save = NULL;
	secretd_status st = SECRETD_OK;

	if (copy == NULL)
		return client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
	for (char *a = strtok_r(copy, ",", &save); a != NULL && st == SECRETD_OK;
	     a = strtok_r(NULL, ",", &save)) {
		size_t len;

		while (*a == ' ')
			a++;
		len = strlen(a);
		while (len > 0 && a[len - 1] == ' ')
			a[--len] = '\0';
		if (len == 0)
			continue;
		if (client->n_conns == CLIENT_MAX_ADDRS) {
			st = client_fail(err, SECRETD_INVALID_ARGUMENT,
			    "at most %d addresses in one list", CLIENT_MAX_ADDRS);
			break;
		}
		st = client_conn_get(a, options, &client->conns[client->n_conns], err);
		if (st == SECRETD_OK)
			client->n_conns++;
	}
	if (st == SECRETD_OK && client->n_conns == 0)
		st = client_fail(err, SECRETD_INVALID_ARGUMENT, "no address in '%s'", client->url);
	free(copy);
	return st;
}

static void
client_destroy(secretd_client *client)
{
	for (size_t i = 0; i < client->n_conns; i++)
		client_conn_release(client->conns[i]);
	if (client->token != NULL) {
		explicit_bzero(client->token, strlen(client->token));
		free(client->token);
	}
	free(client->url);
	free(client->calls);
	(void)pthread_cond_destroy(&client->idle);
	(void)pthread_mutex_destroy(&client->mu);
	free(client);
}

secretd_status
secretd_client_open(
    const char *url, const secretd_options *options, secretd_client **clientp, secretd_error *err)
{
	secretd_client *client = NULL;
	char default_url[512];
	secretd_status st;

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

	client = calloc(1, sizeof(*client));
	if (client == NULL)
		return client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
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
	client->url = strdup(url);
	atomic_init(&client->store_rev, 0);
	atomic_init(&client->preferred, 0);
	/* The wait for a socket file to appear is for one ipc:// address, not a list. */
	if (client->url != NULL && strncmp(client->url, "ipc://", 6) == 0 &&
	    strchr(client->url, ',') == NULL)
		client->ipc_path = client->url + 6;
	if (client->url == NULL || (options != NULL && options->token != NULL &&
	                               (client->token = strdup(options->token)) == NULL)) {
		st = client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if ((st = client_open_conns(client, options, err)) != SECRETD_OK)
		goto fail;
	if ((st = client_cache_open(client, options, &client->cache, err)) != SECRETD_OK)
		goto fail;
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
	/* Cancel the exchanges in flight (they end SECRETD_CANCELLED) and wait for the calls
	 * to return. The socket stays open for the next handle: see struct client_conn. */
	(void)pthread_mutex_lock(&client->mu);
	client->closing = true;
	while (client->active > 0) {
		struct timespec until;

		/* Again every 50 ms: a call between its send and its receive has nothing in
		 * flight to cancel at the first pass, and starts its receive right after. */
		for (size_t i = 0; i < client->n_calls; i++)
			nng_aio_cancel(client->calls[i]); /* no callback: only wakes nng_aio_wait */
		(void)clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 50 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&client->idle, &client->mu, &until);
	}
	(void)pthread_mutex_unlock(&client->mu);
	/* Every call is out (the cache's subscriber thread's Subscribe too: cancelled above,
	 * and closing refuses new ones), so the cache can go before the handle. */
	client_cache_close(client->cache);
	client->cache = NULL;
	client_destroy(client);
}
