/*
 * store.h: secrets at rest, behind one interface.
 *
 * A store holds secrets keyed by their (already normalised) name. Three backends fill
 * the same ops table: "memory" (temporary secrets, a hash table), "sqlcipher"
 * (persistent secrets in an encrypted SQLite database, mirrored in memory so that no
 * read touches the disk) and "etcd" (persistent secrets sealed with AES-256-GCM in an
 * etcd cluster that many secretd share, mirrored in memory and kept current by a watch).
 * Callers use the store_*() wrappers only.
 *
 * What this module does not do: it knows nothing of nng, protobuf, roles or the SQL
 * dialect; it does not validate types, fields or names (the server's handlers do, before
 * a secret reaches the store), and it does not lowercase names.
 *
 * Thread safety: every store_*() call on one store may be made from many threads at
 * once. put and delete on one store are serialised, so a conflict check and the write
 * it guards are atomic. A list callback runs under the store's read lock and must not
 * call back into the same store.
 *
 * Secret memory: a struct store_secret is one allocation holding every string and value
 * it points at; store_secret_free() wipes all of it before freeing.
 */
#ifndef SECRETD_STORE_H
#define SECRETD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result of every fallible store call. Translated to a wire status by the server. */
typedef enum store_status {
	STORE_OK = 0,
	STORE_NOT_FOUND,  /* no secret with that name */
	STORE_EXISTS,     /* name taken and the conflict mode is STORE_CONFLICT_ERROR */
	STORE_FULL,       /* the configured max_secrets is reached */
	STORE_NO_SPACE,   /* the disk is full (SQLITE_FULL, ENOSPC) */
	STORE_IO,         /* another I/O error; nothing was changed */
	STORE_BAD_KEY,    /* the key does not open the database (or it is not a database) */
	STORE_CORRUPT,    /* the database or a row in it is malformed */
	STORE_READ_ONLY,  /* the database file or directory cannot be written */
	STORE_PERMISSION, /* a file or directory has unsafe or wrong permissions */
	STORE_NO_MEMORY,  /* allocation failed */
	STORE_INVALID,    /* a bad argument or configuration */
	/* a shared store (etcd) cannot be reached or has no quorum; nothing was changed */
	STORE_UNAVAILABLE,
} store_status;

/* A short English description of a status, for messages; never NULL. */
const char *store_status_str(store_status st);

/* One field of a secret. value is not NUL-terminated in general (it is in practice, with
 * value[value_len] == 0, so that callers may treat UTF-8 values as C strings). */
struct store_field {
	const char *key;
	const uint8_t *value;
	size_t value_len;
};

/* A secret. One allocation (size bytes) holds the struct and everything it points at. */
struct store_secret {
	size_t size; /* bytes of the whole allocation, for wiping */
	const char *name;
	const char *type;
	const char *const *scope;
	size_t n_scope;
	const struct store_field *fields; /* sorted by key (byte order) */
	size_t n_fields;
};

/*
 * Build a secret from borrowed parts, copying everything into one allocation and sorting
 * the fields by key. Returns STORE_OK and *outp (caller frees with store_secret_free), or
 * STORE_NO_MEMORY / STORE_INVALID (NULL name or type). Does not validate the contents.
 */
store_status store_secret_new(const char *name, const char *type, const char *const *scope,
    size_t n_scope, const struct store_field *fields, size_t n_fields, struct store_secret **outp);

/* Copy a secret. Caller frees *outp with store_secret_free. */
store_status store_secret_dup(const struct store_secret *s, struct store_secret **outp);

/* Wipe and free a secret. NULL-safe. */
void store_secret_free(struct store_secret *s);

/* Wipe and free an array of secrets returned by store_list_copy. NULL-safe. */
void store_secret_array_free(struct store_secret **items, size_t n);

/* What put does when the name already exists. */
enum store_conflict {
	STORE_CONFLICT_ERROR = 0, /* STORE_EXISTS, nothing changes */
	STORE_CONFLICT_REPLACE,   /* the old secret is replaced whole */
	STORE_CONFLICT_IGNORE,    /* STORE_OK, nothing changes, *createdp = false */
};

/* etcd: where the cluster is and how to reach it (store_config.etcd). Strings borrowed for
 * the open call only. */
