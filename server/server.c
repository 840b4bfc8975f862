/*
 * server.c: the secretd process. See server.h.
 *
 * Workers: each worker thread owns one nng context and one aio and runs a synchronous
 * loop (receive, handle, send: calls.c); a persistent write waiting for its group commit is
 * parked and holds no worker (its reply is sent from the store's commit thread).
 * Shutdown: every worker is told to stop under its own lock, and a worker that is waiting
 * to receive has its receive cancelled under that same lock (so a cancel can never be lost
 * between the check and the receive); a worker in the middle of a request
 * finishes it, sends the reply, and then stops; parked calls are waited for. Only then are
 * the socket and the stores closed.
 *
 * The listening side (socket and data directories, TLS, listeners) is in listen.c; struct
 * server, which both files use, is in server_internal.h.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "calls.h"
#include "channel.h"
#include "cluster.h"
#include "dedup.h"
#include "keys.h"
#include "listen.h"
#include "notify.h"
#include "metrics.h"
#include "server_internal.h"
#include "store.h"
#include "text.h"

/* A reply that is not taken by its connection within this time is dropped. */
#define SEND_TIMEOUT_MS 5000
/* Most reply channels (contexts with a send in flight, plus those workers receive on). */
#define MAX_CHANNELS 1024

struct worker {
	struct server *srv;
	pthread_t thread;
	bool started;
	struct channel *ch; /* the channel this worker receives on */
	nng_aio *aio;       /* its receive aio */
	struct call *call;
	pthread_mutex_t lock;
	bool receiving; /* waiting in nng_ctx_recv (under lock) */
	bool stop;      /* told to stop (under lock) */
};

void
server_config_default(struct server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = LOG_INFO;
	limits_default(&cfg->limits);
}

bool
server_default_url(char *buf, size_t len)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	int n;

	if (rt != NULL && rt[0] == '/')
		n = snprintf(buf, len, "ipc://%s/secretd.sock", rt);
	else
		n = snprintf(buf, len, "ipc:///tmp/secretd-%u/secretd.sock", (unsigned)getuid());
	return n > 0 && (size_t)n < len;
}

static bool
resolve_paths(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;
	int n;

	if (cfg->data_dir != NULL) {
		n = snprintf(srv->data_dir, sizeof(srv->data_dir), "%s", cfg->data_dir);
	} else if (getenv("XDG_DATA_HOME") != NULL && getenv("XDG_DATA_HOME")[0] == '/') {
		n = snprintf(
		    srv->data_dir, sizeof(srv->data_dir), "%s/secretd", getenv("XDG_DATA_HOME"));
	} else if (getenv("HOME") != NULL && getenv("HOME")[0] == '/') {
		n = snprintf(srv->data_dir, sizeof(srv->data_dir), "%s/.local/share/secretd",
		    getenv("HOME"));
	} else {
		log_msg(&srv->log, LOG_ERROR,
		    "no data directory: give --data-dir, or set XDG_DATA_HOME or HOME");
		return false;
	}
	if (n < 0 || (size_t)n >= sizeof(srv->data_dir))
		goto too_long;
	if (cfg->key_file != NULL)
		n = snprintf(srv->key_file, sizeof(srv->key_file), "%s", cfg->key_file);
	else
		n = snprintf(srv->key_file, sizeof(srv->key_file), "%s/secretd.key", srv->data_dir);
	if (n < 0 || (size_t)n >= sizeof(srv->key_file))
		goto too_long;
	n = snprintf(srv->db_path, sizeof(srv->db_path), "%s/secrets.db", srv->data_dir);
	if (n < 0 || (size_t)n >= sizeof(srv->db_path))
		goto too_long;
	if (!server_default_url(srv->default_url, sizeof(srv->default_url)))
		goto too_long;
	return true;
too_long:
	log_msg(&srv->log, LOG_ERROR, "a path is too long");
	return false;
}

