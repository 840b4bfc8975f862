/*
 * listen.h: the listening side of the secretd process: private directories, TLS
 * configuration and one listener per URL on the server's socket.
 *
 * What it does not do: no socket, workers or stores (server.c); it only attaches listeners
 * to srv->sock, which the caller has opened.
 *
 * Thread safety: called from the main thread during start-up, before the workers start.
 */
#ifndef SECRETD_SERVER_LISTEN_H
#define SECRETD_SERVER_LISTEN_H

#include <nng/nng.h>
#include <stdbool.h>
#include <sys/types.h>

struct server;

/* mkdir -p path (borrowed) with mode for every directory it creates; an existing directory
 * is fine. Returns 0, or -1 with errno set (ENAMETOOLONG for an empty path or one of 4096
 * bytes or more). */
int listen_mkdir_p(const char *path, mode_t mode);

/* Whether dir (borrowed) is a directory owned by srv->uid with none of the mode bits in
 * forbidden (022: writable by nobody else; 077: usable by nobody else). When not, logs why on
 * srv->log, naming the directory as what (borrowed, e.g. "data directory"), and returns
 * false. */
bool listen_dir_is_private(struct server *srv, const char *dir, const char *what, mode_t forbidden);

/* Listen on url (borrowed: ipc://, tcp:// or tls+tcp://) on srv->sock. For ipc, creates the
 * socket's directory private and sets the socket's mode (and group); for tcp, refuses
 * without tokens, and without TLS unless insecure; for tls+tcp, sets up srv->tls on first
 * use (the caller frees it with nng_tls_config_free). Returns false after logging why. */
bool listen_one(struct server *srv, const char *url);

/* listen_one on another socket of the server (the notify socket), under the same rules;
 * what (borrowed, may be NULL) names the socket's purpose in the log line. */
bool listen_socket(struct server *srv, nng_socket sock, const char *url, const char *what);

#endif
