/*
 * cluster.h: secretd in cluster mode (--persistent-store etcd): opening the etcd store with
 * the key file (finishing a key rotation a crash cut short), the offline rotation, and the
 * migration of an SQLCipher database into etcd.
 *
 * What it does not do: no flags (main.c), no serving (server.c); the etcd protocol and the
 * sealing are in store/.
 *
 * Thread safety: called from the main thread at start-up (or by the one-shot commands).
 */
#ifndef SECRETD_SERVER_CLUSTER_H
#define SECRETD_SERVER_CLUSTER_H

#include <stdbool.h>

#include "server.h"
#include "store.h"

struct server;

/* Whether cfg selects the etcd backend. */
bool cluster_mode(const struct server_config *cfg);

/*
 * Open srv->persistent on etcd with srv->key_file (created with a random key when missing,
 * as on one machine: a node with another key than the cluster's is then refused). db holds
 * the common store options (max_secrets, on_change); its key and etcd members are set here.
 * A "<key file>.new" left by an interrupted rotation is finished: values under either key
 * are read, everything is re-sealed under the new key and the new file replaces the old.
 * Logs what went wrong; returns false then.
 */
bool cluster_open(struct server *srv, struct store_config *db);

/* secretd rekey in cluster mode (every node stopped): a new key, every value re-sealed
 * under it, the new key file in place. Returns the exit status. */
int cluster_rekey_offline(struct server *srv);

#endif
