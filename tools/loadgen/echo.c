/*
 * echo.c: secretd-bench-echo, the baseline that tools/bench compares secretd with. A raw
 * nng REP server that answers every request with one fixed reply: the 4-byte frame header
 * 00 53 44 01 followed by an empty secretd.v1.Reply (status OK, no body), so that the load
 * generator checks it exactly as it checks secretd's replies.
 *
 * It uses secretd's serving pattern (server/server.c): N worker threads, each with its own
 * nng context and aio and a synchronous receive -> reply -> send loop; N defaults to 4 per
 * online core, as secretd's does. The request message is reused for the reply (cleared and
 * refilled), which is the least a REP server can do per request.
 *
 * What it does not do: parse requests, authenticate, or care about the transport; it
 * listens on every --listen URL given (ipc:// or tcp://). SIGTERM/SIGINT close the socket
 * and the process exits 0.
 *
 * Thread safety: workers share only the socket (nng is thread-safe); the main thread only
 * waits for a signal.
 */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ECHO_MAX_LISTEN 8

static const uint8_t echo_reply[4] = {0x00, 0x53, 0x44, 0x01};

struct echo_worker {
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;
	pthread_t thread;
	bool started;
};

static void *
echo_worker_main(void *arg)
{
	struct echo_worker *w = arg;

	for (;;) {
		nng_msg *msg;
		int rv;

		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			break;
		if (rv != 0)
			continue;
		msg = nng_aio_get_msg(w->aio);
		nng_msg_clear(msg);
		if (nng_msg_append(msg, echo_reply, sizeof(echo_reply)) != 0) {
			nng_msg_free(msg);
			continue;
		}
		nng_aio_set_msg(w->aio, msg);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		rv = nng_aio_result(w->aio);
		if (rv != 0) {
			/* After a failed send the message is still ours. */
			nng_msg_free(msg);
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				break;
		}
	}
	return NULL;
}

static void
usage(FILE *f)
{
	(void)fprintf(f,
	    "Usage: secretd-bench-echo --listen URL [--listen URL]... [--workers N]\n"
	    "A raw nng REP server that answers every request with the fixed frame\n"
	    "00 53 44 01 (an OK secretd.v1.Reply with no body): the baseline of tools/bench.\n"
	    "  --listen URL   ipc://PATH or tcp://HOST:PORT (repeatable, at most %d)\n"
	    "  --workers N    worker threads, each with its own context (default: 4 per core,\n"
	    "                 as secretd)\n",
	    ECHO_MAX_LISTEN);
}

static bool
parse_workers(const char *s, size_t *np)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > 4096)
		return false;
	*np = (size_t)v;
	return true;
}

/* Give each of the n workers an aio and a context on sock and start its thread. false
 * after printing why (main's shutdown frees what was made). */
static bool
start_workers(struct echo_worker *workers, size_t n, nng_socket sock)
{
	for (size_t i = 0; i < n; i++) {
		struct echo_worker *w = &workers[i];
		int rv;

		w->sock = sock;
		if ((rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0 ||
		    (rv = nng_ctx_open(&w->ctx, sock)) != 0) {
			(void)fprintf(
			    stderr, "secretd-bench-echo: worker %zu: %s\n", i, nng_strerror(rv));
			return false;
		}
		if (pthread_create(&w->thread, NULL, echo_worker_main, w) != 0) {
			(void)fprintf(stderr, "secretd-bench-echo: cannot start worker %zu\n", i);
			return false;
		}
		w->started = true;
	}
	return true;
}

int
main(int argc, char **argv)
{
	const char *listen[ECHO_MAX_LISTEN];
	size_t n_listen = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n_workers = (size_t)(ncpu > 0 ? ncpu : 1) * 4;
	struct echo_worker *workers = NULL;
	nng_socket sock = NNG_SOCKET_INITIALIZER;
	bool sock_open = false;
	sigset_t set;
	int sig = 0;
	int rc = 1;
	int rv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc &&
		    n_listen < ECHO_MAX_LISTEN) {
			listen[n_listen++] = argv[++i];
		} else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			if (!parse_workers(argv[++i], &n_workers)) {
				(void)fprintf(
				    stderr, "secretd-bench-echo: bad --workers %s\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (n_listen == 0) {
		usage(stderr);
		return 2;
	}
	/* Signals are taken by sigwait in this thread only; every thread inherits the mask. */
	(void)sigemptyset(&set);
	(void)sigaddset(&set, SIGTERM);
	(void)sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		goto done;
	(void)signal(SIGPIPE, SIG_IGN);

	if ((rv = nng_rep0_open(&sock)) != 0) {
		(void)fprintf(
		    stderr, "secretd-bench-echo: cannot open a REP socket: %s\n", nng_strerror(rv));
		goto done;
	}
	sock_open = true;
	for (size_t i = 0; i < n_listen; i++) {
		if ((rv = nng_listen(sock, listen[i], NULL, 0)) != 0) {
			(void)fprintf(stderr, "secretd-bench-echo: cannot listen on %s: %s\n",
			    listen[i], nng_strerror(rv));
			goto done;
		}
	}
	workers = calloc(n_workers, sizeof(*workers));
	if (workers == NULL) {
		(void)fprintf(stderr, "secretd-bench-echo: out of memory\n");
		goto done;
	}
	if (!start_workers(workers, n_workers, sock))
		goto done;
	(void)fprintf(stderr, "secretd-bench-echo: ready, %zu workers\n", n_workers);
	while (sigwait(&set, &sig) != 0)
		;
	rc = 0;
done:
	/* Shutdown as DEPS.md says: close the socket, stop each aio, then free. Closing the
	 * socket fails every pending receive with NNG_ECLOSED, which ends each worker. */
	if (sock_open)
		(void)nng_close(sock);
	if (workers != NULL) {
		for (size_t i = 0; i < n_workers; i++) {
			struct echo_worker *w = &workers[i];

			if (w->aio != NULL)
				nng_aio_stop(w->aio);
			if (w->started)
				(void)pthread_join(w->thread, NULL);
			if (w->aio != NULL)
				nng_aio_free(w->aio);
		}
		free(workers);
	}
	return rc;
}
