/*
 * client.c: the secretd_client handle (open, which takes a pooled connection; close,
 * which cancels and waits for the calls in flight and gives the connection back), the
 * connection pool itself, the default URL, the names of statuses and storages, and the
 * error helpers the other parts share.
 *
 * The rule for nng sockets (nng 1.5.2; tests/README.md, "nng 1.5.2"): never nng_close a
 * socket while a message can arrive on one of its pipes. For a REQ socket that means while
 * any request may still be answered, including one whose call timed out or was cancelled,
 * so libsecretd keeps its sockets for the life of the process, one per URL and TLS
 * options (struct client_conn), and closes only sockets that never connected or idle ones
 * quiet for CLIENT_QUIET_MS, with a bounded wait. Any other socket in a process that links
 * libsecretd (a SUB socket, say) must follow the same rule: every nng_close shares nng's
 * one reaper thread, and one close that hangs makes every later one hang.
 *
 * Not here: the exchange itself (transport.c), the calls (calls.c) or results
 * (results.c). The token and PEM buffers it reads are wiped before they are freed.
 *
 * Thread safety: secretd_client_open and the name functions are safe anywhere (the pool
 * has its own lock); secretd_client_close may run while other threads are inside calls on
 * the handle (they end SECRETD_CANCELLED), but not concurrently with itself.
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

/* Track connected pipes; runs on nng's threads. */
static void
client_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct client_conn *conn = arg;

	(void)pipe;
	if (ev == NNG_PIPE_EV_ADD_POST)
		(void)atomic_fetch_add(&conn->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		(void)atomic_fetch_sub(&conn->pipes, 1);
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
client_tls_own_cert(nng_tls_config *tls, const secretd_options *options, secretd_error *err)
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
	if ((rv = nng_tls_config_own_cert(tls, cert, key, NULL)) != 0) {
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
client_tls_setup(struct client_conn *conn, size_t idx, const char *curl, nng_dialer dialer,
    const secretd_options *options, secretd_error *err)
{
	nng_url *url = NULL;
	nng_tls_config *tls = NULL; /* conn's once allocated (freed with conn) */
	const char *server_name;
	secretd_status st;
	int rv;

	if (options == NULL || options->tls_ca_file == NULL || options->tls_ca_file[0] == '\0') {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "%s needs a CA file (tls_ca_file) to verify the server", curl);
		goto fail;
	}
	if ((options->tls_cert_file == NULL) != (options->tls_key_file == NULL)) {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "a client certificate needs both tls_cert_file and tls_key_file");
		goto fail;
	}
	if ((rv = nng_url_parse(&url, curl)) != 0) {
		st = client_nng_fail(err, rv, curl, "bad URL");
		goto fail;
	}
	server_name = options->tls_server_name != NULL ? options->tls_server_name : url->u_hostname;
	if (server_name == NULL || server_name[0] == '\0') {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "%s has no host name to verify; set tls_server_name", curl);
		goto fail;
	}
	if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT)) != 0) {
		st = client_nng_fail(err, rv, curl, "cannot set up TLS for");
		goto fail;
	}
	/* Owned by conn from here, freed with it. */
	conn->tls[idx] = tls;
	if ((rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (rv = nng_tls_config_server_name(tls, server_name)) != 0) {
		st = client_nng_fail(err, rv, curl, "cannot set up TLS for");
		goto fail;
	}
	if ((rv = nng_tls_config_ca_file(tls, options->tls_ca_file)) != 0) {
		st = client_fail(err, SECRETD_INVALID_ARGUMENT, "cannot load CA file %s: %s",
		    options->tls_ca_file, nng_strerror(rv));
		goto fail;
	}
	if (options->tls_cert_file != NULL &&
	    (st = client_tls_own_cert(tls, options, err)) != SECRETD_OK)
		goto fail;
	if ((rv = nng_dialer_set_ptr(dialer, NNG_OPT_TLS_CONFIG, tls)) != 0) {
		st = client_nng_fail(err, rv, curl, "cannot set up TLS for");
		goto fail;
	}
	nng_url_free(url);
	return SECRETD_OK;

fail:
	if (url != NULL)
		nng_url_free(url);
	return st;
}