static const char *
store_hint(store_status st)
{
	switch (st) {
	case STORE_BAD_KEY:
		return "the key does not open this database (wrong key file?); the database "
		       "was left untouched";
	case STORE_PERMISSION:
		return "unsafe permissions: the data directory must be 0700 and the files 0600, "
		       "owned by this user";
	case STORE_CORRUPT:
		return "the database is corrupt or from a newer secretd";
	case STORE_NOT_FOUND:
		return "the key file does not exist, but the database does: restore the key file "
		       "(no new key is made for an existing database)";
	default:
		return store_status_str(st);
	}
}

/* Passphrase mode: read the passphrase and open the database with it (no key file). */
static bool
open_with_passphrase(struct server *srv, struct store_config *db)
{
	const char *path = srv->cfg->passphrase_file;
	store_status st;

	st = keys_passphrase_read(path, srv->passphrase, &srv->passphrase_len);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "passphrase file %s: %s", path,
		    st == STORE_PERMISSION  ? "must be readable only by its owner (chmod 600)"
		    : st == STORE_INVALID   ? "is empty or longer than 1024 bytes"
		    : st == STORE_NOT_FOUND ? "does not exist"
		                            : "cannot be read");
		return false;
	}
	db->key = srv->passphrase;
	db->key_len = srv->passphrase_len;
	db->passphrase = true;
	st = store_open(&store_sqlcipher_ops, db, &srv->persistent);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "database %s with passphrase file %s: %s",
		    srv->db_path, path,
		    st == STORE_BAD_KEY ? "the passphrase does not open this database; the "
		                          "database was left untouched"
		                        : store_hint(st));
		return false;
	}
	return true;
}

static bool
open_stores(struct server *srv)
{
	struct store_config mem = {
	    .max_secrets = srv->cfg->limits.max_secrets,
	    .on_change = notify_changed,
	    .on_change_arg = srv->notify,
	};
	struct store_config db = {
	    .path = srv->db_path,
	    .max_secrets = srv->cfg->limits.max_secrets,
	    .on_change = notify_changed,
	    .on_change_arg = srv->notify,
	};
	const char *note = NULL;
	store_status st;

	if (listen_mkdir_p(srv->data_dir, 0700) != 0) {
		log_msg(&srv->log, LOG_ERROR, "cannot create data directory %s: %s", srv->data_dir,
		    strerror(errno));
		return false;
	}
	if (!listen_dir_is_private(srv, srv->data_dir, "data directory", 077))
		return false;
	st = store_open(&store_memory_ops, &mem, &srv->temporary);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "memory store: %s", store_status_str(st));
		return false;
	}
	/* Keep the key out of swap where the OS lets us; without CAP_IPC_LOCK or a memlock
	 * allowance this fails, which is worth a warning but not a refusal. */
	if (mlock(srv->key, sizeof(srv->key)) != 0 ||
	    mlock(srv->passphrase, sizeof(srv->passphrase)) != 0)
		log_msg(&srv->log, LOG_WARN, "cannot lock the key in memory (%s); continuing",
		    strerror(errno));
	if (srv->cfg->passphrase_file != NULL)
		return open_with_passphrase(srv, &db);
	if (cluster_mode(srv->cfg))
		return cluster_open(srv, &db);
	st = keys_open_store(srv->key_file, &db, srv->key, &srv->persistent, &note);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "database %s with key file %s: %s", srv->db_path,
		    srv->key_file,
		    st == STORE_INVALID ? "the key file is not 64 hex digits" : store_hint(st));
		return false;
	}
	if (note != NULL)
		log_msg(&srv->log, LOG_INFO, "%s: %s", srv->key_file, note);
	return true;
}

/* service.audit_attempt: the "attempt" line written before a state change. */
static bool
audit_attempt(
    void *arg, struct caller *caller, const char *method, const char *name, const char *storage)
{
	struct server *srv = arg;
	struct audit_record rec = {
	    .event = "attempt",
	    .peer = call_describe_peer(caller),
	    .token_id = caller->token_id,
	    .role = role_str(caller->role),
	    .method = method,
	    .name = name,
	    .storage = storage,
	    .status = "",
	};

	return log_audit(&srv->log, &rec);
}

