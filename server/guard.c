/*
 * guard.c: the listener guard (see listen.h): a thread that checks every listener of the
 * server by completing the SP handshake with it, and replaces one whose accept loop nng
 * 1.5.2 stopped (upstream nanomsg/nng#1518; tests/README.md).
 *
 * Thread safety: listen_init and listen_guard_start run at start-up on the main thread;
 * the table grows under mu (nng's pipe callback may read it from then on); after the start
 * only the guard thread touches the listeners. The counters are shared with nng's pipe
 * callback under mu, and neither side calls into nng holding it. NNG_E* codes are logged
 * here and go no further.
 */

#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "server_internal.h"


struct listeners;

enum probe_state {
	PROBE_IDLE,       /* none; the next starts at the entry's next_ms */
	PROBE_CONNECTING, /* plain: connect() in progress; tls: the dial */
	PROBE_SENDING,    /* tls: our header (the TLS handshake happens here) */
	PROBE_HEADER,     /* waiting for the listener's header */
	PROBE_ANSWERED,   /* header read, connection closed; waiting for the pipe */
};

enum probe_result { PROBE_PENDING, PROBE_PASS, PROBE_FAIL, PROBE_SKIP };

/* One check in progress (see probe_plain_step). Only the guard thread touches it, except
 * done, which nng's aio callback sets under mu. */
struct probe {
	struct listeners *ls;
	enum probe_state state;
	uint64_t since;       /* when it started, or was answered (sd_now_ms) */
	uint64_t adds;        /* the listener's pipe count when it started */
	uint64_t errors;      /* and its "other" errors, read just before adds */
	bool have_errors;     /* errors holds a value (nng has statistics) */
	int fd;               /* plain: the connection, or -1 */
	uint8_t hello[8];     /* tls: what the send reads from */
	uint8_t peer[8];
	size_t got;
	nng_stream_dialer *d; /* tls */
	nng_stream *st;
	nng_aio *aio;         /* tls: completes into probe_aio_done */
	bool done;
};

struct listen_entry {
	char *url;
	nng_socket sock;  /* the socket the listener serves (the service's, or notify's) */
	uint8_t hello[8]; /* the SP header a peer of that socket sends */
	nng_listener l;   /* written only by the guard thread; mu for the others */
	uint64_t adds;      /* pipes this listener handed to the socket (under mu) */
	unsigned failures;  /* checks failed in a row (guard thread only, like the next two) */
	bool have_base;     /* errors_base holds a value */
	uint64_t errors_base; /* "other" errors when the last passing probe started */
	uint64_t next_ms;     /* when the next probe starts */
	struct probe probe;   /* the table does not move once the guard runs: aio's arg */
};

struct listeners {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a pipe was added, or stop */
	struct listen_entry *v;
	size_t n;
	bool stop;
	bool started;
	pthread_t thread;
	nng_tls_config *probe_tls; /* client side of the tls+tcp:// checks */
	struct server *srv;
};

bool
listen_init(struct server *srv)
{
	struct listeners *ls = calloc(1, sizeof(*ls));

	if (ls == NULL || pthread_mutex_init(&ls->mu, NULL) != 0) {
		free(ls);
		goto oom;
	}
	if (pthread_cond_init(&ls->cv, NULL) != 0) {
		(void)pthread_mutex_destroy(&ls->mu);
		free(ls);
		goto oom;
	}
	ls->srv = srv;
	srv->listeners = ls;
	return true;
oom:
	log_msg(&srv->log, LOG_ERROR, "out of memory");
	return false;
}

/* Record a started listener for the guard. Under mu: nng's pipe callback may already be
 * reading the table. */
