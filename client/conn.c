/*
 * conn.c: libsecretd's pooled connections. A struct client_conn is one nng REQ socket
 * dialling one server address (with its TLS configuration for tls+tcp://), shared by
 * every handle opened on that address with the same TLS options and kept when the last of
 * them closes; its idle nng contexts are pooled too. Also the bounded close every socket
 * goes through when no moment is known to be safe for nng_close.
 *
 * The rule for nng sockets (nng 1.5.2; tests/README.md, "nng 1.5.2"): never nng_close a
 * socket while a message can arrive on one of its pipes. For a REQ socket that means while
 * any request may still be answered, including one whose call timed out or was cancelled,
 * so libsecretd keeps its sockets for the life of the process, one per address and TLS
 * options, and closes only sockets that never connected or idle ones quiet for
 * CLIENT_QUIET_MS, with a bounded wait. Any other socket in a process that links
 * libsecretd (a SUB socket, say) must follow the same rule: every nng_close shares nng's
 * one reaper thread, and one close that hangs makes every later one hang.
 *
 * Not here: the handle (client.c), the exchange and failover between addresses
 * (transport.c). PEM buffers read here are wiped before they are freed.
 *
 * Thread safety: everything here is safe from any thread; the pool has its own lock and
 * each conn a mutex for its context pool and redial bookkeeping.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "client.h"

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
client_tls_setup(struct client_conn *conn, const char *curl, nng_dialer dialer,
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
	conn->tls = tls;
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
	if (conn->tls != NULL)
		nng_tls_config_free(conn->tls);
	free(conn->ctx_pool);
	free(conn->key);
	free(conn->url);
	(void)pthread_mutex_destroy(&conn->mu);
	free(conn);
}

/*
 * Dial conn's address on its socket (with TLS for tls+tcp://). Non-blocking: the dialer
 * keeps retrying in the background, and the first call waits for a connection within its
 * own timeout. A redial (conn->tls already built, options NULL) reuses the configuration.
 */
static secretd_status
client_conn_dial(struct client_conn *conn, const secretd_options *options, nng_dialer *dialerp,
    secretd_error *err)
{
	const char *url = conn->url;
	bool tls_url = strncmp(url, "tls+", 4) == 0;
	bool tls_options =
	    options != NULL && (options->tls_ca_file != NULL || options->tls_server_name != NULL ||
	                           options->tls_cert_file != NULL || options->tls_key_file != NULL);
	nng_dialer dialer;
	secretd_status st;
	int rv;

	if (tls_options && !tls_url)
		return client_fail(err, SECRETD_INVALID_ARGUMENT,
		    "TLS options given for %s, which is not a tls+tcp:// URL", url);
	if ((rv = nng_dialer_create(&dialer, conn->sock, url)) != 0) {
		/* Whatever nng finds wrong with the URL (syntax, scheme) is the caller's. */
		return client_fail(err,
		    rv == NNG_ENOMEM ? SECRETD_RESOURCE_EXHAUSTED : SECRETD_INVALID_ARGUMENT,
		    "bad URL %s: %s", url, nng_strerror(rv));
	}
	if (tls_url && conn->tls != NULL) {
		if ((rv = nng_dialer_set_ptr(dialer, NNG_OPT_TLS_CONFIG, conn->tls)) != 0)
			goto fail_nng;
	} else if (tls_url &&
	           (st = client_tls_setup(conn, url, dialer, options, err)) != SECRETD_OK) {
		goto fail;
	}
	/* A pooled socket outlives server restarts: find the server again quickly (nng's
	 * default is a fixed 100 ms), backing off to nng's default while it stays down. */
	if ((rv = nng_dialer_set_ms(dialer, NNG_OPT_RECONNMINT, CLIENT_RECONNECT_MIN_MS)) != 0 ||
	    (rv = nng_dialer_set_ms(dialer, NNG_OPT_RECONNMAXT, CLIENT_RECONNECT_MAX_MS)) != 0 ||
	    (rv = nng_dialer_start(dialer, NNG_FLAG_NONBLOCK)) != 0)
		goto fail_nng;
	*dialerp = dialer;
	return SECRETD_OK;

fail_nng:
	st = client_nng_fail(err, rv, url, "cannot dial");
fail:
	/* Never started, so nothing can arrive through it: closing it is safe. */
	(void)nng_dialer_close(dialer);
	return st;
}

void
client_conn_redial(struct client_conn *conn)
{
	nng_time now = nng_clock();
	nng_dialer dialer;

	(void)pthread_mutex_lock(&conn->mu);
	if (atomic_load(&conn->pipes) > 0 || now - conn->last_redial < CLIENT_REDIAL_MS) {
		(void)pthread_mutex_unlock(&conn->mu);
		return;
	}
	conn->last_redial = now;
	/* Dial anew first (the socket keeps the calls queued), then drop the old dialer; on
	 * failure the old one stays: nothing is lost by trying again later. */
	if (client_conn_dial(conn, NULL, &dialer, NULL) == SECRETD_OK) {
		(void)nng_dialer_close(conn->dialer);
		conn->dialer = dialer;
	}
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
	if ((st = client_conn_dial(conn, options, &conn->dialer, err)) != SECRETD_OK)
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

/* See client.h. */
secretd_status
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

/* See client.h. */
void
client_conn_release(struct client_conn *conn)
{
	(void)pthread_mutex_lock(&client_pool_mu);
	if (--conn->refs == 0) {
		conn->idle_since = nng_clock();
		client_pool_trim_locked();
	}
	(void)pthread_mutex_unlock(&client_pool_mu);
}

