/*
 * cluster.c: cluster mode's start-up, rotation and migration. See cluster.h.
 */
#include "cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "keys.h"
#include "server_internal.h"
#include "setup.h"

bool
cluster_mode(const struct server_config *cfg)
{
	return cfg->persistent_store != NULL && strcmp(cfg->persistent_store, "etcd") == 0;
}

static const char *
etcd_hint(store_status st)
{
	switch (st) {
	case STORE_BAD_KEY:
		return "the key file is not the cluster's (values in etcd are sealed under another "
		       "key): copy the key file of a running node; nothing was written to etcd";
	case STORE_UNAVAILABLE:
		return "etcd cannot be reached or has no quorum";
	case STORE_CORRUPT:
		return "a value in etcd is malformed or fails authentication";
	case STORE_INVALID:
		return "invalid etcd settings (endpoints must be http:// or https:// URLs; a "
		       "client certificate needs its key)";
	default:
		return store_status_str(st);
	}
}

/* What a failed start says: etcd_hint, made precise by why (the last failed call's words)
 * when etcd was reached but refused us. */
static const char *
start_hint(store_status st, const char *why)
{
	if (st != STORE_UNAVAILABLE)
		return etcd_hint(st);
	if (strstr(why, "CommonName") != NULL)
		return "etcd refused the client certificate: with etcd authentication on, etcd "
		       "3.4's gateway refuses one that has a CommonName; use a certificate without "
		       "one (README, TLS between secretd and etcd)";
	if (strstr(why, "SSL") != NULL || strstr(why, "certificate") != NULL)
		return "the TLS connection to etcd failed: check --etcd-ca (the CA that signed "
		       "etcd's certificate), and --etcd-cert/--etcd-key when etcd requires client "
		       "certificates";
	if (strstr(why, "authentication failed") != NULL)
		return "etcd refused the user or password (--etcd-user, --etcd-password-file)";
	if (strstr(why, "permission denied") != NULL)
		return "the etcd user may not read and write the prefix (etcdctl role "
		       "grant-permission ROLE readwrite PREFIX --prefix=true)";
	return etcd_hint(st);
}

/* Read the etcd password file into buf (wiped by the caller). */
static bool
read_password(struct server *srv, char *buf, size_t len)
{
	uint8_t raw[STORE_PASSPHRASE_MAX + 1];
	size_t n = 0;
	store_status st;

	if (srv->cfg->etcd_password_file == NULL) {
		buf[0] = '\0';
		return true;
	}
	st = keys_passphrase_read(srv->cfg->etcd_password_file, raw, &n);
	if (st != STORE_OK || n + 1 > len || memchr(raw, 0, n) != NULL) {
		log_msg(&srv->log, LOG_ERROR, "etcd password file %s: %s",
		    srv->cfg->etcd_password_file,
		    st == STORE_PERMISSION ? "must be readable only by its owner (chmod 600)"
		                           : "cannot be read, or is empty or too long");
		explicit_bzero(raw, sizeof(raw));
		return false;
	}
	memcpy(buf, raw, n);
	buf[n] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return true;
}

/* "<key file>.new" into buf. */
static bool
pending_path(const char *key_file, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s.new", key_file);

	return n > 0 && (size_t)n < len;
}

bool
cluster_open(struct server *srv, struct store_config *db)
{
	const struct server_config *cfg = srv->cfg;
	char password[STORE_PASSPHRASE_MAX + 1];
	char pending[SD_PATH_SUFFIX_BUF];
	uint8_t next[STORE_KEY_LEN];
	bool have_pending = false;
	bool created = false;
	bool ok = false;
	struct store_etcd_config ec = {
	    .endpoints = cfg->etcd_endpoints,
	    .prefix = cfg->etcd_prefix,
	    .ca_file = cfg->etcd_ca,
	    .cert_file = cfg->etcd_cert,
	    .key_file = cfg->etcd_key,
	    .user = cfg->etcd_user,
	};
	store_status st;
	char why[200] = "";

	ec.error = why;
	ec.error_len = sizeof(why);
	if (!read_password(srv, password, sizeof(password)))
		return false;
	ec.password = password[0] != '\0' ? password : NULL;
	if (!pending_path(srv->key_file, pending, sizeof(pending))) {
		log_msg(&srv->log, LOG_ERROR, "a path is too long");
		goto out;
	}
	st = store_keyfile_load(srv->key_file, true, srv->key, &created);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "key file %s: %s", srv->key_file,
		    st == STORE_INVALID ? "is not 64 hex digits" : store_status_str(st));
		goto out;
	}
	if (created)
		log_msg(&srv->log, LOG_INFO, "%s: created a new random key", srv->key_file);
	if (access(pending, F_OK) == 0) {
		/* A rotation was cut short: values may be under either key. */
		st = store_keyfile_load(pending, false, next, NULL);
		if (st != STORE_OK) {
			log_msg(&srv->log, LOG_ERROR, "pending key file %s: %s", pending,
			    store_status_str(st));
			goto out;
		}
		have_pending = true;
		ec.old_key = srv->key;
	}
	db->key = have_pending ? next : srv->key;
	db->key_len = STORE_KEY_LEN;
	db->etcd = &ec;
	st = store_open(&store_etcd_ops, db, &srv->persistent);
	db->etcd = NULL;
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "etcd at %s with key file %s: %s%s%s%s",
		    cfg->etcd_endpoints, srv->key_file, start_hint(st, why), why[0] != '\0' ? " (" : "",
		    why, why[0] != '\0' ? ")" : "");
		goto out;
	}
	if (have_pending) {
		st = store_rekey(srv->persistent, next, STORE_KEY_LEN);
		if (st == STORE_OK)
			st = store_keyfile_rename(pending, srv->key_file);
		if (st != STORE_OK) {
			log_msg(&srv->log, LOG_ERROR,
			    "finishing an interrupted key rotation failed: %s; both key files are "
			    "kept",
			    etcd_hint(st));
			goto out;
		}
		memcpy(srv->key, next, STORE_KEY_LEN);
		log_msg(&srv->log, LOG_INFO,
		    "finished an interrupted key rotation (new key in %s): copy it to every node",
		    srv->key_file);
	}
	ok = true;
out:
	explicit_bzero(password, sizeof(password));
	explicit_bzero(next, sizeof(next));
	return ok;
}

int
cluster_rekey_offline(struct server *srv)
{
	struct store_config db = {.max_secrets = srv->cfg->limits.max_secrets};
	store_status st;

	if (!cluster_open(srv, &db))
		return 1;
	st = keys_rotate(srv->persistent, srv->key_file, srv->key, srv->cfg->rekey_step);
	if (st != STORE_OK) {
		log_msg(&srv->log, LOG_ERROR, "key rotation failed: %s", etcd_hint(st));
		return 1;
	}
	log_msg(&srv->log, LOG_INFO,
	    "every value in etcd is re-sealed under the new key in %s (%zu persistent "
	    "secret(s)); copy that file to every node before starting them",
	    srv->key_file, store_count(srv->persistent));
	return 0;
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
	struct server *srv = setup_offline_begin(cfg);
	struct store_config db = {.max_secrets = cfg->limits.max_secrets};
	struct store *source = NULL;
	struct store_secret **items = NULL;
	size_t n = 0, copied = 0, kept = 0;
	store_status st;
	int rc = 1;

	if (srv == NULL)
		return 1;
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
	if (!setup_open_keyed(srv, &db, &source))
		goto done;
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
	setup_offline_end(srv);
	return rc;
}