bool
listen_guard_add(struct server *srv, nng_socket sock, const char *url, nng_listener l)
{
	struct listeners *ls = srv->listeners;
	struct listen_entry e = {.sock = sock, .l = l, .probe = {.ls = ls, .fd = -1}};
	struct listen_entry *v;
	int peer = 0;

	/* The check speaks as the socket's peer protocol would (REQ for the service's REP,
	 * SUB for notify's PUB): a header of another protocol is refused before any pipe. */
	if (nng_socket_get_int(sock, NNG_OPT_PEER, &peer) != 0) {
		log_msg(&srv->log, LOG_ERROR, "cannot read the peer protocol of %s", url);
		return false;
	}
	memcpy(e.hello,
	    (uint8_t[8]){0x00, 'S', 'P', 0x00, (uint8_t)(peer >> 8), (uint8_t)peer, 0x00, 0x00},
	    sizeof(e.hello));
	if ((e.url = strdup(url)) == NULL)
		goto oom;
	(void)pthread_mutex_lock(&ls->mu);
	v = realloc(ls->v, (ls->n + 1) * sizeof(*v));
	if (v != NULL) {
		ls->v = v;
		v[ls->n++] = e;
	}
	(void)pthread_mutex_unlock(&ls->mu);
	if (v == NULL) {
		free(e.url);
		goto oom;
	}
	return true;
oom:
	log_msg(&srv->log, LOG_ERROR, "out of memory");
	return false;
}

/* Runs on nng's threads for every new pipe. Only counts: it must never call into nng
 * while holding mu, and the guard never calls into nng while holding it either. */
static void
listeners_pipe_added(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct listeners *ls = arg;
	int id = nng_listener_id(nng_pipe_listener(pipe));

	(void)ev;
	if (ls == NULL || id <= 0)
		return; /* a dialer's pipe */
	(void)pthread_mutex_lock(&ls->mu);
	for (size_t i = 0; i < ls->n; i++)
		if (nng_listener_id(ls->v[i].l) == id)
			ls->v[i].adds++;
	(void)pthread_cond_broadcast(&ls->cv);
	(void)pthread_mutex_unlock(&ls->mu);
}

/*
 * A check is a probe that lives across turns of the guard's loop: connect, send the SP
 * header of the socket's peer protocol, read the listener's header, close, and wait for
 * the socket to report a pipe from that listener (the transport handshakes even for a
 * stopped listener; only the pipe never comes).
 *
 * A probe never closes a connection the listener has not answered yet. The server would
 * write its header to a peer that is gone, get EPIPE, and that is the #1518 stop itself: a
 * check that gave up on a slow server (ASan, a loaded box) used to stop the listener it
 * checked, and the guard then took ~10 s to bring it back. So a probe waits for the answer
 * as long as it takes, up to GUARD_GIVEUP_MS; a slow answer is not a failure.
 */
#define GUARD_TICK_MS 20       /* how often a probe in progress is looked at */
#define GUARD_GIVEUP_MS 60000  /* a probe unanswered this long is closed after all */

static void
probe_aio_done(void *arg)
{
	struct probe *p = arg;

	(void)pthread_mutex_lock(&p->ls->mu);
	p->done = true;
	(void)pthread_cond_broadcast(&p->ls->cv);
	(void)pthread_mutex_unlock(&p->ls->mu);
}

/* Close the probe's connection (plain or TLS) and go idle. On the guard thread, without
 * mu (nng_aio_stop waits for probe_aio_done, which takes it). */
static void
probe_close(struct probe *p)
{
	if (p->fd >= 0) {
		(void)close(p->fd);
		p->fd = -1;
	}
	if (p->aio != NULL)
		nng_aio_stop(p->aio);
	if (p->st != NULL) {
		nng_stream_close(p->st);
		nng_stream_free(p->st);
		p->st = NULL;
	}
	if (p->d != NULL) {
		nng_stream_dialer_close(p->d);
		nng_stream_dialer_free(p->d);
		p->d = NULL;
	}
	p->state = PROBE_IDLE;
}