/* service.rekey: rotate the database key online. */
static enum status
rekey_online(void *arg, const char **key_filep, struct outcome *out)
{
	struct server *srv = arg;
	store_status st;

	if (cluster_mode(srv->cfg))
		return outcome_set(out, ST_FAILED_PRECONDITION, REASON_CLUSTER,
		    "in cluster mode the key is shared by every node: rotate it offline (stop "
		    "every secretd, run `secretd rekey --persistent-store etcd --etcd-endpoints "
		    "...` on one node, copy the new key file to every node, start them)");
	if (srv->cfg->passphrase_file != NULL)
		return outcome_set(out, ST_FAILED_PRECONDITION, REASON_PASSPHRASE_MODE,
		    "this server is keyed with a passphrase: rotate it offline with `secretd "
		    "rekey --passphrase-file OLD --new-passphrase-file NEW`");
	(void)pthread_mutex_lock(&srv->rekey_lock);
	st = keys_rotate(srv->persistent, srv->key_file, srv->key, srv->cfg->test_rekey_crash);
	(void)pthread_mutex_unlock(&srv->rekey_lock);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "key rotation failed: %s", store_status_str(st));
		return outcome_set(out, ST_UNAVAILABLE, REASON_REKEY,
		    "key rotation failed (%s); every secret is intact under the key file in "
		    "use",
		    store_status_str(st));
	}
	log_msg(&srv->log, LOG_INFO, "database key rotated; new key in %s", srv->key_file);
	*key_filep = srv->key_file;
	return ST_OK;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		int rv;

		if (w->ch == NULL || w->call == NULL) {
			/* No channel or call could be made (out of memory): wait and try again. */
			usleep(10000);
			if (w->ch == NULL)
				w->ch = channels_take(&w->srv->channels);
			if (w->call == NULL)
				w->call = call_take(w->srv);
		}
		(void)pthread_mutex_lock(&w->lock);
		if (w->stop || w->ch == NULL || w->call == NULL) {
			bool stop = w->stop;

			(void)pthread_mutex_unlock(&w->lock);
			if (stop)
				break;
			continue;
		}
		w->receiving = true;
		nng_ctx_recv(channel_ctx(w->ch), w->aio);
		(void)pthread_mutex_unlock(&w->lock);
		nng_aio_wait(w->aio);
		(void)pthread_mutex_lock(&w->lock);
		w->receiving = false;
		(void)pthread_mutex_unlock(&w->lock);
		rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0)
			continue; /* cancelled (stop is checked above) or a transient error */
		call_serve(w->srv, &w->call, &w->ch, nng_aio_get_msg(w->aio));
	}
	if (w->ch != NULL)
		channels_put(w->ch);
	w->ch = NULL;
	if (w->call != NULL)
		call_put(w->srv, w->call);
	w->call = NULL;
	return NULL;
}

static bool
start_workers(struct server *srv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n =
	    srv->cfg->workers > 0 ? (size_t)srv->cfg->workers : (size_t)(ncpu > 0 ? ncpu : 1) * 4;

	srv->workers = calloc(n, sizeof(*srv->workers));
	if (srv->workers == NULL)
		return false;
	if (channels_init(&srv->channels, srv->sock, MAX_CHANNELS, SEND_TIMEOUT_MS) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct worker *w = &srv->workers[i];
		int rv;

		w->srv = srv;
		if (pthread_mutex_init(&w->lock, NULL) != 0)
			return false;
		srv->n_workers = i + 1;
		w->call = call_take(srv);
		rv = w->call != NULL ? nng_aio_alloc(&w->aio, NULL, NULL) : NNG_ENOMEM;
		if (rv == 0 && (w->ch = channels_take(&srv->channels)) == NULL)
			rv = NNG_ENOMEM;
		if (rv != 0) {
			log_msg(&srv->log, LOG_ERROR, "cannot create worker %zu: %s", i,
			    nng_strerror(rv));
			return false;
		}
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_msg(&srv->log, LOG_ERROR, "cannot start worker thread %zu", i);
			return false;
		}
		w->started = true;
	}
	return true;
}

