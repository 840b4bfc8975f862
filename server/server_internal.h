/*
 * server_internal.h: struct server, the state of one secretd process, shared by server.c
 * (start, signals, shutdown), setup.c (paths, opening the stores), workers.c, rekey.c,
 * cluster.c and listen.c (directories, TLS, listeners). Not part of server.h: only files
 * of the server process include it.
 *
 * What it does not do: declares no functions (server.h, setup.h, workers.h, rekey.h and
 * listen.h do).
 *
 * Thread safety: set up by the main thread before the workers start; after that the workers
 * read it, and rekey_lock serialises key rotation (see rekey.c).
 */
#ifndef SECRETD_SERVER_SERVER_INTERNAL_H
#define SECRETD_SERVER_SERVER_INTERNAL_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "channel.h"
#include "path.h"
#include "server.h"
#include "store.h"

struct auth;
struct dedup;
struct notify;
struct listeners;
struct worker;
struct call;
struct metrics;

struct server {
	const struct server_config *cfg;
	struct logger log;
	struct service svc;
	struct store *temporary;
	struct store *persistent;
	struct auth *auth;
	struct dedup *dedup;
	struct notify *notify; /* epoch, rev and the notify socket (notify.h) */
	nng_socket sock;
	bool sock_open;
	nng_tls_config *tls;
	struct listeners *listeners; /* what listen_one opened, and its guard (listen.c) */
	struct worker *workers;
	size_t n_workers;
	struct channels channels; /* reply channels: see channel.h */
	uid_t uid;
	char data_dir[SD_PATH_BUF];
	char key_file[SD_PATH_BUF];
	char db_path[SD_PATH_BUF];
	char default_url[SD_PATH_SUFFIX_BUF];
	char node_name[64]; /* cluster mode: this node's name (service.node_name) */
	uint8_t key[STORE_KEY_LEN];
	uint8_t passphrase[STORE_PASSPHRASE_MAX + 1]; /* passphrase mode; wiped at exit */
	size_t passphrase_len;
	pthread_mutex_t rekey_lock; /* one rotation at a time */
	/* Calls parked on a durable write (server.c: serve, call_parked_done) and the pool of
	 * call objects, under lock. */
	struct {
		pthread_mutex_t lock;
		pthread_cond_t none; /* parked fell */
		long parked;         /* may dip below 0 for a moment: the completion can come
		                      * before the worker counts its call as parked */
		struct call *free;
		size_t made;
	} parking;
	struct metrics *metrics; /* NULL without --metrics-listen */
	atomic_bool serving;     /* workers running, not draining (for /healthz) */
};

#endif
