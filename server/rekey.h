/*
 * rekey.h: rotating the database key, online (the Rekey call, through service.rekey) and
 * offline (secretd rekey: server_rekey_offline in server.h). Refused online in cluster mode
 * and in passphrase mode, which rotate offline.
 *
 * What it does not do: the crash-safe file and database steps are keys_rotate's (keys.h);
 * the cluster's offline rotation is cluster_rekey_offline's (cluster.h).
 *
 * Thread safety: rekey_online may run on any worker; srv->rekey_lock makes rotations one
 * at a time while other requests go on.
 */
#ifndef SECRETD_SERVER_REKEY_H
#define SECRETD_SERVER_REKEY_H

#include "service.h"

/* service.rekey, arg being the struct server: rotate the database key online. On success
 * *key_filep is the key file now in use (borrowed from the server). Returns ST_OK, or
 * FAILED_PRECONDITION (CLUSTER, PASSPHRASE_MODE) or UNAVAILABLE (REKEY) in out. */
enum status rekey_online(void *arg, const char **key_filep, struct outcome *out);

#endif