/* metrics_source.serving: workers running and not draining. */
static bool
server_serving(void *arg)
{
	struct server *srv = arg;

	return atomic_load(&srv->serving);
}

/* nng pipe events on the service socket (nng keeps one callback per event): count client
 * connections for the metrics, and new pipes for the listener guard. */
static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct server *srv = arg;

	if (ev == NNG_PIPE_EV_ADD_POST)
		listen_pipe_added(srv, p);
	metrics_client(srv->metrics, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

/* Start the metrics listener when asked for. */
static bool
start_metrics(struct server *srv)
{
	struct metrics_source src = {
	    .temporary = srv->temporary,
	    .persistent = srv->persistent,
	    .serving = server_serving,
	    .arg = srv,
	};
	char err[512];

	if (srv->cfg->metrics_listen == NULL)
		return true;
	if (metrics_open(srv->cfg->metrics_listen, &src, &srv->metrics, err, sizeof(err)) !=
	    ST_OK) {
		log_msg(&srv->log, LOG_ERROR, "%s", err);
		return false;
	}
	log_msg(&srv->log, LOG_INFO, "metrics on %s/metrics (also /healthz, /readyz)",
	    srv->cfg->metrics_listen);
	return true;
}

/* Tell every worker to stop, cancel idle receives, and wait for in-flight requests. */
static void
stop_workers(struct server *srv)
{
	for (size_t i = 0; i < srv->n_workers; i++) {
		struct worker *w = &srv->workers[i];

		(void)pthread_mutex_lock(&w->lock);
		w->stop = true;
		if (w->receiving)
			nng_aio_cancel(w->aio);
		(void)pthread_mutex_unlock(&w->lock);
	}
	for (size_t i = 0; i < srv->n_workers; i++)
		if (srv->workers[i].started)
			(void)pthread_join(srv->workers[i].thread, NULL);
}

static void
free_workers(struct server *srv)
{
	for (size_t i = 0; i < srv->n_workers; i++) {
		struct worker *w = &srv->workers[i];

		if (w->aio != NULL) {
			nng_aio_stop(w->aio);
			nng_aio_free(w->aio);
		}
		if (w->call != NULL)
			call_put(srv, w->call);
		w->call = NULL;
		(void)pthread_mutex_destroy(&w->lock);
	}
	free(srv->workers);
	srv->workers = NULL;
	srv->n_workers = 0;
}

/* Longest the shutdown waits for nng's own teardown (nng_close and the contexts). */
#define SHUTDOWN_NNG_WAIT_MS 2000

struct teardown {
	struct server *srv;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void *
teardown_main(void *arg)
{
	struct teardown *td = arg;
	struct server *srv = td->srv;

	if (srv->sock_open)
		(void)nng_close(srv->sock);
	srv->sock_open = false;
	channels_fini(&srv->channels);
	free_workers(srv);
	(void)pthread_mutex_lock(&td->mu);
	td->done = true;
	(void)pthread_cond_signal(&td->cv);
	(void)pthread_mutex_unlock(&td->mu);
	return NULL;
}

/*
 * nng_close, the reply contexts and the worker aios, on a thread of their own, waiting at
 * most SHUTDOWN_NNG_WAIT_MS. nng 1.5.2's nng_close can wait for ever on its reaper thread
 * (tests/README.md, "nng 1.5.2"; upstream nanomsg/nng#1543): seen in 113 of 200 drains of
 * a plain nng REP server under load. The drain must not depend on it: by now every reply
 * that could be sent was, and the stores are closed. Returns false when the wait ran out
 * (the thread and what it holds are left to the process exit).
 */
static bool
teardown_nng_bounded(struct server *srv)
{
	struct teardown *td = calloc(1, sizeof(*td));
	struct timespec until;
	pthread_t thread;
	bool done;

	if (td == NULL)
		return false;
	td->srv = srv;
	if (pthread_mutex_init(&td->mu, NULL) != 0) {
		free(td);
		return false;
	}
	if (pthread_cond_init(&td->cv, NULL) != 0 ||
	    pthread_create(&thread, NULL, teardown_main, td) != 0) {
		/* (a cond that failed to init is not destroyed: harmless on glibc) */
		(void)pthread_mutex_destroy(&td->mu);
		free(td);
		return false;
	}
	(void)clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SHUTDOWN_NNG_WAIT_MS / 1000;
	(void)pthread_mutex_lock(&td->mu);
	while (!td->done)
		if (pthread_cond_timedwait(&td->cv, &td->mu, &until) == ETIMEDOUT)
			break;
	done = td->done;
	(void)pthread_mutex_unlock(&td->mu);
	if (!done) {
		/* td stays allocated for the stuck thread (reachable from it). */
		(void)pthread_detach(thread);
		return false;
	}
	(void)pthread_join(thread, NULL);
	(void)pthread_cond_destroy(&td->cv);
	(void)pthread_mutex_destroy(&td->mu);
	free(td);
	return true;
}

/* Harden the process: no core dumps (they would hold secrets), private new files. */
static void
harden_process(struct server *srv)
{
	struct rlimit rl = {0, 0};

	(void)umask(077);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_msg(&srv->log, LOG_WARN, "cannot disable core dumps: %s", strerror(errno));
	(void)setrlimit(RLIMIT_CORE, &rl);
}

/* The notify socket: --notify-listen URL, none, or next to each ipc listener. */
static bool
listen_notify(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;
	char url[4300];

	if (cfg->notify_listen != NULL)
		return strcmp(cfg->notify_listen, "none") == 0 ||
		       notify_listen(srv->notify, srv, cfg->notify_listen);
	if (cfg->n_listen == 0)
		return !notify_default_url(srv->default_url, url, sizeof(url)) ||
		       notify_listen(srv->notify, srv, url);
	for (size_t i = 0; i < cfg->n_listen; i++)
		if (notify_default_url(cfg->listen[i], url, sizeof(url)) &&
		    !notify_listen(srv->notify, srv, url))
			return false;
	return true;
}

/* Wait for signals: SIGHUP reloads tokens, SIGTERM/SIGINT return. */
static void
wait_for_stop(struct server *srv, const sigset_t *set)
{
	for (;;) {
		int sig = 0;
		char err[256];

		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			if (auth_reload(srv->auth, err, sizeof(err)) == ST_OK)
				log_msg(&srv->log, LOG_INFO, "tokens reloaded: %zu token(s)",
				    auth_count(srv->auth));
			else
				log_msg(&srv->log, LOG_ERROR, "tokens not reloaded: %s", err);
			continue;
		}
		log_msg(&srv->log, LOG_INFO, "%s: draining in-flight requests",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		return;
	}
}

int
server_run(const struct server_config *cfg)
{
	struct server *srv = NULL;
	sigset_t set;
	char err[512];
	int rc = 1;
	int rv;

	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		(void)fprintf(stderr, "secretd: out of memory\n");
		return 1;
	}
	srv->cfg = cfg;
	srv->uid = getuid();
	(void)pthread_mutex_init(&srv->rekey_lock, NULL);
	(void)pthread_mutex_init(&srv->parking.lock, NULL);
	(void)pthread_cond_init(&srv->parking.none, NULL);
	if (log_open(&srv->log, STDERR_FILENO, cfg->log_level, cfg->audit_file) != 0) {
		(void)fprintf(stderr, "secretd: cannot open audit file %s: %s\n",
		    cfg->audit_file != NULL ? cfg->audit_file : "-", strerror(errno));
		free(srv);
		return 1;
	}
	harden_process(srv);
	text_init();
	/* Signals are taken by sigwait in this thread only; every thread started from here
	 * (workers, nng's own) inherits the mask. SIGPIPE must never kill the server. */
	(void)sigemptyset(&set);
	(void)sigaddset(&set, SIGTERM);
	(void)sigaddset(&set, SIGINT);
	(void)sigaddset(&set, SIGHUP);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
	(void)signal(SIGPIPE, SIG_IGN);

	if (!resolve_paths(srv))
		goto done;
	if (auth_open(cfg->tokens_file, &srv->auth, err, sizeof(err)) != ST_OK) {
		log_msg(&srv->log, LOG_ERROR, "%s", err);
		goto done;
	}
	if (notify_open(&srv->log, &srv->notify) != ST_OK) {
		log_msg(&srv->log, LOG_ERROR, "cannot set up notifications (no randomness?)");
		goto done;
	}
	srv->svc.notify = srv->notify;
	if (!open_stores(srv))
		goto done;
	srv->svc.temporary = srv->temporary;
	srv->svc.persistent = srv->persistent;
	srv->svc.auth = srv->auth;
	/* Resends come within nng's resend time (60 s by default): remember replies for
	 * twice that. */
	if (dedup_open(4096, 120000, &srv->dedup) != ST_OK) {
		log_msg(&srv->log, LOG_ERROR, "out of memory");
		goto done;
	}
	srv->svc.dedup = srv->dedup;
	srv->svc.rekey = rekey_online;
	srv->svc.rekey_arg = srv;
	if (cfg->audit_file != NULL) {
		srv->svc.audit_attempt = audit_attempt;
		srv->svc.audit_arg = srv;
	}
	srv->svc.limits = cfg->limits;
	srv->svc.read_wait_ms = cfg->read_wait_ms > 0 ? cfg->read_wait_ms : 2000;
	if (service_init(&srv->svc, err, sizeof(err)) != ST_OK) {
		log_msg(&srv->log, LOG_ERROR, "cannot start: %s", err);
		goto done;
	}
	if (strcmp(store_name(srv->persistent), "etcd") == 0) {
		/* Listings name the node that holds each temporary secret (they are not
		 * replicated); on one machine they carry no node. */
		if (cfg->node_name != NULL)
			(void)snprintf(srv->node_name, sizeof(srv->node_name), "%s", cfg->node_name);
		else if (gethostname(srv->node_name, sizeof(srv->node_name) - 1) != 0)
			(void)snprintf(srv->node_name, sizeof(srv->node_name), "unknown");
		srv->svc.node_name = srv->node_name;
	}

	rv = nng_rep0_open(&srv->sock);
	if (rv != 0) {
		log_msg(&srv->log, LOG_ERROR, "cannot open the socket: %s", nng_strerror(rv));
		goto done;
	}
	srv->sock_open = true;
	if (!start_metrics(srv))
		goto done;
	if (!listen_init(srv))
		goto done;
	if ((rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_POST, pipe_event, srv)) != 0 ||
	    (rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, pipe_event, srv)) != 0) {
		log_msg(&srv->log, LOG_ERROR, "cannot watch connections: %s", nng_strerror(rv));
		goto done;
	}
	if (cfg->n_listen == 0) {
		if (!listen_one(srv, srv->default_url))
			goto done;
	}
	for (size_t i = 0; i < cfg->n_listen; i++)
		if (!listen_one(srv, cfg->listen[i]))
			goto done;
	if (!listen_notify(srv) || !notify_start(srv->notify))
		goto done;
	if (!start_workers(srv))
		goto done;
	log_msg(&srv->log, LOG_INFO,
	    "secretd ready: %zu workers, data in %s, key file %s, %zu persistent secret(s)",
	    srv->n_workers, srv->data_dir, srv->key_file, store_count(srv->persistent));
	atomic_store(&srv->serving, true);
	if (!listen_guard_start(srv))
		goto done;
	wait_for_stop(srv, &set);
	rc = 0;
