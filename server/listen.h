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

/* Whether url is a TLS URL (tls+tcp://). */
bool listen_url_is_tls(const char *url);

/* mkdir -p path (borrowed) with mode for every directory it creates; an existing directory
 * is fine. Returns 0, or -1 with errno set (ENAMETOOLONG for an empty path or one of
 * SD_PATH_BUF bytes or more). */
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

/* listen_one on another socket of the server (the notify socket), under the same rules
 * and watched by the guard too; what (borrowed, may be NULL) names the socket's purpose in
 * the log line. */
bool listen_socket(struct server *srv, nng_socket sock, const char *url, const char *what);

/*
 * The listener guard. nng 1.5.2 stops a listener's accept loop for good when a peer goes
 * away during the SP handshake in a way that fails the handshake write with EPIPE (mapped
 * to NNG_ECLOSED, which the listener takes for "I am closed"): one connect() and close()
 * from anyone takes a listener off the air (upstream nanomsg/nng#1518, fixed in 1.6.0;
 * tests/README.md). The transport keeps accepting and handshaking underneath, so a peer
 * sees a live server that never reads its requests.
 *
 * The guard is a thread that, every LISTEN_GUARD_PERIOD_MS, checks each listener with a
 * probe: it connects, completes the SP handshake over a plain socket (tls+tcp://: an nng
 * stream with TLS), and waits LISTEN_GUARD_WAIT_MS for the socket to report a new pipe from
 * that listener (any pipe proves the accept loop runs). A probe never closes a connection
 * the listener has not answered: that close is itself the #1518 trigger, so a probe waits
 * for a slow server as long as it takes. A listener whose probes were answered and got no
 * pipe twice in a row, and that counted a handshake error since a recent passing check
 * (nng's statistics), is closed and created again on the same URL with the same options:
 * ~4.5 s after it stopped. Requests that were in flight on its connections are not lost:
 * their clients' REQ sockets resend them on the new connection, and the server's dedup
 * table answers a resent mutation with its first reply.
 */
#define LISTEN_GUARD_PERIOD_MS 250
#define LISTEN_GUARD_WAIT_MS 2000

/* Register the pipe callback and start the guard thread (after every listen_one). Returns
 * false after logging why. */
bool listen_guard_start(struct server *srv);

/* Create and start one listener on url with its options (frame cap, ipc permissions and
 * group, TLS) on sock. Used at start and by the guard to replace a listener that stopped
 * accepting. Returns false after logging why. */
bool listener_open(struct server *srv, nng_socket sock, const char *url, nng_listener *lp);

/* Read a whole PEM file (at most 1 MiB) into a NUL-terminated malloc'd buffer, its length
 * in *lenp; NULL when it cannot. The caller wipes and frees it. */
char *listen_pem_read(const char *path, size_t *lenp);

/* Record a started listener of sock for the guard (guard.c). False after logging why. */
bool listen_guard_add(struct server *srv, nng_socket sock, const char *url, nng_listener l);

/* Create the (empty) listener table: before the service socket's pipe callback is set
 * and before any listen_one. False after logging why. */
bool listen_init(struct server *srv);

/* Count a new pipe for the guard (from the service socket's one pipe callback, in
 * server.c). Safe before the guard starts and from nng's threads. */
void listen_pipe_added(struct server *srv, nng_pipe pipe);

/* Stop and join the guard thread (NULL-safe on a guard never started). Call before the
 * workers stop; the listeners themselves are left to the process exit (see server.c). */
void listen_guard_stop(struct server *srv);

/* Free what listen_one recorded (after listen_guard_stop). */
void listen_free(struct server *srv);

#endif
