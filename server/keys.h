/*
 * keys.h: the database key's life: open the persistent store with the key file, and
 * rotate the key without a window in which a crash loses the database.
 *
 * Rotation writes the new key to "<key file>.new" (fsynced), re-encrypts the database
 * under it in one transaction, then renames "<key file>.new" over the key file (and
 * fsyncs the directory). A crash at any point leaves a database that one of the two files
 * opens; keys_open_store finds which, and finishes or discards the rotation.
 *
 * Thread safety: keys_rotate must not run twice at once on one store (the caller holds a
 * lock); the store itself stays usable by other threads throughout.
 */
#ifndef SECRETD_SERVER_KEYS_H
#define SECRETD_SERVER_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * Load the key from key_path (creating a random one on first start), recover from an
 * interrupted rotation, and open the sqlcipher store at cfg->path (cfg->key is set here).
 * key[STORE_KEY_LEN] receives the key in use. *notep (may be NULL) gets a static note for
 * the log ("created a new key", "finished an interrupted key rotation", ...) or NULL.
 * Caller closes *storep with store_close.
 */
store_status keys_open_store(const char *key_path, struct store_config *cfg, uint8_t *key,
    struct store **storep, const char **notep);

/* Called by keys_rotate after each step ("new-key": the new key file is durable; "rekey":
 * the database is under the new key). secretd passes NULL; a test passes a function that
 * ends the process there, to prove a crash at that point recovers
 * (tests/integration/rekey_crash.c). */
typedef void (*keys_step_fn)(const char *step);

/* Rotate st's key as described above; on success key[] holds the new key. after_step may
 * be NULL. */
store_status keys_rotate(
    struct store *st, const char *key_path, uint8_t *key, keys_step_fn after_step);

/*
 * Read a passphrase (passphrase mode, for operators who cannot keep a key file) from path:
 * the file must be a regular file readable by its owner only; one trailing newline is
 * dropped. buf receives STORE_PASSPHRASE_MAX bytes at most; *lenp its length. The caller
 * wipes buf. STORE_PERMISSION, STORE_NOT_FOUND, STORE_INVALID (empty or too long), STORE_IO.
 */
store_status keys_passphrase_read(const char *path, uint8_t *buf, size_t *lenp);

#endif