/* Where a plain probe of url connects: the bound address, so that port 0 and wildcard
 * hosts work. False when the listener cannot be checked. */
static bool
probe_addr(const char *url, nng_listener l, struct sockaddr_storage *ss, socklen_t *lenp)
{
	nng_sockaddr na;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		if (strlen(url + 6) >= sizeof(un->sun_path))
			return false; /* nng refused such a path anyway */
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, url + 6, strlen(url + 6) + 1);
		*lenp = sizeof(*un);
		return true;
	}
	if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &na) != 0)
		return false;
	if (na.s_family == NNG_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = na.s_in.sa_port;
		in->sin_addr.s_addr =
		    na.s_in.sa_addr != 0 ? na.s_in.sa_addr : htonl(INADDR_LOOPBACK);
		*lenp = sizeof(*in);
		return true;
	}
	if (na.s_family == NNG_AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		static const uint8_t any6[16] = {0};

		in6->sin6_family = AF_INET6;
		in6->sin6_port = na.s_in6.sa_port;
		if (memcmp(na.s_in6.sa_addr, any6, 16) != 0)
			memcpy(&in6->sin6_addr, na.s_in6.sa_addr, 16);
		else
			in6->sin6_addr = in6addr_loopback;
		*lenp = sizeof(*in6);
		return true;
	}
	return false;
}

/* Past GUARD_GIVEUP_MS without an answer: close after all (should that stop the listener,
 * the next probe sees it). */
static enum probe_result
probe_overdue(struct probe *p, uint64_t now)
{
	if (now - p->since < GUARD_GIVEUP_MS)
		return PROBE_PENDING;
	probe_close(p);
	return PROBE_FAIL;
}

/* One step of a probe over a plain socket (ipc://, tcp://). Never blocks. */
static enum probe_result
probe_plain_step(struct probe *p, const struct listen_entry *e, uint64_t now)
{
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t len;
	ssize_t n = -1;
	int err = 0;

	if (p->state == PROBE_IDLE) {
		if (!probe_addr(e->url, e->l, &ss, &len))
			return PROBE_SKIP;
		p->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (p->fd < 0)
			return PROBE_SKIP; /* out of descriptors: not the listener's fault */
		if (connect(p->fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
			/* Never connected, so nothing for the server to answer. A full ipc
			 * backlog (EAGAIN) is a busy server, not a stopped one: the transport
			 * accepts even for a stopped listener. */
			err = errno;
			probe_close(p);
			return err == EAGAIN ? PROBE_SKIP : PROBE_FAIL;
		}
		p->state = PROBE_CONNECTING;
	}
	if (p->state == PROBE_CONNECTING) {
		pfd = (struct pollfd){p->fd, POLLOUT, 0};
		if (poll(&pfd, 1, 0) != 1)
			return probe_overdue(p, now);
		len = sizeof(err);
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 ||
		    send(p->fd, e->hello, sizeof(e->hello), MSG_NOSIGNAL) !=
		        (ssize_t)sizeof(e->hello)) {
			probe_close(p);
			return PROBE_FAIL;
		}
		p->state = PROBE_HEADER;
	}
	if (p->state != PROBE_HEADER)
		return PROBE_PENDING;
	while (p->got < sizeof(p->peer) &&
	       (n = read(p->fd, p->peer + p->got, sizeof(p->peer) - p->got)) > 0)
		p->got += (size_t)n;
	if (p->got == sizeof(p->peer)) {
		/* Answered: the server's header write is done, closing is safe now. */
		probe_close(p);
		p->state = PROBE_ANSWERED;
		p->since = now;
		return PROBE_PENDING;
	}
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		probe_close(p); /* the server hung up on us */
		return PROBE_FAIL;
	}
	return probe_overdue(p, now);
}

