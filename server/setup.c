/*
 * setup.c: what server_run and the one-shot commands (rekey, migrate-to-etcd) share:
 * paths, process hardening, and opening the stores with their key. See setup.h.
 */
#include "setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "keys.h"
#include "listen.h"
#include "notify.h"
#include "server_internal.h"

bool
setup_paths(struct server *srv)
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

const char *
setup_store_hint(store_status st)
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

bool
setup_open_passphrase(struct server *srv, struct store_config *db)
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
		                        : setup_store_hint(st));
		return false;
	}
	return true;
}

bool
setup_open_keyed(struct server *srv, struct store_config *db, struct store **storep)
{
	const char *note = NULL;
	store_status st;

	st = keys_open_store(srv->key_file, db, srv->key, storep, &note);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "database %s with key file %s: %s", srv->db_path,
		    srv->key_file,
		    st == STORE_INVALID ? "the key file is not 64 hex digits"
		                        : setup_store_hint(st));
		return false;
	}
	if (note != NULL)
		log_msg(&srv->log, LOG_INFO, "%s: %s", srv->key_file, note);
	return true;
}

bool
setup_open_stores(struct server *srv)
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
		return setup_open_passphrase(srv, &db);
	if (cluster_mode(srv->cfg))
		return cluster_open(srv, &db);
	return setup_open_keyed(srv, &db, &srv->persistent);
}

void
setup_harden(struct server *srv)
{
	struct rlimit rl = {0, 0};

	(void)umask(077);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_msg(&srv->log, LOG_WARN, "cannot disable core dumps: %s", strerror(errno));
	(void)setrlimit(RLIMIT_CORE, &rl);
}

struct server *
setup_offline_begin(const struct server_config *cfg)
{
	struct server *srv = calloc(1, sizeof(*srv));

	if (srv == NULL)
		return NULL;
	srv->cfg = cfg;
	srv->uid = getuid();
	if (log_open(&srv->log, STDERR_FILENO, cfg->log_level, NULL) != 0) {
		free(srv);
		return NULL;
	}
	setup_harden(srv);
	if (!setup_paths(srv)) {
		setup_offline_end(srv);
		return NULL;
	}
	return srv;
}

void
setup_offline_end(struct server *srv)
{
	if (srv == NULL)
		return;
	store_close(srv->persistent);
	explicit_bzero(srv->key, sizeof(srv->key));
	explicit_bzero(srv->passphrase, sizeof(srv->passphrase));
	log_close(&srv->log);
	free(srv);
}
