/*
 * setup.h: what server_run and the one-shot commands (secretd rekey, migrate-to-etcd)
 * share: the paths a configuration resolves to, process hardening, and opening the stores
 * with the key file or passphrase, each failure logged with what an operator can do.
 *
 * What it does not do: no serving (server.c, workers.c), no rotation (rekey.c, keys.c).
 *
 * Thread safety: called from the main thread at start-up (or by the one-shot commands).
 */
#ifndef SECRETD_SERVER_SETUP_H
#define SECRETD_SERVER_SETUP_H

#include <stdbool.h>

#include "server.h"
#include "store.h"

struct server;

/* Fill srv->data_dir, key_file, db_path and default_url from srv->cfg and the environment
 * ($XDG_DATA_HOME, $HOME, $XDG_RUNTIME_DIR). Logs and returns false when there is no data
 * directory or a path does not fit. */
bool setup_paths(struct server *srv);

/* No core dumps (they would hold secrets), private new files (umask 077). */
void setup_harden(struct server *srv);

/* What an operator can do about st when the database does not open (a static string). */
const char *setup_store_hint(store_status st);

/* Passphrase mode: read srv->cfg->passphrase_file into srv->passphrase and open the
 * sqlcipher store at db->path with it into srv->persistent. Logs and returns false on
 * failure. */
bool setup_open_passphrase(struct server *srv, struct store_config *db);

/* Open the sqlcipher store at db->path with srv->key_file (keys_open_store: made on first
 * start, an interrupted rotation finished) into *storep, the key in srv->key. Logs the
 * note keys_open_store leaves, and the failure; returns false then. */
bool setup_open_keyed(struct server *srv, struct store_config *db, struct store **storep);

/* server_run's stores: the data directory (made 0700, checked private), the memory store,
 * and the persistent one (passphrase, etcd in cluster mode, or the key file). Logs and
 * returns false on failure; what was opened stays in srv for the caller to close. */
bool setup_open_stores(struct server *srv);

/* A struct server for a one-shot command: logging to stderr, hardened, paths resolved.
 * Returns NULL (having logged what it could) on failure. Caller frees with
 * setup_offline_end. */
struct server *setup_offline_begin(const struct server_config *cfg);

/* Close srv->persistent, wipe the key and passphrase, close the log, free srv (NULL-safe). */
void setup_offline_end(struct server *srv);

#endif