/* Start the probe's aio operation (under no lock). */
static void
probe_tls_io(struct probe *p, bool send, size_t off, uint64_t now)
{
	nng_iov iov = {.iov_buf = (send ? p->hello : p->peer) + off,
	    .iov_len = sizeof(p->peer) - off};
	uint64_t spent = now - p->since;

	(void)nng_aio_set_iov(p->aio, 1, &iov);
	nng_aio_set_timeout(p->aio,
	    (nng_duration)(spent < GUARD_GIVEUP_MS ? GUARD_GIVEUP_MS - spent : 1));
	(void)pthread_mutex_lock(&p->ls->mu);
	p->done = false;
	(void)pthread_mutex_unlock(&p->ls->mu);
	if (send)
		nng_stream_send(p->st, p->aio);
	else
		nng_stream_recv(p->st, p->aio);
}

/* One step of a probe of a tls+tcp:// listener, through nng's stream API (TLS lives in
 * nng; these streams are not SP sockets and have no nng_close). Never blocks: each
 * operation completes into probe_aio_done. */
static enum probe_result
probe_tls_step(struct listeners *ls, struct probe *p, const struct listen_entry *e, uint64_t now)
{
	nng_sockaddr na;
	char url[128];
	char host[INET6_ADDRSTRLEN];
	bool done;
	int rv;

	if (p->state == PROBE_IDLE) {
		if (ls->probe_tls == NULL || nng_listener_get_addr(e->l, NNG_OPT_LOCADDR, &na) != 0)
			return PROBE_SKIP;
		if (na.s_family == NNG_AF_INET) {
			uint32_t a = na.s_in.sa_addr != 0 ? na.s_in.sa_addr : htonl(INADDR_LOOPBACK);

			(void)inet_ntop(AF_INET, &a, host, sizeof(host));
			(void)snprintf(url, sizeof(url), "tls+tcp://%s:%u", host,
			    ntohs(na.s_in.sa_port));
		} else if (na.s_family == NNG_AF_INET6) {
			(void)inet_ntop(AF_INET6, na.s_in6.sa_addr, host, sizeof(host));
			(void)snprintf(url, sizeof(url), "tls+tcp://[%s]:%u",
			    strcmp(host, "::") == 0 ? "::1" : host, ntohs(na.s_in6.sa_port));
		} else {
			return PROBE_SKIP;
		}
		if (p->aio == NULL && nng_aio_alloc(&p->aio, probe_aio_done, p) != 0)
			return PROBE_SKIP;
		if (nng_stream_dialer_alloc(&p->d, url) != 0 ||
		    nng_stream_dialer_set_ptr(p->d, NNG_OPT_TLS_CONFIG, ls->probe_tls) != 0) {
			probe_close(p);
			return PROBE_SKIP;
		}
		memcpy(p->hello, e->hello, sizeof(p->hello));
		nng_aio_set_timeout(p->aio, GUARD_GIVEUP_MS);
		(void)pthread_mutex_lock(&ls->mu);
		p->done = false;
		(void)pthread_mutex_unlock(&ls->mu);
		p->state = PROBE_CONNECTING;
		nng_stream_dialer_dial(p->d, p->aio);
		return PROBE_PENDING;
	}
	(void)pthread_mutex_lock(&ls->mu);
	done = p->done;
	(void)pthread_mutex_unlock(&ls->mu);
	if (!done || p->state == PROBE_ANSWERED)
		return PROBE_PENDING;
	/* The callback has set done but may not have returned: an aio is reused only after. */
	nng_aio_wait(p->aio);
	if ((rv = nng_aio_result(p->aio)) != 0) {
		/* Refused, or GUARD_GIVEUP_MS passed. */
		probe_close(p);
		return PROBE_FAIL;
	}
	switch (p->state) {
	case PROBE_CONNECTING:
		p->st = nng_aio_get_output(p->aio, 0);
		p->got = 0;
		p->state = PROBE_SENDING;
		probe_tls_io(p, true, 0, now); /* the TLS handshake happens in this send */
		return PROBE_PENDING;
	case PROBE_SENDING:
		p->got += nng_aio_count(p->aio);
		if (p->got < sizeof(p->hello)) {
			probe_tls_io(p, true, p->got, now);
			return PROBE_PENDING;
		}
		p->got = 0;
		p->state = PROBE_HEADER;
		probe_tls_io(p, false, 0, now);
		return PROBE_PENDING;
	case PROBE_HEADER:
		p->got += nng_aio_count(p->aio);
		if (p->got < sizeof(p->peer)) {
			probe_tls_io(p, false, p->got, now);
			return PROBE_PENDING;
		}
		probe_close(p);
		p->state = PROBE_ANSWERED;
		p->since = now;
		return PROBE_PENDING;
	default:
		return PROBE_PENDING;
	}
}

