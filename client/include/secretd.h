/*
 * secretd.h: the C client library for secretd (libsecretd). The installed headers are this
 * one and secretd_version.h, which it includes.
 *
 * A client handle talks to one secretd (or to any of a comma-separated list, failing over)
 * over nng: ipc://, tcp://, tls+tcp://. Each call is one request/reply exchange with its own
 * timeout, made through the service stubs that protoc-c generates from
 * proto/secretd/v1/secretd.proto; any language with protobuf and nng can speak the same
 * protocol without this library.
 *
 * Thread safety: one secretd_client may be used from many threads at once; each call
 * uses its own nng context. A result belongs to the caller, who frees it with the matching
 * free function, on any thread. Nothing here keeps global state a caller must set up or
 * tear down, and nothing prints, exits or installs signal handlers.
 *
 * Ownership: every pointer argument is borrowed for the length of the call unless its
 * comment says otherwise; nothing the caller passes is kept after the call returns.
 *
 * Secret memory: every result that can carry a secret value (secretd_secret,
 * secretd_rows when unredacted, secretd_result) is one allocation, wiped by its free
 * function before it is freed.
 *
 * Cache (opt-in, secretd_options.cache): a value served from the cache was the server's
 * current value at some moment no more than the staleness bound (1 s by default) before the
 * call, and a client always sees its own writes.
 *
 * Errors: every call returns a secretd_status whose values are the gRPC canonical codes,
 * and, when err is non-NULL, fills it with the outcome: the status, the server's reason and
 * message, or the library's own when the server was not reached (on success: status
 * SECRETD_OK, reason "", message "OK"). Messages never hold a secret value. Each call below
 * lists the statuses it returns and when; besides those, every call that goes to the server
 * can return the "statuses of every call" listed with SECRETD_TIMEOUT_DEFAULT below.
 */
#ifndef SECRETD_H
#define SECRETD_H

#include <stdbool.h>
#include <stddef.h>

#include "secretd_version.h" /* SECRETD_VERSION_MAJOR/MINOR/PATCH/STRING/NUMBER */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The longest secret name, in bytes, that libsecretd carries: the name of a
 * secretd_create_result or secretd_drop_result is a char[SECRETD_NAME_MAX + 1]. secretd
 * refuses a --max-name above it, so every name a server stores fits; a reply with a longer
 * name breaks the wire contract and fails the call with SECRETD_INTERNAL (a name is never
 * cut). Names given to the calls are checked by the server against its --max-name.
 */
#define SECRETD_NAME_MAX 255

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

/*
 * The outcome of a call, filled by every call given a non-NULL err (on success too). The
 * reason is a short machine-readable word from the server ("AMBIGUOUS", "SYNTAX", ...) to
 * match on; "" when the library itself failed the call or the server gave none. The
 * message is for people: it may change between versions, and is cut to fit.
 */
typedef struct secretd_error {
	secretd_status status;
	char reason[32];   /* e.g. "AMBIGUOUS", "SYNTAX"; "" when none */
	char message[512]; /* human-readable, NUL-terminated; never a secret value */
} secretd_error;

/* Where a secret lives. */
typedef enum secretd_storage {
	SECRETD_STORAGE_ANY = 0,       /* in requests: either storage */
	SECRETD_STORAGE_MEMORY = 1,    /* temporary */
	SECRETD_STORAGE_SQLCIPHER = 2, /* persistent */
} secretd_storage;

/* "memory", "sqlcipher", or "any"; "unknown" for a value outside the enum. Never NULL. */
const char *secretd_storage_str(secretd_storage storage);

/* What create does when the name exists in the target storage (the other storage is
 * never looked at). */
typedef enum secretd_conflict {
	SECRETD_CONFLICT_ERROR = 0,   /* SECRETD_ALREADY_EXISTS */
	SECRETD_CONFLICT_REPLACE = 1, /* CREATE OR REPLACE */
	SECRETD_CONFLICT_IGNORE = 2,  /* IF NOT EXISTS */
} secretd_conflict;