struct store_etcd_config {
	const char *endpoints; /* comma-separated http://host:port or https://host:port */
	const char *prefix;    /* key prefix; NULL: "/secretd/" */
	const char *ca_file;   /* https: CA to verify etcd with (NULL: the system's) */
	const char *cert_file; /* https: client certificate (NULL: none) */
	const char *key_file;  /* its private key */
	const char *user;      /* etcd authentication (NULL: none) */
	const char *password;
	/* deadline of one write; 0: 5000 */
	int timeout_ms;
	/* A previous 32-byte key (or NULL): values sealed under it stay readable, and
	 * store_rekey re-seals them, so a rotation cut short loses nothing. */
	const uint8_t *old_key;
	/* Optional: when the open fails, why (the last failed call: endpoint, TLS or etcd
	 * error; no value) is written here. */
	char *error;
	size_t error_len;
};

/* Options for opening a store. Unused members are ignored by a backend. */
struct store_config {
	/* sqlcipher: path of the database file. Its directory must exist and be 0700
	 * (STORE_PERMISSION otherwise); the file is created 0600. */
	const char *path;
	/* sqlcipher: the 32-byte raw key (borrowed; the backend keeps no copy of its own:
	 * SQLCipher holds the key it derives for the open database), or, when passphrase is
	 * true, a passphrase of 1 to STORE_PASSPHRASE_MAX bytes from which SQLCipher derives
	 * the key (PBKDF2-HMAC-SHA1, STORE_KDF_ITER iterations). store_rekey then takes a new
	 * passphrase too. */
	const uint8_t *key;
	size_t key_len;
	bool passphrase;
	/* Most secrets the store will hold; 0 means 1,000,000. */
	size_t max_secrets;
	/* Called after each change (a put that changed something, a remove, and for a shared
	 * backend a change made elsewhere and applied here) has become visible to readers, from
	 * the thread that made it visible, with the secret's name (borrowed for the call). It must
	 * not call back into the store. NULL: no calls. Lets the server raise its revision and
	 * publish invalidations without knowing how a backend learns of changes. */
	void (*on_change)(void *arg, const char *name);
	void *on_change_arg;
	/* etcd: the cluster (required by that backend; key is the key file's raw key). */
	const struct store_etcd_config *etcd;
};

/* What a shared backend knows of its health (store_health). */
struct store_health {
	bool shared;       /* the backend is shared by several nodes (etcd) */
	bool serving;      /* the mirror holds a full copy and is being kept current */
	bool writable;     /* the last probe of the cluster succeeded (quorum) */
	uint64_t revision; /* revision the mirror has applied */
	uint64_t latest;   /* latest revision the cluster reported */
	uint64_t lag_ms;   /* how long the mirror has been behind latest, 0 when current */
	char detail[160];  /* why not serving or not writable; "" when both */
};

/* Called once when an asynchronous write (store_put_async, store_remove_async) is over:
 * st as the synchronous call would return it, created as its *createdp. */
typedef void (*store_done_fn)(void *arg, store_status st, bool created);

/* Buckets of the write figures: group sizes 1, 2, 4, ... 2^(STORE_GROUP_BUCKETS-1) and
 * more; commit times 100 us, 250 us, 500 us, 1, 2.5, 5, 10, 25, 50, 100, 250 ms and more. */
#define STORE_GROUP_BUCKETS 9
#define STORE_COMMIT_BUCKETS 12

/* Cumulative write figures of a backend that commits in groups (zero for one that does
 * not). No names, no values: counts and times only. */
struct store_stats {
	uint64_t groups;        /* group commits made (failed ones too) */
	uint64_t group_writes;  /* writes in them */
	uint64_t failed_groups; /* of which rolled back */
	/* groups whose size was <= 2^i (the last bucket: every group) */
	uint64_t group_size_le[STORE_GROUP_BUCKETS];
	uint64_t commit_us_sum;                      /* BEGIN to durable COMMIT, microseconds */
	uint64_t commit_us_le[STORE_COMMIT_BUCKETS]; /* commits no slower than the bucket */
	uint64_t queued;                             /* writes waiting for a group now */
};

/* The upper bound, in microseconds, of commit bucket i (the last is "+Inf": UINT64_MAX). */
uint64_t store_commit_bucket_us(size_t i);

/* Called by store_list for each secret in name order. Return false to stop. The secret is
 * borrowed and valid only during the call. */
typedef bool (*store_visit_fn)(const struct store_secret *s, void *arg);

/*
 * The ops table a backend fills with designated initialisers. impl is the backend's own
 * state. Every function returns a store_status unless stated. Ownership is as for the
 * store_*() wrappers below.
 */