done:
	atomic_store(&srv->serving, false);
	listen_guard_stop(srv);
	stop_workers(srv);
	/* Parked calls are answered by the store's commit thread, which always gets to
	 * them: wait for their replies before the channels go. */
	calls_wait_parked(srv);
	/* Replies already handed to nng get a moment to reach their clients. */
	channels_drain(&srv->channels, 2000);
	/* Every acknowledged write is durable once the workers stopped (each was answered
	 * only after its commit); close the stores before anything of nng's can hang. */
	store_close(srv->persistent);
	srv->persistent = NULL;
	store_close(srv->temporary);
	srv->temporary = NULL;
	if (!teardown_nng_bounded(srv)) {
		log_msg(&srv->log, LOG_WARN,
		    "nng_close did not return within %d ms (nng 1.5.2 defect, see "
		    "tests/README.md); exiting without it",
		    SHUTDOWN_NNG_WAIT_MS);
		if (rc == 0)
			log_msg(&srv->log, LOG_INFO, "secretd stopped cleanly");
		log_close(&srv->log);
		/* Exit now, past the atexit handlers: the stuck thread still holds srv, and
		 * the socket nng never freed is not ours to free (LeakSanitizer's exit check
		 * would count it). The stores are closed and the log flushed. */
		_exit(rc);
	}
	/* After the socket: no pipe event can reach the metrics any more. */
	metrics_close(srv->metrics);
	srv->metrics = NULL;
	calls_free(srv);
	/* After the stores: their change observer is the notify socket. */
	notify_close(srv->notify);
	srv->notify = NULL;
	if (srv->tls != NULL)
		nng_tls_config_free(srv->tls);
	listen_free(srv);
	auth_free(srv->auth);
	dedup_free(srv->dedup);
	explicit_bzero(srv->key, sizeof(srv->key));
	explicit_bzero(srv->passphrase, sizeof(srv->passphrase));
	if (rc == 0)
		log_msg(&srv->log, LOG_INFO, "secretd stopped cleanly");
	log_close(&srv->log);
	(void)pthread_mutex_destroy(&srv->rekey_lock);
	(void)pthread_cond_destroy(&srv->parking.none);
	(void)pthread_mutex_destroy(&srv->parking.lock);
	free(srv);
	return rc;
}

