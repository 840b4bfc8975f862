/*
 * siphash.h: SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012),
 * the keyed hash of the memory store's tables (store/table.c) and of the notify socket's name
 * digests, which secretd (server/notify.c) and libsecretd's cache (client/cache.c) must
 * compute alike.
 *
 * Why not libcrypto's EVP_MAC "SIPHASH": libsecretd does not link libcrypto at all, and
 * would for this alone; EVP_MAC allocates and frees a context per digest and goes through
 * the provider layer, which the store's tables would pay on every lookup under their lock.
 * tests/unit/test_common.c checks this code against the paper's reference vectors and
 * against EVP_MAC for lengths 0-200, and prints both costs (24 bytes at -O2 on the loaded
 * 2-core build machine: 118-396 ns here, 385-472 ns through EVP_MAC).
 *
 * Thread safety: pure functions.
 */
#ifndef SECRETD_COMMON_SIPHASH_H
#define SECRETD_COMMON_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SD_SIPHASH_KEY_LEN 16

/* SipHash-2-4 of data[0..len) under the key (k0, k1), the key's two little-endian halves. */
uint64_t sd_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);

/* The same under a 16-byte key as the paper writes it (bytes 0-7 are k0, little-endian). */
uint64_t sd_siphash24_key(const uint8_t key[SD_SIPHASH_KEY_LEN], const void *data, size_t len);

#endif