struct store_ops {
	const char *name; /* "memory" or "sqlcipher" */
	store_status (*open)(const struct store_config *cfg, void **implp);
	void (*close)(void *impl);
	store_status (*put)(
	    void *impl, struct store_secret *s, enum store_conflict mode, bool *createdp);
	store_status (*get)(void *impl, const char *name, struct store_secret **outp);
	bool (*contains)(void *impl, const char *name);
	store_status (*read)(void *impl, const char *name, store_visit_fn visit, void *arg);
	store_status (*remove)(void *impl, const char *name);
	store_status (*list)(void *impl, const char *type, store_visit_fn visit, void *arg);
	store_status (*resolve)(void *impl, const char *type, const char *path, size_t path_len,
	    struct store_secret **outp, size_t *match_lenp);
	size_t (*count)(void *impl);
	store_status (*rekey)(void *impl, const uint8_t *key, size_t key_len);
	/* Optional: the backend's revision of what readers see now (etcd's revision for a
	 * shared store); NULL for a backend that has none. */
	uint64_t (*revision)(void *impl);
	/* Optional: wait up to timeout_ms until revision() >= rev; true when it is. */
	bool (*wait_revision)(void *impl, uint64_t rev, int timeout_ms);
	/* Optional: put with a caller's tag (a request id) that a shared backend stores
	 * beside the value, so that a resend of the same request through another node finds
	 * its own write instead of a conflict. Same contract as put otherwise. */
	store_status (*put_tagged)(void *impl, struct store_secret *s, enum store_conflict mode,
	    uint64_t tag, bool *createdp);
	/* Optional: remove with a caller's tag (a request id): a shared backend records that
	 * the drop committed, so that a resend of the same request through another node finds
	 * the name gone by its own hand and is answered STORE_OK, not STORE_NOT_FOUND. Same
	 * contract as remove otherwise. */
	store_status (*remove_tagged)(void *impl, const char *name, uint64_t tag);
	/* Optional: fill h (see struct store_health). */
	void (*health)(void *impl, struct store_health *h);
	/* Optional: put and remove that return at once and report later, from a thread of
	 * the backend, through done (see store_put_async). NULL: the wrappers run put or
	 * remove and call done before returning. */
	void (*put_async)(void *impl, struct store_secret *s, enum store_conflict mode,
	    store_done_fn done, void *arg);
	void (*remove_async)(void *impl, const char *name, store_done_fn done, void *arg);
	/* Optional: write figures (see struct store_stats); NULL leaves them zero. */
	void (*stats)(void *impl, struct store_stats *out);
	/* Optional: whether a write could be made now (see store_writable); NULL: true. */
	bool (*writable)(void *impl);
};

extern const struct store_ops store_memory_ops;
extern const struct store_ops store_sqlcipher_ops;
extern const struct store_ops store_etcd_ops;

struct store; /* opaque: a backend and its state */

/* Open a store with the given backend. Caller closes *storep with store_close. */
store_status store_open(
    const struct store_ops *ops, const struct store_config *cfg, struct store **storep);

/* Close a store, wiping every secret it holds in memory. NULL-safe. */
void store_close(struct store *st);

/* The backend's name ("memory", "sqlcipher"). */
const char *store_name(const struct store *st);

/*
 * Insert secret s under s->name. Takes ownership of s in every case (it is freed on
 * failure). For sqlcipher the call returns only after the write is durable, and the
 * in-memory view changes only if the commit succeeded. *createdp (may be NULL) is false
 * when STORE_CONFLICT_IGNORE left an existing secret in place.
 * STORE_EXISTS, STORE_FULL, STORE_NO_SPACE, STORE_IO, STORE_READ_ONLY, STORE_NO_MEMORY.
 */
store_status store_put(
    struct store *st, struct store_secret *s, enum store_conflict mode, bool *createdp);

/* Copy out the secret named name. Caller frees *outp with store_secret_free.
 * STORE_NOT_FOUND when absent. */
store_status store_get(struct store *st, const char *name, struct store_secret **outp);

/* Whether a secret named name exists. */
bool store_contains(struct store *st, const char *name);

/* Hand the secret named name, borrowed, to visit (under the store's read lock, so visit
 * must not call back into the store), without copying it. STORE_NOT_FOUND when absent. */
store_status store_read(struct store *st, const char *name, store_visit_fn visit, void *arg);

/* Delete the secret named name (durably for sqlcipher). STORE_NOT_FOUND when absent. */
store_status store_remove(struct store *st, const char *name);

/* Visit the secrets (only those of type when type is non-NULL) in name byte order. */
store_status store_list(struct store *st, const char *type, store_visit_fn visit, void *arg);

/*
 * Copy out the secrets store_list would visit, in the same order, so a caller can work on them without
 * holding the store's read lock. STORE_OK with *itemsp (caller frees with
 * store_secret_array_free(*itemsp, *np); NULL when *np is 0), or STORE_NO_MEMORY.
 */