/* secretd rekey in passphrase mode: open with the old passphrase, re-encrypt under the
 * new one in one transaction. Returns the exit status. */
static int
rekey_passphrase_offline(struct server *srv, struct store_config *db)
{
	uint8_t next[STORE_PASSPHRASE_MAX + 1];
	size_t next_len = 0;
	store_status st;
	int rc = 1;

	if (srv->cfg->new_passphrase_file == NULL) {
		log_msg(&srv->log, LOG_ERROR,
		    "passphrase mode: give the new passphrase with --new-passphrase-file");
		return 1;
	}
	if (!open_with_passphrase(srv, db))
		return 1;
	st = keys_passphrase_read(srv->cfg->new_passphrase_file, next, &next_len);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "new passphrase file %s: %s",
		    srv->cfg->new_passphrase_file, store_status_str(st));
		goto out;
	}
	st = store_rekey(srv->persistent, next, next_len);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR,
		    "rekey failed: %s; the old passphrase still opens "
		    "the database",
		    store_status_str(st));
		goto out;
	}
	log_msg(&srv->log, LOG_INFO,
	    "database re-encrypted under the new passphrase: %zu persistent secret(s); use "
	    "--passphrase-file %s from now on",
	    store_count(srv->persistent), srv->cfg->new_passphrase_file);
	rc = 0;