/* An answered probe passes when the listener handed the socket a pipe since the probe
 * started (any pipe proves the accept loop runs), and fails after LISTEN_GUARD_WAIT_MS
 * without one. */
static enum probe_result
probe_answered(struct listeners *ls, size_t i, uint64_t now)
{
	bool moved;

	(void)pthread_mutex_lock(&ls->mu);
	moved = ls->v[i].adds != ls->v[i].probe.adds;
	(void)pthread_mutex_unlock(&ls->mu);
	if (moved)
		return PROBE_PASS;
	return now - ls->v[i].probe.since >= LISTEN_GUARD_WAIT_MS ? PROBE_FAIL : PROBE_PENDING;
}

/* Replace listener i: close it (and the connections it accepted: their clients resend)
 * and listen again on the same URL. errors: the handshake errors nng counted since the
 * last passing check (0: unknown), for the log. */
static void
guard_restore(struct listeners *ls, size_t i, uint64_t errors)
{
	struct server *srv = ls->srv;
	struct listen_entry *e = &ls->v[i];
	nng_listener l;

	log_msg(&srv->log, LOG_WARN,
	    "listener on %s stopped accepting (%u checks in a row handshaked and got no "
	    "connection; %llu handshake errors since the last good check: a peer left during "
	    "the handshake, nng 1.5.2, upstream nanomsg/nng#1518); listening again",
	    e->url, e->failures, (unsigned long long)errors);
	(void)nng_listener_close(e->l);
	/* Right after a close the address may still be settling: try a few times. */
	for (int attempt = 0; attempt < 20; attempt++) {
		if (listener_open(srv, e->sock, e->url, &l)) {
			(void)pthread_mutex_lock(&ls->mu);
			e->l = l;
			(void)pthread_mutex_unlock(&ls->mu);
			e->failures = 0;
			e->have_base = false; /* a new listener: new counters */
			return;
		}
		(void)usleep(50000);
	}
	log_msg(&srv->log, LOG_ERROR, "cannot listen again on %s; will retry", e->url);
}

/*
 * The listener's count of accept errors nng files under "other" (nng_stats), which is
 * where 1.5.2 counts the NNG_ECLOSED that stops its accept loop (listener.c,
 * nni_listener_bump_error). False when statistics are not available.
 */
static bool
guard_listener_errors(nng_listener l, uint64_t *valuep)
{
	nng_stat *snap = NULL;
	nng_stat *st;
	bool ok = false;

	if (nng_stats_get(&snap) != 0)
		return false;
	st = nng_stat_find_listener(snap, l);
	if (st != NULL && (st = nng_stat_find(st, "other")) != NULL) {
		*valuep = nng_stat_value(st);
		ok = true;
	}
	nng_stats_free(snap);
	return ok;
}

