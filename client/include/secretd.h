/*
 * secretd.h: the C client library for secretd (libsecretd). The only installed header.
 *
 * A client handle talks to one secretd over nng (ipc://, tcp://, tls+tcp://). Each call
 * is one request/reply exchange with its own timeout, made through the service stubs that
 * protoc-c generates from proto/secretd/v1/secretd.proto.
 *
 * Thread safety: one secretd_client may be used from many threads at once; each call
 * uses its own nng context. Results are owned by the caller.
 *
 * Secret memory: every result that can carry a secret value (secretd_secret,
 * secretd_rows when unredacted, secretd_result) is wiped by its free function.
 *
 * Cache (opt-in, secretd_options.cache): a value served from the cache was the server's
 * current value at some moment no more than the staleness bound (1 s by default) before the
 * call, and a client always sees its own writes.
 *
 * Errors: every call returns a secretd_status whose values are the gRPC canonical codes,
 * and, when err is non-NULL, fills it with the server's reason and message (or the
 * library's own when the server was not reached). Messages never hold a secret value.
 */
#ifndef SECRETD_H
#define SECRETD_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: equal to the gRPC canonical codes, never renumbered. */
typedef enum secretd_status {
	SECRETD_OK = 0,
	SECRETD_CANCELLED = 1,
	SECRETD_UNKNOWN = 2,
	SECRETD_INVALID_ARGUMENT = 3,
	SECRETD_DEADLINE_EXCEEDED = 4,
	SECRETD_NOT_FOUND = 5,
	SECRETD_ALREADY_EXISTS = 6,
	SECRETD_PERMISSION_DENIED = 7,
	SECRETD_RESOURCE_EXHAUSTED = 8,
	SECRETD_FAILED_PRECONDITION = 9,
	SECRETD_ABORTED = 10,
	SECRETD_OUT_OF_RANGE = 11,
	SECRETD_UNIMPLEMENTED = 12,
	SECRETD_INTERNAL = 13,
	SECRETD_UNAVAILABLE = 14,
	SECRETD_DATA_LOSS = 15,
	SECRETD_UNAUTHENTICATED = 16,
} secretd_status;

/* The status's canonical name ("OK", "NOT_FOUND", ...); "UNKNOWN_STATUS" for a value
 * outside the enum. Never NULL. */
const char *secretd_status_str(secretd_status st);

/* Details of a failed call. */
typedef struct secretd_error {
	secretd_status status;
	char reason[32];   /* e.g. "AMBIGUOUS", "SYNTAX"; "" when none */
	char message[512]; /* human-readable; never a secret value */
} secretd_error;

/* Where a secret lives. */
typedef enum secretd_storage {
	SECRETD_STORAGE_ANY = 0,       /* in requests: either storage */
	SECRETD_STORAGE_MEMORY = 1,    /* temporary */
	SECRETD_STORAGE_SQLCIPHER = 2, /* persistent */
} secretd_storage;

/* "memory", "sqlcipher", or "any"; "unknown" for a value outside the enum. Never NULL. */
const char *secretd_storage_str(secretd_storage storage);

/* What create does when the name exists in the target storage. */
typedef enum secretd_conflict {
	SECRETD_CONFLICT_ERROR = 0,   /* SECRETD_ALREADY_EXISTS */
	SECRETD_CONFLICT_REPLACE = 1, /* CREATE OR REPLACE */
	SECRETD_CONFLICT_IGNORE = 2,  /* IF NOT EXISTS */
} secretd_conflict;

typedef struct secretd_client secretd_client;

/* Options for secretd_client_open; a NULL pointer or zeroed struct gives the defaults. */
typedef struct secretd_options {
	const char *token;           /* bearer token, or NULL (ipc peers with the server's uid) */
	const char *tls_ca_file;     /* PEM CA that signed the server's certificate (tls+tcp) */
	const char *tls_server_name; /* name to verify; default: the host of the URL */
	const char *tls_cert_file;   /* optional client certificate (PEM) */
	const char *tls_key_file;    /* its key (PEM) */

	/*
	 * The cache (opt-in, off when cache is false). Get and Resolve results are kept in
	 * this process's memory and served from it while fresh; the server's notify socket
	 * (secretd --notify-listen) says which entries a change made stale. The guarantee:
	 * a value served from the cache was the server's current value at some moment no
	 * more than cache_bound_ms before the call (1 s by default), and a write made through
	 * this client (create, drop, execute) is seen by every later call on it at once.
	 * Anything that could break that (a gap in the server's revisions, a new server
	 * epoch, a lost or new notify connection, no heartbeat within the bound) sends reads
	 * to the server until the cache has caught up. Nothing is written to disk; cached
	 * values are wiped when evicted and when the client closes.
	 */
	bool cache;
	int cache_bound_ms;       /* staleness bound; 0: 1000 */
	int cache_max_age_ms;     /* longest an entry is kept at all; 0: 60000 */
	size_t cache_max_entries; /* 0: 4096 */
	/* Stale if error: when the server cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED),
	 * serve an entry that was fresh no more than this long ago, with secret->stale set;
	 * never one whose invalidation was seen. 0: off. */
	int cache_max_stale_ms;
	/* The notify socket; NULL: next to an ipc:// url (PATH.sock -> PATH.notify.sock).
	 * Without one (e.g. a tcp url and NULL here) every call goes to the server. */
	const char *notify_url;
} secretd_options;

