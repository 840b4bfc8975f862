/*
 * service.h: the transport-free heart of secretd. A service owns the two stores, the
 * limits and the token table, and turns one request frame (bytes) into one reply frame
 * (bytes) for a given caller. server.c feeds it frames from nng; the tests and fuzzers feed
 * it frames directly. service_handle is the one front door for binary and text frames
 * alike: the frame limit, the choice of codec (codec.h), authentication (auth.h), the one
 * dispatch (dispatch.h) and the reply through the codec that read the frame.
 *
 * What it does not do: no sockets, no threads, no signals, no logging of values.
 *
 * Thread safety: service_handle may run on many threads at once, each with its own arena.
 * The stores serialise their own writes.
 */
#ifndef SECRETD_SERVER_SERVICE_H
#define SECRETD_SERVER_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "auth.h"
#include "dispatch.h"
#include "status.h"

struct store;
struct store_health;
struct dedup;

/* Limits of SPEC section 7; every one configurable. */
struct limits {
	size_t max_frame;   /* bytes of one request frame (64 KiB) */
	size_t max_name;    /* bytes of a secret name (255) */
	size_t max_value;   /* bytes of one field value (16 KiB) */
	size_t max_fields;  /* fields per secret (16) */
	size_t max_scope;   /* scope entries per secret (16) */
	size_t max_secrets; /* secrets per storage (1,000,000) */
};

/* The defaults of SPEC section 7. */
void limits_default(struct limits *l);

struct service {
	struct store *temporary;  /* memory backend; borrowed */
	struct store *persistent; /* sqlcipher backend; borrowed */
	struct auth *auth;        /* token table; borrowed, may be NULL (no tokens) */
	struct dedup *dedup;      /* recent mutating replies; borrowed, may be NULL */
	struct notify *notify;    /* epoch and rev for replies (notify.h); borrowed, may be NULL */
	struct limits limits;
	/* Called by a handler just before it changes state, to write the audit trail's
	 * "attempt" line; false refuses the call (fail closed). NULL: no audit trail. */
	bool (*audit_attempt)(void *arg, struct caller *caller, const char *method,
	    const char *name, const char *storage);
	void *audit_arg;
	/* Rotates the database key (the Rekey rpc); fills out on failure. NULL: the rpc
	 * answers UNIMPLEMENTED. */
	enum status (*rekey)(void *arg, const char **key_filep, struct outcome *out);
	void *rekey_arg;
	/* Longest a read-your-writes wait (Request.min_store_rev) may take, in ms. */
	int read_wait_ms;
	/* The handler of each method (service_init). */
	struct dispatch dispatch;
	/* Cluster mode: this node's name, given to every temporary secret in replies (they
	 * live on this node only). NULL on one machine: replies carry no node. */
	const char *node_name;
};

/* Readiness of the node, for secretctl health and an HTTP /readyz: fills h from the
 * persistent store (see store_health); returns true when serving and writable. lag_ms and
 * revision in h say how far a cluster node's mirror is behind etcd. */
bool service_ready(struct service *svc, struct store_health *h);

/* What one call did, for the log and the audit trail (no values). Strings point into the
 * call's arena or are static. */
struct call_info {
	const char *method;  /* "Create", ..., "Execute" (a text frame too), "" when unknown */
	const char *name;    /* the secret name involved, or "" */
	const char *storage; /* "memory", "sqlcipher" or "" */
	bool mutating;       /* the call changed (or tried to change) state */
	uint64_t request_id; /* the envelope's (binary frames); 0 when none */
	bool text;           /* a text frame */
	struct outcome outcome;
	/* Set by service_handle_async for the handlers (handlers.h: request_put); private. */
	void (*done)(void *arg);
	void *done_arg;
	bool *pendingp;
	struct service_park *park;
};

/* Allocates the reply frame: returns a buffer of len bytes that the service fills, or
 * NULL when out of memory. arg is the caller's. */
typedef uint8_t *(*reply_alloc_fn)(void *arg, size_t len);

/*
 * Handle one request frame from caller and produce exactly one reply frame through alloc.
 * frame is borrowed. Every allocation for the request comes from arena a (the caller
 * resets it afterwards, which wipes it). info (may be NULL) is filled for logging.
 * Returns ST_OK when a reply frame was produced (whatever status it carries), or
 * ST_RESOURCE_EXHAUSTED when alloc failed (no reply).
 */
enum status service_handle(struct service *svc, struct caller *caller, const uint8_t *frame,
    size_t len, struct arena *a, reply_alloc_fn alloc, void *alloc_arg, struct call_info *info);

/*
 * As service_handle, but a call whose store write completes on the store's own thread
 * (a persistent Create or Drop on sqlcipher, binary or text) does not wait for it: it
 * returns ST_OK with *pendingp true and no reply yet. Later, once the write is durable
 * (or failed), the reply is made through alloc on the store's thread and done(done_arg)
 * is called; caller, a, alloc_arg and info must stay valid until then and the frame need
 * not. With *pendingp false the call is over as with service_handle, and done is not
 * called. So a write waiting for its group commit holds no thread of the caller's.
 */
enum status service_handle_async(struct service *svc, struct caller *caller, const uint8_t *frame,
    size_t len, struct arena *a, reply_alloc_fn alloc, void *alloc_arg, struct call_info *info,
    void (*done)(void *arg), void *done_arg, bool *pendingp);

/*
 * Build svc->dispatch: the handler of every method, checked against the generated service
 * descriptor (dispatch.h). Call once at start, before any service_handle. Returns ST_OK,
 * or ST_INTERNAL with a message in err[errlen] that names the method without a handler
 * (or the handler without a method): the server must not start.
 */
enum status service_init(struct service *svc, char *err, size_t errlen);

#endif