int
client_ctx_take(struct client_conn *conn, nng_ctx *ctxp)
{
	bool pooled = false;

	(void)pthread_mutex_lock(&conn->mu);
	if (conn->n_ctx_pool > 0) {
		*ctxp = conn->ctx_pool[--conn->n_ctx_pool];
		pooled = true;
	}
	(void)pthread_mutex_unlock(&conn->mu);
	return pooled ? 0 : nng_ctx_open(ctxp, conn->sock);
}

void
client_ctx_put(struct client_conn *conn, nng_ctx ctx)
{
	(void)pthread_mutex_lock(&conn->mu);
	if (conn->n_ctx_pool == conn->cap_ctx_pool) {
		size_t cap = conn->cap_ctx_pool == 0 ? 8 : conn->cap_ctx_pool * 2;
		nng_ctx *pool = realloc(conn->ctx_pool, cap * sizeof(*pool));

		if (pool == NULL) {
			(void)pthread_mutex_unlock(&conn->mu);
			(void)nng_ctx_close(ctx);
			return;
		}
		conn->ctx_pool = pool;
		conn->cap_ctx_pool = cap;
	}
	conn->ctx_pool[conn->n_ctx_pool++] = ctx;
	(void)pthread_mutex_unlock(&conn->mu);
}

void
client_conn_abandoned(struct client_conn *conn)
{
	(void)pthread_mutex_lock(&conn->mu);
	conn->last_abandoned = nng_clock();
	(void)pthread_mutex_unlock(&conn->mu);
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
 * The connection pool: the one piece of process-wide mutable state in libsecretd. nng's
 * own state is process-wide (one reaper thread serves every socket, and one wedged close
 * wedges them all), so the rule that keeps it healthy has to be process-wide too: a socket
 * that carried calls is never closed while a late reply can reach it (see struct
 * client_conn). Guarded by client_pool_mu; a conn's refs and idle_since change only under
 * it.
 */
static pthread_mutex_t client_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct client_conn *client_pool;

/* nng_close on a thread of its own, so that a close that never returns cannot take the
 * caller with it. Freed by whichever side finishes last. */
struct closer {
	nng_socket sock;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	bool abandoned;
};

static void
closer_free(struct closer *cl)
{
	(void)pthread_cond_destroy(&cl->cv);
	(void)pthread_mutex_destroy(&cl->mu);
	free(cl);
}

static void *
closer_main(void *arg)
{
	struct closer *cl = arg;
	bool abandoned;

	(void)nng_close(cl->sock);
	(void)pthread_mutex_lock(&cl->mu);
	cl->done = true;
	abandoned = cl->abandoned;
	(void)pthread_cond_signal(&cl->cv);
	(void)pthread_mutex_unlock(&cl->mu);
	if (abandoned)
		closer_free(cl);
	return NULL;
}

/* See client.h. */
void
client_socket_close_bounded(nng_socket sock)
{
	struct closer *cl = calloc(1, sizeof(*cl));
	struct timespec until;
	pthread_attr_t attr;
	pthread_t thread;
	bool started = false;

	if (cl != NULL && pthread_mutex_init(&cl->mu, NULL) == 0) {
		if (pthread_cond_init(&cl->cv, NULL) != 0) {
			(void)pthread_mutex_destroy(&cl->mu);
			free(cl);
			cl = NULL;
		}
	} else {
		free(cl);
		cl = NULL;
	}
	if (cl != NULL && pthread_attr_init(&attr) == 0) {
		cl->sock = sock;
		(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&thread, &attr, closer_main, cl) == 0;
		(void)pthread_attr_destroy(&attr);
	}
	if (!started) {
		if (cl != NULL)
			closer_free(cl);
		(void)nng_close(sock);
		return;
	}
	(void)clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CLIENT_CLOSE_WAIT_MS / 1000;
	(void)pthread_mutex_lock(&cl->mu);
	while (!cl->done)
		if (pthread_cond_timedwait(&cl->cv, &cl->mu, &until) == ETIMEDOUT)
			break;
	if (cl->done) {
		(void)pthread_mutex_unlock(&cl->mu);
		closer_free(cl);
		return;
	}
	cl->abandoned = true;
	(void)pthread_mutex_unlock(&cl->mu);
}

/* Free a conn that is in no pool and has no handle. Its socket is closed only when
 * close_sock (see client_socket_close_bounded for when that is safe). */
static void
client_conn_free(struct client_conn *conn, bool close_sock)
{
	if (conn == NULL)
		return;
	if (close_sock) {
		/* The callbacks point at conn, which is about to go. */
		(void)nng_pipe_notify(conn->sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
		(void)nng_pipe_notify(conn->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
		client_socket_close_bounded(conn->sock); /* closes the pooled contexts too */
	}
	for (size_t i = 0; i < CLIENT_MAX_ADDRS; i++)
		if (conn->tls[i] != NULL)
			nng_tls_config_free(conn->tls[i]);
	free(conn->ctx_pool);
	free(conn->key);
	free(conn->url);
	(void)pthread_mutex_destroy(&conn->mu);
	free(conn);
}

/*
 * Dial one URL on conn's socket (with TLS for tls+tcp://). One URL per call, so that a
 * list of addresses is a loop over this function. Non-blocking: the dialer keeps
 * retrying in the background, and the first call waits for a connection within its own
 * timeout.
 */
static secretd_status
client_conn_dial(struct client_conn *conn, size_t idx, const char *url,
    const secretd_options *options, secretd_error *err)
{
	nng_dialer dialer;
	bool tls_options =
	    options != NULL && (options->tls_ca_file != NULL || options->tls_server_name != NULL ||
	                           options->tls_cert_file != NULL || options->tls_key_file != NULL);
	secretd_status st;
	int rv;

	if (tls_options && strncmp(url, "tls+", 4) != 0)
		return client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "TLS options given for %s, which is not a tls+tcp:// URL", url);
	if ((rv = nng_dialer_create(&dialer, conn->sock, url)) != 0) {
		/* Whatever nng finds wrong with the URL (syntax, scheme) is the caller's. */
		return client_fail(err,
		    rv == NNG_ENOMEM ? SECRETD_INTERNAL : SECRETD_INVALID_ARGUMENT,
		    "bad URL %s: %s", url, nng_strerror(rv));
	}
	if (strncmp(url, "tls+", 4) == 0 && conn->tls[idx] != NULL) {
		/* A redial: the configuration is already built. */
		if ((rv = nng_dialer_set_ptr(dialer, NNG_OPT_TLS_CONFIG, conn->tls[idx])) != 0)
			return client_nng_fail(err, rv, url, "cannot set up TLS for");
	} else if (strncmp(url, "tls+", 4) == 0 &&
	           (st = client_tls_setup(conn, idx, url, dialer, options, err)) != SECRETD_OK) {
		return st;
	}
	/* A pooled socket outlives server restarts: find the server again quickly (nng's
	 * default is a fixed 100 ms), backing off to nng's default while it stays down. */
	if ((rv = nng_dialer_set_ms(dialer, NNG_OPT_RECONNMINT, CLIENT_RECONNECT_MIN_MS)) != 0 ||
	    (rv = nng_dialer_set_ms(dialer, NNG_OPT_RECONNMAXT, CLIENT_RECONNECT_MAX_MS)) != 0)
		return client_nng_fail(err, rv, url, "cannot set up the dialer for");
	if ((rv = nng_dialer_start(dialer, NNG_FLAG_NONBLOCK)) != 0)
		return client_nng_fail(err, rv, url, "cannot dial");
	conn->dialers[idx] = dialer;
	return SECRETD_OK;
}

/*
 * Dial every address of a comma-separated list (a cluster's nodes) on conn's one REQ
 * socket: nng sends each request on a connected pipe and resends it on another when the
 * pipe it went out on breaks, so a call to a node that dies is answered by another. (Calls
 * are spread over the connected nodes; temporary secrets live on one node only, so a job
 * that relies on its own temporaries gives one address.)
 */
static secretd_status
client_conn_dial_list(struct client_conn *conn, const char *list,
    const secretd_options *options, bool redial, secretd_error *err)
{
	char *copy = strdup(list);
	char *save = NULL;
	size_t n = 0;
	secretd_status st = SECRETD_OK;

	if (copy == NULL)
		return client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
	for (char *a = strtok_r(copy, ",", &save); a != NULL && st == SECRETD_OK;
	     a = strtok_r(NULL, ",", &save)) {
		size_t len;

		/* "a, b" as well as "a,b": spaces around an address are not part of it. */
		while (*a == ' ')
			a++;
		len = strlen(a);
		while (len > 0 && a[len - 1] == ' ')
			a[--len] = '\0';
		if (len == 0)
			continue;
		if (n == CLIENT_MAX_ADDRS) {
			st = client_fail(err, SECRETD_INVALID_ARGUMENT,
			    "at most %d addresses in one list", CLIENT_MAX_ADDRS);
			break;
		}
		if (redial) {
			/* Dial anew first (the socket keeps the calls queued), then drop the
			 * old dialer; on failure the old one stays: nothing is lost by trying
			 * again later. */
			nng_dialer old = conn->dialers[n];

			if (client_conn_dial(conn, n, a, NULL, NULL) == SECRETD_OK)
				(void)nng_dialer_close(old);
		} else {
			st = client_conn_dial(conn, n, a, options, err);
		}
		n++;
	}
	if (st == SECRETD_OK && n == 0)
		st = client_fail(err, SECRETD_INVALID_ARGUMENT, "no address in '%s'", list);
	if (!redial)
		conn->n_addrs = n;
	free(copy);
	return st;
}

void
client_conn_redial(struct client_conn *conn)
{
	nng_time now = nng_clock();

	(void)pthread_mutex_lock(&conn->mu);
	if (atomic_load(&conn->pipes) > 0 ||
	    (conn->last_redial != 0 && now - conn->last_redial < 1000)) {
		(void)pthread_mutex_unlock(&conn->mu);
		return;
	}
	conn->last_redial = now;
	(void)client_conn_dial_list(conn, conn->url, NULL, true, NULL);
	(void)pthread_mutex_unlock(&conn->mu);
}

/* A new conn for url, dialling. The socket is closed again on failure: it never
 * connected, so no reply can be on its way. */
static secretd_status
client_conn_new(const char *url, const char *key, const secretd_options *options,
    struct client_conn **connp, secretd_error *err)
{
	struct client_conn *conn = calloc(1, sizeof(*conn));
	bool sock_open = false;
	secretd_status st;
	int rv;

	if (conn == NULL)
		return client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
	if (pthread_mutex_init(&conn->mu, NULL) != 0) {
		free(conn);
		return client_fail(err, SECRETD_INTERNAL, "cannot create a mutex");
	}
	atomic_init(&conn->pipes, 0);
	if ((conn->key = strdup(key)) == NULL || (conn->url = strdup(url)) == NULL) {
		st = client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if ((rv = nng_req0_open(&conn->sock)) != 0) {
		st = client_fail(err, SECRETD_INTERNAL, "cannot open a socket for %s: %s", url,
		    nng_strerror(rv));
		goto fail;
	}
	sock_open = true;
	if ((rv = nng_socket_set_size(conn->sock, NNG_OPT_RECVMAXSZ, CLIENT_RECV_MAX)) != 0 ||
	    (rv = nng_pipe_notify(conn->sock, NNG_PIPE_EV_ADD_POST, client_pipe_event, conn)) !=
	        0 ||
	    (rv = nng_pipe_notify(conn->sock, NNG_PIPE_EV_REM_POST, client_pipe_event, conn)) !=
	        0) {
		st = client_nng_fail(err, rv, url, "cannot set up the socket for");
		goto fail;
	}
	if ((st = client_conn_dial_list(conn, url, options, false, err)) != SECRETD_OK)
		goto fail;
	conn->last_redial = nng_clock(); /* a fresh dialer gets its chance first */
	*connp = conn;
	return SECRETD_OK;
fail:
	client_conn_free(conn, sock_open);
	return st;
}

/* Close idle conns beyond CLIENT_POOL_IDLE_MAX, oldest first, among those quiet for
 * CLIENT_QUIET_MS. Called with client_pool_mu held; closes after dropping it. */
static void
client_pool_trim_locked(void)
{
	struct client_conn *evict = NULL;
	struct client_conn **pp;
	size_t idle = 0;
	nng_time now = nng_clock();

	for (struct client_conn *c = client_pool; c != NULL; c = c->next)
		idle += c->refs == 0;
	while (idle > CLIENT_POOL_IDLE_MAX) {
		struct client_conn **oldest = NULL;

		for (pp = &client_pool; *pp != NULL; pp = &(*pp)->next) {
			struct client_conn *c = *pp;
			nng_time quiet;

			if (c->refs != 0)
				continue;
			(void)pthread_mutex_lock(&c->mu);
			quiet = now - c->last_abandoned;
			(void)pthread_mutex_unlock(&c->mu);
			if (c->last_abandoned != 0 && quiet < CLIENT_QUIET_MS)
				continue;
			if (oldest == NULL || c->idle_since < (*oldest)->idle_since)
				oldest = pp;
		}
		if (oldest == NULL)
			break; /* none quiet: keep them all for now */
		evict = *oldest;
		*oldest = evict->next;
		idle--;
		(void)pthread_mutex_unlock(&client_pool_mu);
		client_conn_free(evict, true);
		(void)pthread_mutex_lock(&client_pool_mu);
	}
}

/* The pool key: the URL and every option that shapes the dialer. */
static char *
client_conn_key(const char *url, const secretd_options *o)
{
	const char *parts[5] = {url, NULL, NULL, NULL, NULL};
	size_t len = 0;
	char *key;

	if (o != NULL) {
		parts[1] = o->tls_ca_file;
		parts[2] = o->tls_server_name;
		parts[3] = o->tls_cert_file;
		parts[4] = o->tls_key_file;
	}
	for (int i = 0; i < 5; i++)
		len += (parts[i] != NULL ? strlen(parts[i]) : 0) + 1;
	key = malloc(len + 1);
	if (key == NULL)
		return NULL;
	key[0] = '\0';
	for (int i = 0; i < 5; i++) {
		(void)strcat(key, parts[i] != NULL ? parts[i] : "");
		(void)strcat(key, "\n");
	}
	return key;
}

/* A conn for url and options from the pool, or a new one added to it. */
static secretd_status
client_conn_get(const char *url, const secretd_options *options, struct client_conn **connp,
    secretd_error *err)
{
	char *key = client_conn_key(url, options);
	struct client_conn *conn = NULL;
	secretd_status st = SECRETD_OK;

	if (key == NULL)
		return client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
	(void)pthread_mutex_lock(&client_pool_mu);
	for (conn = client_pool; conn != NULL; conn = conn->next)
		if (strcmp(conn->key, key) == 0)
			break;
	if (conn == NULL) {
		/* Dialling is non-blocking, so holding the lock here is short. */
		st = client_conn_new(url, key, options, &conn, err);
		if (st == SECRETD_OK) {
			conn->next = client_pool;
			client_pool = conn;
		}
	}
	if (st == SECRETD_OK) {
		conn->refs++;
		*connp = conn;
	}
	(void)pthread_mutex_unlock(&client_pool_mu);
	free(key);
	return st;
}

/* A handle is done with conn: keep it for the next handle (and trim the idle ones). */
static void
client_conn_release(struct client_conn *conn)
{
	(void)pthread_mutex_lock(&client_pool_mu);
	if (--conn->refs == 0) {
		conn->idle_since = nng_clock();
		client_pool_trim_locked();
	}
	(void)pthread_mutex_unlock(&client_pool_mu);
}

static void
client_destroy(secretd_client *client)
{
	if (client->conn != NULL)
		client_conn_release(client->conn);
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
	/* The wait for a socket file to appear is for one ipc:// address, not a list. */
	if (client->url != NULL && strncmp(client->url, "ipc://", 6) == 0 &&
	    strchr(client->url, ',') == NULL)
		client->ipc_path = client->url + 6;
	if (client->url == NULL || (options != NULL && options->token != NULL &&
	                               (client->token = strdup(options->token)) == NULL)) {
		st = client_fail(err, SECRETD_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	if ((st = client_conn_get(url, options, &client->conn, err)) != SECRETD_OK)
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