/*
 * Write the default server URL (ipc://$XDG_RUNTIME_DIR/secretd.sock when that variable
 * holds an absolute path, else ipc:///tmp/secretd-$UID/secretd.sock) into buf. Returns
 * SECRETD_OK, SECRETD_OUT_OF_RANGE when it does not fit (buf is then ""), or
 * SECRETD_INVALID_ARGUMENT when buf is NULL.
 */
secretd_status secretd_default_url(char *buf, size_t len);

/*
 * Open a client for the server at url (NULL: secretd_default_url). Does not wait for the
 * connection; the first call does, within its own timeout (for ipc:// it gives a missing
 * socket file up to 1 s to appear, then fails SECRETD_UNAVAILABLE). A call that times out
 * without ever connecting fails SECRETD_UNAVAILABLE, one that connected but got no answer
 * SECRETD_DEADLINE_EXCEEDED. tls+tcp:// needs tls_ca_file; TLS options with any other
 * scheme are an error. Caller closes *clientp with secretd_client_close.
 * SECRETD_INVALID_ARGUMENT for a bad URL or options, SECRETD_INTERNAL otherwise.
 */
secretd_status secretd_client_open(
    const char *url, const secretd_options *options, secretd_client **clientp, secretd_error *err);

/* Close a client. Calls still running on other threads fail with SECRETD_CANCELLED, and
 * close waits for them to return before it frees the handle. NULL-safe. */
void secretd_client_close(secretd_client *client);

/* A timeout of 0 means the library default (10 s); negative means wait forever. */
#define SECRETD_TIMEOUT_DEFAULT 0

/* One field of a secret; value is NUL-terminated at value[value_len]. */
typedef struct secretd_field {
	const char *key;
	const char *value;
	size_t value_len;
} secretd_field;

/* A secret with its values, as get and resolve return it. One allocation. */
typedef struct secretd_secret {
	const char *name;
	const char *type;
	const char *provider;
	secretd_storage storage;
	const char *const *scope;
	size_t n_scope;
	const secretd_field *fields; /* sorted by key */
	size_t n_fields;
	/* Served from the cache past its staleness bound because the server could not be
	 * reached (secretd_options.cache_max_stale_ms); false otherwise. */
	bool stale;
	/* The storage by name: "memory", "sqlcipher", or "etcd" from a cluster node. */
	const char *storage_name;
	/* Cluster mode: the node whose memory holds this temporary secret (it exists on no
	 * other node); "" for a persistent secret and on one machine. Never NULL. */
	const char *node;
} secretd_secret;

/* Wipe and free a secret. NULL-safe. */
void secretd_secret_free(secretd_secret *secret);

/* The value of field key in secret, or NULL. */
const secretd_field *secretd_secret_field(const secretd_secret *secret, const char *key);

/* What to create. fields/scope are borrowed for the call. */
typedef struct secretd_create_args {
	const char *name;            /* NULL or "": the type's default name */
	const char *type;            /* "openai", "ollama", "azure_llm" (any case) */
	const secretd_field *fields; /* value_len 0 with a non-NULL value means strlen */
	size_t n_fields;
	const char *const *scope; /* NULL/0: the type's default scope */
	size_t n_scope;
	bool persistent;
	secretd_conflict on_conflict;
	const char *provider; /* NULL or "config" */
} secretd_create_args;

typedef struct secretd_create_result {
	char name[256]; /* the stored name */
	secretd_storage storage;
	bool created; /* false when SECRETD_CONFLICT_IGNORE found it existing */
	char storage_name[16]; /* "memory", "sqlcipher" or "etcd" */
	char node[64];         /* as secretd_secret.node */
} secretd_create_result;

/* Create a secret. result may be NULL. */
secretd_status secretd_create(secretd_client *client, const secretd_create_args *args,
    int timeout_ms, secretd_create_result *result, secretd_error *err);

typedef struct secretd_drop_result {
	char name[256];
	secretd_storage storage;
	bool dropped; /* false when if_exists found nothing */
	char storage_name[16]; /* "memory", "sqlcipher" or "etcd"; "" when nothing was */
	char node[64];         /* as secretd_secret.node */
} secretd_drop_result;

/* Drop a secret from storage (SECRETD_STORAGE_ANY: whichever holds it; both is
 * SECRETD_FAILED_PRECONDITION with reason AMBIGUOUS). result may be NULL. */
