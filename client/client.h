/*
 * client.h: libsecretd's internal interface between its parts: the handle (client.c),
 * the nng transport behind the protoc-c service stubs (transport.c), the public calls
 * (calls.c), and the one-allocation results with their wiping free functions (results.c). Never
 * installed; nothing here is exported (libsecretd.map lists the public symbols).
 *
 * Not here: argument parsing or printing (secretctl does that), and any knowledge of a
 * particular rpc in the transport: it works from the service descriptor alone.
 *
 * Thread safety: a struct client_call belongs to one call on one thread; the transport
 * makes a shared secretd_client safe for many threads at once.
 */
#ifndef SECRETD_CLIENT_CLIENT_H
#define SECRETD_CLIENT_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <protobuf-c/protobuf-c.h>

#include "secretd.h"
#include "secretd.pb-c.h"

/* Largest request frame sent: secretd's transport cap at its default frame limit (the
 * server answers frames between its --max-frame and this with RESOURCE_EXHAUSTED). */
#define CLIENT_SEND_MAX (1024 * 1024)

/* Longest an evicted idle connection waits for nng_close (see client_conn_evict). */
#define CLIENT_CLOSE_WAIT_MS 2000

/* Idle connections kept for reuse before the oldest quiet one is closed. */
#define CLIENT_POOL_IDLE_MAX 16

/* An idle connection is closed only if no call on it ended without its reply for this
 * long: a late reply arriving while the socket closes is what hangs nng 1.5.2. */
#define CLIENT_QUIET_MS 30000

/* Most addresses in one comma-separated list given to secretd_client_open. */
#define CLIENT_MAX_ADDRS 16

/* Reconnect backoff of a pooled connection's dialer. */
#define CLIENT_RECONNECT_MIN_MS 10
#define CLIENT_RECONNECT_MAX_MS 100

/* Library default for a timeout of 0 (SECRETD_TIMEOUT_DEFAULT). */
#define CLIENT_TIMEOUT_DEFAULT_MS 10000

/* Listings can be large; a reply past this is a broken or hostile server's. */
#define CLIENT_RECV_MAX ((size_t)16 * 1024 * 1024)

/* A conn with no connection is given a new dialer at most this often (client_conn_redial). */
#define CLIENT_REDIAL_MS 1000

/*
 * One nng REQ socket dialling one address, shared by every handle opened on the same
 * address with the same TLS options, and kept when the last of them closes (conn.c's
 * pool). A handle given a list of addresses holds one conn per address.
 *
 * Why one socket per address: nng's REQ socket spreads requests over all its pipes, and a
 * cluster's nodes each keep their own temporary secrets, so a handle must be able to
 * choose the node a request goes to (transport.c keeps to one node while it answers).
 *
 * Why never closed: nng 1.5.2 hangs for ever in nng_close when a message arrives on a pipe
 * while the socket closes (the reaper thread is then wedged: every later nng_close in the
 * process hangs, and failed ipc dials leave fds that spin nng's poller on EPOLLHUP; see
 * tests/README.md). A client socket gets messages only as replies, and a reply can
 * arrive late for a call that timed out or was cancelled, so no moment is known to be
 * safe to close a socket that carried calls. So libsecretd does not close it: the next
 * handle on the address reuses it, and a process that opens and closes handles all day
 * keeps one socket per server. The token travels in each request's envelope, so handles
 * with different tokens share a connection.
 */
struct client_conn {
	char *key;            /* address and TLS options, '\n'-separated: what makes two conns one */
	char *url;            /* the one address dialled (the start of key) */
	uint64_t last_redial; /* nng_clock() of the conn's creation or last redial (under mu) */
	nng_socket sock;
	nng_dialer dialer;   /* replaced by client_conn_redial (under mu) */
	nng_tls_config *tls; /* a tls+tcp:// address's configuration, kept for a redial */
	atomic_int pipes;    /* connected pipes (0 or 1): "no server" vs "slow server" */
	pthread_mutex_t mu;  /* guards the context pool, the dialer and the times */
	nng_ctx *ctx_pool;   /* idle contexts, reused (see client_ctx_put) */
	size_t n_ctx_pool;
	size_t cap_ctx_pool;
	uint64_t last_abandoned; /* nng_clock() when a call last ended without its reply */
	unsigned refs;           /* handles using it (under the pool's lock) */
	uint64_t idle_since;     /* nng_clock() when refs last fell to 0 */
	struct client_conn *next;
};

/* A conn for one address and options from the pool, or a new one (dialling) added to it;
 * counted as used until client_conn_release. */
secretd_status client_conn_get(const char *url, const secretd_options *options,
    struct client_conn **connp, secretd_error *err);

/* A handle is done with conn: it stays pooled for the next handle (idle ones are trimmed). */
void client_conn_release(struct client_conn *conn);

