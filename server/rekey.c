/*
 * rekey.c: key rotation, online (the Rekey call) and offline (secretd rekey). See rekey.h;
 * the crash-safe steps themselves are keys_rotate's (keys.c).
 */
#include "rekey.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "keys.h"
#include "server_internal.h"
#include "setup.h"

enum status
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
	st = keys_rotate(srv->persistent, srv->key_file, srv->key, srv->cfg->rekey_step);
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
	if (!setup_open_passphrase(srv, db))
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
	struct server *srv = setup_offline_begin(cfg);
	struct store_config db = {.max_secrets = cfg->limits.max_secrets};
	store_status st;
	int rc = 1;

	if (srv == NULL)
		return 1;
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
	if (!setup_open_keyed(srv, &db, &srv->persistent))
		goto done;
	st = keys_rotate(srv->persistent, srv->key_file, srv->key, cfg->rekey_step);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "key rotation failed: %s", store_status_str(st));
		goto done;
	}
	log_msg(&srv->log, LOG_INFO,
	    "database key rotated: %zu persistent secret(s), new key in %s",
	    store_count(srv->persistent), srv->key_file);
	rc = 0;
done:
	setup_offline_end(srv);
	return rc;
}
