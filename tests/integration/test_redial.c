/*
 * test_redial.c: a client whose connection nng 1.5.2 gave up on finds the server again
 * within its first call.
 *
 * nng 1.5.2's dialer stops retrying for good when its handshake write fails with EPIPE
 * (mapped to NNG_ECLOSED, which dialer_connect_cb treats as "closed on purpose"): the
 * dialing-side twin of nanomsg/nng#1518. A peer that accepts the connection and closes it
 * at once (a server being killed or replaced, a process left on the socket path) does
 * that reliably: in a plain nng program, 10 of 10 dialers gave up within 300 ms. A
 * long-lived client would then answer UNAVAILABLE for ever, or, with a redial only after a
 * failed call, fail the first call after the server is back. libsecretd redials while a
 * call waits with no connection (client_conn_redial), so that first call is answered.
 *
 * Each round: a fake server on the socket path accepts and closes every connection while
 * a client handle makes a short call (UNAVAILABLE) and its dialer gives up; then the real
 * secretd starts on the path, and the next call, with a 5 s timeout, must be answered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"
#include "secretd.h"

#define ROUNDS 5

struct fake {
	int fd;
	atomic_bool stop;
	atomic_int closed; /* connections accepted and closed */
};

static void *
fake_main(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = {.fd = f->fd, .events = POLLIN};
		int c;

		if (poll(&p, 1, 20) <= 0)
			continue;
		if ((c = accept(f->fd, NULL, NULL)) >= 0) {
			(void)close(c);
			(void)atomic_fetch_add(&f->closed, 1);
		}
	}
	return NULL;
}

static bool
fake_start(struct fake *f, pthread_t *th, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	atomic_init(&f->stop, false);
	atomic_init(&f->closed, 0);
	if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(f->fd, 16) != 0)
		return false;
	return pthread_create(th, NULL, fake_main, f) == 0;
}

static void
fake_stop(struct fake *f, pthread_t th, const char *path)
{
	atomic_store(&f->stop, true);
	(void)pthread_join(th, NULL);
	(void)close(f->fd);
	(void)unlink(path);
}

static long long
mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
main(void)
{
	struct server_proc sp;
	const char *path;
	long long worst = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	(void)signal(SIGPIPE, SIG_IGN);
	CHECK(harness_init(&sp));
	path = sp.url + strlen("ipc://");
	for (int r = 0; r < ROUNDS; r++) {
		struct fake f;
		pthread_t th;
		secretd_client *c = NULL;
		secretd_secret *s = NULL;
		secretd_error err;
		secretd_status st;
		long long t0;
		long long took;

		CHECK(fake_start(&f, &th, path));
		CHECK_STATUS(secretd_client_open(sp.url, NULL, &c, &err), SECRETD_OK);
		if (c == NULL)
			break;
		/* Nothing answers: every connection is closed during the handshake. */
		st = secretd_get(c, "absent", SECRETD_STORAGE_ANY, 300, &s, &err);
		CHECK_STATUS(st, SECRETD_UNAVAILABLE);
		/* Long enough for nng's dialer to give up (it takes well under this). */
		for (long long until = mono_ms() + 300; mono_ms() < until;)
			(void)poll(NULL, 0, 20);
		CHECK(atomic_load(&f.closed) > 0);
		fake_stop(&f, th, path);

		CHECK(harness_start(&sp, NULL));
		t0 = mono_ms();
		st = secretd_get(c, "absent", SECRETD_STORAGE_ANY, 5000, &s, &err);
		took = mono_ms() - t0;
		printf("round %d: %d connections closed by the fake; first call after the server "
		       "started: %s in %lld ms\n",
		    r, atomic_load(&f.closed), secretd_status_str(st), took);
		CHECK_STATUS(st, SECRETD_NOT_FOUND); /* answered by the server */
		if (took > worst)
			worst = took;
		secretd_secret_free(s);
		secretd_client_close(c);
		CHECK_STATUS(harness_stop(&sp), 0);
	}
	printf("%d rounds; slowest first call %lld ms\n", ROUNDS, worst);
	harness_cleanup(&sp);
	return check_report();
}
