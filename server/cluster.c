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
	char pending[4200];
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
	st = keys_rotate(srv->persistent, srv->key_file, srv->key, srv->cfg->test_rekey_crash);
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