/* The handle (client.c opens and closes it; transport.c makes the calls). */
struct secretd_client {
	ProtobufCService service; /* first: client_invoke casts the service back */
	/* One pooled conn per address of the list, in its order; released (not closed) by
	 * secretd_client_close. */
	struct client_conn *conns[CLIENT_MAX_ADDRS];
	size_t n_conns;
	/* The conn calls go to while it answers (transport.c): a client stays on one node of
	 * a cluster, where its temporary secrets are, and moves only when that node is gone. */
	atomic_size_t preferred;
	char *url;                /* as given: one address or a comma-separated list */
	/* Highest Reply.store_rev seen, sent as Request.min_store_rev (read your writes
	 * across the nodes of a cluster). */
	_Atomic uint64_t store_rev;
	struct client_cache *cache; /* NULL unless secretd_options.cache (cache.h) */
	const char *ipc_path; /* inside url for ipc:// URLs, else NULL */
	char *token;          /* wiped when the client closes */
	pthread_mutex_t mu;   /* guards active, closing and calls */
	pthread_cond_t idle;
	unsigned active;
	bool closing;
	nng_aio **calls; /* aios of the exchanges in flight, cancelled by close */
	size_t n_calls;
	size_t cap_calls;
};

/*
 * THE RULE FOR EVERY nng SOCKET IN A PROCESS THAT LINKS libsecretd (nng 1.5.2; see
 * tests/README.md, "nng 1.5.2"): never nng_close a socket while a message can arrive on
 * one of its pipes. A close that races an arriving message wedges nng's one reaper
 * thread, after which every nng_close in the process hangs and failed dials spin the
 * poller. So:
 *   - a socket that receives unsolicited or late messages (REQ after a timeout, SUB, a
 *     REP server under load) is kept for the life of the process, or closed only after
 *     whatever sends to it has stopped (a REQ socket's server answered everything; a SUB
 *     socket's publisher is gone);
 *   - a socket that never connected, or that nothing sends to (PUB), may be closed;
 *   - every close that is not known safe goes through client_socket_close_bounded, so
 *     that a hang costs a thread and a socket, never the caller.
 * Remove the socket's pipe callbacks first when their argument is about to be freed.
 */

/* nng_close(sock) on a thread of its own, waiting at most CLIENT_CLOSE_WAIT_MS; past the
 * wait the close is left to that thread (the socket leaks; upstream nanomsg/nng#1543). */
void client_socket_close_bounded(nng_socket sock);

/* Count a call in, unless the client is closing (false then). A public call holds the
 * count across its exchange and everything it does with the handle afterwards (the cache's
 * bookkeeping), since secretd_client_close frees the handle once the count is 0. */
bool client_enter(secretd_client *client);

/* Count the call out; the last one out wakes a waiting secretd_client_close. After this
 * the call must not touch client: close may free it. */
void client_leave(secretd_client *client);

/* Register aio (an exchange's, no callback) so that secretd_client_close can cancel it;
 * false when the client is closing or memory ran out. */
bool client_call_track(secretd_client *client, nng_aio *aio);

/* Unregister aio before it is freed. */
void client_call_untrack(secretd_client *client, nng_aio *aio);

/*
 * Replace conn's dialer when conn has no connection (at most once per CLIENT_REDIAL_MS,
 * and not in a conn's first; called while a call waits with no connection). nng 1.5.2's
 * dialer stops retrying for good when a handshake fails with NNG_ECLOSED (a server killed
 * during the handshake: the same flaw as nanomsg/nng#1518 on the listening side), which a
 * socket kept for the life of the process must survive. A dialer with no pipe has nothing
 * that a reply could arrive on, so closing it is safe.
 */
void client_conn_redial(struct client_conn *conn);

/* Note that a call on conn ended without its reply (timeout, cancel): a late reply may
 * still arrive, so the connection must not be closed for a while. */
void client_conn_abandoned(struct client_conn *conn);

/* A context for one call: an idle one from the pool, or a new one. 0 or an NNG_E* code. */
int client_ctx_take(struct client_conn *conn, nng_ctx *ctxp);

/*
 * Give a context back for the next call instead of closing it: in nng 1.5.2, closing a REQ
 * context whose request timed out lets a late reply touch the freed context (seen with
 * valgrind), while a new request on the same context retires the old one cleanly. The
 * contexts live as long as the connection.
 */
void client_ctx_put(struct client_conn *conn, nng_ctx ctx);

/*
 * The ProtobufCService invoke of every client (transport.c): one synchronous exchange.
 * closure_data must be a struct client_call; the closure gets the unpacked output
 * message on success and NULL on failure (call->err says why), and the message is wiped
 * and freed when the closure returns. The method index is checked here.
 */
void client_invoke(ProtobufCService *service, unsigned method_index, const ProtobufCMessage *input,
    ProtobufCClosure closure, void *closure_data);

/* Translate an nng error into err, naming the URL and what failed; returns the status. */
secretd_status client_nng_fail(secretd_error *err, int rv, const char *url, const char *what);

