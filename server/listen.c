/*
 * listen.c: the listening side of the secretd process: the private socket and data
 * directories, the TLS configuration read from PEM files, and one nng listener per URL.
 * See listen.h.
 *
 * What it does not do: it opens no socket and starts no worker (server.c); it refuses a
 * network listener without tokens, or without TLS unless --insecure, rather than guess.
 *
 * Not here: the listener guard (guard.c).
 *
 * Thread safety: everything here runs at start-up on the main thread, except
 * listener_open, which the guard thread also calls. NNG_E* codes are logged here and go no
 * further.
 */
#include "listen.h"

#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "path.h"
#include "server_internal.h"

/* Largest TLS certificate, key or CA file read (PEM; real ones are a few KiB). */
#define PEM_FILE_MAX (1024 * 1024)
/* nng's receive cap is at least this, and 4 times --max-frame above it (listener_open). */
#define TRANSPORT_CAP_MIN ((size_t)1024 * 1024)

bool
listen_url_is_tls(const char *url)
{
	return strncmp(url, "tls+tcp://", 10) == 0;
}

/* mkdir -p path with mode for every directory it creates. */
int
listen_mkdir_p(const char *path, mode_t mode)
{
	char buf[SD_PATH_BUF];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The directory must be ours and writable by nobody else. */
bool
listen_dir_is_private(struct server *srv, const char *dir, const char *what, mode_t forbidden)
{
	struct stat sb;

	if (stat(dir, &sb) != 0) {
		log_msg(&srv->log, LOG_ERROR, "%s %s: %s", what, dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != srv->uid || (sb.st_mode & forbidden) != 0) {
		log_msg(&srv->log, LOG_ERROR,
		    "%s %s must be a directory owned by uid %u and %s (chmod %s)", what, dir,
		    (unsigned)srv->uid,
		    (forbidden & 044) != 0 ? "usable only by it" : "writable only by it",
		    (forbidden & 044) != 0 ? "700" : "go-w");
		return false;
	}
	return true;
}

/* See listen.h. */
char *
listen_pem_read(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > PEM_FILE_MAX ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto done;
	buf = calloc(1, (size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	*lenp = (size_t)n;
done:
	(void)fclose(f);
	return buf;
}

static bool
setup_tls(struct server *srv)
{
	const struct server_config *cfg = srv->cfg;
	char *cert = NULL;
	char *key = NULL;
	size_t cert_len = 0;
	size_t key_len = 0;
	int rv;

	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		log_msg(&srv->log, LOG_ERROR, "tls+tcp:// needs --tls-cert and --tls-key");
		return false;
	}
	cert = listen_pem_read(cfg->tls_cert, &cert_len);
	key = listen_pem_read(cfg->tls_key, &key_len);
	if (cert == NULL || key == NULL) {
		log_msg(&srv->log, LOG_ERROR, "cannot read %s",
		    cert == NULL ? cfg->tls_cert : cfg->tls_key);
		rv = -1;
		goto done;
	}
	rv = nng_tls_config_alloc(&srv->tls, NNG_TLS_MODE_SERVER);
	if (rv == 0)
		rv = nng_tls_config_own_cert(srv->tls, cert, key, NULL);
	if (rv == 0 && cfg->tls_ca != NULL) {
		rv = nng_tls_config_ca_file(srv->tls, cfg->tls_ca);
		if (rv == 0)
			rv = nng_tls_config_auth_mode(srv->tls, NNG_TLS_AUTH_MODE_REQUIRED);
	} else if (rv == 0) {
		rv = nng_tls_config_auth_mode(srv->tls, NNG_TLS_AUTH_MODE_NONE);
	}
	if (rv != 0)
		log_msg(&srv->log, LOG_ERROR, "TLS configuration (%s, %s): %s", cfg->tls_cert,
		    cfg->tls_key, nng_strerror(rv));
done:
	free(cert);
	if (key != NULL) {
		explicit_bzero(key, key_len);
		free(key);
	}
	return rv == 0;
}

/* See listen.h. */
bool
listener_open(struct server *srv, nng_socket sock, const char *url, nng_listener *lp)
{
	const struct server_config *cfg = srv->cfg;
	nng_listener l;
	size_t hard_max;
	int rv;

	rv = nng_listener_create(&l, sock, url);
	if (rv != 0)
		goto fail;
	/* nng drops (and closes the connection on) a frame over RECVMAXSZ without a word, so
	 * the transport's cap sits well above the configured limit: frames between the two
	 * get a clear RESOURCE_EXHAUSTED from the service. */
	hard_max = cfg->limits.max_frame * 4 > TRANSPORT_CAP_MIN ? cfg->limits.max_frame * 4
	                                                        : TRANSPORT_CAP_MIN;
	rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, hard_max);
	if (rv == 0 && strncmp(url, "ipc://", 6) == 0)
		rv = nng_listener_set_int(
		    l, NNG_OPT_IPC_PERMISSIONS, cfg->socket_group != NULL ? 0660 : 0600);
	if (rv == 0 && srv->tls != NULL && listen_url_is_tls(url))
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, srv->tls);
	if (rv == 0)
		rv = nng_listener_start(l, 0);
	if (rv != 0)
		goto fail;
	if (cfg->socket_group != NULL && strncmp(url, "ipc://", 6) == 0) {
		struct group *g = getgrnam(cfg->socket_group);

		if (g == NULL || chown(url + 6, (uid_t)-1, g->gr_gid) != 0) {
			log_msg(&srv->log, LOG_ERROR, "cannot give %s to group %s", url + 6,
			    cfg->socket_group);
			(void)nng_listener_close(l);
			return false;
		}
	}
	*lp = l;
	return true;
fail:
	log_msg(&srv->log, LOG_ERROR, "cannot listen on %s: %s", url, nng_strerror(rv));
	return false;
}


/* The checks every listener of the server passes before it is created: a private socket
 * directory for ipc://; tokens, and TLS unless --insecure, for tcp. Logs why not. */
static bool
listen_allowed(struct server *srv, const char *url)
{
	const struct server_config *cfg = srv->cfg;

	if (strncmp(url, "ipc://", 6) == 0) {
		char dir[SD_PATH_BUF];

		/* A socket at the top of the tree (or of the working directory) is not checked. */
		if (!sd_path_dir(url + 6, dir, sizeof(dir))) {
			log_msg(&srv->log, LOG_ERROR, "socket path too long: %s", url);
			return false;
		}
		if (strchr(url + 6, '/') != NULL && strcmp(dir, "/") != 0) {
			if (listen_mkdir_p(dir, 0700) != 0) {
				log_msg(&srv->log, LOG_ERROR,
				    "cannot create socket directory %s: %s", dir, strerror(errno));
				return false;
			}
			if (!listen_dir_is_private(srv, dir, "socket directory", 022))
				return false;
		}
	} else if (strncmp(url, "tcp://", 6) == 0 || strncmp(url, "tls+tcp://", 10) == 0) {
		bool tls = listen_url_is_tls(url);

		if (auth_count(srv->auth) == 0) {
			log_msg(&srv->log, LOG_ERROR,
			    "refusing to listen on %s: network listeners need tokens "
			    "(--tokens-file with at least one token)",
			    url);
			return false;
		}
		if (!tls && !cfg->insecure) {
			log_msg(&srv->log, LOG_ERROR,
			    "refusing to listen on %s without TLS: use tls+tcp:// with "
			    "--tls-cert/--tls-key, or pass --insecure",
			    url);
			return false;
		}
		if (tls && srv->tls == NULL && !setup_tls(srv))
			return false;
	} else {
		log_msg(&srv->log, LOG_ERROR,
		    "unsupported listen URL %s (use ipc://, tcp:// or tls+tcp://)", url);
		return false;
	}
	return true;
}

bool
listen_one(struct server *srv, const char *url)
{
	nng_listener l;

	if (!listen_allowed(srv, url) || !listener_open(srv, srv->sock, url, &l))
		return false;
	if (!listen_guard_add(srv, srv->sock, url, l))
		return false;
	log_msg(&srv->log, LOG_INFO, "listening on %s", url);
	return true;
}

bool
listen_socket(struct server *srv, nng_socket sock, const char *url, const char *what)
{
	nng_listener l;

	if (!listen_allowed(srv, url) || !listener_open(srv, sock, url, &l))
		return false;
	if (!listen_guard_add(srv, sock, url, l))
		return false;
	log_msg(&srv->log, LOG_INFO, "listening on %s for %s", url, what != NULL ? what : "");
	return true;
}