out:
	explicit_bzero(next, sizeof(next));
	return rc;
}

int
server_rekey_offline(const struct server_config *cfg)
{
	struct server *srv = calloc(1, sizeof(*srv));
	struct store_config db = {.max_secrets = cfg->limits.max_secrets};
	const char *note = NULL;
	store_status st;
	int rc = 1;

	if (srv == NULL)
		return 1;
	srv->cfg = cfg;
	srv->uid = getuid();
	if (log_open(&srv->log, STDERR_FILENO, cfg->log_level, NULL) != 0) {
		free(srv);
		return 1;
	}
	harden_process(srv);
	if (!resolve_paths(srv))
		goto done;
	db.path = srv->db_path;
	if (cluster_mode(cfg)) {
		rc = cluster_rekey_offline(srv);
		goto done;
	}
	if (access(srv->db_path, F_OK) != 0) {
		log_msg(&srv->log, LOG_ERROR, "no database at %s", srv->db_path);
		goto done;
	}
	if (cfg->passphrase_file != NULL) {
		rc = rekey_passphrase_offline(srv, &db);
		goto done;
	}
	st = keys_open_store(srv->key_file, &db, srv->key, &srv->persistent, &note);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "database %s with key file %s: %s", srv->db_path,
		    srv->key_file, store_hint(st));
		goto done;
	}
	st = keys_rotate(srv->persistent, srv->key_file, srv->key, cfg->test_rekey_crash);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "key rotation failed: %s", store_status_str(st));
		goto done;
	}
	log_msg(&srv->log, LOG_INFO,
	    "database key rotated: %zu persistent secret(s), new key in %s",
	    store_count(srv->persistent), srv->key_file);
	rc = 0;