/* A client handle: opaque, thread-safe, from secretd_client_open to
 * secretd_client_close. */
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
 * Open a client for the server at url: one address, or a comma-separated list of up to 16
 * (the nodes of a cluster); NULL: secretd_default_url. options may be NULL. Does not wait
 * for the connection; the first call does, within its own timeout. With a list, calls go to
 * one node: the first address while its node answers (a new handle waits up to 250 ms for
 * it to connect), so a job sees the temporary secrets it made there; a call whose node goes
 * away before answering is sent again, same request id, to the next connected address,
 * which the handle then keeps. tls+tcp:// needs tls_ca_file; TLS options with any other
 * scheme are an error. Handles on the same address and TLS options share one connection
 * (tokens travel per request). On success the caller
 * closes *clientp with secretd_client_close; on failure *clientp is NULL (when clientp
 * is not).
 *
 *   SECRETD_OK
 *   SECRETD_INVALID_ARGUMENT   clientp NULL; a URL that is empty, malformed, of another
 *                              scheme, or a list of more than 16; TLS options that do not
 *                              fit the scheme, a CA, certificate or key file that cannot be
 *                              read or loaded; a negative cache setting; a default URL
 *                              that does not fit ($XDG_RUNTIME_DIR too long)
 *   SECRETD_RESOURCE_EXHAUSTED memory ran out
 *   SECRETD_INTERNAL           nng or the OS failed otherwise (socket, mutex, thread)
 */
secretd_status secretd_client_open(
    const char *url, const secretd_options *options, secretd_client **clientp, secretd_error *err);

/* Close a client. Calls still running on other threads fail with SECRETD_CANCELLED, and
 * close waits for them to return before it frees the handle; a call begun after close
 * began fails SECRETD_CANCELLED too. The handle's token is wiped; the shared connection
 * is kept for the next handle on the URL (nng 1.5.2 can hang closing a socket that may
 * still receive a reply). Results already returned stay valid. NULL-safe. */
void secretd_client_close(secretd_client *client);

/*
 * Timeouts: every call's timeout_ms bounds the whole call, connecting included. 0
 * (SECRETD_TIMEOUT_DEFAULT) means the library default, 10 s; negative means wait forever.
 * The server is told the deadline too.
 *
 * Statuses of every call that goes to the server, besides those each call lists:
 *
 *   SECRETD_INVALID_ARGUMENT   the library refused an argument (a NULL client or
 *                              out-pointer, an enum value outside its enum) and sent
 *                              nothing
 *   SECRETD_CANCELLED          secretd_client_close ran on another thread
 *   SECRETD_UNAVAILABLE        no connection: an ipc:// socket file that did not appear
 *                              within 1 s (or the timeout, if shorter); no connection
 *                              within the timeout (refused, unreachable, a failed TLS
 *                              handshake, a peer that never completes nng's handshake);
 *                              never DEADLINE_EXCEEDED when no connection was ever made.
 *                              From the server: it cannot write now (reasons READ_ONLY,
 *                              IO, NO_QUORUM, AUDIT), or in a cluster its copy is behind
 *                              what this client has already seen (STALE)
 *   SECRETD_DEADLINE_EXCEEDED  connected, but no answer within the timeout; the request
 *                              may still be carried out
 *   SECRETD_UNAUTHENTICATED    no valid token where one is needed (tcp://, or an ipc://
 *                              peer with another uid), or a token the server does not
 *                              know
 *   SECRETD_RESOURCE_EXHAUSTED the request is larger than the 1 MiB libsecretd sends or
 *                              than the server's --max-frame (FRAME_TOO_LARGE); memory ran
 *                              out, here or in the server
 *   SECRETD_UNIMPLEMENTED      the server does not know the call (an older secretd)
 *   SECRETD_INTERNAL           a reply that breaks the wire contract (not a secretd frame,
 *                              undecodable, answering another request, a name longer than
 *                              SECRETD_NAME_MAX), or nng or the OS failed otherwise
 *   SECRETD_UNKNOWN            the server answered with a status outside this enum
 *   SECRETD_DATA_LOSS, SECRETD_FAILED_PRECONDITION  (calls that read or write secrets)
 *                              the server's persistent store is corrupt (CORRUPT) or no
 *                              longer opens with its key (BAD_KEY)
 *
 * A call never returns a status it does not list here or below.
 */
#define SECRETD_TIMEOUT_DEFAULT 0

/* One field of a secret. In a result, value is NUL-terminated at value[value_len] (a
 * value may hold NUL bytes: use value_len); key is lowercase. */
