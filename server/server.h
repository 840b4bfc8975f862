/*
 * server.h: secretd's process: configuration, sockets, workers, signals.
 *
 * server_run turns a configuration into a running server: it resolves the defaults,
 * opens the key and both stores, listens on every URL, runs N worker threads (each with its
 * own nng context, so a slow persistent write never blocks a fast read), and returns when
 * SIGTERM or SIGINT has drained every in-flight request and closed the database.
 *
 * What it does not do: no flag parsing (main.c), no semantics (handlers.c).
 *
 * Thread safety: server_run is called once, from the main thread.
 */
#ifndef SECRETD_SERVER_SERVER_H
#define SECRETD_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"
#include "service.h"

#define SERVER_MAX_LISTEN 16

struct server_config {
	const char *listen[SERVER_MAX_LISTEN]; /* URLs; none: the default ipc socket */
	size_t n_listen;
	const char *data_dir;        /* NULL: $XDG_DATA_HOME/secretd or ~/.local/share/secretd */
	const char *key_file;        /* NULL: <data_dir>/secretd.key */
	const char *passphrase_file; /* passphrase mode instead of a key file */
	const char *new_passphrase_file; /* secretd rekey in passphrase mode */
	const char *tokens_file;         /* NULL: no tokens (only same-uid ipc peers may call) */
	const char *tls_cert;            /* PEM certificate for tls+tcp:// */
	const char *tls_key;             /* its PEM key */
	const char *tls_ca;       /* optional: require client certificates signed by this CA */
	const char *audit_file;   /* NULL: no audit trail */
	const char *metrics_listen; /* NULL: no metrics listener; else http://HOST:PORT */
	const char *socket_group; /* NULL: ipc socket 0600; else 0660 with this group */
	const char *notify_listen; /* NULL: next to each ipc listener (notify.h); "none": off */
	int workers;              /* 0: 4 per core */
	enum log_level log_level;
	bool insecure;                /* allow plain tcp:// (still needs tokens) */
	/* Called after each step of a key rotation (keys_rotate's after_step): NULL in
	 * secretd (main.c never sets it); tests set it to crash there. */
	void (*rekey_step)(const char *step);
	struct limits limits;
	/* Cluster mode (README "Running secretd as a cluster"): persistent secrets in etcd. */
	const char *persistent_store;   /* "sqlcipher" (NULL: the default) or "etcd" */
	const char *etcd_endpoints;     /* comma-separated http(s)://host:port */
	const char *etcd_prefix;        /* NULL: "/secretd/" */
	const char *etcd_ca;            /* https: CA file */
	const char *etcd_cert;          /* https: client certificate */
	const char *etcd_key;           /* its key */
	const char *etcd_user;          /* etcd authentication */
	const char *etcd_password_file; /* the user's password, in a 0600 file */
	int read_wait_ms;               /* bound of a read-your-writes wait (0: 2000) */
	const char *node_name;          /* names this node in listings; NULL: the hostname */
};

/* Fill cfg with the defaults (nothing resolved yet; server_run resolves paths). */
void server_config_default(struct server_config *cfg);

/* Write the default ipc URL into buf: ipc://$XDG_RUNTIME_DIR/secretd.sock, else
 * ipc:///tmp/secretd-$UID/secretd.sock. Returns false when it does not fit. */
bool server_default_url(char *buf, size_t len);

/* Rotate the database key offline (secretd rekey): the server must not be running.
 * Prints what it did; returns the process exit status. */
int server_rekey_offline(const struct server_config *cfg);

/* secretd migrate-to-etcd: copy every persistent secret of the SQLCipher database of
 * --data-dir (opened with its key file) into the etcd cluster of cfg (sealed with the same
 * key file). Existing names in etcd are kept and reported. Returns the exit status. */
int server_migrate_to_etcd(const struct server_config *cfg);

/* Run the server until SIGTERM/SIGINT. Returns the process exit status (0 on a clean
 * shutdown, 1 on a start-up error, which it has logged). */
int server_run(const struct server_config *cfg);

#endif