/*
 * Whether listener i, whose probe just failed, should be replaced. A replacement breaks
 * every connection of that listener, so two things must hold: GUARD_FAILURES probes in a
 * row were answered by the transport and then saw no pipe for LISTEN_GUARD_WAIT_MS; and the
 * listener counted a handshake error since the last passing probe started (the #1518 stop
 * is always counted, as "other"; without statistics, twice as many failed probes are asked
 * instead). A probe never causes such an error itself (it closes only answered
 * connections), and a merely slow server fails no probe: it answers late, and the pipe
 * follows.
 *
 * The baseline is the count read when the passing probe *started*, before its pipe count.
 * nng runs a pipe's ADD_POST callback inside the accept callback, before the next accept
 * begins, so a pipe counted after that read means the accept loop still ran after it, and
 * a stop that came later is not in the baseline. (A count read after the pass could
 * already hold the stop, and the listener was never replaced: seen once under ASan in
 * `listener`.)
 */
#define GUARD_FAILURES 2

static bool
guard_should_restore(struct listeners *ls, size_t i, unsigned failures, uint64_t *errorsp)
{
	const struct listen_entry *e = &ls->v[i];

	*errorsp = 0;
	if (failures < GUARD_FAILURES)
		return false;
	if (e->have_base && guard_listener_errors(e->l, errorsp)) {
		if (*errorsp <= e->errors_base)
			return false;
		*errorsp -= e->errors_base;
		return true;
	}
	return failures >= 2 * GUARD_FAILURES;
}

/* Advance listener i's probe; act on its result. True while a probe is in progress. */
static bool
guard_step(struct listeners *ls, size_t i, uint64_t now)
{
	struct listen_entry *e = &ls->v[i];
	struct probe *p = &e->probe;
	enum probe_result r;
	uint64_t errors;

	if (p->state == PROBE_IDLE) {
		if (now < e->next_ms)
			return false;
		p->have_errors = guard_listener_errors(e->l, &p->errors); /* before adds */
		(void)pthread_mutex_lock(&ls->mu);
		p->adds = e->adds;
		(void)pthread_mutex_unlock(&ls->mu);
		p->since = now;
		p->got = 0;
	}
	if (p->state != PROBE_ANSWERED)
		r = strncmp(e->url, "tls+", 4) == 0 ? probe_tls_step(ls, p, e, now)
		                                    : probe_plain_step(p, e, now);
	else
		r = PROBE_PENDING;
	if (p->state == PROBE_ANSWERED && r == PROBE_PENDING)
		r = probe_answered(ls, i, now);
	if (r == PROBE_PENDING)
		return true;
	probe_close(p); /* idle again (a no-op for a probe that closed itself) */
	e->next_ms = now + LISTEN_GUARD_PERIOD_MS;
	if (r == PROBE_SKIP)
		return false;
	e->failures = r == PROBE_PASS ? 0 : e->failures + 1;
	if (r == PROBE_PASS) {
		e->have_base = p->have_errors;
		e->errors_base = p->errors;
	} else if (guard_should_restore(ls, i, e->failures, &errors))
		guard_restore(ls, i, errors);
	return false;
}

static void *
guard_main(void *arg)
{
	struct listeners *ls = arg;
	bool busy = false;

	for (;;) {
		struct timespec until;
		long wait_ms = busy ? GUARD_TICK_MS : LISTEN_GUARD_PERIOD_MS;
		bool stop;

		(void)pthread_mutex_lock(&ls->mu);
		(void)clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += wait_ms * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		/* A new pipe or a finished TLS step wakes us early: both move a probe on. */
		if (!ls->stop)
			(void)pthread_cond_timedwait(&ls->cv, &ls->mu, &until);
		stop = ls->stop;
		(void)pthread_mutex_unlock(&ls->mu);
		if (stop)
			break;
		busy = false;
		for (size_t i = 0; i < ls->n; i++)
			busy = guard_step(ls, i, sd_now_ms()) || busy;
	}
	return NULL;
}

/* A TLS client configuration for the checks: no server verification (it is our own
 * listener), and our own certificate as the client's when the server requires one. */