/*
 * The state of one call, passed as closure_data to the generated stubs. The transport
 * fills err; the call's closure turns the unpacked reply into a result and may replace
 * err with its own failure. Lives on the caller's stack.
 */
struct client_call {
	int timeout_ms;    /* as given by the caller: 0 default, < 0 forever */
	secretd_error err; /* the call's outcome */
	void *target;      /* borrowed: where the closure stores what it built */
	uint64_t epoch;    /* the reply's epoch and rev (0 when no reply came) */
	uint64_t rev;
};

/* Prepare call for one exchange with the given timeout; target is borrowed. */
void client_call_init(struct client_call *call, int timeout_ms, void *target);

/* Record a status and a printf-style message in err (NULL-safe); returns st. The message
 * must never contain a secret value. */
secretd_status client_fail(secretd_error *err, secretd_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The ProtobufCService of client, to pass to the secretd__v1__secrets__* stubs. */
ProtobufCService *client_service(secretd_client *client);

/* Map the wire Storage enum to secretd_storage and back. Values outside either enum map
 * to ANY / STORAGE_UNSPECIFIED. */
secretd_storage client_storage_from_pb(Secretd__V1__Storage storage);
Secretd__V1__Storage client_storage_to_pb(secretd_storage storage);

/*
 * Build the one-allocation public results from unpacked replies (borrowed; nothing of
 * them is kept). Each returns SECRETD_OK and hands out the result in *outp, which the
 * caller frees with the matching secretd_*_free, or SECRETD_RESOURCE_EXHAUSTED when
 * memory runs out, or SECRETD_INTERNAL for a reply that breaks the wire contract.
 */
secretd_status client_secret_build(const Secretd__V1__Secret *in, secretd_secret **outp);
/* Copy a secret built by client_secret_build (or copied by this) into one new allocation.
 * SECRETD_OK with *outp (caller frees with secretd_secret_free) or
 * SECRETD_RESOURCE_EXHAUSTED. */
secretd_status client_secret_dup(const secretd_secret *in, secretd_secret **outp);
secretd_status client_rows_build(
    size_t n_rows, Secretd__V1__SecretRow *const *rows, secretd_rows **outp);
secretd_status client_result_build(const Secretd__V1__StatementReply *in, secretd_result **outp);

/* Whether a name from a reply fits a result's name[SECRETD_NAME_MAX + 1] (NULL: ""). A
 * longer one breaks the wire contract (the server's --max-name is capped at
 * SECRETD_NAME_MAX): the call fails SECRETD_INTERNAL rather than cut it. */
bool client_name_fits(const char *name);

/* Copy a NUL-terminated string into a fixed buffer of size dst_size, truncating; never
 * for a name (client_name_fits first). */
void client_copy_str(char *dst, size_t dst_size, const char *src);

/* ---- route.c: where a call goes and how it waits ---- */

/* An exchange's aio completes through this, so that the call can wait in slices and look
 * at its connection in between (nng_aio_wait cannot time out). */
struct client_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	bool done;
};

/* The aio callback of an exchange (arg: its struct client_waiter). */
void client_waiter_cb(void *arg);
/* Set up and tear down a waiter; init is false when a mutex or condition cannot be made. */
bool client_waiter_init(struct client_waiter *w);
void client_waiter_fini(struct client_waiter *w);
/* Start the next operation on the waiter's aio (before nng_ctx_send/recv). */
void client_waiter_arm(struct client_waiter *w);
/* Wait up to ms for the aio to complete; true once it has. */
bool client_waiter_wait(struct client_waiter *w, nng_duration ms);

/* Milliseconds left of timeout_ms since start, or NNG_DURATION_INFINITE for a negative
 * timeout; 0 when it has passed. */
nng_duration client_remaining(int timeout_ms, nng_time start);

/* For a single ipc:// address not yet connected: give the socket file up to 1 s to appear,
 * then SECRETD_UNAVAILABLE (a server that is not running), instead of the whole timeout. */
secretd_status client_wait_ipc(secretd_client *client, int timeout_ms, secretd_error *err);

/*
 * The address (index into client->conns) for the next attempt of a call: with one address,
 * that one (its socket holds the request until it connects); with a list, the preferred
 * one while it is connected, else another that is, preferring those not in tried (a bit
 * per address), waiting within the call's timeout for one to connect and redialling those
 * nng gave up on. SECRETD_UNAVAILABLE when none connected in time.
 */
secretd_status client_pick(secretd_client *client, int timeout_ms, nng_time start,
    uint32_t tried, size_t *idxp, secretd_error *err);

/*
 * Wait for the aio of an attempt on conn (address idx). True when it completed; false
 * when conn lost its connection while another address of the list is connected: the
 * attempt is then withdrawn (cancelled and waited for) so the call can move on. A
 * connection missing for CLIENT_REDIAL_MS gets a new dialer meanwhile.
 */
bool client_watch(secretd_client *client, struct client_conn *conn, size_t idx,
    uint32_t tried, nng_aio *aio, struct client_waiter *w);

#endif