typedef struct secretd_field {
	const char *key;
	const char *value;
	size_t value_len;
} secretd_field;

/* A secret with its values, as get and resolve return it: one allocation that holds
 * every string and array it points to, freed with secretd_secret_free. */
typedef struct secretd_secret {
	const char *name;         /* as stored: ASCII letters lowercased */
	const char *type;         /* "openai", "ollama", "azure_llm" */
	const char *provider;     /* "config" */
	secretd_storage storage;  /* MEMORY (temporary) or SQLCIPHER (persistent) */
	const char *const *scope; /* prefixes of paths this secret serves */
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

/* The field named key in secret (ASCII case-insensitive), borrowed from secret; NULL when
 * it has none, or when secret or key is NULL. */
const secretd_field *secretd_secret_field(const secretd_secret *secret, const char *key);

/* What to create. Every pointer is borrowed for the call. */
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

/* What create did. */
typedef struct secretd_create_result {
	char name[SECRETD_NAME_MAX + 1]; /* the stored name, never cut */
	secretd_storage storage;         /* MEMORY or SQLCIPHER (persistent, also on etcd) */
	bool created;          /* false when SECRETD_CONFLICT_IGNORE found it existing */
	char storage_name[16]; /* "memory", "sqlcipher" or "etcd" */
	char node[64];         /* as secretd_secret.node */
} secretd_create_result;

/*
 * Create a secret (admin role). Validation (type, fields, name, provider) comes before the
 * conflict check; the call changes everything or nothing, and a persistent create is
 * answered only once it is durable. result may be NULL; it is zeroed first, and filled on
 * SECRETD_OK.
 *
 *   SECRETD_OK                 created, replaced, or (SECRETD_CONFLICT_IGNORE) left as it
 *                              was with result->created false
 *   SECRETD_INVALID_ARGUMENT   args or args->type NULL; counts without arrays, a NULL key,
 *                              value or scope entry, on_conflict outside its enum; or the
 *                              server's validation: unknown type or provider, a field the
 *                              type does not declare or given twice, a required field
 *                              missing or empty, a name with a control character or over
 *                              --max-name, a value that is not UTF-8 or over --max-value,
 *                              more than --max-fields fields or too many scope entries
 *   SECRETD_ALREADY_EXISTS     on_conflict SECRETD_CONFLICT_ERROR and the name is taken in
 *                              the target storage
 *   SECRETD_PERMISSION_DENIED  the caller's token has the reader role only
 *   SECRETD_RESOURCE_EXHAUSTED the storage holds --max-secrets (STORE_FULL), or the disk
 *                              is full (DISK_FULL); nothing changed
 *   SECRETD_FAILED_PRECONDITION the database key does not open the database (BAD_KEY)
 *   SECRETD_DATA_LOSS          the persistent database is corrupt (CORRUPT)
 *   and those of every call.
 */
secretd_status secretd_create(secretd_client *client, const secretd_create_args *args,
    int timeout_ms, secretd_create_result *result, secretd_error *err);

/* What drop did. */
typedef struct secretd_drop_result {
	char name[SECRETD_NAME_MAX + 1]; /* the name as stored (lowercased), never cut */
	secretd_storage storage;         /* where it was */
	bool dropped;          /* false when if_exists found nothing */
	char storage_name[16]; /* "memory", "sqlcipher" or "etcd"; "" when nothing was */
	char node[64];         /* as secretd_secret.node */
} secretd_drop_result;

/*
 * Drop the secret name (admin role) from storage: MEMORY or SQLCIPHER looks only there,
 * SECRETD_STORAGE_ANY wherever it is. result may be NULL; it is zeroed first, and filled
 * on SECRETD_OK.
 *
 *   SECRETD_OK                 dropped, or if_exists and nothing to drop (dropped false)
 *   SECRETD_INVALID_ARGUMENT   name NULL, storage outside its enum, or a name the server
 *                              refuses (control character, over --max-name)
 *   SECRETD_NOT_FOUND          no such secret in the storages looked at, and !if_exists
 *   SECRETD_FAILED_PRECONDITION SECRETD_STORAGE_ANY and both storages hold it (reason
 *                              AMBIGUOUS), even with if_exists; or BAD_KEY as for create
 *   SECRETD_PERMISSION_DENIED  the caller's token has the reader role only
 *   SECRETD_DATA_LOSS          the persistent database is corrupt
 *   and those of every call.
 */
secretd_status secretd_drop(secretd_client *client, const char *name, secretd_storage storage,
    bool if_exists, int timeout_ms, secretd_drop_result *result, secretd_error *err);

/* One row of duckdb_secrets(), pointing into its secretd_rows. */
typedef struct secretd_row {
	const char *name;
	const char *type;
	const char *provider;
	bool persistent;     /* true for storage "sqlcipher" or "etcd" */
	const char *storage; /* "memory" / "sqlcipher", or "etcd" from a cluster node */
	const char *const *scope;
	size_t n_scope;
	/* name=..;type=..;provider=config;serializable=true;scope=..;k1=v1;... with values
	 * "redacted" unless the listing was unredacted */
	const char *secret_string;
	const char *node; /* as secretd_secret.node */
} secretd_row;

/* A set of listing rows. One allocation, wiped when freed. */
typedef struct secretd_rows {
	const secretd_row *rows;
	size_t n_rows;
} secretd_rows;

/* Wipe and free a listing, rows and strings with it. NULL-safe. */
void secretd_rows_free(secretd_rows *rows);

/* What to list; a NULL secretd_list_args is all zeros: redacted, every type, both
 * storages. */
typedef struct secretd_list_args {
	bool unredacted;         /* needs the admin role */
	const char *type;        /* NULL: every type */
	secretd_storage storage; /* SECRETD_STORAGE_ANY: both */
} secretd_list_args;

/*
 * List secrets sorted by (name, storage): redacted for the reader role, unredacted for
 * admin when asked. args may be NULL (redacted, all). On SECRETD_OK the caller frees
 * *rowsp (never NULL then, possibly with 0 rows) with secretd_rows_free; otherwise *rowsp
 * is NULL.
 *
 *   SECRETD_OK
 *   SECRETD_INVALID_ARGUMENT   rowsp NULL, args->storage outside its enum, or a type
 *                              secretd does not know
 *   SECRETD_PERMISSION_DENIED  unredacted asked by a caller without the admin role
 *   SECRETD_DATA_LOSS          the persistent database is corrupt
 *   and those of every call.
 */
secretd_status secretd_list(secretd_client *client, const secretd_list_args *args, int timeout_ms,
    secretd_rows **rowsp, secretd_error *err);

/*
 * Read the secret name with its values (reader or admin role) from storage (ANY: wherever
 * it is). On SECRETD_OK the caller frees *secretp (never NULL then) with
 * secretd_secret_free; otherwise *secretp is NULL. With the cache on, the answer may come
 * from it (see secretd_options), and while the server cannot be reached a stale entry may
 * be served as SECRETD_OK with secret->stale set.
 *
 *   SECRETD_OK
 *   SECRETD_INVALID_ARGUMENT   name or secretp NULL, storage outside its enum, or a name
 *                              the server refuses (control character, over --max-name)
 *   SECRETD_NOT_FOUND          no such secret in the storages looked at
 *   SECRETD_FAILED_PRECONDITION SECRETD_STORAGE_ANY and both storages hold it (reason
 *                              AMBIGUOUS)
 *   SECRETD_DATA_LOSS          the persistent database is corrupt
 *   and those of every call.
 */
secretd_status secretd_get(secretd_client *client, const char *name, secretd_storage storage,
    int timeout_ms, secretd_secret **secretp, secretd_error *err);

/*
 * which_secret(path, type) with values (reader or admin role): among secrets of type, the
 * one with the longest scope entry that is a byte prefix of path; on a tie temporary beats
 * persistent, then the smaller name. The caller frees *secretp with secretd_secret_free.
 * The cache and stale entries as for secretd_get.
 *
 *   SECRETD_OK                 *secretp the match, or NULL when none matches
 *   SECRETD_INVALID_ARGUMENT   path, type or secretp NULL; type empty or not one secretd
 *                              knows
 *   SECRETD_DATA_LOSS          the persistent database is corrupt
 *   and those of every call.
 */
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

/* One row of which_secret(), pointing into its secretd_result. (The text protocol's JSON
 * keeps DuckDB's shape, "persistent": "TEMPORARY"/"PERSISTENT"; here it is a bool, as in
 * secretd_row.) */
typedef struct secretd_resolved_row {
	const char *name;
	bool persistent;     /* true for storage "sqlcipher" or "etcd" */
	const char *storage; /* "memory" / "sqlcipher", or "etcd" from a cluster node */
	const char *node;    /* as secretd_secret.node */
} secretd_resolved_row;

/* What a statement produced: kind says which member is set; the others are zero. */
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

/*
 * Execute one statement of secretd's dialect (CREATE SECRET, DROP SECRET,
 * FROM duckdb_secrets(), FROM which_secret(...), GET SECRET; README "The statements").
 * Roles as for the call the statement amounts to. On SECRETD_OK the caller frees *resultp
 * (never NULL then) with secretd_result_free; otherwise *resultp is NULL.
 *
 *   SECRETD_OK
 *   SECRETD_INVALID_ARGUMENT   statement or resultp NULL; a statement the grammar refuses
 *                              (reason SYNTAX, the message says where); or what the
 *                              statement's call returns for it
 *   SECRETD_RESOURCE_EXHAUSTED a statement too large for the server to parse
 *   SECRETD_ALREADY_EXISTS, SECRETD_NOT_FOUND, SECRETD_FAILED_PRECONDITION,
 *   SECRETD_PERMISSION_DENIED, SECRETD_DATA_LOSS  as secretd_create, secretd_drop,
 *                              secretd_list and secretd_get list them
 *   and those of every call.
 */
secretd_status secretd_execute(secretd_client *client, const char *statement, int timeout_ms,
    secretd_result **resultp, secretd_error *err);

/*
 * Rotate the server's database key (admin role). The server makes the new random key and
 * writes its key file atomically; the key never crosses the wire. key_file (may be NULL)
 * receives, on SECRETD_OK, the key file's path on the server, NUL-terminated and cut to
 * key_file_len - 1 bytes (a buffer of PATH_MAX, 4096, always holds it).
 *
 *   SECRETD_OK                 rotated; every secret is readable under the new key
 *   SECRETD_INVALID_ARGUMENT   client NULL
 *   SECRETD_PERMISSION_DENIED  the caller's token has the reader role only
 *   SECRETD_FAILED_PRECONDITION the server cannot rotate online: a cluster (reason
 *                              CLUSTER) or a passphrase-keyed database (PASSPHRASE_MODE);
 *                              the message says how to rotate offline
 *   SECRETD_UNAVAILABLE        the rotation failed (REKEY); every secret stays readable
 *                              under the key in use
 *   SECRETD_UNIMPLEMENTED      the server has no key to rotate (NO_REKEY)
 *   and those of every call.
 */
secretd_status secretd_rekey(secretd_client *client, int timeout_ms, char *key_file,
    size_t key_file_len, secretd_error *err);

/* What a node says of its readiness (secretd_health). Strings are NUL-terminated and cut
 * to fit. */
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

/*
 * Ask the node the client reaches for its readiness (reader or admin role). info is zeroed
 * first, and filled on SECRETD_OK.
 *
 *   SECRETD_OK
 *   SECRETD_INVALID_ARGUMENT   client or info NULL
 *   and those of every call.
 */
secretd_status secretd_health(
    secretd_client *client, int timeout_ms, secretd_health_info *info, secretd_error *err);

/*
 * Reasons. secretd_error.reason, when the server set one, is one of these names (an error
 * of the library's own, with no reply from the server, has ""). Match on the status first
 * and on the reason for the condition within it; the list only grows, a name never
 * changes. Each is shown with the status it comes with. The source of this list is
 * proto/secretd/v1/reasons.h; tests/unit/test_reasons.c keeps this copy equal to it.
 *
 *  BAD_HEADER        INVALID_ARGUMENT    a binary frame does not start with 00 53 44 <version>
 *  VERSION           UNIMPLEMENTED       a protocol version the server does not speak
 *  FRAME_TOO_LARGE   RESOURCE_EXHAUSTED  a frame over the server's frame limit
 *  BAD_FRAME         INVALID_ARGUMENT    the envelope is not a valid secretd.v1.Request, or a
 *                                        string in it holds a NUL
 *  UNKNOWN_METHOD    UNIMPLEMENTED       Request.method names no rpc of service Secrets
 *  BAD_BODY          INVALID_ARGUMENT    Request.body is not a valid message of the method's
 *                                        input type
 *  BAD_TEXT          INVALID_ARGUMENT    a text frame holds a NUL byte or is not valid UTF-8
 *  SYNTAX            INVALID_ARGUMENT    a statement (or a text frame's AUTH line) does not
 *                                        parse
 *  NO_TOKEN          UNAUTHENTICATED     the connection needs a token and none was sent
 *  BAD_TOKEN         UNAUTHENTICATED     the token sent is not valid
 *  NO_CREDENTIALS    UNAUTHENTICATED     a call that needs a role came with none
 *  ROLE              PERMISSION_DENIED   the caller's role may not make this call
 *  STALE             UNAVAILABLE         this node is behind Request.min_store_rev; try
 *                                        another node
 *  DUPLICATE         OK                  a resent request answered with its first reply
 *                                        (server log only)
 *  MISSING_TYPE      INVALID_ARGUMENT    no TYPE given
 *  UNKNOWN_TYPE      INVALID_ARGUMENT    a TYPE that is not openai, ollama or azure_llm
 *  UNKNOWN_PROVIDER  INVALID_ARGUMENT    a PROVIDER other than config
 *  UNKNOWN_FIELD     INVALID_ARGUMENT    a field the type does not declare
 *  DUPLICATE_FIELD   INVALID_ARGUMENT    a field given twice
 *  MISSING_FIELD     INVALID_ARGUMENT    a required field absent or empty
 *  BAD_VALUE         INVALID_ARGUMENT    a field value that is not UTF-8 text
 *  BAD_NAME          INVALID_ARGUMENT    an empty name, or one not UTF-8 or holding a control
 *                                        character
 *  BAD_SCOPE         INVALID_ARGUMENT    a scope entry that is not UTF-8
 *  TOO_LARGE         INVALID_ARGUMENT    a name, field value or scope entry over its limit
 *  TOO_MANY_FIELDS   INVALID_ARGUMENT    more fields than the limit
 *  TOO_MANY_SCOPES   INVALID_ARGUMENT    more scope entries than the limit
 *  INVALID_STORAGE   INVALID_ARGUMENT    an unknown storage, or one the statement cannot use
 *  ALREADY_EXISTS    ALREADY_EXISTS      Create (on conflict: error) of a name the storage
 *                                        holds
 *  NOT_FOUND         NOT_FOUND           Drop or Get of a name no allowed storage holds
 *  AMBIGUOUS         FAILED_PRECONDITION a name in both storages and no storage given
 *  AUDIT             UNAVAILABLE         the audit trail cannot be written; nothing was changed
 *  STORE_FULL        RESOURCE_EXHAUSTED  the storage holds its maximum number of secrets
 *  DISK_FULL         RESOURCE_EXHAUSTED  the disk is full; nothing was changed
 *  READ_ONLY         UNAVAILABLE         the database cannot be written; nothing was changed
 *  IO                UNAVAILABLE         an I/O error; nothing was changed
 *  NO_QUORUM         UNAVAILABLE         etcd cannot commit (no quorum, no member reachable);
 *                                        nothing was changed
 *  CORRUPT           DATA_LOSS           the storage is corrupt
 *  BAD_KEY           FAILED_PRECONDITION the key does not open the database
 *  STORE             INTERNAL            any other failure of a storage
 *  NO_MEMORY         RESOURCE_EXHAUSTED  the server ran out of memory
 *  NO_REKEY          UNIMPLEMENTED       this server cannot rotate its key
 *  CLUSTER           FAILED_PRECONDITION online key rotation asked of a cluster node (rotate
 *                                        offline)
 *  PASSPHRASE_MODE   FAILED_PRECONDITION online key rotation asked of a server keyed with a
 *                                        passphrase
 *  REKEY             UNAVAILABLE         key rotation failed; every secret is intact under the
 *                                        key in use
 *  NO_NOTIFY         UNIMPLEMENTED       Subscribe asked of a server without a notify socket
 *  UNKNOWN_STATEMENT INTERNAL            the parser made a statement the server cannot run
 *  RENDER            INTERNAL            a successful reply could not be written as a text
 *                                        frame's JSON
 */

#ifdef __cplusplus
}
#endif

#endif
