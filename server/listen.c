/*
 * listen.c: the listening side of the secretd process: the private socket and data
 * directories, the TLS configuration read from PEM files, and one nng listener per URL.
 * See listen.h.
 *
 * What it does not do: it opens no socket and starts no worker (server.c); it refuses a
 * network listener without tokens, or without TLS unless --insecure, rather than guess.
 *
 * Thread safety: listen_one and listen_guard_start run at start-up on the main thread; after
 * that only the guard thread touches the listeners (its counters are shared with nng's pipe
 * callback under the guard's mutex, and neither side calls into nng holding it). NNG_E* codes are logged here and go no further.
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
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
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "clock.h"
#include "log.h"
#include "path.h"
#include "server_internal.h"

/* Largest TLS certificate, key or CA file read (PEM; real ones are a few KiB). */
#define PEM_FILE_MAX (1024 * 1024)
/* nng's receive cap is at least this, and 4 times --max-frame above it (listener_open). */
#define TRANSPORT_CAP_MIN ((size_t)1024 * 1024)

bool
listen_url_is_tls(const char *url)
{
	return strncmp(url, "tls+tcp://", 10) == 0;
}

/* mkdir -p path with mode for every directory it creates. */
int
listen_mkdir_p(const char *path, mode_t mode)
{
	char buf[SD_PATH_BUF];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The directory must be ours and writable by nobody else. */
bool
listen_dir_is_private(struct server *srv, const char *dir, const char *what, mode_t forbidden)
{
	struct stat sb;

	if (stat(dir, &sb) != 0) {
		log_msg(&srv->log, LOG_ERROR, "%s %s: %s", what, dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != srv->uid || (sb.st_mode & forbidden) != 0) {
		log_msg(&srv->log, LOG_ERROR,
		    "%s %s must be a directory owned by uid %u and %s (chmod %s)", what, dir,
		    (unsigned)srv->uid,
		    (forbidden & 044) != 0 ? "usable only by it" : "writable only by it",
		    (forbidden & 044) != 0 ? "700" : "go-w");
		return false;
	}
	return true;
}

/* Read a whole PEM file into a NUL-terminated malloc'd buffer (caller wipes and frees). */
static char *
pem_read(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > PEM_FILE_MAX ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto done;
	buf = calloc(1, (size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	*lenp = (size_t)n;
done:
	(void)fclose(f);
	return buf;
}

static bool
setup_tls(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;
	char *cert = NULL;
	char *key = NULL;
	size_t cert_len = 0;
	size_t key_len = 0;
	int rv;

	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		log_msg(&srv->log, LOG_ERROR, "tls+tcp:// needs --tls-cert and --tls-key");
		return false;
	}
	cert = pem_read(cfg->tls_cert, &cert_len);
	key = pem_read(cfg->tls_key, &key_len);
	if (cert == NULL || key == NULL) {
		log_msg(&srv->log, LOG_ERROR, "cannot read %s",
		    cert == NULL ? cfg->tls_cert : cfg->tls_key);
		rv = -1;
		goto done;
	}
	rv = nng_tls_config_alloc(&srv->tls, NNG_TLS_MODE_SERVER);
	if (rv == 0)
		rv = nng_tls_config_own_cert(srv->tls, cert, key, NULL);
	if (rv == 0 && cfg->tls_ca != NULL) {
		rv = nng_tls_config_ca_file(srv->tls, cfg->tls_ca);
		if (rv == 0)
			rv = nng_tls_config_auth_mode(srv->tls, NNG_TLS_AUTH_MODE_REQUIRED);
	} else if (rv == 0) {
		rv = nng_tls_config_auth_mode(srv->tls, NNG_TLS_AUTH_MODE_NONE);
	}
	if (rv != 0)
		log_msg(&srv->log, LOG_ERROR, "TLS configuration (%s, %s): %s", cfg->tls_cert,
		    cfg->tls_key, nng_strerror(rv));
done:
	free(cert);
	if (key != NULL) {
		explicit_bzero(key, key_len);
		free(key);
	}
	return rv == 0;
}

/* Create and start one listener on url with its options (frame cap, ipc permissions and
 * group, TLS). Used at start and by the guard to replace a listener that stopped
 * accepting. Returns false after logging why. */
static bool
listener_open(struct server *srv, nng_socket sock, const char *url, nng_listener *lp)
{
	const struct server_config *cfg = srv->cfg;
	nng_listener l;
	size_t hard_max;
	int rv;

	rv = nng_listener_create(&l, sock, url);
	if (rv != 0)
		goto fail;
	/* nng drops (and closes the connection on) a frame over RECVMAXSZ without a word, so
	 * the transport's cap sits well above the configured limit: frames between the two
	 * get a clear RESOURCE_EXHAUSTED from the service. */
	hard_max = cfg->limits.max_frame * 4 > TRANSPORT_CAP_MIN ? cfg->limits.max_frame * 4
	                                                        : TRANSPORT_CAP_MIN;
	rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, hard_max);
	if (rv == 0 && strncmp(url, "ipc://", 6) == 0)
		rv = nng_listener_set_int(
		    l, NNG_OPT_IPC_PERMISSIONS, cfg->socket_group != NULL ? 0660 : 0600);
	if (rv == 0 && srv->tls != NULL && listen_url_is_tls(url))
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, srv->tls);
	if (rv == 0)
		rv = nng_listener_start(l, 0);
	if (rv != 0)
		goto fail;
	if (cfg->socket_group != NULL && strncmp(url, "ipc://", 6) == 0) {
		struct group *g = getgrnam(cfg->socket_group);

		if (g == NULL || chown(url + 6, (uid_t)-1, g->gr_gid) != 0) {
			log_msg(&srv->log, LOG_ERROR, "cannot give %s to group %s", url + 6,
			    cfg->socket_group);
			(void)nng_listener_close(l);
			return false;
		}
	}
	*lp = l;
	return true;
fail:
	log_msg(&srv->log, LOG_ERROR, "cannot listen on %s: %s", url, nng_strerror(rv));
	return false;
}

/* ---- the listener guard (see listen.h) ---- */

struct listen_entry {
	char *url;
	nng_listener l;
	uint64_t adds;      /* pipes this listener handed to the socket (under mu) */
	unsigned failures;  /* checks failed in a row */
	bool have_base;     /* errors_base holds a value */
	uint64_t errors_base; /* the listener's "other" errors at a recent passing check */
	unsigned passes;      /* passing checks since errors_base was read */
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

static bool
listeners_add(struct server *srv, const char *url, nng_listener l)
{
	struct listeners *ls = srv->listeners;
	struct listen_entry *v;

	if (ls == NULL) {
		ls = calloc(1, sizeof(*ls));
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
	}
	v = realloc(ls->v, (ls->n + 1) * sizeof(*v));
	if (v == NULL)
		goto oom;
	ls->v = v;
	v[ls->n] = (struct listen_entry){.url = strdup(url), .l = l};
	if (v[ls->n].url == NULL)
		goto oom;
	ls->n++;
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
	if (id <= 0)
		return; /* a dialer's pipe */
	(void)pthread_mutex_lock(&ls->mu);
	for (size_t i = 0; i < ls->n; i++)
		if (nng_listener_id(ls->v[i].l) == id)
			ls->v[i].adds++;
	(void)pthread_cond_broadcast(&ls->cv);
	(void)pthread_mutex_unlock(&ls->mu);
}

/* The SP handshake of a REQ0 peer; the server's REP0 answers with its own. */
static const uint8_t guard_hello[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};

/* Wait for fd to be ready for events until deadline. */
static bool
guard_poll(int fd, short events, long long deadline)
{
	struct pollfd pfd = {fd, events, 0};
	long long left = deadline - (long long)sd_now_ms();

	return left > 0 && poll(&pfd, 1, (int)left) == 1 && (pfd.revents & events) != 0;
}

/* The handshake over a plain socket to an ipc:// or tcp:// listener. */
static bool
guard_handshake_plain(const char *url, nng_listener l, long long deadline)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	nng_sockaddr na;
	uint8_t peer[8];
	size_t got = 0;
	bool ok = false;
	int fd = -1;

	memset(&ss, 0, sizeof(ss));
	if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		if (strlen(url + 6) >= sizeof(un->sun_path))
			return true; /* cannot check; nng refused such a path anyway */
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, url + 6, strlen(url + 6) + 1);
		sslen = sizeof(*un);
	} else {
		/* The bound address, so that port 0 and wildcard hosts work. */
		if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &na) != 0)
			return true;
		if (na.s_family == NNG_AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			in->sin_family = AF_INET;
			in->sin_port = na.s_in.sa_port;
			in->sin_addr.s_addr = na.s_in.sa_addr != 0 ? na.s_in.sa_addr
			                                           : htonl(INADDR_LOOPBACK);
			sslen = sizeof(*in);
		} else if (na.s_family == NNG_AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			static const uint8_t any6[16] = {0};

			in6->sin6_family = AF_INET6;
			in6->sin6_port = na.s_in6.sa_port;
			if (memcmp(na.s_in6.sa_addr, any6, 16) != 0)
				memcpy(&in6->sin6_addr, na.s_in6.sa_addr, 16);
			else
				in6->sin6_addr = in6addr_loopback;
			sslen = sizeof(*in6);
		} else {
			return true;
		}
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return true; /* out of descriptors: not the listener's fault */
	if (connect(fd, (struct sockaddr *)&ss, sslen) != 0 &&
	    (errno != EINPROGRESS || !guard_poll(fd, POLLOUT, deadline)))
		goto done;
	if (send(fd, guard_hello, sizeof(guard_hello), MSG_NOSIGNAL) != (ssize_t)sizeof(guard_hello))
		goto done;
	while (got < sizeof(peer) && guard_poll(fd, POLLIN, deadline)) {
		ssize_t n = read(fd, peer + got, sizeof(peer) - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	ok = got == sizeof(peer);
done:
	(void)close(fd);
	return ok;
}

/* One aio step of an nng stream, bounded by deadline. */
static int
guard_stream_io(nng_stream *st, nng_aio *aio, void *buf, size_t len, bool send, long long deadline)
{
	nng_iov iov = {.iov_buf = buf, .iov_len = len};
	long long left = deadline - (long long)sd_now_ms();
	int rv;

	if (left <= 0)
		return NNG_ETIMEDOUT;
	if ((rv = nng_aio_set_iov(aio, 1, &iov)) != 0)
		return rv;
	nng_aio_set_timeout(aio, (nng_duration)left);
	if (send)
		nng_stream_send(st, aio);
	else
		nng_stream_recv(st, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		return rv;
	return nng_aio_count(aio) == len ? 0 : NNG_EPROTO; /* short: treat as a failure */
}

/* The handshake inside TLS to a tls+tcp:// listener, through nng's stream API (TLS lives
 * in nng; these streams are not SP sockets and have no nng_close). */
static bool
guard_handshake_tls(struct listeners *ls, nng_listener l, long long deadline)
{
	nng_stream_dialer *d = NULL;
	nng_stream *st = NULL;
	nng_aio *aio = NULL;
	nng_sockaddr na;
	char url[128];
	char host[INET6_ADDRSTRLEN];
	uint8_t peer[8];
	uint8_t hello[8];
	bool ok = false;
	long long left;

	if (ls->probe_tls == NULL || nng_listener_get_addr(l, NNG_OPT_LOCADDR, &na) != 0)
		return true; /* cannot check */
	if (na.s_family == NNG_AF_INET) {
		uint32_t a = na.s_in.sa_addr != 0 ? na.s_in.sa_addr : htonl(INADDR_LOOPBACK);

		(void)inet_ntop(AF_INET, &a, host, sizeof(host));
		(void)snprintf(url, sizeof(url), "tls+tcp://%s:%u", host, ntohs(na.s_in.sa_port));
	} else if (na.s_family == NNG_AF_INET6) {
		(void)inet_ntop(AF_INET6, na.s_in6.sa_addr, host, sizeof(host));
		(void)snprintf(url, sizeof(url), "tls+tcp://[%s]:%u",
		    strcmp(host, "::") == 0 ? "::1" : host, ntohs(na.s_in6.sa_port));
	} else {
		return true;
	}
	memcpy(hello, guard_hello, sizeof(hello));
	if (nng_aio_alloc(&aio, NULL, NULL) != 0)
		return true;
	if (nng_stream_dialer_alloc(&d, url) != 0 ||
	    nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, ls->probe_tls) != 0)
		goto done;
	left = deadline - (long long)sd_now_ms();
	if (left <= 0)
		goto done;
	nng_aio_set_timeout(aio, (nng_duration)left);
	nng_stream_dialer_dial(d, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0)
		goto done;
	st = nng_aio_get_output(aio, 0);
	ok = guard_stream_io(st, aio, hello, sizeof(hello), true, deadline) == 0 &&
	     guard_stream_io(st, aio, peer, sizeof(peer), false, deadline) == 0;
done:
	if (st != NULL) {
		nng_stream_close(st);
		nng_stream_free(st);
	}
	if (d != NULL) {
		nng_stream_dialer_close(d);
		nng_stream_dialer_free(d);
	}
	nng_aio_free(aio);
	return ok;
}

/* Whether listener i hands new connections to the socket: handshake, then wait for its
 * pipe count to move. */
static bool
guard_check(struct listeners *ls, size_t i)
{
	long long deadline = (long long)sd_now_ms() + LISTEN_GUARD_WAIT_MS;
	char *url;
	nng_listener l;
	uint64_t before;
	bool ok;

	(void)pthread_mutex_lock(&ls->mu);
	url = ls->v[i].url;
	l = ls->v[i].l;
	before = ls->v[i].adds;
	(void)pthread_mutex_unlock(&ls->mu);
	if (strncmp(url, "tls+", 4) == 0)
		ok = guard_handshake_tls(ls, l, deadline);
	else
		ok = guard_handshake_plain(url, l, deadline);
	(void)pthread_mutex_lock(&ls->mu);
	if (ok) {
		struct timespec until;
		long long left = deadline - (long long)sd_now_ms();

		if (left < 0)
			left = 0;
		(void)clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += left / 1000;
		until.tv_nsec += (left % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (ls->v[i].adds == before && !ls->stop)
			if (pthread_cond_timedwait(&ls->cv, &ls->mu, &until) != 0)
				break;
		ok = ls->v[i].adds != before || ls->stop;
	}
	(void)pthread_mutex_unlock(&ls->mu);
	return ok;
}

/* Replace listener i: close it (and the connections it accepted: their clients resend)
 * and listen again on the same URL. */
static void
guard_restore(struct listeners *ls, size_t i)
{
	struct server *srv = ls->srv;
	nng_listener old, l;
	char *url;

	(void)pthread_mutex_lock(&ls->mu);
	old = ls->v[i].l;
	url = ls->v[i].url;
	(void)pthread_mutex_unlock(&ls->mu);
	log_msg(&srv->log, LOG_WARN,
	    "listener on %s stopped accepting (a peer left during the handshake: nng 1.5.2, "
	    "upstream nanomsg/nng#1518); listening again",
	    url);
	(void)nng_listener_close(old);
	/* Right after a close the address may still be settling: try a few times. */
	for (int attempt = 0; attempt < 20; attempt++) {
		if (listener_open(srv, srv->sock, url, &l)) {
			(void)pthread_mutex_lock(&ls->mu);
			ls->v[i].l = l;
			ls->v[i].failures = 0;
			ls->v[i].have_base = false; /* a new listener: new counters */
			(void)pthread_mutex_unlock(&ls->mu);
			return;
		}
		(void)usleep(50000);
	}
	log_msg(&srv->log, LOG_ERROR, "cannot listen again on %s; will retry", url);
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
 * Whether listener i, which just failed its check, should be replaced. A check can fail
 * on a starved machine (ASan, a loaded CI box) with a healthy listener, and a replacement
 * breaks every connection of that listener, so two conditions must hold: checks failed
 * GUARD_FAILURES times in a row, and the listener counted a handshake error since a
 * recent passing check (the #1518 stop is always counted). Without statistics, twice as
 * many failed checks are asked instead.
 */
#define GUARD_FAILURES 2
#define GUARD_BASE_EVERY 20 /* passing checks between two reads of the error count */

static bool
guard_should_restore(struct listeners *ls, size_t i, unsigned failures)
{
	uint64_t now;
	uint64_t base;
	bool have_base;
	nng_listener l;

	(void)pthread_mutex_lock(&ls->mu);
	l = ls->v[i].l;
	have_base = ls->v[i].have_base;
	base = ls->v[i].errors_base;
	(void)pthread_mutex_unlock(&ls->mu);
	if (failures < GUARD_FAILURES)
		return false;
	if (have_base && guard_listener_errors(l, &now))
		return now > base;
	return failures >= 2 * GUARD_FAILURES;
}

/* After a passing check: refresh the error baseline now and then. */
static void
guard_passed(struct listeners *ls, size_t i)
{
	nng_listener l;
	uint64_t v;
	bool read;

	(void)pthread_mutex_lock(&ls->mu);
	read = !ls->v[i].have_base || ++ls->v[i].passes >= GUARD_BASE_EVERY;
	l = ls->v[i].l;
	(void)pthread_mutex_unlock(&ls->mu);
	if (!read || !guard_listener_errors(l, &v))
		return;
	(void)pthread_mutex_lock(&ls->mu);
	if (nng_listener_id(ls->v[i].l) == nng_listener_id(l)) {
		ls->v[i].errors_base = v;
		ls->v[i].have_base = true;
		ls->v[i].passes = 0;
	}
	(void)pthread_mutex_unlock(&ls->mu);
}

static void *
guard_main(void *arg)
{
	struct listeners *ls = arg;

	for (;;) {
		struct timespec until;
		bool stop;

		(void)pthread_mutex_lock(&ls->mu);
		(void)clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += LISTEN_GUARD_PERIOD_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!ls->stop)
			if (pthread_cond_timedwait(&ls->cv, &ls->mu, &until) != 0)
				break;
		stop = ls->stop;
		(void)pthread_mutex_unlock(&ls->mu);
		if (stop)
			break;
		for (size_t i = 0; i < ls->n; i++) {
			bool ok = guard_check(ls, i);
			unsigned failures;

			(void)pthread_mutex_lock(&ls->mu);
			failures = ok ? 0 : ls->v[i].failures + 1;
			ls->v[i].failures = failures;
			stop = ls->stop;
			(void)pthread_mutex_unlock(&ls->mu);
			if (stop)
				break;
			if (ok)
				guard_passed(ls, i);
			else if (guard_should_restore(ls, i, failures))
				guard_restore(ls, i);
		}
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
		cert = pem_read(cfg->tls_cert, &cert_len);
		key = pem_read(cfg->tls_key, &key_len);
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
	if ((rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_POST, listeners_pipe_added, ls)) != 0) {
		log_msg(&srv->log, LOG_ERROR, "cannot watch the listeners: %s", nng_strerror(rv));
		return false;
	}
	if (pthread_create(&ls->thread, NULL, guard_main, ls) != 0) {
		log_msg(&srv->log, LOG_ERROR, "cannot start the listener guard");
		return false;
	}
	ls->started = true;
	return true;
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

/* The checks every listener of the server passes before it is created: a private socket
 * directory for ipc://; tokens, and TLS unless --insecure, for tcp. Logs why not. */
static bool
listen_allowed(struct server *srv, const char *url)
{
	const struct server_config *cfg = srv->cfg;

	if (strncmp(url, "ipc://", 6) == 0) {
		char dir[SD_PATH_BUF];

		/* A socket at the top of the tree (or of the working directory) is not checked. */
		if (!sd_path_dir(url + 6, dir, sizeof(dir))) {
			log_msg(&srv->log, LOG_ERROR, "socket path too long: %s", url);
			return false;
		}
		if (strchr(url + 6, '/') != NULL && strcmp(dir, "/") != 0) {
			if (listen_mkdir_p(dir, 0700) != 0) {
				log_msg(&srv->log, LOG_ERROR,
				    "cannot create socket directory %s: %s", dir, strerror(errno));
				return false;
			}
			if (!listen_dir_is_private(srv, dir, "socket directory", 022))
				return false;
		}
	} else if (strncmp(url, "tcp://", 6) == 0 || strncmp(url, "tls+tcp://", 10) == 0) {
		bool tls = listen_url_is_tls(url);

		if (auth_count(srv->auth) == 0) {
			log_msg(&srv->log, LOG_ERROR,
			    "refusing to listen on %s: network listeners need tokens "
			    "(--tokens-file with at least one token)",
			    url);
			return false;
		}
		if (!tls && !cfg->insecure) {
			log_msg(&srv->log, LOG_ERROR,
			    "refusing to listen on %s without TLS: use tls+tcp:// with "
			    "--tls-cert/--tls-key, or pass --insecure",
			    url);
			return false;
		}
		if (tls && srv->tls == NULL && !setup_tls(srv))
			return false;
	} else {
		log_msg(&srv->log, LOG_ERROR,
		    "unsupported listen URL %s (use ipc://, tcp:// or tls+tcp://)", url);
		return false;
	}
	return true;
}

bool
listen_one(struct server *srv, const char *url)
{
	nng_listener l;

	if (!listen_allowed(srv, url) || !listener_open(srv, srv->sock, url, &l))
		return false;
	if (!listeners_add(srv, url, l))
		return false;
	log_msg(&srv->log, LOG_INFO, "listening on %s", url);
	return true;
}

bool
listen_socket(struct server *srv, nng_socket sock, const char *url, const char *what)
{
	nng_listener l;

	if (!listen_allowed(srv, url) || !listener_open(srv, sock, url, &l))
		return false;
	log_msg(&srv->log, LOG_INFO, "listening on %s for %s", url, what != NULL ? what : "");
	return true;
}
