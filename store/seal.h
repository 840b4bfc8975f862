/*
 * seal.h: sealing a secret for a store that is not ours to trust (etcd): AES-256-GCM under a
 * key derived from secretd's key file, so that no value leaves the process in clear.
 *
 * Key: HKDF-SHA256 of the key file's 32 bytes (salt "secretd etcd seal v1") gives the
 * AES key; a second HKDF output with another label gives an 8-byte key id, stored in the
 * clear beside each value so that a node with another key file tells "not my key" from
 * "corrupt" before it decrypts anything.
 *
 * Format of one sealed value (all integers little-endian):
 *   u8 version (1) | 8 bytes key id | u64 write tag | 12 bytes nonce | ciphertext | 16 bytes tag
 * The plaintext is the type, a NUL, then the row encoding of row.h (scope and fields). The
 * associated data binds the name, the key id, the write tag and the version, so a value
 * copied under another name, or with its tag changed, fails to open. A fresh random nonce
 * is drawn for every seal (getrandom), never a counter: many nodes seal under one key.
 * The write tag is the caller's (a request id) and is not secret: it lets a writer that
 * lost an answer recognise its own write.
 *
 * What it does not do: no I/O beyond getrandom, no base64 (the etcd client does that).
 *
 * Thread safety: a struct store_seal is read-only after store_seal_init; seal and open may
 * run on many threads at once.
 */
#ifndef SECRETD_STORE_SEAL_H
#define SECRETD_STORE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_SEAL_KID_LEN 8
#define STORE_SEAL_VERSION 1
/* Bytes a sealed value adds to its plaintext. */
#define STORE_SEAL_OVERHEAD (1 + STORE_SEAL_KID_LEN + 8 + 12 + 16)

struct store_seal {
	uint8_t key[32];
	uint8_t kid[STORE_SEAL_KID_LEN];
};

/* Derive the sealing key and key id from a 32-byte key file key (borrowed). STORE_OK,
 * STORE_INVALID (wrong length) or STORE_IO (libcrypto failed). Wipe with store_seal_wipe. */
store_status store_seal_init(struct store_seal *seal, const uint8_t *key, size_t key_len);

/* Wipe a sealing key. NULL-safe. */
void store_seal_wipe(struct store_seal *seal);

/*
 * Seal secret s (borrowed) with write tag tag. STORE_OK with *outp and *lenp (caller frees
 * with free(); it holds no clear value), STORE_NO_MEMORY, STORE_INVALID or STORE_IO.
 */
store_status store_seal_secret(const struct store_seal *seal, const struct store_secret *s,
    uint64_t tag, uint8_t **outp, size_t *lenp);

/* The key id and write tag of a sealed value, without opening it. false when buf is too
 * short or of another version. */
bool store_seal_peek(
    const uint8_t *buf, size_t len, uint8_t kid[STORE_SEAL_KID_LEN], uint64_t *tagp);

/*
 * Open a sealed value stored under name (both borrowed). STORE_OK with *outp (caller frees
 * with store_secret_free), STORE_BAD_KEY when the key id is not this key's, STORE_CORRUPT
 * when the value is malformed or fails authentication, STORE_NO_MEMORY.
 */
store_status store_seal_open(const struct store_seal *seal, const char *name, const uint8_t *buf,
    size_t len, struct store_secret **outp);

#endif
