/*
 * server.c: the secretd process. See server.h.
 *
 * server_run opens the stores (setup.c), listens (listen.c), starts the workers
 * (workers.c) and waits for a signal. Shutdown: the workers are told to stop and finish
 * the request in hand; parked calls are waited for. Only then are the stores closed, and
 * then the socket (bounded: workers.c). Key rotation is in rekey.c, the one-shot commands'
 * shared start in setup.c, the migration into etcd in cluster.c.
 */
#include "server.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "calls.h"
#include "channel.h"
#include "dedup.h"
#include "listen.h"
#include "metrics.h"
#include "notify.h"
#include "rekey.h"
#include "server_internal.h"
#include "setup.h"
#include "store.h"
#include "text.h"
#include "workers.h"

/* Replies remembered for resent requests: resends come within nng's resend time (60 s by
 * default), so twice that. */
#define DEDUP_ENTRIES 4096
#define DEDUP_TTL_MS 120000

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

/* The notify socket: --notify-listen URL, none, or next to each ipc listener. */
static bool
listen_notify(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;
	char url[SD_PATH_SUFFIX_BUF + sizeof(".notify.sock")];

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

/* Paths, tokens, the notify state, the stores and the service that runs on them. Logs
 * and returns false on failure (what was opened stays in srv for server_stop). */
static bool
open_service(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;
	char err[512];

	if (!setup_paths(srv))
		return false;
	if (auth_open(cfg->tokens_file, &srv->auth, err, sizeof(err)) != ST_OK) {
		log_msg(&srv->log, LOG_ERROR, "%s", err);
		return false;
	}
	if (notify_open(&srv->log, &srv->notify) != ST_OK) {
		log_msg(&srv->log, LOG_ERROR, "cannot set up notifications (no randomness?)");
		return false;
	}
	srv->svc.notify = srv->notify;
	if (!setup_open_stores(srv))
		return false;
	srv->svc.temporary = srv->temporary;
	srv->svc.persistent = srv->persistent;
	srv->svc.auth = srv->auth;
	if (dedup_open(DEDUP_ENTRIES, DEDUP_TTL_MS, &srv->dedup) != ST_OK) {
		log_msg(&srv->log, LOG_ERROR, "out of memory");
		return false;
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
		return false;
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
	return true;
}

/* Drain and close everything server_run opened, in an order that never loses an
 * acknowledged write; frees srv. Returns rc, the exit status. */
static int
server_stop(struct server *srv, int rc)
{
	atomic_store(&srv->serving, false);
	listen_guard_stop(srv);
	workers_stop(srv);
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
	if (!workers_teardown_bounded(srv)) {
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

int
server_run(const struct server_config *cfg)
{
	struct server *srv = NULL;
	sigset_t set;
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
	setup_harden(srv);
	text_init();
	/* Signals are taken by sigwait in this thread only; every thread started from here
	 * (workers, nng's own) inherits the mask. SIGPIPE must never kill the server. */
	(void)sigemptyset(&set);
	(void)sigaddset(&set, SIGTERM);
	(void)sigaddset(&set, SIGINT);
	(void)sigaddset(&set, SIGHUP);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
	(void)signal(SIGPIPE, SIG_IGN);

	if (!open_service(srv))
		goto done;
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
	if (!workers_start(srv))
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
	return server_stop(srv, rc);
}