secretd_status secretd_drop(secretd_client *client, const char *name, secretd_storage storage,
    bool if_exists, int timeout_ms, secretd_drop_result *result, secretd_error *err);

/* One row of duckdb_secrets(). */
typedef struct secretd_row {
	const char *name;
	const char *type;
	const char *provider;
	bool persistent;
	const char *storage; /* "memory" / "sqlcipher", or "etcd" from a cluster node */
	const char *const *scope;
	size_t n_scope;
	const char *secret_string;
	const char *node; /* as secretd_secret.node */
} secretd_row;

/* A set of listing rows. One allocation, wiped when freed. */
typedef struct secretd_rows {
	const secretd_row *rows;
	size_t n_rows;
} secretd_rows;

void secretd_rows_free(secretd_rows *rows);

typedef struct secretd_list_args {
	bool unredacted;         /* needs the admin role */
	const char *type;        /* NULL: every type */
	secretd_storage storage; /* SECRETD_STORAGE_ANY: both */
} secretd_list_args;

/* List secrets sorted by (name, storage). args may be NULL (redacted, all). Caller frees
 * *rowsp with secretd_rows_free. */
secretd_status secretd_list(secretd_client *client, const secretd_list_args *args, int timeout_ms,
    secretd_rows **rowsp, secretd_error *err);

/* Read one secret with its values. Caller frees *secretp with secretd_secret_free. */
secretd_status secretd_get(secretd_client *client, const char *name, secretd_storage storage,
    int timeout_ms, secretd_secret **secretp, secretd_error *err);

/* Pick the secret of type whose scope is the longest prefix of path. SECRETD_OK with
 * *secretp NULL when none matches. Caller frees *secretp with secretd_secret_free. */
secretd_status secretd_resolve(secretd_client *client, const char *path, const char *type,
    int timeout_ms, secretd_secret **secretp, secretd_error *err);

/* What a statement produced. */
typedef enum secretd_result_kind {
	SECRETD_RESULT_CREATED = 1,
	SECRETD_RESULT_DROPPED = 2,
	SECRETD_RESULT_ROWS = 3,
	SECRETD_RESULT_RESOLVED = 4,
	SECRETD_RESULT_SECRET = 5,
} secretd_result_kind;

/* One row of which_secret(). */
typedef struct secretd_resolved_row {
	const char *name;
	const char *persistent; /* "TEMPORARY" / "PERSISTENT" */
	const char *storage;
	const char *node; /* as secretd_secret.node */
} secretd_resolved_row;

typedef struct secretd_result {
	secretd_result_kind kind;
	secretd_create_result created;        /* SECRETD_RESULT_CREATED */
	secretd_drop_result dropped;          /* SECRETD_RESULT_DROPPED */
	secretd_rows *rows;                   /* SECRETD_RESULT_ROWS */
	const secretd_resolved_row *resolved; /* SECRETD_RESULT_RESOLVED: 0 or 1 rows */
	size_t n_resolved;
	secretd_secret *secret; /* SECRETD_RESULT_SECRET */
} secretd_result;

/* Wipe and free a result. NULL-safe. result->rows, ->resolved and ->secret point into the
 * result's own allocation: never free them on their own. */
void secretd_result_free(secretd_result *result);

/* Execute one statement of the SQL dialect. Caller frees *resultp with
 * secretd_result_free. */
secretd_status secretd_execute(secretd_client *client, const char *statement, int timeout_ms,
    secretd_result **resultp, secretd_error *err);

/*
 * Rotate the server's database key (admin only). The server makes the new random key and
 * writes its key file atomically; the key never crosses the wire. key_file (may be NULL)
 * receives the key file's path on the server.
 */
secretd_status secretd_rekey(secretd_client *client, int timeout_ms, char *key_file,
    size_t key_file_len, secretd_error *err);

/* What a node says of its readiness (secretd_health). */
typedef struct secretd_health_info {
	bool serving;                  /* the node answers */
	bool writable;                 /* a persistent write can commit now (etcd has quorum) */
	char persistent_store[16];     /* "sqlcipher" on one machine, "etcd" in a cluster */
	unsigned long long store_rev;  /* revision the node's mirror of etcd has applied */
	unsigned long long latest_rev; /* latest revision etcd reported */
	unsigned long long lag_ms;     /* how long the mirror has been behind (0: current) */
	unsigned long long persistent_count;
	unsigned long long temporary_count; /* temporary secrets live on this node only */
	char detail[256];                   /* why not writable or behind; "" when all is well */
} secretd_health_info;

/* Ask the node the client reaches for its readiness (reader role). */
secretd_status secretd_health(
    secretd_client *client, int timeout_ms, secretd_health_info *info, secretd_error *err);

#ifdef __cplusplus
}
#endif

#endif