done:
	store_close(srv->persistent);
	explicit_bzero(srv->key, sizeof(srv->key));
	explicit_bzero(srv->passphrase, sizeof(srv->passphrase));
	log_close(&srv->log);
	free(srv);
	return rc;
}

/* Copy one secret into etcd unless the name is there. */
static bool
migrate_one(struct server *srv, const struct store_secret *s, size_t *copiedp, size_t *keptp)
{
	struct store_secret *d = NULL;
	bool created = false;
	store_status st = store_secret_dup(s, &d);

	if (st == STORE_OK)
		st = store_put(srv->persistent, d, STORE_CONFLICT_IGNORE, &created);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "copying '%s' into etcd failed: %s", s->name,
		    store_status_str(st));
		return false;
	}
	if (created) {
		(*copiedp)++;
	} else {
		(*keptp)++;
		log_msg(&srv->log, LOG_WARN,
		    "'%s' is in etcd already: kept as it is there (drop it first to copy it)",
		    s->name);
	}
	return true;
}

int
server_migrate_to_etcd(const struct server_config *cfg)
{
	struct server *srv = calloc(1, sizeof(*srv));
	struct store_config db = {.max_secrets = cfg->limits.max_secrets};
	struct store *source = NULL;
	struct store_secret **items = NULL;
	size_t n = 0, copied = 0, kept = 0;
	const char *note = NULL;
	store_status st;
	int rc = 1;

	if (srv == NULL)
		return 1;
	srv->cfg = cfg;
	srv->uid = getuid();
	if (log_open(&srv->log, STDERR_FILENO, cfg->log_level, NULL) != 0) {
		free(srv);
		return 1;
	}
	harden_process(srv);
	if (!resolve_paths(srv))
		goto done;
	if (cfg->etcd_endpoints == NULL) {
		log_msg(&srv->log, LOG_ERROR, "migrate-to-etcd needs --etcd-endpoints");
		goto done;
	}
	if (access(srv->db_path, F_OK) != 0) {
		log_msg(&srv->log, LOG_ERROR, "no database at %s", srv->db_path);
		goto done;
	}
	/* The source: the one-machine database, opened with its key file (never created). */
	db.path = srv->db_path;
	st = keys_open_store(srv->key_file, &db, srv->key, &source, &note);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "database %s with key file %s: %s", srv->db_path,
		    srv->key_file, store_hint(st));
		goto done;
	}
	st = store_list_copy(source, NULL, &items, &n);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "reading %s: %s", srv->db_path, store_status_str(st));
		goto done;
	}
	/* The target: etcd, sealed with the same key file (the cluster's from now on). */
	db.path = NULL;
	if (!cluster_open(srv, &db))
		goto done;
	for (size_t i = 0; i < n; i++)
		if (!migrate_one(srv, items[i], &copied, &kept))
			goto done;
	log_msg(&srv->log, LOG_INFO,
	    "migrated %zu persistent secret(s) from %s into etcd at %s (%zu kept as they were "
	    "in etcd); the database is unchanged; start every node with --persistent-store etcd "
	    "and this key file",
	    copied, srv->db_path, cfg->etcd_endpoints, kept);
	rc = 0;
done:
	store_secret_array_free(items, n);
	store_close(source);
	store_close(srv->persistent);
	explicit_bzero(srv->key, sizeof(srv->key));
	log_close(&srv->log);
	free(srv);
	return rc;
}