static bool
guard_tls_setup(struct server *srv, struct listeners *ls)
{
	const struct server_config *cfg = srv->cfg;
	char *cert = NULL;
	char *key = NULL;
	size_t cert_len = 0;
	size_t key_len = 0;
	int rv;

	if ((rv = nng_tls_config_alloc(&ls->probe_tls, NNG_TLS_MODE_CLIENT)) != 0)
		goto done;
	rv = nng_tls_config_auth_mode(ls->probe_tls, NNG_TLS_AUTH_MODE_NONE);
	if (rv == 0 && cfg->tls_ca != NULL && cfg->tls_cert != NULL && cfg->tls_key != NULL) {
		cert = listen_pem_read(cfg->tls_cert, &cert_len);
		key = listen_pem_read(cfg->tls_key, &key_len);
		rv = cert != NULL && key != NULL
		         ? nng_tls_config_own_cert(ls->probe_tls, cert, key, NULL)
		         : NNG_ENOENT;
	}
done:
	free(cert);
	if (key != NULL) {
		explicit_bzero(key, key_len);
		free(key);
	}
	if (rv != 0)
		log_msg(&srv->log, LOG_WARN,
		    "the listener guard cannot check tls+tcp:// listeners: %s", nng_strerror(rv));
	return true;
}

bool
listen_guard_start(struct server *srv)
{
	struct listeners *ls = srv->listeners;
	bool tls = false;
	int rv;

	if (ls == NULL)
		return true;
	for (size_t i = 0; i < ls->n; i++)
		tls = tls || strncmp(ls->v[i].url, "tls+", 4) == 0;
	if (tls)
		(void)guard_tls_setup(srv, ls);
	/* The service's socket has one pipe callback, server.c's, which calls
	 * listen_pipe_added (nng keeps one callback per event and socket); any other socket
	 * with a listener (notify's) gets the guard's own. */
	for (size_t i = 0; i < ls->n; i++) {
		nng_socket sock = ls->v[i].sock;

		if (nng_socket_id(sock) == nng_socket_id(srv->sock))
			continue;
		if ((rv = nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, listeners_pipe_added, ls)) !=
		    0) {
			log_msg(&srv->log, LOG_ERROR, "cannot watch the listener on %s: %s",
			    ls->v[i].url, nng_strerror(rv));
			return false;
		}
	}
	if (pthread_create(&ls->thread, NULL, guard_main, ls) != 0) {
		log_msg(&srv->log, LOG_ERROR, "cannot start the listener guard");
		return false;
	}
	ls->started = true;
	return true;
}

void
listen_pipe_added(struct server *srv, nng_pipe pipe)
{
	listeners_pipe_added(pipe, NNG_PIPE_EV_ADD_POST, srv->listeners);
}

void
listen_guard_stop(struct server *srv)
{
	struct listeners *ls = srv->listeners;

	if (ls == NULL || !ls->started)
		return;
	(void)pthread_mutex_lock(&ls->mu);
	ls->stop = true;
	(void)pthread_cond_broadcast(&ls->cv);
	(void)pthread_mutex_unlock(&ls->mu);
	(void)pthread_join(ls->thread, NULL);
	ls->started = false;
	for (size_t i = 0; i < ls->n; i++) {
		probe_close(&ls->v[i].probe);
		if (ls->v[i].probe.aio != NULL)
			nng_aio_free(ls->v[i].probe.aio);
		ls->v[i].probe.aio = NULL;
	}
}

void
listen_free(struct server *srv)
{
	struct listeners *ls = srv->listeners;

	if (ls == NULL)
		return;
	for (size_t i = 0; i < ls->n; i++)
		free(ls->v[i].url);
	free(ls->v);
	if (ls->probe_tls != NULL)
		nng_tls_config_free(ls->probe_tls);
	(void)pthread_cond_destroy(&ls->cv);
	(void)pthread_mutex_destroy(&ls->mu);
	free(ls);
	srv->listeners = NULL;
}