store_status store_list_copy(
    struct store *st, const char *type, struct store_secret ***itemsp, size_t *np);

/*
 * Among secrets of type, find the one whose longest scope entry is a byte prefix of
 * path; on equal lengths the smaller name wins. STORE_OK with *outp (caller frees with
 * store_secret_free) and *match_lenp set to that scope's length, or STORE_NOT_FOUND.
 * Cost does not grow with the number of secrets (an index by type and scope).
 */
store_status store_resolve(struct store *st, const char *type, const char *path, size_t path_len,
    struct store_secret **outp, size_t *match_lenp);

/* Number of secrets held. */
size_t store_count(struct store *st);

/*
 * As store_put and store_remove, but without waiting: done(arg, status, created) is called
 * exactly once, when the write is over (for sqlcipher: after its group's COMMIT is durable,
 * or failed), from the backend's commit thread, or before the call returns for a backend
 * without asynchronous writes (store_writes_async tells which). tag is as for
 * store_put_tagged (a shared backend keeps it beside the value). s is taken; name is
 * borrowed until done is called. done must not call back into the same store.
 */
void store_put_async(struct store *st, struct store_secret *s, enum store_conflict mode,
    uint64_t tag, store_done_fn done, void *arg);
void store_remove_async(struct store *st, const char *name, store_done_fn done, void *arg);

/* Whether store_put_async/store_remove_async report from another thread (true for
 * sqlcipher); false means they complete before returning. */
bool store_writes_async(const struct store *st);

/* The backend's cumulative write figures into *out (zeroed first). */
void store_stats_get(struct store *st, struct store_stats *out);

/* Whether the store could take a write now: false for a read-only database (and, for a
 * shared backend such as etcd, without quorum). Cheap; for /readyz. A backend that does not
 * say (ops.writable NULL) is writable. */
bool store_writable(struct store *st);

/* sqlcipher: re-encrypt the database under a new 32-byte key (or a new passphrase, for a
 * store opened with one). memory: STORE_OK. */
store_status store_rekey(struct store *st, const uint8_t *key, size_t key_len);

/* The backend's revision of what readers see now (etcd's store revision); 0 for a backend
 * without one (memory, sqlcipher) or a NULL store. */
uint64_t store_revision(struct store *st);

/* Wait up to timeout_ms until store_revision(st) >= rev (at once for a backend without
 * revisions). true when reached. */
bool store_wait_revision(struct store *st, uint64_t rev, int timeout_ms);

/* store_put with a request id as tag (see store_ops.put_tagged); plain put for a backend
 * that keeps no tags. */
store_status store_put_tagged(struct store *st, struct store_secret *s, enum store_conflict mode,
    uint64_t tag, bool *createdp);

/* store_remove with a request id as tag (see store_ops.remove_tagged); plain remove for a
 * backend that keeps no tags. */
store_status store_remove_tagged(struct store *st, const char *name, uint64_t tag);

/* Whether the backend answers a resent tagged remove whose first attempt committed (so a
 * caller asks it even when the name looks absent here). */
bool store_tags_removes(const struct store *st);

/* The backend's health: for a backend that is not shared, serving and writable. */
void store_health(struct store *st, struct store_health *h);

/* Size of a raw database key in bytes. */
#define STORE_KEY_LEN 32
/* Longest passphrase, and the PBKDF2 iterations SQLCipher derives a passphrase's key with
 * (v3's default is 64,000; a passphrase mode is for operators who cannot keep a key file, so
 * the derivation is made four times dearer: about 0.1 s per open here). STORE_KDF_ITER is
 * a plain decimal literal: sqlcipher.c pastes it into its PRAGMA kdf_iter. */
#define STORE_PASSPHRASE_MAX 1024
#define STORE_KDF_ITER 256000

/*
 * Read the raw key from a key file (64 hex digits and an optional newline), or create the
 * file with a new random key (0600, written then fsynced then renamed into place) when it
 * does not exist and create is true. Refuses a file readable by group or others
 * (STORE_PERMISSION). The key is written to key[STORE_KEY_LEN]; the caller wipes it.
 * *createdp (may be NULL) tells whether the file was created.
 */
store_status store_keyfile_load(const char *path, bool create, uint8_t *key, bool *createdp);

/* Write key (STORE_KEY_LEN bytes) to path, replacing any file there, atomically: a
 * temporary file (0600) is written, fsynced and renamed over path, and the directory is
 * fsynced. */
store_status store_keyfile_write(const char *path, const uint8_t *key);

/* Rename a key file over another and fsync the directory, so the new name survives a
 * crash (the last step of a key rotation). */
store_status store_keyfile_rename(const char *from, const char *to);

#endif
